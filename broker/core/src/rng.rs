//! The core's one source of randomness: a seeded SplitMix64 stream, forked per subsystem.
//!
//! Every draw the broker makes (Raft election timeouts, BUGGIFY decisions, identities such
//! as a process incarnation) comes from a [`Rng`] whose seed the driver handed in through
//! [`crate::NodeConfig::seed`] (production: the runtime seam's entropy; simulations: the
//! run's seed). Subsystems draw from their own fork (`rng.fork(SALT_*)`), so a new draw in
//! one of them never shifts another's stream (iggy's salted streams, STYLE.md rule 10).
//!
//! Invariants:
//! - A stream depends only on its seed: the same seed replays bit for bit.
//! - No OS randomness, no globals; forking does not advance the parent.
//!
//! SplitMix64 (Steele, Lea, Flood 2014) is small, fast and passes BigCrush; nothing here
//! needs cryptographic strength.

/// The golden-ratio increment of SplitMix64 (also a good odd multiplier for mixing ids).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Salt of Raft's stream (election timeout jitter): "RAFTELEC".
pub const SALT_RAFT: u64 = 0x5241_4654_454c_4543;
/// Salt of a node's incarnation id (a new one every start): "INCARNAT".
pub const SALT_INCARNATION: u64 = 0x494e_4341_524e_4154;

/// SplitMix64's output function: a bijective 64-bit mix. Also used on its own to derive
/// stable identities from counters (`topic::derive_topic_id`).
pub fn mix(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded pseudo-random stream (SplitMix64). Deliberately not `Copy`: a copied stream
/// would replay the same draws in two places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for a subsystem, told apart by `salt` (a `SALT_*` constant,
    /// optionally mixed with an id). Does not advance `self`.
    pub fn fork(&self, salt: u64) -> Rng {
        Rng {
            state: mix(self.state ^ mix(salt)),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A value in `min..max`.
    ///
    /// # Panics
    /// If the range is empty (`max <= min`): a caller bug, never input-driven.
    pub fn range(&mut self, min: u64, max: u64) -> u64 {
        assert!(max > min, "empty range {min}..{max}");
        min + self.next_u64() % (max - min)
    }

    /// A value in `low..=high` (`low` when `high <= low`).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high.saturating_sub(low) + 1)
    }

    /// True with probability `per_mille / 1000` (always draws once).
    pub fn chance_per_mille(&mut self, per_mille: u32) -> bool {
        self.next_u64() % 1000 < u64::from(per_mille)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_are_independent() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let draws: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(draws, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        // Forking does not advance the parent, and two salts give two streams.
        let parent = Rng::new(7);
        let mut raft = parent.fork(SALT_RAFT);
        let mut other = parent.fork(SALT_INCARNATION);
        assert_eq!(parent, Rng::new(7));
        assert_ne!(raft.next_u64(), other.next_u64());
        assert_ne!(parent.fork(SALT_RAFT).next_u64(), Rng::new(7).next_u64());
    }

    #[test]
    fn splitmix64_reference_values() {
        // Reference output of SplitMix64 seeded with 1234567 (Vigna's C implementation).
        let mut rng = Rng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let v = rng.range(10, 20);
            assert!((10..20).contains(&v));
            let w = rng.between(5, 5);
            assert_eq!(w, 5);
        }
        let hits = (0..10_000).filter(|_| rng.chance_per_mille(100)).count();
        assert!((700..1300).contains(&hits), "{hits} hits for 10%");
    }
}
