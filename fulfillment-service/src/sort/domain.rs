//! Sorting: the picked units go into the order's tote. Pure: no I/O.

use crate::fulfillment::{Fulfillment, Rejection, Step};
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::Sorted;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::fulfillment::v1::FulfillmentStatus;

/// PICKED → Sorted, into the tote named after the order.
pub struct Sort;

impl Decider for Sort {
    type State = Fulfillment;
    type Command = ();
    type Event = Payload;
    type Rejection = Rejection;

    fn decide(state: &Fulfillment, (): &()) -> Result<Vec<Payload>, Rejection> {
        state.expect(Step::Sort)?;
        Ok(vec![Payload::Sorted(Sorted { tote_id: format!("TOTE-{}", state.suffix()) })])
    }

    fn evolve(mut state: Fulfillment, event: &Payload) -> Fulfillment {
        if let Payload::Sorted(sorted) = event {
            state.status = FulfillmentStatus::Sorted;
            state.tote_id.clone_from(&sorted.tote_id);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use crate::fulfillment::Step;
    use crate::fulfillment::tests::{fulfillment, take};

    #[test]
    fn the_tote_is_named_after_the_order() {
        let (picked, _) = take(fulfillment(), Step::Pick);
        let (sorted, _) = take(picked, Step::Sort);
        assert_eq!(sorted.tote_id, "TOTE-4F5E6D7C8B9A");
    }
}
