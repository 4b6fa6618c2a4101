//! The one shape every step's decision takes (`../shared/DESIGN.md`, "Domain logic is pure";
//! docs/adr/0009): a step's `domain.rs` implements [`Decider`] for a unit type named after the
//! step (`Pick`, `ReserveStock`, `CancelOrder`, ...). Its adapter (`on_<event>.rs` or
//! `grpc.rs`) builds the command at the edge (validated newtypes, `TryFrom<proto>`), loads and
//! locks the state, calls [`Decider::decide`], stores the events and their outbox rows in one
//! transaction and maps a rejection to a gRPC status or a dead letter.
//!
//! - No events is an answer: the command is an idempotent repeat (a second cancel, a parcel
//!   already labelled) and nothing is written.
//! - A rejection is a refusal of the command itself (a step out of order). An outcome the flow
//!   announces, such as stock too short, is an event (StockRejected), not a rejection.
//! - `evolve` applies only the events its own `decide` returns, so a step's folder holds all
//!   of what it does to the state.

/// A pure decision: no I/O, no clock, no randomness; what it needs is in the state or the
/// command.
pub trait Decider {
    /// What the decision reads: the aggregate as the adapter locked it.
    type State;
    /// What is asked: a validated command, or the consumed event that asks it.
    type Command;
    /// What is decided, in order; published or only stored, as the adapter documents.
    type Event;
    /// Why the command is refused.
    type Rejection;

    /// The events `command` causes in `state`, or why it is refused.
    fn decide(state: &Self::State, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// The state after `event`.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
}

/// What [`run`] returns: the events decided and the state after them, or the rejection.
pub type Outcome<D> = Result<(Vec<<D as Decider>::Event>, <D as Decider>::State), <D as Decider>::Rejection>;

/// Decides `command` and folds its events into `state`: the events and the state after them.
pub fn run<D: Decider>(state: D::State, command: &D::Command) -> Outcome<D> {
    let events = D::decide(&state, command)?;
    let state = events.iter().fold(state, D::evolve);
    Ok((events, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that refuses to go past a limit and ignores a zero step.
    struct Add;

    impl Decider for Add {
        type State = u32;
        type Command = u32;
        type Event = u32;
        type Rejection = &'static str;

        fn decide(state: &u32, by: &u32) -> Result<Vec<u32>, &'static str> {
            match state.checked_add(*by) {
                None => Err("too much"),
                Some(_) if *by == 0 => Ok(vec![]),
                Some(_) => Ok(vec![*by]),
            }
        }

        fn evolve(state: u32, by: &u32) -> u32 {
            state + by
        }
    }

    #[test]
    fn run_decides_then_folds_and_a_rejection_changes_nothing() {
        assert_eq!(run::<Add>(1, &2), Ok((vec![2], 3)));
        assert_eq!(run::<Add>(1, &0), Ok((vec![], 1)));
        assert_eq!(run::<Add>(u32::MAX, &1), Err("too much"));
    }
}
