//! TrackShipment: the history of a tracking number, from the shipment as stored.

use crate::store;
use crate::tracking_number::TrackingNumber;
use orderflow_kit::ServiceError;
use orderflow_proto::shipping::v1::{ShipmentStatus, TrackShipmentResponse, TrackingEvent};
use sqlx::PgPool;

pub async fn track(pool: &PgPool, tracking_number: &str) -> Result<TrackShipmentResponse, ServiceError> {
    let number = TrackingNumber::try_from(tracking_number)?;
    let mut conn = pool.acquire().await?;
    let shipment =
        store::by_tracking_number(&mut conn, number.as_str(), false).await?.ok_or_else(|| not_found(&number))?;
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

/// No shipment has `number`.
pub fn not_found(number: &TrackingNumber) -> ServiceError {
    ServiceError::NotFound(format!("no shipment with tracking number {number}"))
}
