//! The processes a benchmark watches: CPU seconds and resident memory from /proc, per process
//! and summed per command name.

use super::BenchArgs;
use std::time::Instant;

/// CPU seconds and resident MB of a process, from /proc.
fn sample(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_sample(&stat, &status)
}

/// CPU seconds (user + system, at 100 ticks a second) and resident MB from the text of
/// `/proc/<pid>/stat` and `/proc/<pid>/status`.
fn parse_sample(stat: &str, status: &str) -> Option<(f64, f64)> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let rss_kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks / 100.0, rss_kb / 1024.0))
}

/// CPU seconds of every process named `comm`, summed.
pub fn sample_comm(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .filter_map(|pid| sample(pid).map(|(cpu, _)| cpu))
        .sum()
}

/// CPU seconds each watched process (and command name) used over a piece of work, its wall
/// time and the resident MB at its end.
#[derive(Debug, Default)]
pub struct Usage {
    pub seconds: f64,
    /// (name, CPU seconds, resident MB; `None` for a command name's sum).
    pub processes: Vec<(String, f64, Option<f64>)>,
}

impl Usage {
    /// CPU % of one core per process, and resident memory.
    pub fn print_percent(&self) {
        let usage: Vec<String> = self
            .processes
            .iter()
            .map(|(name, cpu, rss)| {
                let percent = cpu / self.seconds.max(0.001) * 100.0;
                match rss {
                    Some(rss) => format!("{name} {percent:.0}% {rss:.0} MB"),
                    None => format!("{name} {percent:.0}%"),
                }
            })
            .collect();
        if !usage.is_empty() {
            println!("      cpu (of one core) / rss: {}", usage.join(", "));
        }
    }

    /// CPU milliseconds per order, per process, for `orders` orders.
    #[allow(clippy::cast_precision_loss)]
    pub fn print_per_order(&self, orders: u64) {
        if orders == 0 {
            return;
        }
        let per_order: Vec<String> =
            self.processes.iter().map(|(name, cpu, _)| format!("{name} {:.2}", cpu * 1000.0 / orders as f64)).collect();
        println!("      cpu ms per order: {}", per_order.join(", "));
    }

    /// The CPU seconds of the command name `comm`, if watched.
    pub fn cpu_of(&self, comm: &str) -> Option<f64> {
        self.processes.iter().find(|(name, _, rss)| name == comm && rss.is_none()).map(|(_, cpu, _)| *cpu)
    }
}

/// Runs `work` while watching the processes (the services, this process as the load
/// generator, and every process of each command name); returns what it used.
pub async fn watched<T>(args: &BenchArgs, work: impl Future<Output = T>) -> (T, Usage) {
    let mut pids = args.pids.clone();
    pids.push(("load generator".to_owned(), std::process::id()));
    let before: Vec<_> = pids.iter().map(|(_, pid)| sample(*pid)).collect();
    let before_comms: Vec<f64> = args.comms.iter().map(|c| sample_comm(c)).collect();
    let started = Instant::now();
    let result = work.await;
    let mut usage = Usage { seconds: started.elapsed().as_secs_f64(), processes: Vec::new() };
    for ((name, pid), before) in pids.iter().zip(before) {
        if let (Some((cpu0, _)), Some((cpu1, rss))) = (before, sample(*pid)) {
            usage.processes.push((name.clone(), cpu1 - cpu0, Some(rss)));
        }
    }
    for (comm, cpu0) in args.comms.iter().zip(before_comms) {
        usage.processes.push((comm.clone(), sample_comm(comm) - cpu0, None));
    }
    (result, usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_user_plus_system_time_and_rss() {
        // The command name may hold spaces and parentheses: fields count after the last ')'.
        let stat = "42 (my (odd) comm) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200";
        let status = "Name:\tx\nVmPeak:\t 9000 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_sample(stat, status), Some((3.0, 2.0)));
        assert_eq!(parse_sample("42 (x) S 1", status), None);
        assert_eq!(parse_sample(stat, "Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let (cpu, rss) = sample(std::process::id()).expect("/proc of this process");
        assert!(cpu >= 0.0 && rss > 0.0);
    }
}
