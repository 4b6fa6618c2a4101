//! `orderctl chaos`: the client and the judge of a chaos run (scripts/chaos.sh does the
//! killing and restarting in between).
//!
//! `chaos place` is a careful client: it places orders at a steady rate, each with its own
//! idempotency key, retrying a failed call with the same key until the order is acknowledged
//! (so a PlaceOrder whose answer was lost in a crash is not placed twice); it cancels some
//! orders right after placing them and restocks half-way, and writes what was acknowledged.
//!
//! `chaos check` waits for the stack to go quiet, then checks the invariants from the services'
//! databases and the topics (never from logs) and prints one summary line; any failure makes it
//! exit non-zero.

use crate::load::{parse_duration, scripted_order};
use crate::ops::{Broker, DATABASES_MISSING, Databases};
use anyhow::Context;
use clap::{Args, Subcommand};
use orderflow_kit::events::{self, Read};
use orderflow_kit::lag::Probe;
use orderflow_kit::{dlq, envelope};
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::OrderLine;
use orderflow_proto::events::v1::EventEnvelope;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{CancelOrderRequest, PlaceOrderRequest};
use prost::Message;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tonic::Code;

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Place orders at a steady rate as a retrying client, and record which were acknowledged.
    Place(PlaceArgs),
    /// Wait for quiet, check every invariant, print the summary line; non-zero on failure.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct PlaceArgs {
    /// How many orders to place.
    #[arg(long, default_value_t = 5000)]
    count: u64,
    /// Orders per second.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// Cancel every Nth order right after it is acknowledged (0: none).
    #[arg(long, default_value_t = 20)]
    cancel_every: u64,
    /// How long one order (or cancel) is retried before the client gives up on it.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    give_up: Duration,
    /// Where the outcome goes (read by `chaos check`).
    #[arg(long, default_value = "chaos-placed.json")]
    out: PathBuf,
}

/// What the client saw, for the checker.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Placed {
    pub placed: u64,
    /// Order ids acknowledged by PlaceOrder.
    pub acknowledged: Vec<String>,
    /// Orders whose PlaceOrder was still failing when the client gave up.
    pub gave_up: u64,
    pub cancels_accepted: u64,
    pub cancels_refused: u64,
}

/// The products every chaos order draws from.
const SKUS: [&str; 4] = ["CHAOS-A", "CHAOS-B", "CHAOS-C", "CHAOS-D"];

/// A small deterministic mix (splitmix64), so a run's orders are the same every time.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Order `n`: one or two lines of 1–3 units, a key that makes retries safe.
fn order(run: &str, n: u64) -> PlaceOrderRequest {
    let r = mix(n);
    #[allow(clippy::cast_possible_truncation)]
    let sku = |shift: u32| SKUS[((r >> shift) % SKUS.len() as u64) as usize];
    #[allow(clippy::cast_possible_truncation)]
    let quantity = |shift: u32| ((r >> shift) % 3) as i32 + 1;
    let mut lines = vec![OrderLine { sku: sku(0).into(), quantity: quantity(8) }];
    if r >> 16 & 1 == 1 && sku(20) != sku(0) {
        lines.push(OrderLine { sku: sku(20).into(), quantity: quantity(28) });
    }
    PlaceOrderRequest {
        idempotency_key: format!("{run}-{n}"),
        payment_reference: format!("pay-chaos-{n}"),
        ..scripted_order(format!("chaos-{}", n % 100), "Chaos Monkey", lines)
    }
}

/// Codes that say "this request is wrong", where retrying cannot help.
fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    )
}

/// Calls `call` until it succeeds, fails for good, or `give_up` passes; each try may take 5 s.
async fn retried<T, F, Fut>(give_up: Duration, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + give_up;
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = match tokio::time::timeout(Duration::from_secs(5), call()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(tonic::Status::deadline_exceeded("no answer within 5 s")),
        };
        match outcome {
            Err(status) if !permanent(status.code()) && Instant::now() + backoff < deadline => {
                tracing::debug!(code = ?status.code(), message = status.message(), "retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            outcome => return outcome,
        }
    }
}

/// Stock per SKU before the run (about half of what the run asks for: some orders are
/// rejected) and what the half-way restock adds.
fn stock_plan(count: u64) -> (i64, i64) {
    let count = i64::try_from(count).unwrap_or(i64::MAX / 4);
    (count / 2, count / 8)
}

/// `orderctl chaos place`.
pub async fn place(
    args: &PlaceArgs,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    let (initial, restock) = stock_plan(args.count);
    for sku in SKUS {
        let product = UpsertProductRequest {
            sku: sku.into(),
            name: format!("Chaos item {sku}"),
            bin_location: "C-01".into(),
            weight_grams: 250,
            low_stock_threshold: 5,
        };
        retried(args.give_up, || {
            let (mut inventory, product) = (inventory.clone(), product.clone());
            async move { inventory.upsert_product(product).await }
        })
        .await
        .context("creating the products")?;
        retried(args.give_up, || {
            let mut inventory = inventory.clone();
            async move { inventory.restock(RestockRequest { sku: sku.into(), quantity: initial }).await }
        })
        .await
        .context("stocking the products")?;
    }
    let run = uuid::Uuid::now_v7().simple().to_string();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counters: Arc<[AtomicU64; 3]> = Arc::new(Default::default()); // gave up, cancels accepted, refused
    let in_flight = Arc::new(Semaphore::new(5_000));
    let started = Instant::now();
    let rate = args.rate.max(0.1);
    for n in 0..args.count {
        tokio::time::sleep_until((started + Duration::from_secs_f64(n as f64 / rate)).into()).await;
        if n == args.count / 2 {
            let inventory = inventory.clone();
            let give_up = args.give_up;
            let permit = Arc::clone(&in_flight).acquire_owned().await?;
            tokio::spawn(async move {
                for sku in SKUS {
                    let request = RestockRequest { sku: sku.into(), quantity: restock };
                    if let Err(status) = retried(give_up, || {
                        let (mut inventory, request) = (inventory.clone(), request.clone());
                        async move { inventory.restock(request).await }
                    })
                    .await
                    {
                        eprintln!("restocking {sku} failed: {status}");
                    }
                }
                drop(permit);
            });
        }
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let (orders, request) = (orders.clone(), order(&run, n));
        let (acknowledged, counters, give_up) = (Arc::clone(&acknowledged), Arc::clone(&counters), args.give_up);
        let cancel = args.cancel_every > 0 && n % args.cancel_every == args.cancel_every / 2;
        tokio::spawn(async move {
            let placed = retried(give_up, || {
                let (mut orders, request) = (orders.clone(), request.clone());
                async move { orders.place_order(request).await }
            })
            .await;
            match placed.map(|answer| answer.into_inner().order.unwrap_or_default().order_id) {
                Ok(order_id) => {
                    acknowledged.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(order_id.clone());
                    if cancel {
                        tokio::time::sleep(Duration::from_millis(mix(n) % 400)).await;
                        let request = CancelOrderRequest { order_id, reason: "chaos: changed my mind".into() };
                        let counter = match retried(give_up, || {
                            let (mut orders, request) = (orders.clone(), request.clone());
                            async move { orders.cancel_order(request).await }
                        })
                        .await
                        {
                            Ok(_) => 1,
                            Err(_) => 2,
                        };
                        counters[counter].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(status) => {
                    eprintln!("order {n} not acknowledged: {:?} {}", status.code(), status.message());
                    counters[0].fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }
    let _all = in_flight.acquire_many(5_000).await?;
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let placed = Placed {
        placed: args.count,
        acknowledged,
        gave_up: counters[0].load(Ordering::Relaxed),
        cancels_accepted: counters[1].load(Ordering::Relaxed),
        cancels_refused: counters[2].load(Ordering::Relaxed),
    };
    std::fs::write(&args.out, serde_json::to_vec(&placed)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "placed {} orders in {:.0} s: {} acknowledged, {} given up, cancels {} accepted / {} refused",
        placed.placed,
        started.elapsed().as_secs_f64(),
        placed.acknowledged.len(),
        placed.gave_up,
        placed.cancels_accepted,
        placed.cancels_refused
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    databases: Databases,
    /// What `chaos place` wrote.
    #[arg(long, default_value = "chaos-placed.json")]
    placed: PathBuf,
    /// How long to wait for every order to end, every outbox to drain and every consumer to
    /// catch up before checking.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    quiet_timeout: Duration,
    /// Faults injected, for the summary line: services SIGKILLed.
    #[arg(long, default_value_t = 0)]
    kills: u64,
    /// Restarts of services, the broker and PostgreSQL.
    #[arg(long, default_value_t = 0)]
    restarts: u64,
    /// Services that exited without being killed (any fails the run).
    #[arg(long, default_value_t = 0)]
    crashes: u64,
    /// Times the services did not report NOT_SERVING while a dependency was down, or SERVING
    /// once it was back (any fails the run).
    #[arg(long, default_value_t = 0)]
    health_misses: u64,
}

/// The statuses an order can stay in: the automatic pipeline ends at SHIPPED (delivery waits
/// for a carrier's scan).
const ENDED: [&str; 4] = ["SHIPPED", "DELIVERED", "REJECTED", "CANCELLED"];

/// Where each event type sits in an order's causal chain; a cause always sits before its
/// effect. The cancel branch (a command, then the release it causes) comes last.
fn rank(event_type: &str) -> Option<u8> {
    Some(match event_type {
        "OrderPlaced" => 1,
        "StockReserved" | "StockRejected" => 2,
        "Picked" => 3,
        "Sorted" => 4,
        "Packed" => 5,
        "ShipmentRequested" => 6,
        "Shipped" => 7,
        "Delivered" => 8,
        "OrderCancelled" => 9,
        "StockReleased" => 10,
        _ => return None,
    })
}

/// One event of an order as the topics hold it (its first copy, if published twice).
#[derive(Debug, Clone)]
struct Seen {
    envelope: EventEnvelope,
    topic: String,
    offset: i64,
}

/// What the checker found wrong, by kind, with a few examples each.
#[derive(Debug, Default)]
struct Findings {
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
    /// Invariants that failed beyond those three counts (stock, outbox, dead letters, ...).
    failed: BTreeSet<&'static str>,
    examples: BTreeMap<&'static str, Vec<String>>,
}

impl Findings {
    fn note(&mut self, kind: &'static str, example: String) {
        let examples = self.examples.entry(kind).or_default();
        if examples.len() < 10 {
            examples.push(example);
        }
    }
    fn lost(&mut self, example: String) {
        self.lost += 1;
        self.note("lost", example);
    }
    fn duplicated(&mut self, example: String) {
        self.duplicated += 1;
        self.note("duplicated", example);
    }
    fn out_of_order(&mut self, example: String) {
        self.out_of_order += 1;
        self.note("out-of-order", example);
    }
    fn fail(&mut self, invariant: &'static str, example: String) {
        self.failed.insert(invariant);
        self.note(invariant, example);
    }
    fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0 && self.failed.is_empty()
    }
}

/// The services' pools, by service name.
type Pools = Vec<(&'static str, PgPool)>;

fn pool_of<'a>(pools: &'a Pools, service: &str) -> &'a PgPool {
    &pools.iter().find(|(name, _)| *name == service).expect("all four databases are required").1
}

/// `orderctl chaos check`.
pub async fn check(broker: &Broker, args: &CheckArgs) -> anyhow::Result<bool> {
    let given = args.databases.given();
    anyhow::ensure!(given.len() == 4, "the check needs all four databases: {DATABASES_MISSING}");
    let pools: Pools = given
        .iter()
        .map(|(name, url)| Ok((*name, orderflow_kit::db::pool(url, 2)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let placed: Placed = serde_json::from_slice(
        &std::fs::read(&args.placed).with_context(|| format!("reading {}", args.placed.display()))?,
    )
    .context("the placed file is not what `chaos place` writes")?;

    let quiet = wait_for_quiet(broker, &pools, args.quiet_timeout).await?;
    let mut findings = Findings::default();
    if args.crashes > 0 {
        findings.fail("stayed-up", format!("{} service processes exited by themselves", args.crashes));
    }
    if args.health_misses > 0 {
        findings.fail("health", format!("{} health expectations missed", args.health_misses));
    }
    if let Err(why) = &quiet {
        findings.fail("quiet", why.clone());
    }

    let order_pool = pool_of(&pools, "order-service");
    let statuses: HashMap<String, String> =
        sqlx::query_as("SELECT order_id::text, status FROM orders").fetch_all(order_pool).await?.into_iter().collect();
    let reads = events::read_to_end(&broker.brokers, &broker.topics().all()).await?;
    let by_order = events_by_order(&reads, &mut findings);

    // Every acknowledged order, and every order the service holds, reached an end.
    let mut ended = BTreeMap::<&str, u64>::new();
    for order_id in &placed.acknowledged {
        if !statuses.contains_key(order_id) {
            findings.lost(format!("acknowledged order {order_id} is not in order-service"));
        }
    }
    for (order_id, status) in &statuses {
        match ENDED.iter().find(|s| *s == status) {
            Some(end) => *ended.entry(end).or_default() += 1,
            None => findings.lost(format!("order {order_id} stopped at {status}")),
        }
    }

    for (order_id, events) in &by_order {
        check_order(order_id, statuses.get(order_id).map(String::as_str), events, &mut findings);
    }
    check_timelines(order_pool, &by_order, &mut findings).await?;
    for (service, pool) in &pools {
        check_inbox(service, pool, &reads, &mut findings).await?;
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(pool).await?;
        if outbox > 0 {
            findings.fail("outbox", format!("{service}'s outbox still holds {outbox} rows"));
        }
    }
    check_stock(pool_of(&pools, "inventory-service"), &reads, &by_order, &mut findings).await?;
    let dead: Vec<Read> = events::read_to_end(
        &broker.brokers,
        &pools.iter().map(|(service, _)| broker.topics().dead_letter(service)).collect::<Vec<_>>(),
    )
    .await?;
    for letter in &dead {
        findings.fail(
            "dead-letters",
            format!("{} @{}: {:?}", letter.topic, letter.offset, letter.headers.get("dlq.error")),
        );
    }

    for (kind, examples) in &findings.examples {
        for example in examples {
            println!("  {kind}: {example}");
        }
    }
    let ended_total: u64 = ended.values().sum();
    println!(
        "chaos: placed={} acknowledged={} ended={ended_total} (shipped={} rejected={} cancelled={}) kills={} restarts={} \
         lost={} duplicated={} out-of-order={} invariants={} -> {}",
        placed.placed,
        placed.acknowledged.len(),
        ended.get("SHIPPED").copied().unwrap_or(0) + ended.get("DELIVERED").copied().unwrap_or(0),
        ended.get("REJECTED").copied().unwrap_or(0),
        ended.get("CANCELLED").copied().unwrap_or(0),
        args.kills,
        args.restarts,
        findings.lost,
        findings.duplicated,
        findings.out_of_order,
        if findings.failed.is_empty() {
            "all-held".to_owned()
        } else {
            format!("failed:{}", findings.failed.iter().copied().collect::<Vec<_>>().join(","))
        },
        if findings.passed() { "PASS" } else { "FAIL" }
    );
    Ok(findings.passed())
}

/// Waits until every order has ended, every outbox is empty and every consumer is at the end
/// of its topics; `Err` (not an error of the checker) says what was still moving at the timeout.
async fn wait_for_quiet(broker: &Broker, pools: &Pools, timeout: Duration) -> anyhow::Result<Result<(), String>> {
    let probe = Probe::new(&broker.brokers)?;
    let deadline = Instant::now() + timeout;
    let started = Instant::now();
    loop {
        let mut moving = Vec::new();
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE NOT (status = ANY($1))")
            .bind(ENDED.map(str::to_owned).to_vec())
            .fetch_one(pool_of(pools, "order-service"))
            .await?;
        if open > 0 {
            moving.push(format!("{open} orders not ended"));
        }
        for (service, pool) in pools {
            let group = format!("{}.{service}", broker.namespace);
            match probe.report(pool, &group, &broker.topics().dead_letter(service)).await {
                Ok(report) if report.total_lag() > 0 || report.outbox_depth > 0 => {
                    moving.push(format!("{service}: lag {}, outbox {}", report.total_lag(), report.outbox_depth))
                }
                Ok(_) => {}
                Err(error) => moving.push(format!("{service}: {error}")),
            }
        }
        if moving.is_empty() {
            println!("quiet after {:.0} s", started.elapsed().as_secs_f64());
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(format!("not quiet after {timeout:?}: {}", moving.join("; "))));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The events of each order, deduplicated by event id (the first copy kept): the outbox
/// publishes at least once, so a second copy of the same event is expected and harmless.
fn events_by_order(reads: &[Read], findings: &mut Findings) -> BTreeMap<String, Vec<Seen>> {
    let mut first: HashSet<String> = HashSet::new();
    let mut by_order: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for read in reads.iter().filter(|r| !r.headers.contains_key(dlq::ACTION)) {
        let envelope = match &read.envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                findings.fail("decodable", format!("{}@{}: {error}", read.topic, read.offset));
                continue;
            }
        };
        if envelope.order_id.is_empty() || !first.insert(envelope.event_id.clone()) {
            continue;
        }
        by_order.entry(envelope.order_id.clone()).or_default().push(Seen {
            envelope: envelope.clone(),
            topic: read.topic.clone(),
            offset: read.offset,
        });
    }
    by_order
}

/// One order's events: each decided once, the shape its status calls for, and every cause
/// before its effect (in rank, in time, and in its topic).
fn check_order(order_id: &str, status: Option<&str>, events: &[Seen], findings: &mut Findings) {
    let mut count: BTreeMap<&str, u64> = BTreeMap::new();
    for seen in events {
        *count.entry(seen.envelope.event_type.as_str()).or_default() += 1;
    }
    for (event_type, n) in &count {
        if *n > 1 && rank(event_type).is_some() {
            findings.duplicated(format!("order {order_id}: {n} distinct {event_type} events"));
        }
    }
    let has = |t: &str| count.contains_key(t);
    let Some(status) = status else {
        findings.lost(format!("order {order_id} has events but is not in order-service"));
        return;
    };
    let expected: &[&str] = match status {
        "SHIPPED" | "DELIVERED" => {
            &["OrderPlaced", "StockReserved", "Picked", "Sorted", "Packed", "ShipmentRequested", "Shipped"]
        }
        "REJECTED" => &["OrderPlaced", "StockRejected"],
        "CANCELLED" => &["OrderPlaced", "OrderCancelled"],
        _ => &[],
    };
    for event_type in expected {
        if !has(event_type) {
            findings.lost(format!("order {order_id} is {status} without {event_type}"));
        }
    }
    if has("OrderCancelled") && (has("ShipmentRequested") || has("Shipped")) {
        findings.fail("not-shipped-after-cancel", format!("order {order_id} was cancelled and shipped"));
    }
    if status == "CANCELLED" && count.get("StockReserved") != count.get("StockReleased") {
        findings.fail("compensated", format!("order {order_id} cancelled with its reservation not released"));
    }
    if status == "REJECTED" && (has("Picked") || has("StockReserved")) {
        findings.out_of_order(format!("order {order_id} was rejected after its stock was reserved"));
    }
    let by_id: HashMap<&str, &Seen> = events.iter().map(|s| (s.envelope.event_id.as_str(), s)).collect();
    for effect in events {
        let cause_id = effect.envelope.causation_id.as_str();
        if cause_id.is_empty() || rank(&effect.envelope.event_type).is_none() {
            continue;
        }
        let Some(cause) = by_id.get(cause_id) else {
            findings.lost(format!("order {order_id}: the cause of {} is in no topic", effect.envelope.event_type));
            continue;
        };
        let (c, e) = (&cause.envelope, &effect.envelope);
        let (Some(cause_rank), Some(effect_rank)) = (rank(&c.event_type), rank(&e.event_type)) else {
            continue;
        };
        let ranked = cause_rank < effect_rank;
        let timed = envelope::occurred_at(c) <= envelope::occurred_at(e);
        let placed = cause.topic != effect.topic || cause.offset < effect.offset;
        if !(ranked && timed && placed) {
            findings.out_of_order(format!("order {order_id}: {} caused {}", c.event_type, e.event_type));
        }
    }
}

/// order-service's timeline of each order holds each of its events exactly once.
async fn check_timelines(
    pool: &PgPool,
    by_order: &BTreeMap<String, Vec<Seen>>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT order_id::text, event_id::text, event_type FROM order_timeline").fetch_all(pool).await?;
    let mut timelines: HashMap<String, HashMap<String, String>> = HashMap::new();
    for (order_id, event_id, event_type) in rows {
        timelines.entry(order_id).or_default().insert(event_id, event_type);
    }
    for (order_id, events) in by_order {
        let timeline = timelines.remove(order_id).unwrap_or_default();
        let mut types: BTreeMap<&str, u64> = BTreeMap::new();
        for event_type in timeline.values() {
            *types.entry(event_type).or_default() += 1;
        }
        for (event_type, n) in types {
            if n > 1 {
                findings.duplicated(format!("order {order_id}: timeline shows {event_type} {n} times"));
            }
        }
        for seen in events.iter().filter(|s| rank(&s.envelope.event_type).is_some()) {
            if !timeline.contains_key(&seen.envelope.event_id) {
                findings.lost(format!("order {order_id}: {} missing from its timeline", seen.envelope.event_type));
            }
        }
    }
    for (order_id, timeline) in timelines {
        findings.lost(format!("order {order_id}: {} timeline entries that no topic holds", timeline.len()));
    }
    Ok(())
}

/// Every event of every topic a service consumes is in its inbox (which holds each id once).
async fn check_inbox(service: &str, pool: &PgPool, reads: &[Read], findings: &mut Findings) -> anyhow::Result<()> {
    let consumed: HashSet<String> =
        sqlx::query_scalar("SELECT DISTINCT topic FROM consumer_offsets").fetch_all(pool).await?.into_iter().collect();
    let inbox: HashSet<String> =
        sqlx::query_scalar("SELECT event_id::text FROM inbox").fetch_all(pool).await?.into_iter().collect();
    let mut missing: HashSet<&str> = HashSet::new();
    for read in reads.iter().filter(|r| consumed.contains(&r.topic)) {
        if let Ok(envelope) = &read.envelope
            && !inbox.contains(&envelope.event_id)
            && missing.insert(&envelope.event_id)
        {
            findings.lost(format!("{service} never applied {} {}", envelope.event_type, envelope.event_id));
        }
    }
    Ok(())
}

/// Per SKU: restocked − shipped = on hand; reserved = the open reservations; nothing negative;
/// and once every order has ended, no reservation is still open.
async fn check_stock(
    pool: &PgPool,
    reads: &[Read],
    by_order: &BTreeMap<String, Vec<Seen>>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let mut expected_on_hand: BTreeMap<String, i64> = BTreeMap::new();
    let mut restocked: HashSet<&str> = HashSet::new();
    for read in reads {
        if let Ok(EventEnvelope { payload: Some(Payload::StockRestocked(r)), event_id, .. }) = &read.envelope
            && restocked.insert(event_id)
        {
            *expected_on_hand.entry(r.sku.clone()).or_default() += r.quantity;
        }
    }
    for events in by_order.values() {
        if !events.iter().any(|s| matches!(s.envelope.payload, Some(Payload::Shipped(_)))) {
            continue;
        }
        for seen in events {
            if let Some(Payload::StockReserved(reserved)) = &seen.envelope.payload {
                for line in &reserved.lines {
                    *expected_on_hand.entry(line.sku.clone()).or_default() -= i64::from(line.quantity);
                }
            }
        }
    }
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    let reservations: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT order_id::text, decision FROM reservations WHERE status = 'RESERVED'")
            .fetch_all(pool)
            .await?;
    for (order_id, decision) in reservations {
        findings.fail("reservations-closed", format!("order {order_id} still holds a reservation"));
        if let Ok(EventEnvelope { payload: Some(Payload::StockReserved(reserved)), .. }) =
            EventEnvelope::decode(decision.as_slice())
        {
            for line in reserved.lines {
                *open.entry(line.sku).or_default() += i64::from(line.quantity);
            }
        }
    }
    let products: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, reserved FROM products").fetch_all(pool).await?;
    for (sku, on_hand, reserved) in products {
        let expected = expected_on_hand.get(&sku).copied().unwrap_or(0);
        if on_hand != expected {
            findings.fail("stock-balances", format!("{sku}: on hand {on_hand}, restocked - shipped = {expected}"));
        }
        let held = open.get(&sku).copied().unwrap_or(0);
        if reserved != held {
            findings.fail("stock-balances", format!("{sku}: reserved {reserved}, open reservations hold {held}"));
        }
        if on_hand < 0 || reserved < 0 || reserved > on_hand {
            findings.fail("stock-non-negative", format!("{sku}: on hand {on_hand}, reserved {reserved}"));
        }
    }
    Ok(())
}
