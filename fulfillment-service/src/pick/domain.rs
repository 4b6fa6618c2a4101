//! Picking: the order's units are collected from their bins, in one walk (the bins in order).
//! Pure: no I/O.

use crate::fulfillment::{Fulfillment, Rejection, Step};
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::Picked;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::fulfillment::v1::FulfillmentStatus;

/// AWAITING_PICK → Picked.
pub struct Pick;

impl Decider for Pick {
    type State = Fulfillment;
    type Command = ();
    type Event = Payload;
    type Rejection = Rejection;

    fn decide(state: &Fulfillment, (): &()) -> Result<Vec<Payload>, Rejection> {
        state.expect(Step::Pick)?;
        let mut bins: Vec<String> = state.reserved.lines.iter().map(|l| l.bin_location.clone()).collect();
        bins.sort();
        bins.dedup();
        Ok(vec![Payload::Picked(Picked { bin_locations: bins })])
    }

    fn evolve(mut state: Fulfillment, event: &Payload) -> Fulfillment {
        if let Payload::Picked(_) = event {
            state.status = FulfillmentStatus::Picked;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use crate::fulfillment::Step;
    use crate::fulfillment::tests::{fulfillment, take};
    use orderflow_proto::events::v1::event_envelope::Payload;

    #[test]
    fn the_pick_list_is_in_bin_order() {
        let (_, events) = take(fulfillment(), Step::Pick);
        let [Payload::Picked(picked)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(picked.bin_locations, vec!["A-01", "B-02"]);
    }
}
