//! One order's fulfillment, the state the warehouse steps decide on: AWAITING_PICK → PICKED →
//! SORTED → PACKED, or CANCELLED wherever the order's cancel finds it before PACKED. Each step's
//! decision is its own folder (`pick`, `sort`, `pack`); [`Step`] takes whichever is next. A
//! step confirmed out of order, twice or after a cancel is rejected and emits nothing. Pure: no
//! I/O.

use crate::pack::{Measured, Pack};
use crate::pick::Pick;
use crate::sort::Sort;
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::StockReserved;
use orderflow_proto::events::v1::event_envelope::Payload;
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
pub enum Step {
    Pick,
    Sort,
    Pack,
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {step:?} an order that is {status}")]
pub struct Rejection {
    pub step: Step,
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
    pub fn next_step(&self) -> Option<Step> {
        match self.status {
            FulfillmentStatus::AwaitingPick => Some(Step::Pick),
            FulfillmentStatus::Picked => Some(Step::Sort),
            FulfillmentStatus::Sorted => Some(Step::Pack),
            FulfillmentStatus::Packed | FulfillmentStatus::Cancelled | FulfillmentStatus::Unspecified => None,
        }
    }

    /// Refuses `step` unless it is the next one: every step decider starts here.
    pub fn expect(&self, step: Step) -> Result<(), Rejection> {
        if self.next_step() == Some(step) { Ok(()) } else { Err(Rejection { step, status: self.status.as_str_name() }) }
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

    /// The last twelve hex digits of the order id, upper-cased: names its tote and package.
    pub fn suffix(&self) -> String {
        let compact: String = self.order_id.chars().filter(char::is_ascii_hexdigit).collect();
        compact[compact.len().saturating_sub(12)..].to_ascii_uppercase()
    }
}

impl Step {
    /// Decides this step with its decider; `measured` replaces the standard box at Pack.
    pub fn decide(self, state: &Fulfillment, measured: Option<Measured>) -> Result<Vec<Payload>, Rejection> {
        match self {
            Step::Pick => Pick::decide(state, &()),
            Step::Sort => Sort::decide(state, &()),
            Step::Pack => Pack::decide(state, &measured),
        }
    }

    /// Applies an event a step decided, with that step's decider.
    pub fn evolve(state: Fulfillment, event: &Payload) -> Fulfillment {
        match event {
            Payload::Picked(_) => Pick::evolve(state, event),
            Payload::Sorted(_) => Sort::evolve(state, event),
            Payload::Packed(_) => Pack::evolve(state, event),
            _ => state,
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use orderflow_proto::events::v1::ReservedLine;

    /// An order of two TEEs (bin B-02) and a MUG, awaiting its pick.
    pub fn fulfillment() -> Fulfillment {
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

    /// The state after taking `step` (which must be accepted) and its events.
    pub fn take(state: Fulfillment, step: Step) -> (Fulfillment, Vec<Payload>) {
        let events = step.decide(&state, None).unwrap();
        (events.iter().fold(state, Step::evolve), events)
    }

    #[test]
    fn steps_run_in_order_to_a_weighed_parcel() {
        let mut state = fulfillment();
        let mut events = Vec::new();
        while let Some(step) = state.next_step() {
            let taken;
            (state, taken) = take(state, step);
            events.extend(taken);
        }
        assert_eq!(state.status, FulfillmentStatus::Packed);
        assert!(matches!(events.as_slice(), [Payload::Picked(_), Payload::Sorted(_), Payload::Packed(_)]));
        assert_eq!(state.package_id, "PKG-4F5E6D7C8B9A");
    }

    #[test]
    fn out_of_order_and_repeated_steps_are_refused() {
        let state = fulfillment();
        assert_eq!(
            Step::Pack.decide(&state, None).unwrap_err(),
            Rejection { step: Step::Pack, status: "AWAITING_PICK" }
        );
        let (picked, _) = take(state, Step::Pick);
        assert!(Step::Pick.decide(&picked, None).is_err());
    }

    #[test]
    fn a_cancel_stops_the_steps_before_packing_only() {
        let (picked, _) = take(fulfillment(), Step::Pick);
        let cancelled = picked.cancel();
        assert_eq!(cancelled.status, FulfillmentStatus::Cancelled);
        assert_eq!(cancelled.next_step(), None);
        assert_eq!(
            Step::Sort.decide(&cancelled, None).unwrap_err(),
            Rejection { step: Step::Sort, status: "CANCELLED" }
        );
        let mut packed = fulfillment();
        while let Some(step) = packed.next_step() {
            packed = take(packed, step).0;
        }
        assert_eq!(packed.clone().cancel(), packed);
    }
}
