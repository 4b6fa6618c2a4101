//! Webhooks end to end: an endpoint registered through WebhookService receives an order's
//! changes as signed HTTP calls (verified here as the Standard Webhooks specification says, with
//! its own HMAC, not the service's code), in order; a failing endpoint is retried until it
//! recovers; a hanging one delays nobody else; deliveries are listed and redelivered.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use orderflow_e2e::{Stack, order_request};
use orderflow_kit::testing;
use orderflow_proto::order::v1::webhook_service_client::WebhookServiceClient;
use orderflow_proto::order::v1::{
    CreateWebhookRequest, ListWebhookDeliveriesRequest, ListWebhooksRequest, OrderStatus, RedeliverWebhookRequest,
    WebhookDeliveryState,
};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tonic::Code;

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    /// 503 to the first this-many calls, then accept.
    FailFirst(usize),
    /// Never answers until released.
    Hang,
}

#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    mode: Mode,
    calls: Arc<Mutex<usize>>,
    /// (webhook-id, verified body) of every accepted call.
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    hanging: Arc<Notify>,
    release: Arc<Notify>,
}

/// The Standard Webhooks check: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the
/// base64 key after `whsec_`, and a timestamp within five minutes.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> Result<String, String> {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or(format!("no {name}"));
    let (id, timestamp, signature) =
        (header("webhook-id")?, header("webhook-timestamp")?, header("webhook-signature")?);
    let at: i64 = timestamp.parse().map_err(|_| "bad timestamp".to_owned())?;
    if (chrono::Utc::now().timestamp() - at).abs() > 300 {
        return Err("timestamp too far off".into());
    }
    let key = BASE64.decode(secret.strip_prefix("whsec_").ok_or("secret form")?).map_err(|e| e.to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected).then_some(id).ok_or_else(|| "signature mismatch".into())
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let call = {
        let mut calls = receiver.calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    match receiver.mode {
        Mode::Hang => {
            receiver.hanging.notify_one();
            receiver.release.notified().await;
            return StatusCode::OK;
        }
        Mode::FailFirst(n) if call <= n => return StatusCode::SERVICE_UNAVAILABLE,
        _ => {}
    }
    let secret = receiver.secret.lock().unwrap().clone();
    match verify(&secret, &headers, &body) {
        Ok(id) => {
            receiver.accepted.lock().unwrap().push((id, serde_json::from_str(&body).unwrap()));
            StatusCode::NO_CONTENT
        }
        Err(why) => panic!("a delivery failed verification: {why}"),
    }
}

/// Starts a receiver on a port the kernel picks; its URL.
async fn start(mode: Mode) -> (Receiver, String) {
    let receiver = Receiver {
        secret: Arc::default(),
        mode,
        calls: Arc::default(),
        accepted: Arc::default(),
        hanging: Arc::default(),
        release: Arc::default(),
    };
    let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

async fn register(stack: &Stack, receiver: &Receiver, url: &str, types: &[&str]) -> String {
    let mut hooks =
        WebhookServiceClient::new(orderflow_e2e::with_token(stack.order_channel.clone(), testing::ADMIN_TOKEN));
    let request = CreateWebhookRequest {
        url: url.into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        description: "test receiver".into(),
    };
    let webhook = hooks.create_webhook(request).await.unwrap().into_inner().webhook.unwrap();
    assert!(webhook.secret.starts_with("whsec_"));
    *receiver.secret.lock().unwrap() = webhook.secret;
    webhook.webhook_id
}

fn types_of(receiver: &Receiver) -> Vec<String> {
    receiver.accepted.lock().unwrap().iter().map(|(_, body)| body["type"].as_str().unwrap().to_owned()).collect()
}

const ORDER_TYPES: [&str; 4] = ["order.placed", "order.reserved", "order.labelled", "order.shipped"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_receives_an_order_s_changes_signed_and_in_order() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let (receiver, url) = start(Mode::Accept).await;
    let webhook_id = register(&stack, &receiver, &url, &ORDER_TYPES).await;

    let order = stack.orders.place_order(order_request("c-hooks", &[("MUG", 1)])).await.unwrap().into_inner();
    let order_id = order.order.unwrap().order_id;
    stack.wait_for_status(&order_id, OrderStatus::Shipped).await;
    testing::wait_until("four deliveries", Duration::from_secs(30), || {
        let done = receiver.accepted.lock().unwrap().len() >= 4;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(types_of(&receiver), ORDER_TYPES, "in the order the changes happened, nothing else");
    let accepted = receiver.accepted.lock().unwrap().clone();
    assert!(accepted.iter().all(|(_, body)| body["data"]["order_id"] == order_id.as_str()));
    assert_eq!(accepted[2].1["data"]["carrier"], "DPD");

    let mut hooks =
        WebhookServiceClient::new(orderflow_e2e::with_token(stack.order_channel.clone(), testing::ADMIN_TOKEN));
    let listed = hooks.list_webhooks(ListWebhooksRequest {}).await.unwrap().into_inner().webhooks;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret.is_empty(), "the secret is shown once");
    let request = ListWebhookDeliveriesRequest { webhook_id: webhook_id.clone(), ..Default::default() };
    let deliveries = hooks.list_webhook_deliveries(request).await.unwrap().into_inner().deliveries;
    assert_eq!(deliveries.len(), 4);
    assert!(deliveries.iter().all(|d| d.state == WebhookDeliveryState::WebhookDeliveryDelivered as i32));
    assert_eq!(deliveries[0].delivery_id, accepted[3].0, "newest first; the webhook-id is the delivery id");

    // A redelivery is sent again with its original id.
    let again = RedeliverWebhookRequest { delivery_id: deliveries[0].delivery_id.clone() };
    hooks.redeliver_webhook(again).await.unwrap();
    testing::wait_until("the redelivery", Duration::from_secs(30), || {
        let done = receiver.accepted.lock().unwrap().len() == 5;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(receiver.accepted.lock().unwrap()[4].0, deliveries[0].delivery_id);

    let bad =
        CreateWebhookRequest { url: "ftp://x".into(), event_types: vec!["order.shipped".into()], ..Default::default() };
    let refused = hooks.create_webhook(bad).await.unwrap_err();
    assert_eq!((refused.code(), refused.message().starts_with("url:")), (Code::InvalidArgument, true));
    let shop = orderflow_e2e::with_token(stack.order_channel.clone(), testing::READER_TOKEN);
    let denied = WebhookServiceClient::new(shop).list_webhooks(ListWebhooksRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "managing webhooks needs the webhooks scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_and_a_hanging_one_delays_nobody_else() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let (hanging, hanging_url) = start(Mode::Hang).await;
    register(&stack, &hanging, &hanging_url, &["order.placed"]).await;
    let (flaky, flaky_url) = start(Mode::FailFirst(1)).await;
    register(&stack, &flaky, &flaky_url, &ORDER_TYPES).await;
    let (steady, steady_url) = start(Mode::Accept).await;
    register(&stack, &steady, &steady_url, &ORDER_TYPES).await;

    let order = stack.orders.place_order(order_request("c-hooks", &[("MUG", 1)])).await.unwrap().into_inner();
    hanging.hanging.notified().await;
    testing::wait_until("the steady endpoint has all four", Duration::from_secs(30), || {
        let done = steady.accepted.lock().unwrap().len() == 4;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(*hanging.calls.lock().unwrap(), 1, "still hanging on its first call");
    assert_eq!(types_of(&steady), ORDER_TYPES);
    // The flaky endpoint refused its first call: it is retried (after 5 s), and what follows
    // for the same order waits behind it, so it still gets them in order.
    testing::wait_until("the flaky endpoint has all four", Duration::from_secs(60), || {
        let done = flaky.accepted.lock().unwrap().len() == 4;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(types_of(&flaky), ORDER_TYPES);
    assert_eq!(*flaky.calls.lock().unwrap(), 5, "one refused call, retried once");
    hanging.release.notify_waiters();
    drop(order);
}
