//! The projection's batch (`handle_all`) against the real PostgreSQL decides exactly as its
//! one-by-one `handle` does: the same statuses, timelines and handovers to shipping, whatever
//! the mix of orders and events in the batch.

use super::Projection;
use crate::store;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{EventHandler, HandlerError};
use orderflow_kit::testing;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderPlaced, Packed, Picked, Shipped, Sorted, StockRejected, StockReserved};
use sqlx::PgPool;
use uuid::Uuid;

fn event(order_id: Uuid, payload: Payload) -> EventEnvelope {
    envelope::build("test", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()))
}

async fn with_orders(orders: &[Uuid]) -> PgPool {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    for order_id in orders {
        let placed = OrderPlaced::default();
        let event = event(*order_id, Payload::OrderPlaced(placed.clone()));
        let mut tx = pool.begin().await.unwrap();
        store::insert(&mut tx, *order_id, None, b"", &placed, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    pool
}

/// What an order looks like afterwards: its status and its timeline's event types.
async fn seen(pool: &PgPool, order_id: Uuid) -> (i32, Vec<String>) {
    let order = store::load(pool, order_id).await.unwrap().unwrap().order;
    (order.status, order.timeline.into_iter().map(|t| t.event_type).collect())
}

async fn handovers(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE headers->>'event_type' = 'ShipmentRequested'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_decides_as_one_event_at_a_time_does() {
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let packed = || Payload::Packed(Packed { package_id: "PKG".into(), ..Default::default() });
    let events = vec![
        event(a, Payload::StockReserved(StockReserved::default())),
        event(b, Payload::StockReserved(StockReserved::default())),
        event(a, Payload::Picked(Picked::default())),
        event(c, Payload::StockRejected(StockRejected { reason: "out of stock".into(), skus: vec![] })),
        event(a, Payload::Sorted(Sorted::default())),
        event(a, packed()),
        event(b, Payload::Picked(Picked::default())),
        event(a, packed()), // a late copy of a different Packed: no second handover
        event(a, Payload::Shipped(Shipped { carrier: "DPD".into(), ..Default::default() })),
    ];
    let projection = Projection { orders_topic: "orders".into() };
    let one_by_one = with_orders(&[a, b, c]).await;
    let mut tx = one_by_one.begin().await.unwrap();
    for event in &events {
        projection.handle(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let batched = with_orders(&[a, b, c]).await;
    let mut tx = batched.begin().await.unwrap();
    projection.handle_all(&mut tx, &events.iter().collect::<Vec<_>>()).await.unwrap();
    tx.commit().await.unwrap();
    for order_id in [a, b, c] {
        assert_eq!(seen(&batched, order_id).await, seen(&one_by_one, order_id).await, "order {order_id}");
    }
    assert_eq!((handovers(&batched).await, handovers(&one_by_one).await), (1, 1));
}

#[tokio::test]
async fn a_batch_with_an_unknown_order_is_refused_whole() {
    let known = Uuid::now_v7();
    let pool = with_orders(&[known]).await;
    let events =
        [event(known, Payload::Picked(Picked::default())), event(Uuid::now_v7(), Payload::Picked(Picked::default()))];
    let mut tx = pool.begin().await.unwrap();
    let result =
        Projection { orders_topic: "orders".into() }.handle_all(&mut tx, &events.iter().collect::<Vec<_>>()).await;
    assert!(matches!(result, Err(HandlerError::Rejected(_))), "the consumer then goes the careful way");
}
