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

use crate::envelope::{self, EventEnvelope};
use crate::trace::TraceParent;
use crate::{metrics, outbox, telemetry};
use futures::FutureExt;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why one event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A database error. Transient ones (database unreachable, serialisation failure) retry
    /// the batch until they pass; any other is tried [`MAX_ATTEMPTS`] times, then the event
    /// goes to the dead-letter topic and the partition moves on.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event can never be applied as it is: it goes to the dead-letter topic.
    #[error("{0}")]
    Rejected(String),
}

/// The event's order id; an event without a valid one can never be applied (dead letter).
pub fn order_id(event: &EventEnvelope) -> Result<uuid::Uuid, HandlerError> {
    uuid::Uuid::parse_str(&event.order_id)
        .map_err(|_| HandlerError::Rejected(format!("order_id {:?} is not a UUID", event.order_id)))
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
    /// Messages passed over because they were not at the stored offset (a seek followed).
    pub skipped: usize,
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
    /// Messages whose handler failed with a non-transient database error, and how often.
    failures: HashMap<(Partition, i64), u32>,
}

/// The pause after librdkafka reports an error, so a flood of reports is no busy loop.
const KAFKA_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// How often the consumer lock's connection is checked while consuming.
const LOCK_CHECK: Duration = Duration::from_secs(1);

/// How often a message whose handler keeps failing (not a dependency being down) is tried,
/// with the consumer's back-off in between, before it goes to the dead-letter topic.
pub const MAX_ATTEMPTS: u32 = 5;

/// Whether a database error says "try again later" (the database unreachable, a
/// serialisation failure or deadlock, out of resources) rather than "this event cannot apply".
fn transient(error: &sqlx::Error) -> bool {
    crate::db::unreachable(error)
        || matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("40") || c.starts_with("53")))
}

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
            failures: HashMap::new(),
        })
    }

    /// Consumes until `shutdown` while this instance holds the consumer lock (waiting for it
    /// first); a failed batch is retried after a back-off (no busy loop).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let lock = tokio::select! {
                () = shutdown.cancelled() => return,
                lock = self.take_lock() => lock,
            };
            let mut lock = match lock {
                Ok(lock) => lock,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, group = %self.group, "cannot take the consumer lock");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
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
                    Ok(_) => backoff = Duration::from_millis(100),
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?backoff, group = %self.group, "consumer batch failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
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

    /// Waits until this instance holds the group's consumer lock, on a connection of its own.
    async fn take_lock(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = self.pool.acquire().await?.detach();
        let mut waiting = false;
        loop {
            let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(2, hashtext($1))")
                .bind(&self.group)
                .fetch_one(&mut conn)
                .await?;
            if held {
                tracing::info!(group = %self.group, "took the consumer lock");
                return Ok(conn);
            }
            if !waiting {
                tracing::info!(group = %self.group, "another instance consumes; standing by");
                waiting = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Takes every partition of the topics, each from its stored offset (or its beginning).
    async fn assign(&mut self) -> Result<(), ConsumeError> {
        let (consumer, topics) = (Arc::clone(&self.consumer), self.topics.clone());
        let partitions = tokio::task::spawn_blocking(move || crate::events::watermarks(&*consumer, &topics))
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
            let stored = load_position(&mut conn, &self.group, &partition).await?;
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

    async fn apply(&mut self, batch: &[OwnedMessage]) -> Result<Applied, ConsumeError> {
        let mut outcome = Applied::default();
        let mut tx = self.pool.begin().await?;
        // Per partition: (the stored offset this batch started from, the next offset now).
        let mut advanced: BTreeMap<Partition, (Option<i64>, i64)> = BTreeMap::new();
        for message in batch {
            let partition = (message.topic().to_owned(), message.partition());
            let stored = match self.positions.get(&partition) {
                Some(stored) => *stored,
                None => {
                    let stored = load_position(&mut tx, &self.group, &partition).await?;
                    self.positions.insert(partition.clone(), stored);
                    stored
                }
            };
            let next = advanced.get(&partition).map(|(_, next)| *next).or(stored);
            if let Some(next) = next.filter(|next| *next != message.offset()) {
                outcome.skipped += 1;
                self.seek(&partition, next);
                continue;
            }
            self.seeking.remove(&partition);
            self.apply_one(&mut tx, message, &mut outcome).await?;
            advanced.insert(partition, (stored, message.offset() + 1));
        }
        for (partition, (stored, next)) in &advanced {
            if !store_position(&mut tx, &self.group, partition, *stored, *next).await? {
                tracing::info!(topic = %partition.0, partition = partition.1, "offsets moved by another instance; batch dropped");
                tx.rollback().await?;
                self.positions.clear();
                return Ok(Applied { fenced: true, ..Applied::default() });
            }
        }
        tx.commit().await?;
        for (partition, (_, next)) in advanced {
            self.positions.insert(partition, Some(next));
        }
        Ok(outcome)
    }

    /// Applies one message in a savepoint: skipped if its event id is in the inbox, moved to the
    /// dead-letter topic (through the outbox, in the same transaction) if it cannot be applied.
    async fn apply_one(
        &mut self,
        conn: &mut PgConnection,
        message: &OwnedMessage,
        outcome: &mut Applied,
    ) -> Result<(), ConsumeError> {
        let decoded = match envelope::decode(message.payload()) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.dead_letter(conn, message, &error.to_string()).await?;
                outcome.dead_lettered += 1;
                metrics::event_consumed("undecodable", "dead_lettered");
                return Ok(());
            }
        };
        let mut savepoint = conn.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO inbox (event_id, event_type, topic, partition, \"offset\") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(decoded.event_id)
        .bind(&decoded.envelope.event_type)
        .bind(message.topic())
        .bind(message.partition())
        .bind(message.offset())
        .execute(&mut *savepoint)
        .await?
        .rows_affected();
        if inserted == 0 {
            outcome.duplicates += 1;
            metrics::event_consumed(&decoded.envelope.event_type, "duplicate");
            savepoint.rollback().await?;
            return Ok(());
        }
        let trace = TraceParent::parse(&decoded.envelope.traceparent);
        let span = tracing::info_span!(
            "apply",
            event_type = %decoded.envelope.event_type,
            order_id = %decoded.envelope.order_id,
            event_id = %decoded.event_id,
            trace_id = trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
        );
        if let Some(trace) = trace {
            telemetry::continue_trace(&span, &trace);
        }
        match self.handler.handle(&mut savepoint, &decoded.envelope).instrument(span.clone()).await {
            Ok(()) => {
                savepoint.commit().await?;
                outcome.applied += 1;
                metrics::event_consumed(&decoded.envelope.event_type, "applied");
                Ok(())
            }
            Err(HandlerError::Rejected(reason)) => {
                savepoint.rollback().await?;
                span.in_scope(|| tracing::warn!(%reason, "event cannot be applied; dead-lettered"));
                self.dead_letter(conn, message, &reason).await?;
                outcome.dead_lettered += 1;
                metrics::event_consumed(&decoded.envelope.event_type, "dead_lettered");
                Ok(())
            }
            Err(HandlerError::Database(error)) if transient(&error) => Err(error.into()),
            Err(HandlerError::Database(error)) => {
                savepoint.rollback().await?;
                let key = ((message.topic().to_owned(), message.partition()), message.offset());
                let attempts = self.failures.entry(key.clone()).or_default();
                *attempts += 1;
                if *attempts < MAX_ATTEMPTS {
                    span.in_scope(|| tracing::warn!(%error, attempt = *attempts, "event failed to apply; retrying"));
                    return Err(error.into());
                }
                self.failures.remove(&key);
                let reason = format!("failed to apply {MAX_ATTEMPTS} times: {error}");
                span.in_scope(|| tracing::error!(%reason, "event dead-lettered"));
                self.dead_letter(conn, message, &reason).await?;
                outcome.dead_lettered += 1;
                metrics::event_consumed(&decoded.envelope.event_type, "dead_lettered");
                Ok(())
            }
        }
    }

    async fn dead_letter(
        &self,
        conn: &mut PgConnection,
        message: &OwnedMessage,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %error, "dead-lettering message");
        let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        let headers = BTreeMap::from([
            ("dlq.error".to_owned(), error.to_owned()),
            ("dlq.source.topic".to_owned(), message.topic().to_owned()),
            ("dlq.source.partition".to_owned(), message.partition().to_string()),
            ("dlq.source.offset".to_owned(), message.offset().to_string()),
            ("dlq.consumer.group".to_owned(), self.group.clone()),
        ]);
        outbox::enqueue_raw(conn, &self.dead_letter_topic, &key, message.payload().unwrap_or_default(), headers).await
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

async fn load_position(
    conn: &mut PgConnection,
    group: &str,
    partition: &Partition,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
    )
    .bind(group)
    .bind(&partition.0)
    .bind(partition.1)
    .fetch_optional(conn)
    .await
}

/// Moves the stored offset from `from` to `next`; false if it is no longer `from`.
async fn store_position(
    conn: &mut PgConnection,
    group: &str,
    partition: &Partition,
    from: Option<i64>,
    next: i64,
) -> Result<bool, sqlx::Error> {
    let (topic, number) = (partition.0.as_str(), partition.1);
    let result = match from {
        None => {
            sqlx::query(
                "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(topic)
            .bind(number)
            .bind(next)
            .execute(conn)
            .await?
        }
        Some(from) => {
            sqlx::query(
                "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() \
                 WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
            )
            .bind(group)
            .bind(topic)
            .bind(number)
            .bind(next)
            .bind(from)
            .execute(conn)
            .await?
        }
    };
    Ok(result.rows_affected() == 1)
}
