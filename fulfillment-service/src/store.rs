//! The `fulfillments` table.

use crate::fulfillment::Fulfillment;
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

/// Creates the order's fulfillment in `state` (new, or with its automatic steps taken); false
/// if it already exists.
pub async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    state: &Fulfillment,
    cause: &Cause,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO fulfillments (order_id, status, reserved, tote_id, package_id, weight_grams, cause_event_id, correlation_id, \
         traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(state.status.as_str_name())
    .bind(state.reserved.encode_to_vec())
    .bind(&state.tote_id)
    .bind(&state.package_id)
    .bind(i32::try_from(state.weight_grams).unwrap_or(i32::MAX))
    .bind(&cause.event_id)
    .bind(cause.correlation_id.as_deref().unwrap_or_default())
    .bind(cause.trace.to_string())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Saves the state after a step; `next_step_in` schedules the next automatic step, counted
/// from now (the clock, not the transaction's start: the step's event was decided after the
/// transaction began, and the next step must wait the whole delay after it).
pub async fn save(
    conn: &mut PgConnection,
    order_id: Uuid,
    state: &Fulfillment,
    cause: &Cause,
    next_step_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE fulfillments SET status = $2, tote_id = $3, package_id = $4, weight_grams = $5, cause_event_id = $6, correlation_id = $7, \
         traceparent = $8, next_step_at = clock_timestamp() + $9::interval, updated_at = now() WHERE order_id = $1",
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
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM fulfillments WHERE status = $1 ORDER BY created_at, order_id LIMIT $2"
    ))
    .bind(FulfillmentStatus::AwaitingPick.as_str_name())
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_parts().0).collect())
}

#[cfg(test)]
mod tests {
    //! The fulfillment store against the real PostgreSQL (`TEST_DATABASE_URL`, one fresh database
    //! per test): what an insert and a save write and the loads read back, one fulfillment per
    //! order, the row lock of a step, the schedule of automatic steps and the pick list.

    use super::*;
    use orderflow_kit::testing;
    use orderflow_proto::common::v1::{Address, ServiceLevel};
    use orderflow_proto::events::v1::ReservedLine;
    use sqlx::PgPool;

    fn waiting(order_id: Uuid) -> Fulfillment {
        let line = |sku: &str, bin: &str| ReservedLine {
            sku: sku.into(),
            quantity: 2,
            bin_location: bin.into(),
            unit_weight_grams: 350,
        };
        let reserved = StockReserved {
            lines: vec![line("MUG", "A-01-2"), line("TEE", "B-03-1")],
            shipping_address: Some(Address { name: "Ada".into(), country: "DE".into(), ..Default::default() }),
            service_level: ServiceLevel::Express as i32,
        };
        Fulfillment {
            order_id: order_id.to_string(),
            status: FulfillmentStatus::AwaitingPick,
            reserved,
            tote_id: String::new(),
            package_id: String::new(),
            weight_grams: 0,
        }
    }

    fn cause() -> Cause {
        Cause {
            event_id: Uuid::now_v7().to_string(),
            correlation_id: Some(Uuid::now_v7().to_string()),
            trace: TraceParent::new_root(),
        }
    }

    /// A new fulfillment awaiting pick, inserted in its own transaction.
    async fn create(pool: &PgPool) -> (Uuid, Fulfillment, Cause) {
        let (order_id, cause) = (Uuid::now_v7(), cause());
        let state = waiting(order_id);
        assert!(insert(&mut pool.acquire().await.unwrap(), order_id, &state, &cause).await.unwrap());
        (order_id, state, cause)
    }

    /// Saves `state` in its own transaction, with its next automatic step in `next_step_in`.
    async fn schedule(pool: &PgPool, order_id: Uuid, state: &Fulfillment, next_step_in: Option<Duration>) {
        save(&mut pool.acquire().await.unwrap(), order_id, state, &cause(), next_step_in).await.unwrap();
    }

    fn assert_same_cause(loaded: &Cause, saved: &Cause) {
        assert_eq!((&loaded.event_id, &loaded.correlation_id), (&saved.event_id, &saved.correlation_id));
        assert_eq!(loaded.trace.trace_id, saved.trace.trace_id, "the stored trace continues");
    }

    fn ids(due: &[(Uuid, Fulfillment, Cause)]) -> Vec<Uuid> {
        due.iter().map(|(order_id, _, _)| *order_id).collect()
    }

    #[tokio::test]
    async fn an_inserted_fulfillment_loads_and_locks_back_with_its_cause() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, state, cause) = create(&pool).await;

        assert_eq!(load(&pool, order_id).await.unwrap(), Some(state.clone()));
        let mut tx = pool.begin().await.unwrap();
        let (locked, stored_cause) = lock(&mut tx, order_id).await.unwrap().expect("the fulfillment exists");
        assert_eq!(locked, state);
        assert_same_cause(&stored_cause, &cause);
        assert_ne!(stored_cause.trace.span_id, cause.trace.span_id, "as a child span");
    }

    #[tokio::test]
    async fn a_second_insert_for_one_order_is_refused_and_keeps_the_first() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, state, first_cause) = create(&pool).await;
        let other = Fulfillment { status: FulfillmentStatus::Cancelled, ..state.clone() };

        let mut tx = pool.begin().await.unwrap();
        assert!(!insert(&mut tx, order_id, &other, &cause()).await.unwrap());
        let (kept, kept_cause) = lock(&mut tx, order_id).await.unwrap().unwrap();
        assert_eq!(kept, state);
        assert_same_cause(&kept_cause, &first_cause);
    }

    #[tokio::test]
    async fn a_saved_step_round_trips_every_column() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, state, _) = create(&pool).await;
        let packed = Fulfillment {
            status: FulfillmentStatus::Packed,
            tote_id: "TOTE-7".into(),
            package_id: "PKG-9".into(),
            weight_grams: 1_400,
            ..state
        };
        let packed_cause = cause();

        let mut tx = pool.begin().await.unwrap();
        save(&mut tx, order_id, &packed, &packed_cause, None).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(load(&pool, order_id).await.unwrap(), Some(packed.clone()));
        let (locked, locked_cause) = lock(&mut pool.acquire().await.unwrap(), order_id).await.unwrap().unwrap();
        assert_eq!(locked, packed);
        assert_same_cause(&locked_cause, &packed_cause);
    }

    #[tokio::test]
    async fn lock_holds_the_fulfillment_until_its_transaction_ends() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, _, _) = create(&pool).await;
        let mut holder = pool.begin().await.unwrap();
        lock(&mut holder, order_id).await.unwrap().unwrap();

        let mut other = testing::impatient_transaction(&pool).await;
        let waited = lock(&mut other, order_id).await.unwrap_err();
        assert!(testing::lock_not_granted(&waited), "a second locker waits: {waited}");
        other.rollback().await.unwrap();
        assert!(load(&pool, order_id).await.unwrap().is_some(), "a plain read does not wait");

        holder.commit().await.unwrap();
        let mut other = testing::impatient_transaction(&pool).await;
        assert!(lock(&mut other, order_id).await.unwrap().is_some(), "free once the holder commits");
        assert!(lock(&mut other, Uuid::now_v7()).await.unwrap().is_none(), "an unknown order has none");
        assert_eq!(load(&pool, Uuid::now_v7()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn lock_due_takes_the_due_fulfillments_earliest_due_first_up_to_the_limit() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let mut created = Vec::new();
        for _ in 0..6 {
            let (order_id, state, _) = create(&pool).await;
            created.push((order_id, state));
        }
        let [a, b, c, later, _never, unscheduled] = <[_; 6]>::try_from(created).unwrap();
        for (order_id, state) in [&c, &a, &b, &unscheduled] {
            schedule(&pool, *order_id, state, Some(Duration::ZERO)).await;
        }
        schedule(&pool, later.0, &later.1, Some(Duration::from_secs(3600))).await;
        schedule(&pool, unscheduled.0, &unscheduled.1, None).await;

        let mut tx = pool.begin().await.unwrap();
        assert_eq!(ids(&lock_due(&mut tx, 2).await.unwrap()), [c.0, a.0]);
        let due = lock_due(&mut tx, 10).await.unwrap();
        assert_eq!(ids(&due), [c.0, a.0, b.0], "not one scheduled later, never, or no longer");
        assert_eq!(due[2].1, b.1);
    }

    #[tokio::test]
    async fn lock_due_skips_the_fulfillments_another_transaction_holds() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (first, first_state, _) = create(&pool).await;
        let (second, second_state, _) = create(&pool).await;
        schedule(&pool, first, &first_state, Some(Duration::ZERO)).await;
        schedule(&pool, second, &second_state, Some(Duration::ZERO)).await;

        let mut holder = pool.begin().await.unwrap();
        assert_eq!(ids(&lock_due(&mut holder, 1).await.unwrap()), [first]);
        let mut other = testing::impatient_transaction(&pool).await;
        assert_eq!(ids(&lock_due(&mut other, 10).await.unwrap()), [second], "without waiting for the held row");
        other.rollback().await.unwrap();

        holder.commit().await.unwrap();
        let mut other = testing::impatient_transaction(&pool).await;
        assert_eq!(ids(&lock_due(&mut other, 10).await.unwrap()), [first, second]);
    }

    #[tokio::test]
    async fn awaiting_pick_lists_the_oldest_waiting_fulfillments_up_to_the_limit() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (a, _, _) = create(&pool).await;
        let (picked, picked_state, _) = create(&pool).await;
        let (c, _, _) = create(&pool).await;
        let (d, _, _) = create(&pool).await;
        let picked_state = Fulfillment { status: FulfillmentStatus::Picked, ..picked_state };
        schedule(&pool, picked, &picked_state, None).await;

        let order_ids = |list: Vec<Fulfillment>| list.into_iter().map(|f| f.order_id).collect::<Vec<_>>();
        let [a, c, d] = [a, c, d].map(|id| id.to_string());
        assert_eq!(order_ids(awaiting_pick(&pool, 2).await.unwrap()), [a.clone(), c.clone()]);
        assert_eq!(order_ids(awaiting_pick(&pool, 10).await.unwrap()), [a, c, d]);
    }
}
