//! The consumer's loop: tick the partition leases, keep the assignment equal to what this
//! instance holds, read a batch (waiting no longer than the next tick) and apply it.

use super::{Applied, ConsumeError, EventHandler, InboxConsumer, KAFKA_ERROR_PAUSE, LEASE_TICK, LIST_PARTITIONS};
use super::{Partition, store};
use crate::backoff::Backoff;
use crate::metrics;
use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

impl<H: EventHandler> InboxConsumer<H> {
    /// Consumes until `shutdown`, on whatever partitions this instance holds; a failed batch is
    /// retried after a back-off (no busy loop). On shutdown the leases are given back, so the
    /// other instances take the partitions at once.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => break,
                result = self.consume_next_batch() => result,
            };
            match result {
                Ok(_) => backoff.reset(),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff.next(), group = %self.group, "consumer batch failed; retrying");
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }
        self.leases.release_all().await;
    }

    /// One step: ticks the leases when due, then waits (until the next tick at most) for at
    /// least one message of a held partition, takes whatever else is ready (up to the batch
    /// size) and applies it all in one transaction. Nothing to read is an empty [`Applied`].
    pub async fn consume_next_batch(&mut self) -> Result<Applied, ConsumeError> {
        if Instant::now() >= self.next_tick {
            self.next_tick = Instant::now() + LEASE_TICK;
            if let Err(error) = self.rebalance().await {
                self.unassign();
                return Err(error);
            }
        }
        let wait = self.next_tick.saturating_duration_since(Instant::now());
        if self.assigned.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(Applied::default());
        }
        let Ok(first) = tokio::time::timeout(wait, self.recv()).await else { return Ok(Applied::default()) };
        let mut batch = vec![first];
        while batch.len() < self.batch_size {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer error");
                    break;
                }
                None => break,
            }
        }
        // A message of a partition given back a moment ago may still be queued: its new holder
        // reads it (and the stored offsets would fence it off anyway).
        batch.retain(|m| self.assigned.contains(&(m.topic().to_owned(), m.partition())));
        if batch.is_empty() {
            return Ok(Applied::default());
        }
        metrics::batch(batch.len());
        match self.apply(&batch).await {
            Ok(applied) if applied.fenced => {
                // Another instance (or an operator) moved the offsets: read from there.
                self.rewind(&batch);
                Ok(applied)
            }
            Ok(applied) => Ok(applied),
            Err(error) => {
                // Nothing was committed: forget cached offsets and read the batch again.
                self.positions.clear();
                self.seeking.clear();
                self.parked_keys = None;
                self.rewind(&batch);
                Err(error)
            }
        }
    }

    /// The next message. librdkafka reports every failed connection attempt (the broker down
    /// or restarting) and reconnects by itself with its own back-off. Those reports queue up,
    /// so they are taken in stride instead of backing off for each: a broker back after a
    /// minute must not leave a minute of stale reports to work through.
    async fn recv(&self) -> OwnedMessage {
        loop {
            match self.consumer.recv().await {
                Ok(message) => return message.detach(),
                Err(error) => {
                    tracing::warn!(%error, group = %self.group, "kafka reports a problem; librdkafka is retrying");
                    tokio::time::sleep(KAFKA_ERROR_PAUSE).await;
                }
            }
        }
    }

    /// Lists the partitions (now and then), ticks the leases and, if what this instance holds
    /// changed, assigns exactly that from the stored offsets.
    async fn rebalance(&mut self) -> Result<(), ConsumeError> {
        if self.listed.is_none_or(|at| at.elapsed() >= LIST_PARTITIONS) {
            match self.list_partitions().await {
                Ok(all) => {
                    self.all = all;
                    self.listed = Some(Instant::now());
                }
                // The broker may be down for a while: keep the partitions known so far.
                Err(error) if !self.all.is_empty() => tracing::warn!(%error, "listing partitions failed"),
                Err(error) => return Err(error),
            }
        }
        let mut numbers: Vec<i32> = self.all.iter().map(|(_, number)| *number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        self.leases.tick(&numbers).await?;
        if self.held() != self.assigned {
            self.assign().await?;
        }
        Ok(())
    }

    /// The partitions the held numbers stand for: that number of every topic.
    fn held(&self) -> BTreeSet<Partition> {
        self.all.iter().filter(|(_, number)| self.leases.owned().contains(number)).cloned().collect()
    }

    async fn list_partitions(&self) -> Result<Vec<Partition>, ConsumeError> {
        let (consumer, topics) = (Arc::clone(&self.consumer), self.topics.clone());
        let partitions = tokio::task::spawn_blocking(move || crate::topics::watermarks(&*consumer, &topics))
            .await
            .map_err(|_| KafkaError::Canceled)??;
        if partitions.is_empty() {
            return Err(ConsumeError::NoPartitions(self.topics.clone()));
        }
        Ok(partitions.into_keys().collect())
    }

    /// Assigns the held partitions, each from its stored offset (or its beginning).
    async fn assign(&mut self) -> Result<(), ConsumeError> {
        let owned = self.held();
        self.positions.clear();
        self.seeking.clear();
        self.parked_keys = None;
        let mut conn = self.pool.acquire().await?;
        let mut assignment = TopicPartitionList::new();
        for partition in &owned {
            let stored = store::load_position(&mut conn, &self.group, partition).await?;
            assignment.add_partition_offset(
                &partition.0,
                partition.1,
                stored.map_or(Offset::Beginning, Offset::Offset),
            )?;
            self.positions.insert(partition.clone(), stored);
        }
        self.consumer.assign(&assignment)?;
        tracing::info!(partitions = owned.len(), of = self.all.len(), group = %self.group, "partitions assigned");
        self.assigned = owned;
        Ok(())
    }

    /// Stops reading every partition (a failed tick: the leases may be gone).
    fn unassign(&mut self) {
        if let Err(error) = self.consumer.unassign() {
            tracing::warn!(%error, "unassigning failed");
        }
        self.assigned.clear();
        self.positions.clear();
        self.seeking.clear();
        self.parked_keys = None;
    }

    /// Seeks every partition of an uncommitted batch back to its first message, so the batch
    /// is read again at once (the stored offsets decide from there on), instead of waiting for
    /// a later message that may never come.
    fn rewind(&mut self, batch: &[OwnedMessage]) {
        let mut first: BTreeMap<Partition, i64> = BTreeMap::new();
        for message in batch {
            first.entry((message.topic().to_owned(), message.partition())).or_insert(message.offset());
        }
        for (partition, offset) in first {
            self.seeking.remove(&partition);
            self.seek(&partition, offset);
        }
    }

    pub(super) fn seek(&mut self, partition: &Partition, offset: i64) {
        if self.seeking.get(partition) == Some(&offset) {
            return;
        }
        match self.consumer.seek(&partition.0, partition.1, Offset::Offset(offset), Duration::from_secs(5)) {
            Ok(()) => {
                tracing::debug!(topic = %partition.0, partition = partition.1, offset, "seeked to stored offset");
                self.seeking.insert(partition.clone(), offset);
            }
            Err(error) => {
                tracing::warn!(%error, topic = %partition.0, partition = partition.1, offset, "seek failed; will retry")
            }
        }
    }
}
