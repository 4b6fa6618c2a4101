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

use crate::backoff::Backoff;
use crate::envelope::{self, Decoded, EventEnvelope};
use crate::trace::TraceParent;
use crate::{dlq, metrics, outbox, telemetry};
use futures::FutureExt;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// The event cannot be applied as it is: tried [`MAX_ATTEMPTS`] times like any failure
    /// (with the consumer's back-off), then it goes to the dead-letter topic.
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
    #[error("a message failed (attempt {attempt} of {MAX_ATTEMPTS}): {reason}")]
    Failed { reason: String, attempt: u32 },
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
    /// Keys with a dead letter at their head (`None`: to be loaded from the database).
    parked_keys: Option<HashSet<String>>,
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

    async fn apply(&mut self, batch: &[OwnedMessage]) -> Result<Applied, ConsumeError> {
        let mut outcome = Applied::default();
        let mut tx = self.pool.begin().await?;
        if self.parked_keys.is_none() {
            self.parked_keys = Some(parked_keys(&mut tx, &self.group).await?);
        }
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
            self.apply_one(&mut tx, Incoming::read(message), &mut outcome).await?;
            advanced.insert(partition, (stored, message.offset() + 1));
        }
        for (partition, (stored, next)) in &advanced {
            if !store_position(&mut tx, &self.group, partition, *stored, *next).await? {
                tracing::info!(topic = %partition.0, partition = partition.1, "offsets moved by another instance; batch dropped");
                tx.rollback().await?;
                self.positions.clear();
                self.parked_keys = None;
                return Ok(Applied { fenced: true, ..Applied::default() });
            }
        }
        tx.commit().await?;
        for (partition, (_, next)) in advanced {
            self.positions.insert(partition, Some(next));
        }
        Ok(outcome)
    }

    /// One message from the topic: an operator's answer to a dead letter is carried out (if it
    /// is for this group); a message whose key waits behind a dead letter is parked; any other
    /// is applied.
    async fn apply_one(
        &mut self,
        conn: &mut PgConnection,
        incoming: Incoming,
        outcome: &mut Applied,
    ) -> Result<(), ConsumeError> {
        if let Some(answer) = dlq::Answer::of(&incoming.headers) {
            if answer.group == self.group {
                outcome.answers += 1;
                self.carry_out(conn, &answer, outcome).await?;
            }
            return Ok(());
        }
        if !incoming.key.is_empty() && self.parked_keys.as_ref().is_some_and(|keys| keys.contains(&incoming.key)) {
            park(conn, &self.group, &incoming, false, "").await?;
            outcome.parked += 1;
            let event_type = incoming.headers.get(envelope::header::EVENT_TYPE).map_or("unknown", String::as_str);
            metrics::event_consumed(event_type, "parked");
            return Ok(());
        }
        self.apply_event(conn, &incoming, outcome).await?;
        Ok(())
    }

    /// Redrives or discards the dead letter `answer` names, then applies what waited behind it
    /// in order, until one of those is dead in turn. An answer for a dead letter that is no
    /// longer parked (answered before) does nothing: a redriven event applies once.
    async fn carry_out(
        &mut self,
        conn: &mut PgConnection,
        answer: &dlq::Answer,
        outcome: &mut Applied,
    ) -> Result<(), ConsumeError> {
        let head: Option<ParkedRow> = sqlx::query_as(
            "SELECT id, key, topic, partition, \"offset\", payload, headers FROM parked \
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND \"offset\" = $4 AND dead FOR UPDATE",
        )
        .bind(&self.group)
        .bind(&answer.topic)
        .bind(answer.partition)
        .bind(answer.offset)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(head) = head else {
            tracing::info!(topic = %answer.topic, partition = answer.partition, offset = answer.offset, action = answer.action.as_str(), "no dead letter parked there (answered before?); nothing to do");
            return Ok(());
        };
        tracing::info!(topic = %answer.topic, partition = answer.partition, offset = answer.offset, action = answer.action.as_str(), key = %head.key, "operator's answer to a dead letter");
        let (id, key) = (head.id, head.key.clone());
        let head = head.into_incoming();
        match answer.action {
            dlq::Action::Redrive => {
                if !self.apply_event(conn, &head, outcome).await? {
                    return Ok(()); // dead again: it stays at the head
                }
            }
            // Recorded in the inbox as seen, so no copy of it applies later (a re-published
            // duplicate waiting behind it, or a replay from the start).
            dlq::Action::Discard => record_seen(conn, &head).await?,
        }
        sqlx::query("DELETE FROM parked WHERE id = $1").bind(id).execute(&mut *conn).await?;
        if key.is_empty() {
            return Ok(());
        }
        let waiting: Vec<ParkedRow> = sqlx::query_as(
            "SELECT id, key, topic, partition, \"offset\", payload, headers FROM parked \
             WHERE consumer_group = $1 AND key = $2 AND NOT dead ORDER BY id FOR UPDATE",
        )
        .bind(&self.group)
        .bind(&key)
        .fetch_all(&mut *conn)
        .await?;
        for row in waiting {
            sqlx::query("DELETE FROM parked WHERE id = $1").bind(row.id).execute(&mut *conn).await?;
            outcome.released += 1;
            if !self.apply_event(conn, &row.into_incoming(), outcome).await? {
                return Ok(()); // the new head: the rest keep waiting behind it
            }
        }
        if let Some(keys) = self.parked_keys.as_mut() {
            keys.remove(&key);
        }
        Ok(())
    }

    /// Applies one message in a savepoint: skipped if its event id is in the inbox, moved to the
    /// dead-letter topic (through the outbox, in the same transaction) if it cannot be applied.
    /// False if it was dead-lettered.
    async fn apply_event(
        &mut self,
        conn: &mut PgConnection,
        incoming: &Incoming,
        outcome: &mut Applied,
    ) -> Result<bool, ConsumeError> {
        let decoded = match envelope::decode(incoming.payload.as_deref()) {
            Ok(decoded) => decoded,
            Err(error) => {
                let reason = self.attempt_failed(incoming, error.to_string())?;
                self.dead_letter(conn, incoming, &reason).await?;
                outcome.dead_lettered += 1;
                metrics::event_consumed("undecodable", "dead_lettered");
                return Ok(false);
            }
        };
        let mut savepoint = conn.begin().await?;
        if !insert_inbox(&mut savepoint, &decoded, incoming).await? {
            outcome.duplicates += 1;
            metrics::event_consumed(&decoded.envelope.event_type, "duplicate");
            savepoint.rollback().await?;
            return Ok(true);
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
        let reason = match self.handler.handle(&mut savepoint, &decoded.envelope).instrument(span.clone()).await {
            Ok(()) => {
                savepoint.commit().await?;
                outcome.applied += 1;
                metrics::event_consumed(&decoded.envelope.event_type, "applied");
                return Ok(true);
            }
            Err(HandlerError::Database(error)) if transient(&error) => return Err(error.into()),
            Err(HandlerError::Rejected(reason)) => {
                savepoint.rollback().await?;
                span.in_scope(|| self.attempt_failed(incoming, reason))?
            }
            Err(HandlerError::Database(error)) => {
                savepoint.rollback().await?;
                span.in_scope(|| self.attempt_failed(incoming, error.to_string()))?
            }
        };
        self.dead_letter(conn, incoming, &reason).await?;
        outcome.dead_lettered += 1;
        metrics::event_consumed(&decoded.envelope.event_type, "dead_lettered");
        Ok(false)
    }

    /// Counts a failed attempt at `incoming`: an error (the batch is read again after the
    /// consumer's back-off) until it failed [`MAX_ATTEMPTS`] times, then the reason to
    /// dead-letter it with.
    fn attempt_failed(&mut self, incoming: &Incoming, reason: String) -> Result<String, ConsumeError> {
        let key = ((incoming.topic.clone(), incoming.partition), incoming.offset);
        let attempts = self.failures.entry(key.clone()).or_default();
        *attempts += 1;
        if *attempts < MAX_ATTEMPTS {
            tracing::warn!(%reason, attempt = *attempts, "message failed; retrying");
            return Err(ConsumeError::Failed { reason, attempt: *attempts });
        }
        self.failures.remove(&key);
        tracing::error!(%reason, "message failed {MAX_ATTEMPTS} times; dead-lettered");
        Ok(format!("failed {MAX_ATTEMPTS} times: {reason}"))
    }

    /// Sends `incoming` to the dead-letter topic (through the outbox) and makes it the head of
    /// its key: later messages with that key wait behind it.
    async fn dead_letter(
        &mut self,
        conn: &mut PgConnection,
        incoming: &Incoming,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        tracing::warn!(topic = %incoming.topic, partition = incoming.partition, offset = incoming.offset, key = %incoming.key, %error, "dead-lettering message");
        let headers = BTreeMap::from([
            (dlq::ERROR.to_owned(), error.to_owned()),
            (dlq::SOURCE_TOPIC.to_owned(), incoming.topic.clone()),
            (dlq::SOURCE_PARTITION.to_owned(), incoming.partition.to_string()),
            (dlq::SOURCE_OFFSET.to_owned(), incoming.offset.to_string()),
            (dlq::GROUP.to_owned(), self.group.clone()),
        ]);
        let payload = incoming.payload.as_deref().unwrap_or_default();
        outbox::enqueue_raw(conn, &self.dead_letter_topic, &incoming.key, payload, headers).await?;
        park(conn, &self.group, incoming, true, error).await?;
        if !incoming.key.is_empty()
            && let Some(keys) = self.parked_keys.as_mut()
        {
            keys.insert(incoming.key.clone());
        }
        Ok(())
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

/// One message to apply: as read from its topic, or as parked.
#[derive(Debug, Clone)]
struct Incoming {
    topic: String,
    partition: i32,
    offset: i64,
    /// The message key (the order id); empty if it had none.
    key: String,
    payload: Option<Vec<u8>>,
    headers: BTreeMap<String, String>,
}

impl Incoming {
    fn read(message: &OwnedMessage) -> Self {
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: crate::events::header_map(message.headers()),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ParkedRow {
    id: i64,
    key: String,
    topic: String,
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
}

impl ParkedRow {
    fn into_incoming(self) -> Incoming {
        Incoming {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key,
            payload: self.payload,
            headers: self.headers.0,
        }
    }
}

/// Records `decoded` (read as `incoming`) in the inbox; false if it was there already.
async fn insert_inbox(conn: &mut PgConnection, decoded: &Decoded, incoming: &Incoming) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, event_type, topic, partition, \"offset\") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(decoded.event_id)
    .bind(&decoded.envelope.event_type)
    .bind(&incoming.topic)
    .bind(incoming.partition)
    .bind(incoming.offset)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Marks a discarded message's event (if it is one) as seen, without applying it.
async fn record_seen(conn: &mut PgConnection, incoming: &Incoming) -> Result<(), sqlx::Error> {
    match envelope::decode(incoming.payload.as_deref()) {
        Ok(decoded) => insert_inbox(conn, &decoded, incoming).await.map(drop),
        Err(_) => Ok(()),
    }
}

/// Sets `incoming` aside for `group`: as the dead head of its key, or waiting behind one.
async fn park(
    conn: &mut PgConnection,
    group: &str,
    incoming: &Incoming,
    dead: bool,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO parked (consumer_group, key, topic, partition, \"offset\", payload, headers, dead, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (consumer_group, topic, partition, \"offset\") DO UPDATE SET dead = EXCLUDED.dead, error = EXCLUDED.error",
    )
    .bind(group)
    .bind(&incoming.key)
    .bind(&incoming.topic)
    .bind(incoming.partition)
    .bind(incoming.offset)
    .bind(incoming.payload.as_deref())
    .bind(sqlx::types::Json(&incoming.headers))
    .bind(dead)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys with a dead letter at their head, for `group`.
async fn parked_keys(conn: &mut PgConnection, group: &str) -> Result<HashSet<String>, sqlx::Error> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key FROM parked WHERE consumer_group = $1 AND dead AND key <> ''")
            .bind(group)
            .fetch_all(conn)
            .await?;
    Ok(keys.into_iter().collect())
}
