//! What `chaos check` found wrong (counted by kind, with a few examples each) and the one
//! summary line a chaos run ends with.

use std::collections::{BTreeMap, BTreeSet};

/// What the checker found wrong, by kind, with a few examples each.
#[derive(Debug, Default)]
pub struct Findings {
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Invariants that failed beyond those three counts (stock, outbox, dead letters, ...).
    pub failed: BTreeSet<&'static str>,
    pub examples: BTreeMap<&'static str, Vec<String>>,
}

/// Examples kept per kind.
const EXAMPLES: usize = 10;

impl Findings {
    fn note(&mut self, kind: &'static str, example: String) {
        let examples = self.examples.entry(kind).or_default();
        if examples.len() < EXAMPLES {
            examples.push(example);
        }
    }
    pub fn lost(&mut self, example: String) {
        self.lost += 1;
        self.note("lost", example);
    }
    pub fn duplicated(&mut self, example: String) {
        self.duplicated += 1;
        self.note("duplicated", example);
    }
    pub fn out_of_order(&mut self, example: String) {
        self.out_of_order += 1;
        self.note("out-of-order", example);
    }
    pub fn fail(&mut self, invariant: &'static str, example: String) {
        self.failed.insert(invariant);
        self.note(invariant, example);
    }
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0 && self.failed.is_empty()
    }
    /// The example lines printed above the summary, kind by kind.
    pub fn example_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.examples.iter().flat_map(|(kind, examples)| examples.iter().map(move |e| format!("  {kind}: {e}")))
    }
}

/// What the summary line counts besides the findings.
#[derive(Debug, Default)]
pub struct Tally {
    pub placed: u64,
    pub acknowledged: usize,
    /// Orders per end status.
    pub ended: BTreeMap<&'static str, u64>,
    /// Orders that waited ON_HOLD for a restock on the way (whatever their end).
    pub held: u64,
    /// Orders whose payment was declined, and captures in the gateway's ledger.
    pub declined: u64,
    pub captured: u64,
    pub kills: u64,
    pub restarts: u64,
}

/// The line a chaos run ends with (scripts/test.sh greps for `^chaos:`).
pub fn summary(tally: &Tally, findings: &Findings) -> String {
    let ended = |status: &str| tally.ended.get(status).copied().unwrap_or(0);
    let ended_total: u64 = tally.ended.values().sum();
    format!(
        "chaos: placed={} acknowledged={} ended={ended_total} (shipped={} rejected={} cancelled={} held-first={} declined={}) captured={} kills={} restarts={} \
         lost={} duplicated={} out-of-order={} invariants={} -> {}",
        tally.placed,
        tally.acknowledged,
        ended("SHIPPED") + ended("DELIVERED"),
        ended("REJECTED"),
        ended("CANCELLED"),
        tally.held,
        tally.declined,
        tally.captured,
        tally.kills,
        tally.restarts,
        findings.lost,
        findings.duplicated,
        findings.out_of_order,
        if findings.failed.is_empty() {
            "all-held".to_owned()
        } else {
            format!("failed:{}", findings.failed.iter().copied().collect::<Vec<_>>().join(","))
        },
        if findings.passed() { "PASS" } else { "FAIL" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        let ended = BTreeMap::from([("SHIPPED", 4568), ("DELIVERED", 2), ("REJECTED", 356), ("CANCELLED", 74)]);
        Tally {
            placed: 5000,
            acknowledged: 5000,
            ended,
            held: 40,
            declined: 200,
            captured: 4570,
            kills: 12,
            restarts: 14,
        }
    }

    #[test]
    fn a_clean_run_passes() {
        assert_eq!(
            summary(&tally(), &Findings::default()),
            "chaos: placed=5000 acknowledged=5000 ended=5000 (shipped=4570 rejected=356 cancelled=74 held-first=40 declined=200) \
             captured=4570 kills=12 restarts=14 lost=0 duplicated=0 out-of-order=0 invariants=all-held -> PASS"
        );
    }

    #[test]
    fn any_finding_fails_the_run_and_names_the_invariants() {
        let mut findings = Findings::default();
        findings.fail("stock-balances", "A: on hand 1".into());
        findings.fail("outbox", "order-service's outbox still holds 2 rows".into());
        findings.lost("order 1 stopped at PLACED".into());
        let line = summary(&Tally::default(), &findings);
        assert!(line.ends_with("lost=1 duplicated=0 out-of-order=0 invariants=failed:outbox,stock-balances -> FAIL"));
        assert!(line.starts_with(
            "chaos: placed=0 acknowledged=0 ended=0 (shipped=0 rejected=0 cancelled=0 held-first=0 declined=0)"
        ));
        for kind in ["duplicated", "out-of-order"] {
            let mut findings = Findings::default();
            if kind == "duplicated" {
                findings.duplicated("x".into());
            } else {
                findings.out_of_order("x".into());
            }
            assert!(!findings.passed(), "{kind}");
            assert!(summary(&Tally::default(), &findings).contains("invariants=all-held -> FAIL"), "{kind}");
        }
    }

    #[test]
    fn examples_are_kept_ten_per_kind_and_all_are_counted() {
        let mut findings = Findings::default();
        for n in 0..25 {
            findings.lost(format!("order {n}"));
        }
        findings.fail("health", "1 health expectations missed".into());
        let lines: Vec<String> = findings.example_lines().collect();
        assert_eq!(findings.lost, 25);
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "  health: 1 health expectations missed");
        assert_eq!(lines[1], "  lost: order 0");
        assert_eq!(lines[10], "  lost: order 9");
    }
}
