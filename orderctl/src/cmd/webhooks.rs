//! `orderctl webhooks`: register, list and inspect webhook endpoints through order-service's
//! WebhookService, redeliver a delivery, and `listen`: a small receiver that verifies each
//! delivery's signature (kit::signing, the Standard Webhooks scheme) and prints it.

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::{Args, Subcommand};
use orderflow_kit::signing;
use orderflow_proto::client::Authorized;
use orderflow_proto::order::v1::webhook_service_client::WebhookServiceClient;
use orderflow_proto::order::v1::{
    CreateWebhookRequest, DeleteWebhookRequest, ListWebhookDeliveriesRequest, ListWebhooksRequest,
    RedeliverWebhookRequest, WebhookDeliveryState,
};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its id and its secret (shown this once).
    Add(AddArgs),
    /// The registered endpoints.
    List,
    /// Stop sending to an endpoint.
    Delete { webhook_id: String },
    /// An endpoint's deliveries, newest first (--state pending, delivered or failed).
    Deliveries {
        webhook_id: String,
        #[arg(long)]
        state: Option<String>,
    },
    /// Send a delivery again, with its original id.
    Redeliver { delivery_id: String },
    /// Receive deliveries on --addr, verify their signatures and print them; with --register it
    /// registers itself for --type (and deletes the endpoint again on Ctrl-C).
    Listen(ListenArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(long)]
    url: String,
    /// A webhook type, e.g. order.shipped; repeat for more.
    #[arg(long = "type", required = true)]
    types: Vec<String>,
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    #[arg(long, default_value = "127.0.0.1:9180")]
    addr: SocketAddr,
    /// The endpoint's secret (whsec_…), unless --register makes one.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[arg(long)]
    register: bool,
    /// With --register: the types to receive (default: all).
    #[arg(long = "type")]
    types: Vec<String>,
}

pub async fn run(command: WebhooksCommand, mut hooks: WebhookServiceClient<Authorized>) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Add(args) => {
            let request =
                CreateWebhookRequest { url: args.url, event_types: args.types, description: args.description };
            let webhook = hooks.create_webhook(request).await?.into_inner().webhook.unwrap_or_default();
            println!("webhook {} {}\nsecret  {}", webhook.webhook_id, webhook.url, webhook.secret);
        }
        WebhooksCommand::List => {
            for webhook in hooks.list_webhooks(ListWebhooksRequest {}).await?.into_inner().webhooks {
                println!(
                    "{}  {}  {}  {}",
                    webhook.webhook_id,
                    webhook.url,
                    webhook.event_types.join(","),
                    webhook.description
                );
            }
        }
        WebhooksCommand::Delete { webhook_id } => {
            hooks.delete_webhook(DeleteWebhookRequest { webhook_id: webhook_id.clone() }).await?;
            println!("webhook {webhook_id} deleted");
        }
        WebhooksCommand::Deliveries { webhook_id, state } => {
            let state = match state.as_deref() {
                None => WebhookDeliveryState::Unspecified,
                Some(name) => {
                    WebhookDeliveryState::from_str_name(&format!("WEBHOOK_DELIVERY_{}", name.to_ascii_uppercase()))
                        .with_context(|| format!("--state {name:?}: use pending, delivered or failed"))?
                }
            };
            let request =
                ListWebhookDeliveriesRequest { webhook_id, state: state as i32, page_size: 100, ..Default::default() };
            for d in hooks.list_webhook_deliveries(request).await?.into_inner().deliveries {
                let state = WebhookDeliveryState::try_from(d.state).unwrap_or_default().as_str_name();
                let state = state.trim_start_matches("WEBHOOK_DELIVERY_");
                println!(
                    "{}  {:<26} {:<9} attempts {}  last {} {}  {}",
                    d.delivery_id, d.event_type, state, d.attempts, d.last_status, d.last_error, d.subject
                );
            }
        }
        WebhooksCommand::Redeliver { delivery_id } => {
            let delivery = hooks.redeliver_webhook(RedeliverWebhookRequest { delivery_id }).await?.into_inner();
            println!("delivery {} queued again", delivery.delivery.unwrap_or_default().delivery_id);
        }
        WebhooksCommand::Listen(args) => listen(args, hooks).await?,
    }
    Ok(())
}

async fn listen(args: ListenArgs, mut hooks: WebhookServiceClient<Authorized>) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("listening on {}", args.addr))?;
    let url = format!("http://{}/", listener.local_addr()?);
    let (secret, registered) = if args.register {
        let types =
            if args.types.is_empty() { order_service::WEBHOOK_TYPES.map(str::to_owned).to_vec() } else { args.types };
        let request = CreateWebhookRequest {
            url: url.clone(),
            event_types: types,
            description: "orderctl webhooks listen".into(),
        };
        let webhook = hooks.create_webhook(request).await?.into_inner().webhook.unwrap_or_default();
        println!("registered webhook {} for {url}", webhook.webhook_id);
        (webhook.secret, Some(webhook.webhook_id))
    } else {
        (args.secret.context("--secret (or WEBHOOK_SECRET) is required without --register")?, None)
    };
    println!("listening on {url}; every delivery is verified, then printed");
    let app = axum::Router::new().fallback(axum::routing::post(receive)).with_state(Arc::new(secret));
    let served = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let result = served.await;
    if let Some(webhook_id) = registered {
        hooks.delete_webhook(DeleteWebhookRequest { webhook_id: webhook_id.clone() }).await?;
        println!("deleted webhook {webhook_id}");
    }
    Ok(result?)
}

async fn receive(State(secret): State<Arc<String>>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let now = chrono::Utc::now().timestamp();
    match signing::verify(&secret, id, timestamp, header("webhook-signature"), &body, now) {
        Ok(()) => {
            println!("{id} verified {body}");
            StatusCode::NO_CONTENT
        }
        Err(why) => {
            println!("{id} REFUSED ({why}) {body}");
            StatusCode::UNAUTHORIZED
        }
    }
}
