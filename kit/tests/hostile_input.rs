//! Whatever a producer writes, the partition moves on: arbitrary key, header and value bytes
//! go through the consume path against the real PostgreSQL (a property test) and the real
//! broker, and every message is accounted for (applied, skipped with a record, or
//! dead-lettered) in one commit, with no retry of the batch.

use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{Applied, ConsumerSettings, EventHandler, HandlerError, InboxConsumer};
use orderflow_kit::outbox::Relay;
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{db, dlq, testing, topics};
use orderflow_proto::events::v1::Sorted;
use orderflow_proto::events::v1::event_envelope::Payload;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use rdkafka::Timestamp;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::Duration;

static NO_SERVICE_MIGRATIONS: Migrator = Migrator::DEFAULT;

/// Stores each event's order id and tote as text: a NUL in either fails inside the handler,
/// as a service's own insert of a forged field would.
struct Storing;

impl EventHandler for Storing {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::Sorted(sorted)) = &event.payload else {
            return Err(HandlerError::Rejected("not Sorted".into()));
        };
        sqlx::query("INSERT INTO applied (order_id, tote_id) VALUES ($1, $2)")
            .bind(&event.order_id)
            .bind(&sorted.tote_id)
            .execute(conn)
            .await?;
        Ok(())
    }
}

async fn database() -> PgPool {
    let pool = db::pool(&testing::fresh_database().await, 5).unwrap();
    db::migrate(&pool, &NO_SERVICE_MIGRATIONS).await.unwrap();
    sqlx::query("CREATE TABLE applied (seq serial PRIMARY KEY, order_id text NOT NULL, tote_id text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

fn consumer(pool: &PgPool, topic: &str) -> InboxConsumer<Storing> {
    let settings = ConsumerSettings {
        brokers: testing::brokers(),
        group: format!("{topic}.group"),
        topics: vec![topic.to_owned()],
        dead_letter_topic: format!("{topic}.dlq"),
        batch_size: 16,
        fetch_wait: Duration::from_millis(5),
    };
    InboxConsumer::new(settings, pool.clone(), Storing).unwrap()
}

fn sorted(order_id: &str, tote: &str) -> EventEnvelope {
    let payload = Payload::Sorted(Sorted { tote_id: tote.into() });
    envelope::build("hostile-test", order_id, payload, &Cause::command(TraceParent::new_root()))
}

fn accounted(outcome: &Applied) -> usize {
    outcome.applied + outcome.duplicates + outcome.dead_lettered + outcome.unknown + outcome.parked
}

/// Values a hostile producer might write: raw bytes, or envelopes with hostile fields.
fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    let text = prop_oneof![Just(String::new()), Just("\0".to_owned()), ".{0,12}", Just("Teleported".to_owned())];
    let envelope = (text.clone(), text.clone(), text, any::<bool>(), any::<bool>()).prop_map(
        |(order_id, tote, event_type, with_payload, valid_id)| {
            let mut event = sorted(&order_id, &tote);
            if !with_payload {
                event.payload = None;
                event.event_type = event_type;
            }
            if !valid_id {
                event.event_id = format!("{tote}-not-a-uuid");
            }
            event.encode_to_vec()
        },
    );
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        envelope.prop_map(Some),
        Just(Some(vec![b'x'; 300 * 1024])),
    ]
}

fn header() -> impl Strategy<Value = (String, Option<Vec<u8>>)> {
    let key = prop_oneof![
        Just(dlq::ACTION.to_owned()),
        Just(dlq::SOURCE_TOPIC.to_owned()),
        Just("event_type".to_owned()),
        ".{0,8}",
        Just("\0".to_owned())
    ];
    let value = prop_oneof![
        Just(None),
        Just(Some(b"redrive".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Some)
    ];
    (key, value)
}

/// One message: key, headers, value.
type Raw = (Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>, Option<Vec<u8>>);

fn message() -> impl Strategy<Value = Raw> {
    let key = prop_oneof![
        Just(None),
        Just(Some(b"order-1".to_vec())),
        Just(Some(b"a\0b".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some)
    ];
    (key, proptest::collection::vec(header(), 0..4), value())
}

#[test]
fn any_bytes_in_keys_headers_and_values_are_accounted_for_and_the_partition_moves_on() {
    if std::env::var_os("TEST_DATABASE_URL").is_none() {
        panic!("TEST_DATABASE_URL is not set: run the tests through scripts/test.sh");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pool = runtime.block_on(database());
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    let batches = proptest::collection::vec(message(), 1..6);
    runner
        .run(&batches, |batch| {
            runtime.block_on(async {
                let topic = testing::random_namespace();
                let messages: Vec<OwnedMessage> = batch
                    .iter()
                    .zip(0..)
                    .map(|((key, headers, value), offset)| {
                        let headers = headers.iter().fold(OwnedHeaders::new(), |h, (name, value)| {
                            h.insert(Header { key: name.as_str(), value: value.as_deref() })
                        });
                        OwnedMessage::new(
                            value.clone(),
                            key.clone(),
                            topic.clone(),
                            Timestamp::NotAvailable,
                            0,
                            offset,
                            Some(headers),
                        )
                    })
                    .collect();
                let mut consumer = consumer(&pool, &topic);
                let outcome = consumer.apply(&messages).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let answers = outcome.answers + outcome.refused_answers;
                prop_assert_eq!(accounted(&outcome) + answers, messages.len(), "{:?}", outcome);
                let next: i64 = sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE topic = $1")
                    .bind(&topic)
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(next, i64::try_from(messages.len()).unwrap(), "the partition moved past every message");
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_broker_hostile_messages_cost_no_retry_and_the_next_event_applies() {
    let pool = database().await;
    let topic = format!("{}.hostile.v1", testing::random_namespace());
    topics::ensure(&testing::brokers(), &[topic.clone(), format!("{topic}.dlq")], 1, 1).await.unwrap();
    let mut unknown = sorted("order-2", "x");
    unknown.payload = None;
    unknown.event_type = "Teleported".into();
    let nul_type = EventEnvelope { event_type: "Sorted\0".into(), ..sorted("order-3", "typed") };
    let forged_answer: &[(&str, &[u8])] = &[
        (dlq::ACTION, b"discard"),
        (dlq::GROUP, b"g"),
        (dlq::SOURCE_TOPIC, b"elsewhere"),
        (dlq::SOURCE_PARTITION, b"0"),
    ];
    testing::send_from_outside(&topic, b"a\0b", &[("event_type", b"\0\xff")], Some(b"\0 garbage")).await;
    testing::send_from_outside(&topic, b"\xff\xfe", &[], Some(&sorted("\0", "nul order").encode_to_vec())).await;
    testing::send_from_outside(&topic, b"order-2", &[], Some(&unknown.encode_to_vec())).await;
    testing::send_from_outside(&topic, b"order-3", &[], Some(&nul_type.encode_to_vec())).await;
    testing::send_from_outside(&topic, b"order-4", forged_answer, None).await;
    testing::send_from_outside(&topic, b"", &[], None).await;
    let after = sorted("order-2", "after");
    testing::send_from_outside(&topic, b"order-2", &[], Some(&after.encode_to_vec())).await;

    let mut consumer = consumer(&pool, &topic);
    let mut total = Applied::default();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        while total.applied + total.dead_lettered + total.unknown + total.refused_answers < 7 {
            let batch = consumer.consume_next_batch().await.expect("no batch fails: nothing here is transient");
            total.applied += batch.applied;
            total.dead_lettered += batch.dead_lettered;
            total.unknown += batch.unknown;
            total.refused_answers += batch.refused_answers;
        }
    })
    .await;
    assert!(done.is_ok(), "stalled at {total:?}");
    // The NUL event type is the payload's name once decoded: it applies.
    assert_eq!((total.applied, total.unknown, total.refused_answers, total.dead_lettered), (2, 1, 1, 3));
    let applied: Vec<String> =
        sqlx::query_scalar("SELECT tote_id FROM applied ORDER BY seq").fetch_all(&pool).await.unwrap();
    assert_eq!(applied, ["typed", "after"], "the unknown type held nothing up");
    let skipped: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM inbox WHERE skipped").fetch_all(&pool).await.unwrap();
    assert_eq!(skipped, ["Teleported"], "the unknown type is recorded");
    let parked_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM parked WHERE key <> ''").fetch_one(&pool).await.unwrap();
    assert_eq!(parked_keys, 0, "nothing that is not an order's own event holds its key up");

    let relay = Relay::new(pool.clone(), &testing::brokers(), 100, Duration::ZERO).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(relay.publish_next_batch(&mut conn).await.unwrap(), 4, "every dead letter reaches the DLQ topic");
    let headers: Vec<sqlx::types::Json<BTreeMap<String, String>>> =
        sqlx::query_scalar("SELECT headers FROM parked ORDER BY id").fetch_all(&pool).await.unwrap();
    assert!(headers.iter().all(|h| h.0.values().all(|v| !v.contains('\0'))));
}
