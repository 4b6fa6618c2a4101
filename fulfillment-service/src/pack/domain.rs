//! Packing: the sorted units go into a box, weighed; automatic packing chooses the box by the
//! contents' weight, staff at the packing bench may weigh and measure it instead. Pure: no I/O.

use crate::fulfillment::{Fulfillment, Rejection, Step};
use orderflow_kit::decider::Decider;
use orderflow_kit::types::{FieldError, MAX_PARCEL_GRAMS, contents_grams};
use orderflow_proto::events::v1::Packed;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::fulfillment::v1::FulfillmentStatus;

/// SORTED → Packed: the standard box for the contents, or the parcel as staff measured it.
pub struct Pack;

impl Decider for Pack {
    type State = Fulfillment;
    type Command = Option<Measured>;
    type Event = Payload;
    type Rejection = Rejection;

    fn decide(state: &Fulfillment, measured: &Option<Measured>) -> Result<Vec<Payload>, Rejection> {
        state.expect(Step::Pack)?;
        let contents = u32::try_from(contents_grams(&state.reserved.lines)).unwrap_or(u32::MAX);
        let parcel = Parcel::for_contents(contents);
        let mut packed = Packed {
            package_id: format!("PKG-{}", state.suffix()),
            weight_grams: contents.saturating_add(parcel.box_grams),
            length_mm: parcel.length_mm,
            width_mm: parcel.width_mm,
            height_mm: parcel.height_mm,
            shipping_address: state.reserved.shipping_address.clone(),
            service_level: state.reserved.service_level,
        };
        if let Some(measured) = measured {
            measured.apply(&mut packed);
        }
        Ok(vec![Payload::Packed(packed)])
    }

    fn evolve(mut state: Fulfillment, event: &Payload) -> Fulfillment {
        if let Payload::Packed(packed) = event {
            state.status = FulfillmentStatus::Packed;
            state.package_id.clone_from(&packed.package_id);
            state.weight_grams = packed.weight_grams;
        }
        state
    }
}

/// A parcel weighed and measured by warehouse staff at ConfirmPack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub weight_grams: u32,
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
}

/// Longest side accepted at the packing bench (the heaviest parcel: [`MAX_PARCEL_GRAMS`]).
pub const MAX_SIDE_MM: u32 = 3_000;

impl Measured {
    /// All four values given and in range, or all zero (`None`: use the automatic box).
    pub fn parse(weight_grams: u32, length_mm: u32, width_mm: u32, height_mm: u32) -> Result<Option<Self>, FieldError> {
        let fields = [
            ("weight_grams", weight_grams, MAX_PARCEL_GRAMS),
            ("length_mm", length_mm, MAX_SIDE_MM),
            ("width_mm", width_mm, MAX_SIDE_MM),
            ("height_mm", height_mm, MAX_SIDE_MM),
        ];
        if fields.iter().all(|(_, value, _)| *value == 0) {
            return Ok(None);
        }
        for (field, value, max) in fields {
            if value == 0 || value > max {
                return Err(FieldError::new(
                    field,
                    format!("must be between 1 and {max} (or all four zero for the standard box)"),
                ));
            }
        }
        Ok(Some(Self { weight_grams, length_mm, width_mm, height_mm }))
    }

    /// The Packed event with the measured parcel instead of the standard box.
    fn apply(self, packed: &mut Packed) {
        packed.weight_grams = self.weight_grams;
        packed.length_mm = self.length_mm;
        packed.width_mm = self.width_mm;
        packed.height_mm = self.height_mm;
    }
}

/// The box automatic packing chooses by the weight of the contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parcel {
    box_grams: u32,
    length_mm: u32,
    width_mm: u32,
    height_mm: u32,
}

impl Parcel {
    fn for_contents(grams: u32) -> Self {
        match grams {
            0..=1_000 => Self { box_grams: 150, length_mm: 250, width_mm: 180, height_mm: 100 },
            1_001..=5_000 => Self { box_grams: 400, length_mm: 400, width_mm: 300, height_mm: 200 },
            _ => Self { box_grams: 900, length_mm: 600, width_mm: 400, height_mm: 400 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfillment::tests::{fulfillment, take};

    fn sorted() -> Fulfillment {
        let (picked, _) = take(fulfillment(), Step::Pick);
        take(picked, Step::Sort).0
    }

    #[test]
    fn the_standard_box_is_weighed_with_its_contents() {
        let (packed, events) = take(sorted(), Step::Pack);
        let [Payload::Packed(event)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(event.weight_grams, 2 * 200 + 350 + 150);
        assert_eq!((packed.package_id.as_str(), packed.weight_grams), ("PKG-4F5E6D7C8B9A", 900));
    }

    #[test]
    fn a_measured_parcel_replaces_the_standard_box() {
        let measured = Measured::parse(1_200, 300, 200, 100).unwrap();
        let events = Pack::decide(&sorted(), &measured).unwrap();
        let [Payload::Packed(packed)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((packed.weight_grams, packed.height_mm), (1_200, 100));
    }

    #[test]
    fn measurements_are_all_or_nothing_and_bounded() {
        assert_eq!(Measured::parse(0, 0, 0, 0), Ok(None));
        assert_eq!(Measured::parse(1_200, 300, 200, 0).unwrap_err().field, "height_mm");
        assert_eq!(Measured::parse(70_001, 300, 200, 100).unwrap_err().field, "weight_grams");
        let measured = Measured::parse(1_200, 300, 200, 100).unwrap().unwrap();
        let mut packed = Packed::default();
        measured.apply(&mut packed);
        assert_eq!((packed.weight_grams, packed.height_mm), (1_200, 100));
    }

    #[test]
    fn heavier_contents_get_a_bigger_box() {
        assert_eq!(Parcel::for_contents(800).box_grams, 150);
        assert_eq!(Parcel::for_contents(4_000).box_grams, 400);
        assert_eq!(Parcel::for_contents(20_000).box_grams, 900);
    }
}
