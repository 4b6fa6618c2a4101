//! The payment gateway's HTTP/JSON API (docs/payments.md), as order-service calls it and the
//! development gateway (`orderctl gateway serve`) answers it. An authorisation is named by its
//! `authorization_key` (the order id); every call carries an `Idempotency-Key` header
//! (`<order id>:authorize|capture|void`), so a repeated call is answered as the first was and
//! never authorises, captures or voids twice.

use serde::{Deserialize, Serialize};

/// `POST /v1/authorizations`: hold `amount_minor` of `currency` on `payment_reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub authorization_key: String,
    pub payment_reference: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// `POST /v1/authorizations/{authorization_key}/capture`: charge `amount_minor` of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    pub amount_minor: i64,
}

/// Every answer: `status` AUTHORIZED (200), DECLINED (402), CAPTURED (200), VOIDED (200), or
/// the authorisation's status with a `reason` when a call is refused (4xx); `id` names the
/// authorisation or the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub reason: String,
}

/// One authorisation in the gateway's ledger (`GET /v1/ledger`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub authorization_key: String,
    pub authorization_id: String,
    pub payment_reference: String,
    pub amount_minor: i64,
    pub currency: String,
    /// AUTHORIZED, DECLINED, CAPTURED or VOIDED (a void that came before any authorisation
    /// leaves a VOIDED entry with nothing held: the authorisation is refused if it comes).
    pub status: String,
    pub captures: u32,
    pub captured_minor: i64,
    pub voids: u32,
}

/// Where `orderctl gateway serve` listens by default (`http://127.0.0.1:50055`).
pub const DEFAULT_PORT: u16 = 50055;

/// `GET /v1/ledger`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub authorizations: Vec<Entry>,
}

/// The idempotency key header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
