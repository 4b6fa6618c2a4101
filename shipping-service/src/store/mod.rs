//! The `shipments` and `tracking_scans` tables. A shipment is read as the public `Shipment`
//! message and saved back whole after its step evolved it ([`save_all`]).

mod scans;

pub use scans::{insert_scan, scans};

use chrono::{DateTime, NaiveDate, Utc};
use orderflow_kit::delivery::promise::Window;
use orderflow_kit::envelope;
use orderflow_proto::common::v1::{ServiceLevel, TrackingScan};
use orderflow_proto::events::v1::Labelled;
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus};
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use std::collections::HashSet;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    order_id: Uuid,
    status: String,
    carrier: String,
    carrier_service: String,
    tracking_number: String,
    weight_grams: i32,
    cost_cents: i64,
    destination_country: String,
    service_level: String,
    label: String,
    labelled_at: DateTime<Utc>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    promise_earliest: Option<NaiveDate>,
    promise_latest: Option<NaiveDate>,
    last_scan: Option<Vec<u8>>,
}

const COLUMNS: &str = "order_id, status, carrier, carrier_service, tracking_number, weight_grams, cost_cents, \
     destination_country, service_level, label, labelled_at, shipped_at, delivered_at, promise_earliest, \
     promise_latest, last_scan";

/// A labelled parcel to store: its order, the Labelled event, where it goes, its level and
/// its status (LABELLED, or SHIPPED when the courier collects it at once).
#[derive(Debug, Clone)]
pub struct NewShipment {
    pub order_id: Uuid,
    pub labelled: Labelled,
    pub country: String,
    pub level: ServiceLevel,
    pub status: ShipmentStatus,
}

/// Which of `order_ids` have a shipment already (locking them for this transaction).
pub async fn labelled(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<HashSet<Uuid>, sqlx::Error> {
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT order_id FROM shipments WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE")
            .bind(order_ids)
            .fetch_all(conn)
            .await?;
    Ok(found.into_iter().collect())
}

/// `count` label serials from the `label_serial` sequence, in one statement.
pub async fn next_serials(conn: &mut PgConnection, count: usize) -> Result<Vec<u64>, sqlx::Error> {
    let serials: Vec<i64> = sqlx::query_scalar("SELECT nextval('label_serial') FROM generate_series(1, $1)")
        .bind(i32::try_from(count).unwrap_or(i32::MAX))
        .fetch_all(conn)
        .await?;
    Ok(serials.into_iter().map(|s| u64::try_from(s).unwrap_or_default()).collect())
}

/// Stores many labelled parcels in one statement.
pub async fn insert_all(conn: &mut PgConnection, shipments: &[NewShipment]) -> Result<(), sqlx::Error> {
    if shipments.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = shipments.iter().map(|s| s.order_id).collect();
    let text = |f: fn(&NewShipment) -> &str| shipments.iter().map(f).collect::<Vec<&str>>();
    let weights: Vec<i32> =
        shipments.iter().map(|s| i32::try_from(s.labelled.weight_grams).unwrap_or(i32::MAX)).collect();
    let costs: Vec<i64> = shipments.iter().map(|s| s.labelled.cost_cents).collect();
    let window = |s: &NewShipment| s.labelled.delivery_promise.as_ref().and_then(Window::from_proto);
    let earliest: Vec<Option<NaiveDate>> = shipments.iter().map(|s| window(s).map(|w| w.earliest)).collect();
    let latest: Vec<Option<NaiveDate>> = shipments.iter().map(|s| window(s).map(|w| w.latest)).collect();
    sqlx::query(
        "INSERT INTO shipments (order_id, status, carrier, carrier_service, tracking_number, weight_grams, cost_cents, \
         destination_country, service_level, label, promise_earliest, promise_latest, shipped_at) \
         SELECT id, st, c, cs, tn, w, cost, country, lvl, lbl, pe, pl, CASE WHEN st = $13 THEN NULL ELSE now() END \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int8[], $8::text[], \
         $9::text[], $10::text[], $11::date[], $12::date[]) AS u(id, st, c, cs, tn, w, cost, country, lvl, lbl, pe, pl)",
    )
    .bind(ids)
    .bind(shipments.iter().map(|s| s.status.as_str_name()).collect::<Vec<_>>())
    .bind(text(|s| &s.labelled.carrier))
    .bind(text(|s| &s.labelled.carrier_service))
    .bind(text(|s| &s.labelled.tracking_number))
    .bind(weights)
    .bind(costs)
    .bind(text(|s| &s.country))
    .bind(shipments.iter().map(|s| s.level.as_str_name()).collect::<Vec<_>>())
    .bind(text(|s| &s.labelled.label))
    .bind(earliest)
    .bind(latest)
    .bind(ShipmentStatus::Labelled.as_str_name())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn load<'c, E>(db: E, order_id: Uuid) -> Result<Option<Shipment>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM shipments WHERE order_id = $1"))
        .bind(order_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(to_shipment))
}

/// The shipment with `tracking_number`; `lock` holds its row for the caller's transaction.
pub async fn by_tracking_number(
    conn: &mut PgConnection,
    tracking_number: &str,
    lock: bool,
) -> Result<Option<Shipment>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM shipments WHERE tracking_number = $1{lock}"))
        .bind(tracking_number)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(to_shipment))
}

/// The shipments of `numbers`, locked for this transaction (in number order, so two
/// collections of overlapping lists cannot deadlock); unknown numbers are missing.
pub async fn lock_by_tracking_numbers(conn: &mut PgConnection, numbers: &[&str]) -> Result<Vec<Shipment>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shipments WHERE tracking_number = ANY($1) ORDER BY tracking_number FOR UPDATE"
    ))
    .bind(numbers)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(to_shipment).collect())
}

/// Labelled parcels awaiting collection, oldest label first: of `carrier` (any carrier if
/// `None`, matched case-insensitively), after the parcel `after` (a tracking number).
pub async fn awaiting_pickup<'c, E>(
    db: E,
    carrier: Option<&str>,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<Shipment>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shipments WHERE status = $1 AND ($2::text IS NULL OR lower(carrier) = lower($2)) \
         AND ($3::timestamptz IS NULL OR (labelled_at, tracking_number) > ($3, $4)) \
         ORDER BY labelled_at, tracking_number LIMIT $5"
    ))
    .bind(ShipmentStatus::Labelled.as_str_name())
    .bind(carrier)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, n)| n))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(to_shipment).collect())
}

/// Up to `limit` labels older than `age`, locked for this transaction; labels another
/// transaction holds are skipped (the simulated courier of several instances).
pub async fn lock_due_pickups(
    conn: &mut PgConnection,
    age: std::time::Duration,
    limit: i64,
) -> Result<Vec<Shipment>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shipments WHERE status = $1 AND labelled_at <= now() - make_interval(secs => $2) \
         ORDER BY labelled_at LIMIT $3 FOR UPDATE SKIP LOCKED"
    ))
    .bind(ShipmentStatus::Labelled.as_str_name())
    .bind(age.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(to_shipment).collect())
}

/// Saves what a step changed on many shipments, in one statement: the status (collected at
/// now() when it first leaves LABELLED), the delivery time, the promise and the last scan.
pub async fn save_all(conn: &mut PgConnection, shipments: &[&Shipment]) -> Result<(), sqlx::Error> {
    if shipments.is_empty() {
        return Ok(());
    }
    let numbers: Vec<&str> = shipments.iter().map(|s| s.tracking_number.as_str()).collect();
    let statuses: Vec<&str> = shipments
        .iter()
        .map(|s| ShipmentStatus::try_from(s.status).unwrap_or(ShipmentStatus::Unspecified).as_str_name())
        .collect();
    let delivered: Vec<Option<DateTime<Utc>>> =
        shipments.iter().map(|s| s.delivered_at.and_then(envelope::datetime)).collect();
    let window = |s: &&Shipment| s.delivery_promise.as_ref().and_then(Window::from_proto);
    let earliest: Vec<Option<NaiveDate>> = shipments.iter().map(|s| window(s).map(|w| w.earliest)).collect();
    let latest: Vec<Option<NaiveDate>> = shipments.iter().map(|s| window(s).map(|w| w.latest)).collect();
    let scans: Vec<Option<Vec<u8>>> =
        shipments.iter().map(|s| s.last_tracking_event.as_ref().map(Message::encode_to_vec)).collect();
    sqlx::query(
        "UPDATE shipments s SET status = v.status, delivered_at = v.delivered_at, promise_earliest = v.pe, \
         promise_latest = v.pl, last_scan = v.scan, \
         shipped_at = CASE WHEN v.status = $7 THEN NULL ELSE coalesce(s.shipped_at, now()) END \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::date[], $5::date[], $6::bytea[]) \
         AS v(tracking_number, status, delivered_at, pe, pl, scan) WHERE s.tracking_number = v.tracking_number",
    )
    .bind(numbers)
    .bind(statuses)
    .bind(delivered)
    .bind(earliest)
    .bind(latest)
    .bind(scans)
    .bind(ShipmentStatus::Labelled.as_str_name())
    .execute(conn)
    .await?;
    Ok(())
}

fn to_shipment(r: Row) -> Shipment {
    let promise = r.promise_earliest.zip(r.promise_latest).map(|(earliest, latest)| Window { earliest, latest });
    Shipment {
        order_id: r.order_id.to_string(),
        status: ShipmentStatus::from_str_name(&r.status).unwrap_or(ShipmentStatus::Unspecified) as i32,
        carrier: r.carrier,
        carrier_service: r.carrier_service,
        tracking_number: r.tracking_number,
        weight_grams: u32::try_from(r.weight_grams).unwrap_or(0),
        cost_cents: r.cost_cents,
        destination_country: r.destination_country,
        shipped_at: r.shipped_at.map(envelope::timestamp),
        delivered_at: r.delivered_at.map(envelope::timestamp),
        labelled_at: Some(envelope::timestamp(r.labelled_at)),
        label: r.label,
        delivery_promise: promise.map(Window::to_proto),
        last_tracking_event: r.last_scan.and_then(|bytes| TrackingScan::decode(bytes.as_slice()).ok()),
        service_level: ServiceLevel::from_str_name(&r.service_level).unwrap_or(ServiceLevel::Standard) as i32,
    }
}

#[cfg(test)]
mod tests;
