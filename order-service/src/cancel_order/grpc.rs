//! The CancelOrder adapter: validate at the edge, lock the order, decide, store the event with
//! its outbox row and timeline entry in one transaction, answer with the order as it is now.

use super::domain::{Cancel, CancelOrder};
use crate::project::domain::step;
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_kit::decider::run;
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::trace::TraceParent;
use orderflow_proto::order::v1::{CancelOrderRequest, Order, OrderStatus};
use sqlx::PgPool;

pub async fn cancel_order(
    pool: &PgPool,
    topics: &Topics,
    trace: TraceParent,
    request: &CancelOrderRequest,
) -> Result<Order, ServiceError> {
    let cancel = Cancel::try_from(request)?;
    let order_id = cancel.order_id.uuid();
    let mut tx = pool.begin().await?;
    let view = store::lock_view(&mut tx, order_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("order {order_id} not found")))?;
    let was = view.status;
    let before = view.clone();
    let (events, after) = run::<CancelOrder>(view, &cancel)
        .map_err(|refused| ServiceError::FailedPrecondition(format!("order {order_id} {refused}")))?;
    if events.is_empty() {
        tx.rollback().await?; // already cancelled: answer as before
    } else {
        let correlation = store::placed_event_id(&mut tx, order_id).await?.map(|id| id.to_string());
        let cause = Cause { event_id: String::new(), correlation_id: correlation, trace };
        store::save_view(&mut tx, order_id, &after).await?;
        let (topic, subject) = (topics.name(Topic::Orders), order_id.to_string());
        for payload in events {
            let event =
                outbox::emit(&mut tx, crate::SERVICE, &topic, Subject::Order(&subject), payload, &cause).await?;
            store::append_timeline(&mut tx, order_id, &event, step(OrderStatus::Cancelled)).await?;
            crate::webhooks::enqueue(&mut tx, &[&event]).await?;
            crate::payment::follow(&mut tx, &[(order_id, &before, &after, &event)]).await?;
        }
        tx.commit().await?;
        tracing::info!(order_id = %order_id, was = was.as_str_name(), "order cancelled");
    }
    let stored = store::load(pool, order_id).await?;
    Ok(stored.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("order {order_id} vanished")))?.order)
}
