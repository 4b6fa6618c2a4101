//! The simulated courier of `SHIPPING_PICKUP_MODE=auto` with `SHIPPING_PICKUP_DELAY_MS`: it
//! collects each label once it is that old, as a ConfirmPickup of its own carrier would. With
//! several instances each label is collected by one (the rows are taken with SKIP LOCKED).

use super::domain::{Collect, Pickup};
use crate::store;
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::Cause;
use orderflow_kit::inbox::HandlerError;
use orderflow_kit::trace::TraceParent;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Courier {
    /// The shipping topic, where Shipped goes.
    pub topic: String,
    /// How old a label is when the courier collects it.
    pub delay: Duration,
}

impl Courier {
    /// Collects the labels that are due, in one transaction; how many.
    pub async fn collect_due(&self, pool: &PgPool) -> Result<usize, HandlerError> {
        let mut tx = pool.begin().await?;
        let mut collected = Vec::new();
        for shipment in store::lock_due_pickups(&mut tx, self.delay, 256).await? {
            let pickup = Pickup { carrier: shipment.carrier.clone() };
            let Ok(events) = Collect::decide(&shipment, &pickup) else { continue };
            for shipped in events {
                collected.push((Collect::evolve(shipment.clone(), &shipped), shipped));
            }
        }
        super::grpc::record(&mut tx, &self.topic, &Cause::command(TraceParent::new_root()), &collected).await?;
        tx.commit().await?;
        Ok(collected.len())
    }

    /// Runs [`Courier::collect_due`] until `shutdown`.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let idle = (self.delay / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        orderflow_kit::backoff::poll(idle, shutdown, "collecting labels", || self.collect_due(&pool)).await;
    }
}
