//! The `webhooks` and `webhook_deliveries` tables.

use super::domain::{Message, NewWebhook};
use chrono::{DateTime, Utc};
use orderflow_kit::envelope;
use orderflow_proto::order::v1::{Webhook, WebhookDelivery, WebhookDeliveryState};
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres};
use uuid::Uuid;

pub async fn create<'c, E>(db: E, new: &NewWebhook, secret: &str) -> Result<Webhook, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let (id, created_at): (Uuid, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO webhooks (webhook_id, url, event_types, description, secret) VALUES ($1, $2, $3, $4, $5) \
         RETURNING webhook_id, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(&new.url)
    .bind(&new.event_types)
    .bind(&new.description)
    .bind(secret)
    .fetch_one(db)
    .await?;
    Ok(Webhook {
        webhook_id: id.to_string(),
        url: new.url.clone(),
        event_types: new.event_types.clone(),
        description: new.description.clone(),
        secret: secret.to_owned(),
        created_at: Some(envelope::timestamp(created_at)),
    })
}

/// Every endpoint, oldest first, without secrets.
pub async fn list<'c, E>(db: E) -> Result<Vec<Webhook>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    type Listed = (Uuid, String, Vec<String>, String, DateTime<Utc>);
    let rows: Vec<Listed> = sqlx::query_as(
        "SELECT webhook_id, url, event_types, description, created_at FROM webhooks ORDER BY webhook_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, url, event_types, description, at)| Webhook {
            webhook_id: id.to_string(),
            url,
            event_types,
            description,
            secret: String::new(),
            created_at: Some(envelope::timestamp(at)),
        })
        .collect())
}

/// Deletes an endpoint and its deliveries; false if there was none.
pub async fn delete<'c, E>(db: E, webhook_id: Uuid) -> Result<bool, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let done = sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1").bind(webhook_id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

/// Queues `messages` for every endpoint subscribed to their type, in one statement (in the
/// caller's transaction: the deliveries exist exactly when the change commits).
pub async fn enqueue(conn: &mut PgConnection, messages: &[Message]) -> Result<(), sqlx::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    let types: Vec<&str> = messages.iter().map(|m| m.event_type).collect();
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries (delivery_id, webhook_id, event_type, subject, payload) \
         SELECT gen_random_uuid(), w.webhook_id, m.t, m.s, m.b \
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS m(t, s, b, n) \
         JOIN webhooks w ON m.t = ANY(w.event_types) ORDER BY m.n, w.webhook_id",
    )
    .bind(types)
    .bind(subjects)
    .bind(bodies)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery taken for sending: where, with which key, what.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub subject: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Takes up to `limit` due deliveries, each the first pending one of its endpoint and subject
/// (so one subject's deliveries arrive in order) and at most `per_endpoint` of one endpoint,
/// skipping the endpoints in `busy` and rows another sender holds; each is leased for `lease`
/// (retried after it if the sender dies).
pub async fn take_due(
    conn: &mut PgConnection,
    busy: &[Uuid],
    limit: i64,
    per_endpoint: i64,
    lease: std::time::Duration,
) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $3), attempts = d.attempts + 1 \
         FROM webhooks w WHERE w.webhook_id = d.webhook_id AND d.delivery_id IN ( \
           SELECT q.delivery_id FROM webhook_deliveries q \
           WHERE q.state = 'WEBHOOK_DELIVERY_PENDING' AND q.next_attempt_at <= now() AND q.delivery_id IN ( \
             SELECT c.delivery_id FROM ( \
               SELECT p.delivery_id, p.seq, row_number() OVER (PARTITION BY p.webhook_id ORDER BY p.seq) AS r \
               FROM webhook_deliveries p \
               WHERE p.state = 'WEBHOOK_DELIVERY_PENDING' AND p.next_attempt_at <= now() \
               AND NOT (p.webhook_id = ANY($1)) \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = p.webhook_id \
                 AND e.subject = p.subject AND e.state = 'WEBHOOK_DELIVERY_PENDING' AND e.seq < p.seq)) c \
             WHERE c.r <= $4 ORDER BY c.seq LIMIT $2) \
           FOR UPDATE OF q SKIP LOCKED) \
         RETURNING d.delivery_id, d.webhook_id, d.subject, w.url, w.secret, d.payload, d.attempts, d.created_at",
    )
    .bind(busy)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(per_endpoint)
    .fetch_all(conn)
    .await
}

/// Records an attempt's outcome: delivered, to be retried at `retry_at`, or failed for good
/// (`retry_at` `None`).
pub async fn record<'c, E>(
    db: E,
    delivery_id: Uuid,
    delivered: bool,
    status: u16,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let state = match (delivered, retry_at) {
        (true, _) => WebhookDeliveryState::WebhookDeliveryDelivered,
        (false, Some(_)) => WebhookDeliveryState::WebhookDeliveryPending,
        (false, None) => WebhookDeliveryState::WebhookDeliveryFailed,
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4, \
         next_attempt_at = coalesce($5, next_attempt_at), delivered_at = CASE WHEN $6 THEN now() END \
         WHERE delivery_id = $1",
    )
    .bind(delivery_id)
    .bind(state.as_str_name())
    .bind(i32::from(status))
    .bind(error)
    .bind(retry_at)
    .bind(delivered)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets deliveries delivered longer ago than `age` (they stay listable until then); how many.
pub async fn prune<'c, E>(db: E, age: std::time::Duration) -> Result<u64, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let done = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE state = 'WEBHOOK_DELIVERY_DELIVERED' \
         AND delivered_at < now() - make_interval(secs => $1)",
    )
    .bind(age.as_secs_f64())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

#[derive(sqlx::FromRow)]
struct Row {
    delivery_id: Uuid,
    webhook_id: Uuid,
    event_type: String,
    subject: String,
    payload: String,
    state: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    last_status: i32,
    last_error: String,
}

const COLUMNS: &str = "delivery_id, webhook_id, event_type, subject, payload, state, attempts, created_at, \
     next_attempt_at, delivered_at, last_status, last_error";

/// An endpoint's deliveries, newest first, in `state` (any for `None`), before `before` (a seq).
pub async fn deliveries<'c, E>(
    db: E,
    webhook_id: Uuid,
    state: Option<WebhookDeliveryState>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, WebhookDelivery)>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let rows: Vec<SeqRow> = sqlx::query_as(&format!(
        "SELECT seq, {COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND ($2::text IS NULL OR state = $2) \
         AND ($3::int8 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
    ))
    .bind(webhook_id)
    .bind(state.map(|s| s.as_str_name()))
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.seq, to_delivery(r.row))).collect())
}

#[derive(sqlx::FromRow)]
struct SeqRow {
    seq: i64,
    #[sqlx(flatten)]
    row: Row,
}

/// Sends a delivery again from now (its attempts start over); `None` if there is none.
pub async fn redeliver<'c, E>(db: E, delivery_id: Uuid) -> Result<Option<WebhookDelivery>, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE webhook_deliveries SET state = 'WEBHOOK_DELIVERY_PENDING', attempts = 0, next_attempt_at = now(), \
         created_at = now(), delivered_at = NULL WHERE delivery_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(delivery_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(to_delivery))
}

fn to_delivery(r: Row) -> WebhookDelivery {
    WebhookDelivery {
        delivery_id: r.delivery_id.to_string(),
        webhook_id: r.webhook_id.to_string(),
        event_type: r.event_type,
        subject: r.subject,
        state: WebhookDeliveryState::from_str_name(&r.state).unwrap_or_default() as i32,
        attempts: r.attempts,
        created_at: Some(envelope::timestamp(r.created_at)),
        next_attempt_at: Some(envelope::timestamp(r.next_attempt_at)),
        delivered_at: r.delivered_at.map(envelope::timestamp),
        last_status: r.last_status,
        last_error: r.last_error,
        payload: r.payload,
    }
}
