//! orderctl: the way a person tries Orderflow. This file only parses the command line and hands
//! each command to its module: `cmd/` (the services' gRPC APIs), `ops` (the topics and the
//! databases), `load`, `bench`, `watchers` and `chaos` (measuring and judging the stack).

mod bench;
mod chaos;
mod client;
mod cmd;
mod load;
mod ops;
mod print;
mod send;
mod top;
mod watchers;

use clap::{Parser, Subcommand};
use cmd::{demo, dlq, gateway, health, order, product, shipment, stock, tokens, warehouse, webhooks};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "orderctl", version, about = "Command-line client for Orderflow")]
struct Cli {
    #[command(flatten)]
    addrs: client::Addrs,
    /// The API token sent as `authorization: Bearer <token>`; its scopes decide what you may do.
    #[arg(long, env = "ORDERFLOW_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(flatten)]
    broker: ops::Broker,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update products and add stock.
    #[command(subcommand)]
    Product(product::ProductCommand),
    /// Show stock levels.
    #[command(subcommand)]
    Stock(stock::StockCommand),
    /// Place orders and follow them.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Warehouse work when fulfillment-service runs with FULFILLMENT_MODE=manual.
    #[command(subcommand)]
    Warehouse(warehouse::WarehouseCommand),
    /// Follow parcels and record carrier delivery scans.
    #[command(subcommand)]
    Shipment(shipment::ShipmentCommand),
    /// Webhook endpoints, their deliveries, and a receiver that verifies them.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// The development payment gateway: serve it, read its ledger.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Seed a small catalogue, place demo orders and follow them until they end.
    Demo(demo::DemoArgs),
    /// Each service's grpc.health.v1 status; no token needed.
    Health(health::HealthArgs),
    /// Read the event topics (KAFKA_BROKERS, TOPIC_NAMESPACE); no token needed.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Each service's consumer lag, outbox and dead letters, from its database and the broker.
    Lag(ops::LagArgs),
    /// The dead-letter topics (KAFKA_BROKERS, TOPIC_NAMESPACE); no token needed.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Rebuild a service's projection from the topics while it runs, and swap it in.
    Rebuild(ops::RebuildArgs),
    /// Drive the running stack with orders at a fixed rate or concurrency and measure it.
    Load(load::LoadArgs),
    /// Raw limits and the pipeline side by side (run through scripts/bench.sh).
    Bench(bench::BenchArgs),
    /// What open WatchOrder streams cost PostgreSQL and PlaceOrder (run through scripts/bench-watch.sh).
    BenchWatch(watchers::BenchWatchArgs),
    /// The client and the invariant checker of a chaos run (run through scripts/chaos.sh).
    #[command(subcommand)]
    Chaos(chaos::ChaosCommand),
    /// A live console of the pipeline: health, events per second, lag, outbox, dead letters,
    /// PlaceOrder and orders per status, refreshed every second (q quits).
    Top(top::TopArgs),
    /// Mint development API tokens: the services' token file and an env file to source.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Print each service's default gRPC port and the development gateway's, one "name port" line
    /// each (scripts/lib.sh reads it).
    Ports,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Follow the topics: one JSON line per event (type, order id, event id, time, payload).
    Tail(ops::TailArgs),
    /// Write one message with any key, headers and bytes, as any client of the broker could
    /// (a drill: the consumers dead-letter what they cannot apply).
    Send(send::SendArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match error.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("error: {:?}: {}", status.code(), status.message()),
                None => eprintln!("error: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (addrs, broker) = (&cli.addrs, &cli.broker);
    // Only the gRPC commands need the API token.
    let token = || client::bearer(cli.token.as_deref());
    match cli.command {
        Command::Events(EventsCommand::Tail(args)) => ops::tail(broker, &args).await,
        Command::Events(EventsCommand::Send(args)) => send::send(broker, &args).await,
        Command::Lag(args) => ops::lag(broker, &args).await,
        Command::Health(args) => health::run(&addrs.services(), &args).await,
        Command::Top(args) => top::run(addrs, &args).await,
        Command::Dlq(command) => dlq::run(broker, command).await,
        Command::Rebuild(args) => ops::rebuild(broker, &args).await,
        Command::Tokens(command) => tokens::run(command),
        Command::Gateway(command) => gateway::run(command).await,
        Command::Ports => {
            for (name, port) in orderflow_proto::DEFAULT_PORTS {
                println!("{name} {port}");
            }
            println!("gateway {}", order_service::gateway_api::DEFAULT_PORT);
            Ok(())
        }
        Command::Chaos(chaos::ChaosCommand::Check(args)) => {
            anyhow::ensure!(chaos::check(broker, &args).await?, "an invariant failed (see above)");
            Ok(())
        }
        Command::Chaos(chaos::ChaosCommand::Plan(args)) => chaos::plan(&args),
        Command::Chaos(chaos::ChaosCommand::Place(args)) => {
            let (orders, inventory) = addrs.shop(&token()?).await?;
            chaos::place(&args, orders, inventory).await
        }
        Command::Order(order::OrderCommand::Trace { order_id }) => ops::trace(broker, &order_id).await,
        Command::Order(order::OrderCommand::Api(command)) => order::run(command, addrs.orders(&token()?).await?).await,
        Command::Product(command) => product::run(command, addrs.inventory(&token()?).await?).await,
        Command::Stock(command) => stock::run(command, addrs.inventory(&token()?).await?).await,
        Command::Warehouse(command) => warehouse::run(command, addrs.fulfillment(&token()?).await?).await,
        Command::Shipment(command) => shipment::run(command, addrs.shipping(&token()?).await?).await,
        Command::Webhooks(command) => webhooks::run(command, addrs.webhooks(&token()?).await?).await,
        Command::Load(args) => {
            let (orders, inventory) = addrs.shop(&token()?).await?;
            load::load(&args, broker, orders, inventory).await
        }
        Command::Bench(args) => {
            let (orders, inventory) = addrs.shop(&token()?).await?;
            bench::bench(&args, broker, orders, inventory).await
        }
        Command::BenchWatch(args) => {
            let token = token()?;
            let (orders, inventory) = addrs.shop(&token).await?;
            watchers::bench_watch(&args, broker, &addrs.order_addr, &token, orders, inventory).await
        }
        Command::Demo(args) => {
            let token = token()?;
            let inventory = addrs.inventory(&token).await?;
            demo::run(args, inventory, addrs.orders(&token).await?).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The invocations the scripts and the README make still parse.
    #[test]
    fn what_the_scripts_run_still_parses() {
        let invocations: &[&[&str]] = &[
            &["demo", "--orders", "0"],
            &["health", "--expect", "not-serving", "--within", "15s"],
            &["health", "--expect", "serving", "--within", "30s"],
            &["chaos", "place", "--count", "100", "--rate", "20", "--out", "placed.json"],
            &["chaos", "check", "--placed", "p.json", "--kills", "4", "--restarts", "6", "--crashes", "0"],
            &["chaos", "check", "--health-misses", "0"],
            &["chaos", "plan", "--seed", "1073741823", "--kills", "1", "--orders", "100", "--rate", "20"],
            &["bench", "--database-url", "postgres://x/bench", "--out", "bench", "--pid", "order-service=1"],
            &["bench", "--database-url", "d", "--comm", "tansu", "--comm", "postgres", "--rates", "100,200"],
            &["bench-watch", "--baseline", "--out", "bench-watch", "--watchers", "10"],
            &["order", "place", "--line", "MUG-RED:2", "--line", "TEE-M:1"],
            &["order", "cancel", "id", "--reason", "changed my mind"],
            &["order", "trace", "id"],
            &["events", "tail", "--from-beginning"],
            &["lag", "--watch", "2"],
            &["warehouse", "pack", "id", "--weight-grams", "1"],
            &["shipment", "deliver", "T1"],
            &["shipment", "pickups", "--carrier", "DPD"],
            &["shipment", "pickup", "--carrier", "DPD", "T1", "T2"],
            &["shipment", "scan", "T1", "--status", "in-transit", "--scan-id", "s1", "--location", "Leipzig"],
            &["order", "list", "--late"],
            &["order", "list", "--customer-id", "cust-1"],
            &["order", "place", "--line", "MUG-RED:2@1290", "--currency", "EUR", "--allow-backorder"],
            &["stock", "backorders"],
            &["webhooks", "listen", "--register", "--addr", "127.0.0.1:9180"],
            &[
                "webhooks",
                "add",
                "--url",
                "https://shop.example/hooks",
                "--type",
                "order.shipped",
                "--type",
                "stock.low",
            ],
            &["webhooks", "deliveries", "id", "--state", "failed"],
            &["product", "upsert", "--sku", "S", "--name", "N", "--bin", "B", "--weight-grams", "3"],
            &["stock", "low"],
            &["load", "--rate", "10", "--duration", "2m", "--quiet"],
            &["tokens", "new", "--file", "t", "--env", "t.env", "--name", "dev-admin", "--scopes", "*", "--var", "V"],
        ];
        for args in invocations {
            let argv = std::iter::once("orderctl").chain(args.iter().copied());
            if let Err(error) = Cli::try_parse_from(argv) {
                panic!("{args:?}: {error}");
            }
        }
    }
}
