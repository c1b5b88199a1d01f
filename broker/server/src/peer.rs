//! The peer transport: node-to-node connections of a cluster over the controller listener.
//!
//! Connections are one-way, as the peer protocol asks ([`weir_core::cluster::peer`]): a
//! node dials each peer it sends to and only writes on that connection ([`PeerLinks`], one
//! outgoing task per destination node), and it only reads on connections others dialed
//! ([`accept_loop`], one reader task per inbound connection feeding the node loop).
//!
//! Wire format: every frame is a 4-byte big-endian length and that many payload bytes. The
//! dialer's first frame is a [`PeerHello`]; the acceptor checks its magic, version and
//! cluster id and closes the connection on any mismatch. Later frames are postcard-encoded
//! [`PeerMessage`]s.
//!
//! Invariants:
//! - Everything is bounded: a frame is at most [`PEER_FRAME_BYTES_MAX`] bytes (a hello at
//!   most [`PEER_HELLO_BYTES_MAX`], so an unauthenticated dialer cannot make us allocate
//!   much), each destination's queue holds at most [`PEER_QUEUE_FRAMES_MAX`] messages (the
//!   newest is dropped when it is full), inbound connections are capped at
//!   [`PEER_INBOUND_CONNECTIONS_MAX`], and reconnects back off from
//!   [`RECONNECT_DELAY_MIN`] to [`RECONNECT_DELAY_MAX`].
//! - Loss is allowed, reordering is not: messages to one destination leave in the order the
//!   node emitted them; a message may be dropped (full queue, broken connection), which the
//!   protocol tolerates because every exchange is retried by its sender.
//! - Replica fetch answers leave the core as reads; they are resolved on the outgoing task
//!   (never in the node loop), and a failed read poisons the node, as a failed write does:
//!   a leader that cannot read its own log must stop leading.
//! - Inbound frames reach the node loop through its bounded input channel; a full channel
//!   stops the reader (TCP backpressure), never buffers without bound.
//! - Handshakes are bounded on both sides by `weir.ssl.handshake.timeout.ms`: a stalled
//!   acceptor handshake frees its inbound slot, a stalled dial is abandoned and retried;
//!   neither runs on the node loop. New connections use reloaded certificates.
//! - Only the runtime seam does IO (bind, connect, spawn, sleep_until), so the transport
//!   runs unchanged under turmoil and madsim. Every `select!` is `biased`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use weir_core::cluster::peer::{PeerHello, PeerMessage, PEER_FRAME_BYTES_MAX};
use weir_runtime::{Listener, Runtime};

use crate::messages::NodeInput;

/// The read buffer of an inbound plaintext peer connection.
const PEER_READ_BUFFER_BYTES: usize = 64 * 1024;
use crate::storage::StorageDriver;
use crate::tls::{ServerTls, TlsAcceptor};

/// Messages queued per destination node; when full the newest message is dropped.
pub const PEER_QUEUE_FRAMES_MAX: usize = 4096;
/// Inbound peer connections open at once; more are closed right after accept.
pub const PEER_INBOUND_CONNECTIONS_MAX: usize = 256;
/// Bound on the first frame of a connection (the hello), read before the dialer is known.
pub const PEER_HELLO_BYTES_MAX: usize = 4096;
/// First delay before redialing a peer after a failed connect or a broken connection.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
/// Cap of the doubling redial delay.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);
/// A dial that has not connected after this long is abandoned (and retried).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames coalesced into one socket write (bounded in bytes by [`WRITE_COALESCE_BYTES_MAX`]).
const WRITE_COALESCE_FRAMES_MAX: usize = 64;
/// Bytes coalesced into one socket write before it is issued.
const WRITE_COALESCE_BYTES_MAX: usize = 1 << 20;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// An inbound connection that delivers no frame (keepalives included) for this long is
/// closed, and its dialer reconnects: a connection a network partition broke silently
/// (half-open, or one that lost data) is replaced within seconds of the partition healing.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// A dialer with nothing to send writes an empty keepalive frame this often.
pub const PEER_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(1000);
/// A frame whose first byte arrived must be complete within this long, or the connection
/// is closed: a stream that lost bytes (a network that dropped data mid-frame) would
/// otherwise wait forever for a length it misread.
pub const PEER_FRAME_COMPLETE_TIMEOUT: Duration = Duration::from_secs(5);
/// Queue drops are logged on the first and then every this many.
const DROP_LOG_EVERY: u64 = 1024;
/// Failed TLS dials to one peer are logged as warnings on the first and then every this
/// many in a row (the others at debug): a peer with a bad certificate is redialed about
/// once a second.
const DIAL_TLS_FAILURE_LOG_EVERY: u32 = 60;
/// The server name a dial presents when host names are not verified and the dialed host
/// is not a valid DNS name (only the certificate chain is checked then).
const UNVERIFIED_SERVER_NAME: &str = "weir-peer.invalid";

/// TLS of the peer links: the bounded acceptor inbound connections handshake with and the
/// client side dials use, both from one [`ServerTls`] loaded by [`ServerTls::load_peer`]
/// (so one reload task swaps both).
#[derive(Debug, Clone)]
pub struct PeerTls {
    tls: ServerTls,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl PeerTls {
    /// Peer TLS over `tls`; `None` when `tls` has no client side (not loaded by
    /// [`ServerTls::load_peer`]).
    pub fn new(tls: ServerTls, handshake_timeout: Duration) -> Option<PeerTls> {
        tls.current_client()?;
        Some(PeerTls {
            acceptor: TlsAcceptor::new(tls.clone(), handshake_timeout),
            tls,
            handshake_timeout,
        })
    }
}

/// The address the controller listener binds for `peer_addr` (`controller.listener`, which
/// is advertised to other nodes as-is): an IP address (or a wildcard) is bound as given; a
/// host name is what peers dial, so the listener binds every interface on that port (the
/// simulators and container setups name hosts; a real interface is never named).
pub fn bind_address(peer_addr: &str) -> String {
    match peer_addr.rsplit_once(':') {
        Some((host, port)) => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_ok() {
                peer_addr.to_owned()
            } else {
                format!("0.0.0.0:{port}")
            }
        }
        None => peer_addr.to_owned(),
    }
}

/// Accept inbound peer connections until the node loop stops; each gets a reader task that
/// checks the hello and feeds decoded messages to the node loop.
pub async fn accept_loop<R: Runtime>(
    runtime: R,
    mut listener: R::Listener,
    cluster_id: String,
    node: crate::shards::NodeHandle,
    tls: Option<PeerTls>,
) {
    let slots = Arc::new(Semaphore::new(PEER_INBOUND_CONNECTIONS_MAX));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("peer accept failed: {error}");
                runtime
                    .sleep_until(runtime.now() + ACCEPT_RETRY_DELAY)
                    .await;
                continue;
            }
        };
        if node.is_closed() {
            return; // The node loop has stopped: stop accepting.
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(
                "closing peer connection from {peer}: {PEER_INBOUND_CONNECTIONS_MAX} open"
            );
            continue;
        };
        let cluster_id = cluster_id.clone();
        let node = node.clone();
        let runtime_for_reader = runtime.clone();
        let tls = tls.clone();
        runtime.spawn(async move {
            let rt = &runtime_for_reader;
            let read = match tls {
                None => {
                    // Buffered: a frame's length and payload, and the frames a peer wrote
                    // together, come out of one read instead of two or more each (a TLS
                    // stream buffers below its decryption already).
                    let mut stream =
                        tokio::io::BufReader::with_capacity(PEER_READ_BUFFER_BYTES, stream);
                    read_inbound(rt, &mut stream, &cluster_id, &node).await
                }
                // The handshake holds the inbound slot, bounded by the handshake timeout.
                Some(tls) => match tls.acceptor.accept(rt, stream).await {
                    Ok(mut stream) => read_inbound(rt, &mut stream, &cluster_id, &node).await,
                    Err(error) => {
                        tracing::warn!("peer TLS handshake from {peer} refused: {error}");
                        Ok(())
                    }
                },
            };
            if let Err(reason) = read {
                tracing::warn!("closing peer connection from {peer}: {reason}");
            }
            drop(slot);
        });
    }
}

/// Read one inbound connection: the hello, then messages until EOF. `Ok` on a clean end
/// (EOF, or the node loop stopped); `Err` names the protocol violation.
async fn read_inbound<R: Runtime, Rd: AsyncRead + Unpin>(
    runtime: &R,
    stream: &mut Rd,
    cluster_id: &str,
    node: &crate::shards::NodeHandle,
) -> Result<(), String> {
    let Some(hello) = read_frame(runtime, stream, PEER_HELLO_BYTES_MAX).await? else {
        return Ok(());
    };
    let hello = PeerHello::decode_checked(&hello, cluster_id)
        .map_err(|error| format!("hello refused: {error}"))?;
    let from = hello.node_id;
    tracing::debug!("peer connection from node {from}");
    let read = read_messages(runtime, stream, from, node).await;
    // However it ended, tell the node: a dead peer's connections end at once, and the
    // controller uses that to fence it sooner than a session timeout (a live peer redials
    // and heartbeats within the grace the controller gives it).
    let _ = node.try_send(NodeInput::PeerClosed { from });
    read
}

/// The messages of an inbound connection whose hello named node `from`.
async fn read_messages<R: Runtime, Rd: AsyncRead + Unpin>(
    runtime: &R,
    stream: &mut Rd,
    from: i32,
    node: &crate::shards::NodeHandle,
) -> Result<(), String> {
    while let Some(frame) = read_frame(runtime, stream, PEER_FRAME_BYTES_MAX).await? {
        if frame.is_empty() {
            continue; // A keepalive.
        }
        let message = PeerMessage::decode(&frame)
            .map_err(|error| format!("node {from} sent a bad frame: {error}"))?;
        if node.send(NodeInput::Peer { from, message }).await.is_err() {
            return Ok(()); // The node loop has stopped; the process is exiting.
        }
    }
    Ok(())
}

/// Read one length-prefixed frame; `Ok(None)` on a clean EOF before its first byte. Bounded
/// in time: [`PEER_IDLE_TIMEOUT`] for the first byte, [`PEER_FRAME_COMPLETE_TIMEOUT`] for
/// the rest.
async fn read_frame<R: Runtime, Rd: AsyncRead + Unpin>(
    runtime: &R,
    stream: &mut Rd,
    bytes_max: usize,
) -> Result<Option<Vec<u8>>, String> {
    read_frame_within(
        runtime,
        stream,
        bytes_max,
        PEER_IDLE_TIMEOUT,
        PEER_FRAME_COMPLETE_TIMEOUT,
    )
    .await
}

async fn read_frame_within<R: Runtime, Rd: AsyncRead + Unpin>(
    runtime: &R,
    stream: &mut Rd,
    bytes_max: usize,
    idle_timeout: Duration,
    complete_timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let mut prefix = [0u8; 4];
    let idle = runtime.sleep_until(runtime.now() + idle_timeout);
    let first = tokio::select! {
        biased;
        read = stream.read(&mut prefix) => read,
        () = idle => return Err("idle: no frame".to_owned()),
    };
    let mut filled = match first {
        Ok(0) => return Ok(None),
        Ok(read) => read,
        Err(error) => return Err(format!("read failed: {error}")),
    };
    let rest = async {
        while filled < prefix.len() {
            match stream.read(&mut prefix[filled..]).await {
                Ok(0) => return Err("connection closed inside a frame header".to_owned()),
                Ok(read) => filled += read,
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
        let length = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if length > bytes_max {
            return Err(format!("frame of {length} bytes exceeds {bytes_max}"));
        }
        let mut payload = vec![0u8; length];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|error| format!("read failed inside a frame: {error}"))?;
        Ok(Some(payload))
    };
    let deadline = runtime.sleep_until(runtime.now() + complete_timeout);
    tokio::select! {
        biased;
        frame = rest => frame,
        () = deadline => Err("frame incomplete: bytes lost mid-frame".to_owned()),
    }
}

/// The outgoing side: one bounded queue and task per destination node, created on the
/// first message to it. Owned by the node loop.
pub struct PeerLinks<R, S> {
    runtime: R,
    storage: S,
    /// The encoded hello every outgoing connection opens with.
    hello: Arc<Vec<u8>>,
    links: BTreeMap<i32, Link>,
    /// Where outgoing tasks report failed storage reads (the node loop poisons the node).
    read_failures: mpsc::Sender<String>,
    /// Messages dropped because a destination's queue was full.
    dropped_count: u64,
    /// TLS for dials, when the controller listener is SSL.
    tls: Option<PeerTls>,
}

/// The node loop's handle on one destination's task.
struct Link {
    addr: String,
    queue: mpsc::Sender<PeerMessage>,
}

impl<R: Runtime, S: StorageDriver> PeerLinks<R, S> {
    /// Links of node `node_id` in cluster `cluster_id`; failed reads go to `read_failures`;
    /// with `tls`, every dial is a TLS client handshake.
    pub fn new(
        runtime: R,
        storage: S,
        cluster_id: &str,
        node_id: i32,
        read_failures: mpsc::Sender<String>,
        tls: Option<PeerTls>,
    ) -> PeerLinks<R, S> {
        PeerLinks {
            runtime,
            storage,
            hello: Arc::new(PeerHello::new(cluster_id, node_id).encode()),
            links: BTreeMap::new(),
            read_failures,
            dropped_count: 0,
            tls,
        }
    }

    /// Queue `message` for node `to` at `addr`. Never waits: a full queue drops the message.
    pub fn send(&mut self, to: i32, addr: &str, message: PeerMessage) {
        // A new address (a broker re-registered elsewhere) replaces the link; the old task
        // ends once its queue is drained and closed.
        let stale = self
            .links
            .get(&to)
            .is_some_and(|link| link.addr != addr || link.queue.is_closed());
        if stale {
            self.links.remove(&to);
        }
        let link = self.links.entry(to).or_insert_with(|| {
            let (queue, messages) = mpsc::channel(PEER_QUEUE_FRAMES_MAX);
            let task = OutgoingTask {
                runtime: self.runtime.clone(),
                storage: self.storage.clone(),
                to,
                addr: addr.to_owned(),
                hello: Arc::clone(&self.hello),
                read_failures: self.read_failures.clone(),
                tls: self.tls.clone(),
            };
            self.runtime.spawn(task.run(messages));
            Link {
                addr: addr.to_owned(),
                queue,
            }
        });
        if let Err(error) = link.queue.try_send(message) {
            self.dropped_count += 1;
            if self.dropped_count % DROP_LOG_EVERY == 1 {
                tracing::warn!(
                    "peer message to node {to} dropped ({}): {} dropped so far",
                    match error {
                        mpsc::error::TrySendError::Full(_) => "queue full",
                        mpsc::error::TrySendError::Closed(_) => "link closed",
                    },
                    self.dropped_count
                );
            }
        }
    }

    /// Messages dropped so far because a destination's queue was full or closed.
    pub fn dropped_count(&self) -> u64 {
        self.dropped_count
    }
}

/// One destination's sender: dial, say hello, write queued messages in order; redial
/// with capped backoff when the connection breaks.
struct OutgoingTask<R, S> {
    runtime: R,
    storage: S,
    to: i32,
    addr: String,
    hello: Arc<Vec<u8>>,
    read_failures: mpsc::Sender<String>,
    tls: Option<PeerTls>,
}

/// An outgoing connection: plain TCP or TLS over it.
type PeerStream = Box<dyn AsyncWrite + Unpin + Send>;

impl<R: Runtime, S: StorageDriver> OutgoingTask<R, S> {
    /// Run until the node loop drops the queue's sender.
    async fn run(self, mut messages: mpsc::Receiver<PeerMessage>) {
        let mut delay = RECONNECT_DELAY_MIN;
        let mut failed_dial_count: u32 = 0;
        loop {
            if messages.is_closed() && messages.is_empty() {
                return;
            }
            let Some(mut stream) = self.dial(failed_dial_count).await else {
                failed_dial_count = failed_dial_count.wrapping_add(1);
                self.pause(delay).await;
                delay = (delay * 2).min(RECONNECT_DELAY_MAX);
                continue;
            };
            failed_dial_count = 0;
            match self.write_messages(&mut stream, &mut messages).await {
                WriteEnd::QueueClosed => return,
                WriteEnd::Broken(reason) => {
                    tracing::info!(
                        "peer connection to node {} at {}: {reason}",
                        self.to,
                        self.addr
                    );
                    // A connection that carried traffic restarts the backoff.
                    delay = RECONNECT_DELAY_MIN;
                    self.pause(delay).await;
                }
            }
        }
    }

    /// Connect (bounded by [`CONNECT_TIMEOUT`]), handshake TLS if configured (bounded by
    /// the handshake timeout) and send the hello. `failed_dial_count` is the number of
    /// dials that failed in a row before this one (it throttles warnings).
    async fn dial(&self, failed_dial_count: u32) -> Option<PeerStream> {
        let deadline = self
            .runtime
            .sleep_until(self.runtime.now() + CONNECT_TIMEOUT);
        let connected = tokio::select! {
            biased;
            connected = self.runtime.connect(&self.addr) => connected,
            () = deadline => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")),
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!("cannot dial node {} at {}: {error}", self.to, self.addr);
                return None;
            }
        };
        let mut stream: PeerStream = match &self.tls {
            None => Box::new(stream),
            Some(tls) => match self.handshake(tls, stream).await {
                Ok(stream) => Box::new(stream),
                Err(reason) => {
                    let (to, addr) = (self.to, &self.addr);
                    if failed_dial_count.is_multiple_of(DIAL_TLS_FAILURE_LOG_EVERY) {
                        tracing::warn!("peer TLS handshake with node {to} at {addr}: {reason}");
                    } else {
                        tracing::debug!("peer TLS handshake with node {to} at {addr}: {reason}");
                    }
                    return None;
                }
            },
        };
        let mut frame = Vec::with_capacity(4 + self.hello.len());
        push_frame(&mut frame, &self.hello);
        let written = match stream.write_all(&frame).await {
            Ok(()) => stream.flush().await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::debug!("hello to node {} at {} failed: {error}", self.to, self.addr);
            return None;
        }
        tracing::debug!("peer connection to node {} at {}", self.to, self.addr);
        Some(stream)
    }

    /// The client side of a TLS handshake with the dialed peer, bounded in time.
    async fn handshake(
        &self,
        tls: &PeerTls,
        stream: R::Stream,
    ) -> Result<crate::tls::TlsClientStream<R::Stream>, String> {
        let Some(config) = tls.tls.current_client() else {
            return Err("no client TLS config (not loaded for peer links)".to_owned());
        };
        let name = server_name(&self.addr, tls.tls.verifies_hostname())?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let timeout = tls.handshake_timeout;
        let deadline = self.runtime.sleep_until(self.runtime.now() + timeout);
        tokio::select! {
            biased;
            connected = connector.connect(name, crate::tls::buffered_reads(stream)) => {
                connected.map_err(|error| format!("refused: {error}"))
            }
            () = deadline => Err(format!("timed out after {timeout:?}")),
        }
    }

    /// Write queued messages until the queue closes or the connection breaks. Consecutive
    /// queued messages are coalesced into one write.
    async fn write_messages<W: AsyncWrite + Unpin>(
        &self,
        stream: &mut W,
        messages: &mut mpsc::Receiver<PeerMessage>,
    ) -> WriteEnd {
        let mut buffer = Vec::new();
        loop {
            let keepalive = self
                .runtime
                .sleep_until(self.runtime.now() + PEER_KEEPALIVE_INTERVAL);
            let received = tokio::select! {
                biased;
                received = messages.recv() => Some(received),
                () = keepalive => None,
            };
            let Some(received) = received else {
                // Idle: an empty frame keeps the receiver from closing a healthy link, and
                // a write error here finds a broken one.
                let written = match stream.write_all(&0u32.to_be_bytes()).await {
                    Ok(()) => stream.flush().await,
                    Err(error) => Err(error),
                };
                if let Err(error) = written {
                    return WriteEnd::Broken(format!("keepalive failed: {error}"));
                }
                continue;
            };
            let Some(message) = received else {
                let _ = stream.shutdown().await;
                return WriteEnd::QueueClosed;
            };
            buffer.clear();
            let mut next = Some(message);
            let mut frame_count = 0;
            while let Some(message) = next.take() {
                self.append(&mut buffer, message);
                frame_count += 1;
                if frame_count < WRITE_COALESCE_FRAMES_MAX
                    && buffer.len() < WRITE_COALESCE_BYTES_MAX
                {
                    next = messages.try_recv().ok();
                }
            }
            if buffer.is_empty() {
                continue;
            }
            if let Err(error) = stream.write_all(&buffer).await {
                return WriteEnd::Broken(format!("write failed: {error}"));
            }
            if let Err(error) = stream.flush().await {
                return WriteEnd::Broken(format!("flush failed: {error}"));
            }
        }
    }

    /// Resolve the message's reads, encode it and append its frame; a message that cannot
    /// be sent is dropped (after reporting a failed read, which poisons the node).
    fn append(&self, buffer: &mut Vec<u8>, mut message: PeerMessage) {
        if let Err(error) = message.resolve_reads(&self.storage) {
            let reason = format!("storage read for node {} failed: {error}", self.to);
            tracing::error!("{reason}");
            // One report poisons the node; later ones may be dropped.
            let _ = self.read_failures.try_send(reason);
            return;
        }
        let payload = message.encode();
        if payload.len() > PEER_FRAME_BYTES_MAX {
            tracing::error!(
                "peer message to node {} of {} bytes exceeds {PEER_FRAME_BYTES_MAX}; dropped",
                self.to,
                payload.len()
            );
            return;
        }
        push_frame(buffer, &payload);
    }

    async fn pause(&self, delay: Duration) {
        self.runtime.sleep_until(self.runtime.now() + delay).await;
    }
}

/// Why an outgoing connection stopped being written.
enum WriteEnd {
    /// The node loop dropped the link: stop for good.
    QueueClosed,
    /// The connection broke: redial.
    Broken(String),
}

/// The name a dial to `addr` (`host:port`) verifies the peer's certificate against: the
/// host, a DNS name or an IP address. Without host name verification a host that is
/// neither still dials (under a placeholder name).
fn server_name(addr: &str, verify_hostname: bool) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match ServerName::try_from(host.to_owned()) {
        Ok(name) => Ok(name),
        Err(_) if !verify_hostname => Ok(ServerName::from(
            rustls::pki_types::DnsName::try_from(UNVERIFIED_SERVER_NAME)
                .expect("a valid DNS name constant"),
        )),
        Err(error) => Err(format!(
            "host {host} cannot be verified ({error}); name peers by DNS name or IP address"
        )),
    }
}

/// Append a length-prefixed frame. The caller checked `payload.len()` against the bound.
fn push_frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    let length = u32::try_from(payload.len()).expect("frames are bounded far below 4 GiB");
    buffer.extend_from_slice(&length.to_be_bytes());
    buffer.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    // Goal: framing refuses oversize and truncated frames and round-trips good ones; the
    // hello gate closes on a foreign cluster; bind addresses follow the documented rule.
    // Method: drive the reader over in-memory duplex pipes.
    use super::*;

    // Goal: a dial verifies the host it dials, by DNS name or IP address; without
    // verification an odd host still dials.
    #[test]
    fn server_name_rule() {
        let name = server_name("127.0.0.1:9093", true).expect("an IP address");
        assert!(matches!(name, ServerName::IpAddress(_)), "{name:?}");
        let name = server_name("[::1]:9093", true).expect("an IPv6 address");
        assert!(matches!(name, ServerName::IpAddress(_)), "{name:?}");
        let name = server_name("broker-2.example:9093", true).expect("a DNS name");
        assert_eq!(name.to_str(), "broker-2.example");
        let error = server_name("bad host:9093", true).expect_err("refused");
        assert!(error.contains("cannot be verified"), "{error}");
        let name = server_name("bad host:9093", false).expect("unverified");
        assert_eq!(name.to_str(), UNVERIFIED_SERVER_NAME);
    }

    #[test]
    fn bind_address_rule() {
        assert_eq!(bind_address("127.0.0.1:19092"), "127.0.0.1:19092");
        assert_eq!(bind_address("0.0.0.0:19092"), "0.0.0.0:19092");
        assert_eq!(bind_address("[::1]:19092"), "[::1]:19092");
        assert_eq!(bind_address("node3:19092"), "0.0.0.0:19092");
    }

    #[tokio::test]
    async fn frames_round_trip_and_bounds_hold() {
        let rt = weir_runtime::TokioRuntime::new(1);
        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        let mut bytes = Vec::new();
        push_frame(&mut bytes, b"hello");
        bytes.extend_from_slice(&100u32.to_be_bytes());
        near.write_all(&bytes).await.expect("write");
        assert_eq!(
            read_frame(&rt, &mut far, 10).await,
            Ok(Some(b"hello".to_vec()))
        );
        let error = read_frame(&rt, &mut far, 10).await.expect_err("oversize");
        assert!(error.contains("exceeds"), "{error}");
        drop(near);
        assert_eq!(read_frame(&rt, &mut far, 10).await, Ok(None));
    }

    #[tokio::test]
    async fn inbound_checks_hello_and_forwards_messages() {
        let rt = weir_runtime::TokioRuntime::new(1);
        let (node, mut inputs) = mpsc::channel(8);
        let node = crate::shards::NodeHandle::single(node);
        // A foreign cluster's hello closes the connection before any message.
        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        let mut bytes = Vec::new();
        push_frame(&mut bytes, &PeerHello::new("other", 2).encode());
        near.write_all(&bytes).await.expect("write");
        let error = read_inbound(&rt, &mut far, "mine", &node)
            .await
            .expect_err("refused");
        assert!(error.contains("hello refused"), "{error}");

        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        let message = PeerMessage::AutoCreate {
            names: vec!["t".to_owned()],
        };
        let mut bytes = Vec::new();
        push_frame(&mut bytes, &PeerHello::new("mine", 2).encode());
        push_frame(&mut bytes, &message.encode());
        push_frame(&mut bytes, &[250, 1, 2]);
        near.write_all(&bytes).await.expect("write");
        let error = read_inbound(&rt, &mut far, "mine", &node)
            .await
            .expect_err("bad frame");
        assert!(error.contains("bad frame"), "{error}");
        match inputs.try_recv() {
            Ok(NodeInput::Peer { from, message: got }) => {
                assert_eq!(from, 2);
                assert_eq!(got, message);
            }
            other => panic!("expected a peer input, got {other:?}"),
        }
    }

    // Goal: a stream that lost bytes mid-frame (a network that dropped data) is closed
    // instead of waiting forever. Method: announce 64 bytes, send 3, wait (paused clock).
    #[tokio::test]
    async fn a_frame_that_never_completes_closes_the_connection() {
        let rt = weir_runtime::TokioRuntime::new(1);
        let short = Duration::from_millis(50);
        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        near.write_all(&64u32.to_be_bytes()).await.expect("write");
        near.write_all(b"abc").await.expect("write");
        let read = read_frame_within(&rt, &mut far, 1024, short, short).await;
        let error = read.expect_err("stalled");
        assert!(error.contains("incomplete"), "{error}");
        let read = read_frame_within(&rt, &mut far, 1024, short, short).await;
        let error = read.expect_err("idle");
        assert!(error.contains("idle"), "{error}");
        drop(near);
    }
}
