//! The watchers of this process, per order: WatchOrder subscribes here, the fan-out
//! (`fanout.rs`) publishes each order it loads to that order's watchers. An order is in the
//! registry while it has a watcher; at most `max_watchers` watch at once.

use orderflow_kit::ServiceError;
use orderflow_proto::order::v1::Order;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// `WATCH_MAX_WATCHERS` and `WATCH_MAX_SECONDS`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent watchers per process; one more is RESOURCE_EXHAUSTED.
    pub max_watchers: NonZeroUsize,
    /// How long one stream lasts; the client then watches again to continue.
    pub max_stream: Duration,
}

/// The latest loaded order; `None` until the fan-out has loaded it once.
type Latest = Option<Arc<Order>>;

type Orders = Arc<Mutex<HashMap<Uuid, watch::Sender<Latest>>>>;

/// Who watches which order. Cloning shares the registry.
#[derive(Debug, Clone)]
pub struct Watchers {
    orders: Orders,
    slots: Arc<Semaphore>,
    limits: Limits,
}

/// One watcher: the changes of its order until its deadline, and its place in the registry,
/// given back when dropped. Its fields are private so a task takes it whole: a closure that
/// captured only `changes` would leave the place behind.
#[derive(Debug)]
pub struct Subscription {
    // Declared before `_leave`, so it is dropped first and `Leave` sees the count without it.
    changes: watch::Receiver<Latest>,
    /// When the stream ends (`WATCH_MAX_SECONDS` after it began).
    ends_at: Instant,
    _leave: Leave,
}

impl Subscription {
    /// The order as loaded after the latest change not seen yet, waiting for one if needed;
    /// `None` once the stream's lifetime is over.
    pub async fn changed(&mut self) -> Option<Arc<Order>> {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(self.ends_at) => return None,
                changed = self.changes.changed() => changed.ok()?,
            }
            if let Some(latest) = self.changes.borrow_and_update().clone() {
                return Some(latest);
            }
        }
    }
}

#[derive(Debug)]
struct Leave {
    order_id: Uuid,
    orders: Orders,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut orders = lock(&self.orders);
        if orders.get(&self.order_id).is_some_and(|sender| sender.receiver_count() == 0) {
            orders.remove(&self.order_id); // the last watcher left
        }
    }
}

fn lock(orders: &Orders) -> MutexGuard<'_, HashMap<Uuid, watch::Sender<Latest>>> {
    orders.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Watchers {
    pub fn new(limits: Limits) -> Self {
        Self { orders: Orders::default(), slots: Arc::new(Semaphore::new(limits.max_watchers.get())), limits }
    }

    /// Registers a watcher of `order_id`; RESOURCE_EXHAUSTED when `max_watchers` already watch.
    /// Subscribe before loading the order, so no change committed after the load is missed.
    pub fn subscribe(&self, order_id: Uuid) -> Result<Subscription, ServiceError> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            ServiceError::ResourceExhausted(format!(
                "this instance already serves its maximum of {} WatchOrder streams (WATCH_MAX_WATCHERS); \
                 retry later",
                self.limits.max_watchers
            ))
        })?;
        let changes = lock(&self.orders).entry(order_id).or_insert_with(|| watch::Sender::new(None)).subscribe();
        let leave = Leave { order_id, orders: Arc::clone(&self.orders), _slot: slot };
        Ok(Subscription { changes, ends_at: Instant::now() + self.limits.max_stream, _leave: leave })
    }

    /// The orders that have watchers now.
    pub fn watched(&self) -> Vec<Uuid> {
        lock(&self.orders).keys().copied().collect()
    }

    pub fn is_watched(&self, order_id: Uuid) -> bool {
        lock(&self.orders).contains_key(&order_id)
    }

    /// Hands `order` to every watcher of `order_id` (none if the last one has just left).
    pub fn publish(&self, order_id: Uuid, order: Order) {
        if let Some(sender) = lock(&self.orders).get(&order_id) {
            sender.send_replace(Some(Arc::new(order)));
        }
    }
}
