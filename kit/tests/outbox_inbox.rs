//! The outbox relay and the inbox consumer against the real PostgreSQL and broker: events are
//! published in order and deleted once acknowledged; each is applied exactly once, in the
//! handler's transaction; a restarted consumer resumes from the offsets in its database; a
//! malformed message goes to the dead-letter topic and the partition keeps flowing, while the
//! later events of its order wait behind it until an operator redrives or discards it.

use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{ConsumerSettings, EventHandler, HandlerError, InboxConsumer};
use orderflow_kit::outbox::{self, Relay};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{db, dlq, events, testing, topics};
use orderflow_proto::events::v1::Sorted;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::Duration;

static NO_SERVICE_MIGRATIONS: Migrator = Migrator::DEFAULT;

/// Records every applied event in `applied`, inside the batch transaction.
struct Recorder;

impl EventHandler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::Sorted(sorted)) = &event.payload else {
            return Err(HandlerError::Rejected("not Sorted".into()));
        };
        let broken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM broken WHERE tote_id = $1)")
            .bind(&sorted.tote_id)
            .fetch_one(&mut *conn)
            .await?;
        if broken {
            // Something this event needs is missing until an operator fixes it.
            return Err(HandlerError::Rejected(format!("{} is broken", sorted.tote_id)));
        }
        if sorted.tote_id == "explode" {
            // A handler bug: fails the same way however often it is tried.
            sqlx::query("SELECT 1 / 0").execute(&mut *conn).await?;
        }
        sqlx::query("INSERT INTO applied (tote_id) VALUES ($1)").bind(&sorted.tote_id).execute(conn).await?;
        Ok(())
    }
}

async fn setup() -> (PgPool, String, String) {
    let pool = db::pool(&testing::fresh_database().await, 5).unwrap();
    db::migrate(&pool, &NO_SERVICE_MIGRATIONS).await.unwrap();
    sqlx::query("CREATE TABLE applied (seq serial PRIMARY KEY, tote_id text NOT NULL)").execute(&pool).await.unwrap();
    sqlx::query("CREATE TABLE broken (tote_id text NOT NULL)").execute(&pool).await.unwrap();
    let namespace = testing::random_namespace();
    let (topic, dlq) = (format!("{namespace}.kit.v1"), format!("{namespace}.dlq.kit.v1"));
    topics::ensure(&testing::brokers(), &[topic.clone(), dlq.clone()], 1, 1).await.unwrap();
    (pool, topic, dlq)
}

fn event(tote: &str) -> EventEnvelope {
    event_of("order-1", tote)
}

fn event_of(order: &str, tote: &str) -> EventEnvelope {
    let payload = Payload::Sorted(Sorted { tote_id: tote.into() });
    envelope::build("kit-test", order, payload, &Cause::command(TraceParent::new_root()))
}

async fn enqueue(pool: &PgPool, topic: &str, events: &[&EventEnvelope]) {
    let mut tx = pool.begin().await.unwrap();
    for event in events {
        outbox::enqueue(&mut tx, topic, &event.order_id, event).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn publish_all(pool: &PgPool, relay: &Relay) -> usize {
    let mut conn = pool.acquire().await.unwrap();
    relay.publish_next_batch(&mut conn).await.unwrap()
}

fn consumer(pool: &PgPool, topic: &str, dlq: &str, group: &str) -> InboxConsumer<Recorder> {
    let settings = ConsumerSettings {
        brokers: testing::brokers(),
        group: group.into(),
        topics: vec![topic.into()],
        dead_letter_topic: dlq.into(),
        batch_size: 16,
        fetch_wait: Duration::from_millis(5),
    };
    InboxConsumer::new(settings, pool.clone(), Recorder).unwrap()
}

/// Consumes until `done` holds for the running total.
/// What consuming did so far, and how many batches failed (and were read again).
#[derive(Debug, Default)]
struct Total {
    applied: usize,
    duplicates: usize,
    dead_lettered: usize,
    skipped: usize,
    failed_batches: usize,
    parked: usize,
    released: usize,
    answers: usize,
}

async fn consume_until(consumer: &mut InboxConsumer<Recorder>, done: impl Fn(&Total) -> bool) -> Total {
    let mut total = Total::default();
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while !done(&total) {
            let Ok(batch) = consumer.consume_next_batch().await else {
                total.failed_batches += 1;
                continue;
            };
            total.applied += batch.applied;
            total.duplicates += batch.duplicates;
            total.dead_lettered += batch.dead_lettered;
            total.skipped += batch.skipped;
            total.parked += batch.parked;
            total.released += batch.released;
            total.answers += batch.answers;
        }
    })
    .await;
    assert!(finished.is_ok(), "consumer did not get there; so far {total:?}");
    total
}

async fn applied_totes(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT tote_id FROM applied ORDER BY seq").fetch_all(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_in_order_and_applied_exactly_once() {
    let (pool, topic, dlq) = setup().await;
    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    let (a, b, c) = (event("a"), event("b"), event("c"));
    enqueue(&pool, &topic, &[&a, &b]).await;
    enqueue(&pool, &topic, &[&c, &b]).await; // b again: a redelivery
    assert_eq!(publish_all(&pool, &relay).await, 4);
    assert_eq!(outbox::depth(&pool).await.unwrap(), 0, "acknowledged rows are deleted");

    let group = format!("{topic}.group");
    let mut first = consumer(&pool, &topic, &dlq, &group);
    let total = consume_until(&mut first, |t| t.applied + t.duplicates == 4).await;
    assert_eq!((total.applied, total.duplicates), (3, 1));
    assert_eq!(applied_totes(&pool).await, ["a", "b", "c"]);
    let next: i64 = sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1")
        .bind(&group)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(next, 4, "the offset is stored with the effects");
    drop(first);

    // A new consumer in the group starts from Kafka's earliest offset, seeks to the stored one,
    // and applies only what is new.
    enqueue(&pool, &topic, &[&event("d")]).await;
    publish_all(&pool, &relay).await;
    let mut second = consumer(&pool, &topic, &dlq, &group);
    let total = consume_until(&mut second, |t| t.applied == 1).await;
    assert_eq!(total.duplicates, 0, "nothing before the stored offset is read again");
    assert_eq!(applied_totes(&pool).await, ["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_partition_keeps_flowing() {
    let (pool, topic, dlq) = setup().await;
    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    outbox::enqueue_raw(&mut conn, &topic, "order-1", b"not protobuf \xff\xff", BTreeMap::new()).await.unwrap();
    let cause = Cause::command(TraceParent::new_root());
    let wrong_type = envelope::build("kit-test", "order-3", Payload::Picked(Default::default()), &cause);
    outbox::enqueue(&mut conn, &topic, "order-3", &wrong_type).await.unwrap();
    drop(conn);
    enqueue(&pool, &topic, &[&event_of("order-2", "after")]).await;
    assert_eq!(publish_all(&pool, &relay).await, 3);

    let mut consumer = consumer(&pool, &topic, &dlq, &format!("{topic}.group"));
    let total = consume_until(&mut consumer, |t| t.applied + t.dead_lettered == 3).await;
    assert_eq!((total.applied, total.dead_lettered), (1, 2));
    assert_eq!(applied_totes(&pool).await, ["after"]);

    let dead: Vec<(String, sqlx::types::Json<BTreeMap<String, String>>)> =
        sqlx::query_as("SELECT topic, headers FROM outbox ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(dead.len(), 2, "both dead letters wait in the outbox for the relay");
    for (dead_topic, headers) in &dead {
        assert_eq!(dead_topic, &dlq);
        assert_eq!(headers.0["dlq.source.topic"], topic);
    }
    assert!(dead[0].1.0["dlq.error"].starts_with("not a protobuf EventEnvelope"), "{:?}", dead[0].1.0);
    assert_eq!(dead[1].1.0["dlq.error"], "not Sorted");
    assert_eq!(total.failed_batches, 0, "a message that cannot apply is dead-lettered at once, never retried");
    assert_eq!(publish_all(&pool, &relay).await, 2, "dead letters are published to the DLQ topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_handler_fails_for_good_is_dead_lettered_at_once_and_the_rest_of_its_batch_applies() {
    let (pool, topic, dlq) = setup().await;
    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    enqueue(&pool, &topic, &[&event("before"), &event("explode"), &event_of("order-2", "after")]).await;
    assert_eq!(publish_all(&pool, &relay).await, 3);

    let mut consumer = consumer(&pool, &topic, &dlq, &format!("{topic}.group"));
    let total = consume_until(&mut consumer, |t| t.applied + t.dead_lettered == 3).await;
    assert_eq!((total.applied, total.dead_lettered), (2, 1));
    assert_eq!(total.failed_batches, 0, "not retried: it would fail the same way");
    assert_eq!(applied_totes(&pool).await, ["before", "after"], "the partition moved on, in order");
    let headers: sqlx::types::Json<BTreeMap<String, String>> =
        sqlx::query_scalar("SELECT headers FROM outbox WHERE topic = $1").bind(&dlq).fetch_one(&pool).await.unwrap();
    assert!(headers.0["dlq.error"].contains("division by zero"), "{:?}", headers.0);
    assert_eq!(headers.0["dlq.source.topic"], topic);
}

async fn dead_letters(dlq: &str) -> Vec<events::Read> {
    events::read_to_end(&testing::brokers(), &[dlq.to_owned()]).await.unwrap()
}

async fn parked_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM parked").fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_later_events_wait_behind_its_dead_letter_until_it_is_redriven_once_or_discarded() {
    let (pool, topic, dlq) = setup().await;
    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    sqlx::query("INSERT INTO broken VALUES ('a1'), ('c1')").execute(&pool).await.unwrap();
    let a = [event_of("order-a", "a1"), event_of("order-a", "a2"), event_of("order-a", "a3")];
    let (b, c) = (event_of("order-b", "b1"), [event_of("order-c", "c1"), event_of("order-c", "c2")]);
    enqueue(&pool, &topic, &[&a[0], &a[1], &b, &a[2], &c[0], &c[1]]).await;
    publish_all(&pool, &relay).await;

    let mut consumer = consumer(&pool, &topic, &dlq, &format!("{topic}.group"));
    let total = consume_until(&mut consumer, |t| t.applied + t.dead_lettered + t.parked == 6).await;
    assert_eq!((total.applied, total.dead_lettered, total.parked), (1, 2, 3));
    assert_eq!(applied_totes(&pool).await, ["b1"], "order-b flows; a2, a3 and c2 wait behind a1 and c1");
    publish_all(&pool, &relay).await;
    let dead = dead_letters(&dlq).await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].headers[dlq::ERROR], "a1 is broken");

    // The cause is fixed; a1 is redriven: it applies, then a2 and a3 in order.
    sqlx::query("DELETE FROM broken WHERE tote_id = 'a1'").execute(&pool).await.unwrap();
    dlq::answer(&testing::brokers(), &dead[0], dlq::Action::Redrive).await.unwrap();
    let total = consume_until(&mut consumer, |t| t.answers == 1).await;
    assert_eq!((total.applied, total.released), (3, 2));
    assert_eq!(applied_totes(&pool).await, ["b1", "a1", "a2", "a3"]);

    // The same redrive again (an operator's second try) applies nothing.
    dlq::answer(&testing::brokers(), &dead[0], dlq::Action::Redrive).await.unwrap();
    let total = consume_until(&mut consumer, |t| t.answers == 1).await;
    assert_eq!((total.applied, total.duplicates, total.released), (0, 0, 0));

    // c1 is discarded: it never applies, c2 does.
    dlq::answer(&testing::brokers(), &dead[1], dlq::Action::Discard).await.unwrap();
    let total = consume_until(&mut consumer, |t| t.answers == 1).await;
    assert_eq!((total.applied, total.released), (1, 1));
    assert_eq!(applied_totes(&pool).await, ["b1", "a1", "a2", "a3", "c2"]);
    assert_eq!(parked_rows(&pool).await, 0, "nothing waits any more");

    // A copy of the discarded event (the outbox publishes at least once) never applies.
    enqueue(&pool, &topic, &[&c[0]]).await;
    publish_all(&pool, &relay).await;
    let total = consume_until(&mut consumer, |t| t.duplicates == 1).await;
    assert_eq!((total.applied, total.dead_lettered), (0, 0));

    // A new event of order-a flows again at once.
    enqueue(&pool, &topic, &[&event_of("order-a", "a4")]).await;
    publish_all(&pool, &relay).await;
    let total = consume_until(&mut consumer, |t| t.applied == 1).await;
    assert_eq!(total.parked, 0);
    assert_eq!(applied_totes(&pool).await.last().map(String::as_str), Some("a4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_broker_can_never_take_is_set_aside_and_the_rows_behind_it_are_published() {
    let (pool, topic, dlq) = setup().await;
    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let too_large = vec![0u8; 2 * 1024 * 1024];
    outbox::enqueue_raw(&mut conn, &topic, "order-1", &too_large, BTreeMap::new()).await.unwrap();
    drop(conn);
    enqueue(&pool, &topic, &[&event("behind")]).await;
    assert_eq!(publish_all(&pool, &relay).await, 2, "one set aside, one published");
    assert_eq!(outbox::depth(&pool).await.unwrap(), 0);
    let refused: Vec<(i64, String)> =
        sqlx::query_as("SELECT length(payload)::int8, error FROM outbox_refused").fetch_all(&pool).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 2 * 1024 * 1024);
    assert!(refused[0].1.to_lowercase().contains("too large"), "{}", refused[0].1);
    let mut consumer = consumer(&pool, &topic, &dlq, &format!("{topic}.group"));
    consume_until(&mut consumer, |t| t.applied == 1).await;
    assert_eq!(applied_totes(&pool).await, ["behind"]);
}

#[tokio::test]
async fn enqueue_all_numbers_the_events_in_the_order_given_with_their_headers() {
    let (pool, topic, _) = setup().await;
    let events: Vec<EventEnvelope> = ["a", "b", "c"].iter().map(|t| event_of(&format!("order-{t}"), t)).collect();
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue_all(&mut tx, &topic, &events).await.unwrap();
    tx.commit().await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT key, headers->>'event_id', headers->>'event_type' FROM outbox WHERE topic = $1 ORDER BY id",
    )
    .bind(&topic)
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, String, String)> =
        events.iter().map(|e| (e.order_id.clone(), e.event_id.clone(), "Sorted".to_owned())).collect();
    assert_eq!(rows, expected);
}
