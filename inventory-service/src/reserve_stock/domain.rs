//! Deciding a reservation: all lines or none. Pure: the caller has locked the stock rows and
//! passes their levels in.

use orderflow_kit::types::{MAX_PARCEL_GRAMS, contents_grams, order_lines};
use orderflow_proto::events::v1::{OrderPlaced, ReservedLine, StockRejected, StockReserved};
use std::collections::HashMap;

/// One product's stock as locked for this decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    pub on_hand: i64,
    pub reserved: i64,
    pub bin_location: String,
    pub weight_grams: u32,
}

impl Stock {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// The outcome for one order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Reserved(StockReserved),
    Rejected(StockRejected),
}

/// Reserves every line of `order` if every SKU is known and has enough available stock and the
/// parcel is one a carrier takes; otherwise rejects it, naming each SKU that failed and why.
pub fn decide(order: &OrderPlaced, stock: &HashMap<String, Stock>) -> Decision {
    // Checked again here: any producer can write an OrderPlaced (a line twice, or a negative
    // quantity, would reserve what is not there).
    let ordered = match order_lines(&order.lines) {
        Ok(lines) => lines,
        Err(error) => {
            return Decision::Rejected(StockRejected { reason: format!("invalid order: {error}"), skus: vec![] });
        }
    };
    let mut problems = Vec::new();
    let mut skus = Vec::new();
    let mut lines = Vec::with_capacity(ordered.len());
    for line in &ordered {
        match stock.get(&line.sku) {
            None => {
                problems.push(format!("unknown SKU {}", line.sku));
                skus.push(line.sku.clone());
            }
            Some(level) if level.available() < i64::from(line.quantity) => {
                problems.push(format!(
                    "out of stock: {} (requested {}, available {})",
                    line.sku,
                    line.quantity,
                    level.available().max(0)
                ));
                skus.push(line.sku.clone());
            }
            Some(level) => lines.push(ReservedLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                bin_location: level.bin_location.clone(),
                unit_weight_grams: level.weight_grams,
            }),
        }
    }
    let grams = contents_grams(&lines);
    if problems.is_empty() && grams > u64::from(MAX_PARCEL_GRAMS) {
        problems.push(format!(
            "too heavy to ship: the contents weigh {grams} g, no carrier takes more than {MAX_PARCEL_GRAMS} g"
        ));
        skus = lines.iter().map(|l| l.sku.clone()).collect();
    }
    if problems.is_empty() {
        Decision::Reserved(StockReserved {
            lines,
            shipping_address: order.shipping_address.clone(),
            service_level: order.service_level,
        })
    } else {
        Decision::Rejected(StockRejected { reason: problems.join("; "), skus })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::common::v1::OrderLine;

    fn stock(on_hand: i64, reserved: i64) -> Stock {
        Stock { on_hand, reserved, bin_location: "A-01".into(), weight_grams: 300 }
    }

    fn order(lines: &[(&str, i32)]) -> OrderPlaced {
        OrderPlaced {
            lines: lines.iter().map(|(sku, quantity)| OrderLine { sku: (*sku).into(), quantity: *quantity }).collect(),
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
}
