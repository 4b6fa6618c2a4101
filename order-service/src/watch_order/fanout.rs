//! The one source WatchOrder's streams fan out from: a listener per process on channel
//! `order_timeline`, which a trigger (migration 102) notifies with the order id of every
//! committed timeline row. Each notified order that has watchers here is loaded once and handed
//! to all of them; an order nobody watches costs no query, and watchers cost none while nothing
//! happens. Every instance listens, so a change committed through any instance reaches the
//! watchers of all. When the connection drops (PostgreSQL restarted), the listener connects
//! again with back-off and then loads every watched order once: notifications sent meanwhile
//! were missed.

use super::registry::Watchers;
use crate::store;
use orderflow_kit::backoff::Backoff;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::BTreeSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The channel migration 102's trigger notifies.
const CHANNEL: &str = "order_timeline";

/// What one step of the fan-out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Connected (again) and listening; every watched order was loaded and handed on.
    Listening { loaded: usize },
    /// Notifications arrived: this many watched orders were loaded (once each) and handed on.
    Notified { loaded: usize },
    /// The connection was lost; the next step connects again.
    Lost,
}

/// The listener and the registry it feeds.
#[derive(Debug)]
pub struct Fanout {
    pool: PgPool,
    watchers: Watchers,
    listener: Option<PgListener>,
}

impl Fanout {
    pub fn new(pool: PgPool, watchers: Watchers) -> Self {
        Self { pool, watchers, listener: None }
    }

    /// Delivers until `shutdown`, retrying failures with back-off; returns only then.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        loop {
            let step = tokio::select! {
                () = shutdown.cancelled() => return,
                step = self.deliver_next() => step,
            };
            match step {
                Ok(Delivered::Notified { .. }) => backoff.reset(),
                Ok(Delivered::Listening { loaded }) => {
                    tracing::info!(loaded, "watch listener listening");
                    backoff.reset();
                }
                Ok(Delivered::Lost) => tracing::warn!("watch listener lost its connection; connecting again"),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff.next(), "watch listener failed");
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Connects if not connected, else waits for notifications and hands the watched orders
    /// they name to their watchers. After an error the next step connects afresh.
    pub async fn deliver_next(&mut self) -> Result<Delivered, sqlx::Error> {
        let Some(listener) = self.listener.as_mut() else {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            // A lost connection is ours to see: we reload everything after connecting.
            listener.eager_reconnect(false);
            listener.listen(CHANNEL).await?;
            self.listener = Some(listener);
            let loaded = self.load_and_publish(self.watchers.watched()).await?;
            return Ok(Delivered::Listening { loaded });
        };
        let first = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                self.listener = None;
                return Ok(Delivered::Lost);
            }
            Err(error) => {
                self.listener = None;
                return Err(error);
            }
        };
        // However many notifications name an order, it is loaded once.
        let mut orders = BTreeSet::new();
        for notification in std::iter::once(first).chain(std::iter::from_fn(|| listener.next_buffered())) {
            match Uuid::parse_str(notification.payload()) {
                Ok(order_id) if self.watchers.is_watched(order_id) => {
                    orders.insert(order_id);
                }
                Ok(_) => {}
                Err(_) => tracing::warn!(payload = notification.payload(), "notification without an order id"),
            }
        }
        let loaded = self.load_and_publish(orders).await?;
        Ok(Delivered::Notified { loaded })
    }

    /// Loads each order and hands it to its watchers. A failed load drops the connection, so
    /// the next step reloads every watched order and the change is not lost.
    async fn load_and_publish(&mut self, orders: impl IntoIterator<Item = Uuid>) -> Result<usize, sqlx::Error> {
        let mut loaded = 0;
        for order_id in orders {
            match store::load(&self.pool, order_id).await {
                Ok(stored) => {
                    if let Some(stored) = stored {
                        self.watchers.publish(order_id, stored.order);
                    }
                    loaded += 1;
                }
                Err(error) => {
                    self.listener = None;
                    return Err(error);
                }
            }
        }
        Ok(loaded)
    }
}
