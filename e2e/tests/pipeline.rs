//! The pipeline end to end: orders placed through gRPC reach SHIPPED (or REJECTED) across the
//! four services, the real broker and four real databases; and what every server offers besides
//! its API (health, reflection), so tools that know only the service names can call it.

use orderflow_e2e::{SHIPPED_AND_CAPTURED, Stack, event_types, order_request};
use orderflow_kit::testing;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, FulfillmentStatus, GetFulfillmentRequest,
    ListPickTasksRequest,
};
use orderflow_proto::inventory::v1::GetStockRequest;
use orderflow_proto::order::v1::{
    GetOrderRequest, ListOrdersRequest, OrderStatus, PaymentStatus, PlaceOrderRequest, WatchOrderRequest,
};
use orderflow_proto::shipping::v1::{ConfirmDeliveryRequest, GetShipmentRequest, ShipmentStatus, TrackShipmentRequest};
use std::collections::HashSet;
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_flows_from_place_order_to_shipped_and_delivered() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    stack.stock_product("TEE", "B-02", 200, 10).await;

    let placed = stack
        .orders
        .place_order(order_request("c-happy", &[("MUG", 2), ("TEE", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Placed as i32, "PlaceOrder answers at once with PLACED");
    assert_eq!(event_types(&placed), ["OrderPlaced"]);

    stack.wait_for_status(&placed.order_id, OrderStatus::Shipped).await;
    let shipped = stack.wait_for_payment(&placed.order_id, PaymentStatus::Captured).await;
    assert_eq!(event_types(&shipped), SHIPPED_AND_CAPTURED);
    let ids: HashSet<_> = shipped.timeline.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 10, "each event exactly once");
    assert_eq!(shipped.carrier, "DPD", "domestic standard parcel under 31.5 kg");
    assert!(
        shipped.tracking_number.starts_with("DP") && shipped.tracking_number.len() == 14,
        "{}",
        shipped.tracking_number
    );

    // Shipped takes the reserved units off the shelf: on hand and reserved both drop.
    let inventory = stack.inventory.clone();
    testing::wait_until("shipped stock is committed", Duration::from_secs(20), || {
        let mut inventory = inventory.clone();
        async move {
            let stock = inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.ok()?.into_inner();
            ((stock.on_hand, stock.reserved, stock.available) == (8, 0, 8)).then_some(())
        }
    })
    .await;
    let fulfillment = stack
        .fulfillment
        .get_fulfillment(GetFulfillmentRequest { order_id: placed.order_id.clone() })
        .await
        .unwrap()
        .into_inner();
    let fulfillment = fulfillment.fulfillment.unwrap();
    assert_eq!(fulfillment.status, FulfillmentStatus::Packed as i32);
    assert_eq!(fulfillment.package_weight_grams, 2 * 350 + 200 + 150);
    let shipment = stack
        .shipping
        .get_shipment(GetShipmentRequest { order_id: placed.order_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shipment.shipment.unwrap().tracking_number, shipped.tracking_number);

    // The carrier's delivery scan ends the order DELIVERED; a repeated scan changes nothing.
    let scan = ConfirmDeliveryRequest { tracking_number: shipped.tracking_number.clone() };
    let delivered = stack.shipping.confirm_delivery(scan.clone()).await.unwrap().into_inner().shipment.unwrap();
    assert_eq!(delivered.status, ShipmentStatus::Delivered as i32);
    let again = stack.shipping.confirm_delivery(scan).await.unwrap().into_inner().shipment.unwrap();
    assert_eq!(again.delivered_at, delivered.delivered_at);
    let order = stack.wait_for_status(&placed.order_id, OrderStatus::Delivered).await;
    assert_eq!(event_types(&order), [&SHIPPED_AND_CAPTURED[..], &["TrackingUpdated", "Delivered"]].concat());
    let tracked =
        stack.shipping.track_shipment(TrackShipmentRequest { tracking_number: shipped.tracking_number.clone() });
    let history: Vec<_> = tracked.await.unwrap().into_inner().history.into_iter().map(|e| e.status).collect();
    assert_eq!(history, ["LABELLED", "SHIPPED", "DELIVERED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_beyond_the_stock_or_for_unknown_skus_are_rejected_with_the_reason() {
    let mut stack = Stack::start().await;
    stack.stock_product("LAMP", "D-01", 2_400, 2).await;

    let too_many =
        stack.orders.place_order(order_request("c-reject", &[("LAMP", 5)])).await.unwrap().into_inner().order.unwrap();
    let unknown = stack
        .orders
        .place_order(order_request("c-reject", &[("LAMP", 1), ("GHOST", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();

    let rejected = stack.wait_for_status(&too_many.order_id, OrderStatus::Rejected).await;
    assert_eq!(rejected.rejection_reason, "out of stock: LAMP (requested 5, available 2)");
    let rejected = stack.wait_for_payment(&rejected.order_id, PaymentStatus::Voided).await;
    assert_eq!(event_types(&rejected), ["OrderPlaced", "PaymentAuthorized", "StockRejected", "PaymentVoided"]);
    let rejected = stack.wait_for_status(&unknown.order_id, OrderStatus::Rejected).await;
    assert_eq!(rejected.rejection_reason, "unknown SKU GHOST");

    let stock = stack.inventory.get_stock(GetStockRequest { sku: "LAMP".into() }).await.unwrap().into_inner();
    assert_eq!(stock.reserved, 0, "a rejected order reserves nothing, not even its good lines");

    // The stock that is there still ships.
    let fits =
        stack.orders.place_order(order_request("c-reject", &[("LAMP", 2)])).await.unwrap().into_inner().order.unwrap();
    stack.wait_for_status(&fits.order_id, OrderStatus::Shipped).await;
}

/// Spoils one field of a valid request.
type Breakage = fn(&mut PlaceOrderRequest);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field_and_write_nothing() {
    let mut stack = Stack::start().await;
    let cases: Vec<(Breakage, &str)> = vec![
        (|r| r.customer = None, "customer: is required"),
        (|r| r.lines.clear(), "lines: at least one line is required"),
        (|r| r.lines[0].quantity = 0, "lines[0].quantity: must be greater than zero"),
        (|r| r.lines[0].quantity = -1, "lines[0].quantity: must be greater than zero"),
        (|r| r.lines[0].sku = String::new(), "lines[0].sku: must not be empty"),
        (
            |r| r.shipping_address.as_mut().unwrap().country = "Germany".into(),
            "shipping_address.country: must be an ISO 3166-1 alpha-2 code such as DE or US",
        ),
        (|r| r.shipping_address.as_mut().unwrap().line1 = String::new(), "shipping_address.line1: is required"),
    ];
    for (break_it, message) in cases {
        let mut request = order_request("c-bad", &[("MUG", 1)]);
        break_it(&mut request);
        let status = stack.orders.place_order(request).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }
    let listed = stack
        .orders
        .list_orders(ListOrdersRequest { customer_id: "c-bad".into(), ..Default::default() })
        .await
        .unwrap();
    assert!(listed.into_inner().orders.is_empty(), "nothing is written for a rejected request");

    let unknown = uuid::Uuid::now_v7().to_string();
    let status = stack.orders.get_order(GetOrderRequest { order_id: unknown }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status =
        stack.shipping.confirm_delivery(ConfirmDeliveryRequest { tracking_number: "DP000000000001".into() }).await;
    let status = status.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "tracking_number: check digit does not match; mistyped?")
    );
    let status = stack.shipping.track_shipment(TrackShipmentRequest { tracking_number: "DP000000000000".into() }).await;
    assert_eq!(status.unwrap_err().code(), Code::NotFound);
    let status = stack.orders.get_order(GetOrderRequest { order_id: "42".into() }).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "order_id: must be a UUID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_returns_the_first_order() {
    let mut stack = Stack::start().await;
    let mut request = order_request("c-idem", &[("MUG", 1)]);
    request.idempotency_key = "checkout-7".into();
    let first = stack.orders.place_order(request.clone()).await.unwrap().into_inner().order.unwrap();
    let again = stack.orders.place_order(request.clone()).await.unwrap().into_inner().order.unwrap();
    assert_eq!(first.order_id, again.order_id);
    assert_eq!(
        (first.created_at, &first.timeline[0], &first.lines),
        (again.created_at, &again.timeline[0], &again.lines),
        "PlaceOrder's answer is the order as stored"
    );

    request.lines[0].quantity = 2;
    let status = stack.orders.place_order(request).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let listed = stack
        .orders
        .list_orders(ListOrdersRequest { customer_id: "c-idem".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().orders.len(), 1);
}

#[test]
fn every_method_of_every_api_needs_a_scope_a_dedicated_token_can_hold() {
    for policy in
        [order_service::POLICY, inventory_service::POLICY, fulfillment_service::POLICY, shipping_service::POLICY]
    {
        testing::assert_dedicated_scopes(&policy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_and_reflection_lists_the_api() {
    let stack = Stack::start().await;
    let health = HealthClient::new(stack.order_channel.clone());
    testing::wait_until("order-service reports SERVING", Duration::from_secs(20), || {
        let mut health = health.clone();
        async move {
            let request = HealthCheckRequest { service: "orderflow.order.v1.OrderService".into() };
            let status = health.check(request).await.ok()?.into_inner().status;
            (status == ServingStatus::Serving as i32).then_some(())
        }
    })
    .await;

    let mut reflection = ServerReflectionClient::new(stack.order_channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"orderflow.order.v1.OrderService".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_order_streams_every_status_until_the_order_ends() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 1).await;

    let placed =
        stack.orders.place_order(order_request("c-watch", &[("MUG", 1)])).await.unwrap().into_inner().order.unwrap();
    let watch = WatchOrderRequest { order_id: placed.order_id.clone() };
    let mut stream = stack.orders.watch_order(watch).await.unwrap().into_inner();
    let shipped = stack.wait_for_payment(&placed.order_id, PaymentStatus::Captured).await;
    let scan = ConfirmDeliveryRequest { tracking_number: shipped.tracking_number.clone() };
    stack.shipping.confirm_delivery(scan).await.unwrap();
    let mut statuses = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        statuses.push(message.order.unwrap().status);
    }
    let names: Vec<_> = statuses.iter().map(|s| OrderStatus::try_from(*s).unwrap().as_str_name()).collect();
    // One message per timeline event (twelve: the authorisation, the handover to shipping, the
    // capture and the delivery scan move no status), then the stream ends. StockReserved and
    // the warehouse's events come from two topics: when StockReserved is projected after
    // Picked, its message says PICKED or later.
    assert_eq!(names.len(), 12, "{names:?}");
    assert_eq!((names.first(), names.last()), (Some(&"PLACED"), Some(&"DELIVERED")), "{names:?}");
    for status in ["PICKED", "SORTED", "PACKED", "LABELLED", "SHIPPED"] {
        assert!(names.contains(&status), "{status} in {names:?}");
    }
    let steps: Vec<i32> = statuses.iter().map(|s| order_step(*s)).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "never backwards: {names:?}");

    // The last unit is gone: the next order is rejected, and its stream ends there.
    let rejected =
        stack.orders.place_order(order_request("c-watch", &[("MUG", 1)])).await.unwrap().into_inner().order.unwrap();
    let watch = WatchOrderRequest { order_id: rejected.order_id.clone() };
    let mut stream = stack.orders.watch_order(watch).await.unwrap().into_inner();
    let mut last = None;
    while let Some(message) = stream.message().await.unwrap() {
        last = message.order;
    }
    let last = last.unwrap();
    assert_eq!((last.status, last.timeline.len()), (OrderStatus::Rejected as i32, 3), "placed, authorised, rejected");

    let unknown = WatchOrderRequest { order_id: uuid::Uuid::now_v7().to_string() };
    assert_eq!(stack.orders.watch_order(unknown).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_manual_mode_staff_confirm_each_step_in_order() {
    let mut stack = Stack::start_with_fulfillment(fulfillment_service::Fulfillment::manual()).await;
    stack.stock_product("TEE", "B-02", 200, 5).await;
    stack.stock_product("MUG", "A-01", 350, 5).await;
    let placed = stack
        .orders
        .place_order(order_request("c-manual", &[("TEE", 1), ("MUG", 2)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    stack.wait_for_status(&placed.order_id, OrderStatus::Reserved).await;

    // order-service and fulfillment-service read StockReserved independently: wait for the list.
    let fulfillment = stack.fulfillment.clone();
    let tasks = testing::wait_until("the order is on the pick list", Duration::from_secs(30), || {
        let mut fulfillment = fulfillment.clone();
        async move {
            let tasks = fulfillment.list_pick_tasks(ListPickTasksRequest { page_size: 10 }).await.ok()?.into_inner();
            (!tasks.tasks.is_empty()).then_some(tasks.tasks)
        }
    })
    .await;
    let bins: Vec<_> = tasks.iter().map(|t| (t.bin_location.as_str(), t.sku.as_str(), t.quantity)).collect();
    assert_eq!(bins, [("A-01", "MUG", 2), ("B-02", "TEE", 1)], "the pick list is in bin order");

    let order_id = placed.order_id.clone();
    let out_of_order =
        stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: order_id.clone() }).await.unwrap_err();
    assert_eq!(out_of_order.code(), Code::FailedPrecondition);
    stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: order_id.clone() }).await.unwrap();
    let twice = stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: order_id.clone() }).await.unwrap_err();
    assert_eq!((twice.code(), twice.message()), (Code::FailedPrecondition, "cannot Pick an order that is PICKED"));
    stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: order_id.clone() }).await.unwrap();
    let half_measured = ConfirmPackRequest {
        order_id: order_id.clone(),
        weight_grams: 1_234,
        length_mm: 300,
        width_mm: 200,
        height_mm: 0,
    };
    let status = stack.fulfillment.confirm_pack(half_measured).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let measured = ConfirmPackRequest {
        order_id: order_id.clone(),
        weight_grams: 1_234,
        length_mm: 300,
        width_mm: 200,
        height_mm: 100,
    };
    let packed = stack.fulfillment.confirm_pack(measured).await.unwrap().into_inner().fulfillment.unwrap();
    assert_eq!((packed.status, packed.package_weight_grams), (FulfillmentStatus::Packed as i32, 1_234));

    stack.wait_for_status(&order_id, OrderStatus::Shipped).await;
    let shipped = stack.wait_for_payment(&order_id, PaymentStatus::Captured).await;
    assert_eq!(event_types(&shipped), SHIPPED_AND_CAPTURED, "one event per step");
    let unknown = ConfirmPickRequest { order_id: uuid::Uuid::now_v7().to_string() };
    assert_eq!(stack.fulfillment.confirm_pick(unknown).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_step_delay_each_automatic_step_waits_its_turn() {
    let delay = Duration::from_millis(150);
    let mut stack = Stack::start_with_fulfillment(fulfillment_service::Fulfillment::automatic(delay)).await;
    stack.stock_product("MUG", "A-01", 350, 5).await;
    let placed =
        stack.orders.place_order(order_request("c-delay", &[("MUG", 1)])).await.unwrap().into_inner().order.unwrap();
    stack.wait_for_status(&placed.order_id, OrderStatus::Shipped).await;
    let shipped = stack.wait_for_payment(&placed.order_id, PaymentStatus::Captured).await;
    assert_eq!(event_types(&shipped), SHIPPED_AND_CAPTURED);
    let at = |i: usize| {
        let t = shipped.timeline[i].occurred_at.unwrap();
        Duration::new(u64::try_from(t.seconds).unwrap(), u32::try_from(t.nanos).unwrap())
    };
    assert!(at(5) - at(3) >= delay * 2, "Picked → Sorted → Packed each waited the delay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_every_service_finishes_its_work_and_stops_within_five_seconds() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 100).await;
    for _ in 0..20 {
        stack.orders.place_order(order_request("c-stop", &[("MUG", 1)])).await.unwrap();
    }
    // Stop while those orders are still moving through the pipeline.
    let took = stack.stop().await;
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let refused = stack.orders.place_order(order_request("c-stop", &[("MUG", 1)])).await;
    assert!(refused.is_err(), "a stopped service takes no new work");
}

/// A checksum of every table a service keeps (not its inbox, offsets or outbox), leaving out
/// rows that mention any of `except`.
async fn projection_checksum(url: &str, except: &[&str]) -> String {
    let pool = orderflow_kit::db::pool(url, 1).unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename NOT IN ('inbox', 'consumer_offsets', 'outbox', '_sqlx_migrations') ORDER BY tablename",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut sums = Vec::new();
    for table in tables {
        let sum: Option<String> = sqlx::query_scalar(&format!(
            "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} t \
             WHERE NOT (t::text LIKE ANY (SELECT '%' || x || '%' FROM unnest($1::text[]) x))"
        ))
        .bind(except)
        .fetch_one(&pool)
        .await
        .unwrap();
        sums.push(format!("{table}={}", sum.unwrap_or_default()));
    }
    sums.join(" ")
}

/// Waits until the SKU's shipped units are off the shelf: `on_hand` left, nothing reserved.
async fn committed(stack: &Stack, sku: &str, on_hand: i64) {
    let inventory = stack.inventory.clone();
    testing::wait_until(&format!("{sku} shipped stock is committed"), Duration::from_secs(30), || {
        let mut inventory = inventory.clone();
        async move {
            let stock = inventory.get_stock(GetStockRequest { sku: sku.into() }).await.ok()?.into_inner();
            (stock.on_hand == on_hand && stock.reserved == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_topic_from_the_start_changes_no_projection() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 100).await;
    stack.stock_product("TRIGGER", "Z-01", 100, 10).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(stack.orders.place_order(order_request("c-replay", &[("MUG", 1)])).await.unwrap());
    }
    for order in &ids {
        stack.wait_for_payment(&order.get_ref().order.as_ref().unwrap().order_id, PaymentStatus::Captured).await;
    }
    committed(&stack, "MUG", 90).await;
    let mut before = Vec::new();
    for (_, url) in &stack.databases {
        before.push(projection_checksum(url, &["TRIGGER"]).await);
    }

    // Every consumer back to offset 0: the next message makes it seek there and read it all again.
    for (_, url) in &stack.databases {
        let pool = orderflow_kit::db::pool(url, 1).unwrap();
        sqlx::query("UPDATE consumer_offsets SET next_offset = 0").execute(&pool).await.unwrap();
    }
    let trigger = stack.orders.place_order(order_request("c-replay", &[("TRIGGER", 1)])).await.unwrap();
    let trigger_id = trigger.into_inner().order.unwrap().order_id;
    stack.wait_for_payment(&trigger_id, PaymentStatus::Captured).await;
    committed(&stack, "TRIGGER", 9).await;

    for ((service, url), before) in stack.databases.iter().zip(before) {
        let after = projection_checksum(url, &["TRIGGER", &trigger_id]).await;
        assert_eq!(after, before, "{service}: a full replay changed its tables");
    }
    for (service, url) in &stack.databases {
        let pool = orderflow_kit::db::pool(url, 1).unwrap();
        let reread: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_offsets WHERE next_offset > 0")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(reread > 0, "{service}: the partitions the new order touched were read again from the start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_database_a_service_reports_not_serving_answers_unavailable_and_recovers_by_itself() {
    let mut stack = Stack::start_with_order_database_link().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let first = stack.orders.place_order(order_request("c-down", &[("MUG", 1)])).await.unwrap().into_inner();
    let first = first.order.unwrap().order_id;
    stack.wait_for_status(&first, OrderStatus::Shipped).await;
    let health = HealthClient::new(stack.order_channel.clone());
    let serving = |expected: ServingStatus| {
        let health = health.clone();
        async move {
            testing::wait_until(&format!("order-service reports {expected:?}"), Duration::from_secs(20), || {
                let mut health = health.clone();
                async move {
                    let status = health.check(HealthCheckRequest { service: String::new() }).await.ok()?;
                    (status.into_inner().status == expected as i32).then_some(())
                }
            })
            .await;
        }
    };

    let link = stack.order_database_link.as_ref().unwrap();
    link.cut();
    serving(ServingStatus::NotServing).await;
    let down = stack.orders.get_order(GetOrderRequest { order_id: first.clone() }).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{}", down.message());
    assert!(!down.message().contains("SQL") && !down.message().contains("os error"), "{}", down.message());

    link.restore();
    serving(ServingStatus::Serving).await;
    let order = stack.orders.get_order(GetOrderRequest { order_id: first }).await.unwrap().into_inner().order.unwrap();
    assert_eq!(order.status, OrderStatus::Shipped as i32);
    let second = stack.orders.place_order(order_request("c-down", &[("MUG", 1)])).await.unwrap().into_inner();
    stack.wait_for_status(&second.order.unwrap().order_id, OrderStatus::Shipped).await;
}

/// The flow position of a status (PLACED first, DELIVERED last), as the API's order shows it.
fn order_step(status: i32) -> i32 {
    let flow = ["PLACED", "RESERVED", "PICKED", "SORTED", "PACKED", "LABELLED", "SHIPPED", "DELIVERED"];
    let name = OrderStatus::try_from(status).unwrap().as_str_name();
    flow.iter().position(|s| *s == name).map_or(-1, |p| i32::try_from(p).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priced_order_carries_its_total_and_a_bad_price_is_named() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    stack.stock_product("TEE", "B-02", 200, 10).await;
    let price = |amount_minor| Some(orderflow_proto::common::v1::Money { currency_code: "eur".into(), amount_minor });
    let mut request = order_request("c-priced", &[("MUG", 2), ("TEE", 1)]);
    request.lines[0].unit_price = price(1_250);
    request.lines[1].unit_price = price(1_999);
    let placed = stack.orders.place_order(request.clone()).await.unwrap().into_inner().order.unwrap();
    let total = placed.total.clone().unwrap();
    assert_eq!((total.currency_code.as_str(), total.amount_minor), ("EUR", 4_499));
    let stored = stack.orders.get_order(GetOrderRequest { order_id: placed.order_id }).await.unwrap();
    assert_eq!(stored.into_inner().order.unwrap().total, Some(total));

    request.lines[1].unit_price = None;
    let refused = stack.orders.place_order(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("lines[1].unit_price:"), "{}", refused.message());
}
