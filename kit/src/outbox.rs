//! The transactional outbox: [`enqueue`] writes an event in the caller's transaction; the
//! [`Relay`] publishes committed rows in id order with an idempotent producer and deletes what
//! the broker acknowledged.
//!
//! A row the broker can never take (too large, invalid) is moved to `outbox_refused` with the
//! broker's answer instead of being retried, so it cannot stop the rows behind it.
//!
//! Rows are read from the table, never from a high-water mark, so a row whose transaction
//! committed late (a lower id appearing after a higher one was published: the bigserial-gap
//! hazard) is still published. Per-order order holds because every decision about one order
//! locks that order's row first, so its outbox rows are numbered in commit order.

use crate::backoff::Backoff;
use crate::envelope::{self, Cause, EventEnvelope, header};
use crate::metrics;
use orderflow_proto::events::v1::event_envelope::Payload;
use prost::Message;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::{PgConnection, PgListener, PgPool};
use sqlx::types::Json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One advisory lock per database: the relay holding it is the only one publishing.
const RELAY_LOCK: &str = "orderflow.outbox-relay";

/// What an event is about, which decides its key: an order (keyed and identified by its id), or
/// a product's stock (keyed by SKU, no order id).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Order(&'a str),
    Stock(&'a str),
}

/// Emits a decided event: wraps `payload` in a new envelope from `producer` ([`envelope::build`])
/// and writes it to the outbox for `topic` in the caller's transaction, keyed by its subject.
/// Returns the envelope (for the timeline, or as the cause of what follows).
pub async fn emit(
    conn: &mut PgConnection,
    producer: &str,
    topic: &str,
    subject: Subject<'_>,
    payload: Payload,
    cause: &Cause,
) -> Result<EventEnvelope, sqlx::Error> {
    let (order_id, key) = match subject {
        Subject::Order(order_id) => (order_id, order_id),
        Subject::Stock(sku) => ("", sku),
    };
    let event = envelope::build(producer, order_id, payload, cause);
    enqueue(conn, topic, key, &event).await?;
    Ok(event)
}

/// Writes `envelope` to the outbox for `topic`, keyed by `key`, inside the caller's transaction.
pub async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    envelope: &EventEnvelope,
) -> Result<(), sqlx::Error> {
    enqueue_raw(conn, topic, key, &envelope.encode_to_vec(), headers_of(envelope)).await
}

/// The headers an event travels with: its type, id and trace context.
fn headers_of(envelope: &EventEnvelope) -> BTreeMap<String, String> {
    BTreeMap::from([
        (header::EVENT_TYPE.to_owned(), envelope.event_type.clone()),
        (header::EVENT_ID.to_owned(), envelope.event_id.clone()),
        (header::TRACEPARENT.to_owned(), envelope.traceparent.clone()),
    ])
}

/// Writes many envelopes for `topic`, each keyed by its order, to the outbox in one statement,
/// numbered in the order given (so they are published in that order).
pub async fn enqueue_all(conn: &mut PgConnection, topic: &str, envelopes: &[EventEnvelope]) -> Result<(), sqlx::Error> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = envelopes.iter().map(|e| e.order_id.as_str()).collect();
    let payloads: Vec<Vec<u8>> = envelopes.iter().map(Message::encode_to_vec).collect();
    let headers: Vec<String> =
        envelopes.iter().map(|e| serde_json::to_string(&headers_of(e)).unwrap_or_default()).collect();
    sqlx::query(
        "INSERT INTO outbox (topic, key, payload, headers) \
         SELECT $1, k, p, h::jsonb FROM unnest($2::text[], $3::bytea[], $4::text[]) WITH ORDINALITY AS u(k, p, h, n) ORDER BY n",
    )
    .bind(topic)
    .bind(keys)
    .bind(payloads)
    .bind(headers)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes an already encoded message (e.g. a dead letter) to the outbox.
pub async fn enqueue_raw(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: BTreeMap<String, String>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (topic, key, payload, headers) VALUES ($1, $2, $3, $4)")
        .bind(topic)
        .bind(key)
        .bind(payload)
        .bind(Json(headers))
        .execute(conn)
        .await?;
    Ok(())
}

/// Why a relay round failed; the relay retries after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    topic: String,
    key: String,
    payload: Vec<u8>,
    headers: Json<BTreeMap<String, String>>,
}

/// Publishes the outbox of one service database.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    batch_size: i64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("batch_size", &self.batch_size).finish_non_exhaustive()
    }
}

/// The relay's producer settings: idempotent (`enable.idempotence`, `acks=all`), lingering
/// `linger` so that a busy outbox goes out in batches while a lone event waits ~nothing.
pub fn producer_config(brokers: &str, linger: Duration) -> Result<ClientConfig, rdkafka::error::KafkaError> {
    let mut config = crate::kafka::client_config(brokers)?;
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", linger.as_millis().to_string())
        .set("message.timeout.ms", "30000");
    Ok(config)
}

impl Relay {
    /// A relay with the [`producer_config`] producer on `brokers`.
    pub fn new(pool: PgPool, brokers: &str, batch_size: i64, linger: Duration) -> Result<Self, RelayError> {
        let producer = producer_config(brokers, linger)?.create()?;
        Ok(Self { pool, producer, batch_size })
    }

    /// Publishes until `shutdown`, as leader only, retrying with back-off after failures.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => return,
                Err(error) => tracing::warn!(%error, retry_in = ?backoff.next(), "outbox relay failed"),
            }
            backoff.wait(&shutdown).await;
        }
    }

    /// Takes the leader lock on a dedicated connection, then publishes whenever the outbox
    /// changes (NOTIFY) or at least every second. Every query runs on the lock's connection,
    /// so losing the connection (and with it the lock) stops this relay at once.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let mut conn = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            conn = crate::db::hold_lock(&self.pool, RELAY_LOCK) => conn?,
        };
        tracing::info!("outbox relay is the leader");
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("outbox").await?;
        loop {
            if self.publish_next_batch(&mut conn).await? > 0 {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => {
                    // Flush what is already committed before stopping.
                    while self.publish_next_batch(&mut conn).await? > 0 {}
                    return Ok(());
                }
                notified = listener.recv() => { notified?; }
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Publishes the oldest outbox rows in id order, waits for the broker's acknowledgements
    /// and deletes the acknowledged prefix. Returns how many rows were published.
    pub async fn publish_next_batch(&self, conn: &mut PgConnection) -> Result<usize, RelayError> {
        let rows: Vec<Row> = sqlx::query_as("SELECT id, topic, key, payload, headers FROM outbox ORDER BY id LIMIT $1")
            .bind(self.batch_size)
            .fetch_all(&mut *conn)
            .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        for row in &rows {
            let event_type =
                crate::envelope::type_label(row.headers.0.get(header::EVENT_TYPE).map_or("", String::as_str));
            let headers =
                row.headers.0.iter().fold(OwnedHeaders::new_with_capacity(row.headers.0.len()), |h, (key, value)| {
                    h.insert(Header { key, value: Some(value.as_bytes()) })
                });
            let record = FutureRecord::to(&row.topic).key(&row.key).payload(&row.payload).headers(headers);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push((row.id, event_type, delivery)),
                Err((error, _)) if refused_for_good(&error) => refused.push((row.id, error.to_string())),
                // The local queue is full: publish what is queued, the rest next round.
                Err((error, _)) => {
                    tracing::debug!(%error, "producer queue full");
                    break;
                }
            }
        }
        let mut acknowledged = Vec::with_capacity(deliveries.len());
        let mut failure = None;
        for (id, event_type, delivery) in deliveries {
            match delivery.await {
                Ok(Ok(_)) if failure.is_none() => {
                    acknowledged.push(id);
                    metrics::event_published(event_type);
                }
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) if refused_for_good(&error) && failure.is_none() => {
                    refused.push((id, error.to_string()));
                }
                Ok(Err((error, _))) => failure = failure.or(Some(error)),
                Err(_) => failure = failure.or(Some(rdkafka::error::KafkaError::Canceled)),
            }
        }
        if !acknowledged.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)").bind(&acknowledged).execute(&mut *conn).await?;
        }
        for (id, error) in &refused {
            tracing::error!(outbox_id = id, %error, "the broker can never take this outbox row; moved to outbox_refused");
            metrics::outbox_refused();
            sqlx::query(
                "WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING *) \
                 INSERT INTO outbox_refused (id, topic, key, payload, headers, created_at, error) \
                 SELECT id, topic, key, payload, headers, created_at, $2 FROM moved",
            )
            .bind(id)
            .bind(error)
            .execute(&mut *conn)
            .await?;
        }
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(acknowledged.len() + refused.len()),
        }
    }
}

/// Whether the broker (or librdkafka) refuses this one message for good: too large or
/// invalid. Retrying it would stop every row behind it.
fn refused_for_good(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{InvalidMessage, InvalidMessageSize, InvalidRecord, MessageSizeTooLarge};
    matches!(
        error.rdkafka_error_code(),
        Some(MessageSizeTooLarge | InvalidMessageSize | InvalidMessage | InvalidRecord)
    )
}

/// Outbox rows not yet published.
pub async fn depth(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(pool).await
}
