//! An order's prices, checked at the edge: every line is priced or none is, in one currency
//! (ISO 4217: three letters), each unit at most [`MAX_MINOR`] minor units; the total is the sum
//! of quantity times unit price, computed without overflow. Pure: no I/O.

use orderflow_kit::types::FieldError;
use orderflow_proto::common::v1::{Money, OrderLine};

/// The dearest unit accepted: ten billion minor units (a hundred million euros).
pub const MAX_MINOR: i64 = 10_000_000_000;

/// The lines with their prices normalised (currency upper-cased) and the order's total; `None`
/// for an order none of whose lines is priced. Each error names its field.
pub fn priced(lines: &[OrderLine]) -> Result<(Vec<OrderLine>, Option<Money>), FieldError> {
    if lines.iter().all(|l| l.unit_price.is_none()) {
        return Ok((lines.to_vec(), None));
    }
    let mut currency: Option<(usize, String)> = None;
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].unit_price{name}");
        let price = line
            .unit_price
            .as_ref()
            .ok_or_else(|| FieldError::new(field(""), "is required when other lines are priced"))?;
        let code = price.currency_code.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::new(field(".currency_code"), "must be an ISO 4217 code such as EUR"));
        }
        match &currency {
            Some((first, known)) if *known != code => {
                return Err(FieldError::new(
                    field(".currency_code"),
                    format!("must be {known} like lines[{first}]: one currency per order"),
                ));
            }
            Some(_) => {}
            None => currency = Some((i, code.clone())),
        }
        if !(0..=MAX_MINOR).contains(&price.amount_minor) {
            return Err(FieldError::new(field(".amount_minor"), format!("must be between 0 and {MAX_MINOR}")));
        }
        let line_total = price.amount_minor.checked_mul(i64::from(line.quantity.max(0)));
        total = line_total
            .and_then(|t| total.checked_add(t))
            .ok_or_else(|| FieldError::new("lines", "the total is too large"))?;
        out.push(OrderLine {
            unit_price: Some(Money { currency_code: code, amount_minor: price.amount_minor }),
            ..line.clone()
        });
    }
    let currency_code = currency.map(|(_, code)| code).unwrap_or_default();
    Ok((out, Some(Money { currency_code, amount_minor: total })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i32, price: Option<(&str, i64)>) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            quantity,
            unit_price: price.map(|(c, a)| Money { currency_code: c.into(), amount_minor: a }),
        }
    }

    #[test]
    fn the_total_is_quantity_times_unit_price_in_one_currency() {
        let (lines, total) =
            priced(&[line("MUG", 2, Some(("eur", 1_250))), line("TEE", 1, Some(("EUR", 1_999)))]).unwrap();
        assert_eq!(total, Some(Money { currency_code: "EUR".into(), amount_minor: 4_499 }));
        assert_eq!(lines[0].unit_price.as_ref().unwrap().currency_code, "EUR", "normalised");
        assert_eq!(priced(&[line("MUG", 2, None)]).unwrap().1, None, "an unpriced order has no total");
        assert_eq!(priced(&[line("FREE", 3, Some(("EUR", 0)))]).unwrap().1.unwrap().amount_minor, 0);
    }

    #[test]
    fn every_bad_price_names_its_field() {
        let cases = [
            (vec![line("A", 1, Some(("EUR", 1))), line("B", 1, None)], "lines[1].unit_price"),
            (vec![line("A", 1, Some(("EURO", 1)))], "lines[0].unit_price.currency_code"),
            (vec![line("A", 1, Some(("", 1)))], "lines[0].unit_price.currency_code"),
            (vec![line("A", 1, Some(("EUR", 1))), line("B", 1, Some(("USD", 1)))], "lines[1].unit_price.currency_code"),
            (vec![line("A", 1, Some(("EUR", -1)))], "lines[0].unit_price.amount_minor"),
            (vec![line("A", 1, Some(("EUR", MAX_MINOR + 1)))], "lines[0].unit_price.amount_minor"),
        ];
        for (lines, field) in cases {
            assert_eq!(priced(&lines).unwrap_err().field, field, "{lines:?}");
        }
        let many: Vec<_> = (0..1_000).map(|i| line(&format!("S{i}"), i32::MAX, Some(("EUR", MAX_MINOR)))).collect();
        assert_eq!(priced(&many).unwrap_err().field, "lines", "overflow is refused, not wrapped");
    }
}
