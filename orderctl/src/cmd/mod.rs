//! The commands that call the services' APIs (and `tokens`, which mints their development API
//! tokens), one module per command group (as mini-redis `src/cmd/`): each parses its arguments
//! and runs them side by side.

pub mod demo;
pub mod dlq;
pub mod gateway;
pub mod health;
pub mod order;
pub mod product;
pub mod shipment;
pub mod stock;
pub mod tokens;
pub mod warehouse;
pub mod webhooks;
