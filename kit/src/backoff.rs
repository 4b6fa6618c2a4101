//! The back-off every retry loop of a service uses: 100 ms, doubling to 5 s, reset by success.

use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const FIRST: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(FIRST)
    }
}

impl Backoff {
    /// The next wait.
    pub fn next(&self) -> Duration {
        self.0
    }

    /// After a success: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.0 = FIRST;
    }

    /// Sleeps the next wait (then doubles it); false if `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let waited = tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(self.0) => true,
        };
        self.0 = (self.0 * 2).min(LONGEST);
        waited
    }
}
/// Runs `step` until `shutdown`: again at once after it did some work, after `idle` when it
/// found none, and after the back-off when it failed (logged as `what` failing). The loop of
/// every worker that polls its own tables for due work.
pub async fn poll<F, Fut, E>(idle: Duration, shutdown: CancellationToken, what: &str, step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, E>>,
    E: std::fmt::Display,
{
    poll_woken(idle, &Notify::new(), shutdown, what, step).await;
}

/// The same, and an idle wait ends early when `wake` is notified (new work was committed).
pub async fn poll_woken<F, Fut, E>(idle: Duration, wake: &Notify, shutdown: CancellationToken, what: &str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, E>>,
    E: std::fmt::Display,
{
    let mut backoff = Backoff::default();
    loop {
        let wait = match step().await {
            Ok(done) => {
                backoff.reset();
                if done == 0 { idle } else { Duration::ZERO }
            }
            Err(error) => {
                tracing::warn!(%error, "{what} failed; retrying");
                if !backoff.wait(&shutdown).await {
                    return;
                }
                continue;
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = wake.notified(), if !wait.is_zero() => {}
        }
    }
}
