//! The ShipmentRequested adapter for a batch (the consumer's fast path): which of the batch's
//! orders are labelled already is read once, the label serials drawn at once, and the
//! shipments and their events written with one statement each. Each request is decided as one
//! at a time would be (`Ship`'s `evolve` marks an order labelled for the requests after it).

use super::OnShipmentRequested;
use super::domain::{Parcel, Ship};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

impl OnShipmentRequested {
    /// Every ShipmentRequested of `events`, in order; a request without a parcel sends the
    /// batch the careful way (it is dead-lettered there).
    pub async fn ship_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
        let mut requests = Vec::with_capacity(events.len());
        for event in events {
            let Some(Payload::ShipmentRequested(requested)) = &event.payload else { continue };
            let order_id = inbox::order_id(event)?;
            let Some(packed) = requested.packed.clone() else {
                return Err(HandlerError::Rejected(format!("shipment request for order {order_id} has no parcel")));
            };
            requests.push((order_id, *event, packed));
        }
        if requests.is_empty() {
            return Ok(());
        }
        let ids: Vec<_> = requests.iter().map(|(id, ..)| *id).collect();
        let mut labelled = store::labelled(conn, &ids).await?;
        let serials = store::next_serials(conn, requests.len()).await?;
        let (mut shipments, mut emitted) = (Vec::new(), Vec::new());
        for ((order_id, event, packed), serial) in requests.into_iter().zip(serials) {
            let country = packed.shipping_address.as_ref().map(|a| a.country.clone()).unwrap_or_default();
            let parcel = Parcel { packed, origin_country: self.origin_country.clone(), serial };
            let was = labelled.contains(&order_id);
            let Ok(decided) = Ship::decide(&was, &parcel);
            for payload in decided {
                if Ship::evolve(was, &payload) {
                    labelled.insert(order_id);
                }
                match &payload {
                    Payload::Shipped(shipped) => {
                        tracing::info!(order_id = %order_id, carrier = %shipped.carrier, tracking_number = %shipped.tracking_number, "shipped");
                        shipments.push((order_id, shipped.clone(), country.clone()));
                    }
                    Payload::ShipmentRejected(rejected) => {
                        tracing::warn!(order_id = %order_id, reason = %rejected.reason, "no carrier takes the parcel; shipment rejected");
                    }
                    _ => {}
                }
                emitted.push(envelope::build(crate::SERVICE, &event.order_id, payload, &Cause::event(event)));
            }
        }
        store::insert_all(conn, &shipments).await?;
        outbox::enqueue_all(conn, &self.topic, &emitted).await?;
        Ok(())
    }
}
