//! The PlaceOrder adapter: validate at the edge, decide, hand the order to the group commit
//! (`group`), answer at once.

use super::domain::{NewOrder, PlaceOrder, Placing};
use super::group::Committer;
use crate::store::{self, Placement};
use orderflow_kit::ServiceError;
use orderflow_kit::decider::Decider;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::types::optional_text;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::{Order, PlaceOrderRequest};
use prost::Message;
use sqlx::PgPool;
use uuid::Uuid;

/// Who places an order: the token's name (idempotency keys are per caller: two callers' equal
/// keys are two keys) and the call's trace.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub name: &'a str,
    pub trace: TraceParent,
}

/// Places the order in `request`, or replays the order its idempotency key already placed.
pub async fn place_order(
    pool: &PgPool,
    committer: &Committer,
    warehouse: &Warehouse,
    caller: Caller<'_>,
    mut request: PlaceOrderRequest,
) -> Result<Order, ServiceError> {
    let trace = caller.trace;
    let key = optional_text("idempotency_key", &request.idempotency_key, 128)?;
    // Stored under the caller's name (a unit separator between: no token name holds one).
    let key = if key.is_empty() { key } else { format!("{}\u{1f}{key}", caller.name) };
    request.idempotency_key.clear();
    let fingerprint = request.encode_to_vec();
    let new_order = NewOrder::try_from(&request)?;
    if !key.is_empty()
        && let Some(existing) = store::find_by_idempotency_key(pool, &key).await?
    {
        return replay(pool, existing, &fingerprint).await;
    }
    let placing = Placing { order: new_order, warehouse: warehouse.clone(), at: chrono::Utc::now() };
    let Ok(mut events) = PlaceOrder::decide(&(), &placing);
    let placed = events.pop().expect("PlaceOrder decides one OrderPlaced");
    let order_id = Uuid::now_v7();
    let event = envelope::build(
        crate::SERVICE,
        &order_id.to_string(),
        Payload::OrderPlaced(placed.clone()),
        &Cause::command(trace),
    );
    let idempotency_key = (!key.is_empty()).then_some(key);
    let placement =
        Placement { order_id, idempotency_key: idempotency_key.clone(), request: fingerprint.clone(), placed, event };
    let Some(order) = committer.place(placement).await? else {
        // Another call with the same key won the race; answer as it was answered.
        let existing = store::find_by_idempotency_key(pool, idempotency_key.as_deref().unwrap_or_default()).await?;
        return replay(
            pool,
            existing.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("idempotency key vanished")))?,
            &fingerprint,
        )
        .await;
    };
    tracing::info!(order_id = %order_id, trace_id = %trace.trace_id_hex(), "order placed");
    Ok(order)
}

async fn replay(pool: &PgPool, order_id: Uuid, fingerprint: &[u8]) -> Result<Order, ServiceError> {
    let stored = store::load(pool, order_id)
        .await?
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("order {order_id} vanished")))?;
    if stored.request != fingerprint {
        return Err(ServiceError::AlreadyExists(format!(
            "idempotency_key was already used for order {order_id} with a different request"
        )));
    }
    Ok(stored.order)
}
