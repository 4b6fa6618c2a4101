//! Holds that outlive `BACKORDER_MAX_HOLD` end: the order is rejected "backorder expired"
//! (StockRejected, in its own chain). With several instances each hold is ended by one (the
//! rows are taken with SKIP LOCKED).

use super::store;
use crate::store as stock;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::inbox::HandlerError;
use orderflow_kit::outbox;
use orderflow_proto::events::v1::StockRejected;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Expiry {
    /// The inventory topic, where StockRejected goes.
    pub topic: String,
    /// How long an order may be held (for the reason's text).
    pub max_hold: Duration,
}

impl Expiry {
    /// Rejects the holds that are due, in one transaction; how many.
    pub async fn expire_due(&self, pool: &PgPool) -> Result<usize, HandlerError> {
        let mut tx = pool.begin().await?;
        // The stock rows first, in SKU order, as every reservation and restock takes them
        // (holds change only under them); then the holds, checked again under their locks.
        let skus = store::skus_of_expired(&mut tx, 256).await?;
        if skus.is_empty() {
            return Ok(0);
        }
        stock::lock_stock(&mut tx, &skus).await?;
        let due = store::lock_expired(&mut tx, 256).await?;
        let (mut decisions, mut events, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for held in &due {
            let skus: Vec<String> = held.held.placed.lines.iter().map(|l| l.sku.clone()).collect();
            let reason = format!("backorder expired: no restock served it within {} s", self.max_hold.as_secs());
            tracing::info!(order_id = %held.held.order_id, "backorder expired");
            let payload = Payload::StockRejected(StockRejected { reason, skus });
            events.push(envelope::build(
                crate::SERVICE,
                &held.event.order_id,
                payload.clone(),
                &Cause::event(&held.event),
            ));
            decisions.push((held.held.order_id, stock::REJECTED, payload));
            ids.push(held.held.order_id);
        }
        stock::record_decisions(&mut tx, &decisions).await?;
        store::remove_all(&mut tx, &ids).await?;
        outbox::enqueue_all(&mut tx, &self.topic, &events).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let idle = (self.max_hold / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        orderflow_kit::backoff::poll(idle, shutdown, "expiring backorders", || self.expire_due(&pool)).await;
    }
}
