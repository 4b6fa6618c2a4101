//! StockReserved → Picked → Sorted → Packed, and OrderCancelled → stop. In automatic mode
//! without a step delay all three
//! steps are decided in the inbox transaction of StockReserved; with one, each step is
//! scheduled and a worker takes the due ones (`advance_due`), one transaction per batch. In
//! manual mode warehouse staff confirm each step (`confirm`); a step out of order or confirmed
//! twice is FAILED_PRECONDITION and emits nothing.

use crate::domain::{self, Command, Fulfillment, Measured};
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox::{self, Subject};
use orderflow_proto::events::v1::StockReserved;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
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
            let Some(command) = state.next_step() else { break };
            let payload = domain::decide(&state, command).map_err(|e| HandlerError::Rejected(e.to_string()))?;
            (state, cause) = self.record(conn, state, payload, &cause).await?;
        }
        store::save(conn, order_id, &state, &cause, self.next_due(&state)).await?;
        Ok(())
    }

    /// Writes a decided step's event to the outbox; returns the state after it and the event
    /// as the cause of the next step.
    async fn record(
        &self,
        conn: &mut PgConnection,
        state: Fulfillment,
        payload: Payload,
        cause: &Cause,
    ) -> Result<(Fulfillment, Cause), sqlx::Error> {
        let state = domain::evolve(state, &payload);
        let event =
            outbox::emit(conn, crate::SERVICE, &self.topic, Subject::Order(&state.order_id), payload, cause).await?;
        tracing::debug!(order_id = %state.order_id, event_type = %event.event_type, "warehouse step taken");
        Ok((state, Cause::event(&event)))
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

    /// A warehouse confirmation of `command` for the order; `measured` replaces the standard
    /// box at ConfirmPack.
    pub async fn confirm(
        &self,
        pool: &PgPool,
        order_id: Uuid,
        command: Command,
        measured: Option<Measured>,
    ) -> Result<Fulfillment, ServiceError> {
        let mut tx = pool.begin().await?;
        let (state, cause) = store::lock(&mut tx, order_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no fulfillment for order {order_id}")))?;
        let mut payload =
            domain::decide(&state, command).map_err(|e| ServiceError::FailedPrecondition(e.to_string()))?;
        if let (Payload::Packed(packed), Some(measured)) = (&mut payload, measured) {
            measured.apply(packed);
        }
        let (state, cause) = self.record(&mut tx, state, payload, &cause).await?;
        store::save(&mut tx, order_id, &state, &cause, self.next_due(&state)).await?;
        tx.commit().await?;
        Ok(state)
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

    /// Runs `advance_due` until `shutdown`; only started when [`Steps::schedules`].
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
        match event.payload.as_ref() {
            Some(Payload::StockReserved(reserved)) => self.start(conn, event, reserved).await,
            Some(Payload::OrderCancelled(_)) => stop(conn, event).await,
            _ => Ok(()),
        }
    }
}

/// OrderCancelled: the fulfillment stops wherever it is (no further step, off the pick list).
/// If StockReserved has not arrived yet (it comes on another topic), a cancelled fulfillment
/// is recorded first, so the late StockReserved starts nothing.
async fn stop(conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
    let order_id = inbox::order_id(event)?;
    let cause = Cause::event(event);
    let Some((state, _)) = store::lock(conn, order_id).await? else {
        let stopped = Fulfillment::new(&event.order_id, StockReserved::default()).cancel();
        store::insert(conn, order_id, &stopped, &cause).await?;
        return Ok(());
    };
    let stopped = state.clone().cancel();
    if stopped != state {
        store::save(conn, order_id, &stopped, &cause, None).await?;
        tracing::info!(order_id = %order_id, was = state.status.as_str_name(), "fulfillment stopped by a cancel");
    }
    Ok(())
}

impl Steps {
    /// StockReserved: a new fulfillment, with its automatic steps taken now or scheduled.
    async fn start(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
        reserved: &StockReserved,
    ) -> Result<(), HandlerError> {
        let order_id = inbox::order_id(event)?;
        let state = Fulfillment::new(&event.order_id, reserved.clone());
        let cause = Cause::event(event);
        if !store::insert(conn, order_id, &state, &cause).await? {
            return Ok(());
        }
        let steps = if self.manual || self.schedules() { 0 } else { usize::MAX };
        self.take(conn, order_id, state, cause, steps).await
    }
}
