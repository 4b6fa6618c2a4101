//! How far behind a service is, from its own database and the broker: consumer lag per topic
//! and partition (the offsets it stores in `consumer_offsets` against each partition's end),
//! outbox depth and the age of its oldest unpublished row, and the size of its dead-letter
//! topic. Shared by the service's metrics and `orderctl lag`.

use crate::topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One partition a service consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The next offset the service will apply (the partition's start if it applied nothing).
    pub next_offset: i64,
    /// The partition's end (high watermark).
    pub end: i64,
}

impl PartitionLag {
    pub fn lag(&self) -> i64 {
        (self.end - self.next_offset).max(0)
    }
}

/// A service's backlog at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub partitions: Vec<PartitionLag>,
    pub outbox_depth: i64,
    /// Age of the oldest unpublished outbox row; 0 when the outbox is empty.
    pub outbox_oldest_seconds: f64,
    /// Messages in the service's dead-letter topic.
    pub dead_letters: i64,
    /// Events of types this build does not know, recorded and skipped (a newer producer's).
    pub skipped_unknown: i64,
}

impl Report {
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("broker query did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// Asks the broker for partition ends; one client per service, reused.
#[derive(Clone)]
pub struct Probe {
    client: Arc<BaseConsumer>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

impl Probe {
    pub fn new(brokers: &str) -> Result<Self, LagError> {
        let client: BaseConsumer = crate::kafka::client_config(brokers)?.create()?;
        Ok(Self { client: Arc::new(client) })
    }

    /// (start, end) of every partition of `topic`.
    async fn partitions(&self, topic: String) -> Result<Vec<(i32, i64, i64)>, LagError> {
        let client = Arc::clone(&self.client);
        let found = tokio::task::spawn_blocking(move || topics::watermarks(&*client, &[topic])).await??;
        Ok(found.into_iter().map(|((_, partition), (start, end))| (partition, start, end)).collect())
    }

    /// Whether the broker answers a metadata request within a few seconds.
    pub async fn reachable(&self) -> bool {
        let client = Arc::clone(&self.client);
        tokio::task::spawn_blocking(move || client.fetch_metadata(None, TIMEOUT).is_ok()).await.unwrap_or(false)
    }

    /// The backlog of the service whose database is `pool`, consumer group `group` and
    /// dead-letter topic `dead_letter_topic`.
    pub async fn report(&self, pool: &PgPool, group: &str, dead_letter_topic: &str) -> Result<Report, LagError> {
        let stored = crate::inbox::stored_offsets(pool, group).await?;
        let mut by_topic: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
        for (topic, partition, next) in stored {
            by_topic.entry(topic).or_default().insert(partition, next);
        }
        let mut partitions = Vec::new();
        for (topic, offsets) in by_topic {
            for (partition, start, end) in self.partitions(topic.clone()).await? {
                let next_offset = offsets.get(&partition).copied().unwrap_or(start);
                partitions.push(PartitionLag { topic: topic.clone(), partition, next_offset, end });
            }
        }
        let dead_letters = self.partitions(dead_letter_topic.to_owned()).await?.iter().map(|(_, s, e)| e - s).sum();
        let (outbox_depth, outbox_oldest_seconds): (i64, f64) = sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox",
        )
        .fetch_one(pool)
        .await?;
        let skipped_unknown: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbox WHERE skipped").fetch_one(pool).await?;
        Ok(Report { partitions, outbox_depth, outbox_oldest_seconds, dead_letters, skipped_unknown })
    }
}
