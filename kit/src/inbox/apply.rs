//! Applying one batch in one transaction, as its [`plan`] says: a batch of plain events in one
//! go (the fast path), any other each message in order, each event in a savepoint of its own.
//! What cannot apply is dead-lettered at once (through the outbox, in the same transaction)
//! and the batch goes on; only a transient failure fails the batch.

use super::incoming::{Incoming, stored_text};
use super::plan::{self, Step};
use super::store::{self, Park};
use super::{Applied, ConsumeError, EventHandler, HandlerError, InboxConsumer, Partition};
use crate::envelope::{self, DecodeError, Decoded, EventEnvelope};
use crate::trace::TraceParent;
use crate::{db, dlq, metrics, outbox, telemetry};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, HashSet};
use tracing::Instrument;

/// Longest reason kept on a dead letter (bytes).
const MAX_REASON: usize = 1_000;
/// Largest value a dead letter carries to the dead-letter topic (bytes); a larger one is cut
/// (its `parked` row keeps it whole for a redrive), so no message can stop the relay by being
/// too large for the broker once the dead letter's headers are added.
pub const MAX_DEAD_LETTER_VALUE: usize = 256 * 1024;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Applied, skipped as a duplicate or as an unknown type, or dead-lettered without holding
    /// its key up: what follows with its key applies.
    Done,
    /// Dead-lettered at the head of its key: what follows with its key waits behind it.
    Heads,
}

impl<H: EventHandler> InboxConsumer<H> {
    /// Applies `batch` (messages as read, in order) in one transaction with the offsets they
    /// advance to. A batch of plain events takes the fast path (the inbox written in one
    /// statement, no savepoint per event); if a handler refuses one of them, the batch is
    /// rolled back and applied again the careful way, each message on its own. Public so tests
    /// can feed it any bytes at all.
    pub async fn apply(&mut self, batch: &[OwnedMessage]) -> Result<Applied, ConsumeError> {
        if let Some(applied) = self.apply_batch(batch, true).await? {
            return Ok(applied);
        }
        metrics::fast_path_fallback();
        Ok(self.apply_batch(batch, false).await?.unwrap_or_default())
    }

    /// One attempt at `batch`; `None` if the fast path was tried and a handler refused an
    /// event (nothing was committed).
    async fn apply_batch(&mut self, batch: &[OwnedMessage], fast: bool) -> Result<Option<Applied>, ConsumeError> {
        let mut outcome = Applied::default();
        let mut tx = self.pool.begin().await?;
        if self.parked_keys.is_none() {
            self.parked_keys = Some(store::parked_keys(&mut tx, &self.group).await?);
        }
        let read: Vec<(Partition, i64)> =
            batch.iter().map(|m| ((m.topic().to_owned(), m.partition()), m.offset())).collect();
        for (partition, _) in &read {
            if !self.positions.contains_key(partition) {
                let stored = store::load_position(&mut tx, &self.group, partition).await?;
                self.positions.insert(partition.clone(), stored);
            }
        }
        let plan = plan::offsets(&read, &self.positions);
        let mut consumed = Vec::new();
        for ((message, (partition, _)), step) in batch.iter().zip(&read).zip(&plan.steps) {
            match step {
                Step::Pass { to } => {
                    outcome.skipped += 1;
                    self.seek(partition, *to);
                }
                Step::Consume => {
                    self.seeking.remove(partition);
                    consumed.push(Incoming::read(message));
                }
            }
        }
        let refs: Vec<&Incoming> = consumed.iter().collect();
        let plain = if fast { plan::plain(&refs, self.parked_keys.as_ref().unwrap_or(&HashSet::new())) } else { None };
        match plain {
            Some(events) => {
                if !self.apply_plain(&mut tx, &refs, &events, &mut outcome).await? {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
            None => {
                for incoming in consumed {
                    self.apply_one(&mut tx, incoming, &mut outcome).await?;
                }
            }
        }
        for (partition, (stored, next)) in &plan.advanced {
            if !store::store_position(&mut tx, &self.group, partition, *stored, *next).await? {
                tracing::info!(topic = %partition.0, partition = partition.1, "offsets moved by another instance; batch dropped");
                tx.rollback().await?;
                self.positions.clear();
                self.parked_keys = None;
                return Ok(Some(Applied { fenced: true, ..Applied::default() }));
            }
        }
        tx.commit().await?;
        for (partition, (_, next)) in plan.advanced {
            self.positions.insert(partition, Some(next));
        }
        Ok(Some(outcome))
    }

    /// The fast path: every message is a plain event. Records them all in the inbox at once,
    /// then applies the new ones in order; false if a handler refused one (the caller rolls
    /// back and goes the careful way). A transient database error fails the batch.
    async fn apply_plain(
        &self,
        conn: &mut PgConnection,
        consumed: &[&Incoming],
        events: &[Decoded],
        outcome: &mut Applied,
    ) -> Result<bool, ConsumeError> {
        let pairs: Vec<(&Decoded, &Incoming)> = events.iter().zip(consumed.iter().copied()).collect();
        let new = store::insert_inbox_all(conn, &pairs).await?;
        let first = plan::first_occurrences(&events.iter().map(|d| d.event_id).collect::<Vec<_>>());
        let mut labels = Vec::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        for (decoded, first) in events.iter().zip(first) {
            let label = envelope::type_label(&decoded.envelope.event_type);
            if first && new.contains(&decoded.event_id) {
                fresh.push(&decoded.envelope);
                labels.push((label, "applied"));
            } else {
                outcome.duplicates += 1;
                labels.push((label, "duplicate"));
            }
        }
        // Each event gets its apply span, continuing its trace, for the whole batch: what the
        // batch emits names the span of the event that caused it (telemetry::emitted).
        let spans = fresh.iter().map(|event| (event.event_id.clone(), apply_span(event))).collect();
        match telemetry::applying(spans, self.handler.handle_all(conn, &fresh)).await {
            Ok(()) => outcome.applied += fresh.len(),
            Err(HandlerError::Database(error)) if db::transient(&error) => return Err(error.into()),
            Err(_) => return Ok(false),
        }
        for (label, outcome) in labels {
            metrics::event_consumed(label, outcome);
        }
        Ok(true)
    }

    /// One message from the topic: an operator's answer to a dead letter is carried out (if it
    /// is a valid one for this group); a message whose key waits behind a dead letter is
    /// parked; any other is applied.
    async fn apply_one(
        &mut self,
        conn: &mut PgConnection,
        incoming: Incoming,
        outcome: &mut Applied,
    ) -> Result<(), ConsumeError> {
        if incoming.headers.contains_key(dlq::ACTION) {
            match dlq::Answer::read_on(&incoming.headers, &incoming.topic, &self.topics) {
                Ok(answer) if answer.group == self.group => {
                    outcome.answers += 1;
                    self.carry_out(conn, &answer, outcome).await?;
                }
                Ok(_) => {} // another group's answer
                Err(why) => {
                    outcome.refused_answers += 1;
                    metrics::event_consumed("answer", "refused");
                    let reason = format!("refused as a dead-letter answer: {why}");
                    self.dead_letter(conn, &incoming, &reason, Park::Alone).await?;
                }
            }
            return Ok(());
        }
        if !incoming.key.is_empty() && self.parked_keys.as_ref().is_some_and(|keys| keys.contains(&incoming.key)) {
            store::park(conn, &self.group, &incoming, Park::Waiting, "").await?;
            outcome.parked += 1;
            let event_type = incoming.headers.get(envelope::header::EVENT_TYPE).map_or("", String::as_str);
            metrics::event_consumed(envelope::type_label(event_type), "parked");
            return Ok(());
        }
        self.apply_event(conn, &incoming, outcome).await?;
        Ok(())
    }

    /// Redrives or discards the dead letter `answer` names, then applies what waited behind it
    /// in order, until one of those is dead in turn. An answer for a dead letter that is no
    /// longer parked (answered before) does nothing: a redriven event applies once.
    async fn carry_out(
        &mut self,
        conn: &mut PgConnection,
        answer: &dlq::Answer,
        outcome: &mut Applied,
    ) -> Result<(), ConsumeError> {
        let Some(head) = store::dead_at(conn, &self.group, (&answer.topic, answer.partition, answer.offset)).await?
        else {
            tracing::info!(topic = %answer.topic, partition = answer.partition, offset = answer.offset, action = answer.action.as_str(), "no dead letter parked there (answered before?); nothing to do");
            return Ok(());
        };
        tracing::info!(topic = %answer.topic, partition = answer.partition, offset = answer.offset, action = answer.action.as_str(), key = %head.key, "operator's answer to a dead letter");
        let (id, key) = (head.id, head.key.clone());
        let head = head.into_incoming();
        match answer.action {
            dlq::Action::Redrive => {
                // Whether it dies again or not, its dead letter's row is what it left behind.
                store::unpark(conn, id).await?;
                if self.apply_event(conn, &head, outcome).await? == Fate::Heads {
                    return Ok(()); // dead again: it heads its key again
                }
            }
            // Recorded in the inbox as seen, so no copy of it applies later (a re-published
            // duplicate waiting behind it, or a replay from the start).
            dlq::Action::Discard => {
                store::record_seen(conn, &head).await?;
                store::unpark(conn, id).await?;
            }
        }
        if key.is_empty() {
            return Ok(());
        }
        for row in store::waiting_behind(conn, &self.group, &key).await? {
            store::unpark(conn, row.id).await?;
            outcome.released += 1;
            if self.apply_event(conn, &row.into_incoming(), outcome).await? == Fate::Heads {
                return Ok(()); // the new head: the rest keep waiting behind it
            }
        }
        if let Some(keys) = self.parked_keys.as_mut() {
            keys.remove(&key);
        }
        Ok(())
    }

    /// Applies one message in a savepoint: skipped if its event id is in the inbox, recorded
    /// and skipped if its type is unknown to this build, dead-lettered at once if it cannot be
    /// applied. A transient database error fails the batch instead.
    async fn apply_event(
        &mut self,
        conn: &mut PgConnection,
        incoming: &Incoming,
        outcome: &mut Applied,
    ) -> Result<Fate, ConsumeError> {
        let decoded = match envelope::decode(incoming.payload.as_deref()) {
            Ok(decoded) => decoded,
            Err(DecodeError::UnknownType { event_id, event_type }) => {
                if store::record_skipped(conn, event_id, &event_type, incoming).await? {
                    tracing::info!(event_type = %stored_text(event_type.as_bytes(), 128), %event_id, topic = %incoming.topic, offset = incoming.offset, "event of a type this build does not know: recorded and skipped");
                    outcome.unknown += 1;
                    metrics::event_consumed("unknown", "skipped");
                } else {
                    outcome.duplicates += 1;
                    metrics::event_consumed("unknown", "duplicate");
                }
                return Ok(Fate::Done);
            }
            // Not an event of the order its key names: it holds nothing up.
            Err(error) => {
                self.dead_letter(conn, incoming, &error.to_string(), Park::Alone).await?;
                outcome.dead_lettered += 1;
                metrics::event_consumed("undecodable", "dead_lettered");
                return Ok(Fate::Done);
            }
        };
        let label = envelope::type_label(&decoded.envelope.event_type);
        if let Some(reason) = super::misplaced(&decoded.envelope, &incoming.topic, &incoming.key) {
            self.dead_letter(conn, incoming, &reason, Park::Alone).await?;
            outcome.dead_lettered += 1;
            metrics::event_consumed(label, "dead_lettered");
            return Ok(Fate::Done);
        }
        let mut savepoint = conn.begin().await?;
        if !store::insert_inbox(&mut savepoint, &decoded, incoming).await? {
            outcome.duplicates += 1;
            metrics::event_consumed(label, "duplicate");
            savepoint.rollback().await?;
            return Ok(Fate::Done);
        }
        let span = apply_span(&decoded.envelope);
        let reason = match self.handler.handle(&mut savepoint, &decoded.envelope).instrument(span.clone()).await {
            Ok(()) => {
                savepoint.commit().await?;
                outcome.applied += 1;
                metrics::event_consumed(label, "applied");
                return Ok(Fate::Done);
            }
            Err(HandlerError::Database(error)) if db::transient(&error) => return Err(error.into()),
            Err(error) => {
                savepoint.rollback().await?;
                error.to_string()
            }
        };
        // An event of an order (keyed by it) holds the order's later events up: they must not
        // apply before it. A stock event (no order id) holds nothing up.
        let how = if decoded.envelope.order_id.is_empty() { Park::Alone } else { Park::HeadOfKey };
        let heads = self.dead_letter(conn, incoming, &reason, how).instrument(span).await?;
        outcome.dead_lettered += 1;
        metrics::event_consumed(label, "dead_lettered");
        Ok(if heads { Fate::Heads } else { Fate::Done })
    }

    /// Sends `incoming` to the dead-letter topic (through the outbox) and parks it as `how`;
    /// true if it now heads its key. Everything stored is text PostgreSQL accepts and bounded,
    /// so this cannot fail because of the message; should it fail all the same (not
    /// transiently), a bare record of where the message was and why is written instead (it
    /// holds nothing up), and the partition still moves on.
    async fn dead_letter(
        &mut self,
        conn: &mut PgConnection,
        incoming: &Incoming,
        error: &str,
        how: Park,
    ) -> Result<bool, sqlx::Error> {
        let error = stored_text(error.as_bytes(), MAX_REASON);
        tracing::warn!(topic = %incoming.topic, partition = incoming.partition, offset = incoming.offset, key = %incoming.key, %error, "dead-lettering message");
        let mut savepoint = conn.begin().await?;
        match self.write_dead_letter(&mut savepoint, incoming, &error, how).await {
            Ok(()) => savepoint.commit().await?,
            Err(failure) if db::transient(&failure) => return Err(failure),
            Err(failure) => {
                savepoint.rollback().await?;
                tracing::error!(error = %failure, "dead letter could not be stored as read; storing a bare record");
                let bare = Incoming { key: String::new(), payload: None, headers: BTreeMap::new(), ..incoming.clone() };
                let why = format!("{error} (message not kept: {})", stored_text(failure.to_string().as_bytes(), 200));
                self.write_dead_letter(conn, &bare, &why, Park::Alone).await?;
                return Ok(false);
            }
        }
        let heads = how == Park::HeadOfKey && !incoming.key.is_empty();
        if heads && let Some(keys) = self.parked_keys.as_mut() {
            keys.insert(incoming.key.clone());
        }
        Ok(heads)
    }

    async fn write_dead_letter(
        &self,
        conn: &mut PgConnection,
        incoming: &Incoming,
        error: &str,
        how: Park,
    ) -> Result<(), sqlx::Error> {
        let mut headers = BTreeMap::from([
            (dlq::ERROR.to_owned(), error.to_owned()),
            (dlq::SOURCE_TOPIC.to_owned(), incoming.topic.clone()),
            (dlq::SOURCE_PARTITION.to_owned(), incoming.partition.to_string()),
            (dlq::SOURCE_OFFSET.to_owned(), incoming.offset.to_string()),
            (dlq::GROUP.to_owned(), self.group.clone()),
        ]);
        let mut payload = incoming.payload.as_deref().unwrap_or_default();
        if payload.len() > MAX_DEAD_LETTER_VALUE {
            headers.insert(dlq::TRUNCATED.to_owned(), payload.len().to_string());
            payload = &payload[..MAX_DEAD_LETTER_VALUE];
        }
        outbox::enqueue_raw(conn, &self.dead_letter_topic, &incoming.key, payload, headers).await?;
        store::park(conn, &self.group, incoming, how, error).await
    }
}

/// The span an event is applied in, continuing the trace it carries.
pub(super) fn apply_span(event: &EventEnvelope) -> tracing::Span {
    let trace = TraceParent::parse(&event.traceparent);
    let span = tracing::info_span!(
        "apply",
        event_type = envelope::type_label(&event.event_type),
        order_id = %stored_text(event.order_id.as_bytes(), 64),
        event_id = %stored_text(event.event_id.as_bytes(), 64),
        trace_id = trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
    );
    if let Some(trace) = trace {
        telemetry::continue_trace(&span, &trace);
    }
    span
}
