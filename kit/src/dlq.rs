//! Dead letters: the headers a dead letter carries, and the operator's two answers to one,
//! redrive (apply it again) and discard (drop it). Both travel through the dead letter's source
//! topic, keyed like the original, so the consumer that parked it meets the answer in order
//! with the order's other events and acts on it in its inbox transaction: a redriven event
//! applies exactly once, and the events that waited behind it follow in order.

use crate::events::Read;
use crate::outbox;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the message could not be applied.
pub const ERROR: &str = "dlq.error";
/// Where the message was read: topic, partition and offset.
pub const SOURCE_TOPIC: &str = "dlq.source.topic";
pub const SOURCE_PARTITION: &str = "dlq.source.partition";
pub const SOURCE_OFFSET: &str = "dlq.source.offset";
/// The consumer group that could not apply it.
pub const GROUP: &str = "dlq.consumer.group";
/// On a source-topic message: the operator's answer for this group (see [`Action`]).
pub const ACTION: &str = "dlq.action";

/// What an operator decided for a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Apply the event again (after the cause was fixed); what waited behind it follows.
    Redrive,
    /// Drop the event for good; what waited behind it is applied.
    Discard,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Redrive => "redrive",
            Action::Discard => "discard",
        }
    }
}

/// An operator's answer found on a source topic: which dead letter, for which group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub action: Action,
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Answer {
    /// The answer a message's headers carry, if they carry one (an event never does).
    pub fn of(headers: &BTreeMap<String, String>) -> Option<Self> {
        let action = match headers.get(ACTION)?.as_str() {
            "redrive" => Action::Redrive,
            "discard" => Action::Discard,
            _ => return None,
        };
        Self::to_dead_letter(headers, action)
    }

    /// `action` for the dead letter with these headers (`None`: they are not a dead letter's).
    fn to_dead_letter(headers: &BTreeMap<String, String>, action: Action) -> Option<Self> {
        Some(Self {
            action,
            group: headers.get(GROUP)?.clone(),
            topic: headers.get(SOURCE_TOPIC)?.clone(),
            partition: headers.get(SOURCE_PARTITION)?.parse().ok()?,
            offset: headers.get(SOURCE_OFFSET)?.parse().ok()?,
        })
    }
}

/// Why an answer could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("not a dead letter: its dlq.* headers are missing")]
    NotADeadLetter,
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Sends `action` for the dead letter `dead` (as read from a dead-letter topic) to its source
/// topic, with its key; returns where it was written (partition, offset). A redrive carries
/// the event; a discard carries no value.
pub async fn answer(brokers: &str, dead: &Read, action: Action) -> Result<(i32, i64), AnswerError> {
    let answer = Answer::to_dead_letter(&dead.headers, action).ok_or(AnswerError::NotADeadLetter)?;
    let producer: FutureProducer = outbox::producer_config(brokers, Duration::ZERO).create()?;
    let headers = [
        (ACTION, action.as_str().to_owned()),
        (GROUP, answer.group.clone()),
        (SOURCE_TOPIC, answer.topic.clone()),
        (SOURCE_PARTITION, answer.partition.to_string()),
        (SOURCE_OFFSET, answer.offset.to_string()),
    ]
    .iter()
    .fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: Some(value.as_bytes()) }));
    let key = dead.key.as_deref().unwrap_or_default();
    let mut record = FutureRecord::<[u8], [u8]>::to(&answer.topic).key(key).headers(headers);
    if action == Action::Redrive {
        record = record.payload(&dead.payload);
    }
    let delivery = producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
    Ok((delivery.partition, delivery.offset))
}
