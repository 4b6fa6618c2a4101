//! The inbox consumer: applies a batch of events in ONE transaction that also records each
//! event id (duplicates are skipped) and the next offset per partition. Offsets live in the
//! service's own database: the consumer seeks to them whenever a partition's next message is
//! not the stored one (start-up, rebalance, retry), and Kafka's committed offsets are unused.
//!
//! The stored offset is also a fence: a batch commits only if the offsets it started from are
//! still the stored ones, so an instance that is no longer the consumer applies nothing.
//!
//! No Kafka consumer group: the instances of a service share its partitions through advisory
//! locks in the service's database ([`lease`], docs/adr/0010), and each `assign`s itself the
//! partitions it holds. A killed instance's locks go with its connection, so the others take
//! its partitions at their next tick, whatever the broker remembers.
//!
//! Whatever a message holds, the partition moves on (docs/adr/0006): only a transient failure
//! (the database unreachable, a serialisation conflict) rolls the batch back to be read again;
//! a message that cannot apply is dead-lettered at once in its own savepoint, an event of a
//! type this build does not know is recorded and skipped, and nothing of a message's bytes
//! reaches the database unchecked ([`incoming`]).

mod apply;
mod consume;
mod incoming;
pub mod lease;
mod plan;
mod store;

pub use store::stored_offsets;

use crate::envelope::EventEnvelope;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Why one event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A database error. Transient ones ([`crate::db::transient`]) roll the batch back to be
    /// read again after a back-off; any other fails the same way every time, so the event goes
    /// to the dead-letter topic at once and the partition moves on.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event cannot be applied as it is: it goes to the dead-letter topic at once.
    #[error("{0}")]
    Rejected(String),
}

/// The event's order id; an event without a valid one can never be applied (dead letter).
pub fn order_id(event: &EventEnvelope) -> Result<uuid::Uuid, HandlerError> {
    crate::types::OrderId::try_from(event).map(|id| id.uuid()).map_err(|e| HandlerError::Rejected(e.to_string()))
}

/// Why `event`, read from `topic` under `key`, is never applied (it is dead-lettered), or
/// `None` if it may be: it must travel under its own order's key (stock events carry no order
/// id and are keyed by SKU), else it would apply outside its order's turn; and it must be a
/// type its topic carries, from the topic's owner, else it is forged (only the owner writes
/// its topic; a topic this build does not know is not judged). A rebuild skips it as the live
/// consumer does.
pub fn misplaced(event: &EventEnvelope, topic: &str, key: &str) -> Option<String> {
    if !event.order_id.is_empty() && event.order_id != key {
        return Some("its key is not its order_id: events are keyed by their order".into());
    }
    let on = crate::topics::Topic::from_name(topic)?;
    let home = crate::topics::Topic::of_event(&event.event_type);
    if home.is_some_and(|home| home != on) || event.producer != on.owner() {
        let (event_type, producer) = (
            incoming::stored_text(event.event_type.as_bytes(), 100),
            incoming::stored_text(event.producer.as_bytes(), 100),
        );
        return Some(format!(
            "a {event_type} from {producer:?} does not belong on {topic}: only {} publishes there, and only its own events",
            on.owner()
        ));
    }
    None
}

/// A service's reaction to consumed events, run inside the batch transaction.
pub trait EventHandler: Send + Sync {
    /// Applies `event` using `conn` (the batch transaction); may enqueue outbox rows.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;

    /// Applies a batch of new, plain events (the fast path), in order, using `conn`. The
    /// default applies them one by one with [`EventHandler::handle`]; a handler that can do
    /// better (state read once for the batch, one statement per table) does that instead. Any
    /// error but a transient one makes the consumer roll the batch back and apply it again the
    /// careful way, event by event with `handle`, so both must decide the same.
    fn handle_all<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a EventEnvelope],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        async move {
            for event in events {
                let span = crate::telemetry::apply_span_of(&event.event_id).unwrap_or_else(|| apply::apply_span(event));
                self.handle(conn, event).instrument(span).await?;
            }
            Ok(())
        }
    }
}

/// What one call of [`InboxConsumer::consume_next_batch`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    pub duplicates: usize,
    pub dead_lettered: usize,
    /// Events of a type this build does not know: recorded in the inbox and skipped.
    pub unknown: usize,
    /// Messages that claim to be an operator's answer but are not a valid one: recorded in the
    /// dead-letter topic, never acted on.
    pub refused_answers: usize,
    /// Messages passed over because they were not at the stored offset (a seek followed).
    pub skipped: usize,
    /// Messages set aside because an earlier message with their key is a dead letter.
    pub parked: usize,
    /// Parked messages taken up again after an operator answered their dead letter.
    pub released: usize,
    /// Operators' answers to this group's dead letters (redrive or discard) met.
    pub answers: usize,
    /// The batch was dropped because another instance had moved the stored offsets.
    pub fenced: bool,
}

/// Why a batch failed as a whole; it is rolled back and consumed again after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the broker knows no partitions of {0:?} yet")]
    NoPartitions(Vec<String>),
}

type Partition = (String, i32);

/// Consumes topics into a service's database, exactly once in effect.
pub struct InboxConsumer<H> {
    consumer: Arc<StreamConsumer>,
    topics: Vec<String>,
    /// The partitions assigned to `consumer`: what `leases` holds, once a tick has synced them.
    assigned: BTreeSet<Partition>,
    leases: lease::Leases,
    /// Every partition of `topics`, as the broker last listed them, and when.
    all: Vec<Partition>,
    listed: Option<Instant>,
    /// When the leases are next ticked.
    next_tick: Instant,
    pool: PgPool,
    group: String,
    dead_letter_topic: String,
    batch_size: usize,
    handler: H,
    /// Next offset per partition as stored in the database; `None`: nothing stored yet.
    positions: HashMap<Partition, Option<i64>>,
    /// Partitions with a seek in flight, and its target.
    seeking: HashMap<Partition, i64>,
    /// Keys with a dead letter at their head (`None`: to be loaded from the database).
    parked_keys: Option<HashSet<String>>,
}

/// The pause after librdkafka reports an error, so a flood of reports is no busy loop.
const KAFKA_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// How often an instance counts the others and rebalances its partitions (docs/adr/0010):
/// a dead instance's partitions are taken within one tick.
const LEASE_TICK: Duration = Duration::from_millis(500);

/// How often the broker's list of partitions is read again (added partitions are taken then).
const LIST_PARTITIONS: Duration = Duration::from_secs(10);

impl<H> std::fmt::Debug for InboxConsumer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxConsumer").field("group", &self.group).finish_non_exhaustive()
    }
}

/// Where and how an [`InboxConsumer`] reads.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    pub dead_letter_topic: String,
    pub batch_size: usize,
    /// `KAFKA_FETCH_WAIT_MS`.
    pub fetch_wait: Duration,
}

/// The inbox consumer's settings: nothing committed to Kafka (offsets live in the database);
/// `fetch_wait` bounds how long a fetch waits for data (Kafka answers as soon as data arrives;
/// tansu 0.6 always waits it out, so there it is the hop latency at low load, traded against
/// the broker's CPU spent on empty fetches).
pub fn consumer_config(
    brokers: &str,
    group: &str,
    fetch_wait: Duration,
) -> Result<ClientConfig, rdkafka::error::KafkaError> {
    let mut config = crate::kafka::client_config(brokers)?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
        .set("session.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "5000");
    Ok(config)
}

impl<H: EventHandler> InboxConsumer<H> {
    pub fn new(settings: ConsumerSettings, pool: PgPool, handler: H) -> Result<Self, ConsumeError> {
        let consumer: StreamConsumer =
            consumer_config(&settings.brokers, &settings.group, settings.fetch_wait)?.create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topics: settings.topics,
            assigned: BTreeSet::new(),
            leases: lease::Leases::new(pool.clone(), settings.group.clone()),
            all: Vec::new(),
            listed: None,
            next_tick: Instant::now(),
            pool,
            group: settings.group,
            dead_letter_topic: settings.dead_letter_topic,
            batch_size: settings.batch_size.max(1),
            handler,
            positions: HashMap::new(),
            seeking: HashMap::new(),
            parked_keys: None,
        })
    }
}
