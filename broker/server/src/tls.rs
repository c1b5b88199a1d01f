//! TLS for Weir's listeners: PEM key material with Kafka's names, rustls server configs
//! (ring provider, TLS 1.2 and 1.3 only), bounded handshakes and reloads without restart.
//!
//! The config module turns `ssl.*` properties into [`TlsSettings`] (plain data, no IO);
//! [`ServerTls::load`] reads the PEM files and builds a rustls server config, refusing
//! missing files, bad PEM, a key that does not match its certificate and a client-auth
//! setting without a truststore with an error that says which; [`reload_loop`] re-reads the
//! files every few seconds and swaps the config that new connections get.
//!
//! The peer links (broker to broker, `peer.rs`) use one [`ServerTls`] loaded with
//! [`ServerTls::load_peer`]: the same material also builds a rustls *client* config (the
//! keystore as client certificate, the truststore to verify the dialed broker, its host
//! name checked unless `ssl.endpoint.identification.algorithm` is empty), swapped together
//! with the server config on reload.
//!
//! Invariants:
//! - A handshake holds one of [`TLS_HANDSHAKES_MAX`] slots of its listener and lasts at most
//!   the configured timeout: a client that stops mid-handshake is closed, and a flood of
//!   them is refused at accept instead of piling up.
//! - A reload swaps the config only when the new material builds completely; broken new
//!   files are logged and the old certificate keeps serving. Established connections keep
//!   the config they were accepted with.
//! - A PEM file larger than [`PEM_FILE_BYTES_MAX`] is refused, not read into memory.
//! - No key material is ever logged: messages name files and listeners, never contents.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use weir_client::tls::AnyName;
use weir_runtime::Runtime;

/// Handshakes in progress per listener; connections beyond it are closed at once.
pub const TLS_HANDSHAKES_MAX: usize = 1024;
/// Default bound on one TLS handshake (`weir.ssl.handshake.timeout.ms`).
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default interval between two looks at the PEM files (`weir.ssl.reload.interval.ms`).
pub const RELOAD_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
/// Bound on a keystore or truststore file; real ones are a few KiB.
pub const PEM_FILE_BYTES_MAX: u64 = 1 << 20;
/// Read buffer under every TLS session, server and client side ([`buffered_reads`]).
pub const TLS_READ_BUFFER_BYTES: usize = 64 * 1024;

/// A TLS session's stream: reads through [`buffered_reads`].
pub type TlsServerStream<S> = tokio_rustls::server::TlsStream<tokio::io::BufReader<S>>;
/// The client side's, the same way.
pub type TlsClientStream<S> = tokio_rustls::client::TlsStream<tokio::io::BufReader<S>>;

/// `stream` with its reads buffered, for a TLS session on top: rustls asks its transport
/// for at most 4 KiB per read (`read_tls`), so a produce of a few MiB over an unbuffered
/// socket costs a `recv` system call (and a tokio readiness round) per 4 KiB, where a
/// plaintext connection reads up to its 64 KiB buffer at once. Reading the socket in
/// [`TLS_READ_BUFFER_BYTES`] and serving rustls's small reads from memory keeps the
/// system calls per byte what they are without TLS. Writes go straight through (rustls
/// already hands the socket whole records, vectored).
pub fn buffered_reads<S: AsyncRead + AsyncWrite>(stream: S) -> tokio::io::BufReader<S> {
    tokio::io::BufReader::with_capacity(TLS_READ_BUFFER_BYTES, stream)
}

/// Where the broker's private key and certificate chain come from (`ssl.keystore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file holding the private key and the chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` + `ssl.keystore.key`: inline PEM strings.
    Inline {
        /// The certificate chain, leaf first.
        chain: String,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: String,
    },
}

/// Where the trusted CA certificates come from (`ssl.truststore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truststore {
    /// `ssl.truststore.location`: a PEM file of CA certificates.
    File(PathBuf),
    /// `ssl.truststore.certificates`: inline PEM.
    Inline(String),
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for; a client without one is accepted, a bad one is refused.
    Requested,
    /// A client without a certificate trusted by the truststore is refused.
    Required,
}

/// `ssl.enabled.protocols`: a non-empty subset of TLS 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    /// TLSv1.2.
    pub tls12: bool,
    /// TLSv1.3.
    pub tls13: bool,
}

impl Default for TlsVersions {
    fn default() -> Self {
        TlsVersions {
            tls12: true,
            tls13: true,
        }
    }
}

/// Everything a TLS listener needs to know, as configured (no file read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The broker's key and certificate chain.
    pub keystore: Keystore,
    /// CAs that client certificates must chain to.
    pub truststore: Option<Truststore>,
    /// Whether client certificates are asked for.
    pub client_auth: ClientAuth,
    /// Protocol versions offered.
    pub versions: TlsVersions,
}

/// TLS of the peer links: the controller listener's settings, served to inbound peers and
/// presented (same keystore) when dialing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTlsSettings {
    /// The controller listener's name, for logs and errors.
    pub listener: String,
    /// `ssl.*` with `listener.name.<controller>.ssl.*` overrides; `client_auth` is
    /// `Required` unless that listener's own `ssl.client.auth` says otherwise.
    pub tls: TlsSettings,
    /// `ssl.endpoint.identification.algorithm = https` (the default): a dialed broker's
    /// certificate must name the host it was dialed at; empty turns the check off.
    pub verify_hostname: bool,
}

/// Why TLS material was refused or a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    // The OS error is in the message, not a `source`: `{:#}` printing would repeat it.
    #[error("cannot read {what} {path}: {error}")]
    Read {
        /// `ssl.keystore.location` or `ssl.truststore.location`.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A PEM file is implausibly large.
    #[error("{what} {path} is larger than {PEM_FILE_BYTES_MAX} bytes")]
    TooLarge {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: String,
    },
    /// The PEM text could not be parsed, or holds no item of the needed kind.
    #[error("{what} ({origin}): {reason}")]
    BadPem {
        /// Which setting.
        what: &'static str,
        /// The file, or "inline".
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material: most often a key that does not match the certificate.
    #[error("{origin}: {reason}")]
    Refused {
        /// The keystore file, or "inline".
        origin: String,
        /// What rustls said, in words.
        reason: String,
    },
    /// The handshake did not finish in time.
    #[error("TLS handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The handshake failed (not TLS, untrusted certificate, no certificate...).
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// Every handshake slot of the listener is taken.
    #[error("{TLS_HANDSHAKES_MAX} TLS handshakes already in progress")]
    Busy,
}

/// The bytes of every PEM source, as read: compared between two reads to see a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Material {
    keystore: Vec<u8>,
    /// The inline key when the keystore is inline (the file holds both otherwise).
    key: Option<Vec<u8>>,
    truststore: Option<Vec<u8>>,
}

/// A TLS server config that can be swapped while connections are being accepted. Clones
/// share it; listeners with equal settings share one.
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

struct Inner {
    /// The listeners using it, for logs (`SSL`, `gateway`, ...).
    label: String,
    settings: TlsSettings,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The peer links' client side ([`ServerTls::load_peer`]), rebuilt with the server.
    client: Option<ClientSide>,
    material: Mutex<Material>,
}

/// The client config of a peer [`ServerTls`].
struct ClientSide {
    verify_hostname: bool,
    current: RwLock<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("label", &self.inner.label)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// What one look at the files found.
#[derive(Debug)]
pub enum Reload {
    /// The files are as they were.
    Unchanged,
    /// New material was loaded; new connections get it.
    Reloaded,
    /// The files changed but the new material is refused; the old config stays.
    Refused(TlsError),
}

impl ServerTls {
    /// Read and check the material of `settings` (blocking file reads: call from
    /// `Runtime::offload` or at startup). `label` names the users in logs.
    pub fn load(label: &str, settings: &TlsSettings) -> Result<ServerTls, TlsError> {
        let material = read_material(settings)?;
        let config = build(settings, &material)?;
        Ok(ServerTls {
            inner: Arc::new(Inner {
                label: label.to_owned(),
                settings: settings.clone(),
                current: RwLock::new(config),
                client: None,
                material: Mutex::new(material),
            }),
        })
    }

    /// [`ServerTls::load`] for the peer links: also builds the client config dials use
    /// (blocking file reads, as `load`).
    pub fn load_peer(peer: &PeerTlsSettings) -> Result<ServerTls, TlsError> {
        let settings = &peer.tls;
        let material = read_material(settings)?;
        let config = build(settings, &material)?;
        let client = build_client(settings, &material, peer.verify_hostname)?;
        Ok(ServerTls {
            inner: Arc::new(Inner {
                label: format!("controller listener {}", peer.listener),
                settings: settings.clone(),
                current: RwLock::new(config),
                client: Some(ClientSide {
                    verify_hostname: peer.verify_hostname,
                    current: RwLock::new(client),
                }),
                material: Mutex::new(material),
            }),
        })
    }

    /// The client config new peer dials use; `None` unless loaded by
    /// [`ServerTls::load_peer`].
    pub fn current_client(&self) -> Option<Arc<rustls::ClientConfig>> {
        let client = self.inner.client.as_ref()?;
        let current = client.current.read();
        Some(Arc::clone(&current.unwrap_or_else(PoisonError::into_inner)))
    }

    /// Whether dialed peers' certificates must name the dialed host.
    pub fn verifies_hostname(&self) -> bool {
        (self.inner.client.as_ref()).is_some_and(|client| client.verify_hostname)
    }

    /// The settings this was loaded from.
    pub fn settings(&self) -> &TlsSettings {
        &self.inner.settings
    }

    /// Whether any material comes from a file, so that watching for changes makes sense.
    pub fn watches_files(&self) -> bool {
        let settings = &self.inner.settings;
        matches!(settings.keystore, Keystore::File(_))
            || matches!(settings.truststore, Some(Truststore::File(_)))
    }

    /// The config new connections are accepted with.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        let current = self.inner.current.read();
        Arc::clone(&current.unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-read the files; swap the config if they changed and the new material is good
    /// (blocking: call from `Runtime::offload`).
    pub fn reload(&self) -> Reload {
        let material = match read_material(&self.inner.settings) {
            Ok(material) => material,
            Err(error) => return Reload::Refused(error),
        };
        let mut last = self
            .inner
            .material
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last == material {
            return Reload::Unchanged;
        }
        let client = match &self.inner.client {
            None => Ok(None),
            Some(side) => {
                build_client(&self.inner.settings, &material, side.verify_hostname).map(Some)
            }
        };
        let built = build(&self.inner.settings, &material);
        let (config, client) = match built.and_then(|config| Ok((config, client?))) {
            Ok(built) => built,
            Err(error) => {
                // Remember the broken bytes, so the same error is logged once, not every
                // interval; a later fix changes the bytes again and is picked up.
                *last = material;
                return Reload::Refused(error);
            }
        };
        *last = material;
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = config;
        drop(current);
        if let (Some(side), Some(client)) = (&self.inner.client, client) {
            let mut current = side.current.write().unwrap_or_else(PoisonError::into_inner);
            *current = client;
        }
        Reload::Reloaded
    }

    fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }
}

/// A TLS listener's acceptor: the swappable config plus the handshake bound.
#[derive(Debug, Clone)]
pub struct TlsAcceptor {
    tls: ServerTls,
    handshakes: Arc<Semaphore>,
    timeout: Duration,
}

impl TlsAcceptor {
    /// An acceptor over `tls` with its own [`TLS_HANDSHAKES_MAX`] slots.
    pub fn new(tls: ServerTls, timeout: Duration) -> TlsAcceptor {
        TlsAcceptor {
            tls,
            handshakes: Arc::new(Semaphore::new(TLS_HANDSHAKES_MAX)),
            timeout,
        }
    }

    /// Run the server side of a handshake on `stream`, bounded in time and in handshakes
    /// in progress. The stream is dropped (closed) on failure. Every TLS listener (Kafka,
    /// peer links, gateway, HTTP, metrics) reads its socket through [`buffered_reads`].
    pub async fn accept<R, S>(&self, runtime: &R, stream: S) -> Result<TlsServerStream<S>, TlsError>
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Ok(_slot) = self.handshakes.try_acquire() else {
            return Err(TlsError::Busy);
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.current());
        let deadline = runtime.sleep_until(runtime.now() + self.timeout);
        tokio::select! {
            biased;
            accepted = acceptor.accept(buffered_reads(stream)) => {
                accepted.map_err(TlsError::Handshake)
            }
            () = deadline => Err(TlsError::HandshakeTimeout(self.timeout)),
        }
    }
}

/// Look at `tls`'s files every `interval` and swap in new material, logging each reload
/// and each refusal. Ends when every acceptor using `tls` is gone.
pub async fn reload_loop<R: Runtime>(runtime: R, tls: ServerTls, interval: Duration) {
    let weak = tls.downgrade();
    drop(tls);
    loop {
        runtime.sleep_until(runtime.now() + interval).await;
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let tls = ServerTls { inner };
        let label = tls.inner.label.clone();
        let looked = tls.clone();
        match runtime.offload(move || looked.reload()).await {
            Reload::Unchanged => {}
            Reload::Reloaded => {
                tracing::info!("TLS material of {label} reloaded; new connections use it");
            }
            Reload::Refused(error) => tracing::warn!(
                "TLS material of {label} changed but is refused, keeping the previous \
                 certificate: {error}"
            ),
        }
    }
}

/// The rustls provider every config uses: ring, whatever else is linked in.
// rustls 0.23.48 deprecates ring for lacking post-quantum key exchange; ring is chosen on
// purpose (no C toolchain, no aws-lc-rs build), see docs/security.md.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls protocol versions of `versions`.
pub fn protocol_versions(versions: TlsVersions) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut out = Vec::with_capacity(2);
    if versions.tls13 {
        out.push(&rustls::version::TLS13);
    }
    if versions.tls12 {
        out.push(&rustls::version::TLS12);
    }
    out
}

fn read_material(settings: &TlsSettings) -> Result<Material, TlsError> {
    let (keystore, key) = match &settings.keystore {
        Keystore::File(path) => (read_pem_file("ssl.keystore.location", path)?, None),
        Keystore::Inline { chain, key } => {
            (chain.as_bytes().to_vec(), Some(key.as_bytes().to_vec()))
        }
    };
    let truststore = match &settings.truststore {
        None => None,
        Some(Truststore::File(path)) => Some(read_pem_file("ssl.truststore.location", path)?),
        Some(Truststore::Inline(text)) => Some(text.as_bytes().to_vec()),
    };
    Ok(Material {
        keystore,
        key,
        truststore,
    })
}

fn read_pem_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |error| TlsError::Read {
        what,
        path: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells "too large" from "exactly at the bound".
    (file.take(PEM_FILE_BYTES_MAX + 1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(TlsError::TooLarge {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(bytes)
}

/// Where each part of `settings` comes from, for messages.
fn origins(settings: &TlsSettings) -> (String, String, String) {
    match &settings.keystore {
        Keystore::File(path) => {
            let path = path.display().to_string();
            (path.clone(), path.clone(), path)
        }
        Keystore::Inline { .. } => (
            "ssl.keystore.certificate.chain".to_owned(),
            "ssl.keystore.key".to_owned(),
            "inline keystore".to_owned(),
        ),
    }
}

/// Build a rustls server config from read material; pure.
fn build(
    settings: &TlsSettings,
    material: &Material,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (chain_origin, key_origin, keystore_origin) = origins(settings);
    let chain = certificates("keystore", &chain_origin, &material.keystore)?;
    let key_bytes = material.key.as_deref().unwrap_or(&material.keystore);
    let key = private_key(&key_origin, key_bytes)?;
    let roots = match (&settings.truststore, &material.truststore) {
        (Some(truststore), Some(bytes)) => {
            let origin = match truststore {
                Truststore::File(path) => path.display().to_string(),
                Truststore::Inline(_) => "ssl.truststore.certificates".to_owned(),
            };
            Some(root_store(&origin, bytes)?)
        }
        _ => None,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&protocol_versions(settings.versions))
        .map_err(|error| TlsError::Refused {
            origin: "ssl.enabled.protocols".to_owned(),
            reason: error.to_string(),
        })?;
    let verifier = match (settings.client_auth, roots) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, None) => {
            return Err(TlsError::Refused {
                origin: "ssl.client.auth".to_owned(),
                reason: "client certificates are verified against the truststore: set \
                         ssl.truststore.location"
                    .to_owned(),
            })
        }
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            verifier.build().map_err(|error| TlsError::Refused {
                origin: "ssl.truststore".to_owned(),
                reason: error.to_string(),
            })?
        }
    };
    let config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Refused {
            origin: keystore_origin,
            reason: match error {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key does not match the certificate".to_owned()
                }
                other => format!("the key and certificate are refused: {other}"),
            },
        })?;
    Ok(Arc::new(config))
}

/// Build the peer links' client config from read material; pure. The truststore is
/// required: a dialed broker is always verified.
fn build_client(
    settings: &TlsSettings,
    material: &Material,
    verify_hostname: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let (chain_origin, key_origin, keystore_origin) = origins(settings);
    let chain = certificates("keystore", &chain_origin, &material.keystore)?;
    let key_bytes = material.key.as_deref().unwrap_or(&material.keystore);
    let key = private_key(&key_origin, key_bytes)?;
    let (Some(truststore), Some(bytes)) = (&settings.truststore, &material.truststore) else {
        return Err(TlsError::Refused {
            origin: "ssl.truststore".to_owned(),
            reason: "peer links verify the other brokers' certificates against the \
                     truststore: set ssl.truststore.location"
                .to_owned(),
        });
    };
    let origin = match truststore {
        Truststore::File(path) => path.display().to_string(),
        Truststore::Inline(_) => "ssl.truststore.certificates".to_owned(),
    };
    let roots = Arc::new(root_store(&origin, bytes)?);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&protocol_versions(settings.versions))
        .map_err(|error| TlsError::Refused {
            origin: "ssl.enabled.protocols".to_owned(),
            reason: error.to_string(),
        })?;
    let builder = if verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let chain_only = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|error| TlsError::Refused {
                origin: "ssl.truststore".to_owned(),
                reason: error.to_string(),
            })?;
        (builder.dangerous()).with_custom_certificate_verifier(Arc::new(AnyName::new(chain_only)))
    };
    let config = builder
        .with_client_auth_cert(chain, key)
        .map_err(|error| TlsError::Refused {
            origin: keystore_origin,
            reason: match error {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key does not match the certificate".to_owned()
                }
                other => format!("the key and certificate are refused: {other}"),
            },
        })?;
    Ok(Arc::new(config))
}

/// The certificates of a PEM text; at least one.
pub fn certificates(
    what: &'static str,
    origin: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::BadPem {
        what,
        origin: origin.to_owned(),
        reason,
    };
    let mut chain = Vec::new();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        chain.push(certificate.map_err(|error| bad(format!("not valid PEM: {error}")))?);
    }
    if chain.is_empty() {
        return Err(bad("holds no CERTIFICATE block".to_owned()));
    }
    Ok(chain)
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1); encrypted keys are refused.
pub fn private_key(origin: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bad = |reason: &str| TlsError::BadPem {
        what: "private key",
        origin: origin.to_owned(),
        reason: reason.to_owned(),
    };
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|window| window == b"ENCRYPTED PRIVATE KEY")
    {
        return Err(bad(
            "encrypted keys are not supported; decrypt it (openssl pkcs8 -nocrypt)",
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => {
            bad("holds no PRIVATE KEY block (PKCS#8, RSA or EC)")
        }
        other => bad(&format!("not valid PEM: {other}")),
    })
}

/// A root store of every certificate in a PEM text.
pub fn root_store(origin: &str, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates("truststore", origin, pem)? {
        roots.add(certificate).map_err(|error| TlsError::BadPem {
            what: "truststore",
            origin: origin.to_owned(),
            reason: format!("not a usable CA certificate: {error}"),
        })?;
    }
    Ok(roots)
}
