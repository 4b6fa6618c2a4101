//! Deciding a new order: a valid request ([`NewOrder`], built with `TryFrom`) becomes exactly
//! one OrderPlaced, with its prices checked and totalled (`price`), the delivery promise for its level and destination from the time it
//! is placed; anything else is a [`FieldError`] naming the first offending field. Pure: no I/O.

use super::price::priced;
use chrono::{DateTime, Utc};
use orderflow_kit::decider::Decider;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::delivery::promise::quote;
use orderflow_kit::types::{FieldError, optional_text, order_lines, required_text};
use orderflow_proto::common::v1::{Address, Customer, OrderLine, ServiceLevel};
use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::order::v1::PlaceOrderRequest;

/// Most characters of a name or address line.
pub const MAX_TEXT: usize = 200;

/// A validated PlaceOrder request: the OrderPlaced it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder(OrderPlaced);

/// Text is trimmed, the country upper-cased and an unspecified service level becomes STANDARD.
/// Duplicate SKUs are refused (not merged), so what is reserved is exactly what the caller
/// listed.
impl TryFrom<&PlaceOrderRequest> for NewOrder {
    type Error = FieldError;

    fn try_from(request: &PlaceOrderRequest) -> Result<Self, FieldError> {
        let customer = customer(request.customer.as_ref())?;
        let lines: Vec<OrderLine> = order_lines(&request.lines)?
            .iter()
            .zip(&request.lines)
            .map(|(valid, asked)| OrderLine { unit_price: asked.unit_price.clone(), ..valid.into() })
            .collect();
        let (lines, total) = priced(&lines)?;
        Ok(Self(OrderPlaced {
            customer: Some(customer),
            lines,
            total,
            shipping_address: Some(address(request.shipping_address.as_ref())?),
            payment_reference: required_text("payment_reference", &request.payment_reference, 128)?,
            service_level: service_level(request.service_level)? as i32,
            delivery_promise: None,
            allow_backorder: request.allow_backorder,
            awaits_payment: true,
        }))
    }
}

/// A new order being placed: from which warehouse, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Placing {
    pub order: NewOrder,
    pub warehouse: Warehouse,
    pub at: DateTime<Utc>,
}

/// PlaceOrder: a new order is placed, always (its request was validated at the edge; a
/// repeated idempotency key is answered from storage before anything is decided).
pub struct PlaceOrder;

impl Decider for PlaceOrder {
    type State = ();
    type Command = Placing;
    type Event = OrderPlaced;
    type Rejection = std::convert::Infallible;

    fn decide((): &(), placing: &Placing) -> Result<Vec<OrderPlaced>, Self::Rejection> {
        let mut placed = placing.order.0.clone();
        let country = placed.shipping_address.as_ref().map(|a| a.country.as_str()).unwrap_or_default();
        let level = ServiceLevel::try_from(placed.service_level).unwrap_or(ServiceLevel::Standard);
        placed.delivery_promise = quote(&placing.warehouse, level, country, placing.at).map(|w| w.to_proto());
        Ok(vec![placed])
    }

    fn evolve((): (), _: &OrderPlaced) {}
}

fn customer(customer: Option<&Customer>) -> Result<Customer, FieldError> {
    let customer = customer.ok_or_else(|| FieldError::new("customer", "is required"))?;
    let email = optional_text("customer.email", &customer.email, 254)?;
    if !email.is_empty() && !looks_like_email(&email) {
        return Err(FieldError::new("customer.email", "is not an email address"));
    }
    Ok(Customer {
        id: required_text("customer.id", &customer.id, 64)?,
        name: required_text("customer.name", &customer.name, MAX_TEXT)?,
        email,
    })
}

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

fn address(address: Option<&Address>) -> Result<Address, FieldError> {
    let address = address.ok_or_else(|| FieldError::new("shipping_address", "is required"))?;
    let country = address.country.trim().to_ascii_uppercase();
    if country.is_empty() {
        return Err(FieldError::new("shipping_address.country", "is required"));
    }
    if country.len() != 2 || !ISO_3166_ALPHA2.split(' ').any(|code| code == country) {
        return Err(FieldError::new("shipping_address.country", "must be an ISO 3166-1 alpha-2 code such as DE or US"));
    }
    Ok(Address {
        name: required_text("shipping_address.name", &address.name, MAX_TEXT)?,
        line1: required_text("shipping_address.line1", &address.line1, MAX_TEXT)?,
        line2: optional_text("shipping_address.line2", &address.line2, MAX_TEXT)?,
        city: required_text("shipping_address.city", &address.city, MAX_TEXT)?,
        postal_code: required_text("shipping_address.postal_code", &address.postal_code, 16)?,
        country,
    })
}

fn service_level(value: i32) -> Result<ServiceLevel, FieldError> {
    match ServiceLevel::try_from(value) {
        Ok(ServiceLevel::Unspecified) => Ok(ServiceLevel::Standard),
        Ok(level) => Ok(level),
        Err(_) => Err(FieldError::new("service_level", format!("unknown value {value}; use STANDARD or EXPRESS"))),
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL \
GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK \
PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR \
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::common::v1::OrderLine;

    fn valid() -> PlaceOrderRequest {
        PlaceOrderRequest {
            idempotency_key: String::new(),
            customer: Some(Customer { id: "c-1".into(), name: "Ada Lovelace".into(), email: "ada@example.com".into() }),
            lines: vec![
                OrderLine { sku: "MUG-1".into(), quantity: 2, unit_price: None },
                OrderLine { sku: "TEE-1".into(), quantity: 1, unit_price: None },
            ],
            shipping_address: Some(Address {
                name: "Ada Lovelace".into(),
                line1: "1 Main St".into(),
                line2: String::new(),
                city: "Berlin".into(),
                postal_code: "10115".into(),
                country: "de".into(),
            }),
            payment_reference: "pay-123".into(),
            service_level: 0,
            allow_backorder: false,
        }
    }

    fn decide(request: &PlaceOrderRequest) -> Result<OrderPlaced, FieldError> {
        let order = NewOrder::try_from(request)?;
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 9, 0, 0).unwrap();
        let placing = Placing { order, warehouse: Warehouse::default(), at };
        Ok(PlaceOrder::decide(&(), &placing).unwrap().remove(0))
    }

    #[test]
    fn the_order_carries_the_promise_for_its_level_and_destination() {
        let mut request = valid();
        let promise = |r: &PlaceOrderRequest| {
            let p = decide(r).unwrap().delivery_promise.unwrap();
            (p.earliest, p.latest)
        };
        request.shipping_address.as_mut().unwrap().country = "de".into();
        assert_eq!(promise(&request), ("2026-12-01".into(), "2026-12-03".into()), "domestic standard: 1-3 days");
        request.service_level = ServiceLevel::Express as i32;
        assert_eq!(promise(&request), ("2026-12-01".into(), "2026-12-01".into()), "domestic express: next day");
        request.shipping_address.as_mut().unwrap().country = "US".into();
        assert_eq!(promise(&request), ("2026-12-02".into(), "2026-12-03".into()), "world express: 2-3 days");
    }

    fn field_of(request: &PlaceOrderRequest) -> String {
        decide(request).unwrap_err().field
    }

    /// Spoils one field of a valid request.
    type Breakage = fn(&mut PlaceOrderRequest);

    #[test]
    fn a_valid_order_is_placed_with_normalised_fields() {
        let placed = decide(&valid()).unwrap();
        assert_eq!(placed.lines.len(), 2);
        assert_eq!(placed.shipping_address.unwrap().country, "DE");
        assert_eq!(placed.service_level, ServiceLevel::Standard as i32);
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(Breakage, &str)> = vec![
            (|r| r.customer = None, "customer"),
            (|r| r.customer.as_mut().unwrap().id = " ".into(), "customer.id"),
            (|r| r.customer.as_mut().unwrap().email = "nope".into(), "customer.email"),
            (|r| r.lines.clear(), "lines"),
            (|r| r.lines[1].quantity = 0, "lines[1].quantity"),
            (|r| r.lines[0].quantity = -3, "lines[0].quantity"),
            (|r| r.lines[0].quantity = 1_001, "lines[0].quantity"),
            (|r| r.lines[1].sku = String::new(), "lines[1].sku"),
            (|r| r.lines[1].sku = "MUG-1".into(), "lines[1].sku"),
            (
                |r| {
                    r.lines = vec![
                        OrderLine { sku: "A".into(), quantity: 1, unit_price: None };
                        orderflow_kit::types::MAX_LINES + 1
                    ]
                },
                "lines",
            ),
            (|r| r.shipping_address = None, "shipping_address"),
            (|r| r.shipping_address.as_mut().unwrap().line1 = String::new(), "shipping_address.line1"),
            (|r| r.shipping_address.as_mut().unwrap().city = String::new(), "shipping_address.city"),
            (|r| r.shipping_address.as_mut().unwrap().postal_code = "1".repeat(17), "shipping_address.postal_code"),
            (|r| r.shipping_address.as_mut().unwrap().country = "XX".into(), "shipping_address.country"),
            (|r| r.shipping_address.as_mut().unwrap().country = "DEU".into(), "shipping_address.country"),
            (|r| r.payment_reference = String::new(), "payment_reference"),
            (|r| r.service_level = 7, "service_level"),
        ];
        for (break_it, field) in cases {
            let mut request = valid();
            break_it(&mut request);
            assert_eq!(field_of(&request), field);
        }
    }

    #[test]
    fn emails_are_checked_for_shape() {
        for good in ["a@b.co", "first.last+tag@example.org"] {
            assert!(looks_like_email(good), "{good}");
        }
        for bad in ["a@b", "@b.co", "a@.co", "a@b.co.", "a b@c.de", "a@b@c.de"] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever a caller sends, validation answers with an order or a named field; it never
        /// panics, and what it accepts is within the documented limits.
        #[test]
        fn any_request_is_placed_or_refused_with_a_field(
            id in ".{0,80}", name in ".{0,250}", email in ".{0,80}",
            lines in proptest::collection::vec((".{0,70}", proptest::num::i32::ANY), 0..120),
            line1 in ".{0,210}", city in ".{0,40}", postal in ".{0,20}", country in ".{0,4}",
            payment in ".{0,210}", level in proptest::num::i32::ANY,
        ) {
            let request = PlaceOrderRequest {
                idempotency_key: String::new(),
                customer: Some(Customer { id, name: name.clone(), email }),
                lines: lines.into_iter().map(|(sku, quantity)| OrderLine { sku, quantity, unit_price: None }).collect(),
                shipping_address: Some(Address {
                    name, line1, line2: String::new(), city, postal_code: postal, country,
                }),
                payment_reference: payment,
                service_level: level,
                allow_backorder: false,
            };
            match decide(&request) {
                Ok(placed) => {
                    proptest::prop_assert!(!placed.lines.is_empty() && placed.lines.len() <= 100);
                    proptest::prop_assert!(placed.lines.iter().all(|l| (1..=1000).contains(&l.quantity)));
                }
                Err(error) => proptest::prop_assert!(!error.field.is_empty()),
            }
        }
    }
}
