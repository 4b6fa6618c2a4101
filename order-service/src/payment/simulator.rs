//! The development payment gateway (`orderctl gateway serve`): the API of `api`, over HTTP/JSON,
//! with its own ledger in memory. Test references: a `payment_reference` starting with
//! `pay_decline` is declined; one starting with `pay_flaky` fails its first two calls (of any
//! kind) with a 503. Answers are kept by idempotency key: a repeated call is answered as the
//! first was; a key reused with a different request is refused (409). With a ledger file, every
//! change is appended to it as a JSON line and read back at start: a restart loses nothing.

use super::api::{Answer, AuthorizeRequest, CaptureRequest, Entry, IDEMPOTENCY_KEY, Ledger as Entries};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// A declined test reference starts with this.
pub const DECLINE: &str = "pay_decline";
/// A test reference whose first two calls fail transiently starts with this.
pub const FLAKY: &str = "pay_flaky";
const FLAKY_FAILURES: u32 = 2;

#[derive(Debug, Default)]
struct Ledger {
    entries: BTreeMap<String, Entry>,
    /// Idempotency key → the request it came with and the answer given.
    answers: HashMap<String, (String, StatusCode, Answer)>,
    /// Calls per flaky reference.
    calls: HashMap<String, u32>,
    next_id: u64,
    /// Where changes are appended, if anywhere.
    file: Option<std::fs::File>,
}

/// One line of the ledger file: an answer kept under its idempotency key, or an authorisation
/// as it is after a change.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Answer { key: String, request: String, status: u16, answer: Answer },
    Entry(Entry),
}

type Shared = Arc<Mutex<Ledger>>;

/// The gateway's routes, on a fresh ledger, or on the one `file` holds (appended to from then on).
pub fn router(file: Option<&std::path::Path>) -> std::io::Result<Router> {
    let ledger: Shared = Arc::new(Mutex::new(match file {
        Some(path) => Ledger::open(path)?,
        None => Ledger::default(),
    }));
    Ok(Router::new()
        .route("/v1/authorizations", post(authorize))
        .route("/v1/authorizations/{key}/capture", post(capture))
        .route("/v1/authorizations/{key}/void", post(void))
        .route("/v1/ledger", get(ledger_entries))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(ledger))
}

fn reply(status: StatusCode, answer: &Answer) -> Response {
    let body = serde_json::to_string(answer).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refused(status: StatusCode, state: &str, reason: &str) -> (StatusCode, Answer) {
    (status, Answer { status: state.into(), id: String::new(), reason: reason.into() })
}

impl Ledger {
    /// The ledger `path` holds (none if it does not exist yet), appending to it from now on.
    fn open(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::BufRead;
        let mut ledger = Self::default();
        if let Ok(existing) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(existing).lines() {
                match serde_json::from_str(&line?) {
                    Ok(Record::Answer { key, request, status, answer }) => {
                        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                        ledger.answers.insert(key, (request, status, answer));
                    }
                    Ok(Record::Entry(entry)) => {
                        ledger.entries.insert(entry.authorization_key.clone(), entry);
                    }
                    Err(error) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error)),
                }
                ledger.next_id += 1; // every new id is written at least once: ids stay unique
            }
        }
        ledger.file = Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
        Ok(ledger)
    }

    /// Appends `record` to the file, if there is one.
    fn write(&mut self, record: &Record) {
        use std::io::Write;
        let Some(file) = self.file.as_mut() else { return };
        let line = serde_json::to_string(record).unwrap_or_default() + "\n";
        if let Err(error) = file.write_all(line.as_bytes()) {
            tracing::error!(%error, "writing the gateway's ledger file");
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:08}", self.next_id)
    }

    /// True if this call of a flaky reference is one of its first two: it fails.
    fn flaky(&mut self, reference: &str) -> bool {
        if !reference.starts_with(FLAKY) {
            return false;
        }
        let calls = self.calls.entry(reference.to_owned()).or_default();
        *calls += 1;
        *calls <= FLAKY_FAILURES
    }

    /// Answers a call under idempotency `key` with `request` about the authorisation `auth`: a
    /// repeat as the first time, else `decide` (its answer kept when it settled something: 2xx
    /// or 402; the authorisation as it is then written to the file).
    fn once(
        &mut self,
        key: &str,
        request: String,
        auth: &str,
        decide: impl FnOnce(&mut Self) -> (StatusCode, Answer),
    ) -> (StatusCode, Answer) {
        if let Some((first, status, answer)) = self.answers.get(key) {
            if *first != request {
                return refused(StatusCode::CONFLICT, "", "idempotency key reused with a different request");
            }
            return (*status, answer.clone());
        }
        let (status, answer) = decide(self);
        if status.is_success() || status == StatusCode::PAYMENT_REQUIRED {
            if let Some(entry) = self.entries.get(auth).cloned() {
                self.write(&Record::Entry(entry));
            }
            let (key, code) = (key.to_owned(), status.as_u16());
            self.write(&Record::Answer {
                key: key.clone(),
                request: request.clone(),
                status: code,
                answer: answer.clone(),
            });
            self.answers.insert(key, (request, status, answer.clone()));
        }
        (status, answer)
    }

    fn authorize(&mut self, request: &AuthorizeRequest) -> (StatusCode, Answer) {
        if self.flaky(&request.payment_reference) {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "", "try again (test reference)");
        }
        if let Some(entry) = self.entries.get(&request.authorization_key) {
            return match entry.status.as_str() {
                "VOIDED" => refused(StatusCode::PAYMENT_REQUIRED, "DECLINED", "voided before it was authorised"),
                "DECLINED" => refused(StatusCode::PAYMENT_REQUIRED, "DECLINED", "declined"),
                _ => refused(StatusCode::CONFLICT, &entry.status, "already authorised under another idempotency key"),
            };
        }
        let currency_ok = request.currency.len() == 3 && request.currency.bytes().all(|b| b.is_ascii_uppercase());
        if request.amount_minor < 0 || (request.amount_minor > 0 && !currency_ok) {
            return refused(StatusCode::BAD_REQUEST, "", "amount_minor must be >= 0 with an ISO 4217 currency");
        }
        let declined = request.payment_reference.starts_with(DECLINE);
        let entry = Entry {
            authorization_key: request.authorization_key.clone(),
            authorization_id: self.id("auth"),
            payment_reference: request.payment_reference.clone(),
            amount_minor: request.amount_minor,
            currency: request.currency.clone(),
            status: if declined { "DECLINED" } else { "AUTHORIZED" }.into(),
            ..Entry::default()
        };
        let answer = if declined {
            refused(StatusCode::PAYMENT_REQUIRED, "DECLINED", "card declined (test reference)")
        } else {
            (
                StatusCode::OK,
                Answer { status: "AUTHORIZED".into(), id: entry.authorization_id.clone(), reason: String::new() },
            )
        };
        self.entries.insert(request.authorization_key.clone(), entry);
        answer
    }

    fn capture(&mut self, key: &str, request: &CaptureRequest) -> (StatusCode, Answer) {
        let Some(reference) = self.entries.get(key).map(|e| e.payment_reference.clone()) else {
            return refused(StatusCode::NOT_FOUND, "", "no such authorization");
        };
        if self.flaky(&reference) {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "", "try again (test reference)");
        }
        let Some(entry) = self.entries.get(key) else { return refused(StatusCode::NOT_FOUND, "", "gone") };
        if entry.status != "AUTHORIZED" {
            return refused(StatusCode::CONFLICT, &entry.status, "only an authorised payment can be captured");
        }
        if request.amount_minor < 0 || request.amount_minor > entry.amount_minor {
            return refused(StatusCode::UNPROCESSABLE_ENTITY, &entry.status, "more than was authorised");
        }
        let capture_id = self.id("cap");
        let Some(entry) = self.entries.get_mut(key) else { return refused(StatusCode::NOT_FOUND, "", "gone") };
        entry.status = "CAPTURED".into();
        entry.captures += 1;
        entry.captured_minor = request.amount_minor;
        (StatusCode::OK, Answer { status: "CAPTURED".into(), id: capture_id, reason: String::new() })
    }

    fn void(&mut self, key: &str) -> (StatusCode, Answer) {
        let reference = self.entries.get(key).map(|e| e.payment_reference.clone()).unwrap_or_default();
        if self.flaky(&reference) {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "", "try again (test reference)");
        }
        let entry = self.entries.entry(key.to_owned()).or_insert_with(|| Entry {
            authorization_key: key.to_owned(),
            status: "VOIDED".into(),
            ..Entry::default()
        });
        if entry.status == "CAPTURED" {
            return refused(StatusCode::CONFLICT, "CAPTURED", "already captured");
        }
        if entry.status == "AUTHORIZED" {
            entry.status = "VOIDED".into();
        }
        entry.voids += 1;
        (StatusCode::OK, Answer { status: "VOIDED".into(), id: entry.authorization_id.clone(), reason: String::new() })
    }
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get(IDEMPOTENCY_KEY)?.to_str().ok()?.trim();
    (!key.is_empty() && key.len() <= 255).then(|| key.to_owned())
}

fn locked(ledger: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

const NO_KEY: &str = "an Idempotency-Key header is required";

async fn authorize(State(ledger): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let Some(key) = idempotency_key(&headers) else { return reply_refused(StatusCode::BAD_REQUEST, NO_KEY) };
    let request: AuthorizeRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(error) => return reply_refused(StatusCode::BAD_REQUEST, &format!("the body: {error}")),
    };
    let canonical = serde_json::to_string(&request).unwrap_or_default();
    let auth = request.authorization_key.clone();
    let (status, answer) = locked(&ledger).once(&key, canonical, &auth, |l| l.authorize(&request));
    reply(status, &answer)
}

async fn capture(State(ledger): State<Shared>, Path(auth): Path<String>, headers: HeaderMap, body: String) -> Response {
    let Some(key) = idempotency_key(&headers) else { return reply_refused(StatusCode::BAD_REQUEST, NO_KEY) };
    let request: CaptureRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(error) => return reply_refused(StatusCode::BAD_REQUEST, &format!("the body: {error}")),
    };
    let canonical = format!("{auth} {}", request.amount_minor);
    let (status, answer) = locked(&ledger).once(&key, canonical, &auth, |l| l.capture(&auth, &request));
    reply(status, &answer)
}

async fn void(State(ledger): State<Shared>, Path(auth): Path<String>, headers: HeaderMap) -> Response {
    let Some(key) = idempotency_key(&headers) else { return reply_refused(StatusCode::BAD_REQUEST, NO_KEY) };
    let (status, answer) = locked(&ledger).once(&key, auth.clone(), &auth, |l| l.void(&auth));
    reply(status, &answer)
}

fn reply_refused(status: StatusCode, reason: &str) -> Response {
    reply(status, &refused(status, "", reason).1)
}

async fn ledger_entries(State(ledger): State<Shared>) -> Response {
    let authorizations: Vec<Entry> = locked(&ledger).entries.values().cloned().collect();
    let body = serde_json::to_string(&Entries { authorizations }).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(key: &str, reference: &str, amount: i64) -> AuthorizeRequest {
        AuthorizeRequest {
            authorization_key: key.into(),
            payment_reference: reference.into(),
            amount_minor: amount,
            currency: "EUR".into(),
        }
    }

    fn authorize(ledger: &mut Ledger, idempotency: &str, request: &AuthorizeRequest) -> (StatusCode, Answer) {
        let body = serde_json::to_string(request).unwrap();
        ledger.once(idempotency, body, &request.authorization_key, |l| l.authorize(request))
    }

    #[test]
    fn an_authorisation_is_captured_once_whatever_is_repeated() {
        let mut ledger = Ledger::default();
        let request = authorization("o1", "pay_1", 2_500);
        let (status, first) = authorize(&mut ledger, "o1:authorize", &request);
        assert_eq!((status, first.status.as_str()), (StatusCode::OK, "AUTHORIZED"));
        assert_eq!(authorize(&mut ledger, "o1:authorize", &request), (StatusCode::OK, first.clone()), "a repeat");
        let other = authorization("o1", "pay_1", 9_999);
        assert_eq!(authorize(&mut ledger, "o1:authorize", &other).0, StatusCode::CONFLICT, "same key, other request");
        let capture = CaptureRequest { amount_minor: 2_500 };
        let once = ledger.once("o1:capture", "c".into(), "o1", |l| l.capture("o1", &capture));
        assert_eq!(once.1.status, "CAPTURED");
        assert_eq!(ledger.once("o1:capture", "c".into(), "o1", |l| l.capture("o1", &capture)), once);
        assert_eq!(ledger.capture("o1", &capture).0, StatusCode::CONFLICT, "a second capture under another key");
        assert_eq!(ledger.void("o1").0, StatusCode::CONFLICT, "a captured payment is not voided");
        let entry = &ledger.entries["o1"];
        assert_eq!((entry.captures, entry.captured_minor, entry.status.as_str()), (1, 2_500, "CAPTURED"));
    }

    #[test]
    fn a_ledger_file_brings_everything_back_after_a_restart() {
        let path = std::env::temp_dir().join(format!("gateway-{}.jsonl", uuid::Uuid::new_v4()));
        let mut ledger = Ledger::open(&path).unwrap();
        let request = authorization("o1", "pay_1", 700);
        let (_, authorised) = authorize(&mut ledger, "o1:authorize", &request);
        let capture = CaptureRequest { amount_minor: 700 };
        let captured = ledger.once("o1:capture", "c".into(), "o1", |l| l.capture("o1", &capture));
        drop(ledger);
        let mut again = Ledger::open(&path).unwrap();
        assert_eq!(again.entries["o1"].status, "CAPTURED");
        assert_eq!(authorize(&mut again, "o1:authorize", &request).1, authorised, "answered as before the restart");
        assert_eq!(again.once("o1:capture", "c".into(), "o1", |l| l.capture("o1", &capture)), captured);
        let (_, other) = authorize(&mut again, "o2:authorize", &authorization("o2", "pay_1", 5));
        assert_ne!(other.id, authorised.id, "ids stay unique across restarts");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_test_references_decline_and_fail_twice() {
        let mut ledger = Ledger::default();
        let (status, answer) = authorize(&mut ledger, "d:authorize", &authorization("d", "pay_decline_42", 100));
        assert_eq!((status, answer.status.as_str()), (StatusCode::PAYMENT_REQUIRED, "DECLINED"));
        let flaky = authorization("f", "pay_flaky_1", 100);
        for _ in 0..2 {
            assert_eq!(authorize(&mut ledger, "f:authorize", &flaky).0, StatusCode::SERVICE_UNAVAILABLE);
        }
        assert_eq!(authorize(&mut ledger, "f:authorize", &flaky).0, StatusCode::OK, "the third call goes through");
    }

    #[test]
    fn a_void_before_the_authorisation_refuses_it() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.void("o2").1.status, "VOIDED");
        let (status, answer) = authorize(&mut ledger, "o2:authorize", &authorization("o2", "pay_1", 100));
        assert_eq!((status, answer.status.as_str()), (StatusCode::PAYMENT_REQUIRED, "DECLINED"));
        assert_eq!(ledger.entries["o2"].amount_minor, 0, "nothing was ever held");
        assert_eq!(
            authorize(&mut ledger, "o3:authorize", &authorization("o3", "pay_1", -1)).0,
            StatusCode::BAD_REQUEST
        );
    }
}
