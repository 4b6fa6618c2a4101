//! The load itself: places the orders open or closed loop, follows the Shipped events, and
//! measures PlaceOrder latency and placed → shipped, overall and per second.

use super::{LoadArgs, histogram, micros, scripted_order, stock};
use crate::ops::Broker;
use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_kit::envelope;
use orderflow_kit::events::Reader;
use orderflow_kit::topics::Topic;
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::OrderLine;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::order::v1::PlaceOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Semaphore, mpsc};

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
    /// Nothing measured yet.
    fn empty() -> Self {
        Measured {
            elapsed: Duration::ZERO,
            placed: 0,
            shipped: 0,
            errors: BTreeMap::new(),
            place: histogram(),
            to_ship: histogram(),
            timeline: Vec::new(),
        }
    }

    /// Orders placed per second over the placing time.
    pub fn throughput(&self, placing: Duration) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let placed = self.placed as f64;
        placed / placing.as_secs_f64().max(f64::EPSILON)
    }
}

fn request(customer: usize, sku: &str) -> PlaceOrderRequest {
    let lines = vec![OrderLine { sku: sku.to_owned(), quantity: 1, unit_price: None }];
    scripted_order(format!("load-{}", customer % 1000), "Load Test", lines)
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

    let mut measured = Measured::empty();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_per_second_of_placing() {
        let mut m = Measured::empty();
        m.placed = 250;
        assert!((m.throughput(Duration::from_secs(10)) - 25.0).abs() < 1e-9);
        assert!(m.throughput(Duration::ZERO).is_finite(), "no division by zero");
    }

    #[test]
    fn a_shipment_counts_in_the_second_it_was_seen() {
        let (mut m, mut per_second) = (Measured::empty(), Vec::new());
        grow(&mut per_second, 2);
        assert_eq!(per_second.len(), 3);
        let placed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        record_shipped(&mut m, &mut per_second, Instant::now(), placed_at, placed_at + Duration::from_millis(40));
        assert_eq!((m.shipped, m.to_ship.len()), (1, 1));
        assert_eq!(per_second[0].1, 1);
        assert!(m.to_ship.value_at_quantile(1.0) >= 40_000);
        // A clock that went backwards counts as no time, not as a panic.
        record_shipped(&mut m, &mut per_second, Instant::now(), placed_at, placed_at - Duration::from_secs(1));
        assert_eq!(m.shipped, 2);
    }

    #[test]
    fn load_orders_spread_over_a_thousand_customers() {
        let order = request(1234, "LOAD-1");
        assert_eq!(order.customer.unwrap().id, "load-234");
        assert_eq!(order.lines, [OrderLine { sku: "LOAD-1".into(), quantity: 1, unit_price: None }]);
    }
}
