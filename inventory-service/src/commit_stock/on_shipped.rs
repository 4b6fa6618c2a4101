//! The Shipped adapter: locks the order's reservation, decides, and settles it as SHIPPED in
//! the inbox transaction.

use super::domain::CommitStock;
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::EventEnvelope;
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

pub async fn on_shipped(conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
    let Some(Payload::Shipped(shipped)) = event.payload.as_ref() else { return Ok(()) };
    let order_id = inbox::order_id(event)?;
    let held = store::lock_held_reservation(conn, order_id).await?;
    let committed = CommitStock::decide(&held, shipped)
        .map_err(|refused| HandlerError::Rejected(format!("order {order_id} {refused}")))?;
    for committed in committed {
        store::settle(conn, order_id, &committed.lines, store::SHIPPED).await?;
        tracing::info!(order_id = %order_id, lines = committed.lines.len(), "reserved stock shipped");
    }
    Ok(())
}

/// A run of Shipped events at once: the orders' reservations locked and read in one
/// statement, the stock and the reservations settled in one each. A Shipped for an order that
/// holds nothing (a second one included) refuses the run, which is then applied the careful way.
pub async fn on_shipped_all(conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    for event in events {
        ids.push(inbox::order_id(event)?);
    }
    let mut held = store::lock_held_reservations(conn, &ids).await?;
    let (mut settled, mut totals) = (Vec::new(), std::collections::BTreeMap::<String, i64>::new());
    for (order_id, event) in ids.into_iter().zip(events) {
        let Some(Payload::Shipped(shipped)) = event.payload.as_ref() else { continue };
        let committed = CommitStock::decide(&held.remove(&order_id), shipped)
            .map_err(|refused| HandlerError::Rejected(format!("order {order_id} {refused}")))?;
        for committed in committed {
            for line in &committed.lines {
                *totals.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
            }
            settled.push(order_id);
        }
    }
    store::settle_all(conn, &settled, &totals, store::SHIPPED).await?;
    tracing::info!(orders = settled.len(), "reserved stock shipped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::on_event::InventoryInbox;
    use crate::reserve_stock::OnOrderPlaced;
    use orderflow_kit::envelope::{self, Cause};
    use orderflow_kit::inbox::EventHandler;
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::common::v1::OrderLine;
    use orderflow_proto::events::v1::event_envelope::Payload;
    use orderflow_proto::events::v1::{OrderPlaced, Shipped};
    use uuid::Uuid;

    #[tokio::test]
    async fn shipping_takes_the_reserved_units_off_the_shelf_once() {
        let pool = crate::test_support::stocked("MUG", 10, 2).await;
        let inbox =
            InventoryInbox { reserve: OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600)) };
        let placed = OrderPlaced {
            lines: vec![OrderLine { sku: "MUG".into(), quantity: 3, unit_price: None }],
            ..Default::default()
        };
        let order_id = Uuid::now_v7().to_string();
        let cause = Cause::command(TraceParent::new_root());
        let placed = envelope::build("order-service", &order_id, Payload::OrderPlaced(placed), &cause);
        let shipped = |_| envelope::build("shipping-service", &order_id, Payload::Shipped(Shipped::default()), &cause);
        let stock = || async {
            sqlx::query_as::<_, (i64, i64)>("SELECT on_hand, reserved FROM products WHERE sku = 'MUG'")
                .fetch_one(&pool)
                .await
                .unwrap()
        };

        let mut tx = pool.begin().await.unwrap();
        inbox.handle(&mut tx, &placed).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(stock().await, (10, 3));

        let mut tx = pool.begin().await.unwrap();
        inbox.handle(&mut tx, &shipped(1)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(stock().await, (7, 0));

        let mut tx = pool.begin().await.unwrap();
        let again = inbox.handle(&mut tx, &shipped(2)).await;
        assert!(matches!(again, Err(HandlerError::Rejected(_))), "a second Shipped is refused, not applied");
        tx.rollback().await.unwrap();
        assert_eq!(stock().await, (7, 0));
    }
}
