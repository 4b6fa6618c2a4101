//! Topic names (one per producing service, plus a dead-letter topic per consumer) and their
//! explicit, idempotent creation at start-up; auto-creation is never relied on.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The topics of the flow, one per producing service, which alone writes it (operators'
/// answers to dead letters aside, as on every topic). [`Topic::of_event`] says which event
/// types each carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// order-service: OrderPlaced, OrderCancelled, ShipmentRequested and the payment's events.
    Orders,
    /// inventory-service: StockReserved, StockHeld, StockRejected, StockReleased,
    /// StockRestocked, LowStock.
    Inventory,
    /// fulfillment-service: Picked, Sorted, Packed.
    Fulfillment,
    /// shipping-service: Labelled, Shipped, ShipmentRejected, TrackingUpdated, Delivered,
    /// Returned.
    Shipping,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Orders, Topic::Inventory, Topic::Fulfillment, Topic::Shipping];

    /// The service that publishes to this topic: the producer its events must name.
    pub fn owner(self) -> &'static str {
        match self {
            Topic::Orders => "order-service",
            Topic::Inventory => "inventory-service",
            Topic::Fulfillment => "fulfillment-service",
            Topic::Shipping => "shipping-service",
        }
    }

    /// The one topic events of `event_type` are published to; `None` for a type this build
    /// does not know.
    pub fn of_event(event_type: &str) -> Option<Topic> {
        Some(match event_type {
            "OrderPlaced" | "OrderCancelled" | "ShipmentRequested" | "PaymentAuthorized" | "PaymentDeclined"
            | "PaymentCaptured" | "PaymentVoided" => Topic::Orders,
            "StockReserved" | "StockHeld" | "StockRejected" | "StockReleased" | "StockRestocked" | "LowStock" => {
                Topic::Inventory
            }
            "Picked" | "Sorted" | "Packed" => Topic::Fulfillment,
            "Labelled" | "Shipped" | "ShipmentRejected" | "TrackingUpdated" | "Delivered" | "Returned" => {
                Topic::Shipping
            }
            _ => return None,
        })
    }

    /// The topic a name (`<namespace>.<stem>.v1`, any namespace) stands for.
    pub fn from_name(name: &str) -> Option<Topic> {
        let stem = name.strip_suffix(".v1")?.rsplit('.').next()?;
        Topic::ALL.into_iter().find(|t| t.stem() == stem)
    }

    pub fn stem(self) -> &'static str {
        match self {
            Topic::Orders => "orders",
            Topic::Inventory => "inventory",
            Topic::Fulfillment => "fulfillment",
            Topic::Shipping => "shipping",
        }
    }
}

/// Topic names within one namespace (`orderflow` in production, a random one per test).
#[derive(Debug, Clone)]
pub struct Topics {
    namespace: String,
}

impl Topics {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into() }
    }

    /// `<namespace>.<stem>.v1`, e.g. `orderflow.orders.v1`.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}.{}.v1", self.namespace, topic.stem())
    }

    /// Every event topic of the flow, by name.
    pub fn all(&self) -> Vec<String> {
        Topic::ALL.iter().map(|t| self.name(*t)).collect()
    }

    /// The consumer group of `service`: `<namespace>.<service>` (stacks that share a broker
    /// under different namespaces never share a group).
    pub fn consumer_group(&self, service: &str) -> String {
        format!("{}.{service}", self.namespace)
    }

    /// Where events that `service` could not decode or apply go, e.g. `orderflow.dlq.order-service.v1`.
    pub fn dead_letter(&self, service: &str) -> String {
        format!("{}.dlq.{service}.v1", self.namespace)
    }
}

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("kafka admin request failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic} failed: {code}")]
    Create { topic: String, code: RDKafkaErrorCode },
}

/// Creates `names` if they do not exist yet; existing topics are left as they are.
pub async fn ensure(brokers: &str, names: &[String], partitions: i32, replication: i32) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = crate::kafka::client_config(brokers)?.create()?;
    let new: Vec<NewTopic<'_>> =
        names.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    Ok(())
}

/// (topic, partition) → (start, end) offsets.
pub type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// The partitions of `topics` with their (start, end) offsets. Blocking: call it off the
/// async workers.
pub fn watermarks<C: Consumer>(client: &C, topics: &[String]) -> Result<Watermarks, KafkaError> {
    let mut found = BTreeMap::new();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let watermarks = client.fetch_watermarks(topic, partition.id(), METADATA_TIMEOUT)?;
            found.insert((topic.clone(), partition.id()), watermarks);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_event_type_has_one_topic_and_names_parse_back() {
        for event_type in crate::envelope::KNOWN_TYPES {
            assert!(Topic::of_event(event_type).is_some(), "{event_type}");
        }
        assert_eq!(Topic::of_event("OrderTeleported"), None);
        let topics = Topics::new("ns.with.dots");
        for topic in Topic::ALL {
            assert_eq!(Topic::from_name(&topics.name(topic)), Some(topic));
        }
        assert_eq!(Topic::from_name(&topics.dead_letter("order-service")), None);
        assert_eq!(Topic::of_event("PaymentAuthorized").map(Topic::owner), Some("order-service"));
    }
}
