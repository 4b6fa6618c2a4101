//! Pack: the last warehouse step, taken automatically (`steps`) or confirmed by staff
//! (ConfirmPack, optionally with the parcel's measured weight and size). Packed goes to
//! order-service, which hands the parcel to shipping.

mod domain;

pub use domain::{Measured, Pack};
