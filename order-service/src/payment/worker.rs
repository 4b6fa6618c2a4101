//! The payment worker: takes the due gateway calls (leased, so several instances share them and
//! a crash mid-call only delays it), makes them concurrently, and settles their answers in one
//! transaction under the orders' row locks: the payment event with its outbox row, timeline
//! entry and webhook, the order's view, and the next call due (or none). A call that failed is
//! tried again after its back-off with the same idempotency key.

use super::domain::{self, Outcome, retry_after};
use super::gateway::{self, Gateway};
use super::store::{self, Claimed};
use crate::project::domain::{View, evolve, timeline_step};
use chrono::Utc;
use futures::StreamExt;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::outbox;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Most calls one round takes; it makes them all at once.
const BATCH: usize = 64;
/// A taken call's lease: a round's calls (at most the gateway's timeout) and its settling.
const LEASE: Duration = Duration::from_secs(6 * gateway::TIMEOUT.as_secs());
/// Times a settle is tried when the database fails it transiently (a deadlock, a lost
/// connection) before the round gives up and the calls wait out their lease.
const SETTLE_TRIES: u32 = 3;
/// How often the worker looks for due calls when nothing woke it.
const IDLE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct Worker {
    pub pool: PgPool,
    pub gateway: Gateway,
    /// The orders topic, where payment events go.
    pub topic: String,
    /// Notified when PlaceOrder committed new orders.
    pub wake: Arc<Notify>,
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = Arc::clone(&self.wake);
        orderflow_kit::backoff::poll_woken(IDLE, &wake, shutdown, "settling payments", || self.round()).await;
    }

    /// One round: the due calls made and settled; how many.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let claimed = store::claim(&self.pool, BATCH as i64, LEASE).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let answered: Vec<(Claimed, Outcome)> = futures::stream::iter(claimed)
            .map(|call| async move {
                let span = payment_span(&call);
                let outcome = self.gateway.call(call.order_id, call.action, &call.placed).instrument(span).await;
                (call, outcome)
            })
            .buffer_unordered(BATCH)
            .collect()
            .await;
        let n = answered.len();
        let mut tries = 1;
        // If this fails for good the leases run out and the calls are made again, with the same keys.
        while let Err(error) = self.settle(answered.clone()).await {
            if tries == SETTLE_TRIES || !orderflow_kit::db::transient(&error) {
                return Err(error);
            }
            tracing::warn!(%error, tries, "settling payments failed transiently; again");
            tries += 1;
        }
        Ok(n)
    }

    pub(super) async fn settle(&self, answered: Vec<(Claimed, Outcome)>) -> Result<(), sqlx::Error> {
        let mut ids: Vec<Uuid> = answered.iter().map(|(call, _)| call.order_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.pool.begin().await?;
        let locked = crate::store::lock_views(&mut tx, &ids).await?;
        let mut views: HashMap<Uuid, View> = locked.clone();
        let (mut events, mut retries, mut released) = (Vec::new(), Vec::new(), Vec::new());
        for (call, outcome) in answered {
            let id = call.order_id;
            let Some(view) = views.get(&id) else { continue };
            if domain::needed(view) != Some(call.action) {
                released.push((id, call.lease)); // settled meanwhile, or cancelled while authorising: the row says what is due
                continue;
            }
            let failed = |error: String| {
                let attempt = call.attempts + 1;
                tracing::warn!(order_id = %id, action = call.action.as_str(), attempt, %error, "payment call failed; retrying");
                (id, call.lease, attempt, Utc::now() + retry_after(attempt), error)
            };
            if let Outcome::Failed { error } = &outcome {
                retries.push(failed(error.clone()));
                continue;
            }
            let Some(payload) = domain::settle(view, &call.placed, call.action, outcome.clone()) else {
                retries.push(failed(format!("an answer that settles nothing: {outcome:?}")));
                continue;
            };
            tracing::info!(order_id = %id, event = envelope::event_type(&payload), "payment settled");
            let next = evolve(view, &payload);
            views.insert(id, next);
            // Emitted in a span of the cause's trace, so the trace runs on through the payment.
            let event = payment_span(&call)
                .in_scope(|| envelope::build(crate::SERVICE, &id.to_string(), payload, &Cause::event(&call.cause)));
            events.push((id, event));
        }
        let changed: Vec<(Uuid, &View)> =
            views.iter().filter(|(id, view)| locked.get(*id) != Some(*view)).map(|(id, view)| (*id, view)).collect();
        crate::store::save_views(&mut tx, &changed).await?;
        let timeline: Vec<(Uuid, &EventEnvelope, i32)> =
            events.iter().map(|(id, e)| (*id, e, timeline_step(&e.event_type).unwrap_or_default())).collect();
        crate::store::append_timeline_all(&mut tx, &timeline).await?;
        let envelopes: Vec<EventEnvelope> = events.iter().map(|(_, e)| e.clone()).collect();
        outbox::enqueue_all(&mut tx, &self.topic, &envelopes).await?;
        crate::webhooks::enqueue(&mut tx, &envelopes.iter().collect::<Vec<_>>()).await?;
        let next: Vec<_> = events.iter().map(|(id, e)| (*id, views.get(id).and_then(domain::needed), e)).collect();
        store::schedule_all(&mut tx, &next).await?;
        store::retry_all(&mut tx, &retries).await?;
        store::release(&mut tx, &released).await?;
        tx.commit().await
    }
}

/// The span of a payment call, continuing the trace of the event that made it due.
fn payment_span(call: &Claimed) -> tracing::Span {
    let span = tracing::info_span!("payment", order_id = %call.order_id, action = call.action.as_str());
    if let Some(trace) = orderflow_kit::trace::TraceParent::parse(&call.cause.traceparent) {
        orderflow_kit::telemetry::continue_trace(&span, &trace);
    }
    span
}
