//! `orderctl top`: a live console of the pipeline over the services' metrics and health,
//! refreshed every second; a service that goes away shows DOWN and comes back by itself.
//! `scrape` reads the Prometheus text format, `model` turns two scrapes into rates, `view`
//! draws the frame (ratatui; tested on its test backend).

mod model;
mod scrape;
mod view;

use crate::client::Addrs;
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Each service's metrics address as name=host:port (repeatable); by default the metrics
    /// port beside each gRPC address (9151-9154 beside 50051-50054).
    #[arg(long = "metrics", value_parser = named_addr)]
    metrics: Vec<(String, String)>,
    /// How often to refresh, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

fn named_addr(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(n, a)| (n.to_owned(), a.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected name=host:port"))
}

/// The metrics address beside a gRPC address (`kit::config::default_metrics_addr`).
fn metrics_beside(grpc: &str) -> Option<String> {
    let host_port = grpc.split("://").last()?.trim_end_matches('/');
    // Only IP literals and localhost are derived; name other hosts with --metrics.
    let (host, port) = host_port.rsplit_once(':')?;
    let ip: std::net::IpAddr =
        if host == "localhost" { [127, 0, 0, 1].into() } else { host.trim_matches(['[', ']']).parse().ok()? };
    Some(orderflow_kit::config::default_metrics_addr((ip, port.parse().ok()?).into()).to_string())
}

/// One round: each service's health and scrape.
async fn round(
    http: &reqwest::Client,
    services: &[(&'static str, String, Option<String>)],
) -> Vec<(String, Option<Vec<scrape::Sample>>)> {
    let each = services.iter().map(|(_, grpc, metrics)| async move {
        let health = match crate::cmd::health::status(grpc).await {
            Ok(status) => status.as_str_name().to_owned(),
            Err(error) => error.chars().take(40).collect(),
        };
        let scraped = match metrics {
            Some(addr) => match http.get(format!("http://{addr}/metrics")).send().await {
                Ok(response) if response.status().is_success() => response.text().await.ok().map(|t| scrape::parse(&t)),
                _ => None,
            },
            None => None,
        };
        (health, scraped)
    });
    futures::future::join_all(each).await
}

pub async fn run(addrs: &Addrs, args: &TopArgs) -> anyhow::Result<()> {
    let services: Vec<(&'static str, String, Option<String>)> = addrs
        .services()
        .into_iter()
        .map(|(name, grpc)| {
            let given = args.metrics.iter().find(|(n, _)| n == name || format!("{n}-service") == name);
            (name, grpc.to_owned(), given.map(|(_, a)| a.clone()).or_else(|| metrics_beside(grpc)))
        })
        .collect();
    let http = reqwest::Client::builder().timeout(Duration::from_millis(800)).build()?;
    let names: Vec<&str> = services.iter().map(|(n, _, _)| *n).collect();
    let mut model = model::Model::new(&names);
    let mut ui = view::Ui::default();
    let mut terminal = ratatui::init();
    let interval = Duration::from_millis(args.interval_ms.max(100));
    let mut last = Instant::now();
    let result = async {
        loop {
            let started = Instant::now();
            let round = round(&http, &services).await;
            model.update(round, last.elapsed().as_secs_f64());
            last = Instant::now();
            let clock = chrono::Local::now().format("%H:%M:%S").to_string();
            terminal.draw(|frame| view::render(frame, &model, &ui, &clock))?;
            // Keys until the next round.
            while let Some(left) = interval.checked_sub(started.elapsed()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(key) = event::read()?
                    && key.kind == KeyEventKind::Press
                {
                    match key.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('d') => ui.dead_letters = !ui.dead_letters,
                        KeyCode::Down | KeyCode::Tab => ui.focus = (ui.focus + 1) % names.len(),
                        KeyCode::Up | KeyCode::BackTab => ui.focus = (ui.focus + names.len() - 1) % names.len(),
                        KeyCode::Char(c @ '1'..='9') => ui.focus = (c as usize - '1' as usize).min(names.len() - 1),
                        _ => continue,
                    }
                    terminal.draw(|frame| view::render(frame, &model, &ui, &clock))?;
                }
            }
        }
    }
    .await;
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_address_is_found_beside_the_grpc_address() {
        assert_eq!(super::metrics_beside("http://127.0.0.1:50051").as_deref(), Some("127.0.0.1:9151"));
        assert_eq!(super::metrics_beside("https://localhost:50154").as_deref(), Some("127.0.0.1:9154"));
        assert_eq!(super::metrics_beside("https://orders.example:443"), None);
    }
}
