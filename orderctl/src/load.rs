//! `orderctl load`: drives the running stack with PlaceOrder calls, at a fixed rate (open loop:
//! each call's latency counts from the moment it was due, so a slow system cannot hide its
//! latency behind fewer calls: coordinated omission corrected) or at a fixed concurrency, for a
//! duration or a count. It measures PlaceOrder latency and, per order, placed → shipped (from
//! the events' own timestamps: the OrderPlaced time in the answer, the Shipped event read from
//! the shipping topic), and writes a JSON report and an SVG chart over time.

use crate::ops::Broker;
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_kit::envelope;
use orderflow_kit::events::Reader;
use orderflow_kit::topics::Topic;
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::{Address, Customer, OrderLine, ServiceLevel};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::PlaceOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use plotters::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Semaphore, mpsc};

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Orders per second, open loop (the default: 100/s).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop instead: keep this many PlaceOrder calls in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to place orders, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many orders (whichever comes first with --duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// After the last order, wait at most this long for the rest to ship.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub drain: Duration,
    /// The SKU ordered (created and stocked first).
    #[arg(long, default_value = "LOAD-1")]
    pub sku: String,
    /// JSON report.
    #[arg(long, default_value = "load-report.json")]
    pub report: PathBuf,
    /// Chart of throughput and latency over time.
    #[arg(long, default_value = "load-report.svg")]
    pub svg: PathBuf,
    /// No progress bar (for scripts).
    #[arg(long)]
    pub quiet: bool,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len()));
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Latency histograms in microseconds, up to one minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// One finished PlaceOrder call.
struct Call {
    /// Seconds since the start at which the call was due.
    second: usize,
    latency: Duration,
    outcome: Result<(String, SystemTime), tonic::Code>,
}

/// What the run measured.
pub struct Measured {
    pub elapsed: Duration,
    pub placed: u64,
    pub shipped: u64,
    pub errors: BTreeMap<String, u64>,
    pub place: Histogram<u64>,
    pub to_ship: Histogram<u64>,
    /// Per second: (placed, shipped, PlaceOrder p99 µs, placed → shipped p99 µs).
    pub timeline: Vec<(u64, u64, u64, u64)>,
}

impl Measured {
    /// Orders placed per second over the placing time.
    pub fn throughput(&self, placing: Duration) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let placed = self.placed as f64;
        placed / placing.as_secs_f64().max(f64::EPSILON)
    }
}

fn request(customer: usize, sku: &str) -> PlaceOrderRequest {
    let lines = vec![OrderLine { sku: sku.to_owned(), quantity: 1 }];
    scripted_order(format!("load-{}", customer % 1000), "Load Test", lines)
}

/// A standard order of `lines` for a scripted customer in Berlin (load and chaos runs).
pub fn scripted_order(customer_id: String, name: &str, lines: Vec<OrderLine>) -> PlaceOrderRequest {
    PlaceOrderRequest {
        idempotency_key: String::new(),
        customer: Some(Customer { id: customer_id, name: name.into(), email: "scripted@example.com".into() }),
        lines,
        shipping_address: Some(Address {
            name: name.into(),
            line1: "1 Benchmark Way".into(),
            line2: String::new(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        }),
        payment_reference: "pay-scripted".into(),
        service_level: ServiceLevel::Standard as i32,
    }
}

/// Creates the SKU with stock for every order of the run.
pub async fn stock(inventory: &mut InventoryServiceClient<Authorized>, sku: &str, orders: u64) -> anyhow::Result<()> {
    let product = UpsertProductRequest {
        sku: sku.to_owned(),
        name: "Load test item".into(),
        bin_location: "L-01".into(),
        weight_grams: 100,
        low_stock_threshold: 0,
    };
    inventory.upsert_product(product).await.context("creating the load SKU")?;
    let mut left = i64::try_from(orders).unwrap_or(i64::MAX);
    while left > 0 {
        let quantity = left.min(1_000_000);
        inventory.restock(RestockRequest { sku: sku.to_owned(), quantity }).await.context("stocking the load SKU")?;
        left -= quantity;
    }
    Ok(())
}

/// Reads Shipped events from now on: (order id, when it shipped).
async fn follow_shipped(broker: &Broker) -> anyhow::Result<mpsc::UnboundedReceiver<(String, SystemTime)>> {
    let topics = [broker.topics().name(Topic::Shipping)];
    // A busy broker may be slow to answer the metadata request: try a few times.
    let mut attempt = 0;
    let reader = loop {
        match Reader::new(&broker.brokers, &topics, false) {
            Ok(reader) => break reader,
            Err(error) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(%error, attempt, "shipping topic not readable yet");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read the shipping topic from {}", broker.brokers));
            }
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(read) = reader.next().await {
            if let Ok(event) = read.envelope
                && matches!(event.payload, Some(Payload::Shipped(_)))
                && tx.send((event.order_id.clone(), SystemTime::from(envelope::occurred_at(&event)))).is_err()
            {
                return;
            }
        }
    });
    Ok(rx)
}

/// Runs the load against `orders`; `inventory` stocks the SKU first.
pub async fn run(
    args: &LoadArgs,
    broker: &Broker,
    orders: OrderServiceClient<Authorized>,
    mut inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<Measured> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let expected = args.count.unwrap_or_else(|| match args.concurrency {
        Some(_) => 1_000_000,
        None => (args.rate.unwrap_or(100.0) * args.duration.as_secs_f64()).ceil() as u64 + 1,
    });
    stock(&mut inventory, &args.sku, expected).await?;
    let mut shipped_events = follow_shipped(broker).await?;
    // Let the reader take its partitions before the first order can ship.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let progress = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(expected) };
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} placed, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (calls_tx, mut calls) = mpsc::unbounded_channel::<Call>();
    let started = Instant::now();
    let placing = {
        let (args, calls_tx) = (args.clone(), calls_tx.clone());
        tokio::spawn(async move { place_all(&args, orders, calls_tx, expected, started).await })
    };
    drop(calls_tx);

    let mut measured = Measured {
        elapsed: Duration::ZERO,
        placed: 0,
        shipped: 0,
        errors: BTreeMap::new(),
        place: histogram(),
        to_ship: histogram(),
        timeline: Vec::new(),
    };
    let mut per_second: Vec<Second> = Vec::new();
    let mut awaiting: HashMap<String, SystemTime> = HashMap::new();
    let mut early: HashMap<String, SystemTime> = HashMap::new();
    let mut calls_open = true;
    let mut drain_until: Option<Instant> = None;
    loop {
        if !calls_open {
            let deadline = *drain_until.get_or_insert_with(|| Instant::now() + args.drain);
            if awaiting.is_empty() || Instant::now() >= deadline {
                break;
            }
        }
        tokio::select! {
            call = calls.recv(), if calls_open => match call {
                Some(call) => {
                    grow(&mut per_second, call.second);
                    let _ = measured.place.record(micros(call.latency).max(1));
                    let _ = per_second[call.second].2.record(micros(call.latency).max(1));
                    match call.outcome {
                        Ok((order_id, placed_at)) => {
                            measured.placed += 1;
                            per_second[call.second].0 += 1;
                            match early.remove(&order_id) {
                                Some(shipped_at) => record_shipped(&mut measured, &mut per_second, started, placed_at, shipped_at),
                                None => { awaiting.insert(order_id, placed_at); }
                            }
                        }
                        Err(code) => *measured.errors.entry(format!("{code:?}")).or_default() += 1,
                    }
                    progress.inc(1);
                    progress.set_message(format!("{} shipped, {} errors", measured.shipped, measured.errors.values().sum::<u64>()));
                }
                None => calls_open = false,
            },
            shipped = shipped_events.recv() => match shipped {
                Some((order_id, shipped_at)) => match awaiting.remove(&order_id) {
                    Some(placed_at) => {
                        record_shipped(&mut measured, &mut per_second, started, placed_at, shipped_at);
                    }
                    None => { early.insert(order_id, shipped_at); }
                },
                None => anyhow::bail!("the shipping topic reader stopped"),
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    placing.await??;
    progress.finish_and_clear();
    measured.elapsed = started.elapsed();
    measured.timeline = per_second
        .iter()
        .map(|(placed, shipped, place, ship)| {
            (*placed, *shipped, place.value_at_quantile(0.99), ship.value_at_quantile(0.99))
        })
        .collect();
    Ok(measured)
}

/// One second of the run: placed, shipped, PlaceOrder latencies, placed → shipped latencies.
type Second = (u64, u64, Histogram<u64>, Histogram<u64>);

fn grow(per_second: &mut Vec<Second>, second: usize) {
    while per_second.len() <= second {
        per_second.push((0, 0, histogram(), histogram()));
    }
}

fn record_shipped(
    measured: &mut Measured,
    per_second: &mut Vec<Second>,
    started: Instant,
    placed_at: SystemTime,
    shipped_at: SystemTime,
) {
    let latency = shipped_at.duration_since(placed_at).unwrap_or_default();
    measured.shipped += 1;
    let _ = measured.to_ship.record(micros(latency).max(1));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let second = started.elapsed().as_secs() as usize;
    grow(per_second, second);
    per_second[second].1 += 1;
    let _ = per_second[second].3.record(micros(latency).max(1));
}

/// Places the orders, open or closed loop, sending each finished call to `calls`.
async fn place_all(
    args: &LoadArgs,
    orders: OrderServiceClient<Authorized>,
    calls: mpsc::UnboundedSender<Call>,
    count: u64,
    started: Instant,
) -> anyhow::Result<()> {
    let end = started + args.duration;
    match args.concurrency {
        Some(concurrency) => {
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut workers = Vec::new();
            for _ in 0..concurrency.max(1) {
                let (mut orders, calls, next, sku) =
                    (orders.clone(), calls.clone(), Arc::clone(&next), args.sku.clone());
                workers.push(tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if n >= count || Instant::now() >= end {
                            return;
                        }
                        let due = Instant::now();
                        let outcome = place(&mut orders, n, &sku).await;
                        send(&calls, started, due, outcome);
                    }
                }));
            }
            for worker in workers {
                worker.await?;
            }
        }
        None => {
            let rate = args.rate.unwrap_or(100.0).max(0.001);
            // At most this many calls in flight; beyond it the system is hopelessly behind.
            let in_flight = Arc::new(Semaphore::new(10_000));
            let mut n = 0;
            while n < count {
                let due = started + Duration::from_secs_f64(n as f64 / rate);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let permit = Arc::clone(&in_flight).acquire_owned().await?;
                let (mut orders, calls, sku) = (orders.clone(), calls.clone(), args.sku.clone());
                tokio::spawn(async move {
                    let outcome = place(&mut orders, n, &sku).await;
                    send(&calls, started, due, outcome);
                    drop(permit);
                });
                n += 1;
            }
            // Wait for the calls still in flight.
            let _all = in_flight.acquire_many(10_000).await?;
        }
    }
    Ok(())
}

async fn place(
    orders: &mut OrderServiceClient<Authorized>,
    n: u64,
    sku: &str,
) -> Result<(String, SystemTime), tonic::Code> {
    #[allow(clippy::cast_possible_truncation)]
    let answer = orders.place_order(request(n as usize, sku)).await.map_err(|s| s.code())?;
    let order = answer.into_inner().order.unwrap_or_default();
    let placed_at = order
        .timeline
        .first()
        .and_then(|e| e.occurred_at)
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    Ok((order.order_id, placed_at))
}

fn send(
    calls: &mpsc::UnboundedSender<Call>,
    started: Instant,
    due: Instant,
    outcome: Result<(String, SystemTime), tonic::Code>,
) {
    #[allow(clippy::cast_possible_truncation)]
    let second = due.duration_since(started).as_secs() as usize;
    let _ = calls.send(Call { second, latency: due.elapsed(), outcome });
}

/// `p50 … max` of a histogram in milliseconds, as JSON.
pub fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    #[allow(clippy::cast_precision_loss)]
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p99_9_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// One line of percentiles for people.
pub fn summary(name: &str, h: &Histogram<u64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    #[allow(clippy::cast_precision_loss)]
    let max = h.max() as f64 / 1000.0;
    format!(
        "{name:<22} n={:<7} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        max
    )
}

/// `orderctl load`: runs, prints the summary, writes the JSON report and the chart.
pub async fn load(
    args: &LoadArgs,
    broker: &Broker,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    let measured = run(args, broker, orders, inventory).await?;
    let placing = args.duration.min(measured.elapsed);
    println!(
        "placed {} orders in {:.1} s ({:.1}/s), {} shipped, errors {:?}",
        measured.placed,
        placing.as_secs_f64(),
        measured.throughput(placing),
        measured.shipped,
        measured.errors
    );
    println!("{}", summary("PlaceOrder", &measured.place));
    println!("{}", summary("placed -> shipped", &measured.to_ship));
    write_report(args, &measured)?;
    println!("report: {}, chart: {}", args.report.display(), args.svg.display());
    Ok(())
}

/// Writes the JSON report and the chart of a run.
pub fn write_report(args: &LoadArgs, measured: &Measured) -> anyhow::Result<()> {
    let placing = args.duration.min(measured.elapsed);
    let report = json!({
        "mode": match args.concurrency { Some(c) => json!({"concurrency": c}), None => json!({"rate_per_s": args.rate.unwrap_or(100.0)}) },
        "duration_s": args.duration.as_secs_f64(),
        "placed": measured.placed,
        "shipped": measured.shipped,
        "throughput_per_s": measured.throughput(placing),
        "errors": measured.errors,
        "place_order": percentiles(&measured.place),
        "placed_to_shipped": percentiles(&measured.to_ship),
        "per_second": measured.timeline.iter().enumerate().map(|(s, (placed, shipped, p99, ship_p99))| json!({
            "second": s, "placed": placed, "shipped": shipped,
            "place_order_p99_ms": *p99 as f64 / 1000.0, "placed_to_shipped_p99_ms": *ship_p99 as f64 / 1000.0,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(&args.report, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.report.display()))?;
    chart(&args.svg, &measured.timeline).with_context(|| format!("drawing {}", args.svg.display()))?;
    Ok(())
}

/// One line of a chart: its name, colour and value per second.
type Line<'a> = (&'a str, RGBColor, Vec<f64>);

/// Throughput (placed and shipped per second) above, p99 latencies per second below.
#[allow(clippy::cast_precision_loss)]
fn chart(path: &PathBuf, timeline: &[(u64, u64, u64, u64)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let per_second = |pick: fn(&(u64, u64, u64, u64)) -> u64, scale: f64| {
        timeline.iter().map(|t| pick(t) as f64 / scale).collect::<Vec<_>>()
    };
    panel(
        &top,
        "throughput (orders/s)",
        vec![("placed", BLUE, per_second(|t| t.0, 1.0)), ("shipped", GREEN, per_second(|t| t.1, 1.0))],
    )?;
    panel(
        &bottom,
        "p99 latency per second (ms)",
        vec![
            ("PlaceOrder", RED, per_second(|t| t.2, 1000.0)),
            ("placed -> shipped", MAGENTA, per_second(|t| t.3, 1000.0)),
        ],
    )?;
    root.present()?;
    Ok(())
}

/// One chart of `lines` over the seconds of the run, with a legend.
#[allow(clippy::cast_precision_loss)]
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    lines: Vec<Line<'_>>,
) -> anyhow::Result<()> {
    let seconds = lines.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0).max(1) as f64;
    let top = lines.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(1.0_f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..top * 1.1)?;
    chart.configure_mesh().x_desc("second").draw()?;
    for (name, color, values) in lines {
        let points = values.into_iter().enumerate().map(|(s, v)| (s as f64, v));
        chart
            .draw_series(LineSeries::new(points, color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    Ok(())
}
