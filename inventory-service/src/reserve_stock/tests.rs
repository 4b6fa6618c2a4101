//! A batch of orders (the consumer's fast path, `handle_all`) against the real PostgreSQL
//! decides exactly as one order at a time does: the same reservations, stock levels and
//! events, never more reserved than there is, whatever else is in the batch (cancels, and
//! Shipped events, which are committed as a run of their own).

use crate::on_event::InventoryInbox;
use crate::reserve_stock::OnOrderPlaced;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::EventHandler;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::common::v1::OrderLine;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderCancelled, OrderPlaced, Shipped};
use sqlx::PgPool;
use uuid::Uuid;

fn event(order_id: Uuid, payload: Payload) -> EventEnvelope {
    envelope::build("order-service", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()))
}

fn placed(order_id: Uuid, lines: &[(&str, i32)]) -> EventEnvelope {
    let lines = lines
        .iter()
        .map(|(sku, quantity)| OrderLine { sku: (*sku).into(), quantity: *quantity, unit_price: None })
        .collect();
    event(order_id, Payload::OrderPlaced(OrderPlaced { lines, ..Default::default() }))
}

async fn stocked() -> PgPool {
    let pool = crate::test_support::stocked("MUG", 10, 2).await;
    sqlx::query(
        "INSERT INTO products (sku, name, bin_location, weight_grams, on_hand) VALUES ('TEE', 'Tee', 'B-1', 200, 3)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE products SET low_stock_threshold = 2").execute(&pool).await.unwrap();
    pool
}

/// Stock levels, reservations and the events written, as comparable text.
async fn outcome(pool: &PgPool) -> (Vec<(String, i64, i64, bool)>, Vec<(Uuid, String)>, Vec<String>) {
    let stock = sqlx::query_as("SELECT sku, on_hand, reserved, low_stock FROM products ORDER BY sku")
        .fetch_all(pool)
        .await
        .unwrap();
    let reservations =
        sqlx::query_as("SELECT order_id, status FROM reservations ORDER BY order_id").fetch_all(pool).await.unwrap();
    let events = sqlx::query_scalar("SELECT (headers->>'event_type') || ' ' || key FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    (stock, reservations, events)
}

#[tokio::test]
async fn a_batch_of_orders_reserves_as_one_order_at_a_time_does() {
    let (a, b, c, d, e) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let events = vec![
        placed(a, &[("MUG", 4), ("TEE", 1)]),
        placed(b, &[("MUG", 4)]),
        placed(a, &[("MUG", 9)]), // a second OrderPlaced of a decided order: nothing
        placed(c, &[("MUG", 4)]), // only 2 left: rejected
        event(b, Payload::OrderCancelled(OrderCancelled::default())),
        event(a, Payload::Shipped(Shipped::default())),
        placed(d, &[("MUG", 5), ("NOPE", 1)]),
        placed(e, &[("MUG", 4), ("TEE", 2)]), // 6 left after the cancel: reserved, TEE low
        event(e, Payload::Shipped(Shipped::default())),
    ];
    let inbox =
        InventoryInbox { reserve: OnOrderPlaced::new("inventory".into(), std::time::Duration::from_secs(3600)) };
    let one_by_one = stocked().await;
    let mut tx = one_by_one.begin().await.unwrap();
    for event in &events {
        inbox.handle(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let batched = stocked().await;
    let mut tx = batched.begin().await.unwrap();
    inbox.handle_all(&mut tx, &events.iter().collect::<Vec<_>>()).await.unwrap();
    tx.commit().await.unwrap();
    let (stock, reservations, mut emitted) = outcome(&batched).await;
    let (expected_stock, expected_reservations, mut expected_events) = outcome(&one_by_one).await;
    assert_eq!(stock, expected_stock);
    assert_eq!(reservations, expected_reservations);
    // A run's LowStock comes after the run's decisions rather than between them.
    emitted.sort();
    expected_events.sort();
    assert_eq!(emitted, expected_events);
    assert_eq!(stock[0], ("MUG".to_owned(), 2, 0, true), "4 + 4 reserved after the cancel, both shipped");
}
