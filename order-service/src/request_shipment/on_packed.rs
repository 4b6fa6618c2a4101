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
    let order_id = inbox::order_id(event)?;
    for request in request(conn, orders_topic, event, before).await? {
        store::append_timeline(conn, order_id, &request, TIMELINE_STEP).await?;
    }
    Ok(())
}

/// Where the handover goes in the timeline: with Packed.
pub const TIMELINE_STEP: i32 = step(OrderStatus::Packed);

/// The same decision without the timeline: emits what it decides and returns the events, for
/// the caller to record in the timeline (the projection's batch records them all at once).
pub async fn request(
    conn: &mut PgConnection,
    orders_topic: &str,
    event: &EventEnvelope,
    before: &View,
) -> Result<Vec<EventEnvelope>, HandlerError> {
    let Some(Payload::Packed(packed)) = event.payload.as_ref() else { return Ok(Vec::new()) };
    let Ok(requests) = RequestShipment::decide(before, packed);
    let mut emitted = Vec::with_capacity(requests.len());
    for requested in requests {
        let (subject, payload) = (Subject::Order(&event.order_id), Payload::ShipmentRequested(requested));
        emitted.push(outbox::emit(conn, crate::SERVICE, orders_topic, subject, payload, &Cause::event(event)).await?);
    }
    Ok(emitted)
}
