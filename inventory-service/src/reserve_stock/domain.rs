//! Deciding a reservation: all lines or none; an order that allows a backorder and is short of
//! stock only (every SKU known, the parcel shippable) is held instead of rejected. Pure: the
//! caller has locked the stock rows and passes their levels in.

use orderflow_kit::decider::Decider;
use orderflow_kit::types::{MAX_PARCEL_GRAMS, contents_grams, order_lines};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderPlaced, ReservedLine, StockHeld, StockRejected, StockReserved};
use std::collections::HashMap;

/// One product's stock as locked for this decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    pub on_hand: i64,
    pub reserved: i64,
    /// Units held orders wait for: a new order is served only from stock beyond them, so it
    /// never overtakes an order that was waiting first.
    pub awaited: i64,
    pub bin_location: String,
    pub weight_grams: u32,
}

impl Stock {
    /// What a new order may reserve: on hand, less reserved, less what held orders await.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved - self.awaited
    }
}

/// The locked stock of an order's SKUs, by SKU.
pub type Levels = HashMap<String, Stock>;

/// OrderPlaced → StockReserved | StockHeld | StockRejected: all are outcomes the flow announces,
/// so the decision is never refused. (StockHeld's expiry is the adapter's to set.)
pub struct ReserveStock;

impl Decider for ReserveStock {
    type State = Levels;
    type Command = OrderPlaced;
    type Event = Payload;
    type Rejection = std::convert::Infallible;

    fn decide(levels: &Levels, order: &OrderPlaced) -> Result<Vec<Payload>, Self::Rejection> {
        Ok(vec![decide(order, levels)])
    }

    /// A reservation holds its units, and a hold awaits them: either way they are no longer
    /// available to the next order.
    fn evolve(mut levels: Levels, event: &Payload) -> Levels {
        let (lines, held) = match event {
            Payload::StockReserved(reserved) => (&reserved.lines, false),
            Payload::StockHeld(awaiting) => (&awaiting.awaited, true),
            _ => return levels,
        };
        for line in lines {
            if let Some(level) = levels.get_mut(&line.sku) {
                let units = if held { &mut level.awaited } else { &mut level.reserved };
                *units += i64::from(line.quantity);
            }
        }
        levels
    }
}

/// Reserves every line of `order` if every SKU is known and has enough available stock and the
/// parcel is one a carrier takes; holds it if stock alone is short and it allows a backorder;
/// otherwise rejects it, naming each SKU that failed and why.
fn decide(order: &OrderPlaced, stock: &Levels) -> Payload {
    // Checked again here: any producer can write an OrderPlaced (a line twice, or a negative
    // quantity, would reserve what is not there).
    let ordered = match order_lines(&order.lines) {
        Ok(lines) => lines,
        Err(error) => {
            return Payload::StockRejected(StockRejected { reason: format!("invalid order: {error}"), skus: vec![] });
        }
    };
    let (mut unknown, mut short) = (Vec::new(), Vec::new());
    let mut lines = Vec::with_capacity(ordered.len());
    for line in &ordered {
        let (sku, quantity) = (line.sku.to_string(), line.quantity.get());
        let Some(level) = stock.get(&sku) else {
            unknown.push(sku);
            continue;
        };
        if level.available() < i64::from(quantity) {
            short.push((sku.clone(), quantity, level.available().max(0)));
        }
        lines.push(ReservedLine {
            sku,
            quantity,
            bin_location: level.bin_location.clone(),
            unit_weight_grams: level.weight_grams,
        });
    }
    let reject = |reason: String, skus: Vec<String>| Payload::StockRejected(StockRejected { reason, skus });
    let short_text = |short: &[(String, i32, i64)]| {
        short
            .iter()
            .map(|(sku, n, available)| format!("{sku} (requested {n}, available {available})"))
            .collect::<Vec<_>>()
    };
    if !unknown.is_empty() {
        let mut problems: Vec<String> = unknown.iter().map(|sku| format!("unknown SKU {sku}")).collect();
        problems.extend(short_text(&short).into_iter().map(|s| format!("out of stock: {s}")));
        let mut skus = unknown;
        skus.extend(short.into_iter().map(|(sku, ..)| sku));
        return reject(problems.join("; "), skus);
    }
    let grams = contents_grams(&lines);
    if grams > u64::from(MAX_PARCEL_GRAMS) {
        let reason =
            format!("too heavy to ship: the contents weigh {grams} g, no carrier takes more than {MAX_PARCEL_GRAMS} g");
        return reject(reason, lines.iter().map(|l| l.sku.clone()).collect());
    }
    if short.is_empty() {
        return Payload::StockReserved(StockReserved {
            lines,
            shipping_address: order.shipping_address.clone(),
            service_level: order.service_level,
        });
    }
    let skus: Vec<String> = short.iter().map(|(sku, ..)| sku.clone()).collect();
    if order.allow_backorder {
        let awaited: Vec<String> =
            short.iter().map(|(sku, n, available)| format!("{sku} x{n} ({available} available)")).collect();
        return Payload::StockHeld(StockHeld {
            reason: format!("awaiting {}", awaited.join(", ")),
            skus,
            expires_at: None,
            awaited: lines,
        });
    }
    let problems: Vec<String> = short_text(&short).into_iter().map(|s| format!("out of stock: {s}")).collect();
    reject(problems.join("; "), skus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::common::v1::OrderLine;

    fn stock(on_hand: i64, reserved: i64) -> Stock {
        Stock { on_hand, reserved, awaited: 0, bin_location: "A-01".into(), weight_grams: 300 }
    }

    /// What the decider decides for `order`: reserved, held or rejected.
    enum Decision {
        Reserved(StockReserved),
        Held(StockHeld),
        Rejected(StockRejected),
    }

    fn decide(order: &OrderPlaced, levels: &Levels) -> Decision {
        let Ok(mut events) = ReserveStock::decide(levels, order);
        match events.pop() {
            Some(Payload::StockReserved(reserved)) => Decision::Reserved(reserved),
            Some(Payload::StockRejected(rejected)) => Decision::Rejected(rejected),
            Some(Payload::StockHeld(held)) => Decision::Held(held),
            other => panic!("decided {other:?}"),
        }
    }

    fn order(lines: &[(&str, i32)]) -> OrderPlaced {
        OrderPlaced {
            lines: lines
                .iter()
                .map(|(sku, quantity)| OrderLine { sku: (*sku).into(), quantity: *quantity, unit_price: None })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reserves_every_line_when_all_are_available() {
        let levels = HashMap::from([("MUG".to_owned(), stock(5, 2)), ("TEE".to_owned(), stock(1, 0))]);
        let Decision::Reserved(reserved) = decide(&order(&[("MUG", 3), ("TEE", 1)]), &levels) else {
            panic!("rejected")
        };
        assert_eq!(reserved.lines.len(), 2);
        assert_eq!(reserved.lines[0].bin_location, "A-01");
    }

    #[test]
    fn rejects_the_whole_order_when_one_line_is_short() {
        let levels = HashMap::from([("MUG".to_owned(), stock(5, 0)), ("TEE".to_owned(), stock(3, 3))]);
        let Decision::Rejected(rejected) = decide(&order(&[("MUG", 1), ("TEE", 1)]), &levels) else {
            panic!("reserved")
        };
        assert_eq!(rejected.skus, vec!["TEE"]);
        assert_eq!(rejected.reason, "out of stock: TEE (requested 1, available 0)");
    }

    #[test]
    fn rejects_unknown_skus_by_name() {
        let Decision::Rejected(rejected) = decide(&order(&[("NOPE", 1)]), &HashMap::new()) else { panic!("reserved") };
        assert_eq!(rejected.reason, "unknown SKU NOPE");
    }

    #[test]
    fn a_reservation_holds_its_units_from_the_next_order() {
        let levels = HashMap::from([("MUG".to_owned(), stock(10, 4))]);
        let (_, levels) = orderflow_kit::decider::run::<ReserveStock>(levels, &order(&[("MUG", 5)])).unwrap();
        assert_eq!(levels["MUG"].available(), 1);
        assert!(matches!(decide(&order(&[("MUG", 2)]), &levels), Decision::Rejected(_)), "never oversold");
        let (_, after) = orderflow_kit::decider::run::<ReserveStock>(levels.clone(), &order(&[("MUG", 2)])).unwrap();
        assert_eq!(after, levels, "a rejection holds nothing");
    }

    #[test]
    fn exactly_the_available_quantity_can_be_reserved() {
        let levels = HashMap::from([("MUG".to_owned(), stock(10, 7))]);
        assert!(matches!(decide(&order(&[("MUG", 3)]), &levels), Decision::Reserved(_)));
        assert!(matches!(decide(&order(&[("MUG", 4)]), &levels), Decision::Rejected(_)));
    }

    #[test]
    fn an_order_heavier_than_any_carrier_takes_is_rejected_up_front() {
        let heavy = Stock { weight_grams: 40_000, ..stock(100, 0) };
        let levels = HashMap::from([("ANVIL".to_owned(), heavy)]);
        let Decision::Rejected(rejected) = decide(&order(&[("ANVIL", 30)]), &levels) else { panic!("reserved") };
        assert!(rejected.reason.starts_with("too heavy to ship: the contents weigh 1200000 g"), "{}", rejected.reason);
        assert_eq!(rejected.skus, vec!["ANVIL"]);
        let huge = Stock { weight_grams: u32::MAX, ..stock(i64::from(i32::MAX), 0) };
        let levels = HashMap::from([("HUGE".to_owned(), huge)]);
        assert!(matches!(decide(&order(&[("HUGE", i32::MAX)]), &levels), Decision::Rejected(_)), "no overflow");
    }

    #[test]
    fn lines_no_order_service_would_send_are_rejected_not_reserved() {
        let levels = HashMap::from([("MUG".to_owned(), stock(10, 0))]);
        for lines in [vec![("MUG", 10), ("MUG", 10)], vec![("MUG", -5)], vec![], vec![("MUG", 0)], vec![("M\0G", 1)]] {
            let Decision::Rejected(rejected) = decide(&order(&lines), &levels) else { panic!("reserved {lines:?}") };
            assert!(rejected.reason.starts_with("invalid order: lines"), "{}", rejected.reason);
        }
    }

    #[test]
    fn a_short_order_that_allows_a_backorder_is_held_and_holds_nothing() {
        let levels = HashMap::from([("MUG".to_owned(), stock(5, 3)), ("TEE".to_owned(), stock(9, 0))]);
        let held_order = OrderPlaced { allow_backorder: true, ..order(&[("MUG", 3), ("TEE", 1)]) };
        let Decision::Held(held) = decide(&held_order, &levels) else { panic!("not held") };
        assert_eq!(
            (held.reason.as_str(), held.skus.clone()),
            ("awaiting MUG x3 (2 available)", vec!["MUG".to_owned()])
        );
        let (_, after) = orderflow_kit::decider::run::<ReserveStock>(levels.clone(), &held_order).unwrap();
        assert_eq!(
            (after["MUG"].reserved, after["MUG"].awaited, after["TEE"].awaited),
            (3, 3, 1),
            "a hold reserves nothing"
        );
        let later = OrderPlaced { allow_backorder: true, ..order(&[("MUG", 1)]) };
        assert!(
            matches!(decide(&later, &after), Decision::Held(_)),
            "a later order does not take what the held one awaits"
        );
        let in_stock = OrderPlaced { allow_backorder: true, ..order(&[("MUG", 2)]) };
        assert!(matches!(decide(&in_stock, &levels), Decision::Reserved(_)), "enough stock: reserved at once");
    }

    #[test]
    fn a_backorder_is_no_excuse_for_an_unknown_sku_or_an_unshippable_parcel() {
        let heavy = Stock { weight_grams: 40_000, ..stock(0, 0) };
        let levels = HashMap::from([("ANVIL".to_owned(), heavy)]);
        for lines in [vec![("NOPE", 1)], vec![("ANVIL", 30)]] {
            let placed = OrderPlaced { allow_backorder: true, ..order(&lines) };
            assert!(matches!(decide(&placed, &levels), Decision::Rejected(_)), "{lines:?}");
        }
    }
}
