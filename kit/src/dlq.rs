//! Dead letters: the headers a dead letter carries, and the operator's two answers to one,
//! redrive (apply it again) and discard (drop it). Both travel through the dead letter's source
//! topic, keyed like the original, so the consumer that parked it meets the answer in order
//! with the order's other events and acts on it in its inbox transaction: a redriven event
//! applies exactly once, and the events that waited behind it follow in order.

#[cfg(feature = "operator")]
use crate::{events::Read, outbox};
#[cfg(feature = "operator")]
use rdkafka::message::{Header, OwnedHeaders};
#[cfg(feature = "operator")]
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
#[cfg(feature = "operator")]
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
/// On a dead letter whose value was cut to fit the dead-letter topic: the original length.
pub const TRUNCATED: &str = "dlq.value.truncated";

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
    /// The answer carried by the headers of a message read on `topic` (one of `consumed`), or
    /// why it is not a valid one: an answer names its action, group and the dead letter's
    /// source topic, partition and offset, and travels on that source topic, which must be one
    /// the consumer reads.
    pub fn read_on(headers: &BTreeMap<String, String>, topic: &str, consumed: &[String]) -> Result<Self, String> {
        let action = match headers.get(ACTION).map(String::as_str) {
            Some("redrive") => Action::Redrive,
            Some("discard") => Action::Discard,
            _ => return Err(format!("{ACTION} must be \"redrive\" or \"discard\"")),
        };
        let answer = Self::to_dead_letter(headers, action).ok_or_else(|| {
            format!(
                "it needs {GROUP}, {SOURCE_TOPIC}, {SOURCE_PARTITION} and {SOURCE_OFFSET} (a partition and an offset)"
            )
        })?;
        if answer.topic != topic || !consumed.contains(&answer.topic) {
            return Err(format!("{SOURCE_TOPIC} must be the topic it is sent to, one this consumer reads"));
        }
        Ok(answer)
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
#[cfg(feature = "operator")]
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
#[cfg(feature = "operator")]
pub async fn answer(brokers: &str, dead: &Read, action: Action) -> Result<(i32, i64), AnswerError> {
    let answer = Answer::to_dead_letter(&dead.headers, action).ok_or(AnswerError::NotADeadLetter)?;
    let producer: FutureProducer = outbox::producer_config(brokers, Duration::ZERO)?.create()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn only_a_complete_answer_on_its_own_consumed_source_topic_is_accepted() {
        let consumed = ["t.orders".to_owned()];
        let good = [
            (ACTION, "discard"),
            (GROUP, "g"),
            (SOURCE_TOPIC, "t.orders"),
            (SOURCE_PARTITION, "0"),
            (SOURCE_OFFSET, "7"),
        ];
        let answer = Answer::read_on(&headers(&good), "t.orders", &consumed).unwrap();
        assert_eq!((answer.action, answer.offset), (Action::Discard, 7));
        let mut bad_action = headers(&good);
        bad_action.insert(ACTION.into(), "explode".into());
        assert!(Answer::read_on(&bad_action, "t.orders", &consumed).unwrap_err().contains(ACTION));
        let mut no_offset = headers(&good);
        no_offset.insert(SOURCE_OFFSET.into(), "x".into());
        assert!(Answer::read_on(&no_offset, "t.orders", &consumed).is_err());
        assert!(Answer::read_on(&headers(&good), "t.other", &consumed).is_err(), "sent to another topic");
        assert!(Answer::read_on(&headers(&good), "t.orders", &[]).is_err(), "a topic it does not read");
    }
}
