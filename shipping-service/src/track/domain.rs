//! Deciding a carrier scan. Scans rank IN_TRANSIT < OUT_FOR_DELIVERY = DELIVERY_FAILED <
//! DELIVERED = RETURNED; a scan becomes the parcel's state if it ranks higher than the current
//! one, or equal and later, and nothing follows an end. Whatever order the scans arrive in, the
//! parcel ends in the same state. Pure: no I/O.

use crate::pickup::collected_from;
use chrono::{DateTime, Utc};
use orderflow_kit::decider::Decider;
use orderflow_kit::delivery::promise::{Scanned, Window, after_scan};
use orderflow_kit::envelope;
use orderflow_proto::common::v1::TrackingScan;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Delivered, Returned, TrackingUpdated};
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus};

/// A carrier scan, checked at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub tracking_number: String,
    pub scan_id: String,
    pub status: Scanned,
    pub location: String,
    pub note: String,
    pub occurred_at: DateTime<Utc>,
}

impl Scan {
    /// As the events and the API show it.
    pub fn to_proto(&self) -> TrackingScan {
        TrackingScan {
            tracking_number: self.tracking_number.clone(),
            scan_id: self.scan_id.clone(),
            status: status(self.status).as_str_name().to_owned(),
            location: self.location.clone(),
            occurred_at: Some(envelope::timestamp(self.occurred_at)),
            note: self.note.clone(),
        }
    }
}

/// The shipment status a scan puts a parcel in.
pub const fn status(scanned: Scanned) -> ShipmentStatus {
    match scanned {
        Scanned::InTransit => ShipmentStatus::InTransit,
        Scanned::OutForDelivery => ShipmentStatus::OutForDelivery,
        Scanned::DeliveryFailed => ShipmentStatus::DeliveryFailed,
        Scanned::Delivered => ShipmentStatus::Delivered,
        Scanned::Returned => ShipmentStatus::Returned,
    }
}

/// The scan statuses a carrier reports; `None` for the others.
pub fn scanned(status: ShipmentStatus) -> Option<Scanned> {
    Some(match status {
        ShipmentStatus::InTransit => Scanned::InTransit,
        ShipmentStatus::OutForDelivery => Scanned::OutForDelivery,
        ShipmentStatus::DeliveryFailed => Scanned::DeliveryFailed,
        ShipmentStatus::Delivered => Scanned::Delivered,
        ShipmentStatus::Returned => Scanned::Returned,
        _ => return None,
    })
}

const fn rank(scanned: Scanned) -> u8 {
    match scanned {
        Scanned::InTransit => 1,
        Scanned::OutForDelivery | Scanned::DeliveryFailed => 2,
        Scanned::Delivered | Scanned::Returned => 3,
    }
}

/// True if `scan` becomes the state of a parcel in `shipment`.
pub fn is_current(shipment: &Shipment, scan: &Scan) -> bool {
    let status = ShipmentStatus::try_from(shipment.status).unwrap_or(ShipmentStatus::Unspecified);
    if matches!(status, ShipmentStatus::Delivered | ShipmentStatus::Returned) {
        return false;
    }
    let Some(last) = &shipment.last_tracking_event else { return true };
    let last_rank = ShipmentStatus::from_str_name(&last.status).and_then(scanned).map_or(0, rank);
    let last_at = last.occurred_at.and_then(envelope::datetime).unwrap_or_default();
    (rank(scan.status), scan.occurred_at) > (last_rank, last_at)
}

/// RecordTrackingEvent → [Shipped] TrackingUpdated [Delivered | Returned], on the shipment.
pub struct Track;

impl Decider for Track {
    type State = Shipment;
    type Command = Scan;
    type Event = Payload;
    type Rejection = std::convert::Infallible;

    fn decide(shipment: &Shipment, scan: &Scan) -> Result<Vec<Payload>, Self::Rejection> {
        let mut events = Vec::new();
        if shipment.status == ShipmentStatus::Labelled as i32 {
            events.push(Payload::Shipped(collected_from(shipment)));
        }
        let current = is_current(shipment, scan);
        let day = scan.occurred_at.date_naive();
        let window = shipment
            .delivery_promise
            .as_ref()
            .and_then(Window::from_proto)
            .unwrap_or(Window { earliest: day, latest: day });
        let window = if current { after_scan(window, scan.status, day) } else { window };
        events.push(Payload::TrackingUpdated(TrackingUpdated {
            scan: Some(scan.to_proto()),
            current,
            delivery_promise: Some(window.to_proto()),
            carrier: shipment.carrier.clone(),
        }));
        let (carrier, tracking_number) = (shipment.carrier.clone(), shipment.tracking_number.clone());
        match scan.status {
            Scanned::Delivered if current => events.push(Payload::Delivered(Delivered { carrier, tracking_number })),
            Scanned::Returned if current => {
                events.push(Payload::Returned(Returned { carrier, tracking_number, note: scan.note.clone() }));
            }
            _ => {}
        }
        Ok(events)
    }

    fn evolve(mut shipment: Shipment, event: &Payload) -> Shipment {
        match event {
            Payload::Shipped(_) => shipment.status = ShipmentStatus::Shipped as i32,
            Payload::TrackingUpdated(updated) if updated.current => {
                let scan = updated.scan.clone().unwrap_or_default();
                shipment.status = ShipmentStatus::from_str_name(&scan.status).unwrap_or(ShipmentStatus::Shipped) as i32;
                if shipment.status == ShipmentStatus::Delivered as i32 {
                    shipment.delivered_at = scan.occurred_at;
                }
                shipment.last_tracking_event = Some(scan);
                shipment.delivery_promise.clone_from(&updated.delivery_promise);
            }
            _ => {}
        }
        shipment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use orderflow_kit::decider::run;
    use orderflow_kit::envelope::event_type;

    fn shipment(status: ShipmentStatus) -> Shipment {
        Shipment {
            status: status as i32,
            carrier: "DPD".into(),
            tracking_number: "DP000000000018".into(),
            delivery_promise: Some(
                Window::from_proto(&orderflow_proto::common::v1::DeliveryPromise {
                    earliest: "2026-12-01".into(),
                    latest: "2026-12-02".into(),
                    ..Default::default()
                })
                .unwrap()
                .to_proto(),
            ),
            ..Default::default()
        }
    }

    fn scan(id: &str, status: Scanned, day: u32, hour: u32) -> Scan {
        Scan {
            tracking_number: "DP000000000018".into(),
            scan_id: id.into(),
            status,
            location: "Hub".into(),
            note: String::new(),
            occurred_at: Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap(),
        }
    }

    fn types(events: &[Payload]) -> Vec<&'static str> {
        events.iter().map(event_type).collect()
    }

    /// Applies the scans in turn; the final shipment.
    fn apply(mut state: Shipment, scans: &[Scan]) -> Shipment {
        for s in scans {
            state = run::<Track>(state, s).unwrap().1;
        }
        state
    }

    #[test]
    fn a_delivery_scan_ends_the_parcel_and_later_ones_change_nothing() {
        let Ok((events, delivered)) =
            run::<Track>(shipment(ShipmentStatus::Shipped), &scan("s1", Scanned::Delivered, 2, 10));
        assert_eq!(types(&events), ["TrackingUpdated", "Delivered"]);
        assert_eq!(delivered.status, ShipmentStatus::Delivered as i32);
        assert!(delivered.delivered_at.is_some());
        let Ok((events, after)) = run::<Track>(delivered.clone(), &scan("s2", Scanned::Returned, 3, 10));
        assert_eq!(types(&events), ["TrackingUpdated"], "history only");
        assert_eq!(after, delivered);
    }

    #[test]
    fn a_scan_of_a_parcel_awaiting_pickup_collects_it_first() {
        let Ok((events, state)) =
            run::<Track>(shipment(ShipmentStatus::Labelled), &scan("s1", Scanned::InTransit, 1, 8));
        assert_eq!(types(&events), ["Shipped", "TrackingUpdated"]);
        assert_eq!(state.status, ShipmentStatus::InTransit as i32);
    }

    #[test]
    fn scans_in_any_order_end_in_the_same_state() {
        let scans = [
            scan("a", Scanned::InTransit, 1, 8),
            scan("b", Scanned::OutForDelivery, 2, 7),
            scan("c", Scanned::DeliveryFailed, 2, 12),
            scan("d", Scanned::OutForDelivery, 3, 7),
            scan("e", Scanned::InTransit, 1, 20),
        ];
        let in_order = apply(shipment(ShipmentStatus::Shipped), &scans);
        assert_eq!(in_order.status, ShipmentStatus::OutForDelivery as i32);
        assert_eq!(in_order.last_tracking_event.as_ref().unwrap().scan_id, "d");
        let promise = in_order.delivery_promise.clone().unwrap();
        assert_eq!((promise.earliest.as_str(), promise.latest.as_str()), ("2026-12-03", "2026-12-03"));
        let mut reversed = scans.to_vec();
        reversed.reverse();
        assert_eq!(apply(shipment(ShipmentStatus::Shipped), &reversed), in_order);
        let shuffled = [&scans[2], &scans[0], &scans[4], &scans[3], &scans[1]].map(Clone::clone);
        assert_eq!(apply(shipment(ShipmentStatus::Shipped), &shuffled), in_order);
    }

    #[test]
    fn an_older_scan_is_history_only() {
        let state = apply(shipment(ShipmentStatus::Shipped), &[scan("b", Scanned::OutForDelivery, 2, 7)]);
        let Ok((events, after)) = run::<Track>(state.clone(), &scan("a", Scanned::InTransit, 1, 8));
        let Some(Payload::TrackingUpdated(updated)) = events.first() else { panic!("{events:?}") };
        assert!(!updated.current);
        assert_eq!(updated.delivery_promise, state.delivery_promise, "the promise stays");
        assert_eq!(after, state);
    }

    #[test]
    fn a_failed_attempt_moves_the_promise_to_the_next_working_day() {
        // 2026-12-04 is a Friday.
        let state = apply(shipment(ShipmentStatus::Shipped), &[scan("c", Scanned::DeliveryFailed, 4, 12)]);
        let promise = state.delivery_promise.unwrap();
        assert_eq!((promise.earliest.as_str(), promise.latest.as_str()), ("2026-12-07", "2026-12-07"));
    }

    #[test]
    fn a_return_ends_the_parcel_returned() {
        let mut returned = scan("r", Scanned::Returned, 9, 9);
        returned.note = "refused by recipient".into();
        let Ok((events, state)) = run::<Track>(shipment(ShipmentStatus::DeliveryFailed), &returned);
        assert_eq!(types(&events), ["TrackingUpdated", "Returned"]);
        let Some(Payload::Returned(r)) = events.last() else { unreachable!() };
        assert_eq!(r.note, "refused by recipient");
        assert_eq!(state.status, ShipmentStatus::Returned as i32);
    }
}
