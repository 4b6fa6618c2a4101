//! The inbox consumer: applies a batch of events in ONE transaction that also records each
//! event id (duplicates are skipped) and the next offset per partition. Offsets live in the
//! service's own database: the consumer seeks to them whenever a partition's next message is
//! not the stored one (start-up, rebalance, retry), and Kafka's committed offsets are unused.
//!
//! The stored offset is also a fence: a batch commits only if the offsets it started from are
//! still the stored ones, so an instance that is no longer the consumer applies nothing.
//!
//! No Kafka consumer group: one instance per service consumes, the holder of an advisory lock
//! in the service's database, and takes every partition of its topics itself (`assign`); other
//! instances stand by. A killed consumer's lock goes with its connection, so a standby or a
//! restarted instance takes over at once, whatever the broker remembers (docs/adr/0004).
//!
//! Whatever a message holds, the partition moves on (docs/adr/0006): only a transient failure
//! (the database unreachable, a serialisation conflict) rolls the batch back to be read again;
//! a message that cannot apply is dead-lettered at once in its own savepoint, an event of a
//! type this build does not know is recorded and skipped, and nothing of a message's bytes
//! reaches the database unchecked ([`incoming`]).

mod apply;
mod incoming;
mod store;

pub use store::stored_offsets;

use crate::backoff::Backoff;
use crate::envelope::EventEnvelope;
use crate::metrics;
use futures::FutureExt;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

/// Whether `event` travels under its own order's key (or is not about an order: stock events
/// carry no order id and are keyed by SKU). An event keyed otherwise is never applied: it
/// would apply outside its order's turn. A rebuild skips it as the live consumer does.
pub fn keyed_as_its_order(event: &EventEnvelope, key: &str) -> bool {
    event.order_id.is_empty() || event.order_id == key
}

/// A service's reaction to one consumed event, run inside the batch transaction.
pub trait EventHandler: Send + Sync {
    /// Applies `event` using `conn` (the batch transaction); may enqueue outbox rows.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
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
    /// Whether the partitions are assigned to `consumer`.
    assigned: bool,
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

/// How often the consumer lock's connection is checked while consuming.
const LOCK_CHECK: Duration = Duration::from_secs(1);

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
pub fn consumer_config(brokers: &str, group: &str, fetch_wait: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
        .set("session.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "5000");
    config
}

impl<H: EventHandler> InboxConsumer<H> {
    pub fn new(settings: ConsumerSettings, pool: PgPool, handler: H) -> Result<Self, ConsumeError> {
        let consumer: StreamConsumer =
            consumer_config(&settings.brokers, &settings.group, settings.fetch_wait).create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topics: settings.topics,
            assigned: false,
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

    /// Consumes until `shutdown` while this instance holds the consumer lock (waiting for it
    /// first); a failed batch is retried after a back-off (no busy loop).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        loop {
            let lock = tokio::select! {
                () = shutdown.cancelled() => return,
                // The group's consumer lock: one consuming instance per service.
                lock = crate::db::hold_lock(&self.pool, &self.group) => lock,
            };
            let mut lock = match lock {
                Ok(lock) => lock,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff.next(), group = %self.group, "cannot take the consumer lock");
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let mut checked = Instant::now();
            loop {
                let result = tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = self.consume_next_batch() => result,
                };
                match result {
                    Ok(_) => backoff.reset(),
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?backoff.next(), group = %self.group, "consumer batch failed; retrying");
                        if !backoff.wait(&shutdown).await {
                            return;
                        }
                    }
                }
                if checked.elapsed() >= LOCK_CHECK {
                    checked = Instant::now();
                    // The lock lives as long as its connection (a database restart ends both).
                    if let Err(error) = sqlx::query("SELECT 1").execute(&mut lock).await {
                        tracing::warn!(%error, group = %self.group, "lost the consumer lock; standing by");
                        self.unassign();
                        break;
                    }
                }
            }
        }
    }

    /// Takes every partition of the topics, each from its stored offset (or its beginning).
    async fn assign(&mut self) -> Result<(), ConsumeError> {
        let (consumer, topics) = (Arc::clone(&self.consumer), self.topics.clone());
        let partitions = tokio::task::spawn_blocking(move || crate::topics::watermarks(&*consumer, &topics))
            .await
            .map_err(|_| KafkaError::Canceled)??;
        if partitions.is_empty() {
            return Err(ConsumeError::NoPartitions(self.topics.clone()));
        }
        self.positions.clear();
        self.seeking.clear();
        let mut conn = self.pool.acquire().await?;
        let mut assignment = TopicPartitionList::new();
        for partition in partitions.into_keys() {
            let stored = store::load_position(&mut conn, &self.group, &partition).await?;
            assignment.add_partition_offset(
                &partition.0,
                partition.1,
                stored.map_or(Offset::Beginning, Offset::Offset),
            )?;
            self.positions.insert(partition, stored);
        }
        self.consumer.assign(&assignment)?;
        self.assigned = true;
        tracing::info!(partitions = assignment.count(), group = %self.group, "partitions assigned");
        Ok(())
    }

    fn unassign(&mut self) {
        if let Err(error) = self.consumer.unassign() {
            tracing::warn!(%error, "unassigning failed");
        }
        self.assigned = false;
        self.positions.clear();
        self.seeking.clear();
        self.parked_keys = None;
    }

    /// Waits for at least one message, takes whatever else is ready (up to the batch size) and
    /// applies it all in one transaction.
    pub async fn consume_next_batch(&mut self) -> Result<Applied, ConsumeError> {
        if !self.assigned {
            self.assign().await?;
        }
        let mut batch = loop {
            match self.consumer.recv().await {
                Ok(message) => break vec![message.detach()],
                // librdkafka reports every failed connection attempt (the broker down or
                // restarting) and reconnects by itself with its own back-off. Those reports
                // queue up, so the consumer takes them in stride instead of backing off for
                // each: a broker back after a minute must not leave a minute of stale reports
                // to work through.
                Err(error) => {
                    tracing::warn!(%error, group = %self.group, "kafka reports a problem; librdkafka is retrying");
                    tokio::time::sleep(KAFKA_ERROR_PAUSE).await;
                }
            }
        };
        while batch.len() < self.batch_size {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer error");
                    break;
                }
                None => break,
            }
        }
        metrics::batch(batch.len());
        match self.apply(&batch).await {
            Ok(applied) if applied.fenced => {
                // Another instance (or an operator) moved the offsets: read from there.
                self.rewind(&batch);
                Ok(applied)
            }
            Ok(applied) => Ok(applied),
            Err(error) => {
                // Nothing was committed: forget cached offsets and read the batch again.
                self.positions.clear();
                self.seeking.clear();
                self.parked_keys = None;
                self.rewind(&batch);
                Err(error)
            }
        }
    }

    /// Seeks every partition of an uncommitted batch back to its first message, so the batch
    /// is read again at once (the stored offsets decide from there on), instead of waiting for
    /// a later message that may never come.
    fn rewind(&mut self, batch: &[OwnedMessage]) {
        let mut first: BTreeMap<Partition, i64> = BTreeMap::new();
        for message in batch {
            first.entry((message.topic().to_owned(), message.partition())).or_insert(message.offset());
        }
        for (partition, offset) in first {
            self.seeking.remove(&partition);
            self.seek(&partition, offset);
        }
    }

    fn seek(&mut self, partition: &Partition, offset: i64) {
        if self.seeking.get(partition) == Some(&offset) {
            return;
        }
        match self.consumer.seek(&partition.0, partition.1, Offset::Offset(offset), Duration::from_secs(5)) {
            Ok(()) => {
                tracing::debug!(topic = %partition.0, partition = partition.1, offset, "seeked to stored offset");
                self.seeking.insert(partition.clone(), offset);
            }
            Err(error) => {
                tracing::warn!(%error, topic = %partition.0, partition = partition.1, offset, "seek failed; will retry")
            }
        }
    }
}
