//! The courier's pick-up: a labelled parcel waits on its carrier's manifest (`ListPickups`)
//! until the carrier's collection scan (`ConfirmPickup`) makes it Shipped, answered per parcel.
//! `SHIPPING_PICKUP_MODE=auto` has a simulated courier collect every label, at once (decided
//! with the label, in `ship`) or `SHIPPING_PICKUP_DELAY_MS` after it (`courier`).

mod courier;
mod domain;
mod grpc;

pub use courier::Courier;
pub use domain::{collected, collected_from};
pub use grpc::{confirm_pickup, list_pickups};
