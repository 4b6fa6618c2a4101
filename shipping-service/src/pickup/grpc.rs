//! The ListPickups and ConfirmPickup adapters. A collection scan is answered per parcel:
//! every number is checked and decided on its own, and all of one call's collections are
//! stored with their Shipped events in one transaction.

use super::domain::{Collect, Pickup};
use crate::store;
use crate::tracking_number::TrackingNumber;
use chrono::{DateTime, Utc};
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::types::{FieldError, required_text};
use orderflow_kit::{ServiceError, grpc, outbox};
use orderflow_proto::events::v1::Shipped;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::shipping::v1::{
    ConfirmPickupRequest, ConfirmPickupResponse, ListPickupsRequest, ListPickupsResponse, PickupOutcome, PickupResult,
    Shipment,
};
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use std::collections::HashMap;

/// The most tracking numbers one ConfirmPickup takes (a van's load, and a bounded transaction).
pub const MAX_PER_PICKUP: usize = 1_000;

pub async fn confirm_pickup(
    pool: &PgPool,
    topic: &str,
    trace: TraceParent,
    request: &ConfirmPickupRequest,
) -> Result<ConfirmPickupResponse, ServiceError> {
    let carrier = required_text("carrier", &request.carrier, 64)?;
    if request.tracking_numbers.is_empty() {
        return Err(FieldError::new("tracking_numbers", "at least one is required").into());
    }
    if request.tracking_numbers.len() > MAX_PER_PICKUP {
        return Err(FieldError::new("tracking_numbers", format!("at most {MAX_PER_PICKUP} per call")).into());
    }
    let parsed: Vec<_> = request
        .tracking_numbers
        .iter()
        .enumerate()
        .map(|(n, number)| TrackingNumber::parse(&format!("tracking_numbers[{n}]"), number))
        .collect();
    let numbers: Vec<&str> = parsed.iter().filter_map(|p| p.as_ref().ok()).map(TrackingNumber::as_str).collect();
    let mut tx = pool.begin().await?;
    let mut shipments: HashMap<String, Shipment> = store::lock_by_tracking_numbers(&mut tx, &numbers)
        .await?
        .into_iter()
        .map(|s| (s.tracking_number.clone(), s))
        .collect();
    let pickup = Pickup { carrier };
    let (mut results, mut collected) = (Vec::new(), Vec::new());
    for (typed, parsed) in request.tracking_numbers.iter().zip(parsed) {
        let result = |outcome: PickupOutcome, detail: String, shipment: Option<Shipment>| PickupResult {
            tracking_number: typed.clone(),
            outcome: outcome as i32,
            detail,
            shipment,
        };
        let number = match parsed {
            Ok(number) => number,
            Err(error) => {
                results.push(result(PickupOutcome::UnknownParcel, error.to_string(), None));
                continue;
            }
        };
        let Some(shipment) = shipments.get_mut(number.as_str()) else {
            let detail = format!("no parcel has tracking number {number}");
            results.push(result(PickupOutcome::UnknownParcel, detail, None));
            continue;
        };
        match Collect::decide(shipment, &pickup) {
            Err(other) => results.push(result(PickupOutcome::OtherCarrier, other.to_string(), None)),
            Ok(events) if events.is_empty() => {
                let detail = format!("parcel {number} was collected before");
                results.push(result(PickupOutcome::AlreadyCollected, detail, Some(shipment.clone())));
            }
            Ok(events) => {
                for shipped in events {
                    *shipment = Collect::evolve(shipment.clone(), &shipped);
                    collected.push((shipment.clone(), shipped));
                }
                results.push(result(PickupOutcome::Collected, String::new(), None));
            }
        }
    }
    record(&mut tx, topic, &Cause::command(trace), &collected).await?;
    // Answer the collected parcels as stored (their collection time).
    for result in &mut results {
        if result.outcome == PickupOutcome::Collected as i32 {
            let number = result.tracking_number.trim().to_ascii_uppercase();
            result.shipment = store::by_tracking_number(&mut tx, &number, false).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(carrier = %pickup.carrier, collected = collected.len(), asked = results.len(), "pick-up confirmed");
    Ok(ConfirmPickupResponse { results })
}

/// Stores the collected shipments and their Shipped events (the caller's transaction).
pub(super) async fn record(
    conn: &mut PgConnection,
    topic: &str,
    cause: &Cause,
    collected: &[(Shipment, Shipped)],
) -> Result<(), sqlx::Error> {
    let shipments: Vec<&Shipment> = collected.iter().map(|(s, _)| s).collect();
    store::save_all(conn, &shipments).await?;
    let events: Vec<_> = collected
        .iter()
        .map(|(s, shipped)| envelope::build(crate::SERVICE, &s.order_id, Payload::Shipped(shipped.clone()), cause))
        .collect();
    outbox::enqueue_all(conn, topic, &events).await?;
    Ok(())
}

pub async fn list_pickups(pool: &PgPool, request: &ListPickupsRequest) -> Result<ListPickupsResponse, ServiceError> {
    let carrier = request.carrier.trim();
    let carrier = (!carrier.is_empty()).then_some(carrier);
    let after = if request.page_token.is_empty() { None } else { Some(parse_token(&request.page_token)?) };
    let size = grpc::page_size(request.page_size, 100, 1_000);
    let after = after.as_ref().map(|(at, n)| (*at, n.as_str()));
    let parcels = store::awaiting_pickup(pool, carrier, after, size + 1).await?;
    let (parcels, next_page_token) = grpc::page(parcels, size, token);
    Ok(ListPickupsResponse { parcels, next_page_token })
}

/// A page token: the last parcel's label time (microseconds) and tracking number.
fn token(shipment: &Shipment) -> String {
    let at = shipment.labelled_at.and_then(envelope::datetime).unwrap_or_default();
    format!("{}.{}", at.timestamp_micros(), shipment.tracking_number)
}

fn parse_token(token: &str) -> Result<(DateTime<Utc>, String), FieldError> {
    let invalid = || FieldError::new("page_token", "is not a token this service issued");
    let (micros, number) = token.split_once('.').ok_or_else(invalid)?;
    let at = micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
    let number = TrackingNumber::parse("page_token", number).map_err(|_| invalid())?;
    Ok((at, number.as_str().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let shipment = Shipment {
            tracking_number: "DH000000000018".into(),
            labelled_at: Some(envelope::timestamp(at)),
            ..Default::default()
        };
        assert_eq!(parse_token(&token(&shipment)).unwrap(), (at, "DH000000000018".to_owned()));
        for bad in ["x", "1.DH1", "abc.DH000000000018", "99999999999999999999.DH000000000018"] {
            assert_eq!(parse_token(bad).unwrap_err().field, "page_token", "{bad}");
        }
    }
}
