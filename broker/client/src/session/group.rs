//! Consumer-group decisions without IO: Kafka's embedded consumer protocol (the bytes inside
//! JoinGroup metadata and SyncGroup assignments), the range assignor, and the membership
//! timers (when to heartbeat, when to auto-commit, when a rebalance is needed).
//!
//! Consumer protocol layout (Kafka's `ConsumerProtocolSubscription`/`...Assignment`,
//! big-endian, non-flexible):
//! - subscription: `version i16, topics [string], user_data bytes` (v0), then
//!   `owned_partitions [topic string, partitions [i32]]` (v1), `generation_id i32` (v2),
//!   `rack_id nullable string` (v3);
//! - assignment: `version i16, assigned [topic string, partitions [i32]], user_data bytes`.
//!
//! Later versions only append fields, so a reader of the prefix understands every version;
//! the decoders below read the prefix and ignore the rest, as Kafka's do.
//!
//! Invariants:
//! - Decoders never panic on peer bytes: malformed input is a [`GroupProtocolError`].
//! - The range assignor hands every partition of a subscribed topic to exactly one member
//!   subscribed to it, and is deterministic (members sorted by id).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The range assignor's protocol name.
pub const RANGE_ASSIGNOR: &str = "range";
/// The subscription version this client writes (v1: with owned partitions).
pub const SUBSCRIPTION_VERSION: i16 = 1;
/// The assignment version this client writes.
pub const ASSIGNMENT_VERSION: i16 = 0;
/// Bound on array elements read from peer bytes (each element takes >= 2 bytes anyway).
const ARRAY_LEN_MAX: usize = 1_000_000;

/// Topics and their partitions, in topic order.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// Consumer-protocol bytes that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consumer protocol {what}")]
pub struct GroupProtocolError {
    /// "subscription" or "assignment".
    pub what: &'static str,
}

/// A member's subscription as decoded from JoinGroup metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Version the member wrote.
    pub version: i16,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Opaque assignor data.
    pub user_data: Option<Bytes>,
}

/// Encodes a subscription (v1) naming `topics` and the partitions the member owns now.
pub fn encode_subscription(topics: &[String], owned: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(SUBSCRIPTION_VERSION);
    put_array_len(&mut out, topics.len());
    for topic in topics {
        put_string(&mut out, topic);
    }
    out.put_i32(-1); // user_data: null
    put_topic_partitions(&mut out, owned);
    out.freeze()
}

/// Decodes a subscription of any version (the v0 prefix).
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, GroupProtocolError> {
    let error = GroupProtocolError {
        what: "subscription",
    };
    let mut reader = Reader { bytes };
    let version = reader.i16().ok_or(error.clone())?;
    let count = reader.array_len().ok_or(error.clone())?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(reader.string().ok_or(error.clone())?);
    }
    // v0 always has user data; tolerate its absence as librdkafka's oldest versions did.
    let user_data = if reader.bytes.is_empty() {
        None
    } else {
        reader.nullable_bytes().ok_or(error)?
    };
    Ok(Subscription {
        version,
        topics,
        user_data,
    })
}

/// Encodes an assignment (v0, no user data).
pub fn encode_assignment(assigned: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(ASSIGNMENT_VERSION);
    put_topic_partitions(&mut out, assigned);
    out.put_i32(-1); // user_data: null
    out.freeze()
}

/// Decodes an assignment of any version; empty bytes mean "nothing assigned" (Kafka sends
/// them to members the leader left out).
pub fn decode_assignment(bytes: &[u8]) -> Result<TopicPartitions, GroupProtocolError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let error = GroupProtocolError { what: "assignment" };
    let mut reader = Reader { bytes };
    let _version = reader.i16().ok_or(error.clone())?;
    let count = reader.array_len().ok_or(error.clone())?;
    let mut assigned = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = reader.string().ok_or(error.clone())?;
        let partitions = reader.array_len().ok_or(error.clone())?;
        let mut indexes = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            indexes.push(reader.i32().ok_or(error.clone())?);
        }
        assigned.push((topic, indexes));
    }
    Ok(assigned)
}

/// Kafka's RangeAssignor: per topic, the subscribed members sorted by id get contiguous
/// ranges; the first `partitions % members` get one extra. `partition_counts` holds the
/// partition count of every topic known to exist; topics missing from it are skipped.
/// Every member appears in the result, possibly with nothing assigned.
pub fn assign_range(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, TopicPartitions> {
    let mut members_by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member, topics) in subscriptions {
        let unique: BTreeSet<&String> = topics.iter().collect();
        for topic in unique {
            members_by_topic.entry(topic).or_default().push(member);
        }
    }
    let mut assignment: BTreeMap<String, TopicPartitions> = subscriptions
        .keys()
        .map(|member| (member.clone(), Vec::new()))
        .collect();
    for (topic, members) in members_by_topic {
        let Some(&count) = partition_counts.get(topic) else {
            continue;
        };
        let count = usize::try_from(count).unwrap_or(0);
        // `subscriptions` is a BTreeMap, so `members` is already sorted by member id.
        let per_member = count / members.len();
        let extra = count % members.len();
        for (index, member) in members.into_iter().enumerate() {
            let start = per_member * index + index.min(extra);
            let length = per_member + usize::from(index < extra);
            if length == 0 {
                continue;
            }
            let partitions = (start..start + length)
                .filter_map(|p| i32::try_from(p).ok())
                .collect();
            if let Some(member_assignment) = assignment.get_mut(member) {
                member_assignment.push((topic.to_owned(), partitions));
            }
        }
    }
    assignment
}

/// Timers and identity of one member of a classic group; the consumer drives it with `now`.
#[derive(Debug, Clone)]
pub struct Membership {
    /// Member id from the coordinator, "" before the first join.
    pub member_id: String,
    /// Generation of the last completed join, -1 before.
    pub generation_id: i32,
    /// True between a successful SyncGroup and the next rebalance signal.
    stable: bool,
    heartbeat_interval: Duration,
    auto_commit_interval: Option<Duration>,
    next_heartbeat: Duration,
    next_auto_commit: Duration,
}

impl Membership {
    /// A member that has not joined; `auto_commit_interval` is `None` without auto-commit.
    pub fn new(heartbeat_interval: Duration, auto_commit_interval: Option<Duration>) -> Self {
        Membership {
            member_id: String::new(),
            generation_id: -1,
            stable: false,
            heartbeat_interval,
            auto_commit_interval,
            next_heartbeat: Duration::ZERO,
            next_auto_commit: Duration::ZERO,
        }
    }

    /// True when the member must (re)join before fetching.
    pub fn needs_join(&self) -> bool {
        !self.stable
    }

    /// The join and sync completed at `now` with this identity.
    pub fn on_synced(&mut self, now: Duration, member_id: String, generation_id: i32) {
        self.member_id = member_id;
        self.generation_id = generation_id;
        self.stable = true;
        self.next_heartbeat = now.saturating_add(self.heartbeat_interval);
        if let Some(interval) = self.auto_commit_interval {
            self.next_auto_commit = now.saturating_add(interval);
        }
    }

    /// The coordinator signalled a rebalance (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION):
    /// rejoin with the same member id.
    pub fn on_rebalance(&mut self) {
        self.stable = false;
    }

    /// The coordinator no longer knows this member (UNKNOWN_MEMBER_ID, session expired):
    /// rejoin as a new member.
    pub fn on_fenced(&mut self) {
        self.stable = false;
        self.member_id.clear();
        self.generation_id = -1;
    }

    /// Whether a heartbeat is due at `now`.
    pub fn heartbeat_due(&self, now: Duration) -> bool {
        self.stable && now >= self.next_heartbeat
    }

    /// A heartbeat was sent at `now`.
    pub fn on_heartbeat_sent(&mut self, now: Duration) {
        self.next_heartbeat = now.saturating_add(self.heartbeat_interval);
    }

    /// Whether an auto-commit is due at `now`.
    pub fn auto_commit_due(&self, now: Duration) -> bool {
        self.stable && self.auto_commit_interval.is_some() && now >= self.next_auto_commit
    }

    /// An auto-commit was attempted at `now`.
    pub fn on_auto_commit(&mut self, now: Duration) {
        if let Some(interval) = self.auto_commit_interval {
            self.next_auto_commit = now.saturating_add(interval);
        }
    }

    /// The next time the member has group work to do (heartbeat or auto-commit).
    pub fn next_deadline(&self) -> Option<Duration> {
        if !self.stable {
            return None;
        }
        let commit = self.auto_commit_interval.map(|_| self.next_auto_commit);
        Some(commit.map_or(self.next_heartbeat, |c| c.min(self.next_heartbeat)))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
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

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let b = self.take(len)?;
        Some(String::from_utf8_lossy(b).into_owned())
    }

    fn nullable_bytes(&mut self) -> Option<Option<Bytes>> {
        let len = self.i32()?;
        if len < 0 {
            return Some(None);
        }
        let b = self.take(usize::try_from(len).ok()?)?;
        Some(Some(Bytes::copy_from_slice(b)))
    }

    fn array_len(&mut self) -> Option<usize> {
        let len = self.i32()?;
        if len < 0 {
            return Some(0); // a null array reads as empty
        }
        let len = usize::try_from(len).ok()?;
        (len <= ARRAY_LEN_MAX && len <= self.bytes.len()).then_some(len)
    }
}

fn put_array_len(out: &mut BytesMut, len: usize) {
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn put_string(out: &mut BytesMut, text: &str) {
    // Topic names are at most 249 bytes, far below i16::MAX.
    let bytes = &text.as_bytes()[..text.len().min(i16::MAX as usize)];
    out.put_i16(i16::try_from(bytes.len()).unwrap_or(i16::MAX));
    out.put_slice(bytes);
}

fn put_topic_partitions(out: &mut BytesMut, topics: &[(String, Vec<i32>)]) {
    put_array_len(out, topics.len());
    for (topic, partitions) in topics {
        put_string(out, topic);
        put_array_len(out, partitions.len());
        for partition in partitions {
            out.put_i32(*partition);
        }
    }
}

#[cfg(test)]
mod tests {
    // Goal: byte layouts match Kafka's ConsumerProtocol, decoders accept later versions and
    // refuse truncation, the range assignor matches Kafka's split, and the membership timers
    // fire when due. Method: hand-built bytes, small assignments, injected time.
    use super::*;

    #[test]
    fn subscription_round_trip_and_layout() {
        let bytes = encode_subscription(&["a".into()], &[("a".into(), vec![2])]);
        let expected: &[u8] = &[
            0, 1, // version
            0, 0, 0, 1, 0, 1, b'a', // topics
            0xff, 0xff, 0xff, 0xff, // user data null
            0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 2, // owned partitions
        ];
        assert_eq!(&bytes[..], expected);
        let decoded = decode_subscription(&bytes).expect("valid");
        assert_eq!(decoded.topics, vec!["a".to_owned()]);
        assert_eq!(decoded.version, 1);
        // A v3 subscription from a newer client: extra trailing fields are ignored.
        let mut v3 = bytes.to_vec();
        v3[1] = 3;
        v3.extend_from_slice(&[0, 0, 0, 7, 0xff, 0xff]);
        assert_eq!(decode_subscription(&v3).expect("v3").topics, vec!["a"]);
        assert!(decode_subscription(&bytes[..5]).is_err());
    }

    #[test]
    fn assignment_round_trip() {
        let assigned = vec![("t".to_owned(), vec![0, 1]), ("u".to_owned(), vec![3])];
        let bytes = encode_assignment(&assigned);
        assert_eq!(decode_assignment(&bytes).expect("valid"), assigned);
        assert_eq!(decode_assignment(&[]).expect("empty"), Vec::new());
        assert!(decode_assignment(&bytes[..bytes.len() - 6]).is_err());
    }

    #[test]
    fn range_assignor_splits_like_kafka() {
        // 7 partitions over 3 members: 3, 2, 2 (Kafka's RangeAssignor javadoc example shape).
        let subscriptions: BTreeMap<String, Vec<String>> = [
            ("m1".to_owned(), vec!["t".to_owned(), "u".to_owned()]),
            ("m2".to_owned(), vec!["t".to_owned()]),
            ("m3".to_owned(), vec!["t".to_owned(), "missing".to_owned()]),
        ]
        .into();
        let counts: BTreeMap<String, i32> = [("t".to_owned(), 7), ("u".to_owned(), 2)].into();
        let assignment = assign_range(&subscriptions, &counts);
        assert_eq!(
            assignment["m1"],
            vec![
                ("t".to_owned(), vec![0, 1, 2]),
                ("u".to_owned(), vec![0, 1])
            ]
        );
        assert_eq!(assignment["m2"], vec![("t".to_owned(), vec![3, 4])]);
        assert_eq!(assignment["m3"], vec![("t".to_owned(), vec![5, 6])]);
        // More members than partitions: the last ones get nothing but are listed.
        let counts: BTreeMap<String, i32> = [("t".to_owned(), 1)].into();
        let assignment = assign_range(&subscriptions, &counts);
        assert_eq!(assignment["m1"], vec![("t".to_owned(), vec![0])]);
        assert!(assignment["m2"].is_empty());
    }

    #[test]
    fn membership_timers() {
        let second = Duration::from_secs(1);
        let mut member = Membership::new(3 * second, Some(5 * second));
        assert!(member.needs_join());
        assert!(!member.heartbeat_due(Duration::ZERO));
        member.on_synced(10 * second, "m-1".into(), 4);
        assert!(!member.heartbeat_due(12 * second));
        assert!(member.heartbeat_due(13 * second));
        member.on_heartbeat_sent(13 * second);
        assert_eq!(member.next_deadline(), Some(15 * second));
        assert!(member.auto_commit_due(15 * second));
        member.on_rebalance();
        assert!(member.needs_join());
        assert_eq!(member.member_id, "m-1");
        member.on_fenced();
        assert_eq!(member.member_id, "");
        assert_eq!(member.generation_id, -1);
    }
}
