//! The Packed adapter: runs inside the projection's inbox transaction, after the Packed was
//! projected, under the order's row lock that CancelOrder also takes.

use super::domain::RequestShipment;
use crate::project::domain::{View, step};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::OrderStatus;
use sqlx::postgres::PgConnection;

/// After `event` was projected onto an order whose view was `before`: emits ShipmentRequested
/// to `orders_topic` (and records it in the timeline) if the event packed the order.
pub async fn on_packed(
    conn: &mut PgConnection,
    orders_topic: &str,
    event: &EventEnvelope,
    before: &View,
) -> Result<(), HandlerError> {
    let Some(Payload::Packed(packed)) = event.payload.as_ref() else { return Ok(()) };
    let Ok(requests) = RequestShipment::decide(before, packed);
    for requested in requests {
        let order_id = inbox::order_id(event)?;
        let (subject, payload) = (Subject::Order(&event.order_id), Payload::ShipmentRequested(requested));
        let request = outbox::emit(conn, crate::SERVICE, orders_topic, subject, payload, &Cause::event(event)).await?;
        store::append_timeline(conn, order_id, &request, step(OrderStatus::Packed)).await?;
    }
    Ok(())
}
