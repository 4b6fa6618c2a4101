//! `orderctl chaos check`: waits for the stack to go quiet, reads the services' databases and
//! the topics (never the logs), runs the invariants over what it read and prints the examples
//! and the summary line.

use super::Placed;
use super::findings::{self, Findings, Tally};
use super::invariants::{self as inv, ENDED};
use super::payments;
use crate::load::parse_duration;
use crate::ops::{Broker, DATABASES_MISSING, Databases};
use anyhow::Context;
use clap::Args;
use orderflow_kit::events::{self, Read};
use orderflow_kit::lag::Probe;
use orderflow_proto::events::v1::OrderPlaced;
use prost::Message;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    databases: Databases,
    /// The payment gateway whose ledger is checked against the orders.
    #[arg(long, env = "PAYMENT_GATEWAY_URL", default_value_t = format!("http://127.0.0.1:{}", order_service::gateway_api::DEFAULT_PORT))]
    gateway: String,
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
    inv::check_faults(args.crashes, args.health_misses, &quiet, &mut findings);

    let order_pool = pool_of(&pools, "order-service");
    let statuses: HashMap<String, String> =
        sqlx::query_as("SELECT order_id::text, status FROM orders").fetch_all(order_pool).await?.into_iter().collect();
    let reads = events::read_to_end(&broker.brokers, &broker.topics().all()).await?;
    let by_order = inv::events_by_order(&reads, &mut findings);
    let ended = inv::check_ended(&placed.acknowledged, &statuses, &mut findings);
    for (order_id, events) in &by_order {
        inv::check_order(order_id, statuses.get(order_id).map(String::as_str), events, &mut findings);
    }
    let timelines = sqlx::query_as("SELECT order_id::text, event_id::text, event_type FROM order_timeline")
        .fetch_all(order_pool)
        .await?;
    inv::check_timelines(timelines, &by_order, &mut findings);
    for (service, pool) in &pools {
        let group = broker.topics().consumer_group(service);
        let consumed: HashSet<String> =
            orderflow_kit::inbox::stored_offsets(pool, &group).await?.into_iter().map(|(topic, ..)| topic).collect();
        let inbox: HashSet<String> =
            sqlx::query_scalar("SELECT event_id::text FROM inbox").fetch_all(pool).await?.into_iter().collect();
        inv::check_inbox(service, &consumed, &inbox, &reads, &mut findings);
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(pool).await?;
        inv::check_outbox(service, outbox, &mut findings);
    }
    let inventory_pool = pool_of(&pools, "inventory-service");
    let reservations = sqlx::query_as("SELECT order_id::text, decision FROM reservations WHERE status = 'RESERVED'")
        .fetch_all(inventory_pool)
        .await?;
    let products = sqlx::query_as("SELECT sku, on_hand, reserved FROM products").fetch_all(inventory_pool).await?;
    inv::check_stock(&reads, &by_order, reservations, products, &mut findings);
    let dead: Vec<Read> = events::read_to_end(
        &broker.brokers,
        &pools.iter().map(|(service, _)| broker.topics().dead_letter(service)).collect::<Vec<_>>(),
    )
    .await?;
    inv::check_dead_letters(&dead, &mut findings);
    let rows: Vec<(String, String, String, Vec<u8>)> =
        sqlx::query_as("SELECT order_id::text, status, payment_status, placed FROM orders")
            .fetch_all(order_pool)
            .await?;
    let orders: Vec<payments::Paid> = rows
        .into_iter()
        .map(|(id, status, payment, placed)| {
            let total = OrderPlaced::decode(placed.as_slice()).ok().and_then(|p| p.total).map_or(0, |t| t.amount_minor);
            (id, status, payment, total)
        })
        .collect();
    let ledger = crate::cmd::gateway::ledger(&args.gateway).await?;
    let paid = payments::check_payments(&orders, ledger.authorizations, &mut findings);

    findings.example_lines().for_each(|line| println!("{line}"));
    let held = by_order.values().filter(|events| events.iter().any(|s| s.envelope.event_type == "StockHeld")).count();
    let tally = Tally {
        placed: placed.placed,
        acknowledged: placed.acknowledged.len(),
        ended,
        held: u64::try_from(held).unwrap_or(u64::MAX),
        declined: paid.declined,
        captured: paid.captured,
        kills: args.kills,
        restarts: args.restarts,
    };
    println!("{}", findings::summary(&tally, &findings));
    Ok(findings.passed())
}

/// Waits until every order has ended, no payment call is due, every outbox is empty and every consumer is at the end
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
        let due: i64 =
            sqlx::query_scalar("SELECT count(*) FROM payments").fetch_one(pool_of(pools, "order-service")).await?;
        if due > 0 {
            moving.push(format!("{due} payment calls due"));
        }
        for (service, pool) in pools {
            let group = broker.topics().consumer_group(service);
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
