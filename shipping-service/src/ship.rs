//! ShipmentRequested → Shipped: choose the carrier, label the parcel, record the shipment and
//! emit Shipped in the inbox transaction. A parcel no carrier takes (no rate for its
//! destination, level and weight) is refused with ShipmentRejected, so the order still ends
//! (REJECTED, its stock released) instead of waiting for good. order-service requests a shipment only for a packed
//! order it did not cancel (and refuses cancels from then on), so no cancelled order is ever
//! labelled (docs/adr/0002).

use crate::{domain, store};
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::ShipmentRejected;
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
        let Some(packed) = requested.packed.as_ref() else {
            return Err(HandlerError::Rejected(format!("shipment request for order {order_id} has no parcel")));
        };
        if store::exists(conn, order_id).await? {
            return Ok(()); // one label per order, however often it is requested
        }
        // A sequence numbers the labels: unique by construction.
        let serial = store::next_serial(conn).await?;
        let payload = match domain::decide(packed, &self.origin_country, serial) {
            Ok(shipped) => {
                let country = packed.shipping_address.as_ref().map(|a| a.country.clone()).unwrap_or_default();
                store::insert(conn, order_id, &shipped, &country).await?;
                tracing::info!(order_id = %order_id, carrier = %shipped.carrier, tracking_number = %shipped.tracking_number, "shipped");
                Payload::Shipped(shipped)
            }
            Err(rejection) => {
                tracing::warn!(order_id = %order_id, reason = %rejection, "no carrier takes the parcel; shipment rejected");
                Payload::ShipmentRejected(ShipmentRejected { reason: rejection.to_string() })
            }
        };
        let subject = Subject::Order(&event.order_id);
        outbox::emit(conn, crate::SERVICE, &self.topic, subject, payload, &Cause::event(event)).await?;
        Ok(())
    }
}
