//! StockReserved | StockRejected | Picked | Sorted | Packed | Shipped | Delivered |
//! StockReleased → the order's status and timeline. Runs inside the inbox transaction, so each
//! event is projected exactly once. When Packed packs an order that is not cancelled, the
//! order is handed to shipping (ShipmentRequested) in the same transaction, under the order's
//! row lock that CancelOrder also takes: an order is either cancelled or shipped, never both.

pub mod domain;

use crate::store;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::ShipmentRequested;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::OrderStatus;
use sqlx::postgres::PgConnection;

/// The order projection, fed by the inventory, fulfillment and shipping topics.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The orders topic, where ShipmentRequested goes.
    pub orders_topic: String,
}

/// Projects `event` onto its order's view and timeline: the view before and after, or `None`
/// for events that are not about an order. Decides nothing; the live projection and a
/// rebuild share it.
pub async fn apply(
    conn: &mut PgConnection,
    event: &EventEnvelope,
) -> Result<Option<(store::View, store::View)>, HandlerError> {
    let Some(payload) = event.payload.as_ref() else { return Ok(None) };
    let Some(step) = domain::timeline_step(envelope::event_type(payload)) else {
        return Ok(None); // stock-only events (restocks, low-stock alerts) are not about an order
    };
    let order_id = inbox::order_id(event)?;
    let Some(view) = store::lock_view(conn, order_id).await? else {
        return Err(HandlerError::Rejected(format!("unknown order {order_id}")));
    };
    let next = domain::evolve(&view, payload);
    if next != view {
        store::save_view(conn, order_id, &next).await?;
    }
    store::append_timeline(conn, order_id, event, step).await?;
    Ok(Some((view, next)))
}

impl EventHandler for Projection {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some((view, next)) = apply(conn, event).await? else { return Ok(()) };
        if let Some(Payload::Packed(packed)) = event.payload.as_ref()
            && domain::hands_over(&view, &next)
        {
            let order_id = inbox::order_id(event)?;
            let requested = ShipmentRequested { packed: Some(packed.clone()) };
            let (subject, payload) = (Subject::Order(&event.order_id), Payload::ShipmentRequested(requested));
            let request =
                outbox::emit(conn, crate::SERVICE, &self.orders_topic, subject, payload, &Cause::event(event)).await?;
            store::append_timeline(conn, order_id, &request, domain::step(OrderStatus::Packed)).await?;
        }
        Ok(())
    }
}
