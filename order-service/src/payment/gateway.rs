//! The port to the payment gateway: one call per action, answered as an [`Outcome`]. Only a
//! 402 (declined), or a 400/422 (the gateway refuses the request as it is: the payment data is
//! not one it accepts) to an authorisation declines it; anything else that settles nothing (no
//! connection, a timeout, 5xx, 429, 401/403 from a misconfigured gateway, a 409 for a call in
//! flight) is `Failed` and tried again later with the same idempotency key. What the gateway
//! says is kept to 500 characters without control characters (it is stored and shown).

use super::api::{Answer, AuthorizeRequest, CaptureRequest, IDEMPOTENCY_KEY};
use super::domain::{Action, Outcome};
use orderflow_proto::events::v1::OrderPlaced;
use reqwest::StatusCode;
use std::time::Duration;
use uuid::Uuid;

/// How long the gateway has to answer (a claimed payment's lease is longer).
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Gateway {
    client: reqwest::Client,
    base: String,
}

impl Gateway {
    /// The gateway at `base` (`PAYMENT_GATEWAY_URL`, e.g. `http://127.0.0.1:50055`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(base).map_err(|e| anyhow::anyhow!("PAYMENT_GATEWAY_URL {base:?}: {e}"))?;
        anyhow::ensure!(matches!(url.scheme(), "http" | "https"), "PAYMENT_GATEWAY_URL {base:?}: not http(s)");
        let client = orderflow_kit::tls::https_client("orderflow-payments/1", TIMEOUT)?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned() })
    }

    /// Performs `action` for the order `order_id` placed as `placed`.
    pub async fn call(&self, order_id: Uuid, action: Action, placed: &OrderPlaced) -> Outcome {
        let total = placed.total.clone().unwrap_or_default();
        let (path, body) = match action {
            Action::Authorize => {
                let request = AuthorizeRequest {
                    authorization_key: order_id.to_string(),
                    payment_reference: placed.payment_reference.clone(),
                    amount_minor: total.amount_minor,
                    currency: total.currency_code,
                };
                ("/v1/authorizations".to_owned(), serde_json::to_string(&request))
            }
            Action::Capture => (
                format!("/v1/authorizations/{order_id}/capture"),
                serde_json::to_string(&CaptureRequest { amount_minor: total.amount_minor }),
            ),
            Action::Void => (format!("/v1/authorizations/{order_id}/void"), Ok("{}".to_owned())),
        };
        let body = match body {
            Ok(body) => body,
            Err(error) => return Outcome::Failed { error: error.to_string() },
        };
        let sent = self
            .client
            .post(format!("{}{path}", self.base))
            .header(IDEMPOTENCY_KEY, format!("{order_id}:{}", action.as_str()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Outcome::Failed { error: format!("the gateway is unreachable: {error}") },
        };
        let status = response.status();
        let text = match read_capped(response).await {
            Ok(text) => text,
            Err(error) => return Outcome::Failed { error: format!("reading the gateway's answer: {error}") },
        };
        let mut answer: Answer =
            serde_json::from_str(&text).unwrap_or_else(|_| Answer { reason: text, ..Answer::default() });
        answer.reason = clean(&answer.reason);
        answer.id = clean(&answer.id);
        outcome(action, status, answer)
    }
}

/// Longest answer read, and longest text kept from it.
const MAX_ANSWER: usize = 64 * 1024;
const MAX_TEXT: usize = 500;

/// The answer's body, up to [`MAX_ANSWER`] bytes (the rest is not read).
async fn read_capped(mut response: reqwest::Response) -> reqwest::Result<String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
        if body.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `text` as it may be stored: no control characters (PostgreSQL refuses NUL), at most
/// [`MAX_TEXT`] characters.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect()
}

/// What an HTTP answer means for `action`.
fn outcome(action: Action, status: StatusCode, answer: Answer) -> Outcome {
    let failed =
        || Outcome::Failed { error: format!("the gateway answered {status}: {} {}", answer.status, answer.reason) };
    match (action, answer.status.as_str()) {
        _ if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT =>
        {
            failed()
        }
        (Action::Authorize, "AUTHORIZED") if status.is_success() => Outcome::Authorized { authorization_id: answer.id },
        (Action::Authorize, _) if status == StatusCode::PAYMENT_REQUIRED => Outcome::Declined { reason: answer.reason },
        (Action::Authorize, _) if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY => {
            Outcome::Declined { reason: format!("the gateway refused the request ({status}): {}", answer.reason) }
        }
        (Action::Capture, "CAPTURED") if status.is_success() => Outcome::Captured { capture_id: answer.id },
        (Action::Void, "VOIDED") if status.is_success() => Outcome::Voided,
        _ => failed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str, id: &str, reason: &str) -> Answer {
        Answer { status: status.into(), id: id.into(), reason: reason.into() }
    }

    #[test]
    fn answers_mean_what_the_api_documents() {
        let ok = StatusCode::OK;
        assert_eq!(
            outcome(Action::Authorize, ok, answer("AUTHORIZED", "auth_1", "")),
            Outcome::Authorized { authorization_id: "auth_1".into() }
        );
        assert_eq!(
            outcome(Action::Authorize, StatusCode::PAYMENT_REQUIRED, answer("DECLINED", "", "card declined")),
            Outcome::Declined { reason: "card declined".into() }
        );
        let Outcome::Declined { reason } = outcome(Action::Authorize, StatusCode::BAD_REQUEST, answer("", "", "bad"))
        else {
            panic!("a refused authorisation is declined")
        };
        assert!(reason.contains("400"), "{reason}");
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::CONFLICT,
        ] {
            assert!(matches!(outcome(Action::Authorize, status, Answer::default()), Outcome::Failed { .. }));
        }
        assert_eq!(
            outcome(Action::Capture, ok, answer("CAPTURED", "cap_1", "")),
            Outcome::Captured { capture_id: "cap_1".into() }
        );
        assert!(matches!(
            outcome(Action::Capture, StatusCode::CONFLICT, answer("VOIDED", "", "")),
            Outcome::Failed { .. }
        ));
        assert_eq!(outcome(Action::Void, ok, answer("VOIDED", "", "")), Outcome::Voided);
        assert!(matches!(outcome(Action::Void, ok, answer("CAPTURED", "", "")), Outcome::Failed { .. }));
    }

    #[test]
    fn what_the_gateway_says_is_kept_short_and_storable() {
        assert_eq!(clean("card\0 declined\n"), "card declined");
        assert_eq!(clean(&"x".repeat(10_000)).len(), MAX_TEXT);
    }

    #[test]
    fn a_gateway_url_must_be_http() {
        assert!(Gateway::new("http://127.0.0.1:50055/").is_ok());
        assert!(Gateway::new("ftp://example.com").is_err());
        assert!(Gateway::new("not a url").is_err());
    }
}
