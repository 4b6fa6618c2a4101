use super::*;
use crate::tls::ClientTls;
use crate::tls::test_pki::{Pki, pki};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A health server over TLS with `files`, on a free port of the loopback.
async fn serve(files: ServerTlsFiles) -> (String, Arc<ReloadingAcceptor>, CancellationToken) {
    let acceptor = ReloadingAcceptor::new(files).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let shutdown = CancellationToken::new();
    let incoming = Arc::clone(&acceptor).incoming(listener, shutdown.clone());
    let (_, health) = tonic_health::server::health_reporter();
    let router = tonic::transport::Server::builder().add_service(health);
    tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()));
    (addr, acceptor, shutdown)
}

fn files(pki: &Pki, mtls: bool) -> ServerTlsFiles {
    ServerTlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: mtls.then(|| pki.ca.clone()),
    }
}

fn client(ca: &Pki, identity: Option<&Pki>) -> ClientTls {
    ClientTls {
        ca_file: Some(ca.ca.clone()),
        identity: identity.map(|p| (p.client_cert.clone(), p.client_key.clone())),
    }
}

/// Whether a health check over `addr` with `tls` is answered.
async fn answered(tls: &ClientTls, addr: &str) -> bool {
    let Ok(endpoint) = tls.endpoint(addr) else { return false };
    let Ok(channel) = endpoint.connect_timeout(Duration::from_secs(5)).connect().await else { return false };
    HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.is_ok()
}

#[tokio::test]
async fn only_clients_that_trust_the_ca_get_an_answer() {
    let (ours, theirs) = (pki("ours", &["localhost"]), pki("theirs", &["localhost"]));
    let (addr, _, shutdown) = serve(files(&ours, false)).await;
    assert!(answered(&client(&ours, None), &addr).await);
    assert!(!answered(&client(&theirs, None), &addr).await, "a client trusting another CA");
    assert!(!answered(&ClientTls::default(), &addr.replace("https", "http")).await, "a plaintext client");
    shutdown.cancel();
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificate_get_in() {
    let (ours, theirs) = (pki("mtls", &["localhost"]), pki("stranger", &["localhost"]));
    let (addr, _, shutdown) = serve(files(&ours, true)).await;
    assert!(answered(&client(&ours, Some(&ours)), &addr).await);
    assert!(!answered(&client(&ours, None), &addr).await, "no client certificate");
    assert!(!answered(&client(&ours, Some(&theirs)), &addr).await, "a certificate of another CA");
    shutdown.cancel();
}

#[tokio::test]
async fn a_changed_certificate_is_served_without_a_restart_and_a_bad_one_changes_nothing() {
    let (first, second) = (pki("first", &["localhost"]), pki("second", &["localhost"]));
    let live = pki("live", &["localhost"]);
    for (from, to) in [(&first.server_cert, &live.server_cert), (&first.server_key, &live.server_key)] {
        std::fs::copy(from, to).unwrap();
    }
    let (addr, acceptor, shutdown) = serve(files(&live, false)).await;
    assert!(answered(&client(&first, None), &addr).await);
    let before = acceptor.files.stamps();
    std::fs::write(&live.server_key, "not a key").unwrap();
    assert_ne!(acceptor.files.stamps(), before, "a change is seen");
    assert!(acceptor.reload().is_err());
    assert!(answered(&client(&first, None), &addr).await, "the certificate in force stays");
    for (from, to) in [(&second.server_cert, &live.server_cert), (&second.server_key, &live.server_key)] {
        std::fs::copy(from, to).unwrap();
    }
    acceptor.reload().unwrap();
    assert!(answered(&client(&second, None), &addr).await, "the new certificate is served");
    assert!(!answered(&client(&first, None), &addr).await);
    shutdown.cancel();
}

#[test]
fn files_that_cannot_be_used_are_named() {
    let ours = pki("broken", &["localhost"]);
    let mut broken = files(&ours, false);
    broken.key = ours.dir.join("missing.pem");
    assert_eq!(broken.load().unwrap_err().setting, "TLS_KEY_FILE");
    let mismatched = ServerTlsFiles { key: ours.client_key.clone(), ..files(&ours, false) };
    assert!(mismatched.load().unwrap_err().reason.contains("does not go with"));
}

#[tokio::test]
async fn silent_connections_do_not_hold_up_a_client() {
    let ours = pki("silent", &["localhost"]);
    let (addr, _, shutdown) = serve(files(&ours, false)).await;
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap()); // never says hello
    }
    assert!(answered(&client(&ours, None), &addr).await);
    drop(silent);
    shutdown.cancel();
}
