//! StockReserved: a new fulfillment, with its automatic steps taken at once or scheduled.

use super::Steps;
use crate::fulfillment::{Fulfillment, Step};
use crate::store;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::StockReserved;
use sqlx::postgres::PgConnection;

impl Steps {
    /// StockReserved: a new fulfillment, with its automatic steps taken now or scheduled.
    pub(super) async fn start(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
        reserved: &StockReserved,
    ) -> Result<(), HandlerError> {
        let order_id = inbox::order_id(event)?;
        let state = Fulfillment::new(&event.order_id, reserved.clone());
        let cause = Cause::event(event);
        if self.manual || self.schedules() {
            if store::insert(conn, order_id, &state, &cause).await? {
                self.take(conn, order_id, state, cause, 0).await?;
            }
            return Ok(());
        }
        // Automatic without a delay: every step decided at once, the fulfillment stored in its
        // final state with one insert and its events with one more (nothing if it existed).
        let (state, cause, events) = all_steps(state, cause)?;
        if store::insert(conn, order_id, &state, &cause).await? {
            outbox::enqueue_all(conn, &self.topic, &events).await?;
            tracing::debug!(order_id = %order_id, "picked, sorted and packed");
        }
        Ok(())
    }
}

/// Every remaining step of `state`, each caused by the one before: the state after them, the
/// last event as the cause, and the events in order.
fn all_steps(
    mut state: Fulfillment,
    mut cause: Cause,
) -> Result<(Fulfillment, Cause, Vec<EventEnvelope>), HandlerError> {
    let mut events = Vec::new();
    while let Some(step) = state.next_step() {
        for payload in step.decide(&state, None).map_err(|e| HandlerError::Rejected(e.to_string()))? {
            state = Step::evolve(state, &payload);
            let event = envelope::build(crate::SERVICE, &state.order_id, payload, &cause);
            cause = Cause::event(&event);
            events.push(event);
        }
    }
    Ok((state, cause, events))
}
