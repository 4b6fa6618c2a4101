//! When a product crosses its low-stock threshold: one alert per crossing, not per order.
//! Pure: no I/O.

use orderflow_kit::decider::Decider;

/// A product's available stock against its threshold, after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub available: i64,
    pub threshold: i64,
}

/// What a change of available stock does to the low-stock flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Available fell to or below the threshold: raise the flag, emit LowStock once.
    BecameLow,
    /// Available is above the threshold again: clear the flag.
    Recovered,
}

/// The low-stock flag of one product (raised or not), moved by its crossings.
pub struct LowStockAlert;

impl Decider for LowStockAlert {
    type State = bool;
    type Command = Level;
    type Event = Crossing;
    type Rejection = std::convert::Infallible;

    fn decide(flagged: &bool, level: &Level) -> Result<Vec<Crossing>, Self::Rejection> {
        Ok(match (*flagged, level.available <= level.threshold) {
            (false, true) => vec![Crossing::BecameLow],
            (true, false) => vec![Crossing::Recovered],
            _ => vec![],
        })
    }

    fn evolve(_: bool, crossing: &Crossing) -> bool {
        *crossing == Crossing::BecameLow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    #[test]
    fn one_event_per_crossing_not_per_order() {
        let mut flagged = false;
        let mut alerts = 0;
        for available in [9, 7, 5, 4, 2, 12, 6, 5, 3] {
            let Ok((events, after)) = run::<LowStockAlert>(flagged, &Level { available, threshold: 5 });
            alerts += events.iter().filter(|e| **e == Crossing::BecameLow).count();
            flagged = after;
        }
        assert_eq!(alerts, 2, "down through 5, back up to 12, down through 5 again");
        assert!(flagged);
    }
}
