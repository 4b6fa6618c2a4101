//! The configured tokens, by digest: the token file's format (optionally bound to a customer or
//! a carrier), and the check of one call's `authorization` metadata against a [`Policy`].

use super::{Policy, scope};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tonic::Status;

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

    /// Checks a call to `path` with the `authorization` header value against these tokens;
    /// the caller if one was needed and allowed.
    pub fn authorize(
        &self,
        policy: &Policy,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<Option<&Caller>, Status> {
        let Some(needed) = policy.required_scopes(path) else { return Ok(None) };
        let caller = self.lookup(bearer(authorization)?)?;
        caller.permit(needed, path)?;
        Ok(Some(caller))
    }

    /// The caller `token` stands for.
    pub fn lookup(&self, token: &str) -> Result<&Caller, Status> {
        self.by_digest.get(&digest(token)).ok_or_else(|| Status::unauthenticated("unknown or revoked token"))
    }
}

/// The token of an `authorization` header value, `Bearer <token>`.
pub fn bearer(authorization: Option<&[u8]>) -> Result<&str, Status> {
    let header = authorization
        .ok_or_else(|| Status::unauthenticated("missing credentials: send metadata `authorization: Bearer <token>`"))?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated("malformed authorization metadata: expected `Bearer <token>`"))
}

impl Caller {
    /// Whether this caller may call `path`, which needs one of `needed`: PERMISSION_DENIED
    /// naming the scope if not.
    pub fn permit(&self, needed: &[&str], path: &str) -> Result<(), Status> {
        if self.may(needed) {
            return Ok(());
        }
        let method = path.rsplit('/').next().unwrap_or(path);
        Err(Status::permission_denied(format!(
            "token {:?} may not call {method}: it needs scope {}",
            self.name,
            needed.join(" or ")
        )))
    }
}
