//! Deciding a shipment for a packed parcel: the carrier from the rate table, and a tracking
//! number with a check digit. Pure: no I/O.

use crate::rates::{RATES, zone};
use orderflow_kit::types::FieldError;
use orderflow_proto::common::v1::ServiceLevel;
use orderflow_proto::events::v1::{Packed, Shipped};
use orderflow_proto::shipping::v1::ShipmentStatus;

/// Why a parcel cannot be shipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("packed parcel has no destination country")]
    NoDestination,
    #[error("no carrier serves a {level} parcel of {grams} g to {country}")]
    NoRate { level: &'static str, grams: u32, country: String },
}

/// Chooses the cheapest carrier for the parcel and labels it. `serial` makes the tracking
/// number unique (derived from the order id by the caller).
pub fn decide(packed: &Packed, origin_country: &str, serial: u64) -> Result<Shipped, Rejection> {
    let country = packed
        .shipping_address
        .as_ref()
        .map(|a| a.country.as_str())
        .filter(|c| !c.is_empty())
        .ok_or(Rejection::NoDestination)?;
    let level = match ServiceLevel::try_from(packed.service_level) {
        Ok(ServiceLevel::Express) => ServiceLevel::Express,
        _ => ServiceLevel::Standard,
    };
    let zone = zone(origin_country, country);
    let rate = RATES
        .iter()
        .filter(|r| r.level == level && r.zone == zone && packed.weight_grams <= r.max_grams)
        .min_by_key(|r| r.cost_cents(packed.weight_grams))
        .ok_or_else(|| Rejection::NoRate {
            level: level.as_str_name(),
            grams: packed.weight_grams,
            country: country.to_owned(),
        })?;
    Ok(Shipped {
        carrier: rate.carrier.to_owned(),
        carrier_service: rate.service.to_owned(),
        tracking_number: tracking_number(rate.code, serial),
        weight_grams: packed.weight_grams,
        cost_cents: rate.cost_cents(packed.weight_grams),
    })
}

/// `<carrier code><11 digits><Luhn check digit>`, e.g. `DP123456789015`.
pub fn tracking_number(code: &str, serial: u64) -> String {
    let digits = format!("{:011}", serial % 100_000_000_000);
    format!("{code}{digits}{}", luhn_check_digit(&digits))
}

/// The Luhn (mod 10) check digit of a string of decimal digits.
pub fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Checks a tracking number's shape and check digit, as the field `field`.
pub fn tracking_number_field(field: &str, number: &str) -> Result<String, FieldError> {
    let number = number.trim().to_ascii_uppercase();
    if number.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    let (code, digits) = number.split_at_checked(2).unwrap_or_default();
    if !code.chars().all(|c| c.is_ascii_uppercase())
        || digits.len() != 12
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(FieldError::new(field, "must be two letters and twelve digits, e.g. DP048213977514"));
    }
    let (body, check) = digits.split_at(11);
    if check.parse::<u32>().ok() != Some(luhn_check_digit(body)) {
        return Err(FieldError::new(field, "check digit does not match; mistyped?"));
    }
    Ok(number)
}

/// What a delivery scan does to a shipment in `status`.
pub fn decide_delivery(status: ShipmentStatus) -> Delivery {
    match status {
        ShipmentStatus::Delivered => Delivery::AlreadyDelivered,
        _ => Delivery::Deliver,
    }
}

/// The outcome of a delivery scan: record it, or answer as before (carriers retry callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Deliver,
    AlreadyDelivered,
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::common::v1::Address;

    fn parcel(country: &str, grams: u32, level: ServiceLevel) -> Packed {
        Packed {
            weight_grams: grams,
            service_level: level as i32,
            shipping_address: Some(Address { country: country.into(), ..Default::default() }),
            ..Default::default()
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
            assert_eq!(
                decide(&parcel(country, grams, level), "DE", 1).unwrap().carrier,
                carrier,
                "{country} {grams} {level:?}"
            );
        }
    }

    #[test]
    fn cost_grows_per_started_kilogram() {
        let shipped = decide(&parcel("DE", 1_001, ServiceLevel::Standard), "DE", 1).unwrap();
        assert_eq!(shipped.cost_cents, 490 + 2 * 30);
    }

    #[test]
    fn unservable_parcels_are_refused_with_a_reason() {
        assert_eq!(decide(&parcel("", 900, ServiceLevel::Standard), "DE", 1), Err(Rejection::NoDestination));
        assert!(matches!(
            decide(&parcel("US", 50_000, ServiceLevel::Standard), "DE", 1),
            Err(Rejection::NoRate { .. })
        ));
    }

    #[test]
    fn tracking_numbers_carry_a_luhn_check_digit() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
        let number = tracking_number("DP", 12_345_678_901);
        assert_eq!(number.len(), 14);
        assert!(number.starts_with("DP12345678901"));
        assert_eq!(tracking_number_field("t", &number.to_ascii_lowercase()).unwrap(), number);
        let mut tampered = number.into_bytes();
        tampered[5] = if tampered[5] == b'9' { b'0' } else { tampered[5] + 1 };
        let error = tracking_number_field("t", &String::from_utf8(tampered).unwrap()).unwrap_err();
        assert_eq!(error.message, "check digit does not match; mistyped?");
        assert_eq!(tracking_number_field("t", "DP123").unwrap_err().field, "t");
        assert_eq!(tracking_number_field("t", "").unwrap_err().message, "is required");
    }

    #[test]
    fn a_repeated_delivery_scan_changes_nothing() {
        assert_eq!(decide_delivery(ShipmentStatus::Shipped), Delivery::Deliver);
        assert_eq!(decide_delivery(ShipmentStatus::Delivered), Delivery::AlreadyDelivered);
    }

    proptest::proptest! {
        /// A typed tracking number is accepted or refused with the field named, never a panic;
        /// every number this service issues is accepted.
        #[test]
        fn any_typed_tracking_number_is_checked_without_panicking(typed in ".{0,40}", serial in proptest::num::u64::ANY) {
            if let Err(error) = tracking_number_field("tracking_number", &typed) {
                proptest::prop_assert_eq!(error.field, "tracking_number");
            }
            let issued = tracking_number("DP", serial);
            proptest::prop_assert!(tracking_number_field("tracking_number", &issued).is_ok(), "{}", issued);
        }
    }
}
