//! StockReserved → Picked → Sorted → Packed in automatic mode. Without a step delay all three
//! steps are decided in the inbox transaction of StockReserved; with one, each step is
//! scheduled and a worker takes the due ones (`advance_due`), one transaction per batch.

use crate::domain::{self, Fulfillment};
use crate::store;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{EventHandler, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How automatic mode paces the steps.
#[derive(Debug, Clone)]
pub struct Steps {
    /// The fulfillment topic, where Picked, Sorted and Packed go.
    pub topic: String,
    /// `FULFILLMENT_STEP_DELAY_MS` (default 0): wait before each step.
    pub delay: Duration,
}

impl Steps {
    /// Decides and stores `count` steps (or all remaining), each caused by the previous event.
    async fn take(
        &self,
        conn: &mut PgConnection,
        order_id: Uuid,
        mut state: Fulfillment,
        mut cause: Cause,
        count: usize,
    ) -> Result<(), HandlerError> {
        for _ in 0..count {
            let Some(command) = state.next_step() else { break };
            let payload = domain::decide(&state, command).map_err(|e| HandlerError::Rejected(e.to_string()))?;
            let event = envelope::build(crate::SERVICE, &state.order_id, payload, &cause);
            outbox::enqueue(conn, &self.topic, &state.order_id, &event).await?;
            if let Some(payload) = &event.payload {
                state = domain::evolve(state, payload);
            }
            cause = Cause::event(&event);
        }
        let next = state.next_step().map(|_| self.delay);
        store::save(conn, order_id, &state, &cause, next).await?;
        Ok(())
    }

    /// Takes one due step for each fulfillment whose step is due; returns how many advanced.
    pub async fn advance_due(&self, pool: &PgPool) -> Result<usize, HandlerError> {
        let mut tx = pool.begin().await?;
        let due = store::lock_due(&mut tx, 64).await?;
        let count = due.len();
        for (order_id, state, cause) in due {
            self.take(&mut tx, order_id, state, cause, 1).await?;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Runs `advance_due` until `shutdown` (only needed with a step delay).
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let idle = (self.delay / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        loop {
            let wait = match self.advance_due(&pool).await {
                Ok(0) => idle,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, "advancing fulfillments failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl EventHandler for Steps {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::StockReserved(reserved)) = event.payload.as_ref() else { return Ok(()) };
        let order_id = Uuid::parse_str(&event.order_id)
            .map_err(|_| HandlerError::Rejected(format!("order_id {:?} is not a UUID", event.order_id)))?;
        let state = Fulfillment::new(&event.order_id, reserved.clone());
        let cause = Cause::event(event);
        if !store::insert(conn, order_id, &state, &cause).await? {
            return Ok(());
        }
        let steps = if self.delay.is_zero() { usize::MAX } else { 0 };
        self.take(conn, order_id, state, cause, steps).await
    }
}
