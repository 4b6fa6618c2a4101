//! Callers see only what is theirs: a token bound to a customer places, reads, lists, watches
//! and cancels only that customer's orders (another's is NOT_FOUND, never "forbidden"), and its
//! idempotency keys are its own; a token bound to a carrier scans and collects only its parcels.

use orderflow_e2e::{Stack, order_request, with_token};
use orderflow_kit::testing::{CUSTOMER, CUSTOMER_TOKEN, DPD_TOKEN};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{
    CancelOrderRequest, GetOrderRequest, ListOrdersRequest, OrderStatus, PaymentStatus, WatchOrderRequest,
};
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use orderflow_proto::shipping::v1::{
    ConfirmDeliveryRequest, ConfirmPickupRequest, ListPickupsRequest, RecordTrackingEventRequest, ShipmentStatus,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_token_sees_only_its_customers_orders_and_a_carrier_token_only_its_parcels() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 20).await;
    let mut mine = OrderServiceClient::new(with_token(stack.order_channel.clone(), CUSTOMER_TOKEN));

    // Placing: for its own customer only; its idempotency keys are its own.
    let mut request = order_request(CUSTOMER, &[("MUG", 1)]);
    request.idempotency_key = "cart-1".into();
    let own = mine.place_order(request.clone()).await.unwrap().into_inner().order.unwrap();
    let again = mine.place_order(request.clone()).await.unwrap().into_inner().order.unwrap();
    assert_eq!(again.order_id, own.order_id, "a retry with its key answers as before");
    let admins = stack.orders.place_order(request).await.unwrap().into_inner().order.unwrap();
    assert_ne!(admins.order_id, own.order_id, "the same key from another caller is another key");
    let someone_else = order_request("c-other", &[("MUG", 1)]);
    let refused = mine.place_order(someone_else.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{}", refused.message());
    let others = stack.orders.place_order(someone_else).await.unwrap().into_inner().order.unwrap();

    // Reading, watching, cancelling: another customer's order does not exist for it.
    let get = |order_id: &str| GetOrderRequest { order_id: order_id.into() };
    assert_eq!(mine.get_order(get(&own.order_id)).await.unwrap().into_inner().order.unwrap().order_id, own.order_id);
    let hidden = mine.get_order(get(&others.order_id)).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(hidden.message(), format!("order {} not found", others.order_id), "the answer for no order");
    let watch = mine.watch_order(WatchOrderRequest { order_id: others.order_id.clone() }).await;
    assert_eq!(watch.map(|_| ()).unwrap_err().code(), Code::NotFound);
    let cancel = CancelOrderRequest { order_id: others.order_id.clone(), reason: String::new() };
    assert_eq!(mine.cancel_order(cancel).await.unwrap_err().code(), Code::NotFound);
    let theirs = stack.orders.get_order(get(&others.order_id)).await.unwrap().into_inner().order.unwrap();
    assert_ne!(theirs.status(), OrderStatus::Cancelled, "untouched");

    // Listing: its customer's, whatever it asks for.
    let list = |customer_id: &str, late: bool| ListOrdersRequest {
        customer_id: customer_id.into(),
        late,
        ..Default::default()
    };
    let listed = mine.list_orders(list("", false)).await.unwrap().into_inner().orders;
    assert!(!listed.is_empty() && listed.iter().all(|o| o.customer.as_ref().unwrap().id == CUSTOMER), "{listed:?}");
    assert!(mine.list_orders(list("c-other", false)).await.unwrap().into_inner().orders.is_empty());
    let late = mine.list_orders(list("", true)).await.unwrap().into_inner().orders;
    assert!(late.iter().all(|o| o.customer.as_ref().unwrap().id == CUSTOMER));

    // A carrier's token: its parcels only (the order ships with DPD, a domestic parcel).
    let shipped = stack.wait_for_payment(&own.order_id, PaymentStatus::Captured).await;
    assert_eq!(shipped.carrier, "DPD");
    let mut dpd = ShippingServiceClient::new(with_token(stack.shipping_channel.clone(), DPD_TOKEN));
    let scan = |number: &str, scan_id: &str| RecordTrackingEventRequest {
        tracking_number: number.into(),
        scan_id: scan_id.into(),
        status: ShipmentStatus::InTransit as i32,
        ..Default::default()
    };
    dpd.record_tracking_event(scan(&shipped.tracking_number, "s1")).await.unwrap();
    let pickups = |carrier: &str| ListPickupsRequest { carrier: carrier.into(), ..Default::default() };
    assert_eq!(dpd.list_pickups(pickups("DHL")).await.unwrap_err().code(), Code::PermissionDenied);
    dpd.list_pickups(pickups("DPD")).await.unwrap();
    let collect =
        ConfirmPickupRequest { carrier: "DHL".into(), tracking_numbers: vec![shipped.tracking_number.clone()] };
    assert_eq!(dpd.confirm_pickup(collect).await.unwrap_err().code(), Code::PermissionDenied);
    // Another carrier's parcel (a standard parcel to France goes with DHL) is unknown to it.
    let mut abroad = order_request("c-abroad", &[("MUG", 1)]);
    abroad.shipping_address.as_mut().unwrap().country = "FR".into();
    let abroad = stack.orders.place_order(abroad).await.unwrap().into_inner().order.unwrap();
    let abroad = stack.wait_for_status(&abroad.order_id, OrderStatus::Shipped).await;
    assert_eq!(abroad.carrier, "DHL");
    let refused = dpd.record_tracking_event(scan(&abroad.tracking_number, "s2")).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{}", refused.message());
    let delivery = ConfirmDeliveryRequest { tracking_number: abroad.tracking_number.clone() };
    assert_eq!(dpd.confirm_delivery(delivery).await.unwrap_err().code(), Code::NotFound);
}
