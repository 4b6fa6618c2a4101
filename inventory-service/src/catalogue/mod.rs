//! The catalogue: UpsertProduct, Restock (emits StockRestocked, keyed by SKU), GetStock,
//! ListStock and ListLowStock (products whose low-stock alert is raised).

mod domain;
mod grpc;

pub use grpc::{get_stock, list_low_stock, list_stock, restock, upsert_product};
