//! The ConfirmDelivery adapter: check the number at the edge, lock the shipment, decide, store
//! the delivery and its event in one transaction.

use super::domain::{Deliver, Scan};
use crate::store;
use crate::track_shipment::not_found;
use crate::tracking_number::TrackingNumber;
use orderflow_kit::ServiceError;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::trace::TraceParent;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus};
use sqlx::PgPool;

pub async fn confirm_delivery(
    pool: &PgPool,
    topic: &str,
    trace: TraceParent,
    tracking_number: &str,
) -> Result<Shipment, ServiceError> {
    let number = TrackingNumber::try_from(tracking_number)?;
    let mut tx = pool.begin().await?;
    let shipment =
        store::by_tracking_number(&mut tx, number.as_str(), true).await?.ok_or_else(|| not_found(&number))?;
    let status = ShipmentStatus::try_from(shipment.status).unwrap_or(ShipmentStatus::Unspecified);
    let scan = Scan { carrier: shipment.carrier.clone(), tracking_number: number.clone() };
    let Ok(events) = Deliver::decide(&status, &scan);
    if events.is_empty() {
        return Ok(shipment);
    }
    store::mark_delivered(&mut tx, number.as_str()).await?;
    for delivered in events {
        let subject = Subject::Order(&shipment.order_id);
        let payload = Payload::Delivered(delivered);
        outbox::emit(&mut tx, crate::SERVICE, topic, subject, payload, &Cause::command(trace)).await?;
    }
    let delivered =
        store::by_tracking_number(&mut tx, number.as_str(), false).await?.ok_or_else(|| not_found(&number))?;
    tx.commit().await?;
    tracing::info!(order_id = %delivered.order_id, tracking_number = %number, "delivered");
    Ok(delivered)
}
