//! weir-runtime: the one seam through which Weir's drivers reach time, the network, tasks
//! and blocking work.
//!
//! # Architecture invariants
//! - [`TokioRuntime`] is the only code in the broker that reads a real clock; it does so
//!   behind a local `#[allow]`. Everything else asks a [`Runtime`].
//! - Under `--cfg madsim` the same source compiles against madsim's tokio shim (the
//!   workspace maps `tokio` to `madsim-tokio`), so [`TokioRuntime`] is then simulated too.
//!   turmoil gets its own implementation in weir-sim, so production never links turmoil.
//! - No Kafka knowledge here.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// A listening socket.
pub trait Listener: Send + 'static {
    /// The accepted stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Accept one connection; returns the stream and the peer's address as text.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;
    /// The bound local address as `host:port` (useful with port 0).
    fn local_addr(&self) -> io::Result<String>;
}

/// Everything a driver may ask of the outside world.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Stream type for outgoing and accepted connections.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Listener type.
    type Listener: Listener<Stream = Self::Stream>;

    /// Monotonic time since this runtime's epoch.
    fn now(&self) -> Duration;
    /// Wall-clock milliseconds since the Unix epoch (record timestamps only).
    fn wall_ms(&self) -> i64;
    /// Sleep until `now() >= deadline`.
    fn sleep_until(&self, deadline: Duration) -> impl Future<Output = ()> + Send + 'static;
    /// Spawn a task.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;
    /// Bind a listener at `host:port`.
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// Connect to `host:port`.
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Run blocking work (an fsync) without stalling the caller's event loop.
    fn offload<T, F>(&self, work: F) -> impl Future<Output = T> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;
    /// A seed for this process's deterministic RNG streams.
    fn rng_seed(&self) -> u64;
    /// 32 secret bytes for unpredictable values (SASL nonces and salts). The default
    /// derives them from [`Runtime::rng_seed`], so simulations replay them; production's
    /// [`TokioRuntime::from_entropy`] draws them from the OS.
    fn secret_seed(&self) -> [u8; 32] {
        expand_seed(self.rng_seed())
    }
}

/// 32 bytes from a 64-bit seed (SplitMix64 steps): deterministic, for simulations.
pub fn expand_seed(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut out = [0; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Production runtime over tokio (or madsim's tokio under `--cfg madsim`).
#[derive(Clone)]
pub struct TokioRuntime {
    epoch: tokio::time::Instant,
    seed: u64,
    secret: [u8; 32],
}

impl std::fmt::Debug for TokioRuntime {
    // The secret seed keys SASL nonces: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioRuntime")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl TokioRuntime {
    /// A runtime whose monotonic epoch is now. Must be called inside a tokio runtime.
    // The seam. Under madsim, `tokio::time::Instant` is std's, intercepted and simulated.
    #[allow(clippy::disallowed_methods)]
    pub fn new(seed: u64) -> TokioRuntime {
        TokioRuntime {
            epoch: tokio::time::Instant::now(),
            seed,
            secret: expand_seed(seed),
        }
    }

    /// A runtime seeded from the process's entropy: the wall clock in nanoseconds, the
    /// process id and std's per-process hasher keys. For production binaries only;
    /// simulations and tests pass their seed to [`TokioRuntime::new`].
    // The seam: the one place that turns the OS's randomness into a seed.
    #[allow(clippy::disallowed_methods)]
    pub fn from_entropy() -> TokioRuntime {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(nanos);
        hasher.write_u32(std::process::id());
        let mut runtime = TokioRuntime::new(hasher.finish());
        // SASL nonces and salts must be unpredictable: 256 bits from the OS, not the
        // 64-bit seed (kept for the deterministic streams). Should the OS refuse, the
        // seed's expansion stays (still secret, only smaller).
        let mut secret = [0; 32];
        if getrandom::getrandom(&mut secret).is_ok() {
            runtime.secret = secret;
        }
        runtime
    }
}

/// A tokio listener.
#[derive(Debug)]
pub struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, String)> {
        let (stream, peer) = self.0.accept().await?;
        // Small requests and responses must not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        Ok((stream, peer.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.0.local_addr()?.to_string())
    }
}

impl Runtime for TokioRuntime {
    type Stream = tokio::net::TcpStream;
    type Listener = TokioListener;

    // The seam. Under madsim, `tokio::time::Instant` is std's, intercepted and simulated.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Duration {
        tokio::time::Instant::now().duration_since(self.epoch)
    }

    #[allow(clippy::disallowed_methods)] // The seam: the one place that reads the wall clock.
    fn wall_ms(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }

    fn sleep_until(&self, deadline: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(self.epoch + deadline)
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(TokioListener(tokio::net::TcpListener::bind(addr).await?))
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    #[allow(clippy::disallowed_methods)] // The seam: blocking work leaves the event loop here.
    async fn offload<T, F>(&self, work: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // Under madsim there are no threads to leave for (it refuses them): blocking work
        // is simulated storage, so run it in place. (weir-sim; the only cfg(madsim) here.)
        #[cfg(madsim)]
        return work();
        #[cfg(not(madsim))]
        match tokio::task::spawn_blocking(work).await {
            Ok(value) => value,
            // The closure panicked: an invariant broke inside blocking work; propagate.
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    }

    fn rng_seed(&self) -> u64 {
        self.seed
    }

    fn secret_seed(&self) -> [u8; 32] {
        self.secret
    }
}
