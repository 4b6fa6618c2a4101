//! Prometheus metrics, served by every service on `METRICS_ADDR` (`/metrics`), through the
//! `metrics` crates. Every series carries a `service` label. The names, documented in the
//! README, are all written here:
//!
//! - `orderflow_grpc_requests_total{method, code}`, `orderflow_grpc_request_duration_seconds{method}`
//! - `orderflow_events_consumed_total{event_type, outcome}` (applied, duplicate, dead_lettered,
//!   parked, skipped; `event_type` is one this build knows or `unknown`)
//! - `orderflow_events_published_total{event_type}` (outbox rows the broker acknowledged),
//!   `orderflow_outbox_refused_total` (rows the broker can never take, set aside)
//! - `orderflow_consumer_batch_size`, `orderflow_consumer_lag{topic, partition}`
//! - `orderflow_outbox_depth`, `orderflow_outbox_oldest_age_seconds`, `orderflow_dead_letters`,
//!   `orderflow_events_skipped_unknown` (events of types this build does not know)
//! - `orderflow_db_pool_connections{state}` (idle, in_use), `orderflow_db_pool_max_connections`
//! - order-service: `orderflow_orders{status}` (orders not ended, by status) and
//!   `orderflow_order_oldest_seconds{status}` (how long the oldest of them has been open)

use crate::lag::Report;
use futures::future::BoxFuture;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use prost::Message;
use sqlx::PgPool;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Starts the exporter on `addr`. Without it (tests, `METRICS_ADDR=off`) recording is a no-op.
pub fn install(service: &'static str, addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .add_global_label("service", service)
        .set_buckets_for_metric(
            Matcher::Suffix("seconds".into()),
            &[0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("orderflow_consumer_batch_size".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0],
        )?
        .install()?;
    tracing::info!(%addr, "serving Prometheus metrics");
    Ok(())
}

/// One event the inbox consumer handled.
pub fn event_consumed(event_type: &str, outcome: &'static str) {
    counter!("orderflow_events_consumed_total", "event_type" => event_type.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A batch of plain events a handler refused one of: applied again the careful way.
pub fn fast_path_fallback() {
    counter!("orderflow_consumer_fast_path_fallbacks_total").increment(1);
}

/// One outbox row the broker acknowledged.
pub fn event_published(event_type: &str) {
    counter!("orderflow_events_published_total", "event_type" => event_type.to_owned()).increment(1);
}

/// One outbox row the broker can never take, moved to `outbox_refused`.
pub fn outbox_refused() {
    counter!("orderflow_outbox_refused_total").increment(1);
}

/// The size of one consumed batch (one transaction).
pub fn batch(size: usize) {
    #[allow(clippy::cast_precision_loss)]
    histogram!("orderflow_consumer_batch_size").record(size as f64);
}

/// The backlog gauges from a [`Report`], and the database pool's use.
#[allow(clippy::cast_precision_loss)]
pub fn backlog(report: &Report, pool: &PgPool) {
    for p in &report.partitions {
        gauge!("orderflow_consumer_lag", "topic" => p.topic.clone(), "partition" => p.partition.to_string())
            .set(p.lag() as f64);
    }
    gauge!("orderflow_outbox_depth").set(report.outbox_depth as f64);
    gauge!("orderflow_outbox_oldest_age_seconds").set(report.outbox_oldest_seconds);
    gauge!("orderflow_dead_letters").set(report.dead_letters as f64);
    gauge!("orderflow_events_skipped_unknown").set(report.skipped_unknown as f64);
    let (size, idle) = (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX));
    gauge!("orderflow_db_pool_connections", "state" => "idle").set(f64::from(idle));
    gauge!("orderflow_db_pool_connections", "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    gauge!("orderflow_db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
}

/// Orders not ended in one status: how many, and the age of the oldest.
pub fn open_orders(status: &str, count: i64, oldest_seconds: f64) {
    gauge!("orderflow_orders", "status" => status.to_owned()).set(count as f64);
    gauge!("orderflow_order_oldest_seconds", "status" => status.to_owned()).set(oldest_seconds);
}

/// The tower layer that counts and times every gRPC call by method and status code.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded { inner }
    }
}

/// A service behind [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Recorded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // Errors are trailers-only responses with grpc-status in the headers; a success
            // carries it in the trailers, after the body.
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                Err(_) => tonic::Code::Unknown,
            };
            record_request(method, code, started.elapsed());
            response
        })
    }
}

/// Every method the servers serve, as `package.Service/Method`: this build's protos, health and
/// reflection.
fn known_methods() -> &'static HashSet<String> {
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known: HashSet<String> = [
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ]
        .map(str::to_owned)
        .into();
        for encoded in [orderflow_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else { continue };
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        known.insert(format!("{}.{}/{}", file.package(), service.name(), method.name()));
                    }
                }
            }
        }
        known
    })
}

/// `Service/Method` from `/package.Service/Method`; `unknown` for any path no server serves,
/// so a caller cannot make a new series.
fn method_label(path: &str) -> String {
    if !known_methods().contains(path.trim_start_matches('/')) {
        return "unknown".to_owned();
    }
    let mut parts = path.trim_start_matches('/').rsplitn(2, '/');
    let method = parts.next().unwrap_or_default();
    let service = parts.next().unwrap_or_default().rsplit('.').next().unwrap_or_default();
    format!("{service}/{method}")
}

fn record_request(method: String, code: tonic::Code, elapsed: Duration) {
    counter!("orderflow_grpc_requests_total", "method" => method.clone(), "code" => format!("{code:?}")).increment(1);
    histogram!("orderflow_grpc_request_duration_seconds", "method" => method).record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_labelled_service_slash_method() {
        assert_eq!(method_label("/orderflow.order.v1.OrderService/PlaceOrder"), "OrderService/PlaceOrder");
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "Health/Check");
        assert_eq!(method_label("/orderflow.order.v1.OrderService/Teleport"), "unknown");
        assert_eq!(method_label("/x\u{0}y/z"), "unknown");
        assert_eq!(method_label("/"), "unknown");
    }
}
