//! Pick: the first warehouse step, taken automatically (`steps`) or confirmed by staff
//! (ConfirmPick).

mod domain;

pub use domain::Pick;
