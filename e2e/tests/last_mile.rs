//! The last mile end to end, with carriers confirming pick-ups by hand
//! (`SHIPPING_PICKUP_MODE=manual`): a labelled parcel waits on its carrier's manifest, a
//! collection scan ships it (answered per parcel), carrier scans arrive late, twice and out of
//! order without moving it backwards, and the order ends DELIVERED or RETURNED with its
//! delivery promise and last scan on GetOrder.

use orderflow_e2e::{Stack, event_types, order_request};
use orderflow_kit::envelope;
use orderflow_proto::inventory::v1::GetStockRequest;
use orderflow_proto::order::v1::{GetOrderRequest, ListOrdersRequest, Order, OrderStatus};
use orderflow_proto::shipping::v1::{
    ConfirmPickupRequest, ListPickupsRequest, PickupOutcome, RecordTrackingEventRequest, RecordTrackingEventResponse,
    ShipmentStatus, TrackShipmentRequest,
};
use shipping_service::{PickupMode, Shipping};
use tonic::Code;

async fn manual_stack() -> Stack {
    let mut stack = Stack::start_with_shipping(Shipping::with_pickup(PickupMode::Manual)).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    stack
}

async fn labelled_order(stack: &mut Stack, customer: &str) -> Order {
    let placed =
        stack.orders.place_order(order_request(customer, &[("MUG", 1)])).await.unwrap().into_inner().order.unwrap();
    let promise = placed.delivery_promise.clone().expect("PlaceOrder answers with a promise");
    assert!(!promise.earliest.is_empty() && promise.earliest <= promise.latest, "{promise:?}");
    stack.wait_for_status(&placed.order_id, OrderStatus::Labelled).await
}

async fn scan(
    stack: &mut Stack,
    number: &str,
    id: &str,
    status: ShipmentStatus,
    minutes_ago: i64,
) -> Result<RecordTrackingEventResponse, tonic::Status> {
    let at = chrono::Utc::now() - chrono::TimeDelta::minutes(minutes_ago);
    let request = RecordTrackingEventRequest {
        tracking_number: number.into(),
        scan_id: id.into(),
        status: status as i32,
        location: format!("hub {id}"),
        occurred_at: Some(envelope::timestamp(at)),
        note: String::new(),
    };
    stack.shipping.record_tracking_event(request).await.map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_waits_for_its_courier_and_scans_in_any_order_end_it_delivered() {
    let mut stack = manual_stack().await;
    let order = labelled_order(&mut stack, "c-last-mile").await;
    let number = order.tracking_number.clone();
    assert_eq!(order.carrier, "DPD");
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (10, 1), "stock leaves with the courier, not with the label");

    let manifest = |carrier: &str| ListPickupsRequest { carrier: carrier.into(), ..Default::default() };
    let listed = stack.shipping.list_pickups(manifest("dpd")).await.unwrap().into_inner().parcels;
    assert_eq!(listed.iter().map(|p| p.tracking_number.as_str()).collect::<Vec<_>>(), [number.as_str()]);
    assert!(listed[0].label.starts_with("^XA"), "the label to print");
    assert!(stack.shipping.list_pickups(manifest("UPS")).await.unwrap().into_inner().parcels.is_empty());

    // Another carrier's van cannot take it; the right one collects it once, per item.
    let pickup = |carrier: &str, numbers: &[&str]| ConfirmPickupRequest {
        carrier: carrier.into(),
        tracking_numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
    };
    let outcomes = |results: Vec<orderflow_proto::shipping::v1::PickupResult>| {
        results.into_iter().map(|r| PickupOutcome::try_from(r.outcome).unwrap()).collect::<Vec<_>>()
    };
    let wrong = stack.shipping.confirm_pickup(pickup("UPS", &[&number])).await.unwrap().into_inner().results;
    assert_eq!(outcomes(wrong), [PickupOutcome::OtherCarrier]);
    let collected = stack
        .shipping
        .confirm_pickup(pickup("DPD", &[&number, "not-a-number", "DP999999999991", &number]))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        outcomes(collected.clone()),
        [
            PickupOutcome::Collected,
            PickupOutcome::UnknownParcel,
            PickupOutcome::UnknownParcel,
            PickupOutcome::AlreadyCollected
        ]
    );
    assert!(collected[1].detail.starts_with("tracking_numbers[1]"), "{}", collected[1].detail);
    assert!(collected[0].shipment.as_ref().unwrap().shipped_at.is_some());
    let empty = stack.shipping.confirm_pickup(pickup("DPD", &[])).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    stack.wait_for_status(&order.order_id, OrderStatus::Shipped).await;
    assert!(stack.shipping.list_pickups(manifest("")).await.unwrap().into_inner().parcels.is_empty());

    // Scans: in order, then one late, one twice, then the delivery.
    assert!(scan(&mut stack, &number, "s1", ShipmentStatus::InTransit, 50).await.unwrap().current);
    assert!(scan(&mut stack, &number, "s3", ShipmentStatus::OutForDelivery, 10).await.unwrap().current);
    let late = scan(&mut stack, &number, "s2", ShipmentStatus::InTransit, 30).await.unwrap();
    assert!(!late.current && !late.duplicate, "an older scan is history only");
    assert_eq!(late.shipment.unwrap().status, ShipmentStatus::OutForDelivery as i32, "never backwards");
    let twice = scan(&mut stack, &number, "s3", ShipmentStatus::OutForDelivery, 10).await.unwrap();
    assert!(twice.duplicate);
    let refused = scan(&mut stack, &number, "s9", ShipmentStatus::Labelled, 1).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("status"), "{}", refused.message());
    let unknown = scan(&mut stack, "DP999999999991", "s9", ShipmentStatus::InTransit, 1).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    scan(&mut stack, &number, "s4", ShipmentStatus::Delivered, 1).await.unwrap();

    let delivered = stack.wait_for_status(&order.order_id, OrderStatus::Delivered).await;
    assert_eq!(delivered.last_tracking_event.as_ref().unwrap().scan_id, "s4");
    let promise = delivered.delivery_promise.clone().unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!((promise.earliest.as_str(), promise.latest.as_str()), (today.as_str(), today.as_str()));
    let types = event_types(&delivered);
    assert_eq!(&types[6..9], ["ShipmentRequested", "Labelled", "Shipped"], "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "TrackingUpdated").count(), 4, "{types:?}");
    assert_eq!(types.last(), Some(&"Delivered"));
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (9, 0));

    let tracked = stack.shipping.track_shipment(TrackShipmentRequest { tracking_number: number }).await.unwrap();
    let history: Vec<_> = tracked.into_inner().history.into_iter().map(|e| (e.status, e.scan_id, e.current)).collect();
    let row = |status: &str, id: &str, current| (status.to_owned(), id.to_owned(), current);
    assert_eq!(
        history,
        [
            row("LABELLED", "", true),
            row("SHIPPED", "", true),
            row("IN_TRANSIT", "s1", true),
            row("IN_TRANSIT", "s2", false),
            row("OUT_FOR_DELIVERY", "s3", true),
            row("DELIVERED", "s4", true),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_parcel_comes_back_returned_and_its_stock_waits_for_inspection() {
    let mut stack = manual_stack().await;
    let order = labelled_order(&mut stack, "c-returned").await;
    let number = order.tracking_number.clone();
    // The first carrier scan proves the collection: no pick-up confirmation needed.
    let failed = scan(&mut stack, &number, "f1", ShipmentStatus::DeliveryFailed, 20).await.unwrap();
    assert_eq!(failed.shipment.unwrap().status, ShipmentStatus::DeliveryFailed as i32);
    let after_fail = stack.wait_for_status(&order.order_id, OrderStatus::Shipped).await;
    let promise = after_fail.delivery_promise.clone().unwrap();
    assert!(promise.earliest > chrono::Utc::now().date_naive().to_string(), "next attempt another day: {promise:?}");
    scan(&mut stack, &number, "r1", ShipmentStatus::Returned, 5).await.unwrap();
    let returned = stack.wait_for_status(&order.order_id, OrderStatus::Returned).await;
    assert!(!returned.delivery_promise.unwrap().late, "a returned order is not late");
    // A delivery scan after the return is history only: the order stays RETURNED.
    assert!(!scan(&mut stack, &number, "d1", ShipmentStatus::Delivered, 1).await.unwrap().current);
    let again = stack.orders.get_order(GetOrderRequest { order_id: order.order_id.clone() }).await.unwrap();
    assert_eq!(again.into_inner().order.unwrap().status, OrderStatus::Returned as i32);
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (9, 0), "returned goods are restocked by hand after inspection");
    let late = ListOrdersRequest { late: true, ..Default::default() };
    assert!(stack.orders.list_orders(late).await.unwrap().into_inner().orders.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_courier_collects_each_label_after_its_delay() {
    let delay = std::time::Duration::from_millis(300);
    let mut stack = Stack::start_with_shipping(Shipping::with_pickup(PickupMode::Auto(delay))).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let order = labelled_order(&mut stack, "c-courier").await;
    let shipped = stack.wait_for_status(&order.order_id, OrderStatus::Shipped).await;
    let tracked = stack.shipping.track_shipment(TrackShipmentRequest { tracking_number: shipped.tracking_number });
    let shipment = tracked.await.unwrap().into_inner().shipment.unwrap();
    let (labelled, collected) = (shipment.labelled_at.unwrap(), shipment.shipped_at.unwrap());
    let waited =
        (collected.seconds - labelled.seconds) * 1_000 + i64::from(collected.nanos - labelled.nanos) / 1_000_000;
    assert!(waited >= 300, "collected {waited} ms after labelling");
}
