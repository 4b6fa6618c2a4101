//! Backorders racing restocks against the real PostgreSQL: forty orders that allow a backorder
//! and six restocks for one SKU, all at once. Stock is never oversold, every held order ends
//! reserved once the stock is there, and no hold is left behind.

use crate::catalogue;
use crate::reserve_stock::OnOrderPlaced;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::inbox::EventHandler;
use orderflow_kit::topics::Topics;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::common::v1::OrderLine;
use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::inventory::v1::RestockRequest;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backorders_and_restocks_racing_never_oversell_and_every_hold_ends() {
    let pool = crate::test_support::stocked("HOT", 10, 30).await;
    let handler = OnOrderPlaced::new("inventory".into(), Duration::from_secs(3600));
    let mut tasks = Vec::new();
    for n in 0..46 {
        let (pool, handler) = (pool.clone(), handler.clone());
        tasks.push(tokio::spawn(async move {
            if [5, 12, 19, 26, 33, 40].contains(&n) {
                let request = RestockRequest { sku: "HOT".into(), quantity: 5 };
                catalogue::restock(&pool, &Topics::new("test"), TraceParent::new_root(), &request).await.unwrap();
                return;
            }
            let line = OrderLine { sku: "HOT".into(), quantity: 1, unit_price: None };
            let placed = OrderPlaced { lines: vec![line], allow_backorder: true, ..Default::default() };
            let cause = Cause::command(TraceParent::new_root());
            let event =
                envelope::build("order-service", &Uuid::now_v7().to_string(), Payload::OrderPlaced(placed), &cause);
            let mut tx = pool.begin().await.unwrap();
            handler.handle(&mut tx, &event).await.unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // 10 + 6 × 5 = 40 units for 40 orders: every one is reserved, whatever the interleaving.
    let (on_hand, reserved): (i64, i64) =
        sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = 'HOT'").fetch_one(&pool).await.unwrap();
    assert_eq!((on_hand, reserved), (40, 40));
    let decisions: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM reservations GROUP BY status").fetch_all(&pool).await.unwrap();
    assert_eq!(decisions, [("RESERVED".to_owned(), 40)]);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM backorders").fetch_one(&pool).await.unwrap();
    assert_eq!(held, 0, "no hold is left behind");
    let reserved_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE headers->>'event_type' = 'StockReserved'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reserved_events, 40, "each order reserved once");
}
