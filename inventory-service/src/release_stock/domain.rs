//! Deciding a release: an order that will not ship gives back what it holds, once; an order
//! that holds nothing (rejected, or already released) releases nothing. Pure: no I/O.

use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::{ReservedLine, StockReleased};

/// Why the order will not ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// OrderCancelled.
    Cancelled,
    /// ShipmentRejected: no carrier takes the parcel (its goods go back to their bins).
    NotShippable,
}

/// OrderCancelled | ShipmentRejected → StockReleased, decided on the order's held reservation
/// (`None` when it holds none).
pub struct ReleaseStock;

impl Decider for ReleaseStock {
    type State = Option<Vec<ReservedLine>>;
    type Command = Ended;
    type Event = StockReleased;
    type Rejection = std::convert::Infallible;

    fn decide(held: &Self::State, _: &Ended) -> Result<Vec<StockReleased>, Self::Rejection> {
        Ok(held.iter().map(|lines| StockReleased { lines: lines.clone() }).collect())
    }

    fn evolve(_: Self::State, _: &StockReleased) -> Self::State {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    #[test]
    fn what_is_held_is_released_once() {
        let lines = vec![ReservedLine { sku: "MUG".into(), quantity: 2, ..Default::default() }];
        let Ok((events, held)) = run::<ReleaseStock>(Some(lines.clone()), &Ended::Cancelled);
        assert_eq!((events, &held), (vec![StockReleased { lines }], &None));
        let Ok((again, _)) = run::<ReleaseStock>(held, &Ended::NotShippable);
        assert!(again.is_empty());
    }
}
