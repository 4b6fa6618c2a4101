//! The event envelope: building one for a decided event, and decoding one from Kafka.

use crate::trace::TraceParent;
pub use orderflow_proto::events::v1::EventEnvelope;
use orderflow_proto::events::v1::event_envelope::Payload;
use prost::Message;
use std::time::SystemTime;

/// The header names that repeat envelope fields, so tools can filter without decoding.
pub mod header {
    pub const EVENT_TYPE: &str = "event_type";
    pub const EVENT_ID: &str = "event_id";
    pub const TRACEPARENT: &str = "traceparent";
}

/// What led to an event: a command (a gRPC call) or an earlier event.
#[derive(Debug, Clone)]
pub struct Cause {
    /// The causing event's id; empty for a command.
    pub event_id: String,
    /// The chain's correlation id; `None` starts a chain at the new event.
    pub correlation_id: Option<String>,
    pub trace: TraceParent,
}

impl Cause {
    /// A command received with trace context `trace`.
    pub fn command(trace: TraceParent) -> Self {
        Self { event_id: String::new(), correlation_id: None, trace }
    }

    /// An event that was consumed (or just decided) by this service.
    pub fn event(envelope: &EventEnvelope) -> Self {
        Self {
            event_id: envelope.event_id.clone(),
            correlation_id: Some(envelope.correlation_id.clone()),
            trace: TraceParent::continue_or_start(Some(&envelope.traceparent)),
        }
    }
}

/// The event type name of a payload, as written to `event_type` and the headers.
pub fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::OrderPlaced(_) => "OrderPlaced",
        Payload::StockReserved(_) => "StockReserved",
        Payload::StockRejected(_) => "StockRejected",
        Payload::Picked(_) => "Picked",
        Payload::Sorted(_) => "Sorted",
        Payload::Packed(_) => "Packed",
        Payload::Shipped(_) => "Shipped",
        Payload::StockRestocked(_) => "StockRestocked",
        Payload::Delivered(_) => "Delivered",
        Payload::LowStock(_) => "LowStock",
        Payload::OrderCancelled(_) => "OrderCancelled",
        Payload::StockReleased(_) => "StockReleased",
        Payload::ShipmentRequested(_) => "ShipmentRequested",
    }
}

/// Wraps a decided payload in a new envelope with a fresh UUIDv7 id.
pub fn build(producer: &str, order_id: &str, payload: Payload, cause: &Cause) -> EventEnvelope {
    let event_id = uuid::Uuid::now_v7().to_string();
    EventEnvelope {
        correlation_id: cause.correlation_id.clone().unwrap_or_else(|| event_id.clone()),
        event_id,
        event_type: event_type(&payload).to_owned(),
        order_id: order_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp::from(SystemTime::now())),
        producer: producer.to_owned(),
        causation_id: cause.event_id.clone(),
        traceparent: crate::telemetry::emitted(&cause.trace).to_string(),
        payload: Some(payload),
    }
}

/// Why a Kafka message is not a usable envelope. Such a message goes to the dead-letter topic.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a protobuf EventEnvelope: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("message has no payload")]
    Empty,
    #[error("event_id {0:?} is not a UUID")]
    EventId(String),
    #[error("unknown or missing event payload (event_type {0:?})")]
    UnknownPayload(String),
}

/// A decoded, checked envelope together with its parsed id.
#[derive(Debug)]
pub struct Decoded {
    pub event_id: uuid::Uuid,
    pub envelope: EventEnvelope,
}

/// Decodes a Kafka message value into an envelope and checks what every consumer relies on.
pub fn decode(bytes: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let envelope = EventEnvelope::decode(bytes.ok_or(DecodeError::Empty)?)?;
    let event_id =
        uuid::Uuid::parse_str(&envelope.event_id).map_err(|_| DecodeError::EventId(envelope.event_id.clone()))?;
    if envelope.payload.is_none() {
        return Err(DecodeError::UnknownPayload(envelope.event_type));
    }
    Ok(Decoded { event_id, envelope })
}

/// The event time as a `chrono` value (the epoch for an envelope without one).
pub fn occurred_at(envelope: &EventEnvelope) -> chrono::DateTime<chrono::Utc> {
    envelope
        .occurred_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_default()
}

/// Converts a database timestamp to protobuf.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::events::v1::Picked;

    #[test]
    fn a_command_starts_a_chain_and_events_continue_it() {
        let first =
            build("order-service", "o-1", Payload::Picked(Picked::default()), &Cause::command(TraceParent::new_root()));
        assert_eq!(first.correlation_id, first.event_id);
        assert!(first.causation_id.is_empty());
        let next = build("fulfillment-service", "o-1", Payload::Picked(Picked::default()), &Cause::event(&first));
        assert_eq!(next.correlation_id, first.event_id);
        assert_eq!(next.causation_id, first.event_id);
        let (a, b) = (TraceParent::parse(&first.traceparent).unwrap(), TraceParent::parse(&next.traceparent).unwrap());
        assert_eq!(a.trace_id, b.trace_id);
        assert!(next.event_id > first.event_id, "UUIDv7 ids sort by time");
    }

    #[test]
    fn decode_rejects_garbage_missing_ids_and_unknown_payloads() {
        assert!(matches!(decode(None), Err(DecodeError::Empty)));
        assert!(matches!(decode(Some(&[0xff, 0xff, 0xff])), Err(DecodeError::Protobuf(_))));
        let no_id = EventEnvelope { payload: Some(Payload::Picked(Picked::default())), ..Default::default() };
        assert!(matches!(decode(Some(&no_id.encode_to_vec())), Err(DecodeError::EventId(_))));
        let unknown = EventEnvelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: "Teleported".into(),
            ..Default::default()
        };
        assert!(
            matches!(decode(Some(&unknown.encode_to_vec())), Err(DecodeError::UnknownPayload(t)) if t == "Teleported")
        );
        let good = build("x", "o", Payload::Picked(Picked::default()), &Cause::command(TraceParent::new_root()));
        assert_eq!(decode(Some(&good.encode_to_vec())).unwrap().envelope, good);
    }
}
