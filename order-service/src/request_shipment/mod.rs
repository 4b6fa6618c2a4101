//! Packed → ShipmentRequested: once the projection has packed an order that is not cancelled,
//! order-service hands it to shipping in the same inbox transaction, under the order's row lock
//! that CancelOrder also takes: an order is either cancelled or shipped, never both
//! (docs/adr/0002).

mod domain;
mod on_packed;

pub use on_packed::{TIMELINE_STEP, on_packed, requests};
