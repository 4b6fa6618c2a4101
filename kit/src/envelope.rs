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

/// The events of an order that shipped with its payment captured, in flow order: what the chaos
/// check expects of a shipped order and the end-to-end tests of its timeline.
pub const SHIPPED_FLOW: [&str; 10] = [
    "OrderPlaced",
    "PaymentAuthorized",
    "StockReserved",
    "Picked",
    "Sorted",
    "Packed",
    "ShipmentRequested",
    "Labelled",
    "Shipped",
    "PaymentCaptured",
];

/// Every event type name this build knows, as [`event_type`] writes them.
pub const KNOWN_TYPES: [&str; 22] = [
    "OrderPlaced",
    "StockReserved",
    "StockRejected",
    "Picked",
    "Sorted",
    "Packed",
    "Shipped",
    "StockRestocked",
    "Delivered",
    "LowStock",
    "OrderCancelled",
    "StockReleased",
    "ShipmentRequested",
    "ShipmentRejected",
    "Labelled",
    "TrackingUpdated",
    "Returned",
    "StockHeld",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentCaptured",
    "PaymentVoided",
];

/// `name` if it is an event type this build knows, else `"unknown"`: a bounded set of values
/// for metric labels, whatever a message claims to be.
pub fn type_label(name: &str) -> &'static str {
    KNOWN_TYPES.iter().find(|known| **known == name).copied().unwrap_or("unknown")
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
        Payload::ShipmentRejected(_) => "ShipmentRejected",
        Payload::Labelled(_) => "Labelled",
        Payload::TrackingUpdated(_) => "TrackingUpdated",
        Payload::Returned(_) => "Returned",
        Payload::StockHeld(_) => "StockHeld",
        Payload::PaymentAuthorized(_) => "PaymentAuthorized",
        Payload::PaymentDeclined(_) => "PaymentDeclined",
        Payload::PaymentCaptured(_) => "PaymentCaptured",
        Payload::PaymentVoided(_) => "PaymentVoided",
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
        traceparent: crate::telemetry::emitted(&cause.trace, &cause.event_id).to_string(),
        payload: Some(payload),
    }
}

/// Why a Kafka message is not a usable envelope. [`DecodeError::UnknownType`] is a newer
/// producer's event (recorded and skipped); any other goes to the dead-letter topic.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a protobuf EventEnvelope: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("message has no payload")]
    Empty,
    #[error("event_id {0:?} is not a UUID")]
    EventId(String),
    /// A well-formed envelope of an event type this build does not know.
    #[error("event type {event_type:?} is unknown to this build")]
    UnknownType { event_id: uuid::Uuid, event_type: String },
    /// A known (or empty) event type without its payload.
    #[error("event_type {0:?} has no payload")]
    MissingPayload(String),
    /// An envelope field longer than any event of ours carries ([`MAX_FIELD`]).
    #[error("envelope field {0} is longer than {MAX_FIELD} bytes")]
    TooLong(&'static str),
}

/// The longest text field an envelope may carry (ids, names, trace context are far shorter);
/// what a consumed event carries on into the events it causes stays small.
pub const MAX_FIELD: usize = 256;

/// A decoded, checked envelope together with its parsed id.
#[derive(Debug)]
pub struct Decoded {
    pub event_id: uuid::Uuid,
    pub envelope: EventEnvelope,
}

/// Decodes a Kafka message value into an envelope and checks what every consumer relies on.
/// The envelope's `event_type` is set from its payload (the payload decides what an event
/// is; the text could say anything).
pub fn decode(bytes: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let mut envelope = EventEnvelope::decode(bytes.ok_or(DecodeError::Empty)?)?;
    for (name, value) in [
        ("event_id", &envelope.event_id),
        ("event_type", &envelope.event_type),
        ("order_id", &envelope.order_id),
        ("producer", &envelope.producer),
        ("correlation_id", &envelope.correlation_id),
        ("causation_id", &envelope.causation_id),
        ("traceparent", &envelope.traceparent),
    ] {
        if value.len() > MAX_FIELD {
            return Err(DecodeError::TooLong(name));
        }
    }
    let event_id =
        uuid::Uuid::parse_str(&envelope.event_id).map_err(|_| DecodeError::EventId(envelope.event_id.clone()))?;
    if envelope.payload.is_none() {
        // A oneof field this build does not know decodes as no payload: a newer producer's
        // event if it names a type, a broken one if it names none or one of ours.
        if envelope.event_type.trim().is_empty() || type_label(&envelope.event_type) != "unknown" {
            return Err(DecodeError::MissingPayload(envelope.event_type));
        }
        return Err(DecodeError::UnknownType { event_id, event_type: envelope.event_type });
    }
    if let Some(payload) = &envelope.payload {
        envelope.event_type = event_type(payload).to_owned();
    }
    Ok(Decoded { event_id, envelope })
}

/// The event time as a `chrono` value (the epoch for an envelope without one).
pub fn occurred_at(envelope: &EventEnvelope) -> chrono::DateTime<chrono::Utc> {
    envelope
        .occurred_at
        .and_then(|t| datetime(prost_types::Timestamp { nanos: t.nanos.max(0), ..t }))
        .unwrap_or_default()
}

/// A protobuf time as a `chrono` value; `None` if it is out of range or its nanos are negative.
pub fn datetime(t: prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
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

    fn good_event() -> EventEnvelope {
        build("x", "o", Payload::Picked(Picked::default()), &Cause::command(TraceParent::new_root()))
    }

    #[test]
    fn decode_rejects_garbage_missing_ids_and_payloads_and_tells_unknown_types_apart() {
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
            matches!(decode(Some(&unknown.encode_to_vec())), Err(DecodeError::UnknownType { event_type, .. }) if event_type == "Teleported")
        );
        let broken = EventEnvelope { event_type: "Picked".into(), ..unknown.clone() };
        assert!(matches!(decode(Some(&broken.encode_to_vec())), Err(DecodeError::MissingPayload(t)) if t == "Picked"));
        let untyped = EventEnvelope { event_type: " ".into(), ..unknown.clone() };
        let long = EventEnvelope { correlation_id: "c".repeat(MAX_FIELD + 1), ..good_event() };
        assert!(matches!(decode(Some(&long.encode_to_vec())), Err(DecodeError::TooLong("correlation_id"))));
        assert!(matches!(decode(Some(&untyped.encode_to_vec())), Err(DecodeError::MissingPayload(_))));
        let good = build("x", "o", Payload::Picked(Picked::default()), &Cause::command(TraceParent::new_root()));
        assert_eq!(decode(Some(&good.encode_to_vec())).unwrap().envelope, good);
    }

    #[test]
    fn every_payload_names_a_known_type_and_anything_else_is_unknown() {
        assert_eq!(type_label("Picked"), "Picked");
        assert_eq!(type_label("Teleported"), "unknown");
        assert_eq!(type_label("Picked\0"), "unknown");
    }
}
