//! orderctl: the way a person tries Orderflow. Talks to the four services over gRPC.

mod bench;
mod chaos;
mod demo;
mod health;
mod load;
mod ops;
mod print;
mod watchers;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use orderflow_kit::dlq;
use orderflow_proto::client::{Authorized, Bearer};
use orderflow_proto::common::v1::{Address, Customer, OrderLine, ServiceLevel};
use orderflow_proto::fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, FulfillmentStatus, ListPickTasksRequest,
};
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{
    GetStockRequest, ListLowStockRequest, ListStockRequest, RestockRequest, UpsertProductRequest,
};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{
    CancelOrderRequest, GetOrderRequest, ListOrdersRequest, PlaceOrderRequest, WatchOrderRequest,
};
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use orderflow_proto::shipping::v1::{ConfirmDeliveryRequest, TrackShipmentRequest};
use std::process::ExitCode;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(name = "orderctl", version, about = "Command-line client for Orderflow")]
struct Cli {
    /// order-service address.
    #[arg(long, env = "ORDER_ADDR", default_value = "http://127.0.0.1:50051", global = true)]
    order_addr: String,
    /// inventory-service address.
    #[arg(long, env = "INVENTORY_ADDR", default_value = "http://127.0.0.1:50052", global = true)]
    inventory_addr: String,
    /// fulfillment-service address.
    #[arg(long, env = "FULFILLMENT_ADDR", default_value = "http://127.0.0.1:50053", global = true)]
    fulfillment_addr: String,
    /// shipping-service address.
    #[arg(long, env = "SHIPPING_ADDR", default_value = "http://127.0.0.1:50054", global = true)]
    shipping_addr: String,
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
    Product(ProductCommand),
    /// Show stock levels.
    #[command(subcommand)]
    Stock(StockCommand),
    /// Place orders and follow them.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Warehouse work when fulfillment-service runs with FULFILLMENT_MODE=manual.
    #[command(subcommand)]
    Warehouse(WarehouseCommand),
    /// Follow parcels and record carrier delivery scans.
    #[command(subcommand)]
    Shipment(ShipmentCommand),
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
    Dlq(DlqCommand),
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
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Every dead letter (or one service's): why, where from, and the event.
    List {
        /// Only this service's dead letters, e.g. inventory-service.
        #[arg(long)]
        service: Option<String>,
    },
    /// Apply a dead letter again once its cause is fixed; the events of its order that waited
    /// behind it follow in order. Redriving it twice applies it once.
    Redrive(ops::DeadLetterArgs),
    /// Drop a dead letter for good; the events of its order that waited behind it are applied.
    Discard(ops::DeadLetterArgs),
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Follow the topics: one JSON line per event (type, order id, event id, time, payload).
    Tail(ops::TailArgs),
}

#[derive(Debug, Subcommand)]
enum ProductCommand {
    /// Create a product or update its description.
    Upsert {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        bin: String,
        #[arg(long)]
        weight_grams: u32,
        #[arg(long, default_value_t = 0)]
        low_stock_threshold: i64,
    },
    /// Add stock to a product.
    Restock {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        quantity: i64,
    },
}

#[derive(Debug, Subcommand)]
enum StockCommand {
    /// One product's stock.
    Get { sku: String },
    /// Every product's stock.
    List,
    /// Products whose low-stock alert is raised.
    Low,
}

#[derive(Debug, Subcommand)]
enum OrderCommand {
    #[command(flatten)]
    Api(OrderApiCommand),
    /// An order's journey across every topic, with the time spent at each hop (reads the
    /// topics: KAFKA_BROKERS, TOPIC_NAMESPACE; no token needed).
    Trace { order_id: String },
}

/// The order commands that call order-service.
#[derive(Debug, Subcommand)]
enum OrderApiCommand {
    /// Place an order; prints the order id at once.
    Place(Box<PlaceArgs>),
    /// Show an order with its timeline.
    Get { order_id: String },
    /// Follow an order: one line per event until it ends (or Ctrl-C).
    Watch { order_id: String },
    /// A customer's orders, newest first.
    List {
        #[arg(long)]
        customer_id: String,
    },
    /// Cancel an order before it is handed to shipping; its reserved stock is released.
    Cancel {
        order_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum WarehouseCommand {
    /// The pick list, in bin order.
    Picks,
    /// Confirm an order's lines were picked.
    Pick { order_id: String },
    /// Confirm an order's picked lines were consolidated.
    Sort { order_id: String },
    /// Confirm an order was packed; give all four measurements, or none for the standard box.
    Pack {
        order_id: String,
        #[arg(long, default_value_t = 0)]
        weight_grams: u32,
        #[arg(long, default_value_t = 0)]
        length_mm: u32,
        #[arg(long, default_value_t = 0)]
        width_mm: u32,
        #[arg(long, default_value_t = 0)]
        height_mm: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ShipmentCommand {
    /// A parcel's tracking history.
    Track { tracking_number: String },
    /// Record the carrier's delivery scan: the order ends DELIVERED.
    Deliver { tracking_number: String },
}

#[derive(Debug, Args)]
struct PlaceArgs {
    #[arg(long, default_value = "cust-1")]
    customer_id: String,
    #[arg(long, default_value = "Ada Lovelace")]
    customer_name: String,
    #[arg(long, default_value = "ada@example.com")]
    email: String,
    /// A line as SKU:QUANTITY; repeat for more lines.
    #[arg(long = "line", required = true)]
    lines: Vec<String>,
    #[arg(long, default_value = "12 Analytical Row")]
    line1: String,
    #[arg(long, default_value = "Berlin")]
    city: String,
    #[arg(long, default_value = "10115")]
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[arg(long, default_value = "DE")]
    country: String,
    #[arg(long, default_value = "pay-demo")]
    payment_reference: String,
    #[arg(long)]
    express: bool,
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

impl PlaceArgs {
    fn into_request(self) -> anyhow::Result<PlaceOrderRequest> {
        let lines = self
            .lines
            .iter()
            .map(|line| {
                let (sku, quantity) =
                    line.rsplit_once(':').with_context(|| format!("line {line:?} is not SKU:QUANTITY"))?;
                Ok(OrderLine {
                    sku: sku.to_owned(),
                    quantity: quantity.parse().with_context(|| format!("quantity in {line:?}"))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(PlaceOrderRequest {
            idempotency_key: self.idempotency_key,
            customer: Some(Customer { id: self.customer_id, name: self.customer_name.clone(), email: self.email }),
            lines,
            shipping_address: Some(Address {
                name: self.customer_name,
                line1: self.line1,
                line2: String::new(),
                city: self.city,
                postal_code: self.postal_code,
                country: self.country,
            }),
            payment_reference: self.payment_reference,
            service_level: if self.express { ServiceLevel::Express } else { ServiceLevel::Standard } as i32,
        })
    }
}

/// A channel to `addr` that sends `token` with every call.
async fn connect(addr: &str, token: &Bearer) -> anyhow::Result<Authorized> {
    let channel =
        Channel::from_shared(addr.to_owned())?.connect().await.with_context(|| format!("cannot reach {addr}"))?;
    Ok(InterceptedService::new(channel, token.clone()))
}

/// The clients that drive orders: order-service, and inventory-service to stock the products.
async fn shop(
    order_addr: &str,
    inventory_addr: &str,
    token: &Bearer,
) -> anyhow::Result<(OrderServiceClient<Authorized>, InventoryServiceClient<Authorized>)> {
    let orders = OrderServiceClient::new(connect(order_addr, token).await?);
    Ok((orders, InventoryServiceClient::new(connect(inventory_addr, token).await?)))
}

fn bearer(token: Option<&str>) -> anyhow::Result<Bearer> {
    let token = token.filter(|t| !t.trim().is_empty()).context(
        "no API token: set ORDERFLOW_TOKEN or pass --token (scripts/up.sh prints where its development tokens are)",
    )?;
    Bearer::new(token).context("the API token must be printable ASCII")
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
    // Only the gRPC commands need the API token.
    let token = || bearer(cli.token.as_deref());
    match cli.command {
        Command::Events(EventsCommand::Tail(args)) => ops::tail(&cli.broker, &args).await?,
        Command::Lag(args) => ops::lag(&cli.broker, &args).await?,
        Command::Health(args) => {
            let services = [
                ("order-service", cli.order_addr.as_str()),
                ("inventory-service", cli.inventory_addr.as_str()),
                ("fulfillment-service", cli.fulfillment_addr.as_str()),
                ("shipping-service", cli.shipping_addr.as_str()),
            ];
            if !health::health(&services, &args).await {
                anyhow::bail!("the services did not report what was expected");
            }
        }
        Command::Dlq(DlqCommand::List { service }) => ops::dlq_list(&cli.broker, service.as_deref()).await?,
        Command::Dlq(DlqCommand::Redrive(args)) => ops::dlq_answer(&cli.broker, &args, dlq::Action::Redrive).await?,
        Command::Dlq(DlqCommand::Discard(args)) => ops::dlq_answer(&cli.broker, &args, dlq::Action::Discard).await?,
        Command::Rebuild(args) => ops::rebuild(&cli.broker, &args).await?,
        Command::Chaos(chaos::ChaosCommand::Check(args)) => {
            if !chaos::check(&cli.broker, &args).await? {
                anyhow::bail!("an invariant failed (see above)");
            }
        }
        Command::Chaos(chaos::ChaosCommand::Place(args)) => {
            let (orders, inventory) = shop(&cli.order_addr, &cli.inventory_addr, &token()?).await?;
            chaos::place(&args, orders, inventory).await?;
        }
        Command::Order(OrderCommand::Trace { order_id }) => ops::trace(&cli.broker, &order_id).await?,
        Command::Product(command) => {
            let mut inventory = InventoryServiceClient::new(connect(&cli.inventory_addr, &token()?).await?);
            match command {
                ProductCommand::Upsert { sku, name, bin, weight_grams, low_stock_threshold } => {
                    let request =
                        UpsertProductRequest { sku, name, bin_location: bin, weight_grams, low_stock_threshold };
                    let product = inventory.upsert_product(request).await?.into_inner().product.unwrap_or_default();
                    println!("product {} saved ({}, bin {})", product.sku, product.name, product.bin_location);
                }
                ProductCommand::Restock { sku, quantity } => {
                    let stock = inventory
                        .restock(RestockRequest { sku, quantity })
                        .await?
                        .into_inner()
                        .stock
                        .unwrap_or_default();
                    print::stock_header();
                    print::stock(&stock);
                }
            }
        }
        Command::Stock(command) => {
            let mut inventory = InventoryServiceClient::new(connect(&cli.inventory_addr, &token()?).await?);
            let items = match command {
                StockCommand::Get { sku } => vec![inventory.get_stock(GetStockRequest { sku }).await?.into_inner()],
                StockCommand::Low => inventory.list_low_stock(ListLowStockRequest {}).await?.into_inner().items,
                StockCommand::List => {
                    let (mut items, mut page_token) = (Vec::new(), String::new());
                    loop {
                        let page =
                            inventory.list_stock(ListStockRequest { page_size: 100, page_token }).await?.into_inner();
                        items.extend(page.items);
                        if page.next_page_token.is_empty() {
                            break items;
                        }
                        page_token = page.next_page_token;
                    }
                }
            };
            print::stock_header();
            items.iter().for_each(print::stock);
        }
        Command::Order(OrderCommand::Api(command)) => {
            let mut orders = OrderServiceClient::new(connect(&cli.order_addr, &token()?).await?);
            match command {
                OrderApiCommand::Place(args) => {
                    let order =
                        orders.place_order((*args).into_request()?).await?.into_inner().order.unwrap_or_default();
                    println!("order {} {}", order.order_id, print::status(order.status));
                }
                OrderApiCommand::Get { order_id } => {
                    let order =
                        orders.get_order(GetOrderRequest { order_id }).await?.into_inner().order.unwrap_or_default();
                    print::order(&order);
                }
                OrderApiCommand::Watch { order_id } => {
                    let mut stream = orders.watch_order(WatchOrderRequest { order_id }).await?.into_inner();
                    while let Some(update) = stream.message().await? {
                        let order = update.order.unwrap_or_default();
                        let entry = order.timeline.last().cloned().unwrap_or_default();
                        let at = print::time(entry.occurred_at.as_ref());
                        println!(
                            "{at}  {:<9}  {:<17} {}",
                            print::status(order.status),
                            entry.event_type,
                            entry.producer
                        );
                    }
                }
                OrderApiCommand::Cancel { order_id, reason } => {
                    let order = orders.cancel_order(CancelOrderRequest { order_id, reason }).await?.into_inner().order;
                    let order = order.unwrap_or_default();
                    println!("order {} {}", order.order_id, print::status(order.status));
                }
                OrderApiCommand::List { customer_id } => {
                    let page = orders
                        .list_orders(ListOrdersRequest { customer_id, page_size: 50, page_token: String::new() })
                        .await?
                        .into_inner();
                    for order in page.orders {
                        println!(
                            "{}  {:<9}  {} line(s)",
                            order.order_id,
                            print::status(order.status),
                            order.lines.len()
                        );
                    }
                }
            }
        }
        Command::Warehouse(command) => {
            let mut fulfillment = FulfillmentServiceClient::new(connect(&cli.fulfillment_addr, &token()?).await?);
            let confirmed = match command {
                WarehouseCommand::Picks => {
                    let tasks =
                        fulfillment.list_pick_tasks(ListPickTasksRequest { page_size: 200 }).await?.into_inner().tasks;
                    for task in tasks {
                        println!(
                            "{:<10} {:>4} x {:<16} order {}",
                            task.bin_location, task.quantity, task.sku, task.order_id
                        );
                    }
                    return Ok(());
                }
                WarehouseCommand::Pick { order_id } => {
                    fulfillment.confirm_pick(ConfirmPickRequest { order_id }).await?
                }
                WarehouseCommand::Sort { order_id } => {
                    fulfillment.confirm_sort(ConfirmSortRequest { order_id }).await?
                }
                WarehouseCommand::Pack { order_id, weight_grams, length_mm, width_mm, height_mm } => {
                    let request = ConfirmPackRequest { order_id, weight_grams, length_mm, width_mm, height_mm };
                    fulfillment.confirm_pack(request).await?
                }
            };
            let state = confirmed.into_inner().fulfillment.unwrap_or_default();
            let status = FulfillmentStatus::try_from(state.status).map_or("UNKNOWN", |s| s.as_str_name());
            println!("order {} {status}", state.order_id);
        }
        Command::Shipment(command) => {
            let mut shipping = ShippingServiceClient::new(connect(&cli.shipping_addr, &token()?).await?);
            match command {
                ShipmentCommand::Track { tracking_number } => {
                    let tracked = shipping.track_shipment(TrackShipmentRequest { tracking_number }).await?.into_inner();
                    print::tracking(&tracked);
                }
                ShipmentCommand::Deliver { tracking_number } => {
                    let request = ConfirmDeliveryRequest { tracking_number };
                    let shipment = shipping.confirm_delivery(request).await?.into_inner().shipment.unwrap_or_default();
                    println!(
                        "order {} delivered ({} {})",
                        shipment.order_id, shipment.carrier, shipment.tracking_number
                    );
                }
            }
        }
        Command::Load(args) => {
            let (orders, inventory) = shop(&cli.order_addr, &cli.inventory_addr, &token()?).await?;
            load::load(&args, &cli.broker, orders, inventory).await?;
        }
        Command::Bench(args) => {
            let (orders, inventory) = shop(&cli.order_addr, &cli.inventory_addr, &token()?).await?;
            bench::bench(&args, &cli.broker, orders, inventory).await?;
        }
        Command::BenchWatch(args) => {
            let token = token()?;
            let (orders, inventory) = shop(&cli.order_addr, &cli.inventory_addr, &token).await?;
            watchers::bench_watch(&args, &cli.broker, &cli.order_addr, &token, orders, inventory).await?;
        }
        Command::Demo(args) => {
            let inventory = InventoryServiceClient::new(connect(&cli.inventory_addr, &token()?).await?);
            let orders = OrderServiceClient::new(connect(&cli.order_addr, &token()?).await?);
            demo::run(args, inventory, orders).await?;
        }
    }
    Ok(())
}
