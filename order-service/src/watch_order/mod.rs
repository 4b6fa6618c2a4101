//! WatchOrder: one message per event of the order's timeline, in timeline order, each carrying
//! the status that event moved the order to, until the order reaches an end state (DELIVERED,
//! REJECTED, CANCELLED); the stream then ends. It also ends when the client goes away. The
//! projection is polled (every 100 ms per watcher), so a watcher holds no database connection.

use crate::project::domain;
use crate::store;
use orderflow_kit::ServiceError;
use orderflow_proto::order::v1::{Order, OrderStatus, WatchOrderResponse};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use uuid::Uuid;

const POLL: Duration = Duration::from_millis(100);

/// Streams `order` (already loaded) and everything that happens to it from now on.
pub fn watch(pool: PgPool, order_id: Uuid, order: Order) -> ReceiverStream<Result<WatchOrderResponse, Status>> {
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        let (mut order, mut status, mut sent) = (order, OrderStatus::Unspecified, HashSet::new());
        loop {
            for (i, entry) in order.timeline.iter().enumerate() {
                if !sent.insert(entry.event_id.clone()) {
                    continue;
                }
                if let Some(announced) = domain::announced_by_type(&entry.event_type) {
                    status = domain::advance(status, announced);
                }
                let mut snapshot = order.clone();
                snapshot.timeline.truncate(i + 1);
                snapshot.status = status as i32;
                if tx.send(Ok(WatchOrderResponse { order: Some(snapshot) })).await.is_err() {
                    return; // the client went away
                }
            }
            if domain::is_end(status) {
                return;
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            order = match store::load(&pool, order_id).await {
                Ok(Some(stored)) => stored.order,
                Ok(None) => return,
                Err(error) => {
                    let _gone = tx.send(Err(ServiceError::from(error).into())).await;
                    return;
                }
            };
        }
    });
    ReceiverStream::new(rx)
}
