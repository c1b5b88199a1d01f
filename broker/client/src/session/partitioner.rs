//! Kafka's default partitioner, so a key lands on the same partition as with the Java client.
//!
//! - Keyed records: `(murmur2(key) & 0x7fffffff) % partition_count`
//!   ([`weir_wire::murmur2::partition_for_key`]). An empty key is still a key (Java hashes it).
//! - Unkeyed records: sticky (KIP-480). A topic sticks to one partition until the batch being
//!   filled there is full or sent, then moves to the next partition round-robin; sticky
//!   batches fill up, which beats spraying tiny batches over every partition.
//!
//! Invariant: the result is in `0..partition_count` whenever `partition_count > 0`.

use std::collections::BTreeMap;

use crate::session::retry::SplitMix64;

/// Per-topic sticky state plus the keyed hash.
#[derive(Debug, Clone)]
pub struct Partitioner {
    sticky: BTreeMap<String, i32>,
    rng: SplitMix64,
}

impl Partitioner {
    /// A partitioner whose sticky start partitions derive from `seed`.
    pub fn new(seed: u64) -> Partitioner {
        Partitioner {
            sticky: BTreeMap::new(),
            rng: SplitMix64::new(seed),
        }
    }

    /// The partition for a record of `topic` with `key`.
    pub fn partition(&mut self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> i32 {
        assert!(partition_count > 0, "partition_count={partition_count}");
        if let Some(key) = key {
            return weir_wire::murmur2::partition_for_key(key, partition_count);
        }
        if let Some(&sticky) = self.sticky.get(topic) {
            if sticky < partition_count {
                return sticky;
            }
        }
        let start = self.rng.below(partition_count);
        self.sticky.insert(topic.to_owned(), start);
        start
    }

    /// The sticky partition's batch of `topic` was completed (full or drained): move on.
    pub fn on_batch_closed(&mut self, topic: &str, partition: i32, partition_count: i32) {
        if partition_count <= 0 {
            return;
        }
        if self.sticky.get(topic) == Some(&partition) {
            self.sticky
                .insert(topic.to_owned(), (partition + 1) % partition_count);
        }
    }
}

#[cfg(test)]
mod tests {
    // Goal: keyed records map exactly as the Java client maps them, and unkeyed records stick
    // then rotate. Method: golden hashes from Kafka's UtilsTest.testMurmur2, turned into
    // partitions by hand, plus a sticky-rotation walk.
    use super::*;

    #[test]
    fn keyed_partitions_match_java_golden_values() {
        // (key, Java murmur2 from apache/kafka UtilsTest)
        let golden: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        let mut partitioner = Partitioner::new(0);
        for &(key, hash) in golden {
            assert_eq!(weir_wire::murmur2::murmur2(key), hash, "murmur2({key:?})");
            for count in [1, 3, 7, 12, 100] {
                let expected = (hash & 0x7fff_ffff) % count;
                assert_eq!(partitioner.partition("t", Some(key), count), expected);
            }
        }
        // Worked by hand: "foobar" -> 1357151166 = 3 * 452383722.
        assert_eq!(partitioner.partition("t", Some(b"foobar"), 3), 0);
        // An empty key is hashed, not treated as "no key".
        let empty = (weir_wire::murmur2::murmur2(b"") & 0x7fff_ffff) % 5;
        assert_eq!(partitioner.partition("t", Some(b""), 5), empty);
    }

    #[test]
    fn unkeyed_records_stick_then_rotate() {
        let mut partitioner = Partitioner::new(9);
        let first = partitioner.partition("t", None, 3);
        assert!((0..3).contains(&first));
        assert_eq!(partitioner.partition("t", None, 3), first);
        // Closing a batch on another partition does not move the sticky choice.
        partitioner.on_batch_closed("t", (first + 1) % 3, 3);
        assert_eq!(partitioner.partition("t", None, 3), first);
        partitioner.on_batch_closed("t", first, 3);
        assert_eq!(partitioner.partition("t", None, 3), (first + 1) % 3);
        // A shrunken view of the topic re-picks inside the range.
        assert!((0..1).contains(&partitioner.partition("t", None, 1)));
    }
}
