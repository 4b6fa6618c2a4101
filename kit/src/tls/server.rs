//! The gRPC server's TLS: the certificate and key (and the client CA, for mTLS) from files,
//! read again when they change; TCP connections handshaken concurrently, each within
//! [`HANDSHAKE_TIMEOUT`], with limits in all and per client address, so slow or silent clients
//! hold nothing but their own connections.

use super::{TlsFileError, path_var, read};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Longest a client may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the files are looked at for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// Most handshakes in progress at once, and from one client address.
pub const MAX_HANDSHAKES: usize = 1024;
pub const MAX_HANDSHAKES_PER_PEER: usize = 32;
/// The first pause after a failed accept (doubling to 1 s while accepts fail).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Where the server's certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    /// From `TLS_CERT_FILE`, `TLS_KEY_FILE` and `TLS_CLIENT_CA_FILE`: none when neither of the
    /// first two is set; one without the other is an error.
    pub fn from_env() -> Result<Option<Self>, TlsFileError> {
        let missing = |setting: &'static str| TlsFileError {
            setting,
            path: PathBuf::new(),
            reason: "is not set: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE".into(),
        };
        let client_ca = path_var("TLS_CLIENT_CA_FILE");
        match (path_var("TLS_CERT_FILE"), path_var("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key, client_ca })),
            (None, None) if client_ca.is_none() => Ok(None),
            (None, _) => Err(missing("TLS_CERT_FILE")),
            (Some(_), None) => Err(missing("TLS_KEY_FILE")),
        }
    }

    /// A rustls server configuration from the files as they are now.
    pub fn load(&self) -> Result<rustls::ServerConfig, TlsFileError> {
        let invalid = |setting, path: &PathBuf, reason: String| TlsFileError { setting, path: path.clone(), reason };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("TLS_CERT_FILE", &self.cert)?)
            .collect::<Result<_, _>>()
            .map_err(|e| invalid("TLS_CERT_FILE", &self.cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("TLS_CERT_FILE", &self.cert, "holds no PEM certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&read("TLS_KEY_FILE", &self.key)?)
            .map_err(|e| invalid("TLS_KEY_FILE", &self.key, e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| invalid("TLS_CERT_FILE", &self.cert, e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&read("TLS_CLIENT_CA_FILE", ca)?) {
                    let cert = cert.map_err(|e| invalid("TLS_CLIENT_CA_FILE", ca, e.to_string()))?;
                    roots.add(cert).map_err(|e| invalid("TLS_CLIENT_CA_FILE", ca, e.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| invalid("TLS_CLIENT_CA_FILE", ca, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| invalid("TLS_KEY_FILE", &self.key, format!("does not go with the certificate: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// When each file last changed (a file that cannot be read counts as a change, so the
    /// next good version is read).
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The TLS configuration in force, read again from its files when they change.
#[derive(Debug)]
pub struct ReloadingAcceptor {
    files: ServerTlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl ReloadingAcceptor {
    /// Reads the files now: a server never starts with TLS it cannot use.
    pub fn new(files: ServerTlsFiles) -> Result<Arc<Self>, TlsFileError> {
        let config = files.load()?;
        Ok(Arc::new(Self { files, current: RwLock::new(Arc::new(config)) }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner)))
    }

    /// Reads the files again; the configuration in force changes only if they are good.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let config = self.files.load()?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// Looks at the files every [`RELOAD_EVERY`] and reads them again when one changed.
    pub async fn reload_on_change(self: Arc<Self>, shutdown: CancellationToken) {
        let mut seen = self.files.stamps();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RELOAD_EVERY) => {}
            }
            let now = self.files.stamps();
            if now == seen {
                continue;
            }
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate read again");
                    seen = now;
                }
                Err(error) => tracing::error!(%error, "TLS files changed but cannot be used; the ones in force stay"),
            }
        }
    }

    /// The TLS connections of `listener`, each handshaken on a task of its own, until
    /// `shutdown` (or until the server stops taking them). Failed handshakes (plaintext
    /// clients, untrusted client certificates) are logged and dropped. At most
    /// [`MAX_HANDSHAKES`] run at once and [`MAX_HANDSHAKES_PER_PEER`] per client address: a
    /// connection over either limit is closed at once, so silent sockets cannot make new
    /// clients wait. An accept that fails (out of file descriptors) is retried after a pause.
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let per_peer = Arc::new(std::sync::Mutex::new(HashMap::<IpAddr, usize>::new()));
        tokio::spawn(async move {
            let mut pause = ACCEPT_PAUSE;
            loop {
                let (stream, peer) = tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = sender.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            tracing::warn!(%error, retry_in = ?pause, "accept failed");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(1));
                            continue;
                        }
                    },
                };
                pause = ACCEPT_PAUSE;
                let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                    tracing::warn!(%peer, "{MAX_HANDSHAKES} TLS handshakes in progress; connection closed");
                    continue;
                };
                let Some(slot) = PeerSlot::take(&per_peer, peer.ip()) else {
                    tracing::debug!(%peer, "too many TLS handshakes from this address; connection closed");
                    continue;
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let (acceptor, sender) = (self.acceptor(), sender.clone());
                tokio::spawn(async move {
                    let _held = (permit, slot);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send(Ok(tls)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

/// One handshake in progress from a client address, counted until dropped.
struct PeerSlot {
    peers: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PeerSlot {
    fn take(peers: &Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<Self> {
        let mut counts = peers.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_default();
        if *count >= MAX_HANDSHAKES_PER_PEER {
            return None;
        }
        *count += 1;
        Some(Self { peers: Arc::clone(peers), ip })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
