//! The check every stock change ends with, in its transaction: the touched products' flags are
//! decided and stored, and a raised flag is announced.

use super::domain::{Crossing, Level, LowStockAlert};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::LowStock;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

/// Checks `skus` (locked by the caller's transaction) and emits LowStock to `topic` for each
/// product that just crossed its threshold.
pub async fn check(conn: &mut PgConnection, topic: &str, skus: &[String], cause: &Cause) -> Result<(), sqlx::Error> {
    for (sku, available, threshold, flagged) in store::stock_against_threshold(conn, skus).await? {
        let Ok(crossings) = LowStockAlert::decide(&flagged, &Level { available, threshold });
        for crossing in crossings {
            store::set_low_stock(conn, &sku, LowStockAlert::evolve(flagged, &crossing)).await?;
            if crossing == Crossing::BecameLow {
                tracing::info!(sku = %sku, available, threshold, "low stock");
                let payload = Payload::LowStock(LowStock { sku: sku.clone(), available, threshold });
                outbox::emit(conn, crate::SERVICE, topic, Subject::Stock(&sku), payload, cause).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::reserve_stock::OnOrderPlaced;
    use crate::store;
    use orderflow_kit::envelope::{self, Cause};
    use orderflow_kit::inbox::EventHandler;
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::common::v1::OrderLine;
    use orderflow_proto::events::v1::OrderPlaced;
    use orderflow_proto::events::v1::event_envelope::Payload;
    use sqlx::PgPool;

    async fn order(pool: &PgPool, quantity: i32) {
        let placed = OrderPlaced {
            lines: vec![OrderLine { sku: "MUG".into(), quantity, unit_price: None }],
            ..Default::default()
        };
        let order_id = uuid::Uuid::now_v7().to_string();
        let event = envelope::build(
            "order-service",
            &order_id,
            Payload::OrderPlaced(placed),
            &Cause::command(TraceParent::new_root()),
        );
        let mut tx = pool.begin().await.unwrap();
        OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600))
            .handle(&mut tx, &event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn alerts(pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE headers->>'event_type' = 'LowStock'")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn listed(pool: &PgPool) -> usize {
        store::list_low(pool).await.unwrap().len()
    }

    #[tokio::test]
    async fn a_low_stock_alert_is_raised_once_per_crossing_and_cleared_by_a_restock() {
        let pool = crate::test_support::stocked("MUG", 10, 2).await;
        sqlx::query("UPDATE products SET low_stock_threshold = 5").execute(&pool).await.unwrap();
        order(&pool, 3).await; // available 7
        assert_eq!((alerts(&pool).await, listed(&pool).await), (0, 0));
        order(&pool, 3).await; // 4: crossed
        order(&pool, 1).await; // 3: still low, no second alert
        assert_eq!((alerts(&pool).await, listed(&pool).await), (1, 1));

        let mut tx = pool.begin().await.unwrap();
        store::restock(&mut tx, "MUG", 10).await.unwrap(); // 13
        super::check(&mut tx, "inventory", &["MUG".to_owned()], &Cause::command(TraceParent::new_root()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((alerts(&pool).await, listed(&pool).await), (1, 0), "cleared");
        order(&pool, 9).await; // 4 again: a new crossing
        assert_eq!((alerts(&pool).await, listed(&pool).await), (2, 1));
    }
}
