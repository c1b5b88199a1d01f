//! The trace hash: FNV-1a over a run's observable events (history lines with simulated
//! timestamps, fault actions, disk fates). Two runs of one seed must give the same hash;
//! CI runs a seed twice and compares (`cargo xtask sim --determinism`).

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut trace = Trace::default();
    trace.add(bytes);
    trace.finish()
}

/// An incremental FNV-1a hash.
#[derive(Debug, Clone, Copy)]
pub struct Trace(u64);

impl Default for Trace {
    fn default() -> Trace {
        Trace(FNV_OFFSET)
    }
}

impl Trace {
    /// Hash more bytes.
    pub fn add(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Hash one line (a separator keeps `["ab","c"]` apart from `["a","bc"]`).
    pub fn line(&mut self, line: &str) {
        self.add(line.as_bytes());
        self.add(b"\n");
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}
