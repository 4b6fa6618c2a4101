//! Automatic mode with a step delay: each step is scheduled (`next_step_at`) and this worker
//! takes the due ones, one transaction per batch.

use super::Steps;
use crate::store;
use orderflow_kit::inbox::HandlerError;
use sqlx::postgres::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Steps {
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
        orderflow_kit::backoff::poll(idle, shutdown, "advancing fulfillments", || self.advance_due(&pool)).await;
    }
}
