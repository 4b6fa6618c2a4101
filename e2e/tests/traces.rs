//! The trace export checked against a real OTLP/gRPC receiver (the collector's TraceService from
//! the official opentelemetry-proto definitions): one trace holds the PlaceOrder call and the
//! apply span of every event to Shipped, each apply span a child of the span that emitted its
//! event, the call a child of the caller's span.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use orderflow_e2e::{SHIPPED_AND_CAPTURED, Stack};
use orderflow_kit::topics::Topics;
use orderflow_kit::trace::TraceParent;
use orderflow_kit::{events, telemetry, testing};
use orderflow_proto::order::v1::PaymentStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        Value::StringValue(text) => Some(text.as_str()),
        _ => None,
    })
}

fn id64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exported_trace_holds_place_order_and_every_event_applied_with_its_parent() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder().add_service(TraceServiceServer::new(receiver.clone()));
    tokio::spawn(server.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    telemetry::init_exporting_to("e2e", &endpoint);

    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let (order_id, caller) = stack.place_traced("c-otlp").await;
    stack.wait_for_payment(&order_id, PaymentStatus::Captured).await;

    let read = events::read_to_end(&testing::brokers(), &Topics::new(&stack.namespace).all()).await.unwrap();
    let envelopes: Vec<_> =
        read.into_iter().filter_map(|r| r.envelope.ok()).filter(|e| e.order_id == order_id).collect();
    let flow = &SHIPPED_AND_CAPTURED[..9]; // OrderPlaced .. Shipped
    // Every event of the flow applied (and exported) with the event's span as its parent.
    let applied = |spans: &[Span], event_type: &str| {
        envelopes.iter().filter(|e| e.event_type == event_type).all(|e| {
            let emitted = TraceParent::parse(&e.traceparent).unwrap();
            spans.iter().any(|s| {
                s.name == "apply"
                    && attribute(s, "event_type") == Some(event_type)
                    && s.trace_id == emitted.trace_id.to_be_bytes()
                    && id64(&s.parent_span_id) == emitted.span_id
            })
        })
    };
    let spans = testing::wait_until("every event's apply span is exported", Duration::from_secs(60), || {
        let spans = receiver.spans.lock().unwrap().clone();
        let complete = flow.iter().all(|t| envelopes.iter().any(|e| e.event_type == *t) && applied(&spans, t));
        std::future::ready(complete.then_some(spans))
    })
    .await;

    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == caller.trace_id.to_be_bytes()).collect();
    let call = ours
        .iter()
        .find(|s| s.name == "call" && attribute(s, "method").is_some_and(|m| m.ends_with("/PlaceOrder")))
        .expect("the PlaceOrder call span is in the caller's trace");
    assert_eq!(id64(&call.parent_span_id), caller.span_id, "the call continues the caller's span");
    for envelope in &envelopes {
        let emitted = TraceParent::parse(&envelope.traceparent).unwrap();
        assert_eq!(emitted.trace_id, caller.trace_id, "{} is in the caller's trace", envelope.event_type);
    }
    // Each event names the exported span it was emitted in (the call, or the apply span of the
    // event that caused it), so the trace is one tree from the caller to Shipped. The payment
    // worker's PaymentAuthorized is emitted outside any span: its apply spans hang off its
    // own span id, which is not exported.
    let exported: std::collections::HashSet<u64> = ours.iter().map(|s| id64(&s.span_id)).collect();
    for envelope in
        envelopes.iter().filter(|e| flow.contains(&e.event_type.as_str()) && e.event_type != "PaymentAuthorized")
    {
        let parent = TraceParent::parse(&envelope.traceparent).unwrap().span_id;
        assert!(exported.contains(&parent), "{} names an exported span as its parent", envelope.event_type);
    }
}
