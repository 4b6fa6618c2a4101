//! The order store against the real PostgreSQL (`TEST_DATABASE_URL`, one fresh database per
//! test): what an insert writes and a load reads back, the idempotency key, the timeline's
//! order and repeats, the row lock of the projection and a customer's pages.

use super::*;
use orderflow_kit::envelope::Cause;
use orderflow_kit::testing;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::common::v1::{Address, Customer, OrderLine, ServiceLevel};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Picked, Sorted, StockReserved};
use sqlx::PgPool;

fn placed(customer_id: &str) -> OrderPlaced {
    OrderPlaced {
        customer: Some(Customer { id: customer_id.into(), name: "Ada".into(), email: "ada@example.com".into() }),
        lines: vec![
            OrderLine { sku: "MUG".into(), quantity: 2, unit_price: None },
            OrderLine { sku: "TEE".into(), quantity: 1, unit_price: None },
        ],
        shipping_address: Some(Address {
            name: "Ada".into(),
            line1: "1 Store Row".into(),
            line2: "Flat 2".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        }),
        payment_reference: "pay-1".into(),
        service_level: ServiceLevel::Express as i32,
        delivery_promise: Some(window("2026-12-01", "2026-12-03").to_proto()),
        total: None,
        allow_backorder: false,
        awaits_payment: true,
    }
}

fn window(earliest: &str, latest: &str) -> Window {
    Window { earliest: earliest.parse().unwrap(), latest: latest.parse().unwrap() }
}

/// An event of `order_id` that occurred at `at` (Unix seconds and nanoseconds).
fn event_at(order_id: Uuid, payload: Payload, at: (i64, u32)) -> EventEnvelope {
    let mut event =
        envelope::build("order-service", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()));
    event.occurred_at = Some(envelope::timestamp(DateTime::from_timestamp(at.0, at.1).unwrap()));
    event
}

/// Places an order of `customer_id` (with `key`) in its own transaction; its OrderPlaced event.
async fn insert_order(pool: &PgPool, customer_id: &str, key: Option<&str>) -> (Uuid, Option<Order>, EventEnvelope) {
    let order_id = Uuid::now_v7();
    let placed = placed(customer_id);
    let event = envelope::build(
        "order-service",
        &order_id.to_string(),
        Payload::OrderPlaced(placed.clone()),
        &Cause::command(TraceParent::new_root()),
    );
    let mut tx = pool.begin().await.unwrap();
    let order = insert(&mut tx, order_id, key, b"request-bytes", &placed, &event).await.unwrap();
    tx.commit().await.unwrap();
    (order_id, order, event)
}

async fn append(pool: &PgPool, order_id: Uuid, event: &EventEnvelope, step: i32) {
    let mut conn = pool.acquire().await.unwrap();
    append_timeline(&mut conn, order_id, event, step).await.unwrap();
}

fn event_ids(order: &Order) -> Vec<String> {
    order.timeline.iter().map(|entry| entry.event_id.clone()).collect()
}

#[tokio::test]
async fn an_inserted_order_loads_back_with_every_column_as_the_insert_returned_it() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, inserted, event) = insert_order(&pool, "c-1", Some("key-1")).await;
    let inserted = inserted.expect("a new key places the order");

    let stored = load(&pool, order_id).await.unwrap().expect("the order is stored");
    assert_eq!(stored.order, inserted, "the insert answers as a later load does");
    assert_eq!(stored.request, b"request-bytes");
    let expected = placed("c-1");
    let order = stored.order;
    assert_eq!(order.order_id, order_id.to_string());
    assert_eq!(order.status, OrderStatus::Placed as i32);
    assert_eq!(
        (order.customer, order.lines, order.shipping_address, order.payment_reference, order.service_level),
        (
            expected.customer,
            expected.lines,
            expected.shipping_address,
            expected.payment_reference,
            expected.service_level
        )
    );
    let projected = (order.rejection_reason, order.carrier, order.tracking_number, order.cancellation_reason);
    assert_eq!(projected, Default::default());
    assert!(order.created_at.is_some() && order.created_at == order.updated_at);
    let entry = &order.timeline[..];
    assert_eq!(entry.len(), 1);
    assert_eq!(
        (&entry[0].event_id, &entry[0].event_type, &entry[0].producer),
        (&event.event_id, &"OrderPlaced".to_owned(), &"order-service".to_owned())
    );
    let at = envelope::occurred_at(&event).trunc_subsecs(6);
    assert_eq!(entry[0].occurred_at, Some(envelope::timestamp(at)), "kept to the microsecond");
    assert_eq!(find_by_idempotency_key(&pool, "key-1").await.unwrap(), Some(order_id));
    assert_eq!(list(&pool, Some("c-1"), false, None, 10).await.unwrap().len(), 1, "filed under its customer");
}

#[tokio::test]
async fn a_second_insert_with_a_taken_idempotency_key_writes_nothing() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (first, _, _) = insert_order(&pool, "c-1", Some("key-1")).await;
    let (second, inserted, _) = insert_order(&pool, "c-1", Some("key-1")).await;

    assert_eq!(inserted, None);
    assert!(load(&pool, second).await.unwrap().is_none(), "no second order");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM order_timeline WHERE order_id = $1")
        .bind(second)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, 0, "no timeline entry for the order that was not placed");
    assert_eq!(find_by_idempotency_key(&pool, "key-1").await.unwrap(), Some(first));
    assert_eq!(find_by_idempotency_key(&pool, "key-2").await.unwrap(), None);
}

#[tokio::test]
async fn orders_without_an_idempotency_key_never_conflict() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (_, first, _) = insert_order(&pool, "c-1", None).await;
    let (_, second, _) = insert_order(&pool, "c-1", None).await;
    assert!(first.is_some() && second.is_some());
}

#[tokio::test]
async fn append_timeline_ignores_a_repeat_of_an_event() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, _, placed_event) = insert_order(&pool, "c-1", None).await;
    let picked = event_at(order_id, Payload::Picked(Picked::default()), (1_000, 0));
    append(&pool, order_id, &picked, 3).await;
    append(&pool, order_id, &picked, 3).await;
    append(&pool, order_id, &placed_event, 1).await;
    append(&pool, order_id, &picked, 0).await;

    let order = load(&pool, order_id).await.unwrap().unwrap().order;
    assert_eq!(event_ids(&order), [placed_event.event_id, picked.event_id], "each once, at its first step");
}

#[tokio::test]
async fn the_timeline_loads_by_step_then_occurrence_then_arrival() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, _, placed_event) = insert_order(&pool, "c-1", None).await;
    // Arriving in the order of the `append` calls below.
    let picked = event_at(order_id, Payload::Picked(Picked::default()), (1_000, 0));
    let reserved_later = event_at(order_id, Payload::StockReserved(StockReserved::default()), (2_000, 0));
    let sorted_late = event_at(order_id, Payload::Sorted(Sorted::default()), (3_000, 2_000));
    let sorted_early = event_at(order_id, Payload::Sorted(Sorted::default()), (3_000, 1_000));
    let same_time_first = event_at(order_id, Payload::Sorted(Sorted::default()), (4_000, 0));
    let same_time_second = event_at(order_id, Payload::Sorted(Sorted::default()), (4_000, 0));
    append(&pool, order_id, &picked, 3).await;
    append(&pool, order_id, &reserved_later, 2).await;
    append(&pool, order_id, &sorted_late, 4).await;
    append(&pool, order_id, &sorted_early, 4).await;
    append(&pool, order_id, &same_time_first, 5).await;
    append(&pool, order_id, &same_time_second, 5).await;

    let order = load(&pool, order_id).await.unwrap().unwrap().order;
    let expected = [&placed_event, &reserved_later, &picked, &sorted_early, &sorted_late, &same_time_first]
        .into_iter()
        .chain([&same_time_second])
        .map(|e| e.event_id.clone())
        .collect::<Vec<_>>();
    assert_eq!(event_ids(&order), expected);
    let at = |e: &EventEnvelope| Some(envelope::timestamp(envelope::occurred_at(e)));
    assert_eq!(order.timeline[3].occurred_at, at(&sorted_early), "the event's own time, not the arrival");
    assert_eq!(order.timeline[1].event_type, "StockReserved");
}

#[tokio::test]
async fn placed_event_id_is_the_id_of_the_orders_order_placed_entry() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, _, placed_event) = insert_order(&pool, "c-1", None).await;
    append(&pool, order_id, &event_at(order_id, Payload::Picked(Picked::default()), (1_000, 0)), 3).await;
    let mut conn = pool.acquire().await.unwrap();

    let id = placed_event_id(&mut conn, order_id).await.unwrap();
    assert_eq!(id.map(|id| id.to_string()), Some(placed_event.event_id));
    assert_eq!(placed_event_id(&mut conn, Uuid::now_v7()).await.unwrap(), None);
}

#[tokio::test]
async fn a_saved_view_is_what_the_next_lock_and_load_see() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, _, _) = insert_order(&pool, "c-1", None).await;
    let mut tx = pool.begin().await.unwrap();
    let view = lock_view(&mut tx, order_id).await.unwrap().expect("the order exists");
    let empty = String::new;
    assert_eq!(
        view,
        View {
            status: OrderStatus::Placed,
            rejection_reason: empty(),
            carrier: empty(),
            tracking_number: empty(),
            cancellation_reason: empty(),
            hold_reason: empty(),
            promise: Some(window("2026-12-01", "2026-12-03")),
            promised_latest: Some("2026-12-03".parse().unwrap()),
            last_scan: None,
            payment_status: PaymentStatus::Pending,
        }
    );
    let next = View {
        status: OrderStatus::Cancelled,
        rejection_reason: "out of stock".into(),
        carrier: "DHL".into(),
        tracking_number: "DHL-00000000001".into(),
        cancellation_reason: "changed my mind".into(),
        promise: Some(window("2026-12-04", "2026-12-04")),
        last_scan: Some(orderflow_proto::common::v1::TrackingScan { scan_id: "s1".into(), ..Default::default() }),
        payment_status: PaymentStatus::Voided,
        ..view.clone()
    };
    save_view(&mut tx, order_id, &next).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    assert_eq!(lock_view(&mut tx, order_id).await.unwrap(), Some(next.clone()));
    tx.rollback().await.unwrap();
    let order = load(&pool, order_id).await.unwrap().unwrap().order;
    assert_eq!(order.status, next.status as i32);
    assert_eq!(
        (order.rejection_reason, order.carrier, order.tracking_number, order.cancellation_reason),
        (next.rejection_reason, next.carrier, next.tracking_number, next.cancellation_reason)
    );
    let (created, updated) = (order.created_at.unwrap(), order.updated_at.unwrap());
    assert!((updated.seconds, updated.nanos) > (created.seconds, created.nanos), "the save moved updated_at on");
}

#[tokio::test]
async fn lock_view_holds_the_order_until_its_transaction_ends() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, _, _) = insert_order(&pool, "c-1", None).await;
    let mut holder = pool.begin().await.unwrap();
    lock_view(&mut holder, order_id).await.unwrap().unwrap();

    let mut other = testing::impatient_transaction(&pool).await;
    let waited = lock_view(&mut other, order_id).await.unwrap_err();
    assert!(testing::lock_not_granted(&waited), "a second locker waits: {waited}");
    other.rollback().await.unwrap();
    assert!(load(&pool, order_id).await.unwrap().is_some(), "a plain read does not wait");

    holder.commit().await.unwrap();
    let mut other = testing::impatient_transaction(&pool).await;
    assert!(lock_view(&mut other, order_id).await.unwrap().is_some(), "free once the holder commits");
}

#[tokio::test]
async fn lock_view_and_load_of_an_unknown_order_find_nothing() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(lock_view(&mut tx, Uuid::now_v7()).await.unwrap(), None);
    assert!(load(&pool, Uuid::now_v7()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_customers_orders_page_newest_first_without_timelines() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(insert_order(&pool, "c-1", None).await.0.to_string());
    }
    insert_order(&pool, "c-2", None).await;
    ids.sort_unstable();
    ids.reverse();

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = list(&pool, Some("c-1"), false, before, 2).await.unwrap();
        assert!(page.iter().all(|order| order.timeline.is_empty()));
        let Some(last) = page.last() else { break };
        before = Some(last.order_id.parse().unwrap());
        pages.push(page.iter().map(|order| order.order_id.clone()).collect::<Vec<_>>());
    }
    assert_eq!(pages, [&ids[0..2], &ids[2..4], &ids[4..5]]);
    assert!(list(&pool, Some("c-3"), false, None, 2).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_late_list_agrees_with_each_order_s_lateness() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let today = Utc::now().date_naive();
    let day = |offset: i64| today + chrono::TimeDelta::days(offset);
    // (status, expected window, promised latest): every case of `lateness`.
    let cases = [
        (OrderStatus::Shipped, (day(1), day(2)), day(2)),
        (OrderStatus::Shipped, (day(-3), day(-1)), day(-1)),
        (OrderStatus::Labelled, (day(3), day(3)), day(2)),
        (OrderStatus::Delivered, (day(-2), day(-2)), day(-1)),
        (OrderStatus::Delivered, (day(-1), day(-1)), day(-2)),
        (OrderStatus::Cancelled, (day(-5), day(-5)), day(-6)),
        (OrderStatus::Returned, (day(-5), day(-4)), day(-6)),
    ];
    let mut expected = Vec::new();
    for (status, (earliest, latest), promised_latest) in cases {
        let (order_id, _, _) = insert_order(&pool, "c-late", None).await;
        let mut tx = pool.begin().await.unwrap();
        let view = View {
            status,
            promise: Some(Window { earliest, latest }),
            promised_latest: Some(promised_latest),
            ..lock_view(&mut tx, order_id).await.unwrap().unwrap()
        };
        sqlx::query("UPDATE orders SET promised_latest = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(promised_latest)
            .execute(&mut *tx)
            .await
            .unwrap();
        save_view(&mut tx, order_id, &view).await.unwrap();
        tx.commit().await.unwrap();
        if view.delivery_promise(today).unwrap().late {
            expected.push(order_id.to_string());
        }
    }
    let late: Vec<String> =
        list(&pool, None, true, None, 100).await.unwrap().into_iter().map(|o| o.order_id).rev().collect();
    assert_eq!(late, expected);
    assert_eq!(expected.len(), 3, "behind, past its date, delivered after the promise");
    assert!(list(&pool, Some("someone-else"), true, None, 100).await.unwrap().is_empty());
}
