//! The `backorders` and `backorder_lines` tables.

use super::domain::Held;
use crate::reserve_stock::to_reserve;
use chrono::{DateTime, Utc};
use orderflow_kit::envelope::EventEnvelope;
use orderflow_kit::types::order_lines;
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use uuid::Uuid;

/// A held order as stored: its OrderPlaced envelope (the chain its later events continue).
pub struct Stored {
    pub held: Held,
    pub event: EventEnvelope,
}

/// Holds orders until `expires_at`: each OrderPlaced envelope with its valid lines.
pub async fn hold_all(
    conn: &mut PgConnection,
    holds: &[(Uuid, &EventEnvelope, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if holds.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = holds.iter().map(|(id, ..)| *id).collect();
    let events: Vec<Vec<u8>> = holds.iter().map(|(_, e, _)| e.encode_to_vec()).collect();
    let expiries: Vec<DateTime<Utc>> = holds.iter().map(|(.., at)| *at).collect();
    sqlx::query(
        "INSERT INTO backorders (order_id, event, expires_at) \
         SELECT id, e, x FROM unnest($1::uuid[], $2::bytea[], $3::timestamptz[]) WITH ORDINALITY AS u(id, e, x, n) ORDER BY n",
    )
    .bind(&ids)
    .bind(events)
    .bind(expiries)
    .execute(&mut *conn)
    .await?;
    let (mut line_ids, mut skus, mut quantities) = (Vec::new(), Vec::new(), Vec::new());
    for (order_id, event, _) in holds {
        let Some(placed) = to_reserve(event.payload.as_ref()) else { continue };
        for line in order_lines(&placed.lines).unwrap_or_default() {
            line_ids.push(*order_id);
            skus.push(line.sku.to_string());
            quantities.push(i64::from(line.quantity.get()));
        }
    }
    sqlx::query("INSERT INTO backorder_lines (order_id, sku, quantity) SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[])")
        .bind(line_ids)
        .bind(skus)
        .bind(quantities)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every SKU that held orders needing `sku` need (for locking their stock rows first).
pub async fn skus_waiting_with(conn: &mut PgConnection, sku: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT other.sku FROM backorder_lines l JOIN backorder_lines other USING (order_id) \
         WHERE l.sku = $1 ORDER BY other.sku",
    )
    .bind(sku)
    .fetch_all(conn)
    .await
}

fn decode(rows: Vec<(Uuid, Vec<u8>)>) -> Vec<Stored> {
    rows.into_iter()
        .filter_map(|(order_id, bytes)| {
            let event = EventEnvelope::decode(bytes.as_slice()).ok()?;
            let placed = to_reserve(event.payload.as_ref())?.clone();
            Some(Stored { held: Held { order_id, placed }, event })
        })
        .collect()
}

/// The held orders needing `sku`, locked, in arrival order.
pub async fn lock_waiting(conn: &mut PgConnection, sku: &str) -> Result<Vec<Stored>, sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT b.order_id, b.event FROM backorders b \
         WHERE EXISTS (SELECT 1 FROM backorder_lines l WHERE l.order_id = b.order_id AND l.sku = $1) \
         ORDER BY b.seq FOR UPDATE OF b",
    )
    .bind(sku)
    .fetch_all(conn)
    .await?;
    Ok(decode(rows))
}

/// The SKUs of up to `limit` holds past their expiry (unlocked: to lock their stock first).
pub async fn skus_of_expired(conn: &mut PgConnection, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT l.sku FROM backorder_lines l WHERE l.order_id IN \
         (SELECT order_id FROM backorders WHERE expires_at <= now() ORDER BY seq LIMIT $1) ORDER BY l.sku",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Up to `limit` holds past their expiry, locked; holds another transaction has are skipped.
pub async fn lock_expired(conn: &mut PgConnection, limit: i64) -> Result<Vec<Stored>, sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT order_id, event FROM backorders WHERE expires_at <= now() ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(decode(rows))
}

/// The SKUs a held order waits for (empty if it is not held).
pub async fn skus_of(conn: &mut PgConnection, order_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sku FROM backorder_lines WHERE order_id = $1 ORDER BY sku")
        .bind(order_id)
        .fetch_all(conn)
        .await
}

/// Ends holds; how many there were.
pub async fn remove_all(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM backorders WHERE order_id = ANY($1)").bind(order_ids).execute(conn).await?;
    Ok(done.rows_affected())
}

/// One held order of one SKU, as ListBackorders shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct Waiting {
    pub sku: String,
    pub order_id: Uuid,
    pub quantity: i64,
    pub held_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Every held order per SKU (of `sku` only, if given), by SKU then arrival.
pub async fn list<'c, E>(db: E, sku: Option<&str>) -> Result<Vec<Waiting>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_as(
        "SELECT l.sku, b.order_id, l.quantity, b.held_at, b.expires_at FROM backorder_lines l \
         JOIN backorders b USING (order_id) WHERE $1::text IS NULL OR l.sku = $1 ORDER BY l.sku, b.seq LIMIT 10000",
    )
    .bind(sku)
    .fetch_all(db)
    .await
}
