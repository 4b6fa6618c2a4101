//! Packed → ShipmentRequested: once the projection has packed an order that is not cancelled,
//! order-service hands it to shipping in the same inbox transaction, under the order's row lock
//! that CancelOrder also takes: an order is either cancelled or shipped, never both
//! (docs/adr/0002).

pub mod domain;

use crate::project::domain::step;
use crate::store;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::OrderStatus;
use sqlx::postgres::PgConnection;

/// After `event` turned the order's view `before` into `after`: emits ShipmentRequested to
/// `orders_topic` (and records it in the timeline) if the event packed the order.
pub async fn on_packed(
    conn: &mut PgConnection,
    orders_topic: &str,
    event: &EventEnvelope,
    (before, after): (&store::View, &store::View),
) -> Result<(), HandlerError> {
    let Some(Payload::Packed(packed)) = event.payload.as_ref() else { return Ok(()) };
    let Some(requested) = domain::decide(before, after, packed) else { return Ok(()) };
    let order_id = inbox::order_id(event)?;
    let (subject, payload) = (Subject::Order(&event.order_id), Payload::ShipmentRequested(requested));
    let request = outbox::emit(conn, crate::SERVICE, orders_topic, subject, payload, &Cause::event(event)).await?;
    store::append_timeline(conn, order_id, &request, step(OrderStatus::Packed)).await?;
    Ok(())
}
