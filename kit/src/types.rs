//! Validated newtypes shared by several services' domains, built at the edge.

use orderflow_proto::common::v1::OrderLine;
use std::collections::HashMap;
use std::fmt;

/// A rejected input: the field's path (`lines[2].quantity`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A stock-keeping unit: 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub const MAX_LEN: usize = 64;

    /// Validates `value` as the SKU in `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::new(field, format!("must be at most {} characters", Self::MAX_LEN)));
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(FieldError::new(field, "may contain only letters, digits, '-', '_' and '.'"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The heaviest parcel any carrier of the rate table takes (docs/rates.md), known up front:
/// inventory rejects an order whose contents weigh more, the packing bench refuses to weigh in
/// more.
pub const MAX_PARCEL_GRAMS: u32 = 70_000;

/// What the reserved lines weigh together, in grams, in arithmetic that cannot overflow.
pub fn contents_grams(lines: &[orderflow_proto::events::v1::ReservedLine]) -> u64 {
    lines.iter().fold(0u64, |total, line| {
        let quantity = u64::try_from(line.quantity).unwrap_or(0);
        total.saturating_add(u64::from(line.unit_weight_grams).saturating_mul(quantity))
    })
}

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;
/// Most units of one SKU one order may have.
pub const MAX_QUANTITY: i64 = 1_000;

/// An order's id: a UUID (order-service issues version 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(uuid::Uuid);

impl OrderId {
    /// Validates `value` as the order id in `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        uuid(field, value).map(Self)
    }

    pub fn uuid(self) -> uuid::Uuid {
        self.0
    }
}

impl From<uuid::Uuid> for OrderId {
    fn from(id: uuid::Uuid) -> Self {
        Self(id)
    }
}

/// A request's `order_id` field.
impl TryFrom<&str> for OrderId {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, FieldError> {
        Self::parse("order_id", value)
    }
}

/// The order an event is about, exactly as its envelope names it (not trimmed: the key must
/// match it byte for byte).
impl TryFrom<&orderflow_proto::events::v1::EventEnvelope> for OrderId {
    type Error = FieldError;

    fn try_from(event: &orderflow_proto::events::v1::EventEnvelope) -> Result<Self, FieldError> {
        uuid::Uuid::parse_str(&event.order_id)
            .map(Self)
            .map_err(|_| FieldError::new("order_id", format!("{:?} is not a UUID", event.order_id)))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Units of one SKU on one order line: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u16);

impl Quantity {
    pub fn get(self) -> i32 {
        i32::from(self.0)
    }
}

impl TryFrom<i32> for Quantity {
    type Error = FieldError;

    fn try_from(value: i32) -> Result<Self, FieldError> {
        let value = positive("quantity", i64::from(value), MAX_QUANTITY)?;
        Ok(Self(u16::try_from(value).map_err(|_| FieldError::new("quantity", "is out of range"))?))
    }
}

/// One checked order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Sku,
    pub quantity: Quantity,
}

/// A line as PlaceOrder or an OrderPlaced carries it; the error names `sku` or `quantity`.
impl TryFrom<&OrderLine> for Line {
    type Error = FieldError;

    fn try_from(line: &OrderLine) -> Result<Self, FieldError> {
        Ok(Self { sku: Sku::parse("sku", &line.sku)?, quantity: Quantity::try_from(line.quantity)? })
    }
}

impl From<&Line> for OrderLine {
    fn from(line: &Line) -> Self {
        Self { sku: line.sku.to_string(), quantity: line.quantity.get(), unit_price: None }
    }
}

/// An order's lines, checked: 1 to [`MAX_LINES`] lines, each a valid [`Line`], no SKU twice
/// (so what is reserved is exactly what was listed). PlaceOrder refuses anything else;
/// inventory re-checks what an OrderPlaced carries, since any producer can write one.
pub fn order_lines(lines: &[OrderLine]) -> Result<Vec<Line>, FieldError> {
    if lines.is_empty() {
        return Err(FieldError::new("lines", "at least one line is required"));
    }
    if lines.len() > MAX_LINES {
        return Err(FieldError::new("lines", format!("at most {MAX_LINES} lines are allowed")));
    }
    let mut seen: HashMap<Sku, usize> = HashMap::new();
    let mut valid = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let line = Line::try_from(line).map_err(|e| FieldError::new(format!("lines[{i}].{}", e.field), e.message))?;
        if let Some(first) = seen.insert(line.sku.clone(), i) {
            return Err(FieldError::new(
                format!("lines[{i}].sku"),
                format!("duplicates lines[{first}]; put the total quantity on one line"),
            ));
        }
        valid.push(line);
    }
    Ok(valid)
}

/// A positive quantity no larger than `max`.
pub fn positive(field: &str, value: i64, max: i64) -> Result<i64, FieldError> {
    if value <= 0 {
        return Err(FieldError::new(field, "must be greater than zero"));
    }
    if value > max {
        return Err(FieldError::new(field, format!("must be at most {max}")));
    }
    Ok(value)
}

/// A required, trimmed text of at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    optional_text(field, value, max)
}

/// An optional, trimmed text of at most `max` characters, without control characters (a NUL
/// could not even be stored; tabs and line breaks are allowed).
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// An id in UUID form.
fn uuid(field: &str, value: &str) -> Result<uuid::Uuid, FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    uuid::Uuid::parse_str(value.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_control_characters_but_keeps_line_breaks() {
        assert_eq!(optional_text("name", "Ada\0", 20).unwrap_err().message, "must not contain control characters");
        assert!(required_text("name", "A\u{1b}[31m", 20).is_err());
        assert_eq!(optional_text("reason", "too late\nsorry", 20).unwrap(), "too late\nsorry");
    }

    #[test]
    fn sku_rejects_empty_long_and_odd_characters() {
        assert_eq!(Sku::parse("sku", " ").unwrap_err().message, "must not be empty");
        assert!(Sku::parse("sku", &"A".repeat(65)).is_err());
        assert!(Sku::parse("sku", "A B").is_err());
        assert_eq!(Sku::parse("sku", " MUG-1 ").unwrap().as_str(), "MUG-1");
    }

    #[test]
    fn positive_names_the_field() {
        let e = positive("lines[0].quantity", 0, 10).unwrap_err();
        assert_eq!(e.to_string(), "lines[0].quantity: must be greater than zero");
        assert!(positive("q", 11, 10).is_err());
        assert_eq!(positive("q", 10, 10), Ok(10));
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert!(required_text("name", "  ", 5).is_err());
        assert!(required_text("name", "abcdef", 5).is_err());
        assert_eq!(optional_text("line2", " x ", 5).unwrap(), "x");
    }

    #[test]
    fn order_ids_are_required_uuids() {
        assert_eq!(OrderId::try_from("").unwrap_err().message, "is required");
        assert_eq!(OrderId::parse("page_token", "nope").unwrap_err().to_string(), "page_token: must be a UUID");
        let id = OrderId::try_from(" 0190b8a4-2f2e-7cc0-8a2b-4f5e6d7c8b9a ").unwrap();
        assert_eq!(id.to_string(), "0190b8a4-2f2e-7cc0-8a2b-4f5e6d7c8b9a");
    }

    #[test]
    fn lines_name_the_field_that_is_wrong() {
        let line = |sku: &str, quantity| OrderLine { sku: sku.into(), quantity, unit_price: None };
        assert_eq!(order_lines(&[line("MUG", 1), line("TEE", 0)]).unwrap_err().field, "lines[1].quantity");
        assert_eq!(order_lines(&[line("MUG", 1), line("MUG", 2)]).unwrap_err().field, "lines[1].sku");
        assert_eq!(order_lines(&[line("M G", 1)]).unwrap_err().field, "lines[0].sku");
        assert!(Quantity::try_from(1_001).is_err() && Quantity::try_from(-1).is_err());
        let checked = order_lines(&[line(" MUG ", 1_000)]).unwrap();
        assert_eq!(OrderLine::from(&checked[0]), line("MUG", 1_000));
    }
}
