//! A batch of shipment requests (the consumer's fast path, `handle_all`) against the real
//! PostgreSQL labels exactly as one request at a time does: the same shipments, tracking
//! numbers and events, one label per order however often it is requested.

use super::OnShipmentRequested;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::EventHandler;
use orderflow_kit::testing;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::common::v1::{Address, ServiceLevel};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Packed, ShipmentRequested};
use sqlx::PgPool;
use uuid::Uuid;

fn requested(order_id: Uuid, country: &str, grams: u32) -> EventEnvelope {
    let packed = Packed {
        weight_grams: grams,
        service_level: ServiceLevel::Standard as i32,
        shipping_address: Some(Address { country: country.into(), ..Default::default() }),
        ..Default::default()
    };
    let payload = Payload::ShipmentRequested(ShipmentRequested { packed: Some(packed) });
    envelope::build("order-service", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()))
}

async fn outcome(pool: &PgPool) -> (Vec<(Uuid, String, String)>, Vec<String>) {
    let shipments = sqlx::query_as("SELECT order_id, carrier, tracking_number FROM shipments ORDER BY order_id")
        .fetch_all(pool)
        .await
        .unwrap();
    let events = sqlx::query_scalar("SELECT (headers->>'event_type') || ' ' || key FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    (shipments, events)
}

#[tokio::test]
async fn a_batch_of_requests_labels_as_one_request_at_a_time_does() {
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let events =
        vec![requested(a, "DE", 900), requested(b, "US", 50_000), requested(a, "DE", 900), requested(c, "FR", 2_000)];
    let ship = OnShipmentRequested { topic: "shipping".into(), warehouse: Warehouse::default(), collect_at_once: true };
    let one_by_one = testing::migrated_database(&crate::MIGRATIONS).await;
    let mut tx = one_by_one.begin().await.unwrap();
    for event in &events {
        ship.handle(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let batched = testing::migrated_database(&crate::MIGRATIONS).await;
    let mut tx = batched.begin().await.unwrap();
    ship.handle_all(&mut tx, &events.iter().collect::<Vec<_>>()).await.unwrap();
    tx.commit().await.unwrap();
    let (shipments, emitted) = outcome(&batched).await;
    assert_eq!((shipments.clone(), emitted.clone()), outcome(&one_by_one).await);
    assert_eq!(shipments.len(), 2, "a and c labelled once each, b refused");
    assert_eq!(emitted.iter().filter(|e| e.starts_with("ShipmentRejected")).count(), 1);
    let types: Vec<&str> = emitted.iter().filter_map(|e| e.split(' ').next()).collect();
    assert_eq!(types, ["Labelled", "Shipped", "ShipmentRejected", "Labelled", "Shipped"], "collected at once");
}
