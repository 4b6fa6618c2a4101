use super::*;
use crate::auth::test_issuer::{self, AUDIENCE, ISSUER, ed_key};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

fn ec_key() -> (EncodingKey, Value) {
    use p256::pkcs8::EncodePrivateKey as _;
    let signing = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
    let der = signing.to_pkcs8_der().unwrap();
    let point = signing.verifying_key().to_encoded_point(false);
    let (x, y) = (URL_SAFE_NO_PAD.encode(point.x().unwrap()), URL_SAFE_NO_PAD.encode(point.y().unwrap()));
    (EncodingKey::from_ec_der(der.as_bytes()), json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256"}))
}

fn with_kid(mut jwk: Value, kid: &str) -> Value {
    jwk["kid"] = json!(kid);
    jwk
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Alice's claims with scopes of ours and one not, changed by `extra`.
fn claims(extra: Value) -> Value {
    test_issuer::claims("alice", "orders:read openid orders:write", extra)
}

fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let header = Header { kid: Some(kid.to_owned()), ..Header::new(alg) };
    encode(&header, claims, key).unwrap()
}

fn key_file(name: &str, keys: &[Value]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("orderflow-jwks-{name}-{}.json", std::process::id()));
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    path
}

fn verifier(source: JwksSource) -> Arc<JwtVerifier> {
    let settings = JwtSettings { source, issuer: ISSUER.into(), audience: AUDIENCE.into() };
    JwtVerifier::new(settings, reqwest::Client::new())
}

/// An Ed25519 key `ed` alone in a key set file named after `name`, and its verifier.
fn one_ed_key(name: &str) -> (EncodingKey, PathBuf, Arc<JwtVerifier>) {
    let (ed, jwk) = ed_key(7);
    let path = key_file(name, &[with_kid(jwk, "ed")]);
    let verifier = verifier(JwksSource::File(path.clone()));
    (ed, path, verifier)
}

async fn refused(verifier: &JwtVerifier, token: &str) -> String {
    let status = verifier.verify(token).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    status.message().to_owned()
}

#[tokio::test]
async fn a_good_token_gives_its_subject_and_the_scopes_this_system_knows() {
    let ((ed, ed_jwk), (ec, ec_jwk)) = (ed_key(7), ec_key());
    let path = key_file("good", &[with_kid(ed_jwk, "ed"), with_kid(ec_jwk, "ec")]);
    let verifier = verifier(JwksSource::File(path.clone()));
    let caller = verifier.verify(&sign(&ed, Algorithm::EdDSA, "ed", &claims(json!({})))).await.unwrap();
    assert_eq!(caller.name, "jwt:alice");
    assert_eq!(caller.scopes, ["orders:read", "orders:write"], "openid is not ours and is left out");
    assert_eq!(caller.binding, None);
    let bound = sign(&ec, Algorithm::ES256, "ec", &claims(json!({"customer_id": "cust-1"})));
    assert_eq!(verifier.verify(&bound).await.unwrap().binding, Some(Binding::Customer("cust-1".into())));
    let carrier = sign(&ec, Algorithm::ES256, "ec", &claims(json!({"carrier": "DPD"})));
    assert_eq!(verifier.verify(&carrier).await.unwrap().binding, Some(Binding::Carrier("DPD".into())));
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn expired_early_foreign_and_incomplete_tokens_are_refused_with_the_reason() {
    let (ed, path, verifier) = one_ed_key("claims");
    let token = |extra| sign(&ed, Algorithm::EdDSA, "ed", &claims(extra));
    assert!(refused(&verifier, &token(json!({"exp": now() - 120}))).await.contains("expired"));
    assert!(refused(&verifier, &token(json!({"nbf": now() + 600}))).await.contains("not valid yet"));
    assert!(refused(&verifier, &token(json!({"aud": "another-system"}))).await.contains("another audience"));
    assert!(refused(&verifier, &token(json!({"iss": "https://evil.example"}))).await.contains("another issuer"));
    assert!(refused(&verifier, &token(json!({"exp": null}))).await.contains("\"exp\""));
    let no_sub = refused(&verifier, &token(json!({"sub": null}))).await;
    assert!(no_sub.contains("\"sub\""), "{no_sub}");
    let both = token(json!({"customer_id": "c", "carrier": "DPD"}));
    assert!(refused(&verifier, &both).await.contains("both"));
    assert!(refused(&verifier, &token(json!({"customer_id": ""}))).await.contains("1 to 64"));
    assert!(refused(&verifier, "eyJ.not.atoken").await.contains("malformed"));
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn only_a_key_of_the_set_with_its_own_algorithm_verifies() {
    let ((ed, jwk), (stranger, _)) = (ed_key(7), ed_key(9));
    let path = key_file("keys", &[with_kid(jwk.clone(), "ed")]);
    let verifier = verifier(JwksSource::File(path.clone()));
    let good = claims(json!({}));
    let forged = sign(&stranger, Algorithm::EdDSA, "ed", &good);
    assert!(refused(&verifier, &forged).await.contains("signature"), "another key under a known kid");
    let unknown = sign(&stranger, Algorithm::EdDSA, "elsewhere", &good);
    assert!(refused(&verifier, &unknown).await.contains("does not publish"));
    let no_kid = encode(&Header::new(Algorithm::EdDSA), &good, &ed).unwrap();
    assert!(refused(&verifier, &no_kid).await.contains("kid"));
    // The classic confusion: an HMAC token keyed with the public key's bytes.
    let public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let confused = sign(&EncodingKey::from_secret(&public).unwrap(), Algorithm::HS256, "ed", &good);
    assert!(refused(&verifier, &confused).await.contains("algorithm"));
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn an_unknown_key_id_reads_the_set_again_at_most_once_per_interval() {
    let ((old, old_jwk), (new, new_jwk)) = (ed_key(7), ed_key(8));
    let path = key_file("rotate", &[with_kid(old_jwk.clone(), "old")]);
    let verifier = verifier(JwksSource::File(path.clone()));
    assert!(verifier.verify(&sign(&old, Algorithm::EdDSA, "old", &claims(json!({})))).await.is_ok());
    std::fs::write(&path, json!({"keys": [with_kid(old_jwk, "old"), with_kid(new_jwk, "new")]}).to_string()).unwrap();
    let rotated = sign(&new, Algorithm::EdDSA, "new", &claims(json!({})));
    assert!(verifier.verify(&rotated).await.is_err(), "read {MIN_REFRESH:?} ago at most: not again yet");
    *verifier.refreshed.lock().await = Instant::now().checked_sub(MIN_REFRESH);
    assert_eq!(verifier.verify(&rotated).await.unwrap().name, "jwt:alice", "the new key is read");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_key_set_keeps_only_signing_keys_with_an_id_and_a_known_algorithm() {
    let (_, ed) = ed_key(7);
    let secret = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
    let encryption = with_kid(json!({"kty": "OKP", "crv": "Ed25519", "x": ed["x"], "use": "enc"}), "enc");
    let mislabelled = with_kid(json!({"kty": "OKP", "crv": "Ed25519", "x": ed["x"], "alg": "RS256"}), "odd");
    let set = json!({"keys": [secret, encryption, mislabelled, ed.clone(), with_kid(ed, "ed")]}).to_string();
    let keys = parse_key_set(set.as_bytes()).unwrap();
    assert_eq!(keys.keys().collect::<Vec<_>>(), ["ed"]);
    assert!(parse_key_set(br#"{"keys": []}"#).unwrap_err().contains("no usable signing key"));
    assert!(parse_key_set(b"<html>").unwrap_err().contains("not a JWKS"));
}

#[tokio::test]
async fn a_key_set_url_is_fetched_and_a_failed_fetch_keeps_the_keys() {
    use axum::routing::get;
    let (ed, jwk) = ed_key(7);
    let body = json!({"keys": [with_kid(jwk, "ed")]}).to_string();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let serving = Arc::clone(&up);
    let app = axum::Router::new().route(
        "/jwks",
        get(move || {
            let (up, body) = (serving.load(std::sync::atomic::Ordering::SeqCst), body.clone());
            async move { if up { Ok(body) } else { Err(axum::http::StatusCode::SERVICE_UNAVAILABLE) } }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let verifier = verifier(JwksSource::Url(url));
    assert_eq!(verifier.refresh().await, Ok(1));
    up.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(verifier.refresh().await.unwrap_err().contains("503"));
    assert!(verifier.verify(&sign(&ed, Algorithm::EdDSA, "ed", &claims(json!({})))).await.is_ok());
}

#[test]
fn only_three_part_tokens_are_taken_for_jwts() {
    assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln"));
    assert!(!looks_like_jwt("dev-admin-3f9a"));
    assert!(!looks_like_jwt("eyJ.only-two"));
}

#[tokio::test]
async fn a_jwt_never_holds_every_scope_and_an_unsigned_one_is_refused() {
    let (ed, path, verifier) = one_ed_key("star");
    let star = sign(&ed, Algorithm::EdDSA, "ed", &claims(json!({"scope": "* orders:read"})));
    assert_eq!(verifier.verify(&star).await.unwrap().scopes, ["orders:read"]);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"ed"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    assert!(verifier.verify(&format!("{header}.{body}.")).await.is_err(), "alg none");
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn keys_that_cannot_be_read_again_for_too_long_verify_nothing() {
    let (ed, path, verifier) = one_ed_key("stale");
    let token = sign(&ed, Algorithm::EdDSA, "ed", &claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    std::fs::remove_file(&path).unwrap(); // the provider is gone
    *verifier.read_at.write().unwrap() = Instant::now().checked_sub(MAX_KEY_AGE);
    *verifier.refreshed.lock().await = None;
    assert!(refused(&verifier, &token).await.contains("does not publish"), "stale keys are not used");
}

/// An RSA signing key made by the openssl command (PKCS#1 DER) and its public JWK.
fn rsa_key() -> (EncodingKey, Value) {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("orderflow-rsa-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pem, der) = (dir.join("key.pem"), dir.join("key.der"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("the openssl command");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem.to_str().unwrap()]);
    run(&["rsa", "-in", pem.to_str().unwrap(), "-traditional", "-outform", "DER", "-out", der.to_str().unwrap()]);
    let modulus = run(&["rsa", "-in", pem.to_str().unwrap(), "-noout", "-modulus"]);
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let key = EncodingKey::from_rsa_der(&std::fs::read(&der).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
    (key, json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB", "alg": "RS256"}))
}

#[tokio::test]
async fn an_rs256_token_verifies_and_another_rsa_algorithm_on_its_key_does_not() {
    let (rsa, jwk) = rsa_key();
    let path = key_file("rsa", &[with_kid(jwk, "rsa")]);
    let verifier = verifier(JwksSource::File(path.clone()));
    assert_eq!(
        verifier.verify(&sign(&rsa, Algorithm::RS256, "rsa", &claims(json!({})))).await.unwrap().name,
        "jwt:alice"
    );
    let other = sign(&rsa, Algorithm::PS256, "rsa", &claims(json!({})));
    assert!(refused(&verifier, &other).await.contains("algorithm"), "PS256 on an RS256 key");
    std::fs::remove_file(path).unwrap();
}
