//! Group commit for PlaceOrder: concurrent calls share one transaction. Each call hands its
//! decided order to the committer and waits for its answer; the committer takes whatever calls
//! are waiting (up to [`MAX_GROUP`]), stores their orders, timeline entries and OrderPlaced
//! events with one statement each and commits once. While one group commits the next one
//! gathers, so the more calls arrive at once, the fewer commits per order.
//!
//! Per-call answers are kept: an order whose idempotency key is taken is answered `None` (the
//! caller replays the first answer); if a group fails transiently (the database unreachable or
//! busy) every caller is told so at once, and if it fails otherwise each of its orders is tried
//! again on its own, so every caller gets its own order's error.

use crate::payment::domain::Action;
use crate::store::{self, Placement};
use orderflow_kit::ServiceError;
use orderflow_kit::outbox;
use orderflow_proto::order::v1::Order;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Most orders one commit takes.
pub const MAX_GROUP: usize = 128;

type Answer = Result<Option<Order>, ServiceError>;

/// Where PlaceOrder calls hand their orders.
#[derive(Debug, Clone)]
pub struct Committer {
    calls: mpsc::Sender<(Placement, oneshot::Sender<Answer>)>,
}

/// The committer's task: started beside the API, stopped with the service.
#[derive(Debug)]
pub struct Task {
    pool: PgPool,
    topic: String,
    calls: mpsc::Receiver<(Placement, oneshot::Sender<Answer>)>,
    wake: Arc<Notify>,
}

/// A committer for `pool`, publishing OrderPlaced to `topic`, and the task that commits.
/// `wake` is notified after each commit (the payment worker authorises the new orders).
pub fn committer(pool: PgPool, topic: String, wake: Arc<Notify>) -> (Committer, Task) {
    let (sender, calls) = mpsc::channel(4 * MAX_GROUP);
    (Committer { calls: sender }, Task { pool, topic, calls, wake })
}

impl Committer {
    /// Stores `order` in the next group; `None` if its idempotency key is taken.
    pub async fn place(&self, order: Placement) -> Answer {
        let stopped = || ServiceError::Unavailable("order placement", anyhow::anyhow!("the service is stopping"));
        let (reply, answer) = oneshot::channel();
        self.calls.send((order, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Task {
    /// Commits groups until `shutdown` (the calls already handed over are committed first).
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                call = self.calls.recv() => match call { Some(call) => call, None => return },
            };
            self.commit_group(first).await;
        }
        self.calls.close();
        while let Some(call) = self.calls.recv().await {
            self.commit_group(call).await;
        }
    }

    /// Commits `first` with whatever else is waiting.
    async fn commit_group(&mut self, first: (Placement, oneshot::Sender<Answer>)) {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match self.calls.try_recv() {
                Ok(call) => group.push(call),
                Err(_) => break,
            }
        }
        let (orders, replies): (Vec<Placement>, Vec<_>) = group.into_iter().unzip();
        match self.commit(&orders).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(error) if orders.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(error.into()));
                }
            }
            // The database is unreachable or busy: one by one would only wait the same way, once
            // per order. Every caller is told, and retries.
            Err(error) if orderflow_kit::db::transient(&error) => {
                tracing::warn!(%error, orders = orders.len(), "a group of orders failed transiently");
                for reply in replies {
                    let cause = anyhow::anyhow!("storing the order failed: {error}");
                    let _ = reply.send(Err(ServiceError::Unavailable("database", cause)));
                }
            }
            Err(error) => {
                tracing::warn!(%error, orders = orders.len(), "a group of orders failed; storing each on its own");
                for (order, reply) in orders.into_iter().zip(replies) {
                    let answer = self.commit(std::slice::from_ref(&order)).await;
                    let _ = reply.send(answer.map(|mut one| one.pop().flatten()).map_err(ServiceError::from));
                }
            }
        }
    }

    /// One transaction for `orders`: the answer of each, in order.
    async fn commit(&self, orders: &[Placement]) -> Result<Vec<Option<Order>>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut stored = store::insert_all(&mut tx, orders).await?;
        let events: Vec<_> =
            orders.iter().filter(|o| stored.contains_key(&o.order_id)).map(|o| o.event.clone()).collect();
        outbox::enqueue_all(&mut tx, &self.topic, &events).await?;
        crate::webhooks::enqueue(&mut tx, &events.iter().collect::<Vec<_>>()).await?;
        let authorizations: Vec<_> = orders
            .iter()
            .filter(|o| stored.contains_key(&o.order_id))
            .map(|o| (o.order_id, Some(Action::Authorize), &o.event))
            .collect();
        crate::payment::store::schedule_all(&mut tx, &authorizations).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(orders.iter().map(|o| stored.remove(&o.order_id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::envelope::{self, Cause};
    use orderflow_kit::testing;
    use orderflow_kit::trace::TraceParent;
    use orderflow_proto::events::v1::OrderPlaced;
    use orderflow_proto::events::v1::event_envelope::Payload;
    use uuid::Uuid;

    fn placement(key: Option<&str>) -> Placement {
        let order_id = Uuid::now_v7();
        let placed = OrderPlaced::default();
        let payload = Payload::OrderPlaced(placed.clone());
        let event =
            envelope::build("order-service", &order_id.to_string(), payload, &Cause::command(TraceParent::new_root()));
        Placement { order_id, idempotency_key: key.map(str::to_owned), request: vec![1], placed, event }
    }

    #[tokio::test]
    async fn concurrent_calls_share_a_commit_and_each_gets_its_own_answer() {
        let pool = testing::migrated_database(&crate::MIGRATIONS).await;
        let (committer, task) = committer(pool.clone(), "orders".into(), Arc::default());
        let calls: Vec<Placement> =
            vec![placement(None), placement(Some("k1")), placement(Some("k1")), placement(None), placement(Some("k2"))];
        // Handed over before the task runs: they are all waiting when it takes its first group.
        let answers = calls.iter().cloned().map(|call| {
            let committer = committer.clone();
            tokio::spawn(async move { committer.place(call).await })
        });
        let answers: Vec<_> = answers.collect();
        tokio::task::yield_now().await;
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(task.run(shutdown.clone()));
        let mut placed = Vec::new();
        for answer in answers {
            placed.push(answer.await.unwrap().unwrap().map(|order| order.order_id));
        }
        let expected: Vec<Option<String>> =
            calls.iter().enumerate().map(|(i, c)| (i != 2).then(|| c.order_id.to_string())).collect();
        assert_eq!(placed, expected, "the second call with k1 is told its key is taken");
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&pool).await.unwrap();
        assert_eq!(events, 4, "one OrderPlaced per stored order, none for the refused key");
        let due: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE action = 'authorize'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(due, 4, "each stored order's authorisation is due");
        shutdown.cancel();
        running.await.unwrap();
    }
}
