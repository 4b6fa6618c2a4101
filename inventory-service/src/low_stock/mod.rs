//! Low-stock alerts: after any change of stock (reservation, restock, new threshold) the touched
//! products are checked; a product whose available stock fell to or below its threshold emits
//! LowStock (keyed by SKU) once, in the same transaction, and shows in ListLowStock until stock
//! is back above the threshold.

mod check;
mod domain;

pub use check::check;
