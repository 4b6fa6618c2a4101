//! The HTTP client order-service's outbound calls use (webhook deliveries, the payment
//! gateway): rustls, no redirects followed, a connect timeout and an overall `timeout`.

use std::time::Duration;

pub fn client(user_agent: &str, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3).min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
}
