//! Authentication: every RPC except health and reflection needs `authorization: Bearer <token>`,
//! and the token's scopes must cover the method. Tokens come from configuration
//! (`AUTH_TOKENS_FILE`) as SHA-256 digests, so the file holds no usable secret. Missing or
//! unknown token: UNAUTHENTICATED; known token without the scope: PERMISSION_DENIED.
//!
//! Enforced by a tower layer in front of every route ([`AuthLayer`]), so no handler can forget it.

use crate::token_file::TokenStore;
use futures::future::{Either, Ready, ready};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::body::Body;

/// The scopes a token can carry.
pub mod scope {
    /// PlaceOrder, CancelOrder.
    pub const ORDERS_WRITE: &str = "orders:write";
    /// GetOrder, ListOrders, WatchOrder, GetShipment, TrackShipment.
    pub const ORDERS_READ: &str = "orders:read";
    /// UpsertProduct, Restock.
    pub const INVENTORY_WRITE: &str = "inventory:write";
    /// GetStock, ListStock, ListLowStock.
    pub const INVENTORY_READ: &str = "inventory:read";
    /// Every FulfillmentService call (pick lists and confirmations).
    pub const WAREHOUSE: &str = "warehouse";
    /// Carrier pick-ups and scans (ConfirmPickup, RecordTrackingEvent, ConfirmDelivery),
    /// ListPickups, GetShipment, TrackShipment.
    pub const CARRIER: &str = "carrier";
    /// Managing webhooks (every WebhookService call).
    pub const WEBHOOKS: &str = "webhooks";
    /// Everything.
    pub const ALL: &str = "*";

    /// Every scope a token file may name.
    pub const KNOWN: [&str; 8] =
        [ORDERS_WRITE, ORDERS_READ, INVENTORY_WRITE, INVENTORY_READ, WAREHOUSE, CARRIER, WEBHOOKS, ALL];
}

/// Who may call what on one server, as the service's wiring declares it: health and
/// reflection anyone; a method of the API `api` (its full gRPC name) listed in `methods` a
/// token with one of its scopes; anything else, a method not listed included, only `*`: the
/// table denies by default (a test walks the descriptor set so that every RPC is listed,
/// `testing::assert_dedicated_scopes`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub api: &'static str,
    pub methods: &'static [(&'static str, &'static [&'static str])],
    /// The policies of the other APIs the same server serves.
    pub also: &'static [Policy],
}

impl Policy {
    /// What a call of `path` (`/package.Service/Method`) needs: nothing (health, reflection)
    /// or a token with any one of the scopes.
    pub fn required_scopes(&self, path: &str) -> Option<&'static [&'static str]> {
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
        if matches!(
            service,
            "grpc.health.v1.Health"
                | "grpc.reflection.v1.ServerReflection"
                | "grpc.reflection.v1alpha.ServerReflection"
        ) {
            return None;
        }
        if service != self.api {
            return self
                .also
                .iter()
                .find(|p| p.api == service)
                .map_or(Some(&[scope::ALL]), |p| p.required_scopes(path));
        }
        Some(self.methods.iter().find(|(name, _)| *name == method).map_or(&[scope::ALL], |(_, scopes)| scopes))
    }
}

/// The hex SHA-256 digest of a token, as the token file stores it.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A configured token: who it is for, what it may do, and whose orders or parcels only, if
/// it is bound to a customer or a carrier. The auth layer hands it to the call (request
/// extensions: [`caller`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scopes: Vec<String>,
    pub binding: Option<Binding>,
}

/// What a bound token is limited to (the token file's fourth field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `customer=<id>`: places, reads, lists, watches and cancels only this customer's orders.
    Customer(String),
    /// `carrier=<name>`: confirms and scans only this carrier's parcels.
    Carrier(String),
}

impl Binding {
    fn parse(field: &str) -> Result<Self, String> {
        let (kind, value) =
            field.split_once('=').ok_or_else(|| format!("{field:?}: expected customer=<id> or carrier=<name>"))?;
        if value.is_empty() || value.len() > 64 {
            return Err(format!("{field:?}: the {kind} must be 1 to 64 characters"));
        }
        match kind {
            "customer" => Ok(Self::Customer(value.to_owned())),
            "carrier" => Ok(Self::Carrier(value.to_owned())),
            _ => Err(format!("{field:?}: a token is bound to a customer=<id> or a carrier=<name>")),
        }
    }
}

/// The caller of `request`, as the auth layer found it (`None` for calls that need no token).
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// The customer `request`'s token is bound to, if any.
pub fn bound_customer<T>(request: &tonic::Request<T>) -> Option<&str> {
    match caller(request)?.binding.as_ref()? {
        Binding::Customer(id) => Some(id),
        Binding::Carrier(_) => None,
    }
}

/// The carrier `request`'s token is bound to, if any.
pub fn bound_carrier<T>(request: &tonic::Request<T>) -> Option<&str> {
    match caller(request)?.binding.as_ref()? {
        Binding::Carrier(name) => Some(name),
        Binding::Customer(_) => None,
    }
}

impl Caller {
    fn may(&self, needed: &[&str]) -> bool {
        self.scopes.iter().any(|s| s == scope::ALL || needed.contains(&s.as_str()))
    }
}

/// The configured tokens, by digest.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<String, Caller>,
}

/// A token file line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TokenFileError {
    pub line: usize,
    pub reason: String,
}

impl Tokens {
    /// Parses a token file: one token per line, `<name> <sha256-hex> <scope>[,<scope>...]`,
    /// optionally bound with a fourth field, `customer=<id>` or `carrier=<name>`; blank lines
    /// and `#` comments are skipped. Scopes are listed in [`scope::KNOWN`].
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut tokens = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let error = |reason: String| TokenFileError { line: index + 1, reason };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, digest, scopes, binding) = match fields[..] {
                [name, digest, scopes] => (name, digest, scopes, None),
                [name, digest, scopes, binding] => {
                    (name, digest, scopes, Some(Binding::parse(binding).map_err(|e| error(format!("{name}: {e}")))?))
                }
                _ => {
                    return Err(error(
                        "expected `<name> <sha256-hex> <scope>[,<scope>...] [customer=<id>|carrier=<name>]`".into(),
                    ));
                }
            };
            if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(error(format!("{name}: the digest must be 64 hex digits (sha256sum of the token)")));
            }
            let scopes: Vec<String> = scopes.split(',').map(str::to_owned).collect();
            if let Some(unknown) = scopes.iter().find(|s| !scope::KNOWN.contains(&s.as_str())) {
                return Err(error(format!("{name}: unknown scope {unknown:?}; known: {}", scope::KNOWN.join(", "))));
            }
            let caller = Caller { name: name.to_owned(), scopes, binding };
            if tokens.by_digest.insert(digest.to_ascii_lowercase(), caller).is_some() {
                return Err(error(format!("{name}: the same token is configured twice")));
            }
        }
        Ok(tokens)
    }

    /// Adds `token` (in clear, digested here) for `name` with `scopes`: for tests and tools.
    pub fn with_token(self, name: &str, token: &str, scopes: &[&str]) -> Self {
        self.with_bound_token(name, token, scopes, None)
    }

    /// The same, bound to a customer or a carrier.
    pub fn with_bound_token(mut self, name: &str, token: &str, scopes: &[&str], binding: Option<Binding>) -> Self {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.by_digest.insert(digest(token), Caller { name: name.to_owned(), scopes, binding });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Checks a call to `path` with the `authorization` header value; the caller if one was
    /// needed and allowed.
    pub fn authorize(
        &self,
        policy: &Policy,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<Option<&Caller>, Status> {
        let Some(needed) = policy.required_scopes(path) else { return Ok(None) };
        let header = authorization.ok_or_else(|| {
            Status::unauthenticated("missing credentials: send metadata `authorization: Bearer <token>`")
        })?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("malformed authorization metadata: expected `Bearer <token>`"))?;
        let caller =
            self.by_digest.get(&digest(token)).ok_or_else(|| Status::unauthenticated("unknown or revoked token"))?;
        if !caller.may(needed) {
            let method = path.rsplit('/').next().unwrap_or(path);
            return Err(Status::permission_denied(format!(
                "token {:?} may not call {method}: it needs scope {}",
                caller.name,
                needed.join(" or ")
            )));
        }
        Ok(Some(caller))
    }
}

/// The tower layer that checks every call against the tokens and the server's [`Policy`]
/// before it reaches a route.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Arc<TokenStore>,
    policy: Policy,
}

impl AuthLayer {
    pub fn new(tokens: Arc<TokenStore>, policy: Policy) -> Self {
        Self { tokens, policy }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, tokens: Arc::clone(&self.tokens), policy: self.policy }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Arc<TokenStore>,
    policy: Policy,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
        let tokens = self.tokens.get(); // the tokens in force now (the file is re-read on SIGHUP)
        match tokens.authorize(&self.policy, request.uri().path(), authorization) {
            Ok(caller) => {
                if let Some(caller) = caller.cloned() {
                    tracing::trace!(caller = %caller.name, path = request.uri().path(), "authorized");
                    request.extensions_mut().insert(caller);
                }
                Either::Left(self.inner.call(request))
            }
            Err(status) => {
                tracing::debug!(path = request.uri().path(), code = ?status.code(), "call refused");
                Either::Right(ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const PLACE: &str = "/orderflow.order.v1.OrderService/PlaceOrder";
    const POLICY: Policy = Policy {
        api: "orderflow.order.v1.OrderService",
        methods: &[("PlaceOrder", &[scope::ORDERS_WRITE]), ("GetOrder", &[scope::ORDERS_READ])],
        also: &[],
    };

    fn tokens() -> Tokens {
        let file = format!(
            "# name digest scopes\nshop {} orders:write,orders:read\n\nops {} *  # everything\n",
            digest("shop-secret"),
            digest("ops-secret")
        );
        Tokens::parse(&file).unwrap()
    }

    fn code(result: Result<Option<&Caller>, Status>) -> Code {
        result.map_or_else(|s| s.code(), |_| Code::Ok)
    }

    #[test]
    fn a_second_api_of_the_server_has_its_own_scopes_and_unknown_ones_need_everything() {
        const SERVER: Policy = Policy {
            also: &[Policy {
                api: "orderflow.order.v1.WebhookService",
                methods: &[("ListWebhooks", &[scope::WEBHOOKS])],
                also: &[],
            }],
            ..POLICY
        };
        assert_eq!(
            SERVER.required_scopes("/orderflow.order.v1.WebhookService/ListWebhooks"),
            Some(&[scope::WEBHOOKS][..])
        );
        assert_eq!(SERVER.required_scopes(PLACE), Some(&[scope::ORDERS_WRITE][..]));
        assert_eq!(SERVER.required_scopes("/orderflow.other.v1.Api/Call"), Some(&[scope::ALL][..]));
        let tokens = tokens();
        let denied =
            tokens.authorize(&SERVER, "/orderflow.order.v1.WebhookService/ListWebhooks", Some(b"Bearer shop-secret"));
        assert_eq!(code(denied), Code::PermissionDenied);
    }

    #[test]
    fn health_and_reflection_need_no_token_and_everything_else_does() {
        let tokens = tokens();
        assert_eq!(code(tokens.authorize(&POLICY, "/grpc.health.v1.Health/Check", None)), Code::Ok);
        assert_eq!(
            code(tokens.authorize(&POLICY, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", None)),
            Code::Ok
        );
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, None)), Code::Unauthenticated);
        assert_eq!(code(tokens.authorize(&POLICY, "/some.Unknown/Method", None)), Code::Unauthenticated);
    }

    #[test]
    fn bad_tokens_are_unauthenticated_and_missing_scopes_permission_denied() {
        let tokens = tokens();
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer shop-secret"))), Code::Ok);
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer nope"))), Code::Unauthenticated);
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Basic c2hvcA=="))), Code::Unauthenticated);
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer "))), Code::Unauthenticated);
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            let header = format!("{scheme} shop-secret");
            assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(header.as_bytes()))), Code::Ok, "{scheme}");
        }
        let restock = "/orderflow.inventory.v1.InventoryService/Restock";
        let inventory = Policy {
            api: "orderflow.inventory.v1.InventoryService",
            methods: &[("Restock", &[scope::INVENTORY_WRITE])],
            also: &[],
        };
        let denied = tokens.authorize(&inventory, restock, Some(b"Bearer shop-secret")).unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("inventory:write"), "{}", denied.message());
        assert_eq!(code(tokens.authorize(&inventory, restock, Some(b"Bearer ops-secret"))), Code::Ok);
        assert_eq!(
            code(tokens.authorize(&POLICY, "/some.Unknown/Method", Some(b"Bearer shop-secret"))),
            Code::PermissionDenied
        );
    }

    #[test]
    fn the_policy_gives_listed_methods_their_scopes_and_denies_everything_else_but_to_star() {
        assert_eq!(POLICY.required_scopes(PLACE), Some(&[scope::ORDERS_WRITE][..]));
        assert_eq!(
            POLICY.required_scopes("/orderflow.order.v1.OrderService/GetOrder"),
            Some(&[scope::ORDERS_READ][..])
        );
        assert_eq!(POLICY.required_scopes("/orderflow.other.v1.Other/GetOrder"), Some(&[scope::ALL][..]));
        let unlisted = "/orderflow.order.v1.OrderService/ListOrders";
        assert_eq!(POLICY.required_scopes(unlisted), Some(&[scope::ALL][..]), "a method not listed: only *");
        assert_eq!(POLICY.required_scopes("/grpc.health.v1.Health/Watch"), None);
    }

    #[test]
    fn a_token_file_with_mistakes_names_the_line() {
        assert_eq!(Tokens::parse("shop abc orders:read").unwrap_err().line, 1);
        let unknown = Tokens::parse(&format!("\nshop {} orders:delete", digest("x"))).unwrap_err();
        assert_eq!(unknown.line, 2);
        assert!(unknown.reason.contains("orders:delete"));
        assert!(Tokens::parse(&format!("a {0} *\nb {0} *", digest("x"))).is_err(), "duplicate token");
        assert!(Tokens::parse("only-two fields").is_err());
        for bad in ["customer=", "customer", "tenant=acme", &format!("customer={}", "c".repeat(65))] {
            let line = format!("shop {} orders:read {bad}", digest("x"));
            assert!(Tokens::parse(&line).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_may_be_bound_to_a_customer_or_a_carrier() {
        let file = format!(
            "ada {} orders:write,orders:read customer=c-ada\ndpd {} carrier carrier=DPD\n",
            digest("ada-secret"),
            digest("dpd-secret")
        );
        let tokens = Tokens::parse(&file).unwrap();
        let ada = tokens.authorize(&POLICY, PLACE, Some(b"Bearer ada-secret")).unwrap().unwrap();
        assert_eq!(ada.binding, Some(Binding::Customer("c-ada".into())));
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(ada.clone());
        assert_eq!((bound_customer(&request), bound_carrier(&request)), (Some("c-ada"), None));
        let dpd = tokens.by_digest[&digest("dpd-secret")].clone();
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(dpd);
        assert_eq!((bound_customer(&request), bound_carrier(&request)), (None, Some("DPD")));
        assert_eq!(bound_customer(&tonic::Request::new(())), None, "no token, no binding");
    }
}
