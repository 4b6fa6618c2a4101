//! Which held orders a restock serves. Pure: the caller has locked the stock rows and the held
//! orders and passes them in, in arrival order.

use crate::reserve_stock::domain::{Levels, ReserveStock};
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderPlaced, StockReserved};
use std::collections::HashSet;
use uuid::Uuid;

/// A held order: its id and what it asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub order_id: Uuid,
    pub placed: OrderPlaced,
}

/// The held orders `levels` serve, in arrival order: each reserved whole (as ReserveStock
/// decides) on the stock the ones before it left, or not at all. One that is not served blocks
/// every SKU it needs for the orders after it, so no later order takes stock an earlier one
/// waits for (strict arrival order per SKU).
pub fn serve(held: &[Held], mut levels: Levels) -> Vec<(Uuid, StockReserved)> {
    // The held orders are the awaited demand themselves: they are served in their own order.
    for level in levels.values_mut() {
        level.awaited = 0;
    }
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut served = Vec::new();
    for order in held {
        let skus: Vec<&str> = order.placed.lines.iter().map(|l| l.sku.as_str()).collect();
        if skus.iter().any(|sku| blocked.contains(sku)) {
            blocked.extend(skus);
            continue;
        }
        let Ok(decided) = ReserveStock::decide(&levels, &order.placed);
        match decided.into_iter().next() {
            Some(Payload::StockReserved(reserved)) => {
                levels = ReserveStock::evolve(levels, &Payload::StockReserved(reserved.clone()));
                served.push((order.order_id, reserved));
            }
            _ => blocked.extend(skus),
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reserve_stock::domain::Stock;
    use orderflow_proto::common::v1::OrderLine;

    fn held(lines: &[(&str, i32)]) -> Held {
        let lines = lines
            .iter()
            .map(|(sku, quantity)| OrderLine { sku: (*sku).into(), quantity: *quantity, unit_price: None })
            .collect();
        Held { order_id: Uuid::now_v7(), placed: OrderPlaced { lines, allow_backorder: true, ..Default::default() } }
    }

    fn levels(stock: &[(&str, i64)]) -> Levels {
        stock
            .iter()
            .map(|(sku, on_hand)| {
                (
                    (*sku).to_owned(),
                    Stock { on_hand: *on_hand, reserved: 0, awaited: 9, bin_location: "A".into(), weight_grams: 100 },
                )
            })
            .collect()
    }

    fn served(held: &[Held], stock: &[(&str, i64)]) -> Vec<Uuid> {
        serve(held, levels(stock)).into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn held_orders_are_served_in_arrival_order_while_stock_lasts() {
        let (a, b, c) = (held(&[("MUG", 2)]), held(&[("MUG", 3)]), held(&[("MUG", 1)]));
        let orders = [a.clone(), b.clone(), c.clone()];
        assert_eq!(served(&orders, &[("MUG", 6)]), [a.order_id, b.order_id, c.order_id]);
        assert_eq!(served(&orders, &[("MUG", 5)]), [a.order_id, b.order_id]);
        let reserved = serve(&orders, levels(&[("MUG", 2)]));
        assert_eq!(reserved.len(), 1);
        assert_eq!(reserved[0].1.lines[0].quantity, 2, "whole: all of the order's units");
    }

    #[test]
    fn a_small_later_order_never_overtakes_a_large_earlier_one() {
        let (large, small) = (held(&[("MUG", 5)]), held(&[("MUG", 1)]));
        assert!(served(&[large.clone(), small.clone()], &[("MUG", 3)]).is_empty(), "the small one waits its turn");
        // An order that needs other SKUs only is not held up.
        let other = held(&[("TEE", 1)]);
        assert_eq!(served(&[large, small, other.clone()], &[("MUG", 3), ("TEE", 1)]), [other.order_id]);
    }

    #[test]
    fn an_order_is_reserved_whole_or_not_at_all() {
        let both = held(&[("MUG", 1), ("TEE", 2)]);
        assert!(served(std::slice::from_ref(&both), &[("MUG", 5), ("TEE", 1)]).is_empty());
        let later = held(&[("MUG", 1)]);
        assert!(served(&[both.clone(), later], &[("MUG", 5), ("TEE", 1)]).is_empty(), "MUG is blocked by the first");
        assert_eq!(served(std::slice::from_ref(&both), &[("MUG", 1), ("TEE", 2)]), [both.order_id]);
    }
}
