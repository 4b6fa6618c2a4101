//! The Packed adapter: runs inside the projection's inbox transaction, after the Packed was
//! projected, under the order's row lock that CancelOrder also takes.

use super::domain::RequestShipment;
use crate::project::domain::{View, step};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox;
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
    for request in requests(event, before) {
        outbox::enqueue(conn, orders_topic, &request.order_id, &request).await?;
        store::append_timeline(conn, order_id, &request, TIMELINE_STEP).await?;
    }
    Ok(())
}

/// Where the handover goes in the timeline: with Packed.
pub const TIMELINE_STEP: i32 = step(OrderStatus::Packed);

/// The handovers `event` decides, as events caused by it, for the caller to store (the
/// projection's batch stores them all at once).
pub fn requests(event: &EventEnvelope, before: &View) -> Vec<EventEnvelope> {
    let Some(Payload::Packed(packed)) = event.payload.as_ref() else { return Vec::new() };
    let Ok(requests) = RequestShipment::decide(before, packed);
    requests
        .into_iter()
        .map(|requested| {
            let payload = Payload::ShipmentRequested(requested);
            envelope::build(crate::SERVICE, &event.order_id, payload, &Cause::event(event))
        })
        .collect()
}
