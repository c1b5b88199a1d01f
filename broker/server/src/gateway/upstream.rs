//! A Kafka-protocol connection from the gateway to another broker's Kafka listener, used
//! to forward requests for partitions (and groups) led (coordinated) elsewhere.
//!
//! Requests are encoded with `weir-wire`'s client codec at the highest version this build
//! supports (the peer is a Weir broker of the same cluster, so no ApiVersions round trip).
//! A writer task owns the socket's write half; a reader task reads length-prefixed frames
//! and hands each to the request with its correlation id.
//!
//! When the brokers' registered listener is `SSL` or `SASL_SSL`, the connection is TLS
//! (rustls, the listener's truststore as roots: [`client_tls`]).
//!
//! Invariants:
//! - [`Upstream::send`] has queued the whole frame when it returns, so requests sent one
//!   after the other reach the broker in that order (produces of one key stay ordered).
//! - At most [`UPSTREAM_IN_FLIGHT_MAX`] requests await answers: a semaphore permit is held
//!   until the answer arrives, even if the caller gave up (an abandoned fetch still holds a
//!   place in the broker's purgatory); the frame queue is bounded by the same number.
//! - Once closed (IO error, malformed frame, timeout) a connection stays closed: waiting
//!   and later requests fail, and the router opens a new one.
//! - When the last handle (connection or call) is dropped, both tasks end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use weir_runtime::Runtime;
use weir_wire::codec::{self, RequestHeader};
use weir_wire::domain::{ApiRequest, ApiResponse};

use super::lock;
use crate::tls::{TlsError, TlsSettings, Truststore};

/// Requests awaiting an answer on one upstream connection.
pub const UPSTREAM_IN_FLIGHT_MAX: usize = 128;
/// Time allowed to open the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response frame accepted (a fetch answers at most 1 MiB per partition).
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Socket buffer sizes.
const SOCKET_BUFFER_BYTES: usize = 64 * 1024;
/// Fetch from v13 on names topics by id; the gateway's requests carry names, so it
/// fetches at v12 (which answers with names too).
const FETCH_VERSION_BY_NAME: i16 = 12;
/// Client id the gateway announces to other brokers.
const CLIENT_ID: &str = "weir-gateway";

/// Why an upstream request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be opened, broke, or timed out.
    #[error("connection to {address}: {reason}")]
    Network {
        /// Broker address.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The request could not be encoded or the answer decoded.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The broker refused the connection's SASL login (or the exchange went wrong).
    #[error("login: {0}")]
    Login(String),
}

/// Where an answer goes, and the in-flight permit it returns on arrival.
type Waiter = (
    oneshot::Sender<Result<Bytes, UpstreamError>>,
    OwnedSemaphorePermit,
);

struct State {
    next_correlation: i32,
    waiting: BTreeMap<i32, Waiter>,
    closed: Option<UpstreamError>,
}

struct Shared {
    address: String,
    state: Mutex<State>,
    frames: mpsc::Sender<Bytes>,
    permits: Arc<Semaphore>,
    /// Dropped with the last handle: stops the reader.
    _shutdown: oneshot::Sender<()>,
}

/// A connection to one broker; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
}

/// A request whose answer has not arrived yet.
pub struct UpstreamCall {
    shared: Arc<Shared>,
    header: RequestHeader,
    answer: oneshot::Receiver<Result<Bytes, UpstreamError>>,
}

impl Upstream {
    /// Connect to `address` (`host:port`); with `tls`, run a TLS handshake first (the
    /// brokers' registered listener is `SSL` or `SASL_SSL`), verifying the broker's
    /// certificate for the host of `address` against `tls`'s roots. Both steps together
    /// are bounded by [`CONNECT_TIMEOUT`].
    pub async fn open<R: Runtime>(
        runtime: &R,
        address: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Upstream, UpstreamError> {
        let network = |reason: String| UpstreamError::Network {
            address: address.to_owned(),
            reason,
        };
        let deadline = runtime.now() + CONNECT_TIMEOUT;
        let timer = runtime.sleep_until(deadline);
        let stream = tokio::select! {
            biased;
            stream = runtime.connect(address) => stream,
            () = timer => return Err(network("connect timed out".to_owned())),
        };
        let stream = stream.map_err(|error| network(format!("connect: {error}")))?;
        let Some(tls) = tls else {
            return Ok(Self::start(runtime, address, stream));
        };
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|error| network(format!("TLS server name {host:?}: {error}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
        let timer = runtime.sleep_until(deadline);
        let stream = tokio::select! {
            biased;
            stream = connector.connect(name, stream) => stream,
            () = timer => return Err(network("TLS handshake timed out".to_owned())),
        };
        let stream = stream.map_err(|error| network(format!("TLS handshake: {error}")))?;
        Ok(Self::start(runtime, address, stream))
    }

    /// Run the reader and writer tasks over an open connection.
    fn start<R, S>(runtime: &R, address: &str, stream: S) -> Upstream
    where
        R: Runtime,
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (read_half, write_half) = tokio::io::split(stream);
        let (frames, frames_queue) = mpsc::channel(UPSTREAM_IN_FLIGHT_MAX);
        let (shutdown, shutdown_signal) = oneshot::channel();
        let shared = Arc::new(Shared {
            address: address.to_owned(),
            state: Mutex::new(State {
                next_correlation: 1,
                waiting: BTreeMap::new(),
                closed: None,
            }),
            frames,
            permits: Arc::new(Semaphore::new(UPSTREAM_IN_FLIGHT_MAX)),
            _shutdown: shutdown,
        });
        let writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, write_half);
        runtime.spawn(write_loop(writer, frames_queue, Arc::downgrade(&shared)));
        let reader = BufReader::with_capacity(SOCKET_BUFFER_BYTES, read_half);
        runtime.spawn(read_loop(reader, shutdown_signal, Arc::downgrade(&shared)));
        Upstream { shared }
    }

    /// True once the connection failed.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).closed.is_some()
    }

    /// Queue `request` (in call order) and return the call to await.
    pub async fn send(&self, request: &ApiRequest) -> Result<UpstreamCall, UpstreamError> {
        let shared = &self.shared;
        let permit = Arc::clone(&shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed_error(shared))?;
        let api_key = codec::api_key_of(request);
        let (min_version, mut api_version) = codec::supported_range(api_key).ok_or_else(|| {
            UpstreamError::Protocol(format!("api key {api_key} is not supported"))
        })?;
        if api_key == codec::api_key::FETCH {
            api_version = api_version.min(FETCH_VERSION_BY_NAME).max(min_version);
        }
        let (answer_sender, answer) = oneshot::channel();
        let header = {
            let mut state = lock(&shared.state);
            if let Some(error) = &state.closed {
                return Err(error.clone());
            }
            let correlation_id = state.next_correlation;
            state.next_correlation = correlation_id.checked_add(1).unwrap_or(1);
            state
                .waiting
                .insert(correlation_id, (answer_sender, permit));
            RequestHeader {
                api_key,
                api_version,
                correlation_id,
                client_id: Some(CLIENT_ID.to_owned()),
            }
        };
        let mut frame = BytesMut::new();
        if let Err(error) = codec::encode_request(&header, request, &mut frame) {
            lock(&shared.state).waiting.remove(&header.correlation_id);
            return Err(UpstreamError::Protocol(error.to_string()));
        }
        if shared.frames.send(frame.freeze()).await.is_err() {
            lock(&shared.state).waiting.remove(&header.correlation_id);
            return Err(closed_error(shared));
        }
        Ok(UpstreamCall {
            shared: Arc::clone(shared),
            header,
            answer,
        })
    }
}

impl UpstreamCall {
    /// Wait up to `timeout` for the answer; a timeout closes the connection (a silently
    /// dead peer is not reused).
    pub async fn response<R: Runtime>(
        self,
        runtime: &R,
        timeout: Duration,
    ) -> Result<ApiResponse, UpstreamError> {
        let deadline = runtime.sleep_until(runtime.now() + timeout);
        let answer = tokio::select! {
            biased;
            answer = self.answer => answer,
            () = deadline => {
                let error = UpstreamError::Network {
                    address: self.shared.address.clone(),
                    reason: format!("no answer within {} ms", timeout.as_millis()),
                };
                close(&self.shared, error.clone());
                return Err(error);
            }
        };
        let frame = match answer {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(closed_error(&self.shared)),
        };
        codec::decode_response(&self.header, frame)
            .map_err(|error| UpstreamError::Protocol(error.to_string()))
    }
}

/// The TLS client configuration for upstream connections to a listener with `settings`:
/// its truststore is what the other brokers' certificates must chain to (as Kafka's
/// inter-broker clients use the listener's truststore), with its protocol versions.
/// `None` when the listener has no truststore (the gateway then cannot verify the brokers:
/// upstream connections are refused with a message).
pub fn client_tls(settings: &TlsSettings) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
    let (origin, pem) = match &settings.truststore {
        None => return Ok(None),
        Some(Truststore::Inline(text)) => ("ssl.truststore.certificates", text.as_bytes().to_vec()),
        Some(Truststore::File(path)) => {
            let pem = std::fs::read(path).map_err(|error| TlsError::Read {
                what: "ssl.truststore.location",
                path: path.display().to_string(),
                error,
            })?;
            ("ssl.truststore.location", pem)
        }
    };
    let roots = crate::tls::root_store(origin, &pem)?;
    let versions = crate::tls::protocol_versions(settings.versions);
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&versions)
        .map_err(|error| TlsError::BadPem {
            what: "truststore",
            origin: origin.to_owned(),
            reason: format!("no usable protocol version: {error}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

fn closed_error(shared: &Shared) -> UpstreamError {
    lock(&shared.state)
        .closed
        .clone()
        .unwrap_or_else(|| UpstreamError::Network {
            address: shared.address.clone(),
            reason: "connection closed".to_owned(),
        })
}

/// Mark the connection dead and fail every waiting request.
fn close(shared: &Shared, error: UpstreamError) {
    let waiting = {
        let mut state = lock(&shared.state);
        if state.closed.is_none() {
            state.closed = Some(error.clone());
        }
        std::mem::take(&mut state.waiting)
    };
    for (_, (waiter, _permit)) in waiting {
        let _ = waiter.send(Err(error.clone()));
    }
    shared.permits.close();
}

async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    mut frames: mpsc::Receiver<Bytes>,
    shared: std::sync::Weak<Shared>,
) {
    while let Some(frame) = frames.recv().await {
        let mut result = writer.write_all(&frame).await;
        while result.is_ok() {
            match frames.try_recv() {
                Ok(next) => result = writer.write_all(&next).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = writer.flush().await;
        }
        if let Err(error) = result {
            if let Some(shared) = shared.upgrade() {
                let address = shared.address.clone();
                let reason = format!("write: {error}");
                close(&shared, UpstreamError::Network { address, reason });
            }
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop<Rd: tokio::io::AsyncRead + Unpin>(
    mut reader: BufReader<Rd>,
    mut shutdown: oneshot::Receiver<()>,
    shared: std::sync::Weak<Shared>,
) {
    let error = loop {
        let frame = tokio::select! {
            biased;
            _ = &mut shutdown => return,
            frame = read_frame(&mut reader) => frame,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(reason) => break reason,
        };
        if frame.len() < 4 {
            break "response shorter than a header".to_owned();
        }
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let waiter = lock(&shared.state).waiting.remove(&correlation_id);
        if let Some((waiter, _permit)) = waiter {
            // The caller may have given up (an abandoned fetch): nothing to do then.
            let _ = waiter.send(Ok(frame));
        }
    };
    if let Some(shared) = shared.upgrade() {
        tracing::debug!(address = %shared.address, "gateway upstream closed: {error}");
        let address = shared.address.clone();
        close(
            &shared,
            UpstreamError::Network {
                address,
                reason: error,
            },
        );
    }
}

async fn read_frame<Rd: tokio::io::AsyncRead + Unpin>(reader: &mut Rd) -> Result<Bytes, String> {
    let mut prefix = [0u8; 4];
    reader
        .read_exact(&mut prefix)
        .await
        .map_err(|error| format!("read: {error}"))?;
    let len = weir_wire::frame::frame_len(prefix, RESPONSE_BYTES_MAX).map_err(|e| e.to_string())?;
    let mut frame = BytesMut::zeroed(len);
    reader
        .read_exact(&mut frame)
        .await
        .map_err(|error| format!("read: {error}"))?;
    Ok(frame.freeze())
}
