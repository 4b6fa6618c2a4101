//! The ShipmentRequested adapter: decides under the order's label (one per order) and stores
//! the shipment with its event in the inbox transaction.

use super::domain::{Parcel, Ship};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

/// Reacts to ShipmentRequested on the orders topic.
#[derive(Debug, Clone)]
pub struct OnShipmentRequested {
    /// The shipping topic, where Shipped goes.
    pub topic: String,
    /// `SHIPPING_ORIGIN_COUNTRY` (default DE): where the warehouse is.
    pub origin_country: String,
}

impl EventHandler for OnShipmentRequested {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::ShipmentRequested(requested)) = event.payload.as_ref() else { return Ok(()) };
        let order_id = inbox::order_id(event)?;
        let Some(packed) = requested.packed.clone() else {
            return Err(HandlerError::Rejected(format!("shipment request for order {order_id} has no parcel")));
        };
        let labelled = store::exists(conn, order_id).await?;
        // A sequence numbers the labels: unique by construction (a repeated request wastes one).
        let serial = store::next_serial(conn).await?;
        let country = packed.shipping_address.as_ref().map(|a| a.country.clone()).unwrap_or_default();
        let parcel = Parcel { packed, origin_country: self.origin_country.clone(), serial };
        let Ok(events) = Ship::decide(&labelled, &parcel);
        for payload in events {
            match &payload {
                Payload::Shipped(shipped) => {
                    store::insert(conn, order_id, shipped, &country).await?;
                    tracing::info!(order_id = %order_id, carrier = %shipped.carrier, tracking_number = %shipped.tracking_number, "shipped");
                }
                Payload::ShipmentRejected(rejected) => {
                    tracing::warn!(order_id = %order_id, reason = %rejected.reason, "no carrier takes the parcel; shipment rejected");
                }
                _ => {}
            }
            let subject = Subject::Order(&event.order_id);
            outbox::emit(conn, crate::SERVICE, &self.topic, subject, payload, &Cause::event(event)).await?;
        }
        Ok(())
    }

    async fn handle_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
        self.ship_all(conn, events).await
    }
}
