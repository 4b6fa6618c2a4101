//! WatchOrder: one message per event of the order's timeline, in timeline order, each carrying
//! the status that event moved the order to, until the order reaches an end state (DELIVERED,
//! RETURNED, REJECTED, CANCELLED); the stream then ends. It also ends when the client goes away, and
//! after `WATCH_MAX_SECONDS` (the client watches again to continue: it then gets the timeline
//! from the start). A watcher polls nothing: it waits for the orders the fan-out (`fanout.rs`)
//! loads when the database notifies a change, so it costs no query while nothing happens. At
//! most `WATCH_MAX_WATCHERS` watch at once per process (`registry.rs`).

mod fanout;
mod registry;
#[cfg(test)]
mod tests;

pub use fanout::Fanout;
pub use registry::{Limits, Subscription, Watchers};

use crate::project::domain;
use orderflow_proto::order::v1::{Order, OrderStatus, WatchOrderResponse};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Streams `order` (loaded after `subscription` was taken) and every change the subscription
/// brings from now on.
pub fn watch(mut subscription: Subscription, order: Order) -> ReceiverStream<Result<WatchOrderResponse, Status>> {
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        let (mut order, mut status, mut sent) = (Arc::new(order), OrderStatus::Unspecified, HashSet::new());
        loop {
            for (i, entry) in order.timeline.iter().enumerate() {
                if !sent.insert(entry.event_id.clone()) {
                    continue;
                }
                if let Some(announced) = domain::announced_by_type(&entry.event_type) {
                    status = domain::advance(status, announced);
                }
                let mut snapshot = Order::clone(&order);
                snapshot.timeline.truncate(i + 1);
                snapshot.status = status as i32;
                if tx.send(Ok(WatchOrderResponse { order: Some(snapshot) })).await.is_err() {
                    return; // the client went away
                }
            }
            if domain::is_end(status) {
                return;
            }
            order = tokio::select! {
                () = tx.closed() => return,
                latest = subscription.changed() => match latest {
                    Some(latest) => latest,
                    None => return, // WATCH_MAX_SECONDS are over
                },
            };
        }
    });
    ReceiverStream::new(rx)
}
