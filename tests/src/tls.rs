//! A throwaway private CA and a server certificate for `localhost` / `127.0.0.1`, written as PEM
//! files, for the tests of the gateway's HTTPS and the console's per-EP CA pinning.

use std::path::{Path, PathBuf};

/// The PEM files of a test PKI.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate (signed by the CA).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TestPki {
    /// Make a CA and a server certificate in `dir`.
    pub fn new(dir: &Path) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Countersign test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let leaf_key = rcgen::KeyPair::generate().expect("server key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("server certificate");
        let pki = TestPki { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        std::fs::write(&pki.ca, ca.pem()).expect("write CA");
        std::fs::write(&pki.cert, leaf.pem()).expect("write certificate");
        std::fs::write(&pki.key, leaf_key.serialize_pem()).expect("write key");
        pki
    }

    /// The gateway flags that serve HTTPS with this certificate.
    pub fn serve_flags(&self) -> [&str; 4] {
        ["--tls-cert", self.cert.to_str().expect("utf-8"), "--tls-key", self.key.to_str().expect("utf-8")]
    }

    /// An HTTP client that trusts this CA.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).expect("read CA");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"))
            .build()
            .expect("client")
    }
}
