//! Unit tests of the chaos invariants, over hand-made topics and tables.

use super::*;
use orderflow_proto::events::v1::{
    Labelled, OrderCancelled, OrderPlaced, Packed, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided,
    Picked, ReservedLine, ShipmentRequested, Shipped, Sorted, StockRejected, StockReleased, StockReserved,
    StockRestocked,
};

/// The topic each event type goes to, as the services publish them.
fn topic_of(event_type: &str) -> &'static str {
    match event_type {
        "OrderPlaced" | "OrderCancelled" | "ShipmentRequested" => "t.orders",
        t if t.starts_with("Payment") => "t.orders",
        "StockReserved" | "StockRejected" | "StockReleased" | "StockRestocked" => "t.inventory",
        "Picked" | "Sorted" | "Packed" => "t.fulfillment",
        _ => "t.shipping",
    }
}

fn payload(event_type: &str, lines: &[(&str, i32)]) -> Payload {
    let reserved = || StockReserved {
        lines: lines
            .iter()
            .map(|(sku, quantity)| ReservedLine { sku: (*sku).into(), quantity: *quantity, ..Default::default() })
            .collect(),
        ..Default::default()
    };
    match event_type {
        "OrderPlaced" => Payload::OrderPlaced(OrderPlaced::default()),
        "StockReserved" => Payload::StockReserved(reserved()),
        "StockRejected" => Payload::StockRejected(StockRejected::default()),
        "StockReleased" => Payload::StockReleased(StockReleased::default()),
        "Picked" => Payload::Picked(Picked::default()),
        "Sorted" => Payload::Sorted(Sorted::default()),
        "Packed" => Payload::Packed(Packed::default()),
        "ShipmentRequested" => Payload::ShipmentRequested(ShipmentRequested::default()),
        "Labelled" => Payload::Labelled(Labelled::default()),
        "Shipped" => Payload::Shipped(Shipped::default()),
        "OrderCancelled" => Payload::OrderCancelled(OrderCancelled::default()),
        "PaymentAuthorized" => Payload::PaymentAuthorized(PaymentAuthorized::default()),
        "PaymentDeclined" => Payload::PaymentDeclined(PaymentDeclined::default()),
        "PaymentCaptured" => Payload::PaymentCaptured(PaymentCaptured::default()),
        "PaymentVoided" => Payload::PaymentVoided(PaymentVoided::default()),
        other => panic!("no payload for {other}"),
    }
}

/// An order's chain of events, each caused by the one before, a second apart, at increasing
/// offsets of their topics.
fn chain(order: &str, types: &[&str]) -> Vec<Read> {
    let mut cause = String::new();
    types
        .iter()
        .enumerate()
        .map(|(i, event_type)| {
            let id = format!("{order}-{i}");
            let envelope = EventEnvelope {
                event_id: id.clone(),
                event_type: (*event_type).into(),
                order_id: order.into(),
                occurred_at: Some(prost_types::Timestamp { seconds: 1_000 + i as i64, nanos: 0 }),
                causation_id: std::mem::replace(&mut cause, id),
                payload: Some(payload(event_type, &[("A", 3)])),
                ..Default::default()
            };
            read(topic_of(event_type), i as i64, envelope)
        })
        .collect()
}

fn read(topic: &str, offset: i64, envelope: EventEnvelope) -> Read {
    Read {
        topic: topic.into(),
        partition: 0,
        offset,
        key: None,
        payload: Vec::new(),
        headers: BTreeMap::new(),
        envelope: Ok(envelope),
    }
}

const SHIPPED: &[&str] = &envelope::SHIPPED_FLOW;

/// `check_order` of one order's reads, with the findings.
fn judge(status: Option<&str>, reads: &[Read]) -> Findings {
    let mut findings = Findings::default();
    let by_order = events_by_order(reads, &mut findings);
    for (order_id, events) in &by_order {
        check_order(order_id, status, events, &mut findings);
    }
    findings
}

fn examples(findings: &Findings) -> Vec<String> {
    findings.example_lines().collect()
}

#[test]
fn a_shipped_order_holds_every_invariant() {
    let findings = judge(Some("SHIPPED"), &chain("o1", SHIPPED));
    assert!(findings.passed(), "{:?}", examples(&findings));
    for (status, types) in [
        ("REJECTED", &["OrderPlaced", "PaymentAuthorized", "StockRejected", "PaymentVoided"][..]),
        ("REJECTED", &["OrderPlaced", "PaymentDeclined"][..]),
        (
            "CANCELLED",
            &["OrderPlaced", "PaymentAuthorized", "StockReserved", "OrderCancelled", "StockReleased", "PaymentVoided"]
                [..],
        ),
        ("CANCELLED", &["OrderPlaced", "OrderCancelled", "PaymentVoided"][..]),
    ] {
        let findings = judge(Some(status), &chain("o1", types));
        assert!(findings.passed(), "{status} {types:?}: {:?}", examples(&findings));
    }
}

#[test]
fn a_second_copy_of_an_event_is_harmless_but_a_second_decision_is_duplicated() {
    let mut reads = chain("o1", SHIPPED);
    let mut copy = reads[1].clone();
    copy.offset = 99;
    reads.push(copy);
    assert!(judge(Some("SHIPPED"), &reads).passed(), "the outbox publishes at least once");

    let mut again = reads[8].clone();
    again.envelope.as_mut().unwrap().event_id = "o1-shipped-again".into();
    again.offset = 100;
    reads.push(again);
    let findings = judge(Some("SHIPPED"), &reads);
    assert_eq!(findings.duplicated, 1);
    assert_eq!(examples(&findings), ["  duplicated: order o1: 2 distinct Shipped events"]);
}

#[test]
fn an_order_without_the_events_its_status_needs_is_lost() {
    let reads: Vec<Read> = chain("o1", SHIPPED).into_iter().filter(|r| r.offset != 5).collect();
    let findings = judge(Some("SHIPPED"), &reads);
    assert!(examples(&findings).contains(&"  lost: order o1 is SHIPPED without Packed".to_owned()));
    assert!(
        examples(&findings).contains(&"  lost: order o1: the cause of ShipmentRequested is in no topic".to_owned())
    );
    let findings = judge(None, &chain("o2", &["OrderPlaced"]));
    assert_eq!(examples(&findings), ["  lost: order o2 has events but is not in order-service"]);
}

#[test]
fn an_effect_before_its_cause_is_out_of_order() {
    // In time: Picked stamped before the reservation that caused it.
    let mut reads = chain("o1", SHIPPED);
    reads[3].envelope.as_mut().unwrap().occurred_at = Some(prost_types::Timestamp { seconds: 10, nanos: 0 });
    let findings = judge(Some("SHIPPED"), &reads);
    assert_eq!(findings.out_of_order, 1, "{:?}", examples(&findings));
    assert_eq!(examples(&findings), ["  out-of-order: order o1: StockReserved caused Picked"]);

    // In its topic: Sorted before Picked in the fulfillment topic.
    let mut reads = chain("o1", SHIPPED);
    reads[4].offset = 1;
    assert_eq!(judge(Some("SHIPPED"), &reads).out_of_order, 1);

    // A rejection of stock that was reserved.
    let rejected = ["OrderPlaced", "PaymentAuthorized", "StockReserved", "StockRejected"];
    let findings = judge(Some("REJECTED"), &chain("o1", &rejected));
    assert!(examples(&findings).contains(&"  out-of-order: order o1 was rejected after its stock was reserved".into()));
}

#[test]
fn a_cancelled_order_is_never_shipped_and_always_released() {
    let types = [&SHIPPED[..7], &["OrderCancelled"]].concat();
    let findings = judge(Some("CANCELLED"), &chain("o1", &types));
    assert!(findings.failed.contains("not-shipped-after-cancel"));
    let unreleased = ["OrderPlaced", "PaymentAuthorized", "StockReserved", "OrderCancelled"];
    let findings = judge(Some("CANCELLED"), &chain("o1", &unreleased));
    assert_eq!(findings.failed.iter().copied().collect::<Vec<_>>(), ["compensated"]);
    let unpaid =
        judge(Some("CANCELLED"), &chain("o1", &["OrderPlaced", "StockReserved", "OrderCancelled", "StockReleased"]));
    assert_eq!(unpaid.failed.iter().copied().collect::<Vec<_>>(), ["reserved-paid"]);
}

#[test]
fn events_by_order_skips_answers_stock_events_and_notes_what_it_cannot_decode() {
    let mut reads = chain("o1", &["OrderPlaced"]);
    let mut answer = reads[0].clone();
    answer.headers.insert(dlq::ACTION.into(), "redrive".into());
    answer.envelope.as_mut().unwrap().event_id = "answer".into();
    let restock = EventEnvelope { event_id: "r1".into(), event_type: "StockRestocked".into(), ..Default::default() };
    let mut broken = read("t.orders", 7, EventEnvelope::default());
    broken.envelope = Err("invalid wire type".into());
    reads.extend([answer, read("t.inventory", 3, restock), broken]);
    let mut findings = Findings::default();
    let by_order = events_by_order(&reads, &mut findings);
    assert_eq!(by_order.keys().collect::<Vec<_>>(), ["o1"]);
    assert_eq!(by_order["o1"].len(), 1);
    assert_eq!(examples(&findings), ["  decodable: t.orders@7: invalid wire type"]);
}

#[test]
fn every_acknowledged_and_held_order_ended() {
    let statuses: HashMap<String, String> =
        [("a", "SHIPPED"), ("b", "DELIVERED"), ("c", "CANCELLED"), ("d", "RESERVED")]
            .map(|(id, status)| (id.to_owned(), status.to_owned()))
            .into();
    let mut findings = Findings::default();
    let ended = check_ended(&["a".into(), "b".into(), "x".into()], &statuses, &mut findings);
    assert_eq!(ended, BTreeMap::from([("SHIPPED", 1), ("DELIVERED", 1), ("CANCELLED", 1)]));
    assert_eq!(findings.lost, 2);
    let mut lines = examples(&findings);
    lines.sort();
    assert_eq!(lines, ["  lost: acknowledged order x is not in order-service", "  lost: order d stopped at RESERVED"]);
}

#[test]
fn the_timeline_holds_each_event_exactly_once() {
    let mut findings = Findings::default();
    let by_order = events_by_order(&chain("o1", &["OrderPlaced", "StockRejected"]), &mut findings);
    let row = |order: &str, id: &str, event_type: &str| (order.to_owned(), id.to_owned(), event_type.to_owned());
    check_timelines(
        vec![row("o1", "o1-0", "OrderPlaced"), row("o1", "o1-1", "StockRejected")],
        &by_order,
        &mut findings,
    );
    assert!(findings.passed());

    let rows =
        vec![row("o1", "o1-0", "OrderPlaced"), row("o1", "other", "OrderPlaced"), row("o9", "o9-0", "OrderPlaced")];
    check_timelines(rows, &by_order, &mut findings);
    let mut lines = examples(&findings);
    lines.sort();
    assert_eq!(
        lines,
        [
            "  duplicated: order o1: timeline shows OrderPlaced 2 times",
            "  lost: order o1: StockRejected missing from its timeline",
            "  lost: order o9: 1 timeline entries that no topic holds",
        ]
    );
}

#[test]
fn every_consumed_event_is_in_the_inbox() {
    let mut reads = chain("o1", &["OrderPlaced", "StockReserved"]);
    reads.push(reads[0].clone());
    let consumed = HashSet::from(["t.orders".to_owned()]);
    let mut findings = Findings::default();
    check_inbox("inventory-service", &consumed, &HashSet::from(["o1-0".to_owned()]), &reads, &mut findings);
    assert!(findings.passed(), "the reservation is not on a topic it consumes");
    check_inbox("inventory-service", &consumed, &HashSet::new(), &reads, &mut findings);
    assert_eq!(examples(&findings), ["  lost: inventory-service never applied OrderPlaced o1-0"], "once per event");
}

#[test]
fn stock_balances_with_restocks_and_shipments() {
    let restock = |id: &str, quantity| EventEnvelope {
        event_id: id.into(),
        event_type: "StockRestocked".into(),
        payload: Some(Payload::StockRestocked(StockRestocked { sku: "A".into(), quantity, ..Default::default() })),
        ..Default::default()
    };
    let mut reads = chain("shipped", SHIPPED);
    reads.extend(chain("cancelled", &["OrderPlaced", "StockReserved", "OrderCancelled", "StockReleased"]));
    reads.extend([read("t.inventory", 50, restock("r1", 10)), read("t.inventory", 51, restock("r1", 10))]);
    reads.push(read("t.inventory", 52, restock("r2", 5)));
    let stock = |reservations: Vec<(String, Vec<u8>)>, products: Vec<(String, i64, i64)>| {
        let mut findings = Findings::default();
        let by_order = events_by_order(&reads, &mut findings);
        check_stock(&reads, &by_order, reservations, products, &mut findings);
        findings
    };
    // 10 + 5 restocked (r1 read twice counts once), 3 shipped: 12 on hand.
    assert!(stock(vec![], vec![("A".into(), 12, 0)]).passed());
    let findings = stock(vec![], vec![("A".into(), 15, 0)]);
    assert_eq!(examples(&findings), ["  stock-balances: A: on hand 15, restocked - shipped = 12"]);

    let decision = EventEnvelope { payload: Some(payload("StockReserved", &[("A", 2)])), ..Default::default() };
    let findings = stock(vec![("open".into(), decision.encode_to_vec())], vec![("A".into(), 12, 2)]);
    assert_eq!(findings.failed.iter().copied().collect::<Vec<_>>(), ["reservations-closed"], "reserved = held");
    let findings = stock(vec![], vec![("A".into(), 12, 2), ("B".into(), -1, 0)]);
    assert_eq!(
        examples(&findings),
        [
            "  stock-balances: A: reserved 2, open reservations hold 0",
            "  stock-balances: B: on hand -1, restocked - shipped = 0",
            "  stock-non-negative: B: on hand -1, reserved 0",
        ]
    );
}

#[test]
fn faults_outboxes_and_dead_letters_fail_their_invariants() {
    let mut findings = Findings::default();
    check_faults(0, 0, &Ok(()), &mut findings);
    check_outbox("order-service", 0, &mut findings);
    check_dead_letters(&[], &mut findings);
    assert!(findings.passed());
    check_faults(1, 2, &Err("not quiet after 300s: 3 orders not ended".into()), &mut findings);
    check_outbox("order-service", 4, &mut findings);
    let mut letter = read("t.inventory.dlq", 5, EventEnvelope::default());
    letter.headers.insert("dlq.error".into(), "boom".into());
    check_dead_letters(&[letter], &mut findings);
    assert_eq!(
        findings.failed.iter().copied().collect::<Vec<_>>(),
        ["dead-letters", "health", "outbox", "quiet", "stayed-up"]
    );
    assert!(examples(&findings).contains(&"  dead-letters: t.inventory.dlq @5: Some(\"boom\")".to_owned()));
}
