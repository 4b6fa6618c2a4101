//! Backorders end to end: a short order that allows a backorder waits ON_HOLD (naming what it
//! awaits) instead of being rejected; restocks serve held orders whole, in arrival order, a
//! small later order never overtaking a large earlier one; a held order can be cancelled; a
//! hold that outlives its maximum ends REJECTED "backorder expired"; stock is never oversold.

use orderflow_e2e::{Stack, order_request};
use orderflow_proto::inventory::v1::{GetStockRequest, ListBackordersRequest, RestockRequest};
use orderflow_proto::order::v1::{CancelOrderRequest, Order, OrderStatus};
use std::time::Duration;

async fn held(stack: &mut Stack, customer: &str, quantity: i32) -> Order {
    let mut request = order_request(customer, &[("MUG", quantity)]);
    request.allow_backorder = true;
    let order = stack.orders.place_order(request).await.unwrap().into_inner().order.unwrap();
    stack.wait_for_status(&order.order_id, OrderStatus::OnHold).await
}

async fn restock(stack: &mut Stack, quantity: i64) {
    stack.inventory.restock(RestockRequest { sku: "MUG".into(), quantity }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restocks_serve_held_orders_whole_and_in_arrival_order() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 1).await;
    let large = held(&mut stack, "c-large", 3).await;
    assert_eq!(large.hold_reason, "awaiting MUG x3 (1 available)");
    let small = held(&mut stack, "c-small", 1).await;
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.reserved, stock.backordered), (0, 4), "nothing reserved while they wait");
    let backorders = stack.inventory.list_backorders(ListBackordersRequest::default()).await.unwrap().into_inner();
    let waiting: Vec<_> = backorders.items[0].orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(
        (backorders.items[0].units_awaited, waiting),
        (4, vec![large.order_id.as_str(), small.order_id.as_str()])
    );

    // 2 on hand: enough for the small one, not the large one, which came first: neither moves.
    restock(&mut stack, 1).await;
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (2, 0), "the small order does not overtake the large one");
    // 4 on hand: the large one is served whole, then the small one.
    restock(&mut stack, 2).await;
    stack.wait_for_status(&large.order_id, OrderStatus::Shipped).await;
    stack.wait_for_status(&small.order_id, OrderStatus::Shipped).await;
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved, stock.backordered), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_order_can_be_cancelled_and_a_hold_expires() {
    let mut stack =
        Stack::start_with_inventory(inventory_service::Inventory::with_max_hold(Duration::from_secs(2))).await;
    stack.stock_product("MUG", "A-01", 350, 1).await;
    let cancelled = held(&mut stack, "c-cancel", 2).await;
    let request = CancelOrderRequest { order_id: cancelled.order_id.clone(), reason: "found it elsewhere".into() };
    stack.orders.cancel_order(request).await.unwrap();
    stack.wait_for_status(&cancelled.order_id, OrderStatus::Cancelled).await;
    let expiring = held(&mut stack, "c-expire", 2).await;
    let rejected = stack.wait_for_status(&expiring.order_id, OrderStatus::Rejected).await;
    assert!(rejected.rejection_reason.starts_with("backorder expired"), "{}", rejected.rejection_reason);
    orderflow_kit::testing::wait_until("no backorders left", Duration::from_secs(30), || {
        let mut inventory = stack.inventory.clone();
        async move {
            let left = inventory.list_backorders(ListBackordersRequest::default()).await.ok()?.into_inner().items;
            left.is_empty().then_some(())
        }
    })
    .await;
    // A restock now serves nobody: the cancelled order's hold was dropped.
    restock(&mut stack, 5).await;
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (6, 0));
}
