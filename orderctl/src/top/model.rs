//! What the console shows, computed from two scrapes a second apart: per service its health,
//! events consumed and published per second by type, lag per partition, outbox, dead letters,
//! PlaceOrder's rate and p99, orders per status, and a minute of history.

use super::scrape::{Sample, p99};
use std::collections::{BTreeMap, VecDeque};

/// Seconds of history the sparklines show.
pub const HISTORY: usize = 60;

/// One service as last seen.
#[derive(Debug, Clone, Default)]
pub struct ServiceView {
    pub name: String,
    /// `SERVING`, `NOT_SERVING`, or why it could not be asked.
    pub health: String,
    /// Whether its metrics were scraped this round.
    pub up: bool,
    pub consumed_per_s: BTreeMap<String, f64>,
    pub published_per_s: BTreeMap<String, f64>,
    /// (topic, partition) to lag.
    pub lag: BTreeMap<(String, String), f64>,
    pub outbox_depth: f64,
    pub outbox_oldest_s: f64,
    pub dead_letters: f64,
    /// Events consumed per second, the last [`HISTORY`] rounds.
    pub history: VecDeque<u64>,
    previous: Option<Vec<Sample>>,
}

impl ServiceView {
    pub fn consumed_total(&self) -> f64 {
        self.consumed_per_s.values().sum()
    }

    pub fn published_total(&self) -> f64 {
        self.published_per_s.values().sum()
    }

    pub fn lag_total(&self) -> f64 {
        self.lag.values().sum()
    }
}

/// The whole console's state.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub services: Vec<ServiceView>,
    /// PlaceOrder calls per second and their p99 in ms (order-service's histogram).
    pub place_per_s: f64,
    pub place_p99_ms: Option<f64>,
    /// Orders not ended, by status (order-service's gauges).
    pub orders_by_status: BTreeMap<String, f64>,
    /// PlaceOrder calls per second, the last [`HISTORY`] rounds.
    pub place_history: VecDeque<u64>,
}

fn sum(samples: &[Sample], name: &str, by: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        *sums.entry(s.label(by).to_owned()).or_default() += s.value;
    }
    sums
}

fn value(samples: &[Sample], name: &str) -> f64 {
    samples.iter().filter(|s| s.name == name).map(|s| s.value).sum::<f64>() + 0.0 // an empty sum is -0
}

/// Per-second rates of counters `name` by label `by` between two scrapes `seconds` apart
/// (a counter that went down, a restart, counts from zero).
fn rates(before: &[Sample], now: &[Sample], name: &str, by: &str, seconds: f64) -> BTreeMap<String, f64> {
    let before = sum(before, name, by);
    sum(now, name, by)
        .into_iter()
        .map(|(key, now)| {
            let then = before.get(&key).copied().unwrap_or(0.0);
            let delta = if now >= then { now - then } else { now };
            (key, delta / seconds.max(0.001))
        })
        .collect()
}

fn push(history: &mut VecDeque<u64>, value: f64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(value.round().max(0.0) as u64);
}

/// PlaceOrder's `_bucket` counts by `le`, in order.
fn place_buckets(samples: &[Sample]) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == "orderflow_grpc_request_duration_seconds_bucket")
        .filter(|s| s.label("method") == "OrderService/PlaceOrder")
        .map(|s| {
            let le = s.label("le");
            (if le.eq_ignore_ascii_case("+inf") { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) }, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

impl Model {
    pub fn new(names: &[&str]) -> Self {
        let services = names.iter().map(|n| ServiceView { name: (*n).to_owned(), ..ServiceView::default() }).collect();
        Self { services, ..Self::default() }
    }

    /// Takes one round: each service's health and scrape (`None`: it could not be scraped),
    /// `seconds` after the previous round.
    pub fn update(&mut self, round: Vec<(String, Option<Vec<Sample>>)>, seconds: f64) {
        let mut place = None;
        for (view, (health, scraped)) in self.services.iter_mut().zip(round) {
            view.health = health;
            view.up = scraped.is_some();
            let Some(now) = scraped else {
                view.consumed_per_s.clear();
                view.published_per_s.clear();
                view.previous = None;
                push(&mut view.history, 0.0);
                continue;
            };
            let before = view.previous.take().unwrap_or_else(|| now.clone());
            view.consumed_per_s = rates(&before, &now, "orderflow_events_consumed_total", "event_type", seconds);
            view.published_per_s = rates(&before, &now, "orderflow_events_published_total", "event_type", seconds);
            view.lag = now
                .iter()
                .filter(|s| s.name == "orderflow_consumer_lag")
                .map(|s| ((s.label("topic").to_owned(), s.label("partition").to_owned()), s.value))
                .collect();
            view.outbox_depth = value(&now, "orderflow_outbox_depth");
            view.outbox_oldest_s = value(&now, "orderflow_outbox_oldest_age_seconds");
            view.dead_letters = value(&now, "orderflow_dead_letters");
            let consumed = view.consumed_total();
            push(&mut view.history, consumed);
            if view.name == "order-service" {
                let calls = |samples: &[Sample]| {
                    samples
                        .iter()
                        .filter(|s| {
                            s.name == "orderflow_grpc_requests_total" && s.label("method") == "OrderService/PlaceOrder"
                        })
                        .map(|s| s.value)
                        .sum::<f64>()
                };
                let rate = (calls(&now) - calls(&before)).max(0.0) / seconds.max(0.001);
                let p99_ms = p99(&place_buckets(&before), &place_buckets(&now)).map(|s| s * 1000.0);
                self.orders_by_status = sum(&now, "orderflow_orders", "status");
                place = Some((rate, p99_ms));
            }
            view.previous = Some(now);
        }
        let (rate, p99_ms) = place.unwrap_or((0.0, None));
        self.place_per_s = rate;
        self.place_p99_ms = p99_ms;
        push(&mut self.place_history, rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::scrape::parse;

    #[test]
    fn rates_come_from_two_scrapes_and_a_missing_service_shows_down() {
        let mut model = Model::new(&["order-service", "shipping-service"]);
        let first = parse(
            "orderflow_events_consumed_total{event_type=\"Shipped\",outcome=\"applied\"} 100\norderflow_grpc_requests_total{method=\"OrderService/PlaceOrder\",code=\"Ok\"} 10\n",
        );
        model.update(vec![("SERVING".into(), Some(first)), ("unreachable".into(), None)], 1.0);
        let second = parse(
            "orderflow_events_consumed_total{event_type=\"Shipped\",outcome=\"applied\"} 150\norderflow_grpc_requests_total{method=\"OrderService/PlaceOrder\",code=\"Ok\"} 30\norderflow_dead_letters 2\norderflow_orders{status=\"PLACED\"} 7\n",
        );
        model.update(vec![("SERVING".into(), Some(second)), ("unreachable".into(), None)], 2.0);
        let order = &model.services[0];
        assert_eq!(order.consumed_per_s["Shipped"], 25.0);
        assert_eq!(order.dead_letters, 2.0);
        assert_eq!(model.place_per_s, 10.0);
        assert_eq!(model.orders_by_status["PLACED"], 7.0);
        assert!(!model.services[1].up);
        assert_eq!(order.history.iter().copied().collect::<Vec<_>>(), [0, 25]);
        // The shipping service comes back: up again, its rates start from its first scrape.
        let back = parse("orderflow_events_consumed_total{event_type=\"Labelled\",outcome=\"applied\"} 900\n");
        model.update(vec![("SERVING".into(), None), ("SERVING".into(), Some(back))], 1.0);
        assert!(model.services[1].up && !model.services[0].up);
        assert_eq!(model.services[1].consumed_per_s["Labelled"], 0.0, "no rate from a single scrape");
    }
}
