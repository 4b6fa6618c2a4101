//! The payment worker against the real PostgreSQL and the development gateway over HTTP: an
//! order authorised, declined, retried while the gateway fails or is unreachable, captured
//! once shipped and voided once cancelled; each gateway call made once per idempotency key.

use super::domain::Action;
use super::{Gateway, Worker, follow, simulator};
use crate::project::domain::{View, evolve};
use crate::store;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::testing;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::common::v1::Money;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderPlaced, Shipped};
use orderflow_proto::order::v1::{OrderStatus, PaymentStatus};
use prost::Message;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

/// The development gateway on a port of its own; its URL.
async fn gateway() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, simulator::router(None).unwrap()).await });
    url
}

fn worker(pool: &PgPool, url: &str) -> Worker {
    Worker { pool: pool.clone(), gateway: Gateway::new(url).unwrap(), topic: "orders".into(), wake: Arc::default() }
}

/// Places an order paid with `reference` as PlaceOrder does: stored, its authorisation due.
async fn place(pool: &PgPool, reference: &str) -> (Uuid, EventEnvelope) {
    let order_id = Uuid::now_v7();
    let placed = OrderPlaced {
        payment_reference: reference.into(),
        total: Some(Money { currency_code: "EUR".into(), amount_minor: 4_200 }),
        awaits_payment: true,
        ..OrderPlaced::default()
    };
    let cause = Cause::command(TraceParent::new_root());
    let event = envelope::build("order-service", &order_id.to_string(), Payload::OrderPlaced(placed.clone()), &cause);
    let mut tx = pool.begin().await.unwrap();
    store::insert(&mut tx, order_id, None, b"request", &placed, &event).await.unwrap();
    super::store::schedule_all(&mut tx, &[(order_id, Some(Action::Authorize), &event)]).await.unwrap();
    tx.commit().await.unwrap();
    (order_id, event)
}

async fn view(pool: &PgPool, order_id: Uuid) -> View {
    let mut tx = pool.begin().await.unwrap();
    store::lock_view(&mut tx, order_id).await.unwrap().unwrap()
}

/// The payment events in the outbox for `order_id`, in order.
async fn published(pool: &PgPool, order_id: Uuid) -> Vec<EventEnvelope> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox WHERE key = $1 ORDER BY id")
        .bind(order_id.to_string())
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter().map(|r| EventEnvelope::decode(r.as_slice()).unwrap()).collect()
}

async fn due(pool: &PgPool, order_id: Uuid) -> Option<(String, i32)> {
    sqlx::query_as("SELECT action, attempts FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Makes every waiting retry due now (instead of waiting out its back-off).
async fn hurry(pool: &PgPool) {
    sqlx::query("UPDATE payments SET due_at = now()").execute(pool).await.unwrap();
}

/// The projection's part: `payload` arrives for the order, its view moves, the call it needs is due.
async fn project(pool: &PgPool, order_id: Uuid, payload: Payload) {
    let mut tx = pool.begin().await.unwrap();
    let before = store::lock_view(&mut tx, order_id).await.unwrap().unwrap();
    let after = evolve(&before, &payload);
    let cause = Cause::command(TraceParent::new_root());
    let event = envelope::build("shipping-service", &order_id.to_string(), payload, &cause);
    store::save_view(&mut tx, order_id, &after).await.unwrap();
    follow(&mut tx, &[(order_id, &before, &after, &event)]).await.unwrap();
    tx.commit().await.unwrap();
}

async fn ledger(url: &str) -> serde_json::Value {
    let body = reqwest::get(format!("{url}/v1/ledger")).await.unwrap().text().await.unwrap();
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn an_authorised_order_goes_on_to_inventory_and_is_captured_once_when_shipped() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let url = gateway().await;
    let worker = worker(&pool, &url);
    let (order_id, placed_event) = place(&pool, "pay_ok_1").await;
    assert_eq!(worker.round().await.unwrap(), 1);
    let v = view(&pool, order_id).await;
    assert_eq!((v.status, v.payment_status), (OrderStatus::Placed, PaymentStatus::Authorized));
    assert_eq!(due(&pool, order_id).await, None, "nothing due until it ships");
    let events = published(&pool, order_id).await;
    let [authorized] = events.as_slice() else { panic!("{events:?}") };
    let Some(Payload::PaymentAuthorized(payment)) = &authorized.payload else { panic!("{authorized:?}") };
    assert_eq!(payment.order.as_ref().map(|o| o.payment_reference.as_str()), Some("pay_ok_1"));
    assert_eq!(authorized.causation_id, placed_event.event_id, "the order's chain goes on");
    assert_eq!(authorized.correlation_id, placed_event.correlation_id);

    project(&pool, order_id, Payload::Shipped(Shipped::default())).await;
    assert_eq!(due(&pool, order_id).await, Some(("capture".into(), 0)));
    assert_eq!(worker.round().await.unwrap(), 1);
    assert_eq!(view(&pool, order_id).await.payment_status, PaymentStatus::Captured);
    // A redelivered Shipped changes nothing: the capture is not due again.
    project(&pool, order_id, Payload::Shipped(Shipped::default())).await;
    assert_eq!(due(&pool, order_id).await, None);
    let entry = &ledger(&url).await["authorizations"][0];
    assert_eq!((entry["status"].as_str(), entry["captures"].as_u64()), (Some("CAPTURED"), Some(1)));
    assert_eq!(entry["captured_minor"].as_i64(), Some(4_200));
    let types: Vec<String> = published(&pool, order_id).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["PaymentAuthorized", "PaymentCaptured"]);
}

#[tokio::test]
async fn a_declined_payment_ends_the_order_rejected_with_the_reason() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let worker = worker(&pool, &gateway().await);
    let (order_id, _) = place(&pool, "pay_decline_7").await;
    worker.round().await.unwrap();
    let v = view(&pool, order_id).await;
    assert_eq!((v.status, v.payment_status), (OrderStatus::Rejected, PaymentStatus::Declined));
    assert_eq!(v.rejection_reason, "payment declined: card declined (test reference)");
    let types: Vec<String> = published(&pool, order_id).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["PaymentDeclined"], "inventory never hears of it: nothing to reserve or release");
    assert_eq!(due(&pool, order_id).await, None);
}

#[tokio::test]
async fn a_failing_or_unreachable_gateway_keeps_the_order_waiting_and_retried() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let url = gateway().await;
    let (order_id, _) = place(&pool, "pay_flaky_3").await;
    let worker = worker(&pool, &url);
    for attempt in 1..=2 {
        worker.round().await.unwrap();
        let v = view(&pool, order_id).await;
        assert_eq!((v.status, v.payment_status), (OrderStatus::Placed, PaymentStatus::Pending));
        assert_eq!(due(&pool, order_id).await, Some(("authorize".into(), attempt)));
        assert_eq!(worker.round().await.unwrap(), 0, "not due again before its back-off");
        hurry(&pool).await;
    }
    worker.round().await.unwrap();
    assert_eq!(view(&pool, order_id).await.payment_status, PaymentStatus::Authorized, "the third call goes through");

    // Nothing listens on the port of a listener that was dropped.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (waiting, _) = place(&pool, "pay_ok_2").await;
    let unreachable = self::worker(&pool, &format!("http://{closed}"));
    unreachable.round().await.unwrap();
    let v = view(&pool, waiting).await;
    assert_eq!((v.status, v.payment_status), (OrderStatus::Placed, PaymentStatus::Pending), "never goes on unpaid");
    let error: String = sqlx::query_scalar("SELECT last_error FROM payments WHERE order_id = $1")
        .bind(waiting)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(error.contains("unreachable"), "{error}");
    hurry(&pool).await;
    worker.round().await.unwrap();
    assert_eq!(view(&pool, waiting).await.payment_status, PaymentStatus::Authorized, "once it is back");
}

#[tokio::test]
async fn a_cancel_voids_whether_the_authorisation_was_answered_or_not() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let url = gateway().await;
    let worker = worker(&pool, &url);
    let cancel = || Payload::OrderCancelled(orderflow_proto::events::v1::OrderCancelled::default());
    // Authorised, then cancelled: voided.
    let (authorised, _) = place(&pool, "pay_ok_3").await;
    worker.round().await.unwrap();
    project(&pool, authorised, cancel()).await;
    assert_eq!(worker.round().await.unwrap(), 1);
    // Cancelled while the authorisation was being made (claimed, not yet settled): the answer
    // settles nothing, the void comes after it.
    let (racing, _) = place(&pool, "pay_ok_4").await;
    let claimed = super::store::claim(&pool, 10, std::time::Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let call = claimed.into_iter().next().unwrap();
    let answer = worker.gateway.call(call.order_id, call.action, &call.placed).await;
    project(&pool, racing, cancel()).await;
    worker.settle(vec![(call, answer)]).await.unwrap();
    assert_eq!(due(&pool, racing).await, Some(("void".into(), 0)));
    // Cancelled before any call: the void comes first and the gateway refuses a late one.
    let (early, _) = place(&pool, "pay_ok_5").await;
    project(&pool, early, cancel()).await;
    while worker.round().await.unwrap() > 0 {}
    for order_id in [authorised, racing, early] {
        let v = view(&pool, order_id).await;
        assert_eq!((v.status, v.payment_status), (OrderStatus::Cancelled, PaymentStatus::Voided), "{order_id}");
        assert_eq!(due(&pool, order_id).await, None);
    }
    let types: Vec<String> = published(&pool, racing).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["PaymentVoided"], "a cancelled order is never sent on to inventory");
    let entries = ledger(&url).await;
    let entries = entries["authorizations"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["status"] == "VOIDED" && e["captures"] == 0), "{entries:?}");
}
