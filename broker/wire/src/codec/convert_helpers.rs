//! The small conversions every `convert*.rs` file shares: Kafka's string and id newtypes
//! to and from plain Rust values. Pure and total: no input makes them fail.

use kafka_protocol::messages::{BrokerId, GroupId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

/// A string for kafka_protocol.
pub(super) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A nullable string for kafka_protocol.
pub(super) fn osb(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(sb)
}

/// A kafka_protocol string as a `String`.
pub(super) fn st(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

/// A nullable kafka_protocol string as an `Option<String>`.
pub(super) fn ost(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(st)
}

/// A topic name for kafka_protocol.
pub(super) fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// A group id for kafka_protocol.
pub(super) fn gid(s: &str) -> GroupId {
    GroupId(sb(s))
}

/// A transactional id for kafka_protocol.
pub(super) fn tid(s: &str) -> TransactionalId {
    TransactionalId(sb(s))
}

/// Broker ids for kafka_protocol.
pub(super) fn brokers(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

/// kafka_protocol broker ids as plain ids.
pub(super) fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}
