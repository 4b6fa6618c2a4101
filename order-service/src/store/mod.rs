//! The `orders` and `order_timeline` tables: writes in the caller's transaction, reads as
//! the public `Order` message. The projection's view of an order is in `views`, the timeline's
//! writes in `timeline`.

mod timeline;
mod views;

pub use timeline::{append_timeline, append_timeline_all};
pub use views::{lock_view, lock_views, save_view, save_views};

use crate::project::domain::View;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use orderflow_kit::delivery::promise::Window;
use orderflow_kit::envelope::{self, EventEnvelope};
use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::order::v1::{Order, OrderStatus, PaymentStatus, TimelineEntry};
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
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[sqlx(flatten)]
    view: views::ViewRow,
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
     created_at, updated_at, hold_reason, promise_earliest, promise_latest, promised_latest, last_scan, payment_status";

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
    let promises: Vec<Option<Window>> =
        orders.iter().map(|o| o.placed.delivery_promise.as_ref().and_then(Window::from_proto)).collect();
    let earliest: Vec<Option<NaiveDate>> = promises.iter().map(|p| p.map(|w| w.earliest)).collect();
    let latest: Vec<Option<NaiveDate>> = promises.iter().map(|p| p.map(|w| w.latest)).collect();
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "INSERT INTO orders (order_id, idempotency_key, request, customer_id, placed, status, promise_earliest, \
         promise_latest, promised_earliest, promised_latest, payment_status) \
         SELECT id, k, r, c, p, $6, pe, pl, pe, pl, $9 FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[], $5::bytea[], \
         $7::date[], $8::date[]) WITH ORDINALITY AS u(id, k, r, c, p, pe, pl, n) ORDER BY n \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(ids)
    .bind(keys)
    .bind(requests)
    .bind(customers)
    .bind(placed)
    .bind(OrderStatus::Placed.as_str_name())
    .bind(earliest)
    .bind(latest)
    .bind(PaymentStatus::Pending.as_str_name())
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

/// The customer an order was placed for; `None` if there is no such order.
pub async fn customer_of<'c, E>(db: E, order_id: Uuid) -> Result<Option<String>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_scalar("SELECT customer_id FROM orders WHERE order_id = $1").bind(order_id).fetch_optional(db).await
}

/// The id of the order placed with `key`, if any.
pub async fn find_by_idempotency_key<'c, E>(db: E, key: &str) -> Result<Option<Uuid>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query_scalar("SELECT order_id FROM orders WHERE idempotency_key = $1").bind(key).fetch_optional(db).await
}

/// Orders newest first (UUIDv7 ids sort by creation), without timelines: a customer's (or
/// everyone's for `None`), only the late ones if `late`. SQL's idea of late mirrors
/// `View::delivery_promise` (kit::delivery::promise::lateness); a test holds them together.
pub async fn list<'c, E>(
    db: E,
    customer_id: Option<&str>,
    late: bool,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM orders WHERE ($1::text IS NULL OR customer_id = $1) \
         AND ($2::uuid IS NULL OR order_id < $2) AND (NOT $4 OR ({LATE})) ORDER BY order_id DESC LIMIT $3"
    ))
    .bind(customer_id)
    .bind(before)
    .bind(limit)
    .bind(late)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(to_order).collect())
}

/// An order is late: delivered after the promised date, or not ended and either past its
/// expected date or expected after the promised one.
const LATE: &str = "promised_latest IS NOT NULL AND promise_latest IS NOT NULL AND (\
     (status = 'DELIVERED' AND promise_latest > promised_latest) OR \
     (status NOT IN ('DELIVERED', 'RETURNED', 'REJECTED', 'CANCELLED') AND \
      (promise_latest < (now() AT TIME ZONE 'UTC')::date OR promise_latest > promised_latest)))";

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
    let view = View::from(row.view);
    Order {
        order_id: row.order_id.to_string(),
        status: view.status as i32,
        customer: placed.customer,
        lines: placed.lines,
        shipping_address: placed.shipping_address,
        payment_reference: placed.payment_reference,
        service_level: placed.service_level,
        total: placed.total,
        delivery_promise: view.delivery_promise(Utc::now().date_naive()),
        rejection_reason: view.rejection_reason,
        tracking_number: view.tracking_number,
        carrier: view.carrier,
        cancellation_reason: view.cancellation_reason,
        hold_reason: view.hold_reason,
        payment_status: view.payment_status as i32,
        last_tracking_event: view.last_scan,
        timeline: Vec::new(),
        created_at: Some(envelope::timestamp(row.created_at)),
        updated_at: Some(envelope::timestamp(row.updated_at)),
    }
}

#[cfg(test)]
mod tests;
