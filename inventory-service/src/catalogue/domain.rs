//! The catalogue's commands, validated at the edge: product descriptions and restocks. There is
//! nothing to decide on state here (a restock adds to whatever is on hand, in one conditional
//! update), so the validation is the whole domain. Pure: no I/O.

use orderflow_kit::types::{FieldError, Sku, positive, required_text};
use orderflow_proto::inventory::v1::{Product, RestockRequest, UpsertProductRequest};

/// Most units one restock may add.
pub const MAX_RESTOCK: i64 = 1_000_000;
/// Heaviest product, in grams.
pub const MAX_WEIGHT_GRAMS: i64 = 1_000_000;

/// A validated product description.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct(pub Product);

impl TryFrom<&UpsertProductRequest> for NewProduct {
    type Error = FieldError;

    fn try_from(request: &UpsertProductRequest) -> Result<Self, FieldError> {
        if request.low_stock_threshold < 0 {
            return Err(FieldError::new("low_stock_threshold", "must not be negative"));
        }
        let grams = positive("weight_grams", i64::from(request.weight_grams), MAX_WEIGHT_GRAMS)?;
        Ok(Self(Product {
            sku: Sku::parse("sku", &request.sku)?.to_string(),
            name: required_text("name", &request.name, 200)?,
            bin_location: required_text("bin_location", &request.bin_location, 32)?,
            weight_grams: u32::try_from(grams).unwrap_or(0),
            low_stock_threshold: request.low_stock_threshold,
        }))
    }
}

/// A validated restock: the SKU and the positive quantity to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub sku: Sku,
    pub quantity: i64,
}

impl TryFrom<&RestockRequest> for Restock {
    type Error = FieldError;

    fn try_from(request: &RestockRequest) -> Result<Self, FieldError> {
        Ok(Self {
            sku: Sku::parse("sku", &request.sku)?,
            quantity: positive("quantity", request.quantity, MAX_RESTOCK)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> UpsertProductRequest {
        UpsertProductRequest {
            sku: "MUG-1".into(),
            name: "Mug".into(),
            bin_location: "A-01-3".into(),
            weight_grams: 350,
            low_stock_threshold: 5,
        }
    }

    /// Spoils one field of a valid request.
    type Breakage = fn(&mut UpsertProductRequest);

    #[test]
    fn a_valid_product_is_accepted() {
        assert_eq!(NewProduct::try_from(&valid()).unwrap().0.sku, "MUG-1");
    }

    #[test]
    fn bad_product_fields_are_named() {
        let cases: Vec<(Breakage, &str)> = vec![
            (|r| r.sku = String::new(), "sku"),
            (|r| r.name = " ".into(), "name"),
            (|r| r.bin_location = String::new(), "bin_location"),
            (|r| r.weight_grams = 0, "weight_grams"),
            (|r| r.low_stock_threshold = -1, "low_stock_threshold"),
        ];
        for (break_it, field) in cases {
            let mut request = valid();
            break_it(&mut request);
            assert_eq!(NewProduct::try_from(&request).unwrap_err().field, field);
        }
    }

    #[test]
    fn restocks_must_add_a_positive_bounded_quantity() {
        let request = |quantity| RestockRequest { sku: "MUG-1".into(), quantity };
        let restock = |quantity| Restock::try_from(&request(quantity));
        assert_eq!(restock(0).unwrap_err().field, "quantity");
        assert_eq!(restock(-5).unwrap_err().field, "quantity");
        assert!(restock(MAX_RESTOCK + 1).is_err());
        assert_eq!(restock(10).unwrap().quantity, 10);
    }
}
