//! StockReserved | StockRejected | Picked | Sorted | Packed | Shipped | Delivered |
//! StockReleased | ShipmentRejected → the order's status and timeline. Runs inside the inbox
//! transaction, so each event is projected exactly once; a Packed that packs the order goes on
//! to `request_shipment` in the same transaction. A rebuild (`rebuild.rs`) replays the same
//! `apply`. Not a decision: the projection records what other services decided.

pub mod domain;
mod on_event;

pub use on_event::{Projection, apply};

#[cfg(test)]
mod tests;
