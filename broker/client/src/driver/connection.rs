//! One connection to one broker.
//!
//! Opening it connects, runs the TLS handshake when configured, then the ApiVersions
//! handshake (retrying at the broker's version when it rejects ours, KIP-511), negotiates a
//! version per API and authenticates when SASL is configured. Then two tasks run:
//! - the writer owns the write half and writes queued frames, coalescing whatever is queued
//!   into one flush;
//! - the reader owns the read half, reads length-prefixed frames and hands each to the
//!   request whose correlation id it carries.
//!
//! Invariants:
//! - A frame is written whole or the connection is dead: frames go through the writer task,
//!   so a caller dropping its future cannot leave half a frame on the socket.
//! - At most `in_flight_requests_max` requests await responses (a semaphore, plus the
//!   session's bounded [`InFlight`] map as the backstop).
//! - Once closed, a connection stays closed: every waiting and later request fails with the
//!   error that closed it, and the cluster opens a new connection.
//! - When the last handle is dropped both tasks end and the socket closes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, Semaphore};
use weir_runtime::Runtime;
use weir_wire::codec::{self, RequestHeader, SUPPORTED_APIS};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use crate::config::ClientConfig;
use crate::driver::{millis, with_deadline};
use crate::error::ClientError;
use crate::session::correlation::{peek_correlation_id, InFlight};
use crate::session::versions::{api_key, ApiVersions};
use crate::tls::Transport;

/// Socket buffer sizes: large enough to coalesce many small produce requests per syscall.
const SOCKET_BUFFER_BYTES: usize = 64 * 1024;

type ResponseSender = oneshot::Sender<Result<Bytes, ClientError>>;

/// A handle to a live (or dead) broker connection; cheap to clone.
pub struct Connection<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for Connection<R> {
    fn clone(&self) -> Connection<R> {
        Connection {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.shared.address)
            .finish()
    }
}

struct Shared<R: Runtime> {
    runtime: R,
    address: String,
    client_id: String,
    versions: ApiVersions,
    state: Arc<Mutex<State>>,
    frames: mpsc::Sender<Bytes>,
    permits: Arc<Semaphore>,
    /// Dropped with the last handle: tells the reader task to stop.
    _shutdown: oneshot::Sender<()>,
}

struct State {
    in_flight: InFlight<ResponseSender>,
    closed: Option<ClientError>,
}

impl<R: Runtime> Connection<R> {
    /// Connects to `address` and negotiates API versions.
    pub async fn open(
        runtime: R,
        address: &str,
        config: &ClientConfig,
    ) -> Result<Connection<R>, ClientError> {
        let deadline = runtime.now().saturating_add(config.connect_timeout);
        let network = |reason: String| ClientError::Network {
            broker: address.to_owned(),
            reason,
        };
        let timeout = || ClientError::Timeout {
            context: format!("connecting to {address}"),
            timeout_ms: millis(config.connect_timeout),
        };
        let stream = with_deadline(&runtime, deadline, runtime.connect(address))
            .await
            .ok_or_else(timeout)?
            .map_err(|error| network(format!("connect: {error}")))?;
        let stream = match &config.tls {
            None => Transport::Plain(stream),
            Some(tls) => {
                let handshake = tls.connect(address, stream);
                let tls_stream = with_deadline(&runtime, deadline, handshake)
                    .await
                    .ok_or_else(timeout)?
                    .map_err(network)?;
                Transport::Tls(Box::new(tls_stream))
            }
        };
        let (read_half, write_half) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(SOCKET_BUFFER_BYTES, read_half);
        let mut writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, write_half);
        let mut in_flight = InFlight::new(config.in_flight_requests_max);
        let handshake = handshake(&mut reader, &mut writer, &mut in_flight, address, config);
        let versions = with_deadline(&runtime, deadline, handshake)
            .await
            .ok_or_else(timeout)?
            .map_err(|error| match &config.tls {
                Some(_) => crate::tls::explain_refusal(error),
                None => error,
            })?;
        if let Some(credentials) = &config.sasl {
            let nonce = connection_nonce(&runtime);
            let io = Io {
                reader: &mut reader,
                writer: &mut writer,
                in_flight: &mut in_flight,
                address,
                config,
            };
            let authenticated = authenticate(io, credentials, &nonce);
            with_deadline(&runtime, deadline, authenticated)
                .await
                .ok_or_else(timeout)??;
        }

        let state = Arc::new(Mutex::new(State {
            in_flight,
            closed: None,
        }));
        let permits = Arc::new(Semaphore::new(config.in_flight_requests_max.max(1)));
        let (frames_tx, frames_rx) = mpsc::channel(config.in_flight_requests_max.max(1));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        runtime.spawn(write_loop(
            writer,
            frames_rx,
            Arc::clone(&state),
            Arc::clone(&permits),
            address.to_owned(),
        ));
        runtime.spawn(read_loop(
            reader,
            shutdown_rx,
            Arc::clone(&state),
            Arc::clone(&permits),
            address.to_owned(),
            config.frame_bytes_max,
        ));
        tracing::debug!(address, "connected");
        Ok(Connection {
            shared: Arc::new(Shared {
                runtime,
                address: address.to_owned(),
                client_id: config.client_id.clone(),
                versions,
                state,
                frames: frames_tx,
                permits,
                _shutdown: shutdown_tx,
            }),
        })
    }

    /// The broker's address.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// True once the connection failed or closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).closed.is_some()
    }

    /// Negotiated API versions.
    pub fn versions(&self) -> &ApiVersions {
        &self.shared.versions
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn request(
        &self,
        request: &ApiRequest,
        timeout: Duration,
    ) -> Result<ApiResponse, ClientError> {
        let shared = &self.shared;
        let permit = Arc::clone(&shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| self.closed_error())?;
        let header = self.next_header(codec::api_key_of(request))?;
        let mut frame = BytesMut::new();
        codec::encode_request(&header, request, &mut frame)?;
        let (response_tx, response_rx) = oneshot::channel();
        let id = header.correlation_id;
        {
            let mut state = lock(&shared.state);
            if let Some(error) = &state.closed {
                return Err(error.clone());
            }
            let now = shared.runtime.now();
            if let Err((full, _)) = state.in_flight.insert(header.clone(), now, response_tx) {
                // The semaphore allows no more than the map holds; reaching this is a bug.
                return Err(ClientError::Protocol(format!(
                    "in-flight map full ({})",
                    full.limit
                )));
            }
        }
        if shared.frames.send(frame.freeze()).await.is_err() {
            lock(&shared.state).in_flight.remove(id);
            return Err(self.closed_error());
        }
        let deadline = shared.runtime.now().saturating_add(timeout);
        let received = with_deadline(&shared.runtime, deadline, response_rx).await;
        drop(permit);
        let frame = match received {
            Some(Ok(Ok(frame))) => frame,
            Some(Ok(Err(error))) => return Err(error),
            Some(Err(_)) => return Err(self.closed_error()),
            None => {
                // A late response finds no entry and is dropped by the reader.
                lock(&shared.state).in_flight.remove(id);
                let error = ClientError::Timeout {
                    context: format!("api {} request to {}", header.api_key, shared.address),
                    timeout_ms: millis(timeout),
                };
                // As Kafka's NetworkClient does: a request that timed out closes its
                // connection, so a silently dead peer (crashed host, lossy link) is not
                // reused forever; the cluster opens a new connection.
                close(&shared.state, &shared.permits, error.clone());
                return Err(error);
            }
        };
        Ok(codec::decode_response(&header, frame)?)
    }

    /// Sends a request that gets no response (produce with acks=0). Returns once the frame
    /// is queued for writing.
    pub async fn send_without_response(&self, request: &ApiRequest) -> Result<(), ClientError> {
        let header = self.next_header(codec::api_key_of(request))?;
        let mut frame = BytesMut::new();
        codec::encode_request(&header, request, &mut frame)?;
        if self.shared.frames.send(frame.freeze()).await.is_err() {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn next_header(&self, key: i16) -> Result<RequestHeader, ClientError> {
        let shared = &self.shared;
        let version =
            shared
                .versions
                .version_for(key)
                .ok_or_else(|| ClientError::UnsupportedApi {
                    broker: shared.address.clone(),
                    api_key: key,
                })?;
        let mut state = lock(&shared.state);
        if let Some(error) = &state.closed {
            return Err(error.clone());
        }
        Ok(state.in_flight.next_header(key, version, &shared.client_id))
    }

    fn closed_error(&self) -> ClientError {
        lock(&self.shared.state)
            .closed
            .clone()
            .unwrap_or_else(|| ClientError::Network {
                broker: self.shared.address.clone(),
                reason: "connection closed".into(),
            })
    }
}

/// ApiVersions at our highest version, then at the broker's highest if it refused ours
/// (KIP-511: the broker answers an unknown version with error 35 and its table in v0 format).
async fn handshake<Rd, Wr>(
    reader: &mut Rd,
    writer: &mut Wr,
    in_flight: &mut InFlight<ResponseSender>,
    address: &str,
    config: &ClientConfig,
) -> Result<ApiVersions, ClientError>
where
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    let our_max = SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api_key::API_VERSIONS)
        .map_or(0, |&(_, _, max)| max);
    let mut version = our_max;
    // Bounded: at most two attempts (ours, then the broker's advertised maximum).
    for attempt in 0..2 {
        let header = in_flight.next_header(api_key::API_VERSIONS, version, &config.client_id);
        let mut frame = BytesMut::new();
        codec::encode_api_versions_request(&header, &mut frame)?;
        let io = |error: std::io::Error| ClientError::Network {
            broker: address.to_owned(),
            reason: format!("handshake: {error}"),
        };
        writer.write_all(&frame).await.map_err(io)?;
        writer.flush().await.map_err(io)?;
        let response = read_frame(reader, config.frame_bytes_max, address).await?;
        let answer = codec::decode_api_versions_answer(&header, response)?;
        if answer.error.is_ok() {
            return Ok(ApiVersions::negotiate(&answer.api_keys).with_features(answer.features));
        }
        if answer.error != ErrorCode::UNSUPPORTED_VERSION || attempt > 0 {
            return Err(ClientError::kafka(
                answer.error,
                format!("ApiVersions v{version}"),
            ));
        }
        // KIP-511: the broker answered in v0 format with its own table; retry at its maximum.
        let broker_max = answer
            .api_keys
            .iter()
            .find(|(key, _, _)| *key == api_key::API_VERSIONS)
            .map_or(0, |&(_, _, max)| max);
        tracing::debug!(
            address,
            version,
            broker_max,
            "ApiVersions version refused, retrying"
        );
        version = broker_max.min(our_max).max(0);
    }
    Err(ClientError::Protocol(format!(
        "ApiVersions handshake with {address} failed"
    )))
}

/// A fresh SASL nonce: the runtime's secret seed keys the source, a process-wide count
/// of SASL connections makes each draw different (only SASL connections draw, so runs
/// without SASL are unaffected).
fn connection_nonce<R: Runtime>(runtime: &R) -> String {
    static SASL_CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = SASL_CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut seed = runtime.secret_seed();
    for (byte, count_byte) in seed.iter_mut().zip(count.to_le_bytes()) {
        *byte ^= count_byte;
    }
    weir_wire::sasl::NonceSource::new(seed).nonce()
}

/// The socket halves and state the opening exchanges share.
struct Io<'a, Rd, Wr> {
    reader: &'a mut Rd,
    writer: &'a mut Wr,
    in_flight: &'a mut InFlight<ResponseSender>,
    address: &'a str,
    config: &'a ClientConfig,
}

impl<Rd: AsyncRead + Unpin, Wr: AsyncWrite + Unpin> Io<'_, Rd, Wr> {
    /// One request and its answer, before the connection's tasks run.
    async fn call(
        &mut self,
        key: i16,
        version: i16,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ClientError> {
        let header = self
            .in_flight
            .next_header(key, version, &self.config.client_id);
        let mut frame = BytesMut::new();
        codec::encode_request(&header, request, &mut frame)?;
        let io = |error: std::io::Error| ClientError::Network {
            broker: self.address.to_owned(),
            reason: format!("SASL: {error}"),
        };
        self.writer.write_all(&frame).await.map_err(io)?;
        self.writer.flush().await.map_err(io)?;
        let response = read_frame(self.reader, self.config.frame_bytes_max, self.address).await?;
        Ok(codec::decode_response(&header, response)?)
    }

    /// One SaslAuthenticate token; the broker's token back, or its error.
    async fn token(&mut self, bytes: Vec<u8>) -> Result<Bytes, ClientError> {
        let request =
            ApiRequest::SaslAuthenticate(weir_wire::domain::sasl::SaslAuthenticateRequest {
                auth_bytes: Bytes::from(bytes),
            });
        match self.call(api_key::SASL_AUTHENTICATE, 2, &request).await? {
            ApiResponse::SaslAuthenticate(answer) if answer.error.is_ok() => Ok(answer.auth_bytes),
            ApiResponse::SaslAuthenticate(answer) => Err(ClientError::Kafka {
                code: answer.error,
                context: "SaslAuthenticate".into(),
                message: answer.error_message,
            }),
            other => Err(ClientError::Protocol(format!(
                "SaslAuthenticate answered with {other:?}"
            ))),
        }
    }
}

/// SaslHandshake v1 and the mechanism's SaslAuthenticate exchange.
async fn authenticate<Rd, Wr>(
    mut io: Io<'_, Rd, Wr>,
    credentials: &crate::config::SaslCredentials,
    nonce: &str,
) -> Result<(), ClientError>
where
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    use weir_wire::sasl::{PlainMessage, SaslMechanism, ScramClient};
    let mechanism = credentials.mechanism;
    let request = ApiRequest::SaslHandshake(weir_wire::domain::sasl::SaslHandshakeRequest {
        mechanism: mechanism.name().to_owned(),
        version: 1,
    });
    match io.call(api_key::SASL_HANDSHAKE, 1, &request).await? {
        ApiResponse::SaslHandshake(answer) if answer.error.is_ok() => {}
        ApiResponse::SaslHandshake(answer) => {
            return Err(ClientError::Kafka {
                code: answer.error,
                context: format!("SaslHandshake {}", mechanism.name()),
                message: Some(format!(
                    "the broker enables {}",
                    answer.mechanisms.join(", ")
                )),
            })
        }
        other => {
            return Err(ClientError::Protocol(format!(
                "SaslHandshake answered with {other:?}"
            )))
        }
    }
    let sasl_error =
        |error: weir_wire::sasl::SaslError| ClientError::Protocol(format!("SASL: {error}"));
    match mechanism {
        SaslMechanism::Plain => {
            let message = PlainMessage {
                username: credentials.username.clone(),
                password: credentials.password.clone(),
            };
            io.token(message.encode()).await?;
        }
        SaslMechanism::Scram(scram) => {
            let (mut client, first) =
                ScramClient::start(scram, &credentials.username, &credentials.password, nonce);
            let server_first = io.token(first).await?;
            let client_final = client.server_first(&server_first).map_err(sasl_error)?;
            let server_final = io.token(client_final).await?;
            client.server_final(&server_final).map_err(sasl_error)?;
        }
    }
    tracing::debug!(
        address = io.address,
        mechanism = mechanism.name(),
        "authenticated"
    );
    Ok(())
}

async fn read_frame<Rd: AsyncRead + Unpin>(
    reader: &mut Rd,
    frame_bytes_max: usize,
    address: &str,
) -> Result<Bytes, ClientError> {
    let io = |error: std::io::Error| ClientError::Network {
        broker: address.to_owned(),
        reason: if error.kind() == std::io::ErrorKind::UnexpectedEof {
            "connection closed by broker".to_owned()
        } else {
            error.to_string()
        },
    };
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).await.map_err(io)?;
    let len = weir_wire::frame::frame_len(prefix, frame_bytes_max)?;
    let mut frame = BytesMut::zeroed(len);
    reader.read_exact(&mut frame).await.map_err(io)?;
    Ok(frame.freeze())
}

async fn write_loop<Wr: AsyncWrite + Unpin>(
    mut writer: BufWriter<Wr>,
    mut frames: mpsc::Receiver<Bytes>,
    state: Arc<Mutex<State>>,
    permits: Arc<Semaphore>,
    address: String,
) {
    while let Some(frame) = frames.recv().await {
        let mut result = writer.write_all(&frame).await;
        // Coalesce everything already queued into one flush: fewer syscalls under load.
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
            let reason = format!("write: {error}");
            close(
                &state,
                &permits,
                ClientError::Network {
                    broker: address,
                    reason,
                },
            );
            return;
        }
    }
    // All handles dropped: close our half so the broker sees EOF.
    let _ = writer.shutdown().await;
}

async fn read_loop<Rd: AsyncRead + Unpin>(
    mut reader: BufReader<Rd>,
    mut shutdown: oneshot::Receiver<()>,
    state: Arc<Mutex<State>>,
    permits: Arc<Semaphore>,
    address: String,
    frame_bytes_max: usize,
) {
    let error = loop {
        let frame = tokio::select! {
            biased;
            _ = &mut shutdown => break ClientError::Closed,
            frame = read_frame(&mut reader, frame_bytes_max, &address) => frame,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => break error,
        };
        let Some(correlation_id) = peek_correlation_id(&frame) else {
            break ClientError::Protocol(format!("response from {address} shorter than a header"));
        };
        let pending = lock(&state).in_flight.complete(correlation_id);
        match pending {
            // The waiter may have gone away meanwhile; nothing to do then.
            Some(pending) => drop(pending.token.send(Ok(frame))),
            None => tracing::debug!(%address, correlation_id, "dropping unexpected response"),
        }
    };
    tracing::debug!(%address, %error, "connection closed");
    close(&state, &permits, error);
}

/// Marks the connection dead and fails every waiting request.
fn close(state: &Mutex<State>, permits: &Semaphore, error: ClientError) {
    let pending = {
        let mut state = lock(state);
        if state.closed.is_none() {
            state.closed = Some(error.clone());
        }
        state.in_flight.drain()
    };
    for entry in pending {
        drop(entry.token.send(Err(error.clone())));
    }
    permits.close();
}

/// Locks a std mutex, ignoring poisoning: the state stays consistent because no code path
/// panics while holding it (and a panic elsewhere must not wedge every request).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
