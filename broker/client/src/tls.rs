//! TLS for weir-client's connections (`security.protocol` SSL and SASL_SSL): rustls with the
//! ring provider, as the broker uses, and the stream type a connection runs over.
//!
//! [`ClientTls::new`] takes PEM bytes, not paths: reading `ssl.ca.location` and friends is
//! the caller's IO (the CLI's `--command-config`), so this library reads no file. The CA
//! is required; there are no built-in roots (Kafka clusters mostly run private CAs, and a
//! public root store would be a large dependency for the rare other case).
//!
//! Invariants:
//! - The broker's certificate is always verified against the given CAs. With
//!   `verify_hostname == false` (`ssl.endpoint.identification.algorithm=none`, or empty as
//!   in Java) only a name mismatch is forgiven; an unknown issuer, an expired certificate or
//!   a bad signature still fail.
//! - The name checked is the host part of the address dialled (bootstrap entry or the
//!   broker's advertised host), as Kafka's clients do.
//! - Randomness for the handshake comes from ring (the OS), not from the runtime: TLS is
//!   for real networks, the simulators run without it.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why TLS settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// PEM text could not be parsed, or holds no item of the needed kind.
    #[error("{what}: {reason}")]
    BadPem {
        /// Which setting (`ssl.ca.location`, `ssl.certificate.location`, ...).
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material (a key that does not match its certificate, ...).
    #[error("{what}: {reason}")]
    Refused {
        /// Which part.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
}

/// A client certificate and its key (mTLS), PEM.
#[derive(Clone, Copy)]
pub struct TlsIdentity<'a> {
    /// The certificate chain, leaf first (it may be in the same text as the key).
    pub chain_pem: &'a [u8],
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: &'a [u8],
}

/// A TLS client configuration; cheap to clone (connections share it).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    verify_hostname: bool,
    has_identity: bool,
}

impl fmt::Debug for ClientTls {
    // Key material is never printed; the shape is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("verify_hostname", &self.verify_hostname)
            .field("client_certificate", &self.has_identity)
            .finish_non_exhaustive()
    }
}

/// The rustls provider: ring, as the broker's listeners use.
// rustls 0.23.48 deprecates ring for lacking post-quantum key exchange; ring is chosen on
// purpose (no C toolchain, no aws-lc-rs build), see docs/security.md.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// A config trusting the CA certificates in `ca_pem`, presenting `identity` when given,
    /// checking the broker's host name when `verify_hostname`.
    pub fn new(
        ca_pem: &[u8],
        identity: Option<TlsIdentity<'_>>,
        verify_hostname: bool,
    ) -> Result<ClientTls, TlsConfigError> {
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|error| bad_pem("ssl.ca.location", error))?;
            roots.add(cert).map_err(|error| TlsConfigError::Refused {
                what: "ssl.ca.location",
                reason: error.to_string(),
            })?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::BadPem {
                what: "ssl.ca.location",
                reason: "no CERTIFICATE in the PEM text".into(),
            });
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .map_err(|error| TlsConfigError::Refused {
                what: "ssl.ca.location",
                reason: error.to_string(),
            })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsConfigError::Refused {
                what: "TLS versions",
                reason: error.to_string(),
            })?;
        let builder = if verify_hostname {
            builder.with_webpki_verifier(verifier)
        } else {
            let verifier = Arc::new(AnyName::new(verifier));
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
        };
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let (chain, key) = parse_identity(identity)?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    TlsConfigError::Refused {
                        what: "ssl.certificate.location/ssl.key.location",
                        reason: error.to_string(),
                    }
                })?
            }
        };
        Ok(ClientTls {
            config: Arc::new(config),
            verify_hostname,
            has_identity: identity.is_some(),
        })
    }

    /// Whether the broker's host name is checked against its certificate.
    pub fn verify_hostname(&self) -> bool {
        self.verify_hostname
    }

    /// Run the client side of a handshake over `stream` to the broker at `address`
    /// (`host:port`). Errors say what failed, with a hint for the common causes.
    pub(crate) async fn connect<S>(
        &self,
        address: &str,
        stream: S,
    ) -> Result<tokio_rustls::client::TlsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let host = host_of(address);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|error| format!("TLS: {host} is not a valid server name: {error}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        connector
            .connect(name, stream)
            .await
            .map_err(|error| format!("TLS handshake: {error}{}", hint(&error)))
    }
}

fn bad_pem(what: &'static str, error: rustls::pki_types::pem::Error) -> TlsConfigError {
    TlsConfigError::BadPem {
        what,
        reason: error.to_string(),
    }
}

fn parse_identity(
    identity: TlsIdentity<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    const WHAT: &str = "ssl.certificate.location";
    let chain = CertificateDer::pem_slice_iter(identity.chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_pem(WHAT, error))?;
    if chain.is_empty() {
        return Err(TlsConfigError::BadPem {
            what: WHAT,
            reason: "no CERTIFICATE in the PEM text".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem).map_err(|error| {
        TlsConfigError::BadPem {
            what: "ssl.key.location",
            reason: format!("no unencrypted private key: {error}"),
        }
    })?;
    Ok((chain, key))
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => address,
    }
}

/// What to try, for the handshake failures operators meet most.
fn hint(error: &io::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        " (the broker's certificate is not signed by a CA in ssl.ca.location)"
    } else if text.contains("NotValidForName") {
        " (the certificate does not name this host; check the advertised listener, or set \
         ssl.endpoint.identification.algorithm=none to skip the host check)"
    } else if error.kind() == io::ErrorKind::UnexpectedEof
        || error.kind() == io::ErrorKind::ConnectionReset
        || text.contains("InvalidContentType")
        || text.contains("corrupt message")
    {
        " (is this a TLS listener? check security.protocol and the port)"
    } else {
        ""
    }
}

/// With TLS 1.3 the server checks the client's certificate after the client finished its
/// side of the handshake, so a refusal arrives as an alert on the first read: say what it
/// means.
pub(crate) fn explain_refusal(error: crate::ClientError) -> crate::ClientError {
    match error {
        crate::ClientError::Network { broker, reason }
            if reason.contains("CertificateRequired")
                || reason.contains("UnknownCA")
                || reason.contains("BadCertificate") =>
        {
            crate::ClientError::Network {
                broker,
                reason: format!(
                    "{reason} (the listener wants a client certificate its truststore \
                     trusts: set ssl.certificate.location and ssl.key.location)"
                ),
            }
        }
        other => other,
    }
}

/// Verifies the chain like webpki but forgives a host name mismatch only
/// (`ssl.endpoint.identification.algorithm=none`, or empty). webpki checks the name last,
/// after the chain, validity and signatures, so a name error means everything else passed.
/// The broker's peer dials use it too.
#[derive(Debug)]
pub struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
}

impl AnyName {
    /// `inner`'s verification without its host name check.
    pub fn new(inner: Arc<WebPkiServerVerifier>) -> AnyName {
        AnyName { inner }
    }
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A connection's byte stream: the runtime's socket, or TLS over it.
pub(crate) enum Transport<S> {
    /// PLAINTEXT and SASL_PLAINTEXT.
    Plain(S),
    /// SSL and SASL_SSL (boxed: the TLS state is large).
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the checked name is the dialled host, for names, IPv4 and bracketed IPv6.
    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("::1"), "::1");
    }

    // Goal: material that cannot work is refused up front, naming the setting.
    #[test]
    fn refuses_bad_material() {
        let error = ClientTls::new(b"not pem", None, true).expect_err("no CA");
        assert!(error.to_string().starts_with("ssl.ca.location"), "{error}");
    }
}
