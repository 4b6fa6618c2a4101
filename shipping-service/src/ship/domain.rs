//! Deciding a label for a packed parcel: the cheapest carrier of the rate table, a tracking
//! number, the label to print and the delivery promise for that carrier from the time of
//! labelling; a parcel no carrier takes is rejected with the reason, so the order still ends.
//! One label per order, however often it is requested. Pure: no I/O.

use crate::tracking_number::TrackingNumber;
use chrono::{DateTime, Utc};
use orderflow_kit::decider::Decider;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::delivery::promise::for_rate;
use orderflow_kit::delivery::rates::{RATES, zone};
use orderflow_proto::common::v1::{Address, ServiceLevel};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Labelled, Packed, ShipmentRejected};

/// A shipment request, checked at the edge: the packed parcel, the warehouse it leaves, the
/// serial its label gets (drawn from a sequence by the adapter: unique by construction) and
/// when it is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Parcel {
    pub packed: Packed,
    pub warehouse: Warehouse,
    pub serial: u64,
    pub at: DateTime<Utc>,
}

/// Why no carrier takes a parcel (announced as ShipmentRejected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unshippable {
    #[error("packed parcel has no destination country")]
    NoDestination,
    #[error("no carrier serves a {level} parcel of {grams} g to {country}")]
    NoRate { level: &'static str, grams: u32, country: String },
}

/// ShipmentRequested → Labelled | ShipmentRejected, decided on whether the order is labelled
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
            Ok(labelled) => Payload::Labelled(labelled),
            Err(unshippable) => Payload::ShipmentRejected(ShipmentRejected { reason: unshippable.to_string() }),
        }])
    }

    fn evolve(labelled: bool, event: &Payload) -> bool {
        labelled || matches!(event, Payload::Labelled(_))
    }
}

/// The service level a parcel is sent with (unspecified is STANDARD).
pub fn level(packed: &Packed) -> ServiceLevel {
    match ServiceLevel::try_from(packed.service_level) {
        Ok(ServiceLevel::Express) => ServiceLevel::Express,
        _ => ServiceLevel::Standard,
    }
}

/// Chooses the cheapest carrier for the parcel and labels it.
fn label(parcel: &Parcel) -> Result<Labelled, Unshippable> {
    let packed = &parcel.packed;
    let address = packed.shipping_address.as_ref();
    let country = address.map(|a| a.country.as_str()).filter(|c| !c.is_empty()).ok_or(Unshippable::NoDestination)?;
    let level = level(packed);
    let zone = zone(&parcel.warehouse.country, country);
    let rate = RATES
        .iter()
        .filter(|r| r.level == level && r.zone == zone && packed.weight_grams <= r.max_grams)
        .min_by_key(|r| r.cost_cents(packed.weight_grams))
        .ok_or_else(|| Unshippable::NoRate {
            level: level.as_str_name(),
            grams: packed.weight_grams,
            country: country.to_owned(),
        })?;
    let tracking_number = TrackingNumber::issue(rate.code, parcel.serial).to_string();
    let zpl = zpl(rate.carrier, rate.service, &tracking_number, packed.weight_grams, address);
    Ok(Labelled {
        carrier: rate.carrier.to_owned(),
        carrier_service: rate.service.to_owned(),
        tracking_number,
        weight_grams: packed.weight_grams,
        cost_cents: rate.cost_cents(packed.weight_grams),
        label: zpl,
        delivery_promise: Some(for_rate(&parcel.warehouse, rate, parcel.at).to_proto()),
    })
}

/// The label as ZPL, what thermal label printers take: carrier and service, the address, the
/// weight and the tracking number as a Code 128 barcode. Field text cannot break out of its
/// field (`^` and `~` start ZPL commands and are replaced).
fn zpl(carrier: &str, service: &str, tracking_number: &str, grams: u32, address: Option<&Address>) -> String {
    let field = |s: &str| s.replace(['^', '~'], " ");
    let address = address.cloned().unwrap_or_default();
    let lines = [address.name, address.line1, address.line2, format!("{} {}", address.postal_code, address.city)];
    let mut out = format!("^XA^FO40,40^A0N,50,50^FD{} {}^FS", field(carrier), field(service));
    for (n, line) in lines.iter().filter(|l| !l.trim().is_empty()).enumerate() {
        out.push_str(&format!("^FO40,{}^A0N,30,30^FD{}^FS", 120 + 40 * n, field(line)));
    }
    out.push_str(&format!(
        "^FO40,300^A0N,40,40^FD{}^FS^FO40,360^A0N,30,30^FD{} g^FS^FO40,420^BCN,120,Y,N,N^FD{tracking_number}^FS^XZ",
        field(&address.country),
        grams
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use orderflow_kit::decider::run;

    fn parcel(country: &str, grams: u32, level: ServiceLevel) -> Parcel {
        let packed = Packed {
            weight_grams: grams,
            service_level: level as i32,
            shipping_address: Some(Address {
                name: "Ada ^XZ Lovelace".into(),
                city: "Berlin".into(),
                country: country.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        Parcel { packed, warehouse: Warehouse::default(), serial: 1, at }
    }

    fn decide(parcel: &Parcel) -> Result<Labelled, String> {
        let Ok(mut events) = Ship::decide(&false, parcel);
        match events.pop() {
            Some(Payload::Labelled(labelled)) => Ok(labelled),
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
        let labelled = decide(&parcel("DE", 1_001, ServiceLevel::Standard)).unwrap();
        assert_eq!(labelled.cost_cents, 490 + 2 * 30);
    }

    #[test]
    fn the_label_carries_the_promise_of_its_carrier_and_a_printable_zpl() {
        let labelled = decide(&parcel("DE", 900, ServiceLevel::Standard)).unwrap();
        let promise = labelled.delivery_promise.unwrap();
        assert_eq!((promise.earliest.as_str(), promise.latest.as_str()), ("2026-12-01", "2026-12-02"), "DPD 1-2 days");
        assert!(labelled.label.starts_with("^XA^FO40,40^A0N,50,50^FDDPD Classic^FS"), "{}", labelled.label);
        assert!(labelled.label.contains(&format!("^FD{}^FS^XZ", labelled.tracking_number)));
        assert!(labelled.label.contains("Ada  XZ Lovelace"), "no ZPL command from an address: {}", labelled.label);
        assert_eq!(labelled.label.matches("^XZ").count(), 1);
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
