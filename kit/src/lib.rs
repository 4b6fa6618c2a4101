//! Orderflow's kit: the plumbing every service shares, written once. A service wires these
//! parts together and adds only its own decisions (see `../shared/DESIGN.md`).
//!
//! The flow of one event through a service: [`inbox`] consumes it and applies it in one
//! database transaction with the [`outbox`] rows it causes; the outbox [`outbox::Relay`]
//! publishes those to the next service's topic.
//!
//! What only operators and tests use (the topic reader, the dead-letter answers) is behind the
//! `operator` feature, which no service enables (docs/adr/0008).

pub mod app;
pub mod auth;
pub mod backoff;
pub mod config;
pub mod db;
pub mod decider;
pub mod delivery;
pub mod dlq;
pub mod envelope;
pub mod error;
/// Operator-only: reading the topics as an operator does (tail, trace, checks).
#[cfg(feature = "operator")]
pub mod events;
pub mod grpc;
pub mod inbox;
pub mod kafka;
pub mod lag;
pub mod metrics;
pub mod outbox;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;
pub mod token_file;
pub mod topics;
pub mod trace;
pub mod types;

pub use app::{App, Service, Wiring, run_main};
pub use config::Config;
pub use error::ServiceError;
