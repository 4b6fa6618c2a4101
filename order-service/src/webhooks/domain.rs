//! What a webhook says: which events become which webhook types and their JSON bodies, the
//! secret's form (signing is `kit::signing`), the retry schedule and the checks on a new
//! endpoint. Pure: no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use orderflow_kit::envelope::{self, EventEnvelope};
use orderflow_kit::types::{FieldError, optional_text};
use orderflow_proto::common::v1::DeliveryPromise;
use orderflow_proto::events::v1::event_envelope::Payload;
use serde_json::{Value, json};
use std::time::Duration;

/// Every webhook type, as endpoints subscribe to them.
pub const TYPES: [&str; 10] = [
    "order.placed",
    "order.reserved",
    "order.labelled",
    "order.shipped",
    "order.delivered",
    "order.returned",
    "order.rejected",
    "order.cancelled",
    "shipment.tracking_updated",
    "stock.low",
];

/// How long a delivery is retried before it is marked failed.
pub const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);

/// A webhook message: its type, what it is ordered by, and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event_type: &'static str,
    pub subject: String,
    pub body: String,
}

/// The webhook an event announces, if any: the body carries `type`, `timestamp` (the event's
/// time) and `data` (the order or SKU and what changed).
pub fn message(event: &EventEnvelope) -> Option<Message> {
    let payload = event.payload.as_ref()?;
    let promise = |p: &Option<DeliveryPromise>| p.as_ref().map(|p| json!({"earliest": p.earliest, "latest": p.latest}));
    let (event_type, details) = match payload {
        Payload::OrderPlaced(placed) => (
            "order.placed",
            json!({
                "customer_id": placed.customer.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
                "lines": placed.lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity})).collect::<Vec<_>>(),
                "delivery_promise": promise(&placed.delivery_promise),
            }),
        ),
        Payload::StockReserved(_) => ("order.reserved", json!({})),
        Payload::Labelled(l) => (
            "order.labelled",
            json!({"carrier": l.carrier, "tracking_number": l.tracking_number, "delivery_promise": promise(&l.delivery_promise)}),
        ),
        Payload::Shipped(s) => ("order.shipped", json!({"carrier": s.carrier, "tracking_number": s.tracking_number})),
        Payload::Delivered(d) => {
            ("order.delivered", json!({"carrier": d.carrier, "tracking_number": d.tracking_number}))
        }
        Payload::Returned(r) => {
            ("order.returned", json!({"carrier": r.carrier, "tracking_number": r.tracking_number, "note": r.note}))
        }
        Payload::StockRejected(r) => ("order.rejected", json!({"reason": r.reason})),
        Payload::ShipmentRejected(r) => ("order.rejected", json!({"reason": r.reason})),
        Payload::PaymentDeclined(r) => ("order.rejected", json!({"reason": r.reason})),
        Payload::OrderCancelled(c) => ("order.cancelled", json!({"reason": c.reason})),
        Payload::TrackingUpdated(t) => {
            let scan = t.scan.clone().unwrap_or_default();
            let at = scan.occurred_at.and_then(envelope::datetime).map(timestamp);
            (
                "shipment.tracking_updated",
                json!({
                    "carrier": t.carrier, "tracking_number": scan.tracking_number, "scan_id": scan.scan_id,
                    "status": scan.status, "location": scan.location, "note": scan.note, "occurred_at": at,
                    "current": t.current, "delivery_promise": promise(&t.delivery_promise),
                }),
            )
        }
        Payload::LowStock(low) => {
            let data = json!({"sku": low.sku, "available": low.available, "threshold": low.threshold});
            return Some(body("stock.low", format!("sku:{}", low.sku), data, event));
        }
        _ => return None,
    };
    let mut data = json!({"order_id": event.order_id});
    merge(&mut data, details);
    Some(body(event_type, event.order_id.clone(), data, event))
}

fn body(event_type: &'static str, subject: String, mut data: Value, event: &EventEnvelope) -> Message {
    merge(&mut data, json!({"event_id": event.event_id}));
    let body = json!({"type": event_type, "timestamp": timestamp(envelope::occurred_at(event)), "data": data});
    Message { event_type, subject, body: body.to_string() }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new secret from 32 random bytes (two v4 UUIDs: the operating system's generator).
pub fn new_secret() -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].iter().flat_map(|u| *u.as_bytes()).collect();
    format!("whsec_{}", BASE64.encode(bytes))
}

/// When the `attempt`th failed attempt (1, 2, …) is retried: 5 s, doubling to an hour.
pub fn retry_after(attempt: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << attempt.saturating_sub(1).min(10))).min(Duration::from_secs(3600))
}

/// A new endpoint, checked: an absolute http(s) URL with a host, known event types (at least
/// one, no repeats), a short description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
}

impl TryFrom<&orderflow_proto::order::v1::CreateWebhookRequest> for NewWebhook {
    type Error = FieldError;

    fn try_from(request: &orderflow_proto::order::v1::CreateWebhookRequest) -> Result<Self, FieldError> {
        let url = request.url.trim();
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default()).unwrap_or_default();
        if rest.is_none() || host.is_empty() || host.contains('@') {
            return Err(FieldError::new("url", "must be an http:// or https:// URL with a host (and no credentials)"));
        }
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new("url", "must be at most 2048 characters without spaces"));
        }
        let mut event_types = Vec::new();
        for (n, t) in request.event_types.iter().enumerate() {
            let t = t.trim();
            if !TYPES.contains(&t) {
                return Err(FieldError::new(
                    format!("event_types[{n}]"),
                    format!("{t:?} is not one of {}", TYPES.join(", ")),
                ));
            }
            if !event_types.iter().any(|e| e == t) {
                event_types.push(t.to_owned());
            }
        }
        if event_types.is_empty() {
            return Err(FieldError::new("event_types", "at least one is required"));
        }
        Ok(Self {
            url: url.to_owned(),
            event_types,
            description: optional_text("description", &request.description, 200)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::envelope::Cause;
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::events::v1::{LowStock, Picked, Shipped};
    use orderflow_proto::order::v1::CreateWebhookRequest;

    #[test]
    fn new_secrets_are_signing_keys_and_never_repeat() {
        let fresh = new_secret();
        assert!(fresh.starts_with("whsec_") && orderflow_kit::signing::sign(&fresh, "msg", 1, "{}").is_some());
        assert_ne!(fresh, new_secret());
    }

    #[test]
    fn events_become_typed_messages_ordered_by_their_order_or_sku() {
        let cause = Cause::command(TraceParent::new_root());
        let shipped =
            Payload::Shipped(Shipped { carrier: "DPD".into(), tracking_number: "DP1".into(), ..Default::default() });
        let event = envelope::build("shipping-service", "o-1", shipped, &cause);
        let shipped = message(&event).unwrap();
        assert_eq!((shipped.event_type, shipped.subject.as_str()), ("order.shipped", "o-1"));
        let body: Value = serde_json::from_str(&shipped.body).unwrap();
        assert_eq!(body["type"], "order.shipped");
        assert_eq!(body["data"]["order_id"], "o-1");
        assert_eq!(body["data"]["tracking_number"], "DP1");
        assert_eq!(body["data"]["event_id"], event.event_id);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let low = Payload::LowStock(LowStock { sku: "MUG".into(), available: 2, threshold: 5 });
        let low = message(&envelope::build("inventory-service", "", low, &cause)).unwrap();
        assert_eq!((low.event_type, low.subject.as_str()), ("stock.low", "sku:MUG"));
        assert_eq!(
            message(&envelope::build("fulfillment-service", "o-1", Payload::Picked(Picked::default()), &cause)),
            None
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(1), Duration::from_secs(5));
        assert_eq!(retry_after(2), Duration::from_secs(10));
        assert_eq!(retry_after(10), Duration::from_secs(2560));
        assert_eq!(retry_after(40), Duration::from_secs(3600));
    }

    #[test]
    fn a_new_endpoint_is_checked_field_by_field() {
        let request = |url: &str, types: &[&str]| CreateWebhookRequest {
            url: url.into(),
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            description: "shop".into(),
        };
        let ok = NewWebhook::try_from(&request(" https://shop.example/hooks ", &["order.shipped", "order.shipped"]))
            .unwrap();
        assert_eq!((ok.url.as_str(), ok.event_types.len()), ("https://shop.example/hooks", 1));
        for (bad, field) in [
            (request("ftp://x", &["order.shipped"]), "url"),
            (request("https://", &["order.shipped"]), "url"),
            (request("https://user:pw@x/", &["order.shipped"]), "url"),
            (request("https://x/a b", &["order.shipped"]), "url"),
            (request("https://x/", &[]), "event_types"),
            (request("https://x/", &["order.shipped", "order.lost"]), "event_types[1]"),
        ] {
            assert_eq!(NewWebhook::try_from(&bad).unwrap_err().field, field, "{bad:?}");
        }
    }

    #[test]
    fn the_documented_example_verifies() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/webhooks.md"));
        let field = |name: &str| {
            doc.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("no {name}"))
        };
        let body = doc.split("```json\n").nth(1).and_then(|rest| rest.split("\n```").next()).unwrap();
        let (id, timestamp) = (field("webhook-id"), field("webhook-timestamp"));
        let at: i64 = timestamp.parse().unwrap();
        orderflow_kit::signing::verify(field("secret"), id, timestamp, field("webhook-signature"), body, at).unwrap();
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["type"], "order.shipped");
        assert!(TYPES.iter().all(|t| doc.contains(&format!("| `{t}` |"))), "every type is documented");
    }
}
