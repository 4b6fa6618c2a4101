//! Payment that follows the order (docs/payments.md): PlaceOrder makes an authorisation due
//! with the order; the worker calls the gateway and records PaymentAuthorized (which carries
//! the order to inventory: stock is only reserved for a paid order) or PaymentDeclined (the
//! order ends REJECTED). Shipped makes a capture due, a cancel or a rejection a void
//! (`follow`). Every call carries an idempotency key derived from the order, so no retry,
//! crash or redelivered event ever authorises, captures or voids twice.

pub mod api;
pub mod domain;
mod gateway;
#[cfg(feature = "gateway")]
pub mod simulator;
pub mod store;
mod worker;

pub use gateway::Gateway;
pub use worker::Worker;

use crate::project::domain::View;
use orderflow_kit::envelope::EventEnvelope;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

/// After orders' views changed (`before` → `after`, by `cause`): the gateway call each needs
/// now is made due, or none is; orders whose need did not change are left alone.
pub async fn follow(
    conn: &mut PgConnection,
    changes: &[(Uuid, &View, &View, &EventEnvelope)],
) -> Result<(), sqlx::Error> {
    let calls: Vec<_> = changes
        .iter()
        .filter(|(_, before, after, _)| domain::needed(before) != domain::needed(after))
        .map(|(id, _, after, cause)| (*id, domain::needed(after), *cause))
        .collect();
    store::schedule_all(conn, &calls).await
}

#[cfg(all(test, feature = "gateway"))]
mod tests;
