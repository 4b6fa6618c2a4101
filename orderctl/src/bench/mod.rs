//! `orderctl bench` (run by `scripts/bench.sh`, which starts the stack in release mode): in
//! one run on one machine, the raw limits and the pipeline side by side, with ratios.
//!
//! (a) the broker: messages of an event's size through one produce → consume hop, with the
//!     relay's producer and the inbox's consumer settings; (b) the database: one-row commits on
//!     as many connections as a service's pool; (c) a bare tonic unary call (health Check);
//! then (d) the pipeline's highest sustainable rate (placed → shipped p99 under 1 s and
//! everything placed shipped: no growing lag), (e) placed → shipped at 100 orders/s, (f)
//! GetOrder and PlaceOrder rates. CPU and resident memory of each service process per step.
//!
//! `raw` measures (a) to (c), `procs` the processes' CPU and memory; the pipeline steps drive
//! `orderctl load` (`crate::load`).

mod pgstats;
mod procs;
mod raw;

pub use procs::sample_comm;

use crate::load::{self, LoadArgs};
use crate::ops::Broker;
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use orderflow_proto::client::Authorized;
use orderflow_proto::events::v1::EventEnvelope;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use procs::watched;
use raw::{bare_grpc, broker, database, get_order_rate};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A scratch database for the raw commit rate (its `bench` table is created and dropped).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: String,
    /// The service processes to watch, as name=pid (repeatable).
    #[arg(long = "pid", value_parser = parse_pid)]
    pids: Vec<(String, u32)>,
    /// Also watch every process with this command name, summed (repeatable: tansu, postgres).
    #[arg(long = "comm")]
    comms: Vec<String>,
    /// Seconds per measurement step ("sustained" is judged over a whole step).
    #[arg(long, default_value_t = 60)]
    step_secs: u64,
    /// Seconds the idle stack is watched before the first step.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Pipeline rates tried, in orders/s, until one is not sustained.
    #[arg(long, value_delimiter = ',', default_value = "100,200,300,400,600,800,1000")]
    rates: Vec<f64>,
    /// Connections for the raw commit rate (a service's pool size).
    #[arg(long, default_value_t = 10)]
    connections: u32,
    /// The services' consumer fetch wait, used for the raw broker hop too.
    #[arg(long, env = "KAFKA_FETCH_WAIT_MS", default_value_t = 10)]
    fetch_wait_ms: u64,
    /// Where the load steps write their reports and charts.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
}

fn parse_pid(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text.split_once('=').ok_or("expected name=pid")?;
    Ok((name.to_owned(), pid.parse().map_err(|_| format!("{pid:?} is not a pid"))?))
}

/// Per hop (cause type → event type): p50 and p99 of the time between an event and the one
/// that caused it, over the events since `since`.
async fn hops(broker: &Broker, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let names = broker.topics().all();
    let events: Vec<_> = orderflow_kit::events::read_to_end(&broker.brokers, &names)
        .await?
        .into_iter()
        .filter_map(|r| r.envelope.ok())
        .filter(|e| !e.order_id.is_empty())
        .collect();
    Ok(hop_latencies(&events, since))
}

/// [`hops`] over the order events read.
fn hop_latencies(events: &[EventEnvelope], since: chrono::DateTime<chrono::Utc>) -> Vec<(String, f64, f64)> {
    let by_id: HashMap<&str, _> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut per_hop: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for event in events {
        let at = orderflow_kit::envelope::occurred_at(event);
        let Some(cause) = by_id.get(event.causation_id.as_str()) else { continue };
        if at < since {
            continue;
        }
        let took = (at - orderflow_kit::envelope::occurred_at(cause)).num_microseconds().unwrap_or(0).max(1);
        let hop = format!("{} -> {}", cause.event_type, event.event_type);
        let histogram = per_hop.entry(hop).or_insert_with(load::histogram);
        let _ = histogram.record(u64::try_from(took).unwrap_or(1));
    }
    per_hop.into_iter().map(|(hop, h)| (hop, ms(&h, 0.5), ms(&h, 0.99))).collect()
}

/// The running stack the pipeline steps drive: the broker and the clients that place orders.
struct Stack<'a> {
    broker: &'a Broker,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
    /// Any database of the stack's PostgreSQL: its statistics are read through it.
    stats: sqlx::PgPool,
}

impl Stack<'_> {
    /// One load run against the stack.
    async fn run(&self, load: &LoadArgs) -> anyhow::Result<load::Measured> {
        load::run(load, self.broker, self.orders.clone(), self.inventory.clone()).await
    }
}

/// Waits (up to a minute) until the pipeline has worked off what earlier steps left: one
/// order placed now has shipped.
async fn settle(args: &BenchArgs, stack: &Stack<'_>) {
    let mut probe = load_args(args, "settle", Some(1.0), None);
    probe.count = Some(1);
    probe.drain = Duration::from_secs(60);
    if let Err(error) = stack.run(&probe).await {
        println!("      (the pipeline did not settle: {error:#})");
    }
}

/// One load step, watched: CPU per process (in % and per order), PostgreSQL's CPU per order,
/// and per database the statements, commits and rows per order, from PostgreSQL's statistics.
#[allow(clippy::cast_precision_loss)]
async fn measure(args: &BenchArgs, load: &LoadArgs, stack: &Stack<'_>) -> anyhow::Result<load::Measured> {
    let before = pgstats::snapshot(&stack.stats).await;
    let (measured, usage) = watched(args, stack.run(load)).await;
    let measured = measured?;
    usage.print_percent();
    usage.print_per_order(measured.placed);
    if let Some(postgres) = usage.cpu_of("postgres").filter(|_| measured.placed > 0) {
        println!("      PostgreSQL CPU per order: {:.3} ms", postgres * 1000.0 / measured.placed as f64);
    }
    match (before, pgstats::snapshot(&stack.stats).await) {
        (Ok(before), Ok(after)) => {
            for line in pgstats::per_order(&before, &after, measured.placed) {
                println!("      per order, {line}");
            }
        }
        (Err(error), _) | (_, Err(error)) => println!("      (no database statistics: {error:#})"),
    }
    load::write_report(load, &measured)?;
    Ok(measured)
}

fn load_args(args: &BenchArgs, name: &str, rate: Option<f64>, concurrency: Option<usize>) -> LoadArgs {
    LoadArgs {
        rate,
        concurrency,
        duration: Duration::from_secs(args.step_secs),
        count: None,
        drain: Duration::from_secs(5),
        sku: "BENCH-1".into(),
        report: args.out.join(format!("{name}.json")),
        svg: args.out.join(format!("{name}.svg")),
        quiet: true,
    }
}

#[allow(clippy::cast_precision_loss)]
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Events one order puts on the topics at a sustained rate: OrderPlaced, PaymentAuthorized,
/// StockReserved, Picked, Sorted, Packed, ShipmentRequested, Shipped and PaymentCaptured.
const EVENTS_PER_ORDER: f64 = 9.0;

pub async fn bench(
    args: &BenchArgs,
    broker_args: &Broker,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let stats = orderflow_kit::db::pool(&args.database_url, 2)?;
    let stack = Stack { broker: broker_args, orders, inventory, stats };
    let step = args.step_secs;
    println!("== the idle stack ({} s, no orders)", args.idle_secs);
    let ((), idle) = watched(args, tokio::time::sleep(Duration::from_secs(args.idle_secs))).await;
    idle.print_percent();
    let total: f64 = idle.processes.iter().filter(|(name, _, _)| name != "load generator").map(|(_, cpu, _)| cpu).sum();
    println!("  idle stack CPU: {:.1}% of one core", total / idle.seconds.max(0.001) * 100.0);
    println!("== raw limits (same machine, same client settings)");
    let (broker_rate, hop) = broker(broker_args, 50_000, 400, Duration::from_millis(args.fetch_wait_ms))
        .await
        .context("broker benchmark")?;
    println!(
        "  (a) broker produce->consume, 400-byte messages: {broker_rate:.0} msg/s; lone-message hop p50 {:.2} ms, p99 {:.2} ms",
        ms(&hop, 0.5),
        ms(&hop, 0.99)
    );
    let commit_rate = database(&args.database_url, args.connections, step).await.context("database benchmark")?;
    println!("  (b) PostgreSQL one-row commits on {} connections: {commit_rate:.0} commits/s", args.connections);
    let grpc_rate = bare_grpc(step).await.context("gRPC benchmark")?;
    println!("  (c) bare tonic unary call (health Check), 32 in flight: {grpc_rate:.0} calls/s");

    println!("== the pipeline");
    match pgstats::leases(&stack.stats).await {
        Ok(leases) => println!(
            "  partition numbers per instance (consumer leases; each stands for that partition of every topic): {leases}"
        ),
        Err(error) => println!("  (partition leases unknown: {error:#})"),
    }
    let mut sustained: Option<(f64, load::Measured)> = None;
    let mut at_100 = None;
    for rate in &args.rates {
        let load = load_args(args, &format!("rate-{rate}"), Some(*rate), None);
        let step_started = chrono::Utc::now();
        let measured = measure(args, &load, &stack).await?;
        let all_shipped = measured.shipped == measured.placed && measured.errors.is_empty();
        let p99 = ms(&measured.to_ship, 0.99);
        let ok = all_shipped && p99 < 1000.0;
        println!(
            "  (d) {rate:>6.0} orders/s: placed {}, shipped {}, errors {:?}, placed->shipped p50 {:.1} ms p99 {:.1} ms, PlaceOrder p99 {:.1} ms: {}",
            measured.placed,
            measured.shipped,
            measured.errors,
            ms(&measured.to_ship, 0.5),
            p99,
            ms(&measured.place, 0.99),
            if ok { "sustained" } else { "NOT sustained" }
        );
        if (*rate - 100.0).abs() < f64::EPSILON {
            at_100 = Some((ms(&measured.to_ship, 0.5), ms(&measured.to_ship, 0.99)));
            for (hop, p50, p99) in hops(broker_args, step_started).await? {
                println!("      hop {hop:<36} p50 {p50:>8.1} ms  p99 {p99:>8.1} ms");
            }
        }
        if !ok {
            break;
        }
        sustained = Some((*rate, measured));
    }
    let max_rate = sustained.as_ref().map_or(0.0, |(rate, _)| *rate);
    settle(args, &stack).await;
    let at_500 = measure(args, &load_args(args, "place-order-500", Some(500.0), None), &stack).await?;
    println!(
        "  (f) PlaceOrder at 500 calls/s (open loop): p50 {:.1} ms, p99 {:.1} ms, errors {:?}",
        ms(&at_500.place, 0.5),
        ms(&at_500.place, 0.99),
        at_500.errors
    );
    let place = measure(args, &load_args(args, "place-order", None, Some(32)), &stack).await;
    settle(args, &stack).await;
    let place = place?;
    let place_rate = place.throughput(Duration::from_secs(step));
    let order_id = stack
        .orders
        .clone()
        .list_orders(orderflow_proto::order::v1::ListOrdersRequest {
            customer_id: "load-1".into(),
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .orders
        .first()
        .map(|o| o.order_id.clone())
        .context("no order to read back")?;
    let get_rate = get_order_rate(&stack.orders, &order_id, step).await?;
    println!(
        "  (f) PlaceOrder, 32 in flight: {place_rate:.0} calls/s (p99 {:.1} ms); GetOrder, 32 in flight: {get_rate:.0} calls/s",
        ms(&place.place, 0.99)
    );

    println!("== summary");
    println!("  (d) highest sustained rate: {max_rate:.0} orders/s = {:.0} events/s", max_rate * EVENTS_PER_ORDER);
    if let Some((p50, p99)) = at_100 {
        println!("  (e) placed->shipped at 100 orders/s: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
    println!("  pipeline events/s / broker msg/s (a): {:.3}", max_rate * EVENTS_PER_ORDER / broker_rate.max(1.0));
    println!("  PlaceOrder calls/s / bare gRPC calls/s (c): {:.3}", place_rate / grpc_rate.max(1.0));
    println!("  GetOrder calls/s / bare gRPC calls/s (c): {:.3}", get_rate / grpc_rate.max(1.0));
    // Headroom, not a count: the commits each order made are the per-step "per order" lines.
    println!(
        "  raw commit capacity (b) per sustained order/s: {:.1} (headroom; commits made per order are per step above)",
        commit_rate / max_rate.max(1.0)
    );
    println!("  reports and charts per step: {}/", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_name_equals_pid() {
        assert_eq!(parse_pid("order-service=42"), Ok(("order-service".into(), 42)));
        assert_eq!(parse_pid("order-service"), Err("expected name=pid".into()));
        assert_eq!(parse_pid("a=x"), Err("\"x\" is not a pid".into()));
    }

    #[test]
    fn a_step_is_a_load_run_of_the_step_length() {
        let args = BenchArgs {
            database_url: String::new(),
            pids: vec![],
            comms: vec![],
            step_secs: 8,
            idle_secs: 1,
            rates: vec![100.0],
            connections: 10,
            fetch_wait_ms: 10,
            out: "bench".into(),
        };
        let load = load_args(&args, "rate-100", Some(100.0), None);
        assert_eq!(
            (load.duration, load.drain, load.sku.as_str()),
            (Duration::from_secs(8), Duration::from_secs(5), "BENCH-1")
        );
        assert_eq!((load.report, load.svg), ("bench/rate-100.json".into(), "bench/rate-100.svg".into()));
        assert!(load.quiet);
    }

    #[test]
    fn hops_are_measured_from_cause_to_effect_since_the_step_began() {
        let event = |id: &str, event_type: &str, cause: &str, millis: i64| EventEnvelope {
            event_id: id.into(),
            event_type: event_type.into(),
            order_id: "o1".into(),
            causation_id: cause.into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: millis / 1000,
                nanos: (millis % 1000) as i32 * 1_000_000,
            }),
            ..Default::default()
        };
        let events = [
            event("a", "OrderPlaced", "", 1_000),
            event("b", "StockReserved", "a", 1_020),
            event("c", "Picked", "b", 1_050),
            event("old", "Picked", "b", 900),
        ];
        let since = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        let hops = hop_latencies(&events, since);
        let names: Vec<_> = hops.iter().map(|(hop, _, _)| hop.as_str()).collect();
        assert_eq!(names, ["OrderPlaced -> StockReserved", "StockReserved -> Picked"]);
        assert!((hops[0].1 - 20.0).abs() < 0.1, "{hops:?}");
        assert!((hops[1].2 - 30.0).abs() < 0.1, "{hops:?}");
    }
}
