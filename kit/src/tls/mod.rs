//! TLS for every connection of ours, with rustls (ring):
//!
//! - gRPC servers ([`server`]): `TLS_CERT_FILE` and `TLS_KEY_FILE` (PEM), and with
//!   `TLS_CLIENT_CA_FILE` a client certificate signed by that CA is required (mTLS); the files
//!   are read again when they change, so certificates rotate without a restart.
//! - Our gRPC clients (orderctl, the load tool, the tests): an `https://` address is reached
//!   over TLS, verified against `ORDERFLOW_CA_FILE` (else the system's web roots), with the
//!   client certificate `ORDERFLOW_CLIENT_CERT_FILE` / `ORDERFLOW_CLIENT_KEY_FILE` when the
//!   server asks for one ([`endpoint`]).
//! - Outbound HTTP (JWKS, webhooks, the payment gateway): [`https_client`], which also trusts
//!   `ORDERFLOW_CA_FILE`.
//!
//! Kafka's TLS and SASL are librdkafka's ([`crate::kafka`]); PostgreSQL's are in the database
//! URL (`sslmode=verify-full&sslrootcert=<ca.pem>`).

pub mod server;
#[cfg(feature = "test-support")]
pub mod test_pki;

use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// `ORDERFLOW_CA_FILE`: the CA our clients trust for https:// addresses.
pub const CA_FILE: &str = "ORDERFLOW_CA_FILE";
/// `ORDERFLOW_CLIENT_CERT_FILE` / `ORDERFLOW_CLIENT_KEY_FILE`: our clients' certificate.
pub const CLIENT_CERT_FILE: &str = "ORDERFLOW_CLIENT_CERT_FILE";
pub const CLIENT_KEY_FILE: &str = "ORDERFLOW_CLIENT_KEY_FILE";

/// A file named by a TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}={}: {reason}", path.display())]
pub struct TlsFileError {
    pub setting: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

fn path_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError { setting, path: path.to_owned(), reason: e.to_string() })
}

/// The client side of our TLS, as configured by [`CA_FILE`] and the client certificate.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_file: Option<PathBuf>,
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// From `ORDERFLOW_CA_FILE`, `ORDERFLOW_CLIENT_CERT_FILE` and `ORDERFLOW_CLIENT_KEY_FILE`
    /// (a certificate without its key, or a key without its certificate, is an error).
    pub fn from_env() -> anyhow::Result<Self> {
        let identity = match (path_var(CLIENT_CERT_FILE), path_var(CLIENT_KEY_FILE)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!("set both {CLIENT_CERT_FILE} and {CLIENT_KEY_FILE}, or neither"),
        };
        Ok(Self { ca_file: path_var(CA_FILE), identity })
    }

    fn tonic_config(&self) -> Result<ClientTlsConfig, TlsFileError> {
        let mut config = ClientTlsConfig::new();
        match &self.ca_file {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(read(CA_FILE, ca)?)),
            None => config = config.with_webpki_roots(),
        }
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(read(CLIENT_CERT_FILE, cert)?, read(CLIENT_KEY_FILE, key)?));
        }
        Ok(config)
    }

    /// A gRPC endpoint for `addr`: plaintext for `http://`, TLS verified as configured for
    /// `https://` (the host name of the address is the name the certificate must hold). An
    /// `http://` address while TLS settings are given is refused: the token would go in clear.
    pub fn endpoint(&self, addr: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(addr.to_owned())?;
        if !addr.starts_with("https://") {
            anyhow::ensure!(
                self.ca_file.is_none() && self.identity.is_none(),
                "{addr} is plaintext while TLS settings ({CA_FILE} or a client certificate) are given: use https://"
            );
            return Ok(endpoint);
        }
        Ok(endpoint.tls_config(self.tonic_config()?)?)
    }
}

/// A gRPC endpoint for `addr` with the TLS settings of the environment ([`ClientTls::from_env`]).
pub fn endpoint(addr: &str) -> anyhow::Result<Endpoint> {
    ClientTls::from_env()?.endpoint(addr)
}

/// The HTTP client of outbound calls: rustls, trusting `ORDERFLOW_CA_FILE` besides the web
/// roots, no redirects followed, a connect timeout and an overall `timeout`.
pub fn https_client(user_agent: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3).min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent);
    if let Some(ca) = path_var(CA_FILE) {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&read(CA_FILE, &ca)?)?);
    }
    Ok(builder.build()?)
}
