//! `orderctl chaos`: the client and the judge of a chaos run (scripts/chaos.sh does the
//! killing and restarting in between).
//!
//! `chaos place` is a careful client: it places orders at a steady rate, each with its own
//! idempotency key, retrying a failed call with the same key until the order is acknowledged
//! (so a PlaceOrder whose answer was lost in a crash is not placed twice); it cancels some
//! orders right after placing them and restocks half-way, and writes what was acknowledged.
//!
//! `chaos plan` draws the fault schedule from the run's seed, for the script to carry out.
//!
//! `chaos check` waits for the stack to go quiet, then checks the invariants from the services'
//! databases and the topics (never from logs) and prints one summary line; any failure makes it
//! exit non-zero. The invariants themselves are pure functions over what it read
//! (`invariants`), and what they found is counted and summed up in `findings`.

mod check;
mod findings;
mod invariants;
mod payments;
mod place;
mod plan;

pub use check::{CheckArgs, check};
pub use place::{PlaceArgs, place};
pub use plan::{PlanArgs, print as plan};

use clap::Subcommand;
use serde::{Deserialize, Serialize};

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Place orders at a steady rate as a retrying client, and record which were acknowledged.
    Place(PlaceArgs),
    /// Wait for quiet, check every invariant, print the summary line; non-zero on failure.
    Check(CheckArgs),
    /// Print the fault schedule drawn from a seed (scripts/chaos.sh carries it out).
    Plan(PlanArgs),
}

/// What the client saw, for the checker.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Placed {
    pub placed: u64,
    /// Order ids acknowledged by PlaceOrder.
    pub acknowledged: Vec<String>,
    /// Orders whose PlaceOrder was still failing when the client gave up.
    pub gave_up: u64,
    pub cancels_accepted: u64,
    pub cancels_refused: u64,
}

/// A small deterministic mix (splitmix64), so a run's orders are the same every time.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_deterministic_and_spreads() {
        assert_eq!(mix(7), mix(7));
        assert_ne!(mix(7), mix(8));
        // The first output of splitmix64 seeded with 0.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn placed_round_trips_through_its_file() {
        let placed = Placed { placed: 3, acknowledged: vec!["a".into(), "b".into()], gave_up: 1, ..Placed::default() };
        let back: Placed = serde_json::from_slice(&serde_json::to_vec(&placed).unwrap()).unwrap();
        assert_eq!((back.placed, back.acknowledged, back.gave_up), (3, vec!["a".to_owned(), "b".to_owned()], 1));
    }
}
