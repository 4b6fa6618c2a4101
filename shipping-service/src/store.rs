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

/// Which of `order_ids` have a shipment already (locking them for this transaction).
pub async fn labelled(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
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

/// Stores many shipments in one statement: (order, its Shipped event, destination country).
pub async fn insert_all(conn: &mut PgConnection, shipments: &[(Uuid, Shipped, String)]) -> Result<(), sqlx::Error> {
    if shipments.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = shipments.iter().map(|(id, _, _)| *id).collect();
    let text = |f: fn(&Shipped) -> &str| shipments.iter().map(|(_, s, _)| f(s)).collect::<Vec<&str>>();
    let weights: Vec<i32> =
        shipments.iter().map(|(_, s, _)| i32::try_from(s.weight_grams).unwrap_or(i32::MAX)).collect();
    let costs: Vec<i64> = shipments.iter().map(|(_, s, _)| s.cost_cents).collect();
    let countries: Vec<&str> = shipments.iter().map(|(_, _, c)| c.as_str()).collect();
    sqlx::query(
        "INSERT INTO shipments (order_id, status, carrier, carrier_service, tracking_number, weight_grams, cost_cents, destination_country) \
         SELECT id, $2, c, cs, tn, w, cost, country FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int8[], $8::text[]) \
         AS u(id, c, cs, tn, w, cost, country)",
    )
    .bind(ids)
    .bind(ShipmentStatus::Shipped.as_str_name())
    .bind(text(|s| &s.carrier))
    .bind(text(|s| &s.carrier_service))
    .bind(text(|s| &s.tracking_number))
    .bind(weights)
    .bind(costs)
    .bind(countries)
    .execute(conn)
    .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    //! The shipment store against the real PostgreSQL (`TEST_DATABASE_URL`, one fresh database
    //! per test): what an insert writes and the loads read back, one shipment per order and per
    //! tracking number, the row locks, the label sequence and the delivery scan.

    use super::*;
    use orderflow_kit::testing;
    use sqlx::PgPool;
    use std::collections::HashSet;

    /// Labels a shipment for a new order, in its own transaction.
    async fn ship(pool: &PgPool) -> (Uuid, Shipped) {
        let mut tx = pool.begin().await.unwrap();
        let serial = next_serial(&mut tx).await.unwrap();
        let order_id = Uuid::now_v7();
        let shipped = Shipped {
            carrier: "DHL".into(),
            carrier_service: "Paket".into(),
            tracking_number: format!("DHL-{serial:011}"),
            weight_grams: 1_400,
            cost_cents: 699,
        };
        insert(&mut tx, order_id, &shipped, "FR").await.unwrap();
        tx.commit().await.unwrap();
        (order_id, shipped)
    }

    fn sql_state(error: &sqlx::Error) -> Option<String> {
        error.as_database_error().and_then(|e| e.code()).map(|code| code.into_owned())
    }

    #[tokio::test]
    async fn an_inserted_shipment_loads_back_with_every_column() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, shipped) = ship(&pool).await;

        let shipment = load(&pool, order_id).await.unwrap().expect("the shipment is stored");
        let expected = Shipment {
            order_id: order_id.to_string(),
            status: ShipmentStatus::Shipped as i32,
            carrier: shipped.carrier,
            carrier_service: shipped.carrier_service,
            tracking_number: shipped.tracking_number.clone(),
            weight_grams: shipped.weight_grams,
            cost_cents: shipped.cost_cents,
            destination_country: "FR".into(),
            shipped_at: shipment.shipped_at,
            delivered_at: None,
        };
        assert_eq!(shipment, expected);
        assert!(shipment.shipped_at.is_some_and(|at| at.seconds > 0));
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(by_tracking_number(&mut conn, &shipped.tracking_number, false).await.unwrap(), Some(shipment));
        assert!(exists(&mut conn, order_id).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_order_or_tracking_number_has_no_shipment() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        ship(&pool).await;
        let mut conn = pool.acquire().await.unwrap();
        assert!(!exists(&mut conn, Uuid::now_v7()).await.unwrap());
        assert_eq!(load(&pool, Uuid::now_v7()).await.unwrap(), None);
        assert_eq!(by_tracking_number(&mut conn, "DHL-99999999999", true).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_second_shipment_for_one_order_or_one_tracking_number_is_refused() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, shipped) = ship(&pool).await;
        let mut conn = pool.acquire().await.unwrap();

        let other_label = Shipped { tracking_number: "DHL-99999999999".into(), ..shipped.clone() };
        let again = insert(&mut conn, order_id, &other_label, "FR").await.unwrap_err();
        assert_eq!(sql_state(&again).as_deref(), Some("23505"), "unique violation: {again}");
        let reused = insert(&mut conn, Uuid::now_v7(), &shipped, "FR").await.unwrap_err();
        assert_eq!(sql_state(&reused).as_deref(), Some("23505"), "unique violation: {reused}");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments").fetch_one(&pool).await.unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn exists_holds_the_shipment_until_its_transaction_ends() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (order_id, _) = ship(&pool).await;
        let mut holder = pool.begin().await.unwrap();
        assert!(exists(&mut holder, order_id).await.unwrap());

        let mut other = testing::impatient_transaction(&pool).await;
        let waited = exists(&mut other, order_id).await.unwrap_err();
        assert!(testing::lock_not_granted(&waited), "a second caller waits: {waited}");
        other.rollback().await.unwrap();

        holder.commit().await.unwrap();
        let mut other = testing::impatient_transaction(&pool).await;
        assert!(exists(&mut other, order_id).await.unwrap(), "free once the holder commits");
    }

    #[tokio::test]
    async fn by_tracking_number_locks_the_shipment_only_when_asked() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (_, shipped) = ship(&pool).await;
        let number = shipped.tracking_number.as_str();
        let mut holder = pool.begin().await.unwrap();
        assert!(by_tracking_number(&mut holder, number, true).await.unwrap().is_some());

        let mut other = testing::impatient_transaction(&pool).await;
        assert!(by_tracking_number(&mut other, number, false).await.unwrap().is_some(), "a read does not wait");
        let waited = by_tracking_number(&mut other, number, true).await.unwrap_err();
        assert!(testing::lock_not_granted(&waited), "a second locker waits: {waited}");
        other.rollback().await.unwrap();

        holder.commit().await.unwrap();
        let mut other = testing::impatient_transaction(&pool).await;
        assert!(by_tracking_number(&mut other, number, true).await.unwrap().is_some(), "free once committed");
    }

    #[tokio::test]
    async fn mark_delivered_records_the_scan_on_that_shipment_only() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (delivered, label) = ship(&pool).await;
        let (untouched, _) = ship(&pool).await;
        let before = load(&pool, untouched).await.unwrap();

        let mut conn = pool.acquire().await.unwrap();
        mark_delivered(&mut conn, &label.tracking_number).await.unwrap();
        mark_delivered(&mut conn, "DHL-99999999999").await.unwrap();

        let shipment = load(&pool, delivered).await.unwrap().unwrap();
        assert_eq!(shipment.status, ShipmentStatus::Delivered as i32);
        let (shipped_at, delivered_at) = (shipment.shipped_at.unwrap(), shipment.delivered_at.expect("scanned"));
        assert!((delivered_at.seconds, delivered_at.nanos) > (shipped_at.seconds, shipped_at.nanos));
        assert_eq!(load(&pool, untouched).await.unwrap(), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn label_serials_are_strictly_increasing_and_unique_across_connections() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut conn = pool.acquire().await.unwrap();
                    let mut serials = Vec::new();
                    for _ in 0..25 {
                        serials.push(next_serial(&mut conn).await.unwrap());
                    }
                    serials
                })
            })
            .collect();
        let mut all = HashSet::new();
        for task in tasks {
            let serials = task.await.unwrap();
            assert!(serials.windows(2).all(|w| w[0] < w[1]), "increasing on one connection: {serials:?}");
            all.extend(serials);
        }
        assert_eq!(all.len(), 100, "no serial handed out twice");
        assert_eq!(all.iter().min(), Some(&1), "the sequence starts at 1");
    }
}
