//! `orderctl bench` (run by `scripts/bench.sh`, which starts the stack in release mode): in
//! one run on one machine, the raw limits and the pipeline side by side, with ratios.
//!
//! (a) the broker: messages of an event's size through one produce → consume hop, with the
//!     relay's producer and the inbox's consumer settings; (b) the database: one-row commits on
//!     as many connections as a service's pool; (c) a bare tonic unary call (health Check);
//! then (d) the pipeline's highest sustainable rate (placed → shipped p99 under 1 s and
//! everything placed shipped: no growing lag), (e) placed → shipped at 100 orders/s, (f)
//! GetOrder and PlaceOrder rates. CPU and resident memory of each service process per step.

use crate::load::{self, LoadArgs};
use crate::ops::Broker;
use anyhow::Context;
use clap::Args;
use futures::future::join_all;
use hdrhistogram::Histogram;
use orderflow_kit::outbox;
use orderflow_proto::client::Authorized;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::order::v1::GetOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

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
    /// Seconds per measurement step.
    #[arg(long, default_value_t = 8)]
    step_secs: u64,
    /// Pipeline rates tried, in orders/s, until one is not sustained.
    #[arg(long, value_delimiter = ',', default_value = "50,100,150,200,300,400,600,800,1000")]
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

/// CPU seconds and resident MB of a process, from /proc.
fn sample(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks / 100.0, rss_kb / 1024.0))
}

/// CPU seconds of every process named `comm`, summed.
pub fn sample_comm(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .filter_map(|pid| sample(pid).map(|(cpu, _)| cpu))
        .sum()
}

/// Runs `work` while watching the processes; prints CPU % (of one core, over the wall time
/// of `work`) and RSS per process.
async fn watched<T>(args: &BenchArgs, work: impl Future<Output = T>) -> T {
    let before: Vec<_> = args.pids.iter().map(|(_, pid)| sample(*pid)).collect();
    let before_comms: Vec<f64> = args.comms.iter().map(|c| sample_comm(c)).collect();
    let started = Instant::now();
    let result = work.await;
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let mut usage: Vec<String> = args
        .pids
        .iter()
        .zip(before)
        .filter_map(|((name, pid), before)| {
            let (cpu0, _) = before?;
            let (cpu1, rss) = sample(*pid)?;
            Some(format!("{name} {:.0}% {:.0} MB", (cpu1 - cpu0) / seconds * 100.0, rss))
        })
        .collect();
    for (comm, cpu0) in args.comms.iter().zip(before_comms) {
        usage.push(format!("{comm} {:.0}%", (sample_comm(comm) - cpu0) / seconds * 100.0));
    }
    if !usage.is_empty() {
        println!("      cpu (of one core) / rss: {}", usage.join(", "));
    }
    result
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
    let by_id: std::collections::HashMap<&str, _> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut per_hop: std::collections::BTreeMap<String, Histogram<u64>> = std::collections::BTreeMap::new();
    for event in &events {
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
    Ok(per_hop.into_iter().map(|(hop, h)| (hop, ms(&h, 0.5), ms(&h, 0.99))).collect())
}

#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(0.001)
}

/// (a) Messages of `size` bytes through produce → consume, as fast as they go; and the hop
/// latency of lone messages.
async fn broker(
    broker: &Broker,
    count: u64,
    size: usize,
    fetch_wait: Duration,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let topic = format!("{}.bench.{}", broker.namespace, uuid::Uuid::new_v4().simple());
    orderflow_kit::topics::ensure(&broker.brokers, std::slice::from_ref(&topic), 6, 1).await?;
    let producer: FutureProducer = outbox::producer_config(&broker.brokers, Duration::from_millis(1)).create()?;
    let consumer: StreamConsumer =
        orderflow_kit::inbox::consumer_config(&broker.brokers, &format!("{topic}.reader"), fetch_wait).create()?;
    consumer.subscribe(&[&topic])?;
    let payload = vec![b'x'; size];
    // Let the consumer join before timing.
    let warm = producer.send(FutureRecord::to(&topic).key("warm").payload(&payload), Duration::from_secs(5));
    warm.await.map_err(|(e, _)| e)?;
    tokio::time::timeout(Duration::from_secs(30), consumer.stream().next()).await?.context("no warm-up message")??;

    let mut hop = load::histogram();
    for i in 0..200 {
        let started = Instant::now();
        let key = format!("k{i}");
        producer
            .send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)?;
        tokio::time::timeout(Duration::from_secs(10), consumer.stream().next()).await?.context("lost a message")??;
        let _ = hop.record(load::micros(started.elapsed()).max(1));
    }

    let started = Instant::now();
    let receiving = async {
        let mut stream = consumer.stream();
        let mut received = 0;
        while received < count {
            let message =
                tokio::time::timeout(Duration::from_secs(30), stream.next()).await?.context("stream ended")??;
            received += u64::from(message.payload().is_some());
        }
        anyhow::Ok(())
    };
    let sending = async {
        let mut deliveries = Vec::new();
        for i in 0..count {
            let key = format!("order-{}", i % 997);
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in deliveries {
            delivery.await?.map_err(|(e, _)| e)?;
        }
        anyhow::Ok(())
    };
    let (sent, received) = tokio::join!(sending, receiving);
    sent?;
    received?;
    Ok((per_second(count, started.elapsed()), hop))
}

/// (b) One-row commits on `connections` connections for `seconds`.
async fn database(url: &str, connections: u32, seconds: u64) -> anyhow::Result<f64> {
    let pool = orderflow_kit::db::pool(url, connections)?;
    sqlx::query("DROP TABLE IF EXISTS bench").execute(&pool).await?;
    sqlx::query("CREATE TABLE bench (id bigserial PRIMARY KEY, payload bytea NOT NULL)").execute(&pool).await?;
    let payload = vec![0u8; 400];
    let rate = closed_loop(usize::try_from(connections)?, seconds, || {
        let (pool, payload) = (pool.clone(), payload.clone());
        async move {
            sqlx::query("INSERT INTO bench (payload) VALUES ($1)").bind(payload).execute(&pool).await?;
            Ok(())
        }
    })
    .await?;
    sqlx::query("DROP TABLE bench").execute(&pool).await?;
    Ok(rate)
}

/// (c) A bare tonic unary call: health Check on an in-process server, 32 calls in flight.
async fn bare_grpc(seconds: u64) -> anyhow::Result<f64> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let client = tonic_health::pb::health_client::HealthClient::new(channel);
    let rate = closed_loop(32, seconds, || {
        let mut client = client.clone();
        async move {
            client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await?;
            Ok(())
        }
    })
    .await;
    server.abort();
    rate
}

/// GetOrder, 32 calls in flight, for `seconds`.
async fn get_order_rate(orders: &OrderServiceClient<Authorized>, order_id: &str, seconds: u64) -> anyhow::Result<f64> {
    closed_loop(32, seconds, || {
        let mut orders = orders.clone();
        async move {
            orders.get_order(GetOrderRequest { order_id: order_id.to_owned() }).await?;
            Ok(())
        }
    })
    .await
}

/// Calls per second that `workers` loops make for `seconds`, each awaiting its call before
/// making the next.
async fn closed_loop<F, Fut>(workers: usize, seconds: u64, call: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let call = &call;
    let loops = (0..workers).map(|_| async move {
        let mut calls = 0u64;
        while Instant::now() < end {
            call().await?;
            calls += 1;
        }
        anyhow::Ok(calls)
    });
    let calls = join_all(loops).await.into_iter().sum::<anyhow::Result<u64>>()?;
    Ok(per_second(calls, started.elapsed()))
}

/// Waits (up to a minute) until the pipeline has worked off what earlier steps left: one
/// order placed now has shipped.
async fn settle(
    args: &BenchArgs,
    broker: &Broker,
    orders: &OrderServiceClient<Authorized>,
    inventory: &InventoryServiceClient<Authorized>,
) {
    let mut probe = load_args(args, "settle", Some(1.0), None);
    probe.count = Some(1);
    probe.drain = Duration::from_secs(60);
    if let Err(error) = load::run(&probe, broker, orders.clone(), inventory.clone()).await {
        println!("      (the pipeline did not settle: {error:#})");
    }
}

/// One load step, watched.
async fn measure(
    args: &BenchArgs,
    load: &LoadArgs,
    broker: &Broker,
    orders: &OrderServiceClient<Authorized>,
    inventory: &InventoryServiceClient<Authorized>,
) -> anyhow::Result<load::Measured> {
    let measured = watched(args, load::run(load, broker, orders.clone(), inventory.clone())).await?;
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

/// Events one order puts on the topics on its way to SHIPPED.
const EVENTS_PER_ORDER: f64 = 7.0;

pub async fn bench(
    args: &BenchArgs,
    broker_args: &Broker,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let step = args.step_secs;
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
    let mut sustained: Option<(f64, load::Measured)> = None;
    let mut at_100 = None;
    for rate in &args.rates {
        let load = load_args(args, &format!("rate-{rate}"), Some(*rate), None);
        let step_started = chrono::Utc::now();
        let measured = measure(args, &load, broker_args, &orders, &inventory).await?;
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
    settle(args, broker_args, &orders, &inventory).await;
    let at_500 =
        measure(args, &load_args(args, "place-order-500", Some(500.0), None), broker_args, &orders, &inventory).await?;
    println!(
        "  (f) PlaceOrder at 500 calls/s (open loop): p50 {:.1} ms, p99 {:.1} ms, errors {:?}",
        ms(&at_500.place, 0.5),
        ms(&at_500.place, 0.99),
        at_500.errors
    );
    let place = measure(args, &load_args(args, "place-order", None, Some(32)), broker_args, &orders, &inventory).await;
    settle(args, broker_args, &orders, &inventory).await;
    let place = place?;
    let place_rate = place.throughput(Duration::from_secs(step));
    let order_id = orders
        .clone()
        .list_orders(orderflow_proto::order::v1::ListOrdersRequest {
            customer_id: "load-1".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .orders
        .first()
        .map(|o| o.order_id.clone())
        .context("no order to read back")?;
    let get_rate = get_order_rate(&orders, &order_id, step).await?;
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
    println!("  database commits/s (b) per order/s sustained: {:.1}", commit_rate / max_rate.max(1.0));
    println!("  reports and charts per step: {}/", args.out.display());
    Ok(())
}
