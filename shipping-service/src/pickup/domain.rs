//! Deciding a collection scan: a labelled parcel of the collecting carrier becomes Shipped,
//! once; a parcel collected before decides nothing, and another carrier's parcel is refused.
//! Pure: no I/O.

use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::{Labelled, Shipped};
use orderflow_proto::shipping::v1::{Shipment, ShipmentStatus};

/// A carrier's collection scan of one parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pickup {
    pub carrier: String,
}

/// Why a parcel cannot be collected by this carrier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parcel {tracking_number} is on {owner}'s manifest, not {collector}'s")]
pub struct OtherCarrier {
    pub tracking_number: String,
    pub owner: String,
    pub collector: String,
}

/// ConfirmPickup → Shipped, decided on the shipment.
pub struct Collect;

impl Decider for Collect {
    type State = Shipment;
    type Command = Pickup;
    type Event = Shipped;
    type Rejection = OtherCarrier;

    fn decide(shipment: &Shipment, pickup: &Pickup) -> Result<Vec<Shipped>, OtherCarrier> {
        if !shipment.carrier.eq_ignore_ascii_case(pickup.carrier.trim()) {
            return Err(OtherCarrier {
                tracking_number: shipment.tracking_number.clone(),
                owner: shipment.carrier.clone(),
                collector: pickup.carrier.trim().to_owned(),
            });
        }
        if shipment.status != ShipmentStatus::Labelled as i32 {
            return Ok(vec![]);
        }
        Ok(vec![collected_from(shipment)])
    }

    fn evolve(mut shipment: Shipment, _: &Shipped) -> Shipment {
        shipment.status = ShipmentStatus::Shipped as i32;
        shipment
    }
}

/// What the collection of a stored label announces.
pub fn collected_from(shipment: &Shipment) -> Shipped {
    Shipped {
        carrier: shipment.carrier.clone(),
        carrier_service: shipment.carrier_service.clone(),
        tracking_number: shipment.tracking_number.clone(),
        weight_grams: shipment.weight_grams,
        cost_cents: shipment.cost_cents,
    }
}

/// What the courier's collection of a just-decided label announces (the simulated courier
/// that collects at once).
pub fn collected(label: &Labelled) -> Shipped {
    Shipped {
        carrier: label.carrier.clone(),
        carrier_service: label.carrier_service.clone(),
        tracking_number: label.tracking_number.clone(),
        weight_grams: label.weight_grams,
        cost_cents: label.cost_cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    fn labelled() -> Shipment {
        Shipment {
            status: ShipmentStatus::Labelled as i32,
            carrier: "DHL".into(),
            carrier_service: "Paket International".into(),
            tracking_number: "DH000000000018".into(),
            weight_grams: 900,
            cost_cents: 1_490,
            ..Default::default()
        }
    }

    #[test]
    fn a_label_is_collected_once_by_its_own_carrier() {
        let (events, collected) = run::<Collect>(labelled(), &Pickup { carrier: " dhl ".into() }).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].tracking_number.as_str(), events[0].cost_cents), ("DH000000000018", 1_490));
        assert_eq!(collected.status, ShipmentStatus::Shipped as i32);
        let (again, _) = run::<Collect>(collected, &Pickup { carrier: "DHL".into() }).unwrap();
        assert!(again.is_empty(), "collected before: nothing decided");
    }

    #[test]
    fn another_carrier_cannot_collect_it() {
        let refused = Collect::decide(&labelled(), &Pickup { carrier: "UPS".into() }).unwrap_err();
        assert_eq!(refused.to_string(), "parcel DH000000000018 is on DHL's manifest, not UPS's");
    }

    #[test]
    fn the_label_and_its_collection_agree() {
        let label = Labelled {
            carrier: "DHL".into(),
            carrier_service: "Paket International".into(),
            tracking_number: "DH000000000018".into(),
            weight_grams: 900,
            cost_cents: 1_490,
            ..Default::default()
        };
        let mut decided = Collect::decide(&labelled(), &Pickup { carrier: "DHL".into() }).unwrap();
        assert_eq!(decided.pop(), Some(collected(&label)));
    }
}
