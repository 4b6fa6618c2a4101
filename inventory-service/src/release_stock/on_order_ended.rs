//! The OrderCancelled and ShipmentRejected adapter: locks the order's reservation, then its
//! stock rows, decides, settles and announces the release in the inbox transaction.

use super::domain::{Ended, ReleaseStock};
use crate::{backorder, low_stock, store};
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

/// Releases the order's reservation (cancelled, or refused by every carrier); emits
/// StockReleased to `topic` (the inventory topic).
pub async fn release(conn: &mut PgConnection, topic: &str, event: &EventEnvelope) -> Result<(), HandlerError> {
    let order_id = inbox::order_id(event)?;
    let ended = match event.payload {
        Some(Payload::ShipmentRejected(_)) => Ended::NotShippable,
        _ => Ended::Cancelled,
    };
    if ended == Ended::Cancelled && drop_hold(conn, topic, order_id, event).await? {
        return Ok(());
    }
    let held = store::lock_held_reservation(conn, order_id).await?;
    let Ok(events) = ReleaseStock::decide(&held, &ended);
    if events.is_empty() {
        tracing::debug!(order_id = %order_id, "order holds no stock");
    }
    for released in events {
        let skus: Vec<String> = released.lines.iter().map(|l| l.sku.clone()).collect();
        store::lock_stock(conn, &skus).await?;
        store::settle(conn, order_id, &released.lines, store::RELEASED).await?;
        let cause = Cause::event(event);
        low_stock::check(conn, topic, &skus, &cause).await?;
        tracing::info!(order_id = %order_id, lines = released.lines.len(), "reserved stock released");
        let payload = Payload::StockReleased(released);
        outbox::emit(conn, crate::SERVICE, topic, Subject::Order(&event.order_id), payload, &cause).await?;
    }
    Ok(())
}

/// A cancelled backorder: its hold ends (nothing was reserved). The stock rows are locked
/// first, in SKU order, as a restock locks them. False if the order is not held.
async fn drop_hold(
    conn: &mut PgConnection,
    topic: &str,
    order_id: uuid::Uuid,
    event: &EventEnvelope,
) -> Result<bool, HandlerError> {
    let skus = backorder::store::skus_of(conn, order_id).await?;
    if skus.is_empty() {
        return Ok(false);
    }
    store::lock_stock(conn, &skus).await?;
    if backorder::store::remove_all(conn, &[order_id]).await? == 0 {
        return Ok(false); // a restock served it meanwhile: release its reservation instead
    }
    store::settle_all(conn, &[order_id], &std::collections::BTreeMap::new(), store::RELEASED).await?;
    low_stock::check(conn, topic, &skus, &Cause::event(event)).await?;
    tracing::info!(order_id = %order_id, "backorder cancelled: its hold is dropped");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::on_event::InventoryInbox;
    use crate::reserve_stock::OnOrderPlaced;
    use orderflow_kit::envelope::{self, Cause, EventEnvelope};
    use orderflow_kit::inbox::EventHandler;
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::common::v1::OrderLine;
    use orderflow_proto::events::v1::event_envelope::Payload;
    use orderflow_proto::events::v1::{OrderCancelled, OrderPlaced};
    use sqlx::PgPool;
    use uuid::Uuid;

    async fn apply(pool: &PgPool, event: &EventEnvelope) {
        let inbox =
            InventoryInbox { reserve: OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600)) };
        let mut tx = pool.begin().await.unwrap();
        inbox.handle(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn stock(pool: &PgPool) -> (i64, i64) {
        sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = 'MUG'").fetch_one(pool).await.unwrap()
    }

    async fn released(pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE headers->>'event_type' = 'StockReleased'")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_cancel_gives_the_reservation_back_once_and_a_rejected_order_releases_nothing() {
        let pool = crate::test_support::stocked("MUG", 10, 2).await;
        let cause = Cause::command(TraceParent::new_root());
        let event = |order_id: &str, payload| envelope::build("order-service", order_id, payload, &cause);
        let placed = |quantity| {
            Payload::OrderPlaced(OrderPlaced {
                lines: vec![OrderLine { sku: "MUG".into(), quantity, unit_price: None }],
                ..Default::default()
            })
        };
        let cancelled = || Payload::OrderCancelled(OrderCancelled::default());

        let order = Uuid::now_v7().to_string();
        apply(&pool, &event(&order, placed(4))).await;
        assert_eq!(stock(&pool).await, (10, 4));
        apply(&pool, &event(&order, cancelled())).await;
        assert_eq!((stock(&pool).await, released(&pool).await), ((10, 0), 1));
        apply(&pool, &event(&order, cancelled())).await; // a second cancel event: nothing held
        assert_eq!((stock(&pool).await, released(&pool).await), ((10, 0), 1));

        let too_big = Uuid::now_v7().to_string();
        apply(&pool, &event(&too_big, placed(11))).await; // rejected: nothing reserved
        apply(&pool, &event(&too_big, cancelled())).await;
        assert_eq!((stock(&pool).await, released(&pool).await), ((10, 0), 1));
    }
}
