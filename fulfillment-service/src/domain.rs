//! The warehouse steps of one order: AWAITING_PICK → PICKED → SORTED → PACKED, in the decider
//! shape, or CANCELLED wherever the order's cancel finds it before PACKED. A step confirmed
//! out of order, twice or after a cancel is rejected and emits nothing. Pure: no I/O.

use orderflow_kit::types::{FieldError, MAX_PARCEL_GRAMS, contents_grams};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Packed, Picked, Sorted, StockReserved};
use orderflow_proto::fulfillment::v1::FulfillmentStatus;

/// One order's fulfillment.
#[derive(Debug, Clone, PartialEq)]
pub struct Fulfillment {
    pub order_id: String,
    pub status: FulfillmentStatus,
    pub reserved: StockReserved,
    pub tote_id: String,
    pub package_id: String,
    pub weight_grams: u32,
}

/// A warehouse step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pick,
    Sort,
    Pack,
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {command:?} an order that is {status}")]
pub struct Rejection {
    pub command: Command,
    pub status: &'static str,
}

impl Fulfillment {
    /// A fulfillment that starts with reserved stock.
    pub fn new(order_id: &str, reserved: StockReserved) -> Self {
        Self {
            order_id: order_id.to_owned(),
            status: FulfillmentStatus::AwaitingPick,
            reserved,
            tote_id: String::new(),
            package_id: String::new(),
            weight_grams: 0,
        }
    }

    /// The step automatic mode takes next, if any.
    pub fn next_step(&self) -> Option<Command> {
        match self.status {
            FulfillmentStatus::AwaitingPick => Some(Command::Pick),
            FulfillmentStatus::Picked => Some(Command::Sort),
            FulfillmentStatus::Sorted => Some(Command::Pack),
            FulfillmentStatus::Packed | FulfillmentStatus::Cancelled | FulfillmentStatus::Unspecified => None,
        }
    }

    /// The fulfillment after its order was cancelled: stopped wherever it is. A packed parcel
    /// is left as it is: order-service either handed it to shipping before the cancel (and
    /// refused the cancel) or holds it back.
    pub fn cancel(mut self) -> Self {
        if self.next_step().is_some() {
            self.status = FulfillmentStatus::Cancelled;
        }
        self
    }

    fn suffix(&self) -> String {
        let compact: String = self.order_id.chars().filter(char::is_ascii_hexdigit).collect();
        compact[compact.len().saturating_sub(12)..].to_ascii_uppercase()
    }
}

/// Decides the event for `command`, or refuses it if the order is not at that step.
pub fn decide(state: &Fulfillment, command: Command) -> Result<Payload, Rejection> {
    if state.next_step() != Some(command) {
        return Err(Rejection { command, status: state.status.as_str_name() });
    }
    Ok(match command {
        Command::Pick => {
            let mut bins: Vec<String> = state.reserved.lines.iter().map(|l| l.bin_location.clone()).collect();
            bins.sort();
            bins.dedup();
            Payload::Picked(Picked { bin_locations: bins })
        }
        Command::Sort => Payload::Sorted(Sorted { tote_id: format!("TOTE-{}", state.suffix()) }),
        Command::Pack => {
            let contents = u32::try_from(contents_grams(&state.reserved.lines)).unwrap_or(u32::MAX);
            let parcel = Parcel::for_contents(contents);
            Payload::Packed(Packed {
                package_id: format!("PKG-{}", state.suffix()),
                weight_grams: contents.saturating_add(parcel.box_grams),
                length_mm: parcel.length_mm,
                width_mm: parcel.width_mm,
                height_mm: parcel.height_mm,
                shipping_address: state.reserved.shipping_address.clone(),
                service_level: state.reserved.service_level,
            })
        }
    })
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
    pub fn apply(self, packed: &mut Packed) {
        packed.weight_grams = self.weight_grams;
        packed.length_mm = self.length_mm;
        packed.width_mm = self.width_mm;
        packed.height_mm = self.height_mm;
    }
}

/// Applies an event this service decided.
pub fn evolve(mut state: Fulfillment, event: &Payload) -> Fulfillment {
    match event {
        Payload::Picked(_) => state.status = FulfillmentStatus::Picked,
        Payload::Sorted(sorted) => {
            state.status = FulfillmentStatus::Sorted;
            state.tote_id.clone_from(&sorted.tote_id);
        }
        Payload::Packed(packed) => {
            state.status = FulfillmentStatus::Packed;
            state.package_id.clone_from(&packed.package_id);
            state.weight_grams = packed.weight_grams;
        }
        _ => {}
    }
    state
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
    use orderflow_proto::events::v1::ReservedLine;

    fn fulfillment() -> Fulfillment {
        let line = |sku: &str, bin: &str, quantity, grams| ReservedLine {
            sku: sku.into(),
            quantity,
            bin_location: bin.into(),
            unit_weight_grams: grams,
        };
        let reserved = StockReserved {
            lines: vec![line("TEE", "B-02", 2, 200), line("MUG", "A-01", 1, 350)],
            ..Default::default()
        };
        Fulfillment::new("0190b8a4-2f2e-7cc0-8a2b-4f5e6d7c8b9a", reserved)
    }

    #[test]
    fn steps_run_in_order_to_a_weighed_parcel() {
        let mut state = fulfillment();
        let mut events = Vec::new();
        while let Some(command) = state.next_step() {
            let event = decide(&state, command).unwrap();
            state = evolve(state, &event);
            events.push(event);
        }
        assert_eq!(state.status, FulfillmentStatus::Packed);
        let Payload::Picked(picked) = &events[0] else { panic!() };
        assert_eq!(picked.bin_locations, vec!["A-01", "B-02"], "pick list is in bin order");
        let Payload::Packed(packed) = &events[2] else { panic!() };
        assert_eq!(packed.weight_grams, 2 * 200 + 350 + 150);
        assert_eq!(state.package_id, "PKG-4F5E6D7C8B9A");
    }

    #[test]
    fn out_of_order_and_repeated_steps_are_refused() {
        let state = fulfillment();
        assert_eq!(
            decide(&state, Command::Pack).unwrap_err(),
            Rejection { command: Command::Pack, status: "AWAITING_PICK" }
        );
        let picked = evolve(state.clone(), &decide(&state, Command::Pick).unwrap());
        assert!(decide(&picked, Command::Pick).is_err());
    }

    #[test]
    fn a_cancel_stops_the_steps_before_packing_only() {
        let state = fulfillment();
        let picked = evolve(state.clone(), &decide(&state, Command::Pick).unwrap());
        let cancelled = picked.cancel();
        assert_eq!(cancelled.status, FulfillmentStatus::Cancelled);
        assert_eq!(cancelled.next_step(), None);
        assert_eq!(
            decide(&cancelled, Command::Sort).unwrap_err(),
            Rejection { command: Command::Sort, status: "CANCELLED" }
        );
        let mut packed = fulfillment();
        while let Some(command) = packed.next_step() {
            packed = evolve(packed.clone(), &decide(&packed, command).unwrap());
        }
        assert_eq!(packed.clone().cancel(), packed);
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
