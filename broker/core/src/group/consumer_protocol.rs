//! The embedded consumer protocol (`protocol_type = "consumer"`): the subscription a member
//! sends in JoinGroup metadata and the assignment the leader hands out in SyncGroup. The
//! broker relays both as opaque bytes; it reads them only to answer OffsetDelete
//! (GROUP_SUBSCRIBED_TO_TOPIC) and for operator views, and the native client writes them.
//!
//! Layout (Kafka's ConsumerProtocolSubscription / ConsumerProtocolAssignment, non-flexible):
//! `version: i16`, then `topics: [string]` (subscription) or `[(string, [i32])]`
//! (assignment), then fields of later versions (user data, owned partitions, ...) that
//! these parsers ignore. Parsers never panic and return `None` on malformed input.

use bytes::{BufMut, Bytes, BytesMut};

/// Bound on elements of an array read from member metadata (each takes >= 2 bytes anyway).
const ARRAY_LEN_MAX: usize = 100_000;

/// A cursor over member metadata, which is client input: every read checks the length
/// left first, so a lying length ends the parse with `None` instead of a panic.
struct Reader<'a> {
    /// What is left to read.
    bytes: &'a [u8],
}

impl Reader<'_> {
    /// The next `n` bytes, or `None` (and nothing consumed) when fewer are left.
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        assert_eq!(head.len(), n, "split_at gave a short head");
        self.bytes = tail;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        let b = self.take(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A non-null string; invalid UTF-8 is replaced rather than refused, since the broker
    /// only shows these names (it never looks a topic up by them).
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let b = self.take(len)?;
        Some(String::from_utf8_lossy(b).into_owned())
    }

    /// An array's element count, refused when it exceeds what the bytes left could hold:
    /// that bounds the allocation a parse makes by the size of the input, not by its claims.
    fn array_len(&mut self) -> Option<usize> {
        let len = self.i32()?;
        if len < 0 {
            return Some(0); // null array
        }
        let len = usize::try_from(len).ok()?;
        let len = (len <= ARRAY_LEN_MAX && len <= self.bytes.len()).then_some(len)?;
        assert!(len <= ARRAY_LEN_MAX, "len={len}");
        Some(len)
    }
}

/// The topics of a subscription.
pub fn parse_subscription(bytes: &[u8]) -> Option<Vec<String>> {
    let mut reader = Reader { bytes };
    // Every version starts with the topic list, so the version needs no check; the fields
    // of later versions are left unread.
    let _version = reader.i16()?;
    let count = reader.array_len()?;
    (0..count).map(|_| reader.string()).collect()
}

/// The (topic, partitions) of an assignment.
pub fn parse_assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    // Empty is the assignment a member holds before its first SyncGroup (and what a
    // leader may send a member it gives nothing), not a malformed one.
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut reader = Reader { bytes };
    let _version = reader.i16()?;
    let count = reader.array_len()?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = reader.string()?;
        let partition_count = reader.array_len()?;
        let partitions = (0..partition_count)
            .map(|_| reader.i32())
            .collect::<Option<Vec<i32>>>()?;
        topics.push((topic, partitions));
    }
    Some(topics)
}

/// Kafka's non-flexible string. Topic names are at most 249 bytes, far below the `i16`
/// length limit, so the clamp never cuts a name the encoders are given.
fn put_string(out: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.put_i16(len);
    out.put_slice(&s.as_bytes()[..len as usize]);
}

/// A version-0 subscription (no user data).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
    for topic in topics {
        put_string(&mut out, topic);
    }
    out.put_i32(-1); // null user data
    out.freeze()
}

/// A version-0 assignment (no user data). Version 0 is the one every client reads; the
/// later versions only add fields the native client (`weir-client`) does not set.
pub fn encode_assignment(topics: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
    for (topic, partitions) in topics {
        put_string(&mut out, topic);
        out.put_i32(i32::try_from(partitions.len()).unwrap_or(i32::MAX));
        for partition in partitions {
            out.put_i32(*partition);
        }
    }
    out.put_i32(-1); // null user data
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: what the encoders write, the parsers read; garbage is None, not a panic.
    // Method: round-trip a subscription and an assignment, then parse truncations.
    #[test]
    fn round_trip_and_garbage() {
        let topics = vec!["a".to_string(), "bb".to_string()];
        assert_eq!(
            parse_subscription(&encode_subscription(&topics)),
            Some(topics)
        );
        let assignment = vec![("a".to_string(), vec![0, 2]), ("bb".to_string(), vec![])];
        let bytes = encode_assignment(&assignment);
        assert_eq!(parse_assignment(&bytes), Some(assignment));
        for cut in 1..bytes.len() - 4 {
            let _ = parse_assignment(&bytes[..cut]);
        }
        assert_eq!(parse_subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
    }
}
