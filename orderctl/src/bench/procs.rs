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

/// Runs `work` while watching the processes; prints CPU % (of one core, over the wall time
/// of `work`) and RSS per process.
pub async fn watched<T>(args: &BenchArgs, work: impl Future<Output = T>) -> T {
    let before: Vec<_> = args.pids.iter().map(|(_, pid)| sample(*pid)).collect();
    let before_comms: Vec<f64> = args.comms.iter().map(|c| sample_comm(c)).collect();
    let started = Instant::now();
    let result = work.await;
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let mut usage: Vec<String> = args
        .pids
        .iter()
        .zip(before)
        .filter_map(|((name, pid), before)| {
            let (cpu0, _) = before?;
            let (cpu1, rss) = sample(*pid)?;
            Some(format!("{name} {:.0}% {:.0} MB", (cpu1 - cpu0) / seconds * 100.0, rss))
        })
        .collect();
    for (comm, cpu0) in args.comms.iter().zip(before_comms) {
        usage.push(format!("{comm} {:.0}%", (sample_comm(comm) - cpu0) / seconds * 100.0));
    }
    if !usage.is_empty() {
        println!("      cpu (of one core) / rss: {}", usage.join(", "));
    }
    result
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
