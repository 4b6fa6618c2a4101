//! The ShipmentRequested adapter, for one event or a batch (the consumer's fast path): which
//! of the orders are labelled already is read once (their rows locked), the label serials drawn
//! at once, and the shipments and their events written with one statement each. Each request
//! is decided as one at a time would be (`Ship`'s `evolve` marks an order labelled for the
//! requests after it).

use super::domain::{Parcel, Ship, level};
use crate::pickup;
use crate::store::{self, NewShipment};
use chrono::Utc;
use orderflow_kit::decider::Decider;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::shipping::v1::ShipmentStatus;
use sqlx::postgres::PgConnection;

/// Reacts to ShipmentRequested on the orders topic.
#[derive(Debug, Clone)]
pub struct OnShipmentRequested {
    /// The shipping topic, where Labelled (and Shipped) go.
    pub topic: String,
    pub warehouse: Warehouse,
    /// The simulated courier collects each label at once (`SHIPPING_PICKUP_MODE=auto` without
    /// a delay): Shipped is decided with Labelled.
    pub collect_at_once: bool,
}

impl EventHandler for OnShipmentRequested {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.ship_all(conn, &[event]).await
    }

    async fn handle_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
        self.ship_all(conn, events).await
    }
}

impl OnShipmentRequested {
    /// Every ShipmentRequested of `events`, in order; a request without a parcel is refused
    /// (the batch goes the careful way, where it is dead-lettered).
    async fn ship_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
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
        let at = Utc::now();
        for ((order_id, event, packed), serial) in requests.into_iter().zip(serials) {
            let country = packed.shipping_address.as_ref().map(|a| a.country.clone()).unwrap_or_default();
            let level = level(&packed);
            let parcel = Parcel { packed, warehouse: self.warehouse.clone(), serial, at };
            let was = labelled.contains(&order_id);
            let Ok(decided) = Ship::decide(&was, &parcel);
            let cause = Cause::event(event);
            for payload in decided {
                if Ship::evolve(was, &payload) {
                    labelled.insert(order_id);
                }
                let mut collected = None;
                match &payload {
                    Payload::Labelled(label) => {
                        tracing::info!(order_id = %order_id, carrier = %label.carrier, tracking_number = %label.tracking_number, "labelled");
                        let status =
                            if self.collect_at_once { ShipmentStatus::Shipped } else { ShipmentStatus::Labelled };
                        let new =
                            NewShipment { order_id, labelled: label.clone(), country: country.clone(), level, status };
                        shipments.push(new);
                        collected = self.collect_at_once.then(|| Payload::Shipped(pickup::collected(label)));
                    }
                    Payload::ShipmentRejected(rejected) => {
                        tracing::warn!(order_id = %order_id, reason = %rejected.reason, "no carrier takes the parcel; shipment rejected");
                    }
                    _ => {}
                }
                for payload in std::iter::once(payload).chain(collected) {
                    emitted.push(envelope::build(crate::SERVICE, &event.order_id, payload, &cause));
                }
            }
        }
        store::insert_all(conn, &shipments).await?;
        outbox::enqueue_all(conn, &self.topic, &emitted).await?;
        Ok(())
    }
}
