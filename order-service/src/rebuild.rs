//! Rebuilds the order projection while the service runs (`orderctl rebuild order-service`).
//!
//! What is rebuilt is what the projection derives from the consumed topics (inventory,
//! fulfillment, shipping): each order's status, rejection reason, carrier, tracking number and
//! those events in its timeline. What order-service decided itself (the order as placed, its
//! idempotency key, a cancel, the handover to shipping, its payment) is its source of truth and
//! is copied.
//!
//! 1. Fresh tables in schema `order_rebuild`, seeded with the orders as placed (status PLACED,
//!    or CANCELLED with its reason) and order-service's own timeline entries.
//! 2. The consumed topics are replayed from the beginning into them, with the projection's own
//!    code (`project::apply`, nothing decided, nothing emitted), up to the offsets the live
//!    consumer has stored.
//! 3. Under a short exclusive lock on the live tables: the rebuild catches up to the live
//!    consumer's offsets as they are now and copies what was placed or cancelled meanwhile;
//!    the checksums of live and rebuilt tables must be equal; then the rebuilt tables are
//!    swapped in (the old ones move to schema `order_retired`), the new timeline gets WatchOrder's
//!    notify trigger, and the lock is released. The live consumer goes on from its stored
//!    offsets into the new tables: nothing is lost.

use crate::{CONSUMED, project};
use orderflow_kit::db;
use orderflow_kit::events::{KafkaError, Read, Reader};
use orderflow_kit::inbox::{HandlerError, misplaced, stored_offsets};
use orderflow_kit::topics::Topics;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Executor};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Migration 102's trigger (WatchOrder's notifications), for the rebuilt timeline table that
/// replaces the live one.
const CREATE_WATCH_TRIGGER: &str = "CREATE TRIGGER order_timeline_notify AFTER INSERT ON public.order_timeline \
     FOR EACH ROW EXECUTE FUNCTION order_timeline_notify()";

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// Events replayed (applied or skipped as not about an order).
    pub events: u64,
    /// Events the live consumer dead-lettered too (an unknown order), skipped.
    pub skipped: u64,
    pub orders: i64,
    pub elapsed: Duration,
    /// The checksum both the old and the rebuilt tables have.
    pub checksum: String,
}

impl Rebuilt {
    /// Events replayed per second.
    pub fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let events = self.events as f64;
        events / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Why a rebuild stopped; the live tables are untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the rebuilt tables differ from the live ones (live {live}, rebuilt {rebuilt}); nothing was swapped")]
    Mismatch { live: String, rebuilt: String },
}

const PREPARE: &str = "
DROP SCHEMA IF EXISTS order_rebuild CASCADE;
DROP SCHEMA IF EXISTS order_retired CASCADE;
CREATE SCHEMA order_rebuild;
CREATE TABLE order_rebuild.orders (LIKE public.orders INCLUDING ALL);
CREATE TABLE order_rebuild.order_timeline (LIKE public.order_timeline INCLUDING ALL);
ALTER TABLE order_rebuild.order_timeline ADD CONSTRAINT order_timeline_order_id_fkey
    FOREIGN KEY (order_id) REFERENCES order_rebuild.orders (order_id);
";

/// Copies what order-service decided itself and the rebuild does not have yet: orders placed,
/// cancels, and its own timeline entries (OrderPlaced, OrderCancelled, ShipmentRequested).
const COPY_DECISIONS: &str = "
INSERT INTO order_rebuild.orders (order_id, idempotency_key, request, customer_id, placed, status, rejection_reason,
       carrier, tracking_number, created_at, updated_at, cancellation_reason, promise_earliest, promise_latest,
       promised_earliest, promised_latest, payment_status)
SELECT o.order_id, o.idempotency_key, o.request, o.customer_id, o.placed,
       CASE WHEN o.status = 'CANCELLED' THEN 'CANCELLED' WHEN o.payment_status = 'DECLINED' THEN 'REJECTED' ELSE 'PLACED' END,
       CASE WHEN o.payment_status = 'DECLINED' THEN o.rejection_reason ELSE '' END, '', '', o.created_at, o.created_at,
       o.cancellation_reason, o.promised_earliest, o.promised_latest, o.promised_earliest, o.promised_latest, o.payment_status
FROM public.orders o
WHERE NOT EXISTS (SELECT 1 FROM order_rebuild.orders r WHERE r.order_id = o.order_id);
UPDATE order_rebuild.orders r SET status = 'CANCELLED', cancellation_reason = o.cancellation_reason
FROM public.orders o WHERE o.order_id = r.order_id AND o.status = 'CANCELLED' AND r.status <> 'CANCELLED';
UPDATE order_rebuild.orders r SET status = 'REJECTED', rejection_reason = o.rejection_reason
FROM public.orders o WHERE o.order_id = r.order_id AND o.payment_status = 'DECLINED' AND r.status = 'PLACED';
UPDATE order_rebuild.orders r SET payment_status = o.payment_status
FROM public.orders o WHERE o.order_id = r.order_id AND r.payment_status <> o.payment_status;
INSERT INTO order_rebuild.order_timeline
SELECT t.* FROM public.order_timeline t
WHERE t.producer = 'order-service' AND EXISTS (SELECT 1 FROM order_rebuild.orders r WHERE r.order_id = t.order_id)
ON CONFLICT (event_id) DO NOTHING;
";

/// One checksum over everything the projection holds (not `updated_at`, not the insertion
/// sequence), for schema `schema`.
fn checksum_query(schema: &str) -> String {
    format!(
        "SELECT md5(coalesce((SELECT string_agg(concat_ws('|', order_id, idempotency_key, md5(request), customer_id, md5(placed), \
         status, rejection_reason, carrier, tracking_number, cancellation_reason, hold_reason, created_at, promise_earliest, promise_latest, \
         promised_earliest, promised_latest, md5(last_scan), payment_status), ';' ORDER BY order_id) \
         FROM {schema}.orders), '') || '#' || coalesce((SELECT string_agg(concat_ws('|', event_id, order_id, event_type, producer, \
         occurred_at, step), ';' ORDER BY event_id) FROM {schema}.order_timeline), ''))"
    )
}

const SWAP: &str = "
CREATE SCHEMA order_retired;
ALTER SEQUENCE public.order_timeline_seq_seq OWNED BY NONE;
ALTER TABLE public.order_timeline SET SCHEMA order_retired;
ALTER TABLE public.orders SET SCHEMA order_retired;
ALTER TABLE order_rebuild.orders SET SCHEMA public;
ALTER TABLE order_rebuild.order_timeline SET SCHEMA public;
ALTER SEQUENCE public.order_timeline_seq_seq OWNED BY public.order_timeline.seq;
DROP SCHEMA order_rebuild;
";

/// Partition → the next offset to apply.
type Offsets = BTreeMap<(String, i32), i64>;

/// The replay: what has been read, and what was read beyond the current target.
struct Replay {
    reader: Reader,
    next: Offsets,
    held: Vec<Read>,
    events: u64,
    skipped: u64,
}

impl Replay {
    fn done(&self, target: &Offsets) -> bool {
        target.iter().all(|(partition, end)| self.next.get(partition).copied().unwrap_or(0) >= *end)
    }

    /// Applies every event below `target` (held ones first), in transactions of up to 500.
    async fn catch_up(&mut self, conn: &mut PgConnection, target: &Offsets) -> Result<(), RebuildError> {
        let below = |read: &Read| read.offset < target.get(&(read.topic.clone(), read.partition)).copied().unwrap_or(0);
        let (ready, later): (Vec<Read>, Vec<Read>) = std::mem::take(&mut self.held).into_iter().partition(below);
        self.held = later;
        let mut batch = ready;
        loop {
            while batch.len() < 500 && !self.done(target) {
                let read = tokio::time::timeout(Duration::from_secs(30), self.reader.next())
                    .await
                    .map_err(|_| KafkaError::NoMessageReceived)??;
                self.next.insert((read.topic.clone(), read.partition), read.offset + 1);
                if below(&read) { batch.push(read) } else { self.held.push(read) }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let mut tx = conn.begin().await?;
            tx.execute("SET LOCAL search_path TO order_rebuild").await?;
            for read in batch.drain(..) {
                self.events += 1;
                let key = String::from_utf8_lossy(read.key.as_deref().unwrap_or_default());
                let Some(envelope) = read.envelope.as_ref().ok().filter(|e| misplaced(e, &read.topic, &key).is_none())
                else {
                    self.skipped += 1; // the live consumer dead-lettered it too
                    continue;
                };
                // Each event in a savepoint, as the live consumer applies it: what fails for
                // good there was dead-lettered there, and is skipped here.
                let mut savepoint = tx.begin().await?;
                let mut applied = project::apply(&mut savepoint, envelope).await;
                if matches!(applied, Err(HandlerError::Rejected(_))) {
                    // An event is only ever about an order that existed when it was decided:
                    // one placed since the rebuild began. Copy the new orders, then try again.
                    savepoint.rollback().await?;
                    tx.execute(COPY_DECISIONS).await?;
                    savepoint = tx.begin().await?;
                    applied = project::apply(&mut savepoint, envelope).await;
                }
                match applied {
                    Ok(_) => savepoint.commit().await?,
                    Err(HandlerError::Database(error)) if db::transient(&error) => return Err(error.into()),
                    Err(_) => {
                        savepoint.rollback().await?;
                        self.skipped += 1;
                    }
                }
            }
            tx.commit().await?;
        }
    }
}

/// The offsets the live consumer `group` has stored for `topics`.
async fn live_offsets(conn: &mut PgConnection, group: &str, topics: &[String]) -> Result<Offsets, sqlx::Error> {
    let rows = stored_offsets(conn, group).await?;
    Ok(rows
        .into_iter()
        .filter(|(topic, ..)| topics.contains(topic))
        .map(|(topic, partition, next)| ((topic, partition), next))
        .collect())
}

/// Rebuilds the projection in `pool`'s database from the topics of `namespace` on `brokers`
/// and swaps it in; see the module documentation.
pub async fn rebuild(pool: &PgPool, brokers: &str, namespace: &str) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let topics = Topics::new(namespace);
    let consumed: Vec<String> = CONSUMED.iter().map(|t| topics.name(*t)).collect();
    let group = topics.consumer_group(crate::SERVICE);
    let mut conn = pool.acquire().await?;
    conn.execute(PREPARE).await?;
    conn.execute(COPY_DECISIONS).await?;
    let reader = Reader::new(brokers, &consumed, true)?;
    let mut replay = Replay { reader, next: Offsets::new(), held: Vec::new(), events: 0, skipped: 0 };
    let target = live_offsets(&mut conn, &group, &consumed).await?;
    replay.catch_up(&mut conn, &target).await?;
    tracing::info!(events = replay.events, "replayed up to the live consumer; swapping");

    let mut tx = conn.begin().await?;
    tx.execute("LOCK TABLE public.orders, public.order_timeline IN ACCESS EXCLUSIVE MODE").await?;
    let target = live_offsets(&mut tx, &group, &consumed).await?;
    replay.catch_up(&mut tx, &target).await?;
    tx.execute("SET LOCAL search_path TO DEFAULT").await?;
    tx.execute(COPY_DECISIONS).await?;
    let live: String = sqlx::query_scalar(&checksum_query("public")).fetch_one(&mut *tx).await?;
    let rebuilt: String = sqlx::query_scalar(&checksum_query("order_rebuild")).fetch_one(&mut *tx).await?;
    if live != rebuilt {
        tx.rollback().await?;
        return Err(RebuildError::Mismatch { live, rebuilt });
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM order_rebuild.orders").fetch_one(&mut *tx).await?;
    tx.execute(SWAP).await?;
    tx.execute(CREATE_WATCH_TRIGGER).await?;
    tx.commit().await?;
    Ok(Rebuilt { events: replay.events, skipped: replay.skipped, orders, elapsed: started.elapsed(), checksum: live })
}
