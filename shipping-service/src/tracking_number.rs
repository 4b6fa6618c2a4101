//! Tracking numbers: `<carrier code><11 digits><Luhn check digit>`, e.g. `DP123456789015`,
//! issued by shipping and checked wherever a caller types one. Pure: no I/O.

use orderflow_kit::types::FieldError;
use std::fmt;

/// A tracking number whose shape and check digit are right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackingNumber(String);

impl TrackingNumber {
    /// The number of the `serial`th label of the carrier with `code`.
    pub fn issue(code: &str, serial: u64) -> Self {
        let digits = format!("{:011}", serial % 100_000_000_000);
        let check = luhn_check_digit(&digits);
        Self(format!("{code}{digits}{check}"))
    }

    /// Checks a typed number (trimmed, any case) as the field `field`.
    pub fn parse(field: &str, number: &str) -> Result<Self, FieldError> {
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
        Ok(Self(number))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request's `tracking_number` field.
impl TryFrom<&str> for TrackingNumber {
    type Error = FieldError;

    fn try_from(number: &str) -> Result<Self, FieldError> {
        Self::parse("tracking_number", number)
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Luhn (mod 10) check digit of a string of decimal digits.
fn luhn_check_digit(digits: &str) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_carry_a_luhn_check_digit() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
        let number = TrackingNumber::issue("DP", 12_345_678_901).to_string();
        assert_eq!(number.len(), 14);
        assert!(number.starts_with("DP12345678901"));
        assert_eq!(TrackingNumber::try_from(number.to_ascii_lowercase().as_str()).unwrap().as_str(), number);
        let mut tampered = number.into_bytes();
        tampered[5] = if tampered[5] == b'9' { b'0' } else { tampered[5] + 1 };
        let error = TrackingNumber::try_from(String::from_utf8(tampered).unwrap().as_str()).unwrap_err();
        assert_eq!(error.message, "check digit does not match; mistyped?");
        assert_eq!(TrackingNumber::parse("t", "DP123").unwrap_err().field, "t");
        assert_eq!(TrackingNumber::try_from("").unwrap_err().message, "is required");
    }

    proptest::proptest! {
        /// A typed tracking number is accepted or refused with the field named, never a panic;
        /// every number this service issues is accepted.
        #[test]
        fn any_typed_tracking_number_is_checked_without_panicking(typed in ".{0,40}", serial in proptest::num::u64::ANY) {
            if let Err(error) = TrackingNumber::try_from(typed.as_str()) {
                proptest::prop_assert_eq!(error.field, "tracking_number");
            }
            let issued = TrackingNumber::issue("DP", serial);
            proptest::prop_assert!(TrackingNumber::try_from(issued.as_str()).is_ok(), "{}", issued);
        }
    }
}
