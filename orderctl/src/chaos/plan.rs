//! `orderctl chaos plan`: the fault schedule of a chaos run, drawn from its seed (the same seed,
//! the same schedule), for scripts/chaos.sh to carry out: which fault comes in which slot of the
//! placing window, how far into its slot, and how long a killed service stays down.

use super::mix;
use clap::Args;
use std::fmt::Write;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The seed the schedule is drawn from.
    #[arg(long)]
    seed: u64,
    /// How many times each service is SIGKILLed (and restarted).
    #[arg(long, default_value_t = 3)]
    kills: u32,
    /// Orders the run places (with --rate: how long the placing window is).
    #[arg(long, default_value_t = 5000)]
    orders: u64,
    /// Orders per second.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// Instances per service: each kill takes one of them, and the kills are spread over them.
    #[arg(long, default_value_t = 1)]
    instances: u32,
}

/// The services a chaos run kills, in the order their kills are listed before the shuffle.
const SERVICES: [&str; 4] = ["order", "inventory", "fulfillment", "shipping"];

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `broker`, `postgres`, or the service to SIGKILL (`order`, `inventory`, ...).
    pub what: String,
    /// How long after its slot starts the fault comes.
    pub delay_ms: u64,
    /// How long a killed service stays down before it is restarted (0 for the broker and
    /// PostgreSQL, which are restarted once the services report NOT_SERVING).
    pub down_ms: u64,
    /// Which instance of the service is killed, from 1 (1 for the broker and PostgreSQL).
    pub instance: u32,
}

/// A run's schedule: one fault at a time, each in its own slot; the slots cover the first 85 %
/// of the placing window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub window_ms: u64,
    pub slot_ms: u64,
    pub faults: Vec<Fault>,
}

/// Draws from the seed: splitmix64 from a start the seed is mixed into, so neighbouring seeds
/// give unrelated schedules.
struct Draws {
    start: u64,
    drawn: u64,
}

impl Draws {
    fn new(seed: u64) -> Self {
        Self { start: mix(seed), drawn: 0 }
    }
    /// A number from `low` to `high`, both included.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.drawn += 1;
        low + mix(self.start.wrapping_add(self.drawn)) % (high - low + 1)
    }
}

/// The schedule of a run of `orders` at `rate` per second with `kills` kills of each service,
/// spread over its `instances` instances in turn (from a drawn first one).
pub fn plan(seed: u64, kills: u32, orders: u64, rate: f64, instances: u32) -> anyhow::Result<Plan> {
    anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number of orders per second");
    anyhow::ensure!(instances > 0, "--instances must be at least 1");
    let mut draws = Draws::new(seed);
    // Drawn only with several instances, so a one-instance seed keeps its schedule.
    let first = if instances > 1 { draws.between(0, u64::from(instances) - 1) } else { 0 };
    let mut faults: Vec<(&str, u32)> = vec![("broker", 1), ("postgres", 1)];
    let mut kill = 0u64;
    for service in SERVICES {
        for _ in 0..kills {
            let instance = u32::try_from((first + kill) % u64::from(instances)).unwrap_or(0) + 1;
            faults.push((service, instance));
            kill += 1;
        }
    }
    // Fisher-Yates.
    for i in (1..faults.len()).rev() {
        let j = usize::try_from(draws.between(0, i as u64)).unwrap_or(0);
        faults.swap(i, j);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let window_ms = (orders as f64 / rate * 1000.0) as u64;
    let slot_ms = window_ms * 85 / 100 / faults.len() as u64;
    let faults = faults
        .into_iter()
        .map(|(what, instance)| {
            let delay_ms = draws.between(0, slot_ms / 2);
            let down_ms = if SERVICES.contains(&what) { draws.between(200, 2000) } else { 0 };
            Fault { what: what.to_owned(), delay_ms, down_ms, instance }
        })
        .collect();
    Ok(Plan { window_ms, slot_ms, faults })
}

impl Plan {
    /// What `chaos plan` prints, one item a line for the script to read:
    /// `window_ms N`, `slot_ms N`, then `fault <what> <delay ms> <down ms> <instance>` in order.
    pub fn render(&self) -> String {
        let mut text = format!("window_ms {}\nslot_ms {}\n", self.window_ms, self.slot_ms);
        for fault in &self.faults {
            let _ = writeln!(text, "fault {} {} {} {}", fault.what, fault.delay_ms, fault.down_ms, fault.instance);
        }
        text
    }
}

/// `orderctl chaos plan`.
pub fn print(args: &PlanArgs) -> anyhow::Result<()> {
    print!("{}", plan(args.seed, args.kills, args.orders, args.rate, args.instances)?.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        assert_eq!(plan(42, 3, 5000, 25.0, 1).unwrap(), plan(42, 3, 5000, 25.0, 1).unwrap());
        let schedules: std::collections::HashSet<String> =
            (0..20).map(|seed| plan(seed, 3, 5000, 25.0, 1).unwrap().render()).collect();
        assert_eq!(schedules.len(), 20, "neighbouring seeds give different schedules");
    }

    #[test]
    fn every_fault_comes_once_in_its_slot() {
        let plan = plan(7, 3, 5000, 25.0, 1).unwrap();
        assert_eq!((plan.window_ms, plan.slot_ms), (200_000, 200_000 * 85 / 100 / 14));
        let mut what: Vec<&str> = plan.faults.iter().map(|f| f.what.as_str()).collect();
        what.sort_unstable();
        let mut expected = vec!["broker", "postgres"];
        for service in SERVICES {
            expected.extend([service; 3]);
        }
        expected.sort_unstable();
        assert_eq!(what, expected);
        for fault in &plan.faults {
            assert!(fault.delay_ms <= plan.slot_ms / 2, "{fault:?}");
            match fault.what.as_str() {
                "broker" | "postgres" => assert_eq!(fault.down_ms, 0),
                _ => assert!((200..=2000).contains(&fault.down_ms), "{fault:?}"),
            }
        }
    }

    #[test]
    fn the_faults_are_shuffled() {
        let orders: std::collections::HashSet<Vec<String>> = (0..10)
            .map(|seed| plan(seed, 1, 500, 20.0, 1).unwrap().faults.into_iter().map(|f| f.what).collect())
            .collect();
        assert!(orders.len() > 1, "the order of the faults depends on the seed");
    }

    #[test]
    fn no_kills_leaves_the_broker_and_postgres() {
        let plan = plan(1, 0, 500, 20.0, 1).unwrap();
        assert_eq!((plan.window_ms, plan.slot_ms), (25_000, 25_000 * 85 / 100 / 2));
        assert_eq!(plan.faults.len(), 2);
    }

    #[test]
    fn the_window_is_orders_over_rate() {
        assert_eq!(plan(1, 1, 100, 20.0, 1).unwrap().window_ms, 5_000);
        assert_eq!(plan(1, 1, 100, 3.0, 1).unwrap().window_ms, 33_333, "truncated, as awk's %d");
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(plan(1, 1, 100, rate, 1).is_err(), "{rate}");
        }
    }

    #[test]
    fn the_plan_renders_one_line_per_item() {
        let plan = Plan {
            window_ms: 5000,
            slot_ms: 708,
            faults: vec![
                Fault { what: "postgres".into(), delay_ms: 12, down_ms: 0, instance: 1 },
                Fault { what: "order".into(), delay_ms: 300, down_ms: 1500, instance: 2 },
            ],
        };
        assert_eq!(plan.render(), "window_ms 5000\nslot_ms 708\nfault postgres 12 0 1\nfault order 300 1500 2\n");
    }

    #[test]
    fn kills_are_spread_over_the_instances() {
        for seed in 0..10 {
            let plan = plan(seed, 1, 500, 20.0, 2).unwrap();
            let kills: Vec<u32> =
                plan.faults.iter().filter(|f| SERVICES.contains(&f.what.as_str())).map(|f| f.instance).collect();
            assert_eq!(kills.iter().filter(|i| **i == 1).count(), 2, "{kills:?}");
            assert_eq!(kills.iter().filter(|i| **i == 2).count(), 2, "{kills:?}");
        }
        assert!(plan(3, 3, 500, 20.0, 1).unwrap().faults.iter().all(|f| f.instance == 1));
    }
}
