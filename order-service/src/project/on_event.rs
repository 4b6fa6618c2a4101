//! The projection's adapter: every order event the consumer hands over is projected in the
//! inbox transaction; a Packed then goes on to `request_shipment`.

use super::domain;
use crate::project::domain::View;
use crate::{request_shipment, store};
use orderflow_kit::envelope::{self, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use sqlx::postgres::PgConnection;

/// The order projection, fed by the inventory, fulfillment and shipping topics.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The orders topic, where ShipmentRequested goes.
    pub orders_topic: String,
}

/// Projects `event` onto its order's view and timeline: the view as it was before, or `None`
/// for events that are not about an order. Decides nothing; the live projection and a
/// rebuild share it.
pub async fn apply(conn: &mut PgConnection, event: &EventEnvelope) -> Result<Option<View>, HandlerError> {
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
    Ok(Some(view))
}

impl EventHandler for Projection {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(before) = apply(conn, event).await? else { return Ok(()) };
        request_shipment::on_packed(conn, &self.orders_topic, event, &before).await
    }
}
