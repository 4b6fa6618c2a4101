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
use std::sync::OnceLock;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber for `service` (once; later calls, as in tests, are no-ops).
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs =
        if json { tracing_subscriber::fmt::layer().json().boxed() } else { tracing_subscriber::fmt::layer().boxed() };
    let exported = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|e| !e.trim().is_empty());
    let traces = exported.then(|| otlp(service)).flatten();
    let _already_set = tracing_subscriber::registry().with(filter).with(logs).with(traces).try_init();
}

fn otlp<S>(service: &'static str) -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
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
    let context = Span::current().context();
    let current = context.span().span_context().clone();
    current.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(current.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(current.span_id().to_bytes()),
        flags: current.trace_flags().to_u8(),
    })
}

/// The `traceparent` of something emitted in `trace`: the current span's, when it is exported
/// and belongs to that trace, else a new span id in the trace.
pub fn emitted(trace: &TraceParent) -> TraceParent {
    match current() {
        Some(span) if span.trace_id == trace.trace_id => TraceParent { span_id: span.span_id, ..*trace },
        _ => trace.child(),
    }
}
