//! The `payments` table: one row per order while a gateway call is due for it. Whoever changes
//! a row's action holds the order's row lock, so the action is always what the order's view
//! needs (`domain::needed`). A worker takes rows with a lease (`claim`) and gives back only
//! rows still under its own lease (`retry_all`, `release`): a row another worker took since,
//! after this lease ran out, is left to that worker.

use super::domain::Action;
use chrono::{DateTime, Utc};
use orderflow_kit::envelope::EventEnvelope;
use orderflow_proto::events::v1::OrderPlaced;
use prost::Message;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use std::time::Duration;
use uuid::Uuid;

/// A due call a worker took: the order, the call, the event that made it due, how often it
/// failed before, and the order as placed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub order_id: Uuid,
    /// Until when this worker holds it: also the token that says the row is still its own.
    pub lease: DateTime<Utc>,
    pub action: Action,
    pub cause: EventEnvelope,
    pub attempts: u32,
    pub placed: OrderPlaced,
}

/// Makes `action` due now for each order (its attempts start again), or, for `None`, nothing.
pub async fn schedule_all(
    conn: &mut PgConnection,
    calls: &[(Uuid, Option<Action>, &EventEnvelope)],
) -> Result<(), sqlx::Error> {
    type Call<'a> = &'a (Uuid, Option<Action>, &'a EventEnvelope);
    let (due, none): (Vec<Call>, Vec<Call>) = calls.iter().partition(|(_, action, _)| action.is_some());
    if !due.is_empty() {
        let ids: Vec<Uuid> = due.iter().map(|(id, ..)| *id).collect();
        let actions: Vec<&str> = due.iter().filter_map(|(_, a, _)| a.map(Action::as_str)).collect();
        let causes: Vec<Vec<u8>> = due.iter().map(|(.., cause)| cause.encode_to_vec()).collect();
        sqlx::query(
            "INSERT INTO payments (order_id, action, cause) SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[]) \
             ON CONFLICT (order_id) DO UPDATE SET action = excluded.action, cause = excluded.cause, due_at = now(), \
             attempts = 0, last_error = '', leased_until = NULL",
        )
        .bind(ids)
        .bind(actions)
        .bind(causes)
        .execute(&mut *conn)
        .await?;
    }
    if !none.is_empty() {
        let ids: Vec<Uuid> = none.iter().map(|(id, ..)| *id).collect();
        sqlx::query("DELETE FROM payments WHERE order_id = ANY($1)").bind(ids).execute(conn).await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    order_id: Uuid,
    leased_until: DateTime<Utc>,
    action: String,
    cause: Vec<u8>,
    attempts: i32,
    placed: Vec<u8>,
}

/// Takes up to `limit` due calls for `lease` (skipping rows another worker holds).
pub async fn claim<'c, E>(db: E, limit: i64, lease: Duration) -> Result<Vec<Claimed>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<Row> = sqlx::query_as(
        // The order as placed by its primary key, row by row: a join could scan every order.
        "UPDATE payments p SET leased_until = now() + make_interval(secs => $2) \
         WHERE p.order_id IN (SELECT order_id FROM payments WHERE due_at <= now() \
           AND (leased_until IS NULL OR leased_until < now()) ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING p.order_id, p.leased_until, p.action, p.cause, p.attempts, \
           (SELECT o.placed FROM orders o WHERE o.order_id = p.order_id) AS placed",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let claimed = Some(Claimed {
                order_id: row.order_id,
                lease: row.leased_until,
                action: Action::parse(&row.action)?,
                cause: EventEnvelope::decode(row.cause.as_slice()).ok()?,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                placed: OrderPlaced::decode(row.placed.as_slice()).ok()?,
            });
            if claimed.is_none() {
                tracing::error!(order_id = %row.order_id, action = %row.action, "a due payment call cannot be read; left leased");
            }
            claimed
        })
        .collect())
}

/// A failed call, to be tried again: the order, the lease it was taken under, the attempts so
/// far, when, and the error.
pub type Retry = (Uuid, DateTime<Utc>, u32, DateTime<Utc>, String);

/// Failed calls still under their lease: each tried again at its time, with its error kept.
pub async fn retry_all(conn: &mut PgConnection, failed: &[Retry]) -> Result<(), sqlx::Error> {
    if failed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = failed.iter().map(|(id, ..)| *id).collect();
    let leases: Vec<DateTime<Utc>> = failed.iter().map(|(_, lease, ..)| *lease).collect();
    let attempts: Vec<i32> = failed.iter().map(|(_, _, n, ..)| i32::try_from(*n).unwrap_or(i32::MAX)).collect();
    let due: Vec<DateTime<Utc>> = failed.iter().map(|(.., at, _)| *at).collect();
    let errors: Vec<&str> = failed.iter().map(|(.., e)| e.as_str()).collect();
    sqlx::query(
        "UPDATE payments p SET attempts = f.n, due_at = f.due, last_error = f.error, leased_until = NULL \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::int4[], $4::timestamptz[], $5::text[]) \
         AS f(id, lease, n, due, error) WHERE p.order_id = f.id AND p.leased_until = f.lease",
    )
    .bind(ids)
    .bind(leases)
    .bind(attempts)
    .bind(due)
    .bind(errors)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives back calls a worker took (order, lease) and settled nothing for, if still its own.
pub async fn release(conn: &mut PgConnection, taken: &[(Uuid, DateTime<Utc>)]) -> Result<(), sqlx::Error> {
    if taken.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = taken.iter().map(|(id, _)| *id).collect();
    let leases: Vec<DateTime<Utc>> = taken.iter().map(|(_, lease)| *lease).collect();
    sqlx::query(
        "UPDATE payments p SET leased_until = NULL FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, lease) \
         WHERE p.order_id = t.id AND p.leased_until = t.lease",
    )
    .bind(ids)
    .bind(leases)
    .execute(conn)
    .await?;
    Ok(())
}
