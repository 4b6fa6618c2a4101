//! Whether a Packed hands the order to shipping: only the Packed that packs an order that is
//! not cancelled, once. Pure: no I/O.

use crate::project::domain::{View, evolve};
use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Packed, ShipmentRequested};
use orderflow_proto::order::v1::OrderStatus;

/// The handover to shipping, decided on the order's view as it was before the Packed (a
/// cancelled order stays cancelled when packed late, so it is never handed over).
pub struct RequestShipment;

impl Decider for RequestShipment {
    type State = View;
    type Command = Packed;
    type Event = ShipmentRequested;
    type Rejection = std::convert::Infallible;

    fn decide(before: &View, packed: &Packed) -> Result<Vec<ShipmentRequested>, Self::Rejection> {
        let after = evolve(before, &Payload::Packed(packed.clone()));
        let packs = before.status != OrderStatus::Packed && after.status == OrderStatus::Packed;
        Ok(packs.then(|| ShipmentRequested { packed: Some(packed.clone()) }).into_iter().collect())
    }

    /// The handover changes nothing the view shows (the timeline records it).
    fn evolve(view: View, _: &ShipmentRequested) -> View {
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::events::v1::OrderCancelled;

    fn view(status: OrderStatus) -> View {
        View { status, ..View::default() }
    }

    fn decide(before: &View, packed: &Packed) -> Option<Packed> {
        let Ok(mut requests) = RequestShipment::decide(before, packed);
        requests.pop().and_then(|r| r.packed)
    }

    #[test]
    fn the_event_that_packs_an_order_hands_it_over_once_and_never_a_cancelled_one() {
        let packed = Packed { package_id: "PKG-1".into(), ..Default::default() };
        let sorted = view(OrderStatus::Sorted);
        assert_eq!(decide(&sorted, &packed), Some(packed.clone()));
        let after = evolve(&sorted, &Payload::Packed(packed.clone()));
        assert_eq!(decide(&after, &packed), None, "once");
        let cancelled = evolve(&sorted, &Payload::OrderCancelled(OrderCancelled::default()));
        assert_eq!(decide(&cancelled, &packed), None);
    }
}
