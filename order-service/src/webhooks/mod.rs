//! Webhooks (docs/webhooks.md): other systems register endpoints (`grpc`); every change an
//! endpoint subscribed to is queued as a delivery in the transaction that recorded it
//! (`enqueue`: the projection, PlaceOrder's group commit, CancelOrder), so a delivery exists
//! exactly when its change committed; the sender (`send`) posts them signed as the Standard
//! Webhooks specification says, in order per order and endpoint, retried with back-off for
//! 24 hours, then marked failed until redelivered.

mod domain;
mod grpc;
mod send;
mod store;

pub use domain::TYPES;
pub use grpc::WebhookApi;
pub use send::Sender;

use orderflow_kit::envelope::EventEnvelope;
use sqlx::postgres::PgConnection;

/// Queues the webhooks `events` announce (in the caller's transaction).
pub async fn enqueue(conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), sqlx::Error> {
    let messages: Vec<_> = events.iter().filter_map(|event| domain::message(event)).collect();
    store::enqueue(conn, &messages).await
}

#[cfg(test)]
mod tests;
