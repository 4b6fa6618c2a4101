//! TrackShipment: the shipment and its history — labelled, collected, then every carrier scan
//! in the order the carrier made them (a scan that arrived late shows `current: false`).

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
    let step = |status: ShipmentStatus, description: String, at| TrackingEvent {
        status: status.as_str_name().to_owned(),
        description,
        occurred_at: at,
        current: true,
        ..Default::default()
    };
    let mut history = vec![step(
        ShipmentStatus::Labelled,
        format!("labelled for {} ({})", shipment.carrier, shipment.carrier_service),
        shipment.labelled_at,
    )];
    if shipment.shipped_at.is_some() {
        history.push(step(ShipmentStatus::Shipped, format!("collected by {}", shipment.carrier), shipment.shipped_at));
    }
    for (scan, current) in store::scans(&mut conn, number.as_str()).await? {
        let description = if scan.location.is_empty() {
            scan.status.clone()
        } else {
            format!("{} at {}", scan.status, scan.location)
        };
        history.push(TrackingEvent {
            status: scan.status,
            description,
            occurred_at: scan.occurred_at,
            scan_id: scan.scan_id,
            location: scan.location,
            note: scan.note,
            current,
        });
    }
    Ok(TrackShipmentResponse { shipment: Some(shipment), history })
}

/// No shipment has `number`.
pub fn not_found(number: &TrackingNumber) -> ServiceError {
    ServiceError::NotFound(format!("no shipment with tracking number {number}"))
}
