//! WatchOrder's fan-out against the real PostgreSQL (`TEST_DATABASE_URL`, one fresh database
//! per test): notifications on commit, one load per notified order whatever its number of
//! watchers, a reload after a lost connection, and the cap on watchers.

use super::{Fanout, Limits, Subscription, Watchers, fanout::Delivered, watch};
use crate::{place_order, project, store};
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{ServiceError, testing};
use orderflow_proto::common::v1::{Address, Customer, OrderLine};
use orderflow_proto::events::v1::StockReserved;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::{Order, OrderStatus, PlaceOrderRequest, TimelineEntry, WatchOrderResponse};
use sqlx::PgPool;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(10);

fn limits(max_watchers: usize) -> Limits {
    Limits { max_watchers: NonZeroUsize::new(max_watchers).unwrap(), max_stream: Duration::from_secs(3600) }
}

/// An order that was only placed, as a watcher first gets it.
fn placed_only() -> Order {
    let entry = TimelineEntry { event_type: "OrderPlaced".into(), event_id: "e-1".into(), ..Default::default() };
    Order { timeline: vec![entry], ..Default::default() }
}

async fn database() -> PgPool {
    let pool = orderflow_kit::db::pool(&testing::fresh_database().await, 5).unwrap();
    orderflow_kit::db::migrate(&pool, &crate::MIGRATIONS).await.unwrap();
    pool
}

async fn place(pool: &PgPool) -> Uuid {
    let request = PlaceOrderRequest {
        customer: Some(Customer { id: "c-watch".into(), name: "Ada".into(), email: String::new() }),
        lines: vec![OrderLine { sku: "MUG".into(), quantity: 1, unit_price: None }],
        shipping_address: Some(Address {
            name: "Ada".into(),
            line1: "1 Watch Row".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
            ..Default::default()
        }),
        payment_reference: "pay-1".into(),
        ..Default::default()
    };
    let (committer, commits) =
        place_order::committer(pool.clone(), Topics::new("test").name(Topic::Orders), Default::default());
    tokio::spawn(commits.run(tokio_util::sync::CancellationToken::new()));
    let warehouse = orderflow_kit::delivery::Warehouse::default();
    let caller = place_order::Caller { name: "test", trace: TraceParent::new_root() };
    let order = place_order::place_order(pool, &committer, &warehouse, caller, request).await.unwrap();
    order.order_id.parse().unwrap()
}

/// Projects `payload` for `order_id` in one committed transaction, as the consumer does.
async fn commit(pool: &PgPool, order_id: Uuid, payload: Payload) {
    let event =
        envelope::build("inventory-service", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()));
    let mut tx = pool.begin().await.unwrap();
    project::apply(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
}

/// Subscribes, then loads, as WatchOrder does.
async fn subscribe(pool: &PgPool, watchers: &Watchers, order_id: Uuid) -> (Subscription, Order) {
    let subscription = watchers.subscribe(order_id).unwrap();
    (subscription, store::load(pool, order_id).await.unwrap().unwrap().order)
}

async fn deliver(fanout: &mut Fanout) -> Result<Delivered, sqlx::Error> {
    tokio::time::timeout(TIMEOUT, fanout.deliver_next()).await.expect("a notification within the timeout")
}

/// The order as the fan-out last handed it to `subscription`.
async fn changed(subscription: &mut Subscription) -> Arc<Order> {
    tokio::time::timeout(TIMEOUT, subscription.changed()).await.expect("a change in time").expect("within its lifetime")
}

fn last_event(response: &WatchOrderResponse) -> (OrderStatus, String) {
    let order = response.order.as_ref().unwrap();
    (order.status(), order.timeline.last().unwrap().event_type.clone())
}

#[tokio::test]
async fn a_watcher_hears_of_each_committed_timeline_row_and_ends_with_the_order() {
    let pool = database().await;
    let order_id = place(&pool).await;
    let watchers = Watchers::new(limits(10));
    let shutdown = CancellationToken::new();
    let listening = tokio::spawn(Fanout::new(pool.clone(), watchers.clone()).run(shutdown.clone()));
    let (subscription, order) = subscribe(&pool, &watchers, order_id).await;
    let mut stream = watch(subscription, order);
    let mut next = async || tokio::time::timeout(TIMEOUT, stream.next()).await.expect("a message in time");

    assert_eq!(last_event(&next().await.unwrap().unwrap()), (OrderStatus::Placed, "OrderPlaced".into()));
    commit(&pool, order_id, Payload::StockReserved(StockReserved::default())).await;
    assert_eq!(last_event(&next().await.unwrap().unwrap()), (OrderStatus::Reserved, "StockReserved".into()));
    commit(&pool, order_id, Payload::Delivered(orderflow_proto::events::v1::Delivered::default())).await;
    assert_eq!(last_event(&next().await.unwrap().unwrap()), (OrderStatus::Delivered, "Delivered".into()));
    assert!(next().await.is_none(), "the stream ends with the order");

    let left = || async { watchers.watched().is_empty().then_some(()) };
    testing::wait_until("the order leaves the registry with its last watcher", TIMEOUT, left).await;
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, listening).await.unwrap().unwrap();
}

#[tokio::test]
async fn watchers_of_one_order_cost_one_load_per_notification() {
    let pool = database().await;
    let (watched, unwatched) = (place(&pool).await, place(&pool).await);
    let watchers = Watchers::new(limits(100));
    let mut subscriptions = Vec::new();
    for _ in 0..50 {
        subscriptions.push(subscribe(&pool, &watchers, watched).await.0);
    }
    let mut fanout = Fanout::new(pool.clone(), watchers.clone());
    assert_eq!(deliver(&mut fanout).await.unwrap(), Delivered::Listening { loaded: 1 });
    for subscription in &mut subscriptions {
        assert_eq!(changed(subscription).await.status(), OrderStatus::Placed, "loaded on connecting");
    }

    commit(&pool, unwatched, Payload::StockReserved(StockReserved::default())).await;
    assert_eq!(deliver(&mut fanout).await.unwrap(), Delivered::Notified { loaded: 0 }, "nobody watches it");
    commit(&pool, watched, Payload::StockReserved(StockReserved::default())).await;
    assert_eq!(deliver(&mut fanout).await.unwrap(), Delivered::Notified { loaded: 1 }, "one load for 50 watchers");
    for subscription in &mut subscriptions {
        let latest = changed(subscription).await;
        assert_eq!((latest.status(), latest.timeline.len()), (OrderStatus::Reserved, 2));
    }
}

#[tokio::test]
async fn after_a_lost_connection_every_watched_order_is_loaded_again() {
    let pool = database().await;
    let order_id = place(&pool).await;
    let watchers = Watchers::new(limits(10));
    let (mut subscription, _) = subscribe(&pool, &watchers, order_id).await;
    let mut fanout = Fanout::new(pool.clone(), watchers.clone());
    assert_eq!(deliver(&mut fanout).await.unwrap(), Delivered::Listening { loaded: 1 });
    assert_eq!(changed(&mut subscription).await.status(), OrderStatus::Placed);

    let terminated: bool = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(terminated);
    assert!(matches!(deliver(&mut fanout).await, Ok(Delivered::Lost) | Err(_)), "the loss is seen");
    // Committed while nobody listens: its notification is never heard.
    commit(&pool, order_id, Payload::StockReserved(StockReserved::default())).await;
    assert_eq!(deliver(&mut fanout).await.unwrap(), Delivered::Listening { loaded: 1 });
    assert_eq!(changed(&mut subscription).await.status(), OrderStatus::Reserved, "reloaded after connecting");
}

#[tokio::test]
async fn one_watcher_over_the_cap_is_resource_exhausted() {
    let (watchers, order_id) = (Watchers::new(limits(2)), Uuid::now_v7());
    let open = placed_only();
    let mut first = watch(watchers.subscribe(order_id).unwrap(), open.clone());
    let _second = watch(watchers.subscribe(Uuid::now_v7()).unwrap(), open.clone());
    assert!(first.next().await.is_some(), "the first stream is open");

    let refused = watchers.subscribe(order_id).unwrap_err();
    assert!(matches!(refused, ServiceError::ResourceExhausted(_)));
    let status = tonic::Status::from(refused);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("WATCH_MAX_WATCHERS"), "{}", status.message());

    drop(first);
    let freed = || async { watchers.subscribe(order_id).ok() };
    testing::wait_until("the stream that was dropped gives its place back", TIMEOUT, freed).await;
}

#[tokio::test]
async fn a_stream_ends_after_its_longest_lifetime_although_the_order_is_open() {
    let lifetime = Duration::from_millis(300);
    let watchers = Watchers::new(Limits { max_stream: lifetime, ..limits(10) });
    let started = std::time::Instant::now();
    let mut stream = watch(watchers.subscribe(Uuid::now_v7()).unwrap(), placed_only());
    assert!(stream.next().await.is_some(), "the timeline so far");
    let ended = tokio::time::timeout(TIMEOUT, stream.next()).await.expect("the end within the timeout");
    assert!(ended.is_none(), "then the end, after WATCH_MAX_SECONDS");
    assert!(started.elapsed() >= lifetime);
}
