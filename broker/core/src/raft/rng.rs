//! SplitMix64: the node's only source of randomness (election timeout jitter).
//!
//! Invariant: the stream depends only on the seed handed to [`super::Raft::new`] and the
//! node id, so a run replays bit for bit.

/// Salt mixed into the seed so that Raft's stream differs from other subsystems' streams
/// derived from the same node seed.
const SALT_RAFT: u64 = 0x5241_4654_454c_4543; // "RAFTELEC"

#[derive(Debug, Clone)]
pub(super) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(super) fn new(seed: u64, id: i32) -> SplitMix64 {
        // Mix the id in so that nodes given the same seed still draw different timeouts.
        let id_bits = u64::from(id as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SplitMix64 {
            state: seed ^ SALT_RAFT ^ id_bits,
        }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `min..max` (`max > min`).
    pub(super) fn range(&mut self, min: u64, max: u64) -> u64 {
        assert!(max > min, "empty range {min}..{max}");
        min + self.next_u64() % (max - min)
    }
}
