//! Shipped → the reserved units leave the warehouse: on hand and reserved both drop by the
//! order's lines, once (the reservation moves to SHIPPED in the same inbox transaction).

mod domain;
mod on_shipped;

pub use on_shipped::{on_shipped, on_shipped_all};
