//! The orders not ended, by status, as gauges (`kit::metrics::open_orders`): how many, and how
//! long the oldest has been open, read every [`EVERY`] (Prometheus alerts on an order stuck
//! before it ships; `orderctl top` shows orders per status).

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gauges are read.
pub const EVERY: Duration = Duration::from_secs(10);

/// The statuses an order passes through before it ends (DELIVERED, RETURNED, REJECTED,
/// CANCELLED), each given a gauge even when no order is in it.
const OPEN: [&str; 8] = ["PLACED", "ON_HOLD", "RESERVED", "PICKED", "SORTED", "PACKED", "LABELLED", "SHIPPED"];

/// Reads the gauges every [`EVERY`] until `shutdown`; a failed read is logged and tried again.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    loop {
        match read(&pool).await {
            Ok(rows) => {
                for status in OPEN {
                    let (count, oldest) =
                        rows.iter().find(|(s, _, _)| s == status).map_or((0, 0.0), |(_, c, o)| (*c, *o));
                    orderflow_kit::metrics::open_orders(status, count, oldest);
                }
            }
            Err(error) => tracing::warn!(%error, "open orders not counted"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn read(pool: &PgPool) -> sqlx::Result<Vec<(String, i64, f64)>> {
    sqlx::query_as(
        "SELECT status, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
         FROM orders WHERE status NOT IN ('DELIVERED', 'RETURNED', 'REJECTED', 'CANCELLED')
         GROUP BY status",
    )
    .fetch_all(pool)
    .await
}
