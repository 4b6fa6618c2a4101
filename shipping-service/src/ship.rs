//! ShipmentRequested → Shipped: choose the carrier, label the parcel, record the shipment and
//! emit Shipped in the inbox transaction. order-service requests a shipment only for a packed
//! order it did not cancel (and refuses cancels from then on), so no cancelled order is ever
//! labelled (docs/adr/0002).

use crate::{domain, store};
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox;
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
        // The random tail of the UUIDv7 numbers the label.
        let serial = u64::try_from(order_id.as_u128() & u128::from(u64::MAX)).unwrap_or_default();
        let shipped =
            domain::decide(packed, &self.origin_country, serial).map_err(|e| HandlerError::Rejected(e.to_string()))?;
        let country = packed.shipping_address.as_ref().map(|a| a.country.clone()).unwrap_or_default();
        store::insert(conn, order_id, &shipped, &country).await?;
        tracing::info!(order_id = %order_id, carrier = %shipped.carrier, tracking_number = %shipped.tracking_number, "shipped");
        let event = envelope::build(crate::SERVICE, &event.order_id, Payload::Shipped(shipped), &Cause::event(event));
        outbox::enqueue(conn, &self.topic, &event.order_id, &event).await?;
        Ok(())
    }
}
