//! JSON Web Tokens from an identity provider, beside the token file: signed with RS256, ES256
//! or EdDSA by a key of a JWKS read from a file (`AUTH_JWKS_FILE`) or fetched from a URL
//! (`AUTH_JWKS_URL`), with the issuer (`AUTH_JWT_ISSUER`), the audience (`AUTH_JWT_AUDIENCE`),
//! the expiry and the not-before checked. Scopes come from the standard space-separated
//! `scope` claim (scopes this system does not know are ignored); `customer_id` or `carrier`
//! binds the caller as the token file's fourth field does.
//!
//! The key set is cached; a token signed by a key id it does not hold makes it read the set
//! again (at most once per [`MIN_REFRESH`], so tokens with made-up key ids cannot hammer the
//! identity provider), and it is read again every [`REFRESH_EVERY`] so retired keys go. Only a
//! key of the set verifies a token: the header's `jku`/`jwk`/`x5u` are never followed, and the
//! header's algorithm must be the key's own.

use super::{Binding, Caller, scope};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tonic::Status;

/// Shortest time between two reads of the key set prompted by unknown key ids.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// How often the key set is read again in any case.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// Longest the keys last read are used while the set cannot be read again: past it, JWTs are
/// refused until it can (a retired key must not live on because the provider is unreachable).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Largest key set accepted, in bytes.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

/// What a JWT must satisfy, as configured.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub source: JwksSource,
    pub issuer: String,
    pub audience: String,
}

/// A verification key of the set, with the one algorithm it verifies.
#[derive(Clone)]
struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// The JWT verifier: the settings and the cached key set.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: RwLock<Arc<HashMap<String, Key>>>,
    /// When the keys in force were read.
    read_at: RwLock<Option<Instant>>,
    /// When the set was last read (held across a read, so concurrent refreshes wait for one).
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The claims this system reads.
#[derive(Debug, serde::Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    scope: String,
    customer_id: Option<String>,
    carrier: Option<String>,
}

impl JwtVerifier {
    /// A verifier whose key set is read at its first use (or by [`JwtVerifier::refresh`]).
    pub fn new(settings: JwtSettings, http: reqwest::Client) -> Arc<Self> {
        Arc::new(Self {
            settings,
            keys: RwLock::new(Arc::default()),
            read_at: RwLock::new(None),
            refreshed: tokio::sync::Mutex::new(None),
            http,
        })
    }

    /// Reads the key set now; the keys in force change only if it is good.
    pub async fn refresh(&self) -> Result<usize, String> {
        let mut refreshed = self.refreshed.lock().await;
        self.read_keys(&mut refreshed).await
    }

    async fn read_keys(&self, refreshed: &mut Option<Instant>) -> Result<usize, String> {
        *refreshed = Some(Instant::now());
        let text = match &self.settings.source {
            JwksSource::File(path) => {
                tokio::fs::read(path).await.map_err(|e| format!("key set {}: {e}", path.display()))?
            }
            JwksSource::Url(url) => self.fetch(url).await.map_err(|e| format!("key set {url}: {e}"))?,
        };
        let keys = parse_key_set(&text)?;
        let count = keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        *self.read_at.write().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(count)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
        }
        Ok(body)
    }

    /// Reads the key set again every [`REFRESH_EVERY`] until `shutdown`.
    pub async fn refresh_periodically(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            match self.refresh().await {
                Ok(count) => tracing::debug!(count, "JWT key set read"),
                Err(error) => tracing::error!(%error, "JWT key set not read; the keys in force stay"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(REFRESH_EVERY) => {}
            }
        }
    }

    /// The key `kid` names, reading the set again if it is not there (rate-limited).
    async fn key(&self, kid: &str) -> Option<Key> {
        let cached = |verifier: &Self| {
            let fresh = verifier
                .read_at
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < MAX_KEY_AGE);
            fresh.then(|| verifier.keys.read().unwrap_or_else(PoisonError::into_inner).get(kid).cloned()).flatten()
        };
        if let Some(key) = cached(self) {
            return Some(key);
        }
        let mut refreshed = self.refreshed.lock().await;
        if let Some(key) = cached(self) {
            return Some(key); // another call read the set meanwhile
        }
        if refreshed.is_none_or(|at| at.elapsed() >= MIN_REFRESH)
            && let Err(error) = self.read_keys(&mut refreshed).await
        {
            tracing::warn!(%error, "JWT key set not read on an unknown key id");
        }
        cached(self)
    }

    /// The caller a JWT stands for, or why it is refused (always UNAUTHENTICATED).
    pub async fn verify(&self, token: &str) -> Result<Caller, Status> {
        let refuse = |why: &str| Status::unauthenticated(format!("JWT refused: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("malformed header"))?;
        let kid = header.kid.ok_or_else(|| refuse("its header names no key id (kid)"))?;
        let key =
            self.key(&kid).await.ok_or_else(|| refuse("signed by a key the identity provider does not publish"))?;
        if header.alg != key.algorithm {
            return Err(refuse(&format!("algorithm {:?} is not its key's ({:?})", header.alg, key.algorithm)));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| refuse(&reason(e.kind())))?.claims;
        caller(claims).map_err(|why| refuse(&why))
    }
}

fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "it is for another audience".into(),
        ErrorKind::InvalidIssuer => "it is from another issuer".into(),
        ErrorKind::InvalidSignature => "its signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "its algorithm is not its key's".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("claim {claim:?} is missing"),
        ErrorKind::InvalidClaimFormat(claim) => format!("claim {claim:?} is malformed"),
        _ => "malformed token".into(),
    }
}

fn caller(claims: Claims) -> Result<Caller, String> {
    let binding = match (claims.customer_id, claims.carrier) {
        (None, None) => None,
        (Some(customer), None) => Some(Binding::Customer(customer)),
        (None, Some(carrier)) => Some(Binding::Carrier(carrier)),
        (Some(_), Some(_)) => return Err("it binds both a customer_id and a carrier".into()),
    };
    if let Some(Binding::Customer(value) | Binding::Carrier(value)) = &binding
        && (value.is_empty() || value.len() > 64)
    {
        return Err("its customer_id or carrier must be 1 to 64 characters".into());
    }
    if claims.sub.is_empty() || claims.sub.len() > 256 {
        return Err("its sub must be 1 to 256 characters".into());
    }
    // `*` is the token file's alone: an identity provider's token never holds every scope.
    let scopes = claims
        .scope
        .split_whitespace()
        .filter(|s| *s != scope::ALL && scope::KNOWN.contains(s))
        .map(str::to_owned)
        .collect();
    // The prefix keeps a JWT subject apart from a token file name (idempotency keys are per caller).
    Ok(Caller { name: format!("jwt:{}", claims.sub), scopes, binding })
}

/// A JWKS document, each key read on its own (a key of a kind this library does not know
/// leaves only that key out).
#[derive(serde::Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// The signing keys of a JWKS document, by key id, each with its one algorithm. Keys for
/// encryption, without a key id, or of another kind (HMAC secrets among them) are left out.
fn parse_key_set(text: &[u8]) -> Result<HashMap<String, Key>, String> {
    let set: KeySet = serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in set.keys.into_iter().filter_map(|key| serde_json::from_value::<Jwk>(key).ok()) {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        match signing_key(&jwk) {
            Ok(key) => {
                keys.insert(kid, key);
            }
            Err(why) => tracing::warn!(kid, why, "JWKS key left out"),
        }
    }
    if keys.is_empty() {
        return Err("the key set holds no usable signing key (RS256, ES256 or EdDSA, each with a kid)".into());
    }
    Ok(keys)
}

fn signing_key(jwk: &Jwk) -> Result<Key, String> {
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return Err("not an RSA, P-256 or Ed25519 key".into()),
    };
    let declared = jwk.common.key_algorithm;
    let agrees = match declared {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => algorithm == Algorithm::EdDSA,
        Some(_) => false,
    };
    if !agrees {
        return Err(format!("its alg {declared:?} is not RS256, ES256 or EdDSA for its key type"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(Key { algorithm, key })
}

/// Whether a bearer token is a JWT (three base64url parts) rather than a token file's token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
