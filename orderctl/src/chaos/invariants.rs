//! The invariants of a chaos run, as pure functions over what `chaos check` read from the
//! services' databases and the topics; each notes what it finds wrong in [`Findings`].

use super::findings::Findings;
use orderflow_kit::events::Read;
use orderflow_kit::{dlq, envelope};
use orderflow_proto::events::v1::EventEnvelope;
use orderflow_proto::events::v1::event_envelope::Payload;
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet};

#[cfg(test)]
mod tests;

/// The statuses an order can stay in: the automatic pipeline ends at SHIPPED (delivery waits
/// for a carrier's scan); an ON_HOLD order is not ended (a restock serves it, or it expires).
pub const ENDED: [&str; 4] = ["SHIPPED", "DELIVERED", "REJECTED", "CANCELLED"];

/// Where each event type sits in an order's causal chain; a cause always sits before its
/// effect. The cancel branch (a command, then the release it causes) comes last, the void after
/// everything it may follow.
fn rank(event_type: &str) -> Option<u8> {
    Some(match event_type {
        "OrderPlaced" => 1,
        "PaymentAuthorized" | "PaymentDeclined" => 2,
        "StockHeld" | "StockReserved" | "StockRejected" => 3,
        "Picked" => 4,
        "Sorted" => 5,
        "Packed" => 6,
        "ShipmentRequested" => 7,
        "Labelled" => 8,
        "Shipped" => 9,
        "PaymentCaptured" | "Delivered" | "Returned" => 10,
        "OrderCancelled" => 11,
        "StockReleased" => 12,
        "PaymentVoided" => 13,
        _ => return None,
    })
}

/// One event of an order as the topics hold it (its first copy, if published twice).
#[derive(Debug, Clone)]
pub struct Seen {
    pub envelope: EventEnvelope,
    pub topic: String,
    pub offset: i64,
}

/// The events of each order, by order id.
pub type ByOrder = BTreeMap<String, Vec<Seen>>;

/// The faults the script saw: a service that exited by itself, a health expectation missed,
/// and whether the stack went quiet.
pub fn check_faults(crashes: u64, health_misses: u64, quiet: &Result<(), String>, findings: &mut Findings) {
    if crashes > 0 {
        findings.fail("stayed-up", format!("{crashes} service processes exited by themselves"));
    }
    if health_misses > 0 {
        findings.fail("health", format!("{health_misses} health expectations missed"));
    }
    if let Err(why) = quiet {
        findings.fail("quiet", why.clone());
    }
}

/// Every acknowledged order, and every order order-service holds (`statuses`), reached an end;
/// the count of each end.
pub fn check_ended(
    acknowledged: &[String],
    statuses: &HashMap<String, String>,
    findings: &mut Findings,
) -> BTreeMap<&'static str, u64> {
    let mut ended = BTreeMap::<&'static str, u64>::new();
    for order_id in acknowledged {
        if !statuses.contains_key(order_id) {
            findings.lost(format!("acknowledged order {order_id} is not in order-service"));
        }
    }
    for (order_id, status) in statuses {
        match ENDED.iter().find(|s| *s == status) {
            Some(end) => *ended.entry(end).or_default() += 1,
            None => findings.lost(format!("order {order_id} stopped at {status}")),
        }
    }
    ended
}

/// The events of each order, deduplicated by event id (the first copy kept): the outbox
/// publishes at least once, so a second copy of the same event is expected and harmless.
pub fn events_by_order(reads: &[Read], findings: &mut Findings) -> ByOrder {
    let mut first: HashSet<String> = HashSet::new();
    let mut by_order: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for read in reads.iter().filter(|r| !r.headers.contains_key(dlq::ACTION)) {
        let envelope = match &read.envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                findings.fail("decodable", format!("{}@{}: {error}", read.topic, read.offset));
                continue;
            }
        };
        if envelope.order_id.is_empty() || !first.insert(envelope.event_id.clone()) {
            continue;
        }
        by_order.entry(envelope.order_id.clone()).or_default().push(Seen {
            envelope: envelope.clone(),
            topic: read.topic.clone(),
            offset: read.offset,
        });
    }
    by_order
}

/// One order's events: each decided once, the shape its status calls for, and every cause
/// before its effect (in rank, in time, and in its topic).
pub fn check_order(order_id: &str, status: Option<&str>, events: &[Seen], findings: &mut Findings) {
    let mut count: BTreeMap<&str, u64> = BTreeMap::new();
    for seen in events {
        *count.entry(seen.envelope.event_type.as_str()).or_default() += 1;
    }
    for (event_type, n) in &count {
        if *n > 1 && rank(event_type).is_some() {
            findings.duplicated(format!("order {order_id}: {n} distinct {event_type} events"));
        }
    }
    let has = |t: &str| count.contains_key(t);
    let Some(status) = status else {
        findings.lost(format!("order {order_id} has events but is not in order-service"));
        return;
    };
    let expected: &[&str] = match status {
        "SHIPPED" | "DELIVERED" => &envelope::SHIPPED_FLOW,
        "REJECTED" => &["OrderPlaced"],
        "CANCELLED" => &["OrderPlaced", "OrderCancelled"],
        _ => &[],
    };
    for event_type in expected {
        if !has(event_type) {
            findings.lost(format!("order {order_id} is {status} without {event_type}"));
        }
    }
    if status == "REJECTED" && !(has("StockRejected") || has("PaymentDeclined") || has("ShipmentRejected")) {
        findings.lost(format!("order {order_id} is REJECTED without the rejection"));
    }
    if has("StockReserved") && !has("PaymentAuthorized") {
        findings.fail("reserved-paid", format!("order {order_id}: stock reserved without an authorised payment"));
    }
    if has("OrderCancelled") && (has("ShipmentRequested") || has("Labelled") || has("Shipped")) {
        findings.fail("not-shipped-after-cancel", format!("order {order_id} was cancelled and shipped"));
    }
    if status == "CANCELLED" && count.get("StockReserved") != count.get("StockReleased") {
        findings.fail("compensated", format!("order {order_id} cancelled with its reservation not released"));
    }
    if status == "REJECTED" && (has("Picked") || has("StockReserved")) {
        findings.out_of_order(format!("order {order_id} was rejected after its stock was reserved"));
    }
    let by_id: HashMap<&str, &Seen> = events.iter().map(|s| (s.envelope.event_id.as_str(), s)).collect();
    for effect in events {
        let cause_id = effect.envelope.causation_id.as_str();
        if cause_id.is_empty() || rank(&effect.envelope.event_type).is_none() {
            continue;
        }
        let Some(cause) = by_id.get(cause_id) else {
            findings.lost(format!("order {order_id}: the cause of {} is in no topic", effect.envelope.event_type));
            continue;
        };
        let (c, e) = (&cause.envelope, &effect.envelope);
        let (Some(cause_rank), Some(effect_rank)) = (rank(&c.event_type), rank(&e.event_type)) else {
            continue;
        };
        let ranked = cause_rank < effect_rank;
        let timed = envelope::occurred_at(c) <= envelope::occurred_at(e);
        let placed = cause.topic != effect.topic || cause.offset < effect.offset;
        if !(ranked && timed && placed) {
            findings.out_of_order(format!("order {order_id}: {} caused {}", c.event_type, e.event_type));
        }
    }
}

/// order-service's timeline of each order (`rows`: order id, event id, event type) holds each of
/// its events exactly once.
pub fn check_timelines(rows: Vec<(String, String, String)>, by_order: &ByOrder, findings: &mut Findings) {
    let mut timelines: HashMap<String, HashMap<String, String>> = HashMap::new();
    for (order_id, event_id, event_type) in rows {
        timelines.entry(order_id).or_default().insert(event_id, event_type);
    }
    for (order_id, events) in by_order {
        let timeline = timelines.remove(order_id).unwrap_or_default();
        let mut types: BTreeMap<&str, u64> = BTreeMap::new();
        for event_type in timeline.values() {
            *types.entry(event_type).or_default() += 1;
        }
        for (event_type, n) in types {
            if n > 1 {
                findings.duplicated(format!("order {order_id}: timeline shows {event_type} {n} times"));
            }
        }
        for seen in events.iter().filter(|s| rank(&s.envelope.event_type).is_some()) {
            if !timeline.contains_key(&seen.envelope.event_id) {
                findings.lost(format!("order {order_id}: {} missing from its timeline", seen.envelope.event_type));
            }
        }
    }
    for (order_id, timeline) in timelines {
        findings.lost(format!("order {order_id}: {} timeline entries that no topic holds", timeline.len()));
    }
}

/// Every event of every topic a service consumes (`consumed`) is in its inbox (`inbox`: event
/// ids, each once).
pub fn check_inbox(
    service: &str,
    consumed: &HashSet<String>,
    inbox: &HashSet<String>,
    reads: &[Read],
    findings: &mut Findings,
) {
    let mut missing: HashSet<&str> = HashSet::new();
    for read in reads.iter().filter(|r| consumed.contains(&r.topic)) {
        if let Ok(envelope) = &read.envelope
            && !inbox.contains(&envelope.event_id)
            && missing.insert(&envelope.event_id)
        {
            findings.lost(format!("{service} never applied {} {}", envelope.event_type, envelope.event_id));
        }
    }
}

/// A service's outbox (`rows` left in it) is drained.
pub fn check_outbox(service: &str, rows: i64, findings: &mut Findings) {
    if rows > 0 {
        findings.fail("outbox", format!("{service}'s outbox still holds {rows} rows"));
    }
}

/// Nothing was dead-lettered (`dead`: what the dead-letter topics hold).
pub fn check_dead_letters(dead: &[Read], findings: &mut Findings) {
    for letter in dead {
        findings.fail(
            "dead-letters",
            format!("{} @{}: {:?}", letter.topic, letter.offset, letter.headers.get("dlq.error")),
        );
    }
}

/// Per SKU: restocked − shipped = on hand; reserved = the open reservations; nothing negative;
/// and once every order has ended, no reservation is still open. `reservations` are the open
/// ones (order id, the StockReserved envelope decided), `products` each SKU's on hand and
/// reserved.
pub fn check_stock(
    reads: &[Read],
    by_order: &ByOrder,
    reservations: Vec<(String, Vec<u8>)>,
    products: Vec<(String, i64, i64)>,
    findings: &mut Findings,
) {
    let mut expected_on_hand: BTreeMap<String, i64> = BTreeMap::new();
    let mut restocked: HashSet<&str> = HashSet::new();
    for read in reads {
        if let Ok(EventEnvelope { payload: Some(Payload::StockRestocked(r)), event_id, .. }) = &read.envelope
            && restocked.insert(event_id)
        {
            *expected_on_hand.entry(r.sku.clone()).or_default() += r.quantity;
        }
    }
    for events in by_order.values() {
        if !events.iter().any(|s| matches!(s.envelope.payload, Some(Payload::Shipped(_)))) {
            continue;
        }
        for seen in events {
            if let Some(Payload::StockReserved(reserved)) = &seen.envelope.payload {
                for line in &reserved.lines {
                    *expected_on_hand.entry(line.sku.clone()).or_default() -= i64::from(line.quantity);
                }
            }
        }
    }
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    for (order_id, decision) in reservations {
        findings.fail("reservations-closed", format!("order {order_id} still holds a reservation"));
        if let Ok(EventEnvelope { payload: Some(Payload::StockReserved(reserved)), .. }) =
            EventEnvelope::decode(decision.as_slice())
        {
            for line in reserved.lines {
                *open.entry(line.sku).or_default() += i64::from(line.quantity);
            }
        }
    }
    for (sku, on_hand, reserved) in products {
        let expected = expected_on_hand.get(&sku).copied().unwrap_or(0);
        if on_hand != expected {
            findings.fail("stock-balances", format!("{sku}: on hand {on_hand}, restocked - shipped = {expected}"));
        }
        let held = open.get(&sku).copied().unwrap_or(0);
        if reserved != held {
            findings.fail("stock-balances", format!("{sku}: reserved {reserved}, open reservations hold {held}"));
        }
        if on_hand < 0 || reserved < 0 || reserved > on_hand {
            findings.fail("stock-non-negative", format!("{sku}: on hand {on_hand}, reserved {reserved}"));
        }
    }
}
