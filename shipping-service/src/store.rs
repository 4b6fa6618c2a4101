//! The `shipments` table.

use chrono::{DateTime, Utc};
use orderflow_kit::envelope;
use orderflow_proto::events::v1::Shipped;
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus};
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
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
    shipped_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

/// True if the order already has a shipment (locking it for this transaction).
pub async fn exists(conn: &mut PgConnection, order_id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<Uuid> = sqlx::query_scalar("SELECT order_id FROM shipments WHERE order_id = $1 FOR UPDATE")
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// The next label serial, from the `label_serial` sequence.
pub async fn next_serial(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let serial: i64 = sqlx::query_scalar("SELECT nextval('label_serial')").fetch_one(conn).await?;
    Ok(u64::try_from(serial).unwrap_or_default())
}

pub async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    shipped: &Shipped,
    country: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO shipments (order_id, status, carrier, carrier_service, tracking_number, weight_grams, cost_cents, destination_country) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(order_id)
    .bind(ShipmentStatus::Shipped.as_str_name())
    .bind(&shipped.carrier)
    .bind(&shipped.carrier_service)
    .bind(&shipped.tracking_number)
    .bind(i32::try_from(shipped.weight_grams).unwrap_or(i32::MAX))
    .bind(shipped.cost_cents)
    .bind(country)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "order_id, status, carrier, carrier_service, tracking_number, weight_grams, cost_cents, \
                       destination_country, shipped_at, delivered_at";

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

/// Records the delivery scan.
pub async fn mark_delivered(conn: &mut PgConnection, tracking_number: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE shipments SET status = $2, delivered_at = now() WHERE tracking_number = $1")
        .bind(tracking_number)
        .bind(ShipmentStatus::Delivered.as_str_name())
        .execute(conn)
        .await?;
    Ok(())
}

fn to_shipment(r: Row) -> Shipment {
    Shipment {
        order_id: r.order_id.to_string(),
        status: ShipmentStatus::from_str_name(&r.status).unwrap_or(ShipmentStatus::Unspecified) as i32,
        carrier: r.carrier,
        carrier_service: r.carrier_service,
        tracking_number: r.tracking_number,
        weight_grams: u32::try_from(r.weight_grams).unwrap_or(0),
        cost_cents: r.cost_cents,
        destination_country: r.destination_country,
        shipped_at: Some(envelope::timestamp(r.shipped_at)),
        delivered_at: r.delivered_at.map(envelope::timestamp),
    }
}
