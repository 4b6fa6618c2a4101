//! ConfirmDelivery (the carrier's delivery scan) → Delivered, and TrackShipment (the history
//! of a tracking number). A repeated scan answers with the delivered shipment and emits nothing.

use crate::domain::{self, Delivery};
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::trace::TraceParent;
use orderflow_proto::events::v1::Delivered;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus, TrackShipmentResponse, TrackingEvent};
use sqlx::PgPool;

pub async fn confirm_delivery(
    pool: &PgPool,
    topic: &str,
    trace: TraceParent,
    tracking_number: &str,
) -> Result<Shipment, ServiceError> {
    let number = domain::tracking_number_field("tracking_number", tracking_number)?;
    let mut tx = pool.begin().await?;
    let shipment = store::by_tracking_number(&mut tx, &number, true).await?.ok_or_else(|| not_found(&number))?;
    let status = ShipmentStatus::try_from(shipment.status).unwrap_or(ShipmentStatus::Unspecified);
    if domain::decide_delivery(status) == Delivery::AlreadyDelivered {
        return Ok(shipment);
    }
    store::mark_delivered(&mut tx, &number).await?;
    let payload = Payload::Delivered(Delivered { carrier: shipment.carrier.clone(), tracking_number: number.clone() });
    let subject = Subject::Order(&shipment.order_id);
    outbox::emit(&mut tx, crate::SERVICE, topic, subject, payload, &Cause::command(trace)).await?;
    let delivered = store::by_tracking_number(&mut tx, &number, false).await?.ok_or_else(|| not_found(&number))?;
    tx.commit().await?;
    tracing::info!(order_id = %delivered.order_id, tracking_number = %number, "delivered");
    Ok(delivered)
}

pub async fn track(pool: &PgPool, tracking_number: &str) -> Result<TrackShipmentResponse, ServiceError> {
    let number = domain::tracking_number_field("tracking_number", tracking_number)?;
    let mut conn = pool.acquire().await?;
    let shipment = store::by_tracking_number(&mut conn, &number, false).await?.ok_or_else(|| not_found(&number))?;
    let mut history = vec![TrackingEvent {
        status: ShipmentStatus::Shipped.as_str_name().to_owned(),
        description: format!("handed to {} ({})", shipment.carrier, shipment.carrier_service),
        occurred_at: shipment.shipped_at,
    }];
    if let Some(at) = shipment.delivered_at {
        history.push(TrackingEvent {
            status: ShipmentStatus::Delivered.as_str_name().to_owned(),
            description: format!("delivered in {}", shipment.destination_country),
            occurred_at: Some(at),
        });
    }
    Ok(TrackShipmentResponse { shipment: Some(shipment), history })
}

fn not_found(number: &str) -> ServiceError {
    ServiceError::NotFound(format!("no shipment with tracking number {number}"))
}
