//! Kafka's Java murmur2 hash, which the default partitioner applies to record keys.
//!
//! Invariant: bit-for-bit equal to `org.apache.kafka.common.utils.Utils.murmur2` (seed
//! 0x9747b28c, little-endian 4-byte blocks, unsigned tail bytes), so keyed records land on
//! the partitions Java, librdkafka (murmur2_random) and kafka-python clients choose.

/// Kafka's murmur2 of `data`, as Java's signed int.
pub fn murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive(murmur2(key)) % n`; 0 for a non-positive count.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    if partition_count <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partition_count
}

#[cfg(test)]
mod tests {
    // Goal: agree with Kafka's reference implementation. Method: golden values computed with
    // kafka-python 3.0.12 (`kafka.partitioner.default.murmur2`, which returns the unsigned
    // 32-bit value) covering every tail length and bytes >= 0x80.
    use super::*;

    #[test]
    fn golden_values() {
        let all: Vec<u8> = (0..=255u8).collect();
        let cases: &[(&[u8], u32)] = &[
            (b"", 275_646_681),
            (b"a", 2_731_586_172),
            (b"ab", 316_155_434),
            (b"abc", 479_470_107),
            (b"foo", 597_841_616),
            (b"hello world", 1_221_641_059),
            (b"key-12345", 3_342_263_381),
            (&all, 2_346_620_022),
            (b"\xff\xfe\x80", 4_134_240_899),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key) as u32, *want, "key {key:?}");
        }
    }

    #[test]
    fn partitions() {
        // (murmur2 & 0x7fffffff) % n, computed from the golden values above.
        assert_eq!(
            partition_for_key(b"foo", 3),
            (597_841_616 & 0x7fff_ffff) % 3
        );
        assert_eq!(
            partition_for_key(b"key-12345", 10),
            ((3_342_263_381u32 & 0x7fff_ffff) % 10) as i32
        );
        assert_eq!(partition_for_key(b"a", 1), 0);
        assert_eq!(partition_for_key(b"a", 0), 0);
        for n in 1..50 {
            let p = partition_for_key(b"\xff\xfe\x80", n);
            assert!((0..n).contains(&p));
        }
    }
}
