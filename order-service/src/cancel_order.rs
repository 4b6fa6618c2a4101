//! CancelOrder → OrderCancelled, decided under the order's row lock (the lock the projection
//! takes to hand a packed order to shipping), so a cancel and a handover never both happen.
//! Accepted in PLACED, RESERVED, PICKED and SORTED; a repeat answers as the first call did;
//! PACKED and later, or REJECTED, is FAILED_PRECONDITION. Compensation follows from the event:
//! inventory releases the reservation (StockReleased), fulfillment stops.

use crate::project::domain::{self, CancelDecision};
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::types::{optional_text, uuid};
use orderflow_proto::events::v1::OrderCancelled;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::{CancelOrderRequest, Order, OrderStatus};
use sqlx::PgPool;

/// Longest cancellation reason accepted.
pub const MAX_REASON_LEN: usize = 500;

pub async fn cancel_order(
    pool: &PgPool,
    topics: &Topics,
    trace: TraceParent,
    request: &CancelOrderRequest,
) -> Result<Order, ServiceError> {
    let order_id = uuid("order_id", &request.order_id)?;
    let reason = optional_text("reason", &request.reason, MAX_REASON_LEN)?;
    let mut tx = pool.begin().await?;
    let view = store::lock_view(&mut tx, order_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("order {order_id} not found")))?;
    match domain::decide_cancel(view.status) {
        CancelDecision::Refuse(why) => {
            return Err(ServiceError::FailedPrecondition(format!(
                "order {order_id} is {} and {why}",
                view.status.as_str_name()
            )));
        }
        CancelDecision::AlreadyCancelled => tx.rollback().await?,
        CancelDecision::Cancel => {
            let payload = Payload::OrderCancelled(OrderCancelled {
                reason,
                cancelled_at_status: view.status.as_str_name().to_owned(),
            });
            let correlation = store::placed_event_id(&mut tx, order_id).await?.map(|id| id.to_string());
            let cause = Cause { event_id: String::new(), correlation_id: correlation, trace };
            store::save_view(&mut tx, order_id, &domain::evolve(&view, &payload)).await?;
            let (topic, subject) = (topics.name(Topic::Orders), order_id.to_string());
            let event =
                outbox::emit(&mut tx, crate::SERVICE, &topic, Subject::Order(&subject), payload, &cause).await?;
            store::append_timeline(&mut tx, order_id, &event, domain::step(OrderStatus::Cancelled)).await?;
            tx.commit().await?;
            tracing::info!(order_id = %order_id, was = view.status.as_str_name(), "order cancelled");
        }
    }
    let stored = store::load(pool, order_id).await?;
    Ok(stored.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("order {order_id} vanished")))?.order)
}
