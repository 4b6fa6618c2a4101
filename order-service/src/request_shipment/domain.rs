//! Whether a projected event hands the order to shipping: only the event that packed an order
//! that is not cancelled, once. Pure: no I/O.

use crate::store::View;
use orderflow_proto::events::v1::{Packed, ShipmentRequested};
use orderflow_proto::order::v1::OrderStatus;

/// The request to ship, if the event that turned `before` into `after` packed the order (a
/// cancelled order stays cancelled when packed late, so it is never handed over).
pub fn decide(before: &View, after: &View, packed: &Packed) -> Option<ShipmentRequested> {
    (before.status != OrderStatus::Packed && after.status == OrderStatus::Packed)
        .then(|| ShipmentRequested { packed: Some(packed.clone()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::domain::evolve;
    use orderflow_proto::events::v1::OrderCancelled;
    use orderflow_proto::events::v1::event_envelope::Payload;

    fn view(status: OrderStatus) -> View {
        View { status, ..View::default() }
    }

    #[test]
    fn the_event_that_packs_an_order_hands_it_over_once_and_never_a_cancelled_one() {
        let packed = Packed { package_id: "PKG-1".into(), ..Default::default() };
        let sorted = view(OrderStatus::Sorted);
        let after = evolve(&sorted, &Payload::Packed(packed.clone()));
        assert_eq!(decide(&sorted, &after, &packed).and_then(|r| r.packed), Some(packed.clone()));
        assert_eq!(decide(&after, &evolve(&after, &Payload::Packed(packed.clone())), &packed), None, "once");
        let cancelled = evolve(&sorted, &Payload::OrderCancelled(OrderCancelled::default()));
        assert_eq!(decide(&cancelled, &evolve(&cancelled, &Payload::Packed(packed.clone())), &packed), None);
    }
}
