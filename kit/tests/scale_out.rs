//! Several instances of one consumer group against the real PostgreSQL and broker: they share
//! the partitions (each partition number held by exactly one, by its lease, for every topic),
//! every event is applied exactly once and in its order's order, all of an order's events on
//! whichever topic by the same instance, and when one instance dies the other takes its
//! partitions and goes on where it left off (docs/adr/0010).

use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{ConsumerSettings, EventHandler, HandlerError, InboxConsumer};
use orderflow_kit::outbox::{self, Relay};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{db, testing, topics};
use orderflow_proto::events::v1::Sorted;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

static NO_SERVICE_MIGRATIONS: Migrator = Migrator::DEFAULT;
const PARTITIONS: i32 = 4;
const GROUP: &str = "scale-out";

/// Records which instance applied which event of which order.
struct Tagged(&'static str);

impl EventHandler for Tagged {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::Sorted(sorted)) = &event.payload else { return Ok(()) };
        let step: i32 = sorted.tote_id.parse().map_err(|_| HandlerError::Rejected("not a step".into()))?;
        sqlx::query("INSERT INTO applied (instance, order_key, step) VALUES ($1, $2, $3)")
            .bind(self.0)
            .bind(&event.order_id)
            .bind(step)
            .execute(conn)
            .await?;
        Ok(())
    }
}

fn instance(pool: &PgPool, topics: &[String], name: &'static str) -> InboxConsumer<Tagged> {
    let topic = &topics[0];
    let settings = ConsumerSettings {
        brokers: testing::brokers(),
        group: GROUP.into(),
        topics: topics.to_vec(),
        dead_letter_topic: format!("{topic}.dlq"),
        batch_size: 8,
        fetch_wait: Duration::from_millis(5),
    };
    InboxConsumer::new(settings, pool.clone(), Tagged(name)).unwrap()
}

/// Publishes `steps` events for each of `orders` orders (keyed by order), steps numbered from
/// `first`.
async fn publish(pool: &PgPool, topic: &str, orders: &[String], first: i32, steps: i32) {
    let mut tx = pool.begin().await.unwrap();
    for step in first..first + steps {
        for order in orders {
            let payload = Payload::Sorted(Sorted { tote_id: step.to_string() });
            let event = envelope::build("kit-test", order, payload, &Cause::command(TraceParent::new_root()));
            outbox::enqueue(&mut tx, topic, order, &event).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    let relay = Relay::new(pool.clone(), &testing::brokers(), 1_000, Duration::from_millis(1)).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    while relay.publish_next_batch(&mut conn).await.unwrap() > 0 {}
}

/// Partition leases held per database session (one session per instance).
async fn leases(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
         AND classid = (hashtext($1 || ' partitions')::int8 & 4294967295)::oid GROUP BY pid ORDER BY 1",
    )
    .bind(GROUP)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn applied(pool: &PgPool) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT instance, order_key, step FROM applied ORDER BY seq").fetch_all(pool).await.unwrap()
}

/// Every order's steps `from..to` applied once each, in order.
fn assert_once_and_in_order(rows: &[(String, String, i32)], orders: &[String], from: i32, to: i32) {
    let mut per_order: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (_, order, step) in rows {
        per_order.entry(order).or_default().push(*step);
    }
    for order in orders {
        assert_eq!(per_order.get(order.as_str()), Some(&(from..to).collect::<Vec<_>>()), "order {order}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_partitions_and_a_dead_ones_are_taken_over() {
    let pool = db::pool(&testing::fresh_database().await, 8).unwrap();
    db::migrate(&pool, &NO_SERVICE_MIGRATIONS).await.unwrap();
    sqlx::query("CREATE TABLE applied (seq serial PRIMARY KEY, instance text, order_key text, step int)")
        .execute(&pool)
        .await
        .unwrap();
    let namespace = testing::random_namespace();
    let names = [format!("{namespace}.kit.v1"), format!("{namespace}.other.v1")];
    topics::ensure(&testing::brokers(), &names, PARTITIONS, 1).await.unwrap();
    let orders: Vec<String> = (0..12).map(|_| uuid::Uuid::now_v7().to_string()).collect();

    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = tokio::spawn(instance(&pool, &names, "a").run(stop_a.clone()));
    let b = tokio::spawn(instance(&pool, &names, "b").run(stop_b.clone()));
    testing::wait_until("two instances hold two partitions each", Duration::from_secs(30), || async {
        (leases(&pool).await == [2, 2]).then_some(())
    })
    .await;
    // Steps 0-2 on one topic, 3-4 on the other: an order's events are at the same partition
    // number of both, so one instance applies them all.
    publish(&pool, &names[0], &orders, 0, 3).await;
    publish(&pool, &names[1], &orders, 3, 2).await;
    let rows = testing::wait_until("every event is applied", Duration::from_secs(30), || async {
        let rows = applied(&pool).await;
        (rows.len() >= orders.len() * 5).then_some(rows)
    })
    .await;
    let mut by: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for (instance, order, _) in &rows {
        by.entry(order).or_default().insert(instance);
    }
    assert!(by.values().all(|instances| instances.len() == 1), "one instance per order: {by:?}");
    let mut per_order: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (_, order, step) in &rows {
        per_order.entry(order).or_default().push(*step);
    }
    for order in &orders {
        let mut steps = per_order[order.as_str()].clone();
        steps.sort_unstable();
        assert_eq!(steps, (0..5).collect::<Vec<_>>(), "order {order}: each step once");
    }
    assert!(rows.iter().any(|r| r.0 == "a") && rows.iter().any(|r| r.0 == "b"), "both instances consumed");

    // "a" dies: its task is gone and its session with it (nothing is given back politely).
    a.abort();
    let _ = a.await;
    let died = Instant::now();
    testing::wait_until("the survivor holds every partition", Duration::from_secs(30), || async {
        (leases(&pool).await == [i64::from(PARTITIONS)]).then_some(())
    })
    .await;
    println!("partitions taken over {:?} after the instance died", died.elapsed());
    publish(&pool, &names[0], &orders, 5, 5).await;
    let rows = testing::wait_until("every later event is applied", Duration::from_secs(30), || async {
        let rows = applied(&pool).await;
        (rows.len() >= orders.len() * 10).then_some(rows)
    })
    .await;
    assert_once_and_in_order(&rows[orders.len() * 5..], &orders, 5, 10);
    assert!(rows[orders.len() * 5..].iter().all(|r| r.0 == "b"), "only the survivor consumed after");

    // A polite shutdown gives the leases back at once.
    stop_b.cancel();
    b.await.unwrap();
    testing::wait_until("no partition is held", Duration::from_secs(10), || async {
        leases(&pool).await.is_empty().then_some(())
    })
    .await;
}
