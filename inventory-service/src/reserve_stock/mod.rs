//! OrderPlaced → StockReserved | StockRejected: every line reserved, atomically, or none.
//! Concurrent orders for the last units are serialised by the stock rows' locks, whatever the
//! number of instances.

pub mod domain;
mod on_order_placed;
mod on_orders_placed;

pub use on_order_placed::OnOrderPlaced;

#[cfg(test)]
mod tests;
