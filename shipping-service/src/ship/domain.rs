//! Deciding a shipment for a packed parcel: the cheapest carrier of the rate table, and a
//! tracking number; a parcel no carrier takes is rejected with the reason, so the order still
//! ends. One label per order, however often it is requested. Pure: no I/O.

use super::rates::{RATES, zone};
use crate::tracking_number::TrackingNumber;
use orderflow_kit::decider::Decider;
use orderflow_proto::common::v1::ServiceLevel;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Packed, ShipmentRejected, Shipped};

/// A shipment request, checked at the edge: the packed parcel, where the warehouse is, and the
/// serial its label gets (drawn from a sequence by the adapter: unique by construction).
#[derive(Debug, Clone, PartialEq)]
pub struct Parcel {
    pub packed: Packed,
    pub origin_country: String,
    pub serial: u64,
}

/// Why no carrier takes a parcel (announced as ShipmentRejected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unshippable {
    #[error("packed parcel has no destination country")]
    NoDestination,
    #[error("no carrier serves a {level} parcel of {grams} g to {country}")]
    NoRate { level: &'static str, grams: u32, country: String },
}

/// ShipmentRequested → Shipped | ShipmentRejected, decided on whether the order is labelled
/// already.
pub struct Ship;

impl Decider for Ship {
    type State = bool;
    type Command = Parcel;
    type Event = Payload;
    type Rejection = std::convert::Infallible;

    fn decide(labelled: &bool, parcel: &Parcel) -> Result<Vec<Payload>, Self::Rejection> {
        if *labelled {
            return Ok(vec![]);
        }
        Ok(vec![match label(parcel) {
            Ok(shipped) => Payload::Shipped(shipped),
            Err(unshippable) => Payload::ShipmentRejected(ShipmentRejected { reason: unshippable.to_string() }),
        }])
    }

    fn evolve(labelled: bool, event: &Payload) -> bool {
        labelled || matches!(event, Payload::Shipped(_))
    }
}

/// Chooses the cheapest carrier for the parcel and labels it.
fn label(parcel: &Parcel) -> Result<Shipped, Unshippable> {
    let packed = &parcel.packed;
    let country = packed
        .shipping_address
        .as_ref()
        .map(|a| a.country.as_str())
        .filter(|c| !c.is_empty())
        .ok_or(Unshippable::NoDestination)?;
    let level = match ServiceLevel::try_from(packed.service_level) {
        Ok(ServiceLevel::Express) => ServiceLevel::Express,
        _ => ServiceLevel::Standard,
    };
    let zone = zone(&parcel.origin_country, country);
    let rate = RATES
        .iter()
        .filter(|r| r.level == level && r.zone == zone && packed.weight_grams <= r.max_grams)
        .min_by_key(|r| r.cost_cents(packed.weight_grams))
        .ok_or_else(|| Unshippable::NoRate {
            level: level.as_str_name(),
            grams: packed.weight_grams,
            country: country.to_owned(),
        })?;
    Ok(Shipped {
        carrier: rate.carrier.to_owned(),
        carrier_service: rate.service.to_owned(),
        tracking_number: TrackingNumber::issue(rate.code, parcel.serial).to_string(),
        weight_grams: packed.weight_grams,
        cost_cents: rate.cost_cents(packed.weight_grams),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;
    use orderflow_proto::common::v1::Address;

    fn parcel(country: &str, grams: u32, level: ServiceLevel) -> Parcel {
        let packed = Packed {
            weight_grams: grams,
            service_level: level as i32,
            shipping_address: Some(Address { country: country.into(), ..Default::default() }),
            ..Default::default()
        };
        Parcel { packed, origin_country: "DE".into(), serial: 1 }
    }

    fn decide(parcel: &Parcel) -> Result<Shipped, String> {
        let Ok(mut events) = Ship::decide(&false, parcel);
        match events.pop() {
            Some(Payload::Shipped(shipped)) => Ok(shipped),
            Some(Payload::ShipmentRejected(rejected)) => Err(rejected.reason),
            other => panic!("decided {other:?}"),
        }
    }

    #[test]
    fn carriers_follow_the_rate_table() {
        let cases = [
            ("DE", 900, ServiceLevel::Standard, "DPD"),
            ("DE", 40_000, ServiceLevel::Standard, "DB Schenker"),
            ("FR", 900, ServiceLevel::Standard, "DHL"),
            ("US", 900, ServiceLevel::Standard, "DHL"),
            ("DE", 900, ServiceLevel::Express, "UPS"),
            ("US", 900, ServiceLevel::Express, "FedEx"),
            ("DE", 900, ServiceLevel::Unspecified, "DPD"),
        ];
        for (country, grams, level, carrier) in cases {
            assert_eq!(decide(&parcel(country, grams, level)).unwrap().carrier, carrier, "{country} {grams} {level:?}");
        }
    }

    #[test]
    fn cost_grows_per_started_kilogram() {
        let shipped = decide(&parcel("DE", 1_001, ServiceLevel::Standard)).unwrap();
        assert_eq!(shipped.cost_cents, 490 + 2 * 30);
    }

    #[test]
    fn unservable_parcels_are_rejected_with_a_reason() {
        assert_eq!(decide(&parcel("", 900, ServiceLevel::Standard)), Err(Unshippable::NoDestination.to_string()));
        let reason = decide(&parcel("US", 50_000, ServiceLevel::Standard)).unwrap_err();
        assert!(reason.starts_with("no carrier serves a STANDARD parcel of 50000 g to US"), "{reason}");
    }

    #[test]
    fn an_order_is_labelled_once() {
        let (events, labelled) = run::<Ship>(false, &parcel("DE", 900, ServiceLevel::Standard)).unwrap();
        assert!(labelled && events.len() == 1);
        assert_eq!(run::<Ship>(labelled, &parcel("DE", 900, ServiceLevel::Standard)).unwrap(), (vec![], true));
        let (_, labelled) = run::<Ship>(false, &parcel("", 900, ServiceLevel::Standard)).unwrap();
        assert!(!labelled, "a rejected parcel has no label");
    }
}
