//! The sender: takes due deliveries (each the first pending one of its endpoint and subject)
//! and posts them, signed, each in its own task, so a slow or dead endpoint holds only its own
//! deliveries (fewer than `PER_ENDPOINT + PER_ENDPOINT_TAKE` at a time), never another's, nor
//! the pipeline (which only writes rows). Each taken delivery is leased: if this process dies mid-send, another sender
//! (or this one, restarted) sends it again after the lease. At least once, then.

use super::domain::{RETRY_FOR, retry_after};
use super::store::{self, Due};
use chrono::Utc;
use orderflow_kit::signing;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most deliveries in flight per process, and per endpoint (an endpoint below it takes at most
/// that many more at a time, so one dead endpoint never fills the process's slots).
const IN_FLIGHT: usize = 64;
const PER_ENDPOINT: usize = 4;
const PER_ENDPOINT_TAKE: i64 = 4;
/// How long an endpoint has to answer; a taken delivery's lease is longer.
const TIMEOUT: Duration = Duration::from_secs(10);
const LEASE: Duration = Duration::from_secs(60);
/// How often the sender looks for due deliveries when it found none.
const IDLE: Duration = Duration::from_millis(200);
/// Delivered deliveries are kept this long (listable, redeliverable), looked at this often.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Sender {
    pool: PgPool,
    client: reqwest::Client,
}

impl Sender {
    pub fn new(pool: PgPool) -> anyhow::Result<Self> {
        let client = orderflow_kit::tls::https_client("orderflow-webhooks/1", TIMEOUT)?;
        Ok(Self { pool, client })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let in_flight: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let mut backoff = orderflow_kit::backoff::Backoff::default();
        let mut pruned = std::time::Instant::now();
        loop {
            while tasks.try_join_next().is_some() {}
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = std::time::Instant::now();
                match store::prune(&self.pool, KEEP).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deliveries = n, "forgot deliveries delivered over a week ago"),
                    Err(error) => tracing::warn!(%error, "pruning webhook deliveries failed"),
                }
            }
            let busy: Vec<Uuid> = {
                let counts = in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                counts.iter().filter(|(_, n)| **n >= PER_ENDPOINT).map(|(id, _)| *id).collect()
            };
            let room = i64::try_from(IN_FLIGHT.saturating_sub(tasks.len())).unwrap_or(0);
            let taken = if room == 0 {
                Ok(Vec::new())
            } else {
                match self.pool.acquire().await {
                    Ok(mut conn) => store::take_due(&mut conn, &busy, room, PER_ENDPOINT_TAKE, LEASE).await,
                    Err(error) => Err(error),
                }
            };
            let due = match taken {
                Ok(due) => {
                    backoff.reset();
                    due
                }
                Err(error) => {
                    tracing::warn!(%error, "taking webhook deliveries failed; retrying");
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let idle = due.is_empty();
            for delivery in due {
                *in_flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(delivery.webhook_id)
                    .or_default() += 1;
                let (sender, in_flight) = (self.clone(), Arc::clone(&in_flight));
                tasks.spawn(async move {
                    let webhook_id = delivery.webhook_id;
                    sender.send(delivery).await;
                    let mut counts = in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(n) = counts.get_mut(&webhook_id) {
                        *n -= 1;
                        if *n == 0 {
                            counts.remove(&webhook_id);
                        }
                    }
                });
            }
            let wait = if idle || room == 0 { IDLE } else { Duration::ZERO };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One attempt, and its outcome recorded.
    async fn send(&self, delivery: Due) {
        let id = delivery.delivery_id.to_string();
        let timestamp = Utc::now().timestamp();
        let Some(signature) = signing::sign(&delivery.secret, &id, timestamp, &delivery.payload) else {
            tracing::error!(webhook_id = %delivery.webhook_id, "webhook secret is malformed; delivery failed");
            self.record(&delivery, false, 0, "the endpoint's secret is malformed").await;
            return;
        };
        let answer = self
            .client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                self.record(&delivery, true, response.status().as_u16(), "").await;
            }
            Ok(response) => {
                let status = response.status();
                self.record(&delivery, false, status.as_u16(), &format!("answered {status}")).await;
            }
            Err(error) => {
                let why = if error.is_timeout() { format!("no answer within {TIMEOUT:?}") } else { error.to_string() };
                self.record(&delivery, false, 0, &why).await;
            }
        }
    }

    async fn record(&self, delivery: &Due, delivered: bool, status: u16, error: &str) {
        let attempt = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
        let retry_at = Utc::now() + retry_after(attempt);
        let give_up = delivery.created_at + RETRY_FOR < retry_at;
        let retry_at = (!give_up).then_some(retry_at);
        let error: String = error.chars().take(500).collect();
        if let Err(failure) = store::record(&self.pool, delivery.delivery_id, delivered, status, &error, retry_at).await
        {
            // The lease runs out and the delivery is sent again: at least once.
            tracing::warn!(error = %failure, delivery_id = %delivery.delivery_id, "recording a webhook attempt failed");
        }
        if !delivered {
            tracing::info!(delivery_id = %delivery.delivery_id, webhook_id = %delivery.webhook_id, subject = %delivery.subject, attempt, status, %error, failed = give_up, "webhook delivery attempt failed");
        }
    }
}
