//! When a product crosses its low-stock threshold. Pure: no I/O.

/// What a change of available stock means for the low-stock flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Available fell to or below the threshold: raise the flag, emit LowStock once.
    BecameLow,
    /// Available is above the threshold again: clear the flag.
    Recovered,
    Unchanged,
}

pub fn crossing(flagged: bool, available: i64, threshold: i64) -> Crossing {
    match (flagged, available <= threshold) {
        (false, true) => Crossing::BecameLow,
        (true, false) => Crossing::Recovered,
        _ => Crossing::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_crossing_not_per_order() {
        let mut flagged = false;
        let mut events = 0;
        for available in [9, 7, 5, 4, 2, 12, 6, 5, 3] {
            match crossing(flagged, available, 5) {
                Crossing::BecameLow => {
                    events += 1;
                    flagged = true;
                }
                Crossing::Recovered => flagged = false,
                Crossing::Unchanged => {}
            }
        }
        assert_eq!(events, 2, "down through 5, back up to 12, down through 5 again");
        assert!(flagged);
    }
}
