//! Payment from outside, through the public API and the development gateway's ledger: a
//! declined payment rejects the order and reserves nothing; a flaky one is retried until it
//! goes through; an unreachable gateway keeps the order PLACED and PENDING until it is back;
//! a cancel voids in every payment state it is accepted in; a shipped order is captured once,
//! for its total.

use orderflow_e2e::{Stack, event_types, order_request};
use orderflow_proto::common::v1::Money;
use orderflow_proto::fulfillment::v1::{ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, FulfillmentStatus};
use orderflow_proto::inventory::v1::GetStockRequest;
use orderflow_proto::order::v1::{CancelOrderRequest, GetOrderRequest, Order, OrderStatus, PaymentStatus};
use tonic::Code;

fn priced(
    customer: &str,
    reference: &str,
    sku: &str,
    quantity: i32,
    price: i64,
) -> orderflow_proto::order::v1::PlaceOrderRequest {
    let mut request = order_request(customer, &[(sku, quantity)]);
    request.payment_reference = reference.into();
    request.lines[0].unit_price = Some(Money { currency_code: "EUR".into(), amount_minor: price });
    request
}

async fn place(stack: &mut Stack, request: orderflow_proto::order::v1::PlaceOrderRequest) -> Order {
    let order = stack.orders.place_order(request).await.unwrap().into_inner().order.unwrap();
    assert_eq!(
        (order.status(), order.payment_status()),
        (OrderStatus::Placed, PaymentStatus::Pending),
        "acknowledged at once, the payment being authorised"
    );
    order
}

async fn get(stack: &mut Stack, order_id: &str) -> Order {
    stack.orders.get_order(GetOrderRequest { order_id: order_id.into() }).await.unwrap().into_inner().order.unwrap()
}

async fn cancel(stack: &mut Stack, order_id: &str) -> Result<Order, tonic::Status> {
    let request = CancelOrderRequest { order_id: order_id.into(), reason: "changed my mind".into() };
    Ok(stack.orders.cancel_order(request).await?.into_inner().order.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_payments_reject_flaky_ones_go_through_and_shipped_ones_are_captured_once() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let declined = place(&mut stack, priced("c-pay", "pay_decline_card", "MUG", 2, 1_250)).await;
    let flaky = place(&mut stack, priced("c-pay", "pay_flaky_card", "MUG", 1, 999)).await;
    let good = place(&mut stack, priced("c-pay", "pay_card", "MUG", 3, 500)).await;

    let rejected = stack.wait_for_status(&declined.order_id, OrderStatus::Rejected).await;
    assert_eq!(rejected.payment_status(), PaymentStatus::Declined);
    assert_eq!(rejected.rejection_reason, "payment declined: card declined (test reference)");
    assert_eq!(event_types(&rejected), ["OrderPlaced", "PaymentDeclined"]);
    for order in [&flaky, &good] {
        stack.wait_for_payment(&order.order_id, PaymentStatus::Captured).await;
    }
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (6, 0), "the declined order never held stock");

    let ledger = stack.ledger().await;
    let entry = |order: &Order| ledger[&order.order_id].clone();
    assert_eq!((entry(&declined).status.as_str(), entry(&declined).captures), ("DECLINED", 0));
    for (order, total) in [(&flaky, 999), (&good, 1_500)] {
        let e = entry(order);
        assert_eq!((e.status.as_str(), e.captures, e.captured_minor), ("CAPTURED", 1, total), "{e:?}");
        assert_eq!(e.amount_minor, total, "authorised for the order's total");
    }
    let refused = cancel(&mut stack, &declined.order_id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "a rejected order has nothing to cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_holds_the_order_until_it_is_back_and_a_cancel_voids_at_every_state() {
    let mut stack = Stack::start_with_gateway_link(fulfillment_service::Fulfillment::manual()).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let link = stack.gateway_link.as_ref().unwrap();
    link.cut();
    let waiting = place(&mut stack, priced("c-gw", "pay_card", "MUG", 1, 700)).await;
    let cancelled_pending = place(&mut stack, priced("c-gw", "pay_card", "MUG", 1, 700)).await;
    // The gateway is away: the orders wait, PLACED and PENDING, retried with back-off; one is
    // cancelled meanwhile.
    let cancelled = cancel(&mut stack, &cancelled_pending.order_id).await.unwrap();
    assert_eq!((cancelled.status(), cancelled.payment_status()), (OrderStatus::Cancelled, PaymentStatus::Pending));
    let order = get(&mut stack, &waiting.order_id).await;
    assert_eq!((order.status(), order.payment_status()), (OrderStatus::Placed, PaymentStatus::Pending));
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!(stock.reserved, 0, "nothing is reserved for an unpaid order");
    stack.gateway_link.as_ref().unwrap().restore();

    let authorised = stack.wait_for_status(&waiting.order_id, OrderStatus::Reserved).await;
    assert_eq!(authorised.payment_status(), PaymentStatus::Authorized);
    let voided = stack.wait_for_payment(&cancelled_pending.order_id, PaymentStatus::Voided).await;
    assert!(!event_types(&voided).contains(&"PaymentAuthorized"), "{:?}", event_types(&voided));

    // AUTHORIZED and RESERVED: the cancel voids and the stock comes back.
    cancel(&mut stack, &waiting.order_id).await.unwrap();
    stack.wait_for_payment(&waiting.order_id, PaymentStatus::Voided).await;

    // Authorised and packed: the order is shipping's, a cancel is refused, the capture follows.
    let shipped = place(&mut stack, priced("c-gw", "pay_card", "MUG", 2, 700)).await;
    stack.wait_for_status(&shipped.order_id, OrderStatus::Reserved).await;
    // Fulfillment learns of it from StockReserved on its own: wait until it is on the pick list.
    stack.wait_for_fulfillment(&shipped.order_id, FulfillmentStatus::AwaitingPick).await;
    let id = || shipped.order_id.clone();
    stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: id() }).await.unwrap();
    stack.fulfillment.confirm_sort(ConfirmSortRequest { order_id: id() }).await.unwrap();
    stack.fulfillment.confirm_pack(ConfirmPackRequest { order_id: id(), ..Default::default() }).await.unwrap();
    let captured = stack.wait_for_payment(&shipped.order_id, PaymentStatus::Captured).await;
    assert_eq!(captured.status(), OrderStatus::Shipped);
    assert_eq!(cancel(&mut stack, &shipped.order_id).await.unwrap_err().code(), Code::FailedPrecondition);

    let ledger = stack.ledger().await;
    assert_eq!(ledger[&waiting.order_id].status, "VOIDED");
    assert_eq!(ledger[&waiting.order_id].captures, 0);
    let early = &ledger[&cancelled_pending.order_id];
    assert_eq!((early.status.as_str(), early.captures), ("VOIDED", 0), "{early:?}");
    assert_eq!((ledger[&shipped.order_id].captures, ledger[&shipped.order_id].captured_minor), (1, 1_400));
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (8, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_event_forged_on_another_topic_moves_neither_the_order_nor_the_stock() {
    use orderflow_kit::envelope::{self, Cause};
    use orderflow_kit::topics::{Topic, Topics};
    use orderflow_kit::{events, testing, trace::TraceParent};
    use orderflow_proto::events::v1::event_envelope::Payload;
    use orderflow_proto::events::v1::{OrderPlaced, PaymentAuthorized};
    use prost::Message;

    let mut stack = Stack::start_with_gateway_link(fulfillment_service::Fulfillment::manual()).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    stack.gateway_link.as_ref().unwrap().cut();
    let order = place(&mut stack, priced("c-forge", "pay_card", "MUG", 4, 700)).await;
    let order_lines = order.lines.clone();
    let authorized = PaymentAuthorized {
        authorization_id: "auth_forged".into(),
        amount: order.total.clone(),
        order: Some(OrderPlaced { lines: order_lines, ..OrderPlaced::default() }),
    };
    let cause = Cause::command(TraceParent::new_root());
    let forged = envelope::build("order-service", &order.order_id, Payload::PaymentAuthorized(authorized), &cause);
    let topics = Topics::new(&stack.namespace);
    let shipping = topics.name(Topic::Shipping);
    testing::send_from_outside(&shipping, order.order_id.as_bytes(), &[], Some(&forged.encode_to_vec())).await;
    let dead_letters = [topics.dead_letter(order_service::SERVICE), topics.dead_letter(inventory_service::SERVICE)];
    let dead = testing::wait_until(
        "order- and inventory-service dead-letter it",
        std::time::Duration::from_secs(30),
        || async {
            let dead = events::read_to_end(&testing::brokers(), &dead_letters).await.ok()?;
            (dead.len() == 2).then_some(dead)
        },
    )
    .await;
    for letter in &dead {
        let error = &letter.headers[orderflow_kit::dlq::ERROR];
        assert!(error.contains("does not belong on") && error.contains("only shipping-service"), "{error}");
    }
    let now = get(&mut stack, &order.order_id).await;
    assert_eq!((now.status(), now.payment_status()), (OrderStatus::Placed, PaymentStatus::Pending));
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    assert_eq!(stock.reserved, 0, "nothing reserved on a forged authorisation");
}
