//! The `orders` and `order_timeline` tables: writes in the caller's transaction, reads as
//! the public `Order` message.

use crate::project::domain::View;
use chrono::{DateTime, SubsecRound, Utc};
use orderflow_kit::envelope::{self, EventEnvelope};
use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::order::v1::{Order, OrderStatus, TimelineEntry};
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    request: Vec<u8>,
    placed: Vec<u8>,
    status: String,
    rejection_reason: String,
    carrier: String,
    tracking_number: String,
    cancellation_reason: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct TimelineRow {
    event_id: Uuid,
    event_type: String,
    producer: String,
    occurred_at: DateTime<Utc>,
}

/// A stored order: the public message and the request it was placed with.
#[derive(Debug)]
pub struct Stored {
    pub order: Order,
    pub request: Vec<u8>,
}

const COLUMNS: &str = "order_id, request, placed, status, rejection_reason, carrier, tracking_number, cancellation_reason, \
     created_at, updated_at";

/// A new order to store: its id, idempotency key, the request it was placed with (its
/// fingerprint), the decided OrderPlaced and its envelope.
#[derive(Debug, Clone)]
pub struct Placement {
    pub order_id: Uuid,
    pub idempotency_key: Option<String>,
    pub request: Vec<u8>,
    pub placed: OrderPlaced,
    pub event: EventEnvelope,
}

/// Inserts a new order and its OrderPlaced timeline entry and returns the order as stored;
/// `None` if the idempotency key is already taken (nothing is written then). (PlaceOrder
/// stores its orders in groups, [`insert_all`]; tests store one at a time.)
#[cfg(test)]
pub async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    idempotency_key: Option<&str>,
    request: &[u8],
    placed: &OrderPlaced,
    event: &EventEnvelope,
) -> Result<Option<Order>, sqlx::Error> {
    let new = Placement {
        order_id,
        idempotency_key: idempotency_key.map(str::to_owned),
        request: request.to_vec(),
        placed: placed.clone(),
        event: event.clone(),
    };
    Ok(insert_all(conn, std::slice::from_ref(&new)).await?.remove(&order_id))
}

/// Inserts many new orders and their OrderPlaced timeline entries, one statement each, and
/// returns those stored by id; an order whose idempotency key is taken (before, or by an
/// earlier order of the same call) is missing, and nothing of it is written.
pub async fn insert_all(conn: &mut PgConnection, orders: &[Placement]) -> Result<HashMap<Uuid, Order>, sqlx::Error> {
    let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let keys: Vec<Option<&str>> = orders.iter().map(|o| o.idempotency_key.as_deref()).collect();
    let requests: Vec<&[u8]> = orders.iter().map(|o| o.request.as_slice()).collect();
    let customers: Vec<&str> =
        orders.iter().map(|o| o.placed.customer.as_ref().map(|c| c.id.as_str()).unwrap_or_default()).collect();
    let placed: Vec<Vec<u8>> = orders.iter().map(|o| o.placed.encode_to_vec()).collect();
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "INSERT INTO orders (order_id, idempotency_key, request, customer_id, placed, status) \
         SELECT id, k, r, c, p, $6 FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[], $5::bytea[]) \
         WITH ORDINALITY AS u(id, k, r, c, p, n) ORDER BY n \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(ids)
    .bind(keys)
    .bind(requests)
    .bind(customers)
    .bind(placed)
    .bind(OrderStatus::Placed.as_str_name())
    .fetch_all(&mut *conn)
    .await?;
    let mut stored: HashMap<Uuid, Order> = rows.into_iter().map(|row| (row.order_id, to_order(row))).collect();
    let timeline: Vec<(Uuid, &EventEnvelope, i32)> =
        orders.iter().filter(|o| stored.contains_key(&o.order_id)).map(|o| (o.order_id, &o.event, 1)).collect();
    append_timeline_all(conn, &timeline).await?;
    for new in orders {
        if let Some(order) = stored.get_mut(&new.order_id) {
            order.timeline = vec![timeline_entry(TimelineRow {
                event_id: Uuid::parse_str(&new.event.event_id).unwrap_or_default(),
                event_type: new.event.event_type.clone(),
                producer: new.event.producer.clone(),
                // As PostgreSQL keeps it, so this answer equals a later GetOrder.
                occurred_at: envelope::occurred_at(&new.event).trunc_subsecs(6),
            })];
        }
    }
    Ok(stored)
}

/// Records `event` in the order's timeline at flow step `step`; a repeat is ignored.
pub async fn append_timeline(
    conn: &mut PgConnection,
    order_id: Uuid,
    event: &EventEnvelope,
    step: i32,
) -> Result<(), sqlx::Error> {
    let event_id = Uuid::parse_str(&event.event_id).unwrap_or_default();
    sqlx::query(
        "INSERT INTO order_timeline (event_id, order_id, event_type, producer, occurred_at, step) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(order_id)
    .bind(&event.event_type)
    .bind(&event.producer)
    .bind(envelope::occurred_at(event))
    .bind(step)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records many events in their orders' timelines in one statement: (order, event, step).
pub async fn append_timeline_all(
    conn: &mut PgConnection,
    rows: &[(Uuid, &EventEnvelope, i32)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let event_ids: Vec<Uuid> = rows.iter().map(|(_, e, _)| Uuid::parse_str(&e.event_id).unwrap_or_default()).collect();
    let order_ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    let types: Vec<&str> = rows.iter().map(|(_, e, _)| e.event_type.as_str()).collect();
    let producers: Vec<&str> = rows.iter().map(|(_, e, _)| e.producer.as_str()).collect();
    let occurred: Vec<DateTime<Utc>> = rows.iter().map(|(_, e, _)| envelope::occurred_at(e)).collect();
    let steps: Vec<i32> = rows.iter().map(|(_, _, step)| *step).collect();
    sqlx::query(
        "INSERT INTO order_timeline (event_id, order_id, event_type, producer, occurred_at, step) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::int[]) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_ids)
    .bind(order_ids)
    .bind(types)
    .bind(producers)
    .bind(occurred)
    .bind(steps)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the rows of `order_ids` (in id order, so concurrent batches cannot deadlock) and
/// returns their views; unknown orders are missing from the map.
pub async fn lock_views(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<HashMap<Uuid, View>, sqlx::Error> {
    let rows: Vec<(Uuid, String, String, String, String, String)> = sqlx::query_as(
        "SELECT order_id, status, rejection_reason, carrier, tracking_number, cancellation_reason FROM orders \
         WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE",
    )
    .bind(order_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, status, rejection_reason, carrier, tracking_number, cancellation_reason)| {
            let status = OrderStatus::from_str_name(&status).unwrap_or(OrderStatus::Unspecified);
            (id, View { status, rejection_reason, carrier, tracking_number, cancellation_reason })
        })
        .collect())
}

/// Saves many views in one statement.
pub async fn save_views(conn: &mut PgConnection, views: &[(Uuid, &View)]) -> Result<(), sqlx::Error> {
    if views.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = views.iter().map(|(id, _)| *id).collect();
    let statuses: Vec<&str> = views.iter().map(|(_, v)| v.status.as_str_name()).collect();
    let column = |f: fn(&View) -> &str| views.iter().map(|(_, v)| f(v)).collect::<Vec<&str>>();
    sqlx::query(
        "UPDATE orders o SET status = v.status, rejection_reason = v.rejection_reason, carrier = v.carrier, \
         tracking_number = v.tracking_number, cancellation_reason = v.cancellation_reason, updated_at = now() \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
         AS v(order_id, status, rejection_reason, carrier, tracking_number, cancellation_reason) \
         WHERE o.order_id = v.order_id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(column(|v| &v.rejection_reason))
    .bind(column(|v| &v.carrier))
    .bind(column(|v| &v.tracking_number))
    .bind(column(|v| &v.cancellation_reason))
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the order's row for this transaction and returns its view; `None` if unknown.
pub async fn lock_view(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<View>, sqlx::Error> {
    let row: Option<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT status, rejection_reason, carrier, tracking_number, cancellation_reason FROM orders WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(status, rejection_reason, carrier, tracking_number, cancellation_reason)| View {
        status: OrderStatus::from_str_name(&status).unwrap_or(OrderStatus::Unspecified),
        rejection_reason,
        carrier,
        tracking_number,
        cancellation_reason,
    }))
}

pub async fn save_view(conn: &mut PgConnection, order_id: Uuid, view: &View) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET status = $2, rejection_reason = $3, carrier = $4, tracking_number = $5, cancellation_reason = $6, \
         updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(view.status.as_str_name())
    .bind(&view.rejection_reason)
    .bind(&view.carrier)
    .bind(&view.tracking_number)
    .bind(&view.cancellation_reason)
    .execute(conn)
        .await?;
    Ok(())
}

/// The order with its full timeline, in flow order.
pub async fn load<'c, E>(db: E, order_id: Uuid) -> Result<Option<Stored>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres> + Copy,
{
    let row: Option<OrderRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM orders WHERE order_id = $1"))
        .bind(order_id)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let timeline: Vec<TimelineRow> = sqlx::query_as(
        "SELECT event_id, event_type, producer, occurred_at FROM order_timeline WHERE order_id = $1 ORDER BY step, occurred_at, seq",
    )
    .bind(order_id)
    .fetch_all(db)
    .await?;
    let request = row.request.clone();
    let mut order = to_order(row);
    order.timeline = timeline.into_iter().map(timeline_entry).collect();
    Ok(Some(Stored { order, request }))
}

/// The id of the order's OrderPlaced event: the correlation id of every event of the order.
pub async fn placed_event_id(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_id FROM order_timeline WHERE order_id = $1 AND event_type = 'OrderPlaced'")
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// The id of the order placed with `key`, if any.
pub async fn find_by_idempotency_key<'c, E>(db: E, key: &str) -> Result<Option<Uuid>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_scalar("SELECT order_id FROM orders WHERE idempotency_key = $1").bind(key).fetch_optional(db).await
}

/// A customer's orders, newest first (UUIDv7 ids sort by creation), without timelines.
pub async fn list_by_customer<'c, E>(
    db: E,
    customer_id: &str,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM orders WHERE customer_id = $1 AND ($2::uuid IS NULL OR order_id < $2) ORDER BY order_id DESC LIMIT $3"
    ))
    .bind(customer_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(to_order).collect())
}

fn timeline_entry(t: TimelineRow) -> TimelineEntry {
    TimelineEntry {
        event_type: t.event_type,
        event_id: t.event_id.to_string(),
        occurred_at: Some(envelope::timestamp(t.occurred_at)),
        producer: t.producer,
    }
}

fn to_order(row: OrderRow) -> Order {
    let placed = OrderPlaced::decode(row.placed.as_slice()).unwrap_or_default();
    Order {
        order_id: row.order_id.to_string(),
        status: OrderStatus::from_str_name(&row.status).unwrap_or(OrderStatus::Unspecified) as i32,
        customer: placed.customer,
        lines: placed.lines,
        shipping_address: placed.shipping_address,
        payment_reference: placed.payment_reference,
        service_level: placed.service_level,
        rejection_reason: row.rejection_reason,
        tracking_number: row.tracking_number,
        carrier: row.carrier,
        cancellation_reason: row.cancellation_reason,
        timeline: Vec::new(),
        created_at: Some(envelope::timestamp(row.created_at)),
        updated_at: Some(envelope::timestamp(row.updated_at)),
    }
}

#[cfg(test)]
mod tests;
