//! Test certificates made on the spot with rcgen (a CA, leaves signed by it, keystore files
//! in Kafka's one-PEM-file layout) and rustls client configs and streams over them.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{Client, IO_TIMEOUT};

/// A blocking Kafka client over TLS.
pub type TlsClient = Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// A certificate authority of one test.
pub struct TestCa {
    /// Its certificate, PEM.
    pub pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    /// Kafka's keystore file layout: the private key, then the certificate chain.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        TestCa {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A leaf for `localhost` and 127.0.0.1, usable as a server and as a client.
    pub fn leaf(&self, common_name: &str) -> Leaf {
        self.leaf_with(common_name, false)
    }

    /// [`TestCa::leaf`] valid only in 2020: expired, otherwise sound.
    pub fn expired_leaf(&self, common_name: &str) -> Leaf {
        self.leaf_with(common_name, true)
    }

    fn leaf_with(&self, common_name: &str, expired: bool) -> Leaf {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Write a broker keystore (key + chain) for a fresh leaf and this CA's certificate as a
    /// truststore into `dir`; returns (keystore, truststore) paths.
    pub fn write_files(&self, dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
        let keystore = dir.join(format!("{prefix}-broker.pem"));
        let truststore = dir.join(format!("{prefix}-ca.pem"));
        std::fs::write(&keystore, self.leaf("broker").keystore_pem()).expect("write keystore");
        std::fs::write(&truststore, &self.pem).expect("write truststore");
        (keystore, truststore)
    }
}

/// A rustls client config trusting `ca_pem`, presenting `identity` if given.
pub fn client_config(ca_pem: &str, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(weir::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("leaf PEM");
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
    };
    Arc::new(config)
}

/// Connect and finish a TLS handshake with `address` as `localhost`; Err if the handshake
/// fails.
pub fn try_tls_connect(
    address: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsClient> {
    let tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let connection = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Client::over(stream))
}

/// [`try_tls_connect`] that must succeed.
pub fn tls_connect(address: &str, config: Arc<rustls::ClientConfig>) -> TlsClient {
    try_tls_connect(address, config).expect("TLS handshake")
}
