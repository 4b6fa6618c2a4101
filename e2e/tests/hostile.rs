//! What a hostile producer or a careless caller can do, end to end: bad messages of every kind
//! written with a plain Kafka client to every topic a service consumes cost the orders placed
//! meanwhile nothing, and each is accounted for; a dead letter that is an order's own event
//! holds that order's later events until an operator answers; an order no carrier takes still
//! ends; an oversized request is RESOURCE_EXHAUSTED, text that cannot be stored
//! INVALID_ARGUMENT.

use orderflow_e2e::{SHIPPED_AND_CAPTURED, Stack, event_types, order_request};
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{dlq, events, lag, testing};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Labelled, OrderCancelled, OrderPlaced, Picked, Shipped};
use orderflow_proto::fulfillment::v1::{ConfirmPickRequest, ListPickTasksRequest};
use orderflow_proto::inventory::v1::GetStockRequest;
use orderflow_proto::order::v1::{GetOrderRequest, OrderStatus, PaymentStatus};
use prost::Message;
use sqlx::PgPool;
use std::time::Duration;
use tonic::Code;

fn forged(order_id: &str, payload: Payload) -> EventEnvelope {
    envelope::build("forger", order_id, payload, &Cause::command(TraceParent::new_root()))
}

/// One bad message: key, headers, value; and whether it is a copy of an event already sent.
struct Bad {
    key: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    value: Option<Vec<u8>>,
    copy_of: Option<uuid::Uuid>,
}

fn bad(key: &[u8], headers: &[(&str, &[u8])], value: Option<&[u8]>) -> Bad {
    Bad {
        key: key.to_vec(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect(),
        value: value.map(<[u8]>::to_vec),
        copy_of: None,
    }
}

/// Every class of bad message, for a topic whose first real event is `original`.
fn bad_messages(topic: &str, original: &events::Read) -> Vec<Bad> {
    let stranger = uuid::Uuid::now_v7().to_string();
    let mut unknown_type = forged(&stranger, Payload::Picked(Picked::default()));
    unknown_type.payload = None;
    unknown_type.event_type = "OrderTeleported".into();
    let mut nul_type = unknown_type.clone();
    nul_type.event_type = "Picked\0".into();
    nul_type.event_id = uuid::Uuid::now_v7().to_string();
    let unknown_order = [
        forged(&stranger, Payload::Shipped(Shipped { tracking_number: "DP0".into(), ..Default::default() })),
        forged(&stranger, Payload::OrderCancelled(OrderCancelled { reason: "\0".into(), ..Default::default() })),
    ];
    let original_id = original.envelope.as_ref().ok().and_then(|e| uuid::Uuid::parse_str(&e.event_id).ok());
    let answer: &[(&str, &[u8])] = &[
        (dlq::ACTION, b"redrive"),
        (dlq::GROUP, b"any"),
        (dlq::SOURCE_TOPIC, b"orderflow.elsewhere.v1"),
        (dlq::SOURCE_PARTITION, b"0"),
        (dlq::SOURCE_OFFSET, b"0"),
    ];
    let mut messages = vec![
        bad(b"a\0b", &[], Some(b"\0 garbage")),
        bad(b"\xff\xfe\0", &[("event_type", b"\0\xff"), ("\0", b"\0"), (dlq::ACTION, b"\0")], Some(b"\x08\x96\x01")),
        bad(stranger.as_bytes(), &[], Some(&nul_type.encode_to_vec())),
        // event_id (field 1) holding bytes that are not UTF-8.
        bad(stranger.as_bytes(), &[], Some(b"\x0a\x02\xff\xfe")),
        bad(b"", &[], None),
        bad(stranger.as_bytes(), &[], Some(b"")),
        bad(&[b'k'; 5_000], &[("h", &[b'v'; 5_000])], Some(&vec![0xab; 512 * 1024])),
        bad(stranger.as_bytes(), &[], Some(&unknown_type.encode_to_vec())),
        bad(b"order-4", answer, None),
        bad(topic.as_bytes(), &[(dlq::ACTION, b"discard")], Some(b"")),
    ];
    for event in unknown_order {
        messages.push(bad(stranger.as_bytes(), &[], Some(&event.encode_to_vec())));
    }
    let headers: Vec<(&str, &[u8])> = original.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let mut copy = bad(original.key.as_deref().unwrap_or_default(), &headers, Some(&original.payload));
    copy.copy_of = original_id;
    messages.push(copy);
    // The same event under another key would apply outside its order's turn.
    let mut rekeyed = bad(b"another-key", &headers, Some(&original.payload));
    rekeyed.copy_of = original_id;
    messages.push(rekeyed);
    // An order no PlaceOrder would accept: one SKU on two lines, a negative quantity.
    let lines = [("MUG", 90), ("MUG", 90), ("MUG", -5)]
        .map(|(sku, quantity)| orderflow_proto::common::v1::OrderLine { sku: sku.into(), quantity, unit_price: None })
        .to_vec();
    let placed = forged(&stranger, Payload::OrderPlaced(OrderPlaced { lines, ..Default::default() }));
    messages.push(bad(stranger.as_bytes(), &[], Some(&placed.encode_to_vec())));
    messages
}

async fn pool(url: &str) -> PgPool {
    orderflow_kit::db::pool(url, 2).unwrap()
}

async fn exists(pool: &PgPool, sql: &str, (topic, partition, offset): (&str, i32, i64)) -> bool {
    sqlx::query_scalar(sql).bind(topic).bind(partition).bind(offset).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_on_every_topic_stop_no_order_and_each_is_accounted_for() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 100).await;
    let topics = Topics::new(&stack.namespace);
    let all: Vec<String> = [Topic::Orders, Topic::Inventory, Topic::Fulfillment, Topic::Shipping]
        .iter()
        .map(|t| topics.name(*t))
        .collect();
    let first = stack.orders.place_order(order_request("c-first", &[("MUG", 1)])).await.unwrap();
    stack.wait_for_status(&first.into_inner().order.unwrap().order_id, OrderStatus::Shipped).await;
    let originals = events::read_to_end(&testing::brokers(), &all).await.unwrap();

    let (mut sent, mut placed) = (Vec::new(), Vec::new());
    for topic in &all {
        let original = originals.iter().find(|r| &r.topic == topic).expect("the first order's event on every topic");
        for (class, message) in bad_messages(topic, original).into_iter().enumerate() {
            let headers: Vec<(&str, &[u8])> = message.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            let (partition, offset) =
                testing::send_from_outside(topic, &message.key, &headers, message.value.as_deref()).await;
            sent.push((topic.clone(), partition, offset, message.copy_of, class));
        }
        let order = stack.orders.place_order(order_request("c-during", &[("MUG", 1)])).await.unwrap();
        placed.push(order.into_inner().order.unwrap().order_id);
    }

    // Every order placed during the attack ships, within seconds.
    for order_id in &placed {
        let orders = stack.orders.clone();
        testing::wait_until(&format!("order {order_id} ships"), Duration::from_secs(20), || {
            let (mut orders, order_id) = (orders.clone(), order_id.clone());
            async move {
                let order = orders.get_order(GetOrderRequest { order_id }).await.ok()?.into_inner().order?;
                (order.status() == OrderStatus::Shipped).then_some(())
            }
        })
        .await;
    }

    // Every consumer passed every message, and each one left its mark: applied or skipped (in
    // the inbox, at its offset), a duplicate (its event once in the inbox), dead-lettered
    // (parked at its offset, its dead letter published) or waiting behind its key's dead letter.
    let probe = lag::Probe::new(&testing::brokers()).unwrap();
    for (service, url) in &stack.databases {
        let pool = pool(url).await;
        let group = topics.consumer_group(service);
        let dead_letters = topics.dead_letter(service);
        testing::wait_until(&format!("{service} has read everything"), Duration::from_secs(30), || async {
            let report = probe.report(&pool, &group, &dead_letters).await.ok()?;
            (report.total_lag() == 0 && report.outbox_depth == 0).then_some(())
        })
        .await;
        let consumed: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT topic FROM consumer_offsets").fetch_all(&pool).await.unwrap();
        for (topic, partition, offset, copy_of, class) in sent.iter().filter(|s| consumed.contains(&s.0)) {
            let at = (topic.as_str(), *partition, *offset);
            let copy_seen_once = match copy_of {
                Some(event_id) => {
                    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = $1")
                        .bind(event_id)
                        .fetch_one(&pool)
                        .await
                        .unwrap()
                        == 1
                }
                None => false,
            };
            let recorded = copy_seen_once
                || exists(
                    &pool,
                    "SELECT EXISTS (SELECT 1 FROM inbox WHERE topic = $1 AND partition = $2 AND \"offset\" = $3)",
                    at,
                )
                .await
                || exists(
                    &pool,
                    "SELECT EXISTS (SELECT 1 FROM parked WHERE topic = $1 AND partition = $2 AND \"offset\" = $3)",
                    at,
                )
                .await;
            assert!(recorded, "{service}: bad message {class} at {topic}/{partition}/{offset} left no record");
        }
        let skipped: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbox WHERE skipped").fetch_one(&pool).await.unwrap();
        assert_eq!(skipped, 2 * i64::try_from(consumed.len()).unwrap(), "{service}: the unknown types, recorded");
        let report = probe.report(&pool, &group, &dead_letters).await.unwrap();
        assert!(report.dead_letters > 0, "{service}: its dead letters reached its dead-letter topic");
    }
    // The forged order reserved nothing: the stock is what the real orders took.
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "MUG".into() }).await.unwrap().into_inner();
    let shipped = 1 + i64::try_from(placed.len()).unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (100 - shipped, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_later_events_wait_behind_its_own_dead_letter_until_an_operator_discards_it() {
    let mut stack = Stack::start_with_fulfillment(fulfillment_service::Fulfillment::manual()).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let mut place = async |customer: &str| {
        let placed = stack.orders.place_order(order_request(customer, &[("MUG", 1)])).await.unwrap();
        placed.into_inner().order.unwrap().order_id
    };
    let (held, other) = (place("c-held").await, place("c-other").await);
    for order_id in [&held, &other] {
        stack.wait_for_status(order_id, OrderStatus::Reserved).await;
    }
    let fulfillment = stack.fulfillment.clone();
    testing::wait_until("both orders are on the pick list", Duration::from_secs(30), || {
        let mut fulfillment = fulfillment.clone();
        async move {
            let tasks = fulfillment.list_pick_tasks(ListPickTasksRequest { page_size: 10 }).await.ok()?.into_inner();
            (tasks.tasks.len() == 2).then_some(())
        }
    })
    .await;

    // An event of the held order, on its topic from its owner, that order-service cannot store
    // (the carrier holds a NUL).
    let topics = Topics::new(&stack.namespace);
    let shipping_topic = topics.name(Topic::Shipping);
    let label = Labelled { carrier: "DP\0".into(), ..Default::default() };
    let refused = EventEnvelope { producer: "shipping-service".into(), ..forged(&held, Payload::Labelled(label)) };
    testing::send_from_outside(&shipping_topic, held.as_bytes(), &[], Some(&refused.encode_to_vec())).await;
    let dead_letters = [topics.dead_letter(order_service::SERVICE)];
    let dead = testing::wait_until("order-service dead-letters it", Duration::from_secs(30), || async {
        events::read_to_end(&testing::brokers(), &dead_letters).await.ok()?.into_iter().next()
    })
    .await;
    assert!(dead.headers[dlq::ERROR].contains("0x00"), "{:?}", dead.headers);

    // Both orders are picked; the other one moves on, the held one's Picked waits.
    for order_id in [&held, &other] {
        stack.fulfillment.confirm_pick(ConfirmPickRequest { order_id: order_id.clone() }).await.unwrap();
    }
    stack.wait_for_status(&other, OrderStatus::Picked).await;
    let database = pool(&stack.order_database).await;
    testing::wait_until("the held order's Picked waits behind its dead letter", Duration::from_secs(30), || async {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM parked WHERE NOT dead").fetch_one(&database).await.ok()?;
        (waiting == 1).then_some(())
    })
    .await;
    let waiting = stack.orders.get_order(GetOrderRequest { order_id: held.clone() }).await.unwrap().into_inner();
    assert_eq!(waiting.order.unwrap().status(), OrderStatus::Reserved, "Picked waits behind the dead letter");

    // The operator discards the dead letter (what `orderctl dlq discard` sends): Picked applies.
    dlq::answer(&testing::brokers(), &dead, dlq::Action::Discard).await.unwrap();
    let picked = stack.wait_for_status(&held, OrderStatus::Picked).await;
    assert_eq!(event_types(&picked), ["OrderPlaced", "PaymentAuthorized", "StockReserved", "Picked"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_carrier_takes_ends_rejected_with_its_stock_released() {
    let mut stack = Stack::start().await;
    stack.stock_product("ANVIL", "B-01", 40_000, 100).await;
    let mut to_the_us = order_request("c-anvil", &[("ANVIL", 1)]);
    to_the_us.shipping_address.as_mut().unwrap().country = "US".into();
    let one = stack.orders.place_order(to_the_us.clone()).await.unwrap().into_inner().order.unwrap();
    to_the_us.lines[0].quantity = 30;
    let thirty = stack.orders.place_order(to_the_us).await.unwrap().into_inner().order.unwrap();

    stack.wait_for_status(&one.order_id, OrderStatus::Rejected).await;
    let orders = stack.orders.clone();
    let rejected = testing::wait_until("its stock is released", Duration::from_secs(30), || {
        let (mut orders, order_id) = (orders.clone(), one.order_id.clone());
        async move {
            let order = orders.get_order(GetOrderRequest { order_id }).await.ok()?.into_inner().order?;
            event_types(&order).contains(&"StockReleased").then_some(order)
        }
    })
    .await;
    assert!(rejected.rejection_reason.contains("no carrier"), "{}", rejected.rejection_reason);
    let rejected = stack.wait_for_payment(&rejected.order_id, PaymentStatus::Voided).await;
    let refused = ["ShipmentRejected", "StockReleased", "PaymentVoided"];
    assert_eq!(event_types(&rejected), [&SHIPPED_AND_CAPTURED[..7], &refused].concat());
    let too_heavy = stack.wait_for_status(&thirty.order_id, OrderStatus::Rejected).await;
    assert!(too_heavy.rejection_reason.starts_with("too heavy to ship"), "{}", too_heavy.rejection_reason);
    let stock = stack.inventory.get_stock(GetStockRequest { sku: "ANVIL".into() }).await.unwrap().into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (100, 0), "nothing is held for orders that will not ship");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_size_limit_or_with_unstorable_text_get_clear_errors() {
    let mut stack = Stack::start().await;
    let mut huge = order_request("c-huge", &[("MUG", 1)]);
    huge.customer.as_mut().unwrap().name = "x".repeat(5 * 1024 * 1024);
    let refused = stack.orders.place_order(huge).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let mut nul = order_request("c-nul", &[("MUG", 1)]);
    nul.shipping_address.as_mut().unwrap().city = "Ber\0lin".into();
    let refused = stack.orders.place_order(nul).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().starts_with("shipping_address.city: "), "{}", refused.message());
}
