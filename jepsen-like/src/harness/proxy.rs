//! A fault-injecting TCP proxy: the fallback network when network namespaces are not
//! available (no root, no `ip netns`).
//!
//! One [`Proxy`] forwards one listen address to one upstream address. Its [`Faults`] can be
//! changed at any time: `blocked` refuses new connections and closes open ones (a
//! partition; from the sender's point of view the peer vanished), `delay_ms` holds every
//! chunk that long before forwarding it (latency), and `loss_per_mille` closes a connection
//! when a chunk is "lost" (TCP cannot lose bytes in the middle of a stream, so loss shows as
//! a reset connection, which is what a Kafka client sees after retransmissions give up).
//!
//! Invariants: bytes are forwarded in order and unmodified; once `blocked` is set, no byte
//! crosses the proxy until it is cleared; the number of open connections is bounded by
//! [`CONNECTIONS_MAX`] (extra ones are refused).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::schedule::Rng;

/// Open connections per proxy, at most.
pub const CONNECTIONS_MAX: usize = 256;
/// Bytes read per chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// What the proxy currently does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Refuse and cut every connection.
    pub blocked: bool,
    /// Added latency per chunk, ms.
    pub delay_ms: u32,
    /// Chance per chunk (per mille) that the connection is reset.
    pub loss_per_mille: u32,
}

/// A running proxy; dropping it stops accepting (open connections end with the runtime).
#[derive(Debug)]
pub struct Proxy {
    /// The address clients connect to.
    pub listen: SocketAddr,
    /// Where bytes go.
    pub upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    open: Arc<AtomicUsize>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Binds `listen` (port 0 picks one) and forwards to `upstream`.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let listen = listener.local_addr()?;
        let (faults, watcher) = watch::channel(Faults::default());
        let open = Arc::new(AtomicUsize::new(0));
        let accept_task =
            tokio::spawn(accept_loop(listener, upstream, watcher, open.clone(), seed));
        Ok(Self {
            listen,
            upstream,
            faults,
            open,
            accept_task,
        })
    }

    /// Replaces the faults; takes effect for every open connection at once.
    pub fn set(&self, faults: Faults) {
        self.faults.send_replace(faults);
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        *self.faults.borrow()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Cut open connections too: a stopped proxy forwards nothing.
        self.faults.send_replace(Faults {
            blocked: true,
            ..Faults::default()
        });
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    watcher: watch::Receiver<Faults>,
    open: Arc<AtomicUsize>,
    seed: u64,
) {
    let mut connection_index = 0u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connection_index += 1;
        if watcher.borrow().blocked || open.load(Ordering::SeqCst) >= CONNECTIONS_MAX {
            drop(client);
            continue;
        }
        let watcher = watcher.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::SeqCst);
        let rng = Rng::new(seed, &format!("proxy-{connection_index}"));
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay(client, server, watcher, rng).await;
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Pumps both directions until either side closes or a fault cuts the connection.
async fn relay(client: TcpStream, server: TcpStream, watcher: watch::Receiver<Faults>, rng: Rng) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut up_rng = rng.clone();
    up_rng.next_u64();
    let up = pump(client_read, server_write, watcher.clone(), up_rng);
    let down = pump(server_read, client_write, watcher, rng);
    // When one direction ends, the other is dropped too: the connection is closed whole.
    tokio::select! {
        biased;
        () = up => {}
        () = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut watcher: watch::Receiver<Faults>,
    mut rng: Rng,
) {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        if watcher.borrow_and_update().blocked {
            return;
        }
        let read = tokio::select! {
            biased;
            changed = watcher.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            read = from.read(&mut buffer) => read,
        };
        let Ok(count) = read else { return };
        if count == 0 {
            let _ = to.shutdown().await;
            return;
        }
        let faults = *watcher.borrow();
        if faults.blocked {
            return;
        }
        if faults.loss_per_mille > 0 && rng.below(1000) < u64::from(faults.loss_per_mille) {
            return;
        }
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(faults.delay_ms))).await;
            if watcher.borrow().blocked {
                return;
            }
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo server");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut answer = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut answer))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(answer)
    }

    fn any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    // Goal: a healthy proxy forwards bytes unchanged in both directions. Method: echo
    // through it.
    #[tokio::test]
    async fn forwards_bytes() {
        let upstream = echo_server().await;
        let proxy = Proxy::start(any_port(), upstream, 1).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.listen).await.expect("connect");
        for message in [&b"hello"[..], b"kafka bytes", &[0u8, 255, 7][..]] {
            assert_eq!(
                round_trip(&mut stream, message).await.expect("echo"),
                message
            );
        }
        assert_eq!(proxy.open_connections(), 1);
    }

    // Goal: blocking cuts open connections and refuses new ones; unblocking heals. Method:
    // echo, block, observe the failure, unblock, echo on a new connection.
    #[tokio::test]
    async fn block_cuts_and_heals() {
        let upstream = echo_server().await;
        let proxy = Proxy::start(any_port(), upstream, 2).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.listen).await.expect("connect");
        round_trip(&mut stream, b"before")
            .await
            .expect("echo before the fault");
        proxy.set(Faults {
            blocked: true,
            ..Faults::default()
        });
        assert!(
            round_trip(&mut stream, b"during").await.is_err(),
            "bytes crossed a block"
        );
        let mut fresh = TcpStream::connect(proxy.listen)
            .await
            .expect("tcp accept still works");
        assert!(
            round_trip(&mut fresh, b"new").await.is_err(),
            "new connection was served"
        );
        proxy.set(Faults::default());
        let mut healed = TcpStream::connect(proxy.listen)
            .await
            .expect("connect after heal");
        assert_eq!(
            round_trip(&mut healed, b"after")
                .await
                .expect("echo after heal"),
            b"after"
        );
    }

    // Goal: delay adds latency, loss resets connections. Method: time a round trip with
    // 150 ms delay; with 1000 per mille loss the first chunk kills the connection.
    #[tokio::test]
    async fn delay_and_loss() {
        let upstream = echo_server().await;
        let proxy = Proxy::start(any_port(), upstream, 3).await.expect("proxy");
        proxy.set(Faults {
            delay_ms: 150,
            ..Faults::default()
        });
        let mut stream = TcpStream::connect(proxy.listen).await.expect("connect");
        let started = tokio::time::Instant::now();
        round_trip(&mut stream, b"slow")
            .await
            .expect("delayed echo");
        // Both directions are delayed.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        proxy.set(Faults {
            loss_per_mille: 1000,
            ..Faults::default()
        });
        let mut lossy = TcpStream::connect(proxy.listen).await.expect("connect");
        assert!(round_trip(&mut lossy, b"lost").await.is_err());
    }
}
