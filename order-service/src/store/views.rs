//! The projection's view of an order (`View`): locked and read for a batch of orders in one
//! statement, saved back in one.

use crate::project::domain::View;
use chrono::NaiveDate;
use orderflow_kit::delivery::promise::Window;
use orderflow_proto::common::v1::TrackingScan;
use orderflow_proto::order::v1::{OrderStatus, PaymentStatus};
use prost::Message;
use sqlx::postgres::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The columns a `View` is read from.
#[derive(sqlx::FromRow)]
pub(super) struct ViewRow {
    status: String,
    rejection_reason: String,
    carrier: String,
    tracking_number: String,
    cancellation_reason: String,
    hold_reason: String,
    promise_earliest: Option<NaiveDate>,
    promise_latest: Option<NaiveDate>,
    promised_latest: Option<NaiveDate>,
    last_scan: Option<Vec<u8>>,
    payment_status: String,
}

impl From<ViewRow> for View {
    fn from(row: ViewRow) -> Self {
        Self {
            status: OrderStatus::from_str_name(&row.status).unwrap_or(OrderStatus::Unspecified),
            rejection_reason: row.rejection_reason,
            carrier: row.carrier,
            tracking_number: row.tracking_number,
            cancellation_reason: row.cancellation_reason,
            hold_reason: row.hold_reason,
            promise: row.promise_earliest.zip(row.promise_latest).map(|(earliest, latest)| Window { earliest, latest }),
            promised_latest: row.promised_latest,
            last_scan: row.last_scan.and_then(|bytes| TrackingScan::decode(bytes.as_slice()).ok()),
            payment_status: PaymentStatus::from_str_name(&row.payment_status).unwrap_or(PaymentStatus::Unspecified),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Locked {
    order_id: Uuid,
    #[sqlx(flatten)]
    view: ViewRow,
}

/// Locks the rows of `order_ids` (in id order, so concurrent batches cannot deadlock) and
/// returns their views; unknown orders are missing from the map.
pub async fn lock_views(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<HashMap<Uuid, View>, sqlx::Error> {
    let rows: Vec<Locked> = sqlx::query_as(
        "SELECT order_id, status, rejection_reason, carrier, tracking_number, cancellation_reason, hold_reason, promise_earliest, \
         promise_latest, promised_latest, last_scan, payment_status FROM orders WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE",
    )
    .bind(order_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.order_id, View::from(row.view))).collect())
}

/// Locks the order's row for this transaction and returns its view; `None` if unknown.
pub async fn lock_view(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<View>, sqlx::Error> {
    Ok(lock_views(conn, &[order_id]).await?.remove(&order_id))
}

/// Saves many views in one statement (the promise made at placement is never changed).
pub async fn save_views(conn: &mut PgConnection, views: &[(Uuid, &View)]) -> Result<(), sqlx::Error> {
    if views.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = views.iter().map(|(id, _)| *id).collect();
    let statuses: Vec<&str> = views.iter().map(|(_, v)| v.status.as_str_name()).collect();
    let column = |f: fn(&View) -> &str| views.iter().map(|(_, v)| f(v)).collect::<Vec<&str>>();
    let earliest: Vec<Option<NaiveDate>> = views.iter().map(|(_, v)| v.promise.map(|w| w.earliest)).collect();
    let latest: Vec<Option<NaiveDate>> = views.iter().map(|(_, v)| v.promise.map(|w| w.latest)).collect();
    let scans: Vec<Option<Vec<u8>>> =
        views.iter().map(|(_, v)| v.last_scan.as_ref().map(Message::encode_to_vec)).collect();
    sqlx::query(
        "UPDATE orders o SET status = v.status, rejection_reason = v.rejection_reason, carrier = v.carrier, \
         tracking_number = v.tracking_number, cancellation_reason = v.cancellation_reason, hold_reason = v.hold_reason, \
         promise_earliest = v.pe, promise_latest = v.pl, last_scan = v.scan, payment_status = v.payment, \
         updated_at = now() \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::date[], \
         $9::bytea[], $10::text[], $11::text[]) AS v(order_id, status, rejection_reason, carrier, tracking_number, \
         cancellation_reason, pe, pl, scan, hold_reason, payment) \
         WHERE o.order_id = v.order_id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(column(|v| &v.rejection_reason))
    .bind(column(|v| &v.carrier))
    .bind(column(|v| &v.tracking_number))
    .bind(column(|v| &v.cancellation_reason))
    .bind(earliest)
    .bind(latest)
    .bind(scans)
    .bind(column(|v| &v.hold_reason))
    .bind(column(|v| v.payment_status.as_str_name()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_view(conn: &mut PgConnection, order_id: Uuid, view: &View) -> Result<(), sqlx::Error> {
    save_views(conn, &[(order_id, view)]).await
}
