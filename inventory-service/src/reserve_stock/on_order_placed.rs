//! The OrderPlaced adapter: locks the stock rows of the order's SKUs (in SKU order, so
//! concurrent orders cannot deadlock), decides, and stores the reservation and its event in the
//! inbox transaction.

use super::domain::ReserveStock;
use crate::{backorder, low_stock, store};
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::types::order_lines;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

/// Reacts to OrderPlaced on the orders topic; emits to `topic` (the inventory topic).
#[derive(Debug, Clone)]
pub struct OnOrderPlaced {
    topic: String,
    /// `BACKORDER_MAX_HOLD`: how long a held order waits for a restock.
    max_hold: std::time::Duration,
}

impl OnOrderPlaced {
    pub fn new(topic: String, max_hold: std::time::Duration) -> Self {
        Self { topic, max_hold }
    }

    /// When a hold decided now expires.
    pub fn hold_until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::TimeDelta::from_std(self.max_hold).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// The inventory topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl EventHandler for OnOrderPlaced {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(placed) = super::to_reserve(event.payload.as_ref()) else { return Ok(()) };
        let order_id = inbox::order_id(event)?;
        if !store::claim_reservation(conn, order_id).await? {
            return Ok(()); // already decided for this order
        }
        // Only valid lines' SKUs are locked; an order with any invalid line is rejected whole.
        let skus: Vec<String> =
            order_lines(&placed.lines).unwrap_or_default().iter().map(|l| l.sku.to_string()).collect();
        let levels = store::lock_stock(conn, &skus).await?;
        let Ok(events) = ReserveStock::decide(&levels, placed);
        for mut payload in events {
            let status = match &mut payload {
                Payload::StockHeld(held) => {
                    let until = self.hold_until();
                    held.expires_at = Some(orderflow_kit::envelope::timestamp(until));
                    backorder::store::hold_all(conn, &[(order_id, event, until)]).await?;
                    low_stock::check(conn, &self.topic, &skus, &Cause::event(event)).await?;
                    tracing::info!(order_id = %order_id, reason = %held.reason, "order held for a restock");
                    store::HELD
                }
                Payload::StockReserved(reserved) => {
                    store::reserve(conn, &reserved.lines).await?;
                    low_stock::check(conn, &self.topic, &skus, &Cause::event(event)).await?;
                    store::RESERVED
                }
                Payload::StockRejected(rejected) => {
                    tracing::info!(order_id = %order_id, reason = %rejected.reason, "order rejected");
                    store::REJECTED
                }
                _ => continue,
            };
            store::record_decision(conn, order_id, status, &payload).await?;
            let subject = Subject::Order(&event.order_id);
            outbox::emit(conn, crate::SERVICE, &self.topic, subject, payload, &Cause::event(event)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::envelope::{self, Cause};
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::common::v1::OrderLine;
    use orderflow_proto::events::v1::OrderPlaced;
    use uuid::Uuid;

    fn order_placed(sku: &str, quantity: i32) -> EventEnvelope {
        let placed = OrderPlaced {
            lines: vec![OrderLine { sku: sku.into(), quantity, unit_price: None }],
            ..Default::default()
        };
        let order_id = Uuid::now_v7().to_string();
        envelope::build(
            "order-service",
            &order_id,
            Payload::OrderPlaced(placed),
            &Cause::command(TraceParent::new_root()),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_orders_for_the_last_ten_units_never_oversell() {
        let pool = crate::test_support::stocked("LAST", 10, 25).await;
        let handler = OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (pool, handler) = (pool.clone(), handler.clone());
                tokio::spawn(async move {
                    let mut tx = pool.begin().await.unwrap();
                    handler.handle(&mut tx, &order_placed("LAST", 1)).await.unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let (on_hand, reserved): (i64, i64) =
            sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = 'LAST'").fetch_one(&pool).await.unwrap();
        assert_eq!((on_hand, reserved), (10, 10));
        let decisions: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM reservations GROUP BY status ORDER BY status")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(decisions, [("REJECTED".to_owned(), 40), ("RESERVED".to_owned(), 10)]);
        let events: Vec<(String, i64)> =
            sqlx::query_as("SELECT headers->>'event_type' AS t, count(*) FROM outbox GROUP BY t ORDER BY t")
                .fetch_all(&pool)
                .await
                .unwrap();
        let expected = [("LowStock", 1), ("StockRejected", 40), ("StockReserved", 10)].map(|(t, n)| (t.to_owned(), n));
        assert_eq!(events, expected, "one event per order, and one LowStock for the one crossing");
    }

    #[tokio::test]
    async fn an_order_is_decided_once_however_often_it_arrives() {
        let pool = crate::test_support::stocked("MUG", 10, 2).await;
        let handler = OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600));
        let event = order_placed("MUG", 3);
        for _ in 0..3 {
            let mut tx = pool.begin().await.unwrap();
            handler.handle(&mut tx, &event).await.unwrap();
            tx.commit().await.unwrap();
        }
        let reserved: i64 =
            sqlx::query_scalar("SELECT reserved FROM products WHERE sku = 'MUG'").fetch_one(&pool).await.unwrap();
        assert_eq!(reserved, 3);
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&pool).await.unwrap();
        assert_eq!(events, 1);
    }
}
