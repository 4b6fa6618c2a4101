//! The inbox's own tables: `consumer_offsets` (the next offset per partition, and the fence),
//! `inbox` (every event id seen) and `parked` (dead letters and what waits behind them).

use super::Partition;
use super::incoming::{Incoming, stored_text};
use crate::envelope::{self, Decoded};
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, HashSet};

/// Longest event type name recorded (bytes).
const MAX_EVENT_TYPE: usize = 128;

/// Every (topic, partition, next offset) `group` has stored, in topic and partition order.
pub async fn stored_offsets<'c, E>(db: E, group: &str) -> Result<Vec<(String, i32, i64)>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    sqlx::query_as(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 ORDER BY topic, partition",
    )
    .bind(group)
    .fetch_all(db)
    .await
}

pub async fn load_position(
    conn: &mut PgConnection,
    group: &str,
    partition: &Partition,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
    )
    .bind(group)
    .bind(&partition.0)
    .bind(partition.1)
    .fetch_optional(conn)
    .await
}

/// Moves the stored offset from `from` to `next`; false if it is no longer `from`.
pub async fn store_position(
    conn: &mut PgConnection,
    group: &str,
    partition: &Partition,
    from: Option<i64>,
    next: i64,
) -> Result<bool, sqlx::Error> {
    let (topic, number) = (partition.0.as_str(), partition.1);
    let result = match from {
        None => {
            sqlx::query(
                "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(topic)
            .bind(number)
            .bind(next)
            .execute(conn)
            .await?
        }
        Some(from) => {
            sqlx::query(
                "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() \
                 WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
            )
            .bind(group)
            .bind(topic)
            .bind(number)
            .bind(next)
            .bind(from)
            .execute(conn)
            .await?
        }
    };
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, sqlx::FromRow)]
pub struct ParkedRow {
    pub id: i64,
    pub key: String,
    topic: String,
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
}

impl ParkedRow {
    pub fn into_incoming(self) -> Incoming {
        Incoming {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key,
            payload: self.payload,
            headers: self.headers.0,
        }
    }
}

const PARKED: &str = "SELECT id, key, topic, partition, \"offset\", payload, headers FROM parked";

/// The dead letter parked at (topic, partition, offset) for `group`, locked.
pub async fn dead_at(
    conn: &mut PgConnection,
    group: &str,
    (topic, partition, offset): (&str, i32, i64),
) -> Result<Option<ParkedRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{PARKED} WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND \"offset\" = $4 AND dead FOR UPDATE"
    ))
    .bind(group)
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .fetch_optional(conn)
    .await
}

/// The messages waiting behind `key`'s dead letter, in arrival order, locked.
pub async fn waiting_behind(conn: &mut PgConnection, group: &str, key: &str) -> Result<Vec<ParkedRow>, sqlx::Error> {
    sqlx::query_as(&format!("{PARKED} WHERE consumer_group = $1 AND key = $2 AND NOT dead ORDER BY id FOR UPDATE"))
        .bind(group)
        .bind(key)
        .fetch_all(conn)
        .await
}

pub async fn unpark(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM parked WHERE id = $1").bind(id).execute(conn).await.map(drop)
}

/// Records `decoded` (read as `incoming`) in the inbox; false if it was there already.
pub async fn insert_inbox(
    conn: &mut PgConnection,
    decoded: &Decoded,
    incoming: &Incoming,
) -> Result<bool, sqlx::Error> {
    record(conn, decoded.event_id, &decoded.envelope.event_type, incoming, false).await
}

/// Records the events of a batch in the inbox in one statement; returns the ids that were not
/// there yet (a copy later in the same batch is not new either).
pub async fn insert_inbox_all(
    conn: &mut PgConnection,
    events: &[(&Decoded, &Incoming)],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|(d, _)| d.event_id).collect();
    let types: Vec<String> =
        events.iter().map(|(d, _)| stored_text(d.envelope.event_type.as_bytes(), MAX_EVENT_TYPE)).collect();
    let topics: Vec<&str> = events.iter().map(|(_, i)| i.topic.as_str()).collect();
    let partitions: Vec<i32> = events.iter().map(|(_, i)| i.partition).collect();
    let offsets: Vec<i64> = events.iter().map(|(_, i)| i.offset).collect();
    let new: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO inbox (event_id, event_type, topic, partition, \"offset\", skipped) \
         SELECT id, t, tp, p, o, false FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int8[]) AS b(id, t, tp, p, o) \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(ids)
    .bind(types)
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .fetch_all(conn)
    .await?;
    Ok(new.into_iter().collect())
}

/// Records an event of a type this build does not know as seen and skipped; false if it was
/// there already.
pub async fn record_skipped(
    conn: &mut PgConnection,
    event_id: uuid::Uuid,
    event_type: &str,
    incoming: &Incoming,
) -> Result<bool, sqlx::Error> {
    record(conn, event_id, event_type, incoming, true).await
}

async fn record(
    conn: &mut PgConnection,
    event_id: uuid::Uuid,
    event_type: &str,
    incoming: &Incoming,
    skipped: bool,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, event_type, topic, partition, \"offset\", skipped) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(stored_text(event_type.as_bytes(), MAX_EVENT_TYPE))
    .bind(&incoming.topic)
    .bind(incoming.partition)
    .bind(incoming.offset)
    .bind(skipped)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Marks a discarded message's event (if it is one) as seen, without applying it.
pub async fn record_seen(conn: &mut PgConnection, incoming: &Incoming) -> Result<(), sqlx::Error> {
    match envelope::decode(incoming.payload.as_deref()) {
        Ok(decoded) => insert_inbox(conn, &decoded, incoming).await.map(drop),
        Err(_) => Ok(()),
    }
}

/// How a message is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// A dead letter whose key's later messages wait behind it.
    HeadOfKey,
    /// A dead letter that holds nothing up (it is not an event of the order its key names).
    Alone,
    /// A message waiting behind its key's dead letter.
    Waiting,
}

/// Sets `incoming` aside for `group` as `how`; `error` says why (dead letters).
pub async fn park(
    conn: &mut PgConnection,
    group: &str,
    incoming: &Incoming,
    how: Park,
    error: &str,
) -> Result<(), sqlx::Error> {
    let key = if how == Park::Alone { "" } else { incoming.key.as_str() };
    sqlx::query(
        "INSERT INTO parked (consumer_group, key, topic, partition, \"offset\", payload, headers, dead, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (consumer_group, topic, partition, \"offset\") DO UPDATE SET dead = EXCLUDED.dead, error = EXCLUDED.error",
    )
    .bind(group)
    .bind(key)
    .bind(&incoming.topic)
    .bind(incoming.partition)
    .bind(incoming.offset)
    .bind(incoming.payload.as_deref())
    .bind(sqlx::types::Json(&incoming.headers))
    .bind(how != Park::Waiting)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys with a dead letter at their head, for `group`.
pub async fn parked_keys(conn: &mut PgConnection, group: &str) -> Result<HashSet<String>, sqlx::Error> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key FROM parked WHERE consumer_group = $1 AND dead AND key <> ''")
            .bind(group)
            .fetch_all(conn)
            .await?;
    Ok(keys.into_iter().collect())
}
