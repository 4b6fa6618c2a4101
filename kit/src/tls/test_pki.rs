//! Test-only: a throwaway certificate authority with a server and a client certificate, as
//! PEM files in a directory of their own (rcgen).

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// The files of one throwaway PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a PEM file");
    path
}

/// A CA named `name`, a server certificate for `hosts` and a client certificate `client`,
/// under a fresh directory in the system's temporary directory.
pub fn pki(name: &str, hosts: &[&str]) -> Pki {
    let dir =
        std::env::temp_dir().join(format!("orderflow-pki-{name}-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create the PKI directory");
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &issuer).expect("a certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) =
        leaf(hosts.iter().map(|h| (*h).to_owned()).collect(), ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(vec!["orderflow-client".into()], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: write(&dir, "ca.pem", &ca_cert.pem()),
        server_cert: write(&dir, "server.pem", &server_cert),
        server_key: write(&dir, "server-key.pem", &server_key),
        client_cert: write(&dir, "client.pem", &client_cert),
        client_key: write(&dir, "client-key.pem", &client_key),
        dir,
    }
}
