//! The `products` and `reservations` tables.

use crate::reserve_stock::domain::Stock;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{EventEnvelope, ReservedLine};
use orderflow_proto::inventory::v1::{GetStockResponse, Product};
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use std::collections::HashMap;
use uuid::Uuid;

/// A product with its stock levels, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub sku: String,
    pub name: String,
    pub bin_location: String,
    pub weight_grams: i32,
    pub low_stock_threshold: i64,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units held orders await (not reserved).
    pub backordered: i64,
}

impl From<ProductRow> for GetStockResponse {
    fn from(row: ProductRow) -> Self {
        Self {
            product: Some(Product {
                sku: row.sku.clone(),
                name: row.name,
                bin_location: row.bin_location,
                weight_grams: u32::try_from(row.weight_grams).unwrap_or(0),
                low_stock_threshold: row.low_stock_threshold,
            }),
            sku: row.sku,
            on_hand: row.on_hand,
            reserved: row.reserved,
            available: row.on_hand - row.reserved,
            backordered: row.backordered,
        }
    }
}

const COLUMNS: &str = "sku, name, bin_location, weight_grams, low_stock_threshold, on_hand, reserved, \
     coalesce((SELECT sum(l.quantity) FROM backorder_lines l WHERE l.sku = products.sku), 0)::int8 AS backordered";

/// What the low-stock alert compares with the threshold: available stock less the units held
/// orders await.
const ALERT_LEVEL: &str =
    "on_hand - reserved - coalesce((SELECT sum(l.quantity) FROM backorder_lines l WHERE l.sku = products.sku), 0)";

/// Creates the product or updates its description; stock levels are left as they are.
pub async fn upsert_product<'c, E>(db: E, product: &Product) -> Result<ProductRow, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_as(&format!(
        "INSERT INTO products (sku, name, bin_location, weight_grams, low_stock_threshold) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, bin_location = EXCLUDED.bin_location, \
         weight_grams = EXCLUDED.weight_grams, low_stock_threshold = EXCLUDED.low_stock_threshold, updated_at = now() \
         RETURNING {COLUMNS}"
    ))
    .bind(&product.sku)
    .bind(&product.name)
    .bind(&product.bin_location)
    .bind(i32::try_from(product.weight_grams).unwrap_or(i32::MAX))
    .bind(product.low_stock_threshold)
    .fetch_one(db)
    .await
}

/// Adds `quantity` to the SKU's stock on hand; `None` for an unknown SKU.
pub async fn restock(conn: &mut PgConnection, sku: &str, quantity: i64) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE products SET on_hand = on_hand + $2, updated_at = now() WHERE sku = $1 RETURNING {COLUMNS}"
    ))
    .bind(sku)
    .bind(quantity)
    .fetch_optional(conn)
    .await
}

pub async fn get<'c, E>(db: E, sku: &str) -> Result<Option<ProductRow>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE sku = $1")).bind(sku).fetch_optional(db).await
}

/// Products in SKU order after `after`.
pub async fn list<'c, E>(db: E, after: &str, limit: i64) -> Result<Vec<ProductRow>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE sku > $1 ORDER BY sku LIMIT $2"))
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// Products whose available stock is at or below their threshold.
pub async fn list_low<'c, E>(db: E) -> Result<Vec<ProductRow>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM products WHERE {ALERT_LEVEL} <= low_stock_threshold ORDER BY sku LIMIT 1000"
    ))
    .fetch_all(db)
    .await
}

/// Claims the order's reservation row (and with it the order's lock); false if the order was
/// already decided.
pub async fn claim_reservation(conn: &mut PgConnection, order_id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(claim_reservations(conn, &[order_id]).await?.contains(&order_id))
}

/// Claims the reservation rows of many orders in one statement; returns those claimed now
/// (the others were decided before).
pub async fn claim_reservations(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let claimed: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO reservations (order_id, status, decision) SELECT id, 'PENDING', '' FROM unnest($1::uuid[]) AS u(id) \
         ON CONFLICT DO NOTHING RETURNING order_id",
    )
    .bind(order_ids)
    .fetch_all(conn)
    .await?;
    Ok(claimed.into_iter().collect())
}

/// Adds each SKU's total to its reserved stock, in one statement (one row per SKU: an UPDATE
/// takes only one source row per target row, so the totals are summed before).
pub async fn reserve_totals(
    conn: &mut PgConnection,
    totals: &std::collections::BTreeMap<String, i64>,
) -> Result<(), sqlx::Error> {
    if totals.is_empty() {
        return Ok(());
    }
    let skus: Vec<&str> = totals.keys().map(String::as_str).collect();
    let quantities: Vec<i64> = totals.values().copied().collect();
    sqlx::query(
        "UPDATE products p SET reserved = p.reserved + v.quantity, updated_at = now() \
         FROM unnest($1::text[], $2::bigint[]) AS v(sku, quantity) WHERE p.sku = v.sku",
    )
    .bind(&skus)
    .bind(&quantities)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores many orders' decisions in one statement: (order, status, the event payload).
pub async fn record_decisions(conn: &mut PgConnection, decisions: &[(Uuid, &str, Payload)]) -> Result<(), sqlx::Error> {
    if decisions.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = decisions.iter().map(|(id, _, _)| *id).collect();
    let statuses: Vec<&str> = decisions.iter().map(|(_, status, _)| *status).collect();
    let encoded: Vec<Vec<u8>> = decisions
        .iter()
        .map(|(_, _, payload)| EventEnvelope { payload: Some(payload.clone()), ..Default::default() }.encode_to_vec())
        .collect();
    sqlx::query(
        "UPDATE reservations r SET status = v.status, decision = v.decision, updated_at = now() \
         FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS v(order_id, status, decision) WHERE r.order_id = v.order_id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(encoded)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the stock rows of `skus`, in SKU order so that concurrent orders cannot deadlock.
pub async fn lock_stock(conn: &mut PgConnection, skus: &[String]) -> Result<HashMap<String, Stock>, sqlx::Error> {
    let rows: Vec<(String, i64, i64, String, i32)> = sqlx::query_as(
        "SELECT sku, on_hand, reserved, bin_location, weight_grams FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(skus)
    .fetch_all(&mut *conn)
    .await?;
    // Read after the locks are held, in a statement of its own: a locking statement that waited
    // for a lock re-reads the locked rows but keeps its snapshot for everything else, so the
    // holds a restock ended while this waited would still count. Every change to the holds of
    // a SKU is made under its stock row's lock.
    let awaited: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT sku, sum(quantity)::int8 FROM backorder_lines WHERE sku = ANY($1) GROUP BY sku",
    )
    .bind(skus)
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect();
    Ok(rows
        .into_iter()
        .map(|(sku, on_hand, reserved, bin_location, weight)| {
            let weight_grams = u32::try_from(weight).unwrap_or(0);
            let awaited = awaited.get(&sku).copied().unwrap_or(0);
            (sku, Stock { on_hand, reserved, awaited, bin_location, weight_grams })
        })
        .collect())
}

/// Adds the lines' quantities to the reserved stock of their SKUs.
pub async fn reserve(conn: &mut PgConnection, lines: &[ReservedLine]) -> Result<(), sqlx::Error> {
    let mut totals = std::collections::BTreeMap::new();
    for line in lines {
        *totals.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
    }
    reserve_totals(conn, &totals).await
}

/// Reservation states: stock held, order refused, stock gone out with the parcel, stock given
/// back by a cancel.
pub const RESERVED: &str = "RESERVED";
pub const REJECTED: &str = "REJECTED";
pub const SHIPPED: &str = "SHIPPED";
pub const RELEASED: &str = "RELEASED";
/// Held for a restock (a backorder); nothing reserved.
pub const HELD: &str = "HELD";

/// Stores the decision taken for the order (the event payload, as its envelope field).
pub async fn record_decision(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: &str,
    decision: &Payload,
) -> Result<(), sqlx::Error> {
    record_decisions(conn, &[(order_id, status, decision.clone())]).await
}

/// Locks the order's reservation and returns its lines while the stock is still held.
pub async fn lock_held_reservation(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Vec<ReservedLine>>, sqlx::Error> {
    Ok(lock_held_reservations(conn, &[order_id]).await?.remove(&order_id))
}

/// Locks the reservations of `order_ids` (in id order) and returns the lines of those whose
/// stock is still held.
pub async fn lock_held_reservations(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ReservedLine>>, sqlx::Error> {
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT order_id, decision FROM reservations WHERE order_id = ANY($1) AND status = $2 ORDER BY order_id FOR UPDATE",
    )
    .bind(order_ids)
    .bind(RESERVED)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(order_id, bytes)| {
            let lines = match EventEnvelope::decode(bytes.as_slice()).ok().and_then(|e| e.payload) {
                Some(Payload::StockReserved(reserved)) => reserved.lines,
                _ => Vec::new(),
            };
            (order_id, lines)
        })
        .collect())
}

/// Ends the order's reservation in `status`: reserved drops by the lines, and on hand too when
/// the units left with the parcel (`SHIPPED`), not when they stay on the shelf (`RELEASED`).
pub async fn settle(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[ReservedLine],
    status: &str,
) -> Result<(), sqlx::Error> {
    let mut totals = std::collections::BTreeMap::new();
    for line in lines {
        *totals.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
    }
    settle_all(conn, &[order_id], &totals, status).await
}

/// Ends many orders' reservations in `status` at once; `totals` are their lines' quantities
/// summed per SKU.
pub async fn settle_all(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
    totals: &std::collections::BTreeMap<String, i64>,
    status: &str,
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let skus: Vec<&str> = totals.keys().map(String::as_str).collect();
    let quantities: Vec<i64> = totals.values().copied().collect();
    sqlx::query(
        "UPDATE products p SET on_hand = p.on_hand - CASE WHEN $3 THEN v.quantity ELSE 0 END, \
         reserved = p.reserved - v.quantity, updated_at = now() \
         FROM unnest($1::text[], $2::bigint[]) AS v(sku, quantity) WHERE p.sku = v.sku",
    )
    .bind(&skus)
    .bind(&quantities)
    .bind(status == SHIPPED)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE reservations SET status = $2, updated_at = now() WHERE order_id = ANY($1)")
        .bind(order_ids)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// (sku, available less backordered demand, threshold, flagged) for each of `skus`.
pub async fn stock_against_threshold(
    conn: &mut PgConnection,
    skus: &[String],
) -> Result<Vec<(String, i64, i64, bool)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT sku, ({ALERT_LEVEL})::int8, low_stock_threshold, low_stock FROM products WHERE sku = ANY($1) ORDER BY sku",
    ))
    .bind(skus)
    .fetch_all(conn)
    .await
}

pub async fn set_low_stock(conn: &mut PgConnection, sku: &str, low: bool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE products SET low_stock = $2 WHERE sku = $1").bind(sku).bind(low).execute(conn).await?;
    Ok(())
}
