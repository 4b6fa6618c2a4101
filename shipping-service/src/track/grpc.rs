//! The RecordTrackingEvent and ConfirmDelivery adapters: check the scan at the edge, lock the
//! shipment, record the scan once (a repeated scan id changes nothing and is answered as
//! such), decide, and store the shipment with its events in one transaction.

use super::domain::{Scan, Track, scanned};
use crate::store;
use crate::track_shipment::not_found;
use crate::tracking_number::TrackingNumber;
use chrono::{DateTime, Utc};
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::types::{FieldError, optional_text, required_text};
use orderflow_kit::{ServiceError, outbox};
use orderflow_proto::shipping::v1::{
    RecordTrackingEventRequest, RecordTrackingEventResponse, Shipment, ShipmentStatus,
};
use sqlx::PgPool;

/// How far ahead of this clock a carrier's scan time may be (carriers' clocks drift).
const FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A request's scan, checked: every field named in its error.
fn scan(request: &RecordTrackingEventRequest, now: DateTime<Utc>) -> Result<Scan, FieldError> {
    let number = TrackingNumber::try_from(request.tracking_number.as_str())?;
    let scan_id = required_text("scan_id", &request.scan_id, 128)?;
    let status = ShipmentStatus::try_from(request.status).ok().and_then(scanned).ok_or_else(|| {
        FieldError::new("status", "must be IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERY_FAILED, DELIVERED or RETURNED")
    })?;
    let occurred_at = match request.occurred_at {
        None => now,
        Some(t) => envelope::datetime(t).ok_or_else(|| FieldError::new("occurred_at", "is not a valid time"))?,
    };
    if occurred_at > now + FUTURE_SKEW {
        return Err(FieldError::new("occurred_at", "is in the future"));
    }
    Ok(Scan {
        tracking_number: number.as_str().to_owned(),
        scan_id,
        status,
        location: optional_text("location", &request.location, 200)?,
        note: optional_text("note", &request.note, 500)?,
        occurred_at,
    })
}

/// Records a carrier's scan; a token bound to `carrier` scans only that carrier's parcels
/// (another's is NOT_FOUND, as an unknown number).
pub async fn record_tracking_event(
    pool: &PgPool,
    topic: &str,
    trace: TraceParent,
    carrier: Option<&str>,
    request: &RecordTrackingEventRequest,
) -> Result<RecordTrackingEventResponse, ServiceError> {
    let scan = scan(request, Utc::now())?;
    let number = TrackingNumber::try_from(scan.tracking_number.as_str())?;
    let mut tx = pool.begin().await?;
    let shipment = store::by_tracking_number(&mut tx, number.as_str(), true)
        .await?
        .filter(|s| carrier.is_none_or(|c| s.carrier.eq_ignore_ascii_case(c)))
        .ok_or_else(|| not_found(&number))?;
    let Ok(events) = Track::decide(&shipment, &scan);
    let current = super::domain::is_current(&shipment, &scan);
    if !store::insert_scan(&mut tx, &scan.to_proto(), current).await? {
        tx.rollback().await?;
        let current = shipment.last_tracking_event.as_ref().is_some_and(|last| last.scan_id == scan.scan_id);
        return Ok(RecordTrackingEventResponse { shipment: Some(shipment), duplicate: true, current });
    }
    let evolved = events.iter().fold(shipment.clone(), Track::evolve);
    store::save_all(&mut tx, &[&evolved]).await?;
    let cause = Cause::command(trace);
    let events: Vec<_> = events
        .into_iter()
        .map(|payload| envelope::build(crate::SERVICE, &shipment.order_id, payload, &cause))
        .collect();
    outbox::enqueue_all(&mut tx, topic, &events).await?;
    let stored = store::by_tracking_number(&mut tx, number.as_str(), false).await?.ok_or_else(|| not_found(&number))?;
    tx.commit().await?;
    tracing::info!(order_id = %stored.order_id, tracking_number = %number, scan_id = %scan.scan_id, status = ?scan.status, current, "tracking scan recorded");
    Ok(RecordTrackingEventResponse { shipment: Some(stored), duplicate: false, current })
}

/// A DELIVERED scan now, with the scan id `confirm-delivery`: repeating it changes nothing.
pub async fn confirm_delivery(
    pool: &PgPool,
    topic: &str,
    trace: TraceParent,
    carrier: Option<&str>,
    tracking_number: &str,
) -> Result<Shipment, ServiceError> {
    let request = RecordTrackingEventRequest {
        tracking_number: tracking_number.to_owned(),
        scan_id: "confirm-delivery".to_owned(),
        status: ShipmentStatus::Delivered as i32,
        ..Default::default()
    };
    let answer = record_tracking_event(pool, topic, trace, carrier, &request).await?;
    answer.shipment.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("a recorded scan has a shipment")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::delivery::promise::Scanned;

    type Spoil = fn(&mut RecordTrackingEventRequest);

    fn request() -> RecordTrackingEventRequest {
        RecordTrackingEventRequest {
            tracking_number: "dp000000000018".into(),
            scan_id: "scan-1".into(),
            status: ShipmentStatus::InTransit as i32,
            location: " Hub Leipzig ".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_scan_is_normalised_and_dated_now_when_undated() {
        let now = Utc::now();
        let scan = scan(&request(), now).unwrap();
        assert_eq!(
            (scan.tracking_number.as_str(), scan.status, scan.location.as_str(), scan.occurred_at),
            ("DP000000000018", Scanned::InTransit, "Hub Leipzig", now)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = Utc::now();
        let cases: [(Spoil, &str); 7] = [
            (|r| r.tracking_number = "nope".into(), "tracking_number"),
            (|r| r.scan_id = " ".into(), "scan_id"),
            (|r| r.status = ShipmentStatus::Labelled as i32, "status"),
            (|r| r.status = 99, "status"),
            (|r| r.occurred_at = Some(prost_types::Timestamp { seconds: 0, nanos: -5 }), "occurred_at"),
            (|r| r.occurred_at = Some(envelope::timestamp(Utc::now() + chrono::TimeDelta::days(2))), "occurred_at"),
            (|r| r.note = "x".repeat(501), "note"),
        ];
        for (spoil, field) in cases {
            let mut bad = request();
            spoil(&mut bad);
            assert_eq!(scan(&bad, now).unwrap_err().field, field, "{bad:?}");
        }
    }
}
