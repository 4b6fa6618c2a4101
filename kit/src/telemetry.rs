//! Logs and traces. Logs: readable by default, JSON with `LOG_FORMAT=json`, level by
//! `RUST_LOG`; every line carries its spans' fields (service, order id, trace id, event).
//! Traces: exported with OpenTelemetry over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (off by default). A gRPC call's span continues the caller's `traceparent`, an applied
//! event's span continues the event's, and an event emitted inside a span carries that span's
//! id, so one trace runs from PlaceOrder to Shipped.

use crate::trace::TraceParent;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber for `service` (once; later calls, as in tests, are no-ops).
pub fn init(service: &'static str) {
    init_with(service, None);
}

/// The same, exporting traces to the OTLP/gRPC receiver at `endpoint` whatever the
/// environment says (the trace export's own test).
pub fn init_exporting_to(service: &'static str, endpoint: &str) {
    init_with(service, Some(endpoint));
}

fn init_with(service: &'static str, endpoint: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs =
        if json { tracing_subscriber::fmt::layer().json().boxed() } else { tracing_subscriber::fmt::layer().boxed() };
    let exported =
        endpoint.is_some() || std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|e| !e.trim().is_empty());
    let traces = exported.then(|| otlp(service, endpoint)).flatten();
    let _already_set = tracing_subscriber::registry().with(filter).with(logs).with(traces).try_init();
}

fn otlp<S>(service: &'static str, endpoint: Option<&str>) -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry_otlp::WithExportConfig;
    let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    let builder = match endpoint {
        Some(endpoint) => builder.with_endpoint(endpoint),
        None => builder,
    };
    let exporter = match builder.build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("OTLP trace export is off: {error}");
            return None;
        }
    };
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.namespace", "orderflow"))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer(service);
    let _first = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends the spans still buffered (at shutdown).
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "flushing traces failed");
    }
}

/// Makes `span` continue the trace of `parent` (a caller's or an event's `traceparent`).
pub fn continue_trace(span: &Span, parent: &TraceParent) {
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    let _ignored = span.set_parent(Context::new().with_remote_span_context(remote));
}

/// The current span's trace context, if it is exported (OTLP on).
pub fn current() -> Option<TraceParent> {
    trace_of(&Span::current())
}

/// `span`'s trace context, if it is exported (OTLP on).
pub fn trace_of(span: &Span) -> Option<TraceParent> {
    let context = span.context();
    let current = context.span().span_context().clone();
    current.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(current.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(current.span_id().to_bytes()),
        flags: current.trace_flags().to_u8(),
    })
}

tokio::task_local! {
    /// The apply spans of the batch being applied, by event id (see [`applying`]).
    static APPLYING: HashMap<String, Span>;
}

/// Runs `work` (a batch of events applied at once) with each event's apply span known by its
/// event id, so what the batch emits names the span of the event that caused it
/// ([`emitted`]) even though no single span is current.
pub async fn applying<F: Future>(spans: HashMap<String, Span>, work: F) -> F::Output {
    APPLYING.scope(spans, work).await
}

/// The apply span of event `event_id` in the batch being applied, if any.
pub fn apply_span_of(event_id: &str) -> Option<Span> {
    APPLYING.try_with(|spans| spans.get(event_id).cloned()).ok().flatten()
}

/// The `traceparent` of something emitted in `trace`, caused by the event `cause_event_id`:
/// the current span's, when it is exported and belongs to that trace; else the cause's apply
/// span's in a batch ([`applying`]); else a new span id in the trace.
pub fn emitted(trace: &TraceParent, cause_event_id: &str) -> TraceParent {
    let in_trace = |span: Option<TraceParent>| span.filter(|s| s.trace_id == trace.trace_id);
    let exported = in_trace(current()).or_else(|| in_trace(apply_span_of(cause_event_id).and_then(|s| trace_of(&s))));
    match exported {
        Some(span) => TraceParent { span_id: span.span_id, ..*trace },
        None => trace.child(),
    }
}
