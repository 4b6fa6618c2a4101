//! Sort: the second warehouse step, taken automatically (`steps`) or confirmed by staff
//! (ConfirmSort).

mod domain;

pub use domain::Sort;
