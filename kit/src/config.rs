//! Configuration from environment variables, with the defaults documented in the README.

use crate::auth::Credentials;
use crate::auth::jwt::{JwksSource, JwtSettings, JwtVerifier};
use crate::tls::server::ServerTlsFiles;
use crate::token_file::TokenStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Settings every service shares. Service-specific settings are read by the service itself.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's name: producer field of its events, part of its consumer group's name.
    pub service: &'static str,
    /// `DATABASE_URL`: the service's own PostgreSQL database.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS` (default 10): the pool for API calls.
    pub database_max_connections: u32,
    /// `DATABASE_CONSUMER_CONNECTIONS` (default 5): the pool for consumers, the outbox relay
    /// and background workers.
    pub database_consumer_connections: u32,
    /// `KAFKA_BROKERS` (default `127.0.0.1:9092`).
    pub kafka_brokers: String,
    /// `GRPC_ADDR` (default `0.0.0.0:<the service's port>`); port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// `TOPIC_NAMESPACE` (default `orderflow`): prefix of every topic and consumer group name.
    pub topic_namespace: String,
    /// `TOPIC_PARTITIONS` (default 6): partitions of topics this service creates.
    pub topic_partitions: i32,
    /// `TOPIC_REPLICATION` (default 1).
    pub topic_replication: i32,
    /// `CONSUMER_BATCH_SIZE` (default 256): most events applied in one transaction.
    pub consumer_batch_size: usize,
    /// `OUTBOX_BATCH_SIZE` (default 512): most outbox rows published at once.
    pub outbox_batch_size: i64,
    /// `KAFKA_LINGER_MS` (default 1).
    pub kafka_linger: Duration,
    /// `KAFKA_FETCH_WAIT_MS` (default 10): longest a consumer's fetch waits for data.
    pub kafka_fetch_wait: Duration,
    /// `METRICS_ADDR` (default [`default_metrics_addr`]: the gRPC host, port 91xx with xx the
    /// gRPC port's last two digits; `off` disables): where Prometheus scrapes `/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// `AUTH_TOKENS_FILE` (required unless JWTs are configured): the API tokens and their
    /// scopes (see [`crate::auth`]), re-read on SIGHUP; and JWTs from an identity provider
    /// (`AUTH_JWKS_FILE` or `AUTH_JWKS_URL`, with `AUTH_JWT_ISSUER` and `AUTH_JWT_AUDIENCE`).
    pub credentials: Credentials,
    /// `TLS_CERT_FILE`, `TLS_KEY_FILE`, `TLS_CLIENT_CA_FILE`: gRPC over TLS (see [`crate::tls`]).
    pub tls: Option<ServerTlsFiles>,
}

/// A variable that is set but cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    reason: String,
}

impl Config {
    /// Reads the configuration of `service`, whose gRPC port defaults to `default_port` and
    /// database to `default_database` (on 127.0.0.1:5432).
    pub fn from_env(service: &'static str, default_port: u16, default_database: &str) -> Result<Self, ConfigError> {
        let grpc_addr = var("GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], default_port)))?;
        Ok(Self {
            service,
            database_url: var("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{default_database}"))?,
            database_max_connections: var("DATABASE_MAX_CONNECTIONS", 10)?,
            database_consumer_connections: var("DATABASE_CONSUMER_CONNECTIONS", 5)?,
            kafka_brokers: var("KAFKA_BROKERS", "127.0.0.1:9092".to_owned())?,
            grpc_addr,
            topic_namespace: var("TOPIC_NAMESPACE", "orderflow".to_owned())?,
            topic_partitions: var("TOPIC_PARTITIONS", 6)?,
            topic_replication: var("TOPIC_REPLICATION", 1)?,
            consumer_batch_size: var("CONSUMER_BATCH_SIZE", 256)?,
            outbox_batch_size: var("OUTBOX_BATCH_SIZE", 512)?,
            kafka_linger: Duration::from_millis(var("KAFKA_LINGER_MS", 1)?),
            kafka_fetch_wait: Duration::from_millis(var("KAFKA_FETCH_WAIT_MS", 10)?),
            metrics_addr: metrics_addr_from_env(grpc_addr)?,
            credentials: credentials_from_env()?,
            tls: ServerTlsFiles::from_env().map_err(|e| ConfigError {
                name: e.setting,
                value: e.path.display().to_string(),
                reason: e.reason,
            })?,
        })
    }
}

/// The metrics port rule, the one place it is written: 9100 + the gRPC port % 100, on the gRPC
/// address's host (9151-9154 beside 50051-50054; scripts/lib.sh moves both with ORDER_PORT
/// etc. by moving the gRPC address only).
pub fn default_metrics_addr(grpc_addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(grpc_addr.ip(), 9100 + grpc_addr.port() % 100)
}

fn metrics_addr_from_env(grpc_addr: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
    let default = default_metrics_addr(grpc_addr);
    match var("METRICS_ADDR", default.to_string())?.as_str() {
        "off" => Ok(None),
        addr => addr.parse().map(Some).map_err(|e: std::net::AddrParseError| ConfigError {
            name: "METRICS_ADDR",
            value: addr.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// The tokens in `AUTH_TOKENS_FILE` and the JWT settings; neither configured, an unreadable
/// file, a bad line or an empty file stops the service: it never runs open by accident.
fn credentials_from_env() -> Result<Credentials, ConfigError> {
    const NAME: &str = "AUTH_TOKENS_FILE";
    let jwt = jwt_from_env()?;
    let path = var(NAME, String::new())?;
    let error = |reason: String| ConfigError { name: NAME, value: path.clone(), reason };
    let tokens = match (path.is_empty(), &jwt) {
        (true, Some(_)) => TokenStore::fixed(crate::auth::Tokens::default()),
        (true, None) => {
            return Err(error(
                "is not set, nor AUTH_JWKS_FILE or AUTH_JWKS_URL: every call needs a bearer token; see docs/security.md"
                    .into(),
            ));
        }
        (false, _) => TokenStore::from_file(std::path::Path::new(&path)).map_err(error)?,
    };
    Ok(Credentials { tokens, jwt })
}

/// The JWT verifier, when `AUTH_JWKS_FILE` or `AUTH_JWKS_URL` is set; the issuer and the
/// audience are then required. A URL is https, or http on the loopback only.
fn jwt_from_env() -> Result<Option<Arc<JwtVerifier>>, ConfigError> {
    let (file, url) = (var("AUTH_JWKS_FILE", String::new())?, var("AUTH_JWKS_URL", String::new())?);
    let (issuer, audience) = (var("AUTH_JWT_ISSUER", String::new())?, var("AUTH_JWT_AUDIENCE", String::new())?);
    let error = |name, value: &str, reason: &str| ConfigError { name, value: value.to_owned(), reason: reason.into() };
    let source = match (file.is_empty(), url.is_empty()) {
        (true, true) if issuer.is_empty() && audience.is_empty() => return Ok(None),
        (true, true) => return Err(error("AUTH_JWKS_FILE", "", "is not set, nor AUTH_JWKS_URL: JWTs need a key set")),
        (false, false) => return Err(error("AUTH_JWKS_URL", &url, "is set beside AUTH_JWKS_FILE: set one")),
        (false, true) => JwksSource::File(file.into()),
        (true, false) => JwksSource::Url(jwks_url(&url).map_err(|reason| error("AUTH_JWKS_URL", &url, &reason))?),
    };
    for (name, value) in [("AUTH_JWT_ISSUER", &issuer), ("AUTH_JWT_AUDIENCE", &audience)] {
        if value.is_empty() {
            return Err(error(name, "", "is not set: a JWT's issuer and audience are always checked"));
        }
    }
    let http = crate::tls::https_client("orderflow-jwks/1", Duration::from_secs(5))
        .map_err(|e| error("TLS_CA_FILE", "", &e.to_string()))?;
    Ok(Some(JwtVerifier::new(JwtSettings { source, issuer, audience }, http)))
}

/// A key set's URL: https, or http to the loopback only; no user or password in it.
fn jwks_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| e.to_string())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user or password".into());
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url.into()),
        "http" if loopback => Ok(url.into()),
        _ => Err("must be https:// (http only to the loopback)".into()),
    }
}

/// Reads `name`, or `default` when it is unset or empty.
pub fn var<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|e: T::Err| ConfigError { name, value, reason: e.to_string() })
        }
        _ => Ok(default),
    }
}

/// A duration as configured: a number of seconds, or a number with `s`, `m`, `h` or `d`
/// (e.g. `7d`, `90m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub std::time::Duration);

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 7d, 12h, 30m or 45s"))?;
        let seconds = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => return Err(format!("unit {other:?} is not s, m, h or d")),
        };
        Ok(Self(std::time::Duration::from_secs(n.saturating_mul(seconds))))
    }
}

#[cfg(test)]
mod tests {
    use super::{Span, default_metrics_addr};
    use std::time::Duration;

    #[test]
    fn spans_read_seconds_or_a_unit() {
        let span = |s: &str| s.parse::<Span>().map(|s| s.0);
        assert_eq!(span("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(span("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(span(" 45 "), Ok(Duration::from_secs(45)));
        assert!(span("7w").is_err() && span("d").is_err() && span("-1").is_err());
    }

    #[test]
    fn a_key_set_url_is_https_or_loopback_http_without_credentials() {
        assert!(super::jwks_url("https://id.example/jwks").is_ok());
        assert!(super::jwks_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(super::jwks_url("http://localhost:8080/jwks").is_ok());
        for bad in [
            "http://id.example/jwks",
            "http://localhost:@evil.example/jwks",
            "https://u:p@id.example/",
            "file:///etc/jwks",
            "nonsense",
        ] {
            assert!(super::jwks_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_metrics_port_follows_the_grpc_address() {
        let metrics = |grpc: &str| default_metrics_addr(grpc.parse().unwrap()).to_string();
        assert_eq!(metrics("0.0.0.0:50051"), "0.0.0.0:9151");
        assert_eq!(metrics("127.0.0.1:50154"), "127.0.0.1:9154");
    }
}
