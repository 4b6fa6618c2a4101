//! Deciding a commit: a shipped order's held units leave the warehouse, once; a Shipped for an
//! order that holds nothing is refused (it was never reserved, or was shipped already). Pure:
//! no I/O.

use orderflow_kit::decider::Decider;
use orderflow_proto::events::v1::{ReservedLine, Shipped};

/// The units that left with the parcel: stored, not published (Shipped announced it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub lines: Vec<ReservedLine>,
}

/// Why a Shipped cannot be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shipped without a held reservation")]
pub struct NothingHeld;

/// Shipped → on hand and reserved both drop by the order's lines.
pub struct CommitStock;

impl Decider for CommitStock {
    type State = Option<Vec<ReservedLine>>;
    type Command = Shipped;
    type Event = Committed;
    type Rejection = NothingHeld;

    fn decide(held: &Self::State, _: &Shipped) -> Result<Vec<Committed>, NothingHeld> {
        let lines = held.as_ref().ok_or(NothingHeld)?;
        Ok(vec![Committed { lines: lines.clone() }])
    }

    fn evolve(_: Self::State, _: &Committed) -> Self::State {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    #[test]
    fn held_units_are_committed_once() {
        let lines = vec![ReservedLine { sku: "MUG".into(), quantity: 2, ..Default::default() }];
        let (events, held) = run::<CommitStock>(Some(lines.clone()), &Shipped::default()).unwrap();
        assert_eq!((events, &held), (vec![Committed { lines }], &None));
        assert_eq!(run::<CommitStock>(held, &Shipped::default()), Err(NothingHeld));
    }
}
