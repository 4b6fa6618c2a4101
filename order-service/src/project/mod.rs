//! StockReserved | StockRejected | Picked | Sorted | Packed | Shipped | Delivered → the order's
//! status and timeline. Runs inside the inbox transaction, so each event is projected exactly once.

pub mod domain;

use crate::store;
use orderflow_kit::envelope::EventEnvelope;
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use sqlx::postgres::PgConnection;

/// The order projection, fed by the inventory, fulfillment and shipping topics.
#[derive(Debug, Clone, Copy)]
pub struct Projection;

impl EventHandler for Projection {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(payload) = event.payload.as_ref() else { return Ok(()) };
        let Some(status) = domain::announced(payload) else {
            return Ok(()); // stock-only events (restocks) are not about an order
        };
        let order_id = inbox::order_id(event)?;
        let Some(view) = store::lock_view(conn, order_id).await? else {
            return Err(HandlerError::Rejected(format!("unknown order {order_id}")));
        };
        let next = domain::evolve(&view, payload);
        if next != view {
            store::save_view(conn, order_id, &next).await?;
        }
        store::append_timeline(conn, order_id, event, domain::step(status)).await?;
        Ok(())
    }
}
