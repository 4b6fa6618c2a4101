//! OrderCancelled | ShipmentRejected → StockReleased: the order will not ship, so its
//! reservation is given back (reserved drops, on hand stays) and the release is announced, once,
//! in the inbox transaction. OrderPlaced and OrderCancelled share the orders topic and key, so
//! the reservation is always decided first; order-service never cancels an order it handed to
//! shipping, and shipping rejects only a parcel it did not ship, so released stock is never
//! committed. (A rejected parcel's goods go back to their bins: they count as available again.)

mod domain;
mod on_order_ended;

pub use on_order_ended::release;
