//! The `fulfillments` table.

use crate::domain::Fulfillment;
use orderflow_kit::envelope::Cause;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::events::v1::StockReserved;
use orderflow_proto::fulfillment::v1::FulfillmentStatus;
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use std::time::Duration;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    order_id: Uuid,
    status: String,
    reserved: Vec<u8>,
    tote_id: String,
    package_id: String,
    weight_grams: i32,
    cause_event_id: String,
    correlation_id: String,
    traceparent: String,
}

impl Row {
    fn into_parts(self) -> (Fulfillment, Cause) {
        let fulfillment = Fulfillment {
            order_id: self.order_id.to_string(),
            status: FulfillmentStatus::from_str_name(&self.status).unwrap_or(FulfillmentStatus::Unspecified),
            reserved: StockReserved::decode(self.reserved.as_slice()).unwrap_or_default(),
            tote_id: self.tote_id,
            package_id: self.package_id,
            weight_grams: u32::try_from(self.weight_grams).unwrap_or(0),
        };
        let cause = Cause {
            event_id: self.cause_event_id,
            correlation_id: Some(self.correlation_id),
            trace: TraceParent::continue_or_start(Some(&self.traceparent)),
        };
        (fulfillment, cause)
    }
}

const COLUMNS: &str =
    "order_id, status, reserved, tote_id, package_id, weight_grams, cause_event_id, correlation_id, traceparent";

/// Creates the order's fulfillment; false if it already exists.
pub async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    state: &Fulfillment,
    cause: &Cause,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO fulfillments (order_id, status, reserved, cause_event_id, correlation_id, traceparent) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(state.status.as_str_name())
    .bind(state.reserved.encode_to_vec())
    .bind(&cause.event_id)
    .bind(cause.correlation_id.as_deref().unwrap_or_default())
    .bind(cause.trace.to_string())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Saves the state after a step; `next_step_in` schedules the next automatic step.
pub async fn save(
    conn: &mut PgConnection,
    order_id: Uuid,
    state: &Fulfillment,
    cause: &Cause,
    next_step_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE fulfillments SET status = $2, tote_id = $3, package_id = $4, weight_grams = $5, cause_event_id = $6, correlation_id = $7, \
         traceparent = $8, next_step_at = now() + $9::interval, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(state.status.as_str_name())
    .bind(&state.tote_id)
    .bind(&state.package_id)
    .bind(i32::try_from(state.weight_grams).unwrap_or(i32::MAX))
    .bind(&cause.event_id)
    .bind(cause.correlation_id.as_deref().unwrap_or_default())
    .bind(cause.trace.to_string())
    .bind(next_step_in.map(|d| format!("{} milliseconds", d.as_millis())))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn load<'c, E>(db: E, order_id: Uuid) -> Result<Option<Fulfillment>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM fulfillments WHERE order_id = $1"))
        .bind(order_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.into_parts().0))
}

/// Locks up to `limit` fulfillments whose next automatic step is due, skipping rows another
/// instance holds.
pub async fn lock_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<(Uuid, Fulfillment, Cause)>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM fulfillments WHERE next_step_at <= now() ORDER BY next_step_at LIMIT $1 FOR UPDATE SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let order_id = row.order_id;
            let (state, cause) = row.into_parts();
            (order_id, state, cause)
        })
        .collect())
}

/// Locks the order's fulfillment for this transaction.
pub async fn lock(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<(Fulfillment, Cause)>, sqlx::Error> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM fulfillments WHERE order_id = $1 FOR UPDATE"))
            .bind(order_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(Row::into_parts))
}

/// The oldest fulfillments still waiting to be picked.
pub async fn awaiting_pick<'c, E>(db: E, limit: i64) -> Result<Vec<Fulfillment>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM fulfillments WHERE status = $1 ORDER BY created_at LIMIT $2"))
            .bind(FulfillmentStatus::AwaitingPick.as_str_name())
            .bind(limit)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|r| r.into_parts().0).collect())
}
