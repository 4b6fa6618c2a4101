//! Who takes the warehouse steps (`pick`, `sort`, `pack`) and when: StockReserved starts a
//! fulfillment (`on_stock_reserved`), OrderCancelled stops it (`on_order_cancelled`). In
//! automatic mode without a step delay all three steps are decided in the inbox transaction of
//! StockReserved; with one, each step is scheduled and a worker takes the due ones
//! (`schedule`), one transaction per batch. In manual mode warehouse staff confirm each step
//! (`confirm`); a step out of order or confirmed twice is FAILED_PRECONDITION and emits nothing.

mod on_order_cancelled;
mod on_stock_reserved;
mod schedule;

use crate::fulfillment::{Fulfillment, Step};
use crate::pack::Measured;
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// Who takes the steps, and how automatic mode paces them.
#[derive(Debug, Clone)]
pub struct Steps {
    /// The fulfillment topic, where Picked, Sorted and Packed go.
    pub topic: String,
    /// `FULFILLMENT_STEP_DELAY_MS` (default 0): wait before each automatic step.
    pub delay: Duration,
    /// `FULFILLMENT_MODE=manual`: staff confirm every step; nothing is automatic.
    pub manual: bool,
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
            let Some(step) = state.next_step() else { break };
            let events = step.decide(&state, None).map_err(|e| HandlerError::Rejected(e.to_string()))?;
            (state, cause) = self.record(conn, state, events, cause).await?;
        }
        store::save(conn, order_id, &state, &cause, self.next_due(&state)).await?;
        Ok(())
    }

    /// Writes a decided step's events to the outbox; returns the state after them and the last
    /// event as the cause of the next step.
    async fn record(
        &self,
        conn: &mut PgConnection,
        mut state: Fulfillment,
        events: Vec<Payload>,
        mut cause: Cause,
    ) -> Result<(Fulfillment, Cause), sqlx::Error> {
        for payload in events {
            state = Step::evolve(state, &payload);
            let subject = Subject::Order(&state.order_id);
            let event = outbox::emit(conn, crate::SERVICE, &self.topic, subject, payload, &cause).await?;
            tracing::debug!(order_id = %state.order_id, event_type = %event.event_type, "warehouse step taken");
            cause = Cause::event(&event);
        }
        Ok((state, cause))
    }

    /// When the next automatic step is due: never in manual mode or once packed.
    fn next_due(&self, state: &Fulfillment) -> Option<Duration> {
        if self.manual { None } else { state.next_step().map(|_| self.delay) }
    }

    /// Whether steps are ever scheduled for later (automatic mode with a delay), so the
    /// scheduler (`run`) has anything to do.
    pub fn schedules(&self) -> bool {
        !self.manual && !self.delay.is_zero()
    }

    /// A warehouse confirmation of `step` for the order; `measured` replaces the standard box
    /// at ConfirmPack.
    pub async fn confirm(
        &self,
        pool: &PgPool,
        order_id: Uuid,
        step: Step,
        measured: Option<Measured>,
    ) -> Result<Fulfillment, ServiceError> {
        let mut tx = pool.begin().await?;
        let (state, cause) = store::lock(&mut tx, order_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no fulfillment for order {order_id}")))?;
        let events = step.decide(&state, measured).map_err(|e| ServiceError::FailedPrecondition(e.to_string()))?;
        let (state, cause) = self.record(&mut tx, state, events, cause).await?;
        store::save(&mut tx, order_id, &state, &cause, self.next_due(&state)).await?;
        tx.commit().await?;
        Ok(state)
    }
}

impl EventHandler for Steps {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        match event.payload.as_ref() {
            Some(Payload::StockReserved(reserved)) => self.start(conn, event, reserved).await,
            Some(Payload::OrderCancelled(_)) => on_order_cancelled::stop(conn, event).await,
            _ => Ok(()),
        }
    }
}
