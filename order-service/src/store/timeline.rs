//! The `order_timeline` table's writes: every event of an order once, at its flow step.

use chrono::{DateTime, Utc};
use orderflow_kit::envelope::{self, EventEnvelope};
use sqlx::postgres::PgConnection;
use uuid::Uuid;

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
