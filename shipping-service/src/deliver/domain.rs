//! Deciding a delivery scan: a shipped parcel becomes delivered, once; a repeated scan (carriers
//! retry their callbacks) decides nothing and is answered as before. Pure: no I/O.

use crate::tracking_number::TrackingNumber;
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::Delivered;
use orderflow_proto::shipping::v1::ShipmentStatus;

/// A carrier's delivery scan of one parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub carrier: String,
    pub tracking_number: TrackingNumber,
}

/// ConfirmDelivery → Delivered, decided on the shipment's status.
pub struct Deliver;

impl Decider for Deliver {
    type State = ShipmentStatus;
    type Command = Scan;
    type Event = Delivered;
    type Rejection = std::convert::Infallible;

    fn decide(status: &ShipmentStatus, scan: &Scan) -> Result<Vec<Delivered>, Self::Rejection> {
        Ok(match status {
            ShipmentStatus::Delivered => vec![],
            _ => vec![Delivered { carrier: scan.carrier.clone(), tracking_number: scan.tracking_number.to_string() }],
        })
    }

    fn evolve(_: ShipmentStatus, _: &Delivered) -> ShipmentStatus {
        ShipmentStatus::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    #[test]
    fn a_repeated_delivery_scan_changes_nothing() {
        let scan = Scan { carrier: "DPD".into(), tracking_number: TrackingNumber::issue("DP", 7) };
        let Ok((events, status)) = run::<Deliver>(ShipmentStatus::Shipped, &scan);
        assert_eq!((events.len(), status), (1, ShipmentStatus::Delivered));
        assert_eq!(events[0].tracking_number, scan.tracking_number.as_str());
        let Ok((again, _)) = run::<Deliver>(status, &scan);
        assert!(again.is_empty());
    }
}
