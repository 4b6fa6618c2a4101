//! `orderctl bench-watch` (run by `scripts/bench-watch.sh`): what open WatchOrder streams cost
//! the database and PlaceOrder. It places `--orders` orders and opens `--watchers` streams on
//! them, round-robin, over enough connections that none carries more than
//! `--streams-per-connection` (the server allows 200 concurrent HTTP/2 streams per connection).
//! The orders stay open for the whole run, so their streams do too: nobody confirms a delivery
//! here, so an order goes no further than SHIPPED (RESERVED with FULFILLMENT_MODE=manual, as the
//! script runs the stack). With every stream open it measures PostgreSQL's CPU while nothing
//! happens (`--idle`), then PlaceOrder at `--rate` for `--duration` (open loop, as `orderctl
//! load`): p50, p99 and PostgreSQL's CPU (every process named `--comm`, summed, of one core).
//! `--baseline` first measures the same load without watchers.

use crate::bench::{ms, sample_comm};
use crate::load::{self, LoadArgs};
use crate::ops::Broker;
use anyhow::Context;
use clap::Args;
use orderflow_proto::client::{Authorized, Bearer};
use orderflow_proto::common::v1::OrderLine;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::order::v1::WatchOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Args)]
pub struct BenchWatchArgs {
    /// WatchOrder streams held open.
    #[arg(long, default_value_t = 5000)]
    watchers: usize,
    /// Orders they watch (placed first), each watched by watchers/orders streams.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// PlaceOrder calls per second while the streams are open.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long PlaceOrder is driven, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = load::parse_duration)]
    duration: Duration,
    /// How long to measure with every stream open and nothing happening.
    #[arg(long, default_value = "10s", value_parser = load::parse_duration)]
    idle: Duration,
    /// Most streams on one connection.
    #[arg(long, default_value_t = 100)]
    streams_per_connection: usize,
    /// First measure the same PlaceOrder load without watchers.
    #[arg(long)]
    baseline: bool,
    /// The database server's process name, whose CPU is measured.
    #[arg(long, default_value = "postgres")]
    comm: String,
    /// Where the load phases write their reports and charts.
    #[arg(long, default_value = "bench-watch")]
    out: PathBuf,
}

/// What the streams have seen, counted by their tasks.
#[derive(Debug, Default)]
struct Streams {
    opened: AtomicUsize,
    ended: AtomicUsize,
    messages: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Streams {
    fn settled(&self) -> usize {
        self.opened.load(Ordering::Relaxed) + self.ended.load(Ordering::Relaxed)
    }
}

/// Follows one order until its stream ends; the opening permit goes back with the first message.
async fn follow(
    mut client: OrderServiceClient<Authorized>,
    order_id: String,
    streams: &Streams,
    opening: OwnedSemaphorePermit,
) -> Result<(), tonic::Status> {
    let mut stream = client.watch_order(WatchOrderRequest { order_id }).await?.into_inner();
    let mut opening = Some(opening);
    while stream.message().await?.is_some() {
        streams.messages.fetch_add(1, Ordering::Relaxed);
        if opening.take().is_some() {
            streams.opened.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Opens the streams, 64 opening at a time (each open loads its order once).
async fn open(args: &BenchWatchArgs, addr: &str, token: &Bearer, order_ids: &[String]) -> anyhow::Result<Arc<Streams>> {
    let connections = args.watchers.div_ceil(args.streams_per_connection.max(1)).max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(OrderServiceClient::new(crate::client::connect(addr, token).await?));
    }
    let streams = Arc::new(Streams::default());
    let opening = Arc::new(Semaphore::new(64));
    for i in 0..args.watchers {
        let permit = Arc::clone(&opening).acquire_owned().await?;
        let (client, streams) = (clients[i % connections].clone(), Arc::clone(&streams));
        let order_id = order_ids[i % order_ids.len()].clone();
        tokio::spawn(async move {
            let followed = follow(client, order_id, &streams, permit).await;
            if let Err(status) = followed {
                let mut errors = streams.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *errors.entry(format!("{:?}: {}", status.code(), status.message())).or_default() += 1;
            }
            streams.ended.fetch_add(1, Ordering::Relaxed);
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while streams.settled() < args.watchers {
        anyhow::ensure!(Instant::now() < deadline, "only {} of {} streams opened", streams.settled(), args.watchers);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  opened {} streams over {connections} connections", streams.opened.load(Ordering::Relaxed));
    Ok(streams)
}

/// Waits (up to a minute) until the watched orders have gone as far as they go: no message
/// for two seconds.
async fn quiet(streams: &Streams) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (streams.messages.load(Ordering::Relaxed), Instant::now());
    while since.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = streams.messages.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Runs `work` and returns its result with the CPU that processes named `comm` used meanwhile,
/// in % of one core.
async fn cpu_of<T>(comm: &str, work: impl Future<Output = T>) -> (T, f64) {
    let (before, started) = (sample_comm(comm), Instant::now());
    let result = work.await;
    (result, (sample_comm(comm) - before) / started.elapsed().as_secs_f64().max(0.001) * 100.0)
}

/// PlaceOrder at `--rate` for `--duration`, with PostgreSQL's CPU; prints one line.
async fn place_load(
    args: &BenchWatchArgs,
    name: &str,
    broker: &Broker,
    orders: &OrderServiceClient<Authorized>,
    inventory: &InventoryServiceClient<Authorized>,
) -> anyhow::Result<f64> {
    let load = LoadArgs {
        rate: Some(args.rate),
        concurrency: None,
        duration: args.duration,
        count: None,
        drain: Duration::ZERO,
        sku: "WATCH-LOAD-1".into(),
        report: args.out.join(format!("{name}.json")),
        svg: args.out.join(format!("{name}.svg")),
        quiet: true,
    };
    let (measured, cpu) = cpu_of(&args.comm, load::run(&load, broker, orders.clone(), inventory.clone())).await;
    let measured = measured?;
    load::write_report(&load, &measured)?;
    let p99 = ms(&measured.place, 0.99);
    println!(
        "  {name}: PlaceOrder at {}/s: placed {}, errors {:?}, p50 {:.1} ms, p99 {p99:.1} ms; {} {cpu:.1}% of a core",
        args.rate,
        measured.placed,
        measured.errors,
        ms(&measured.place, 0.5),
        args.comm
    );
    Ok(p99)
}

pub async fn bench_watch(
    args: &BenchWatchArgs,
    broker: &Broker,
    addr: &str,
    token: &Bearer,
    mut orders: OrderServiceClient<Authorized>,
    mut inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    println!("== bench-watch: {} streams on {} orders", args.watchers, args.orders);
    if args.baseline {
        place_load(args, "baseline (no watchers)", broker, &orders, &inventory).await?;
    }
    let sku = "WATCH-1";
    load::stock(&mut inventory, sku, u64::try_from(args.orders)?).await?;
    let mut order_ids = Vec::with_capacity(args.orders.max(1));
    for i in 0..args.orders.max(1) {
        let lines = vec![OrderLine { sku: sku.into(), quantity: 1, unit_price: None }];
        let request = load::scripted_order(format!("watch-{}", i % 100), "Watch Bench", lines);
        let order = orders.place_order(request).await.context("placing a watched order")?.into_inner().order;
        order_ids.push(order.context("PlaceOrder answered no order")?.order_id);
    }
    let streams = open(args, addr, token, &order_ids).await?;
    quiet(&streams).await;

    let before = streams.messages.load(Ordering::Relaxed);
    let ((), idle_cpu) = cpu_of(&args.comm, tokio::time::sleep(args.idle)).await;
    println!(
        "  idle {:.0} s with every stream open: {} {idle_cpu:.1}% of a core, {} messages",
        args.idle.as_secs_f64(),
        args.comm,
        streams.messages.load(Ordering::Relaxed) - before
    );
    let p99 = place_load(args, "with watchers", broker, &orders, &inventory).await?;

    let open_now = args.watchers - streams.ended.load(Ordering::Relaxed);
    let errors = streams.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    println!("  streams still open at the end: {open_now} of {}, errors {errors:?}", args.watchers);
    println!(
        "== targets: PlaceOrder p99 under 20 ms: {p99:.1} ms; {} idle under 5% of a core: {idle_cpu:.1}%",
        args.comm
    );
    Ok(())
}
