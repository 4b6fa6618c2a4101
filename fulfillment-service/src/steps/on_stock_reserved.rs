//! StockReserved: a new fulfillment, with its automatic steps taken at once or scheduled.

use super::Steps;
use crate::fulfillment::Fulfillment;
use crate::store;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
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
        if !store::insert(conn, order_id, &state, &cause).await? {
            return Ok(());
        }
        let steps = if self.manual || self.schedules() { 0 } else { usize::MAX };
        self.take(conn, order_id, state, cause, steps).await
    }
}
