//! OrderPlaced → StockReserved | StockRejected: every line reserved, atomically, or none.
//! Concurrent orders for the last units are serialised by the stock rows' locks, whatever the
//! number of instances.

pub mod domain;
mod on_order_placed;
mod on_orders_placed;

pub use on_order_placed::OnOrderPlaced;

use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::events::v1::event_envelope::Payload;

/// The order an event asks to reserve stock for: a PaymentAuthorized's order (stock is only
/// committed to a paid order), or an OrderPlaced that does not await its payment (placed
/// before payments existed). Every other event, an OrderPlaced awaiting payment included,
/// reserves nothing.
pub fn to_reserve(payload: Option<&Payload>) -> Option<&OrderPlaced> {
    match payload? {
        Payload::OrderPlaced(placed) if !placed.awaits_payment => Some(placed),
        Payload::PaymentAuthorized(authorized) => authorized.order.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
