//! The back-off every retry loop of a service uses: 100 ms, doubling to 5 s, reset by success.

use std::time::Duration;
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
