//! `orderctl gateway`: the development payment gateway (docs/payments.md) — `serve` runs it
//! over HTTP/JSON with its ledger in memory, `ledger` prints what it holds.

use anyhow::Context;
use clap::{Args, Subcommand};
use order_service::gateway_api::{DEFAULT_PORT, Ledger};
use std::net::SocketAddr;

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Serve the gateway until Ctrl-C. Test references: `pay_decline…` is declined, `pay_flaky…`
    /// fails its first two calls with a 503.
    Serve(ServeArgs),
    /// Print the ledger: each authorisation with its status, amount, captures and voids.
    Ledger(LedgerArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, env = "GATEWAY_ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub addr: SocketAddr,
    /// Keep the ledger in this file (JSON lines, appended; read back at start), so a restart
    /// loses nothing. Without it the ledger lives as long as the process.
    #[arg(long, env = "GATEWAY_LEDGER")]
    pub ledger: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[arg(long, env = "PAYMENT_GATEWAY_URL", default_value_t = format!("http://127.0.0.1:{DEFAULT_PORT}"))]
    pub url: String,
}

pub async fn run(command: GatewayCommand) -> anyhow::Result<()> {
    match command {
        GatewayCommand::Serve(args) => {
            let listener = tokio::net::TcpListener::bind(args.addr)
                .await
                .with_context(|| format!("listening on {}", args.addr))?;
            println!("payment gateway on http://{}", listener.local_addr()?);
            let stopped = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let router = order_service::gateway_simulator::router(args.ledger.as_deref())
                .with_context(|| format!("the ledger file {:?}", args.ledger))?;
            axum::serve(listener, router).with_graceful_shutdown(stopped).await?;
            Ok(())
        }
        GatewayCommand::Ledger(args) => {
            let ledger = ledger(&args.url).await?;
            println!(
                "{:<36}  {:<10}  {:>12}  {:>8}  {:>5}  reference",
                "authorization", "status", "amount", "captures", "voids"
            );
            for e in ledger.authorizations {
                let amount = format!("{} {}", e.amount_minor, e.currency);
                println!(
                    "{:<36}  {:<10}  {amount:>12}  {:>8}  {:>5}  {}",
                    e.authorization_key, e.status, e.captures, e.voids, e.payment_reference
                );
            }
            Ok(())
        }
    }
}

/// The gateway's ledger at `url`.
pub async fn ledger(url: &str) -> anyhow::Result<Ledger> {
    let url = format!("{}/v1/ledger", url.trim_end_matches('/'));
    let response = reqwest::get(&url).await.with_context(|| format!("GET {url}"))?.error_for_status()?;
    serde_json::from_str(&response.text().await?).with_context(|| format!("the ledger at {url}"))
}
