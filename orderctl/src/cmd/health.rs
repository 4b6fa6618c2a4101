//! `orderctl health`: each service's grpc.health.v1 status (no token needed), optionally
//! waiting until every service reports the expected one.

use crate::load::parse_duration;
use clap::{Args, ValueEnum};
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expected {
    Serving,
    NotServing,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Wait until every service reports this (exit non-zero if they do not within --within).
    #[arg(long, value_enum)]
    expect: Option<Expected>,
    /// How long to wait for --expect.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    within: Duration,
}

/// One service's status, or why it could not be asked.
pub async fn status(addr: &str) -> Result<ServingStatus, String> {
    let channel = orderflow_kit::tls::endpoint(addr)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    Ok(answer.into_inner().status())
}

/// Prints every service's status (once, or when they all match `expect`); false if they never
/// matched within the time allowed.
pub async fn health(services: &[(&str, &str)], args: &HealthArgs) -> bool {
    let started = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for (name, addr) in services {
            statuses.push((*name, status(addr).await));
        }
        let matched = |s: &Result<ServingStatus, String>| match args.expect {
            None => true,
            Some(Expected::Serving) => matches!(s, Ok(ServingStatus::Serving)),
            // A service that cannot be reached at all is not "up and reporting NOT_SERVING".
            Some(Expected::NotServing) => matches!(s, Ok(ServingStatus::NotServing)),
        };
        let all = statuses.iter().all(|(_, s)| matched(s));
        if all || started.elapsed() >= args.within {
            for (name, status) in &statuses {
                match status {
                    Ok(status) => println!("{name:<20} {}", status.as_str_name()),
                    Err(error) => println!("{name:<20} {error}"),
                }
            }
            if args.expect.is_some() {
                println!(
                    "{} after {:.1} s",
                    if all { "as expected" } else { "NOT as expected" },
                    started.elapsed().as_secs_f64()
                );
            }
            return all;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `orderctl health`: an error when the services did not report what was expected.
pub async fn run(services: &[(&str, &str)], args: &HealthArgs) -> anyhow::Result<()> {
    anyhow::ensure!(health(services, args).await, "the services did not report what was expected");
    Ok(())
}
