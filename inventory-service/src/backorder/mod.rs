//! Backorders: an order placed with `allow_backorder` whose stock is short is held
//! (StockHeld; `reserve_stock` decides it) instead of rejected. Nothing is reserved while it
//! waits, so held orders never take stock from anyone.
//!
//! - A restock serves the held orders that need the SKU, in arrival order, each reserved whole
//!   or not at all (`domain::serve`). An order that cannot be served yet blocks its SKUs for
//!   the orders after it: a small later order never overtakes an earlier one on a SKU both
//!   need (docs/backorders.md).
//! - A hold expires after `BACKORDER_MAX_HOLD` (default 7 days): the order is rejected
//!   "backorder expired" (`expire`).
//! - A cancel of a held order drops its hold (`release_stock`).
//! - ListBackorders shows the demand per SKU (`grpc`); the low-stock alert counts it.

mod domain;
mod expire;
mod grpc;
mod release;
pub mod store;

pub use expire::Expiry;
pub use grpc::list_backorders;
pub use release::release;

#[cfg(test)]
mod tests;
