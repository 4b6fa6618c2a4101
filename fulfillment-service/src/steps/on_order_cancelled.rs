//! OrderCancelled: the fulfillment stops wherever it is (no further step, off the pick list).

use crate::fulfillment::Fulfillment;
use crate::store;
use orderflow_kit::envelope::{Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_proto::events::v1::StockReserved;
use sqlx::postgres::PgConnection;

/// OrderCancelled: the fulfillment stops wherever it is (no further step, off the pick list).
/// If StockReserved has not arrived yet (it comes on another topic), a cancelled fulfillment
/// is recorded first, so the late StockReserved starts nothing.
pub async fn stop(conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
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
