//! Test-only: an identity provider of one Ed25519 key, its JWKS in a file, and the JWTs it
//! signs.

use super::jwt::{JwksSource, JwtSettings, JwtVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

pub const ISSUER: &str = "https://id.orderflow.test";
pub const AUDIENCE: &str = "orderflow";

/// An Ed25519 signing key from `seed`, and its public JWK (no `kid`).
pub fn ed_key(seed: u8) -> (EncodingKey, Value) {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let der = signing.to_pkcs8_der().expect("a PKCS#8 key");
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    (EncodingKey::from_ed_der(der.as_bytes()), json!({"kty": "OKP", "crv": "Ed25519", "x": x, "use": "sig"}))
}

/// Claims from [`ISSUER`] for [`AUDIENCE`]: `sub` with `scope`, valid for ten minutes; `extra`
/// claims replace or add to those (a null removes one).
pub fn claims(sub: &str, scope: &str, extra: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "scope": scope});
    for (name, value) in extra.as_object().expect("claims as an object") {
        match value {
            Value::Null => claims.as_object_mut().expect("an object").remove(name),
            value => claims.as_object_mut().expect("an object").insert(name.clone(), value.clone()),
        };
    }
    claims
}

/// An identity provider publishing one key, `kid`, in a JWKS file of its own.
pub struct TestIssuer {
    key: EncodingKey,
    pub kid: String,
    pub jwks: PathBuf,
}

impl TestIssuer {
    pub fn new(kid: &str, seed: u8) -> Self {
        let (key, mut jwk) = ed_key(seed);
        jwk["kid"] = json!(kid);
        let jwks = std::env::temp_dir().join(format!("orderflow-jwks-{kid}-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string()).expect("write the JWKS");
        Self { key, kid: kid.to_owned(), jwks }
    }

    /// What the services check: this issuer's key set, issuer and audience.
    pub fn settings(&self) -> JwtSettings {
        JwtSettings { source: JwksSource::File(self.jwks.clone()), issuer: ISSUER.into(), audience: AUDIENCE.into() }
    }

    pub fn verifier(&self) -> Arc<JwtVerifier> {
        JwtVerifier::new(self.settings(), reqwest::Client::new())
    }

    /// A JWT for `sub` with `scope`, valid for ten minutes; `extra` claims replace or add to
    /// those (a null removes one).
    pub fn token(&self, sub: &str, scope: &str, extra: Value) -> String {
        self.sign_as(&self.kid, &self.claims(sub, scope, extra))
    }

    /// The claims [`TestIssuer::token`] signs ([`claims`]).
    pub fn claims(&self, sub: &str, scope: &str, extra: Value) -> Value {
        claims(sub, scope, extra)
    }

    /// `claims` signed by this issuer's key under the key id `kid` (another id than its own
    /// makes a token of an unknown key).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let header = Header { kid: Some(kid.to_owned()), ..Header::new(Algorithm::EdDSA) };
        jsonwebtoken::encode(&header, claims, &self.key).expect("a signed JWT")
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jwks);
    }
}
