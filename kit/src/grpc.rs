//! gRPC serving: every server gets `grpc.health.v1` and reflection (v1 and v1alpha) next to
//! its own service, checks bearer tokens in front of every route, and reads the caller's trace
//! context from metadata.
//!
//! Every server has limits, so no caller can hold it: at most [`MAX_STREAMS`] concurrent
//! streams and [`MAX_IN_FLIGHT`] requests in flight per connection, HTTP/2 keepalive pings (a
//! dead peer's connection is closed), a [`REQUEST_TIMEOUT`] for each call's answer (a stream's
//! messages are not bound by it), and tonic's 4 MiB limit on a request message, answered with
//! RESOURCE_EXHAUSTED.

use crate::auth::{AuthLayer, Credentials, Policy};
use crate::metrics::MetricsLayer;
use crate::telemetry;
use crate::tls::server::ReloadingAcceptor;
use crate::trace::TraceParent;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

/// The server a service adds its API to: every call counted and timed, every route behind the
/// token check.
pub type ApiRouter = Router<Stack<AuthLayer, Stack<MetricsLayer, Stack<TooLargeLayer, Identity>>>>;

/// Most concurrent HTTP/2 streams (calls, watch streams among them) one connection may open.
pub const MAX_STREAMS: u32 = 1_000;
/// Most requests one connection has in flight; more wait for a free slot.
pub const MAX_IN_FLIGHT: usize = 1_000;
/// How long a call may take to answer (its response headers; a stream's messages may follow
/// for longer). A caller's own `grpc-timeout` applies when shorter.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 ping interval, and how long a ping may go unanswered before the connection closes.
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server with health and reflection already added; the service adds its own API to it.
/// Every call runs in a span (service, method, trace id) that continues the caller's trace.
pub fn router(
    service: &'static str,
    credentials: Credentials,
    policy: Policy,
) -> Result<(ApiRouter, HealthReporter), tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(orderflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(orderflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let router = Server::builder()
        .max_concurrent_streams(MAX_STREAMS)
        .concurrency_limit_per_connection(MAX_IN_FLIGHT)
        .timeout(REQUEST_TIMEOUT)
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE))
        .trace_fn(move |request| call_span(service, request))
        .layer(TooLargeLayer)
        .layer(MetricsLayer)
        .layer(AuthLayer::new(credentials, policy))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok((router, reporter))
}

/// Serves `router` on `listener` until `shutdown`: over TLS when `tls` is given.
pub async fn serve(
    router: ApiRouter,
    listener: TcpListener,
    tls: Option<Arc<ReloadingAcceptor>>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    if let Some(tls) = tls {
        let incoming = tls.incoming(listener, shutdown.clone());
        return router.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await;
    }
    // Small request/response messages: disable Nagle, or replies wait for delayed ACKs.
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        stream
    });
    router.serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await
}

fn call_span(service: &'static str, request: &http::Request<()>) -> tracing::Span {
    let parent = request.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
    let span = tracing::info_span!("call", service, method = request.uri().path(), trace_id = tracing::field::Empty);
    if let Some(parent) = parent {
        span.record("trace_id", parent.trace_id_hex());
        telemetry::continue_trace(&span, &parent);
    }
    span
}

/// The trace a call's events belong to: the caller's (`traceparent` metadata) continued, else
/// the call span's when traces are exported, else a new one.
pub fn trace_of<T>(request: &tonic::Request<T>) -> TraceParent {
    let caller = request.metadata().get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
    if let Some(caller) = caller {
        return caller.child(); // the call span already carries its trace id
    }
    let trace = telemetry::current().unwrap_or_else(TraceParent::new_root);
    tracing::Span::current().record("trace_id", trace.trace_id_hex());
    trace
}

/// Answers a request message over the size limit with RESOURCE_EXHAUSTED, as gRPC specifies
/// (tonic says OUT_OF_RANGE).
#[derive(Debug, Clone, Copy, Default)]
pub struct TooLargeLayer;

impl<S> tower::Layer<S> for TooLargeLayer {
    type Service = TooLarge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TooLarge { inner }
    }
}

/// A service behind [`TooLargeLayer`].
#[derive(Debug, Clone)]
pub struct TooLarge<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for TooLarge<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
                && headers.get("grpc-message").and_then(|m| m.to_str().ok()).is_some_and(|m| m.contains("too%20large"));
            if too_large {
                headers.insert("grpc-status", http::HeaderValue::from_static("8"));
                headers.insert(
                    "grpc-message",
                    http::HeaderValue::from_static("request%20message%20is%20larger%20than%20the%204%20MiB%20limit"),
                );
            }
            Ok(response)
        })
    }
}

/// Clamps a requested page size to `1..=max`, with `default` for zero or less.
pub fn page_size(requested: i32, default: i64, max: i64) -> i64 {
    if requested <= 0 { default } else { i64::from(requested).min(max) }
}

/// Cuts `rows` (fetched with a limit of `size + 1`) to one page; the next page token is the
/// `key` of the page's last row when there is more, empty otherwise.
pub fn page<T>(mut rows: Vec<T>, size: i64, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return (rows, String::new());
    }
    rows.truncate(size);
    let token = rows.last().map(key).unwrap_or_default();
    (rows, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_token_only_when_more_rows_follow() {
        assert_eq!(page(vec![1, 2, 3], 2, i32::to_string), (vec![1, 2], "2".to_owned()));
        assert_eq!(page(vec![1, 2], 2, i32::to_string), (vec![1, 2], String::new()));
    }
}
