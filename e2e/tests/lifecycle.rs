//! The order lifecycle beyond the happy path, through gRPC against the real broker and
//! databases: cancellation with compensation at every stage, a cancel racing the pack, many
//! orders racing for the last units, and calls without a token or with the wrong scope.

use futures::future::join_all;
use orderflow_e2e::{Stack, event_types, order_request, with_token};
use orderflow_kit::testing;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, FulfillmentStatus, GetFulfillmentRequest,
};
use orderflow_proto::inventory::v1::GetStockRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{CancelOrderRequest, GetOrderRequest, Order, OrderStatus, PaymentStatus};
use orderflow_proto::shipping::v1::GetShipmentRequest;
use std::time::Duration;
use tonic::Code;

fn manual() -> fulfillment_service::Fulfillment {
    fulfillment_service::Fulfillment::manual()
}

async fn place(stack: &mut Stack, sku: &str, quantity: i32) -> String {
    let order = stack.orders.place_order(order_request("c-life", &[(sku, quantity)])).await.unwrap();
    order.into_inner().order.unwrap().order_id
}

async fn cancel(stack: &mut Stack, order_id: &str) -> Result<Order, tonic::Status> {
    let request = CancelOrderRequest { order_id: order_id.to_owned(), reason: "customer changed their mind".into() };
    stack.orders.cancel_order(request).await.map(|r| r.into_inner().order.unwrap())
}

/// Waits until the SKU's (on hand, reserved) is `expected`.
async fn wait_for_stock(stack: &Stack, sku: &str, expected: (i64, i64)) {
    let inventory = stack.inventory.clone();
    testing::wait_until(&format!("{sku} stock is {expected:?}"), Duration::from_secs(30), || {
        let mut inventory = inventory.clone();
        async move {
            let stock = inventory.get_stock(GetStockRequest { sku: sku.into() }).await.ok()?.into_inner();
            ((stock.on_hand, stock.reserved) == expected).then_some(())
        }
    })
    .await;
}

async fn wait_for_event(stack: &Stack, order_id: &str, event_type: &str) -> Order {
    let orders = stack.orders.clone();
    testing::wait_until(&format!("order {order_id} shows {event_type}"), Duration::from_secs(30), || {
        let mut orders = orders.clone();
        async move {
            let order = orders.get_order(GetOrderRequest { order_id: order_id.into() }).await.ok()?;
            let order = order.into_inner().order?;
            event_types(&order).contains(&event_type).then_some(order)
        }
    })
    .await
}

async fn fulfillment_status(stack: &mut Stack, order_id: &str) -> i32 {
    let request = GetFulfillmentRequest { order_id: order_id.into() };
    stack.fulfillment.get_fulfillment(request).await.unwrap().into_inner().fulfillment.unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_at_every_warehouse_step_releases_the_stock_and_stops_fulfillment() {
    let mut stack = Stack::start_with_fulfillment(manual()).await;
    stack.stock_product("MUG", "A-01", 350, 20).await;

    for steps in 0..=2 {
        let order_id = place(&mut stack, "MUG", 3).await;
        stack.wait_for_status(&order_id, OrderStatus::Reserved).await;
        stack.wait_for_fulfillment(&order_id, FulfillmentStatus::AwaitingPick).await;
        let id = || order_id.clone();
        if steps >= 1 {
            stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: id() }).await.unwrap();
            stack.wait_for_status(&order_id, OrderStatus::Picked).await;
        }
        if steps >= 2 {
            stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: id() }).await.unwrap();
            stack.wait_for_status(&order_id, OrderStatus::Sorted).await;
        }

        let cancelled = cancel(&mut stack, &order_id).await.unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled as i32, "after {steps} step(s)");
        assert_eq!(cancelled.cancellation_reason, "customer changed their mind");
        let again = cancel(&mut stack, &order_id).await.unwrap();
        assert_eq!(again.timeline.len(), cancelled.timeline.len(), "a repeated cancel emits nothing");

        wait_for_event(&stack, &order_id, "StockReleased").await;
        let order = stack.wait_for_payment(&order_id, PaymentStatus::Voided).await;
        assert_eq!(order.status, OrderStatus::Cancelled as i32);
        let types = event_types(&order);
        assert_eq!(types[types.len() - 2..], ["StockReleased", "PaymentVoided"], "{types:?}");
        wait_for_stock(&stack, "MUG", (20, 0)).await;
        stack.wait_for_fulfillment(&order_id, FulfillmentStatus::Cancelled).await;
        let next_step = match steps {
            0 => stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: id() }).await,
            1 => stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: id() }).await,
            _ => stack.fulfillment.confirm_pack(ConfirmPackRequest { order_id: id(), ..Default::default() }).await,
        };
        let refused = next_step.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
        assert!(refused.message().contains("CANCELLED"), "{}", refused.message());
    }

    // Once packed, the order is shipping's: the cancel is refused and nothing changes.
    let order_id = place(&mut stack, "MUG", 2).await;
    stack.wait_for_status(&order_id, OrderStatus::Reserved).await;
    stack.wait_for_fulfillment(&order_id, FulfillmentStatus::AwaitingPick).await;
    let id = || order_id.clone();
    stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: id() }).await.unwrap();
    stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: id() }).await.unwrap();
    stack.fulfillment.confirm_pack(ConfirmPackRequest { order_id: id(), ..Default::default() }).await.unwrap();
    stack.wait_for_status(&order_id, OrderStatus::Shipped).await;
    let shipped = stack.wait_for_payment(&order_id, PaymentStatus::Captured).await;
    let refused = cancel(&mut stack, &order_id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("SHIPPED"), "{}", refused.message());
    wait_for_stock(&stack, "MUG", (18, 0)).await;
    let now = stack.orders.get_order(GetOrderRequest { order_id: id() }).await.unwrap().into_inner().order.unwrap();
    assert_eq!((now.status, now.timeline.len()), (OrderStatus::Shipped as i32, shipped.timeline.len()));

    // A cancel right after placing wins over the payment and the reservation: the payment is
    // voided and nothing stays reserved.
    let order_id = place(&mut stack, "MUG", 5).await;
    assert_eq!(cancel(&mut stack, &order_id).await.unwrap().status, OrderStatus::Cancelled as i32);
    stack.wait_for_payment(&order_id, PaymentStatus::Voided).await;
    wait_for_stock(&stack, "MUG", (18, 0)).await;
    stack.wait_for_fulfillment(&order_id, FulfillmentStatus::Cancelled).await;

    let unknown = cancel(&mut stack, &uuid::Uuid::now_v7().to_string()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let bad = cancel(&mut stack, "not-an-id").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("order_id"), "{}", bad.message());
    let long_reason = CancelOrderRequest { order_id: order_id.clone(), reason: "x".repeat(501) };
    assert_eq!(stack.orders.cancel_order(long_reason).await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_the_pack_has_one_outcome_and_leaves_nothing_half_done() {
    let mut stack = Stack::start_with_fulfillment(manual()).await;
    const ORDERS: i64 = 8;
    stack.stock_product("MUG", "A-01", 350, ORDERS).await;

    let mut sorted = Vec::new();
    for _ in 0..ORDERS {
        let order_id = place(&mut stack, "MUG", 1).await;
        stack.wait_for_status(&order_id, OrderStatus::Reserved).await;
        stack.wait_for_fulfillment(&order_id, FulfillmentStatus::AwaitingPick).await;
        stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: order_id.clone() }).await.unwrap();
        stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: order_id.clone() }).await.unwrap();
        stack.wait_for_status(&order_id, OrderStatus::Sorted).await;
        sorted.push(order_id);
    }

    // Pack each order and cancel it at once or a little later, so that the cancel lands before,
    // during or after the handover to shipping.
    let races = sorted.iter().enumerate().map(|(i, order_id)| {
        let (mut fulfillment, mut orders) = (stack.fulfillment.clone(), stack.orders.clone());
        let order_id = order_id.clone();
        async move {
            let pack =
                fulfillment.confirm_pack(ConfirmPackRequest { order_id: order_id.clone(), ..Default::default() });
            let cancel = async {
                tokio::time::sleep(Duration::from_millis(30) * u32::try_from(i).unwrap()).await;
                orders.cancel_order(CancelOrderRequest { order_id: order_id.clone(), reason: String::new() }).await
            };
            let (packed, cancelled) = tokio::join!(pack, cancel);
            (order_id, packed.is_ok(), cancelled.map(|_| ()).map_err(|s| s.code()))
        }
    });
    let mut shipped_units = 0;
    for (order_id, packed, cancelled) in join_all(races).await {
        let order = match cancelled {
            Ok(()) => {
                // The cancel won: no label, stock back on the shelf.
                let order = wait_for_event(&stack, &order_id, "StockReleased").await;
                assert_eq!(order.status, OrderStatus::Cancelled as i32);
                assert!(order.tracking_number.is_empty());
                order
            }
            Err(code) => {
                // The handover won: the cancel was refused and the parcel ships.
                assert_eq!(code, Code::FailedPrecondition);
                assert!(packed, "a cancel is refused only once the order is packed");
                shipped_units += 1;
                stack.wait_for_status(&order_id, OrderStatus::Shipped).await
            }
        };
        let types = event_types(&order);
        let exactly_one = [types.contains(&"OrderCancelled"), types.contains(&"ShipmentRequested")];
        assert_eq!(exactly_one.iter().filter(|b| **b).count(), 1, "{order_id}: {types:?}");
        let shipment = stack.shipping.get_shipment(GetShipmentRequest { order_id: order_id.clone() }).await;
        assert_eq!(shipment.is_ok(), types.contains(&"Shipped"), "{order_id}: a label exactly for shipped orders");
        if cancelled.is_ok() && packed {
            assert_eq!(fulfillment_status(&mut stack, &order_id).await, FulfillmentStatus::Packed as i32);
        }
    }
    eprintln!("cancel vs pack: {shipped_units} shipped, {} cancelled", ORDERS - shipped_units);
    // Nothing stuck in reserved: cancelled units are back, shipped ones are gone.
    wait_for_stock(&stack, "MUG", (ORDERS - shipped_units, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_orders_for_ten_units_reserve_exactly_ten() {
    let mut stack = Stack::start().await;
    stack.stock_product("LAST", "Z-99", 100, 10).await;

    let placing = (0..50).map(|_| {
        let mut orders = stack.orders.clone();
        async move {
            let order = orders.place_order(order_request("c-race", &[("LAST", 1)])).await.unwrap();
            order.into_inner().order.unwrap().order_id
        }
    });
    let ids = join_all(placing).await;
    let mut ended = Vec::new();
    for order_id in &ids {
        let orders = stack.orders.clone();
        let order = testing::wait_until(&format!("order {order_id} ends"), Duration::from_secs(60), || {
            let mut orders = orders.clone();
            async move {
                let order = orders.get_order(GetOrderRequest { order_id: order_id.clone() }).await.ok()?;
                let order = order.into_inner().order?;
                [OrderStatus::Shipped as i32, OrderStatus::Rejected as i32].contains(&order.status).then_some(order)
            }
        })
        .await;
        ended.push(order);
    }
    let shipped = ended.iter().filter(|o| o.status == OrderStatus::Shipped as i32).count();
    let rejected: Vec<_> = ended.iter().filter(|o| o.status == OrderStatus::Rejected as i32).collect();
    assert_eq!((shipped, rejected.len()), (10, 40), "exactly the ten units are sold");
    assert!(rejected.iter().all(|o| o.rejection_reason.contains("out of stock")), "{}", rejected[0].rejection_reason);
    wait_for_stock(&stack, "LAST", (0, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_valid_token_or_the_right_scope_are_refused() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 5).await;
    let order_id = place(&mut stack, "MUG", 1).await;
    let get = || GetOrderRequest { order_id: order_id.clone() };

    let mut anonymous = OrderServiceClient::new(stack.order_channel.clone());
    let status = anonymous.get_order(get()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("authorization"), "{}", status.message());

    let mut forged = OrderServiceClient::new(with_token(stack.order_channel.clone(), "not-a-token"));
    assert_eq!(forged.get_order(get()).await.unwrap_err().code(), Code::Unauthenticated);

    let mut reader = OrderServiceClient::new(with_token(stack.order_channel.clone(), testing::READER_TOKEN));
    assert_eq!(reader.get_order(get()).await.unwrap().into_inner().order.unwrap().order_id, order_id);
    let denied = reader.place_order(order_request("c-reader", &[("MUG", 1)])).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("orders:write"), "{}", denied.message());
    let cancel = CancelOrderRequest { order_id: order_id.clone(), reason: String::new() };
    assert_eq!(reader.cancel_order(cancel).await.unwrap_err().code(), Code::PermissionDenied);
    let order = stack.orders.get_order(get()).await.unwrap().into_inner().order.unwrap();
    assert_ne!(order.status, OrderStatus::Cancelled as i32, "a refused call changes nothing");
}
