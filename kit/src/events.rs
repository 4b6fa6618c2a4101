//! Reading the event topics as an operator does, outside any consumer group: every partition
//! of the chosen topics from their start (or end), messages decoded where they can be. Used by
//! `orderctl events tail`, `orderctl order trace` and the tests that check what went over the
//! wire. Nothing is committed; reading never disturbs the services. Operator-only (feature
//! `operator`): the services do not link it.

use crate::envelope::{self, EventEnvelope};
use crate::topics::watermarks;
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
pub use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// One message as read: where it is, and its envelope or why it is not one.
#[derive(Debug, Clone)]
pub struct Read {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// The raw value, for tools that render it themselves.
    pub payload: Vec<u8>,
    /// The Kafka headers (event type, trace context; `dlq.*` on a dead letter).
    pub headers: BTreeMap<String, String>,
    pub envelope: Result<EventEnvelope, String>,
}

/// A message's headers as text (values that are not UTF-8 are shown lossily).
pub fn header_map<H: Headers>(headers: Option<&H>) -> BTreeMap<String, String> {
    headers
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A reader of every partition of some topics.
pub struct Reader {
    consumer: StreamConsumer,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Reads `topics` from their start (`from_beginning`) or only what arrives from now on.
    pub fn new(brokers: &str, topics: &[String], from_beginning: bool) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer = crate::kafka::client_config(brokers)?
            .set("group.id", format!("orderflow-reader-{}", uuid::Uuid::new_v4().simple()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        let start = if from_beginning { Offset::Beginning } else { Offset::End };
        for (topic, partition) in watermarks(&consumer, topics)?.into_keys() {
            assignment.add_partition_offset(&topic, partition, start)?;
        }
        consumer.assign(&assignment)?;
        Ok(Self { consumer })
    }

    /// The next message, waiting for one.
    pub async fn next(&self) -> Result<Read, KafkaError> {
        let message = self.consumer.stream().next().await.unwrap_or(Err(KafkaError::NoMessageReceived))?;
        let payload = message.payload().unwrap_or_default().to_vec();
        let envelope = envelope::decode(Some(&payload)).map(|d| d.envelope).map_err(|e| e.to_string());
        Ok(Read {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload,
            headers: header_map(message.headers()),
            envelope,
        })
    }
}

/// Everything in `topics` up to their ends as of now, in (topic, partition, offset) order.
pub async fn read_to_end(brokers: &str, topics: &[String]) -> Result<Vec<Read>, KafkaError> {
    let probe: BaseConsumer = crate::kafka::client_config(brokers)?.create()?;
    let topics_owned = topics.to_vec();
    let ends = tokio::task::spawn_blocking(move || watermarks(&probe, &topics_owned))
        .await
        .map_err(|_| KafkaError::Canceled)??;
    let mut remaining: BTreeMap<(String, i32), i64> =
        ends.into_iter().filter(|(_, (start, end))| end > start).map(|(p, (_, end))| (p, end)).collect();
    let reader = Reader::new(brokers, topics, true)?;
    let mut read = Vec::new();
    while !remaining.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(30), reader.next())
            .await
            .map_err(|_| KafkaError::NoMessageReceived)??;
        let key = (message.topic.clone(), message.partition);
        if let Some(end) = remaining.get(&key) {
            if message.offset + 1 >= *end {
                remaining.remove(&key);
            }
            read.push(message);
        }
    }
    read.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    Ok(read)
}

/// Writes a message to `topic` as any client of the broker could: any key, headers and value
/// bytes (drills, checks and tests of what consumers do with them). Returns where it landed
/// (partition, offset).
pub async fn send_raw(
    brokers: &str,
    topic: &str,
    key: &[u8],
    headers: &[(&str, &[u8])],
    value: Option<&[u8]>,
) -> Result<(i32, i64), KafkaError> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = crate::kafka::client_config(brokers)?.create()?;
    let headers = headers
        .iter()
        .fold(OwnedHeaders::new(), |h, (name, value)| h.insert(Header { key: name, value: Some(*value) }));
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).key(key).headers(headers);
    if let Some(value) = value {
        record = record.payload(value);
    }
    let delivery = producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e)?;
    Ok((delivery.partition, delivery.offset))
}
