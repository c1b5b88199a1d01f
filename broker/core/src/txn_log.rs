//! The record format of transaction state in the internal topic `__transaction_state`.
//!
//! Kafka's own layout (`TransactionLogKey` / `TransactionLogValue` version 0), so tools that
//! read the topic understand the fields they know:
//! - key: `version: i16 = 0, transactional_id: string`;
//! - value: `version: i16 = 0, producer_id: i64, producer_epoch: i16,
//!   transaction_timeout_ms: i32, transaction_status: i8, transaction_partitions:
//!   nullable [topic: string, partition_ids: [i32]], transaction_last_update_timestamp_ms:
//!   i64, transaction_start_timestamp_ms: i64`; status 0 Empty, 1 Ongoing, 2 PrepareCommit,
//!   3 PrepareAbort, 4 CompleteCommit, 5 CompleteAbort, 6 Dead, 7 PrepareEpochFence;
//! - then a Weir trailer Kafka's reader never reaches (it stops after the fields it knows):
//!   `weir_version: i16 = 1, groups: [string], pending_offsets: [group: string, topic:
//!   string, partition: i32, offset: i64, leader_epoch: i32, metadata: string]`. Kafka keeps
//!   a transaction's groups and offsets in `__consumer_offsets` as transactional records;
//!   Weir applies them at commit, so until then they live with the transaction's state. A
//!   value without the trailer decodes with no groups and no offsets;
//! - a null value is a tombstone (the transactional id expired);
//! - strings are `i16` length + UTF-8, arrays `i32` count (-1 = null).
//!
//! A transactional id's records go to partition `abs(java_hash(id)) % partition_count`
//! (Kafka's `Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions`).
//! Recovery replays the topic, latest record per key winning; Dead (6) reads as a tombstone
//! and PrepareEpochFence (7) as PrepareAbort (an abort, which is what it becomes).

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::offsets_log::{put_string, Reader};
use crate::txn::{PendingOffset, TxnMetadata, TxnState};

/// Name of the internal topic.
pub const TXN_STATE_TOPIC: &str = "__transaction_state";

/// Key version written (and the only one read).
const KEY_VERSION: i16 = 0;
/// Value version written: Kafka's non-flexible layout.
const VALUE_VERSION: i16 = 0;
/// Version of the Weir trailer after Kafka's fields.
const WEIR_TRAILER_VERSION: i16 = 1;
/// Longest transactional id a record can hold (an `i16` string length).
pub const TRANSACTIONAL_ID_BYTES_MAX: usize = i16::MAX as usize;

fn status(state: TxnState) -> i8 {
    match state {
        TxnState::Empty => 0,
        TxnState::Ongoing => 1,
        TxnState::PrepareCommit => 2,
        TxnState::PrepareAbort => 3,
        TxnState::CompleteCommit => 4,
        TxnState::CompleteAbort => 5,
    }
}

/// A decoded status: `Some(None)` is Dead (read as a tombstone), `None` is unknown.
fn state_of(status: i8) -> Option<Option<TxnState>> {
    Some(Some(match status {
        0 => TxnState::Empty,
        1 => TxnState::Ongoing,
        2 => TxnState::PrepareCommit,
        3 | 7 => TxnState::PrepareAbort,
        4 => TxnState::CompleteCommit,
        5 => TxnState::CompleteAbort,
        6 => return Some(None),
        _ => return None,
    }))
}

fn put_len(out: &mut BytesMut, len: usize) {
    // Bounded far below i32::MAX by TXN_PARTITIONS_MAX, GROUP_OFFSETS_MAX and the frame size;
    // a clamped count would make the record undecodable, losing the transaction's state.
    assert!(i32::try_from(len).is_ok(), "array of {len} elements");
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

/// The key of a transactional id's record.
pub fn key(transactional_id: &str) -> Bytes {
    // InitProducerId refuses longer ids, and only ids it accepted have state to write: a
    // truncated key would file the state under another id. (A debug check only: legacy
    // `txn/` entries predate the length check.)
    debug_assert!(
        transactional_id.len() <= TRANSACTIONAL_ID_BYTES_MAX,
        "transactional id of {} bytes",
        transactional_id.len()
    );
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(KEY_VERSION);
    put_string(&mut out, transactional_id);
    out.freeze()
}

/// The value of a transaction's state record.
pub fn value(txn: &TxnMetadata) -> Bytes {
    // Only states Weir keeps are written (Dead is a tombstone, PrepareEpochFence an abort),
    // so every status decodes back to the state it came from.
    debug_assert_eq!(state_of(status(txn.state)), Some(Some(txn.state)));
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(VALUE_VERSION);
    out.put_i64(txn.producer_id);
    out.put_i16(txn.producer_epoch);
    out.put_i32(txn.timeout_ms);
    out.put_i8(status(txn.state));
    // Kafka writes a null partition list for an Empty transaction; others get a list,
    // possibly empty, which Kafka's reader accepts as well.
    if txn.state == TxnState::Empty && txn.partitions.is_empty() {
        out.put_i32(-1);
    } else {
        // Grouped by topic, as Kafka writes them; the set is sorted by topic already.
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &txn.partitions {
            match topics.last_mut() {
                Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
                _ => topics.push((topic.as_str(), vec![*partition])),
            }
        }
        put_len(&mut out, topics.len());
        for (topic, partitions) in topics {
            put_string(&mut out, topic);
            put_len(&mut out, partitions.len());
            for partition in partitions {
                out.put_i32(partition);
            }
        }
    }
    out.put_i64(txn.last_update_ms);
    out.put_i64(txn.start_ms);
    out.put_i16(WEIR_TRAILER_VERSION);
    put_len(&mut out, txn.groups.len());
    for group in &txn.groups {
        put_string(&mut out, group);
    }
    put_len(&mut out, txn.pending_offsets.len());
    for offset in &txn.pending_offsets {
        put_string(&mut out, &offset.group);
        put_string(&mut out, &offset.topic);
        out.put_i32(offset.partition);
        out.put_i64(offset.offset);
        out.put_i32(offset.leader_epoch);
        put_string(&mut out, &offset.metadata);
    }
    out.freeze()
}

/// A replayed record: the transactional id and its state (`None` = tombstone or Dead).
pub type TxnRecord = (String, Option<TxnMetadata>);

/// Decode one record; `None` for unknown key versions or malformed records (recovery logs
/// and skips them).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<TxnRecord> {
    let mut reader = Reader { bytes: key };
    if reader.i16()? != KEY_VERSION {
        return None;
    }
    let transactional_id = reader.string()?;
    let Some(value) = value else {
        return Some((transactional_id, None));
    };
    let mut reader = Reader { bytes: value };
    // Version 1 (flexible) is not written by Weir; only read version 0.
    if reader.i16()? != VALUE_VERSION {
        return None;
    }
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let Some(state) = state_of(reader.i8()?)? else {
        return Some((transactional_id, None));
    };
    let mut partitions = BTreeSet::new();
    let topics = reader.i32()?;
    for _ in 0..topics.max(0) {
        let topic = reader.string()?;
        let count = reader.i32()?;
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), reader.i32()?));
        }
    }
    let last_update_ms = reader.i64()?;
    let start_ms = reader.i64()?;
    let mut groups = BTreeSet::new();
    let mut pending_offsets = Vec::new();
    if reader.i16() == Some(WEIR_TRAILER_VERSION) {
        for _ in 0..reader.i32()?.max(0) {
            groups.insert(reader.string()?);
        }
        for _ in 0..reader.i32()?.max(0) {
            pending_offsets.push(PendingOffset {
                group: reader.string()?,
                topic: reader.string()?,
                partition: reader.i32()?,
                offset: reader.i64()?,
                leader_epoch: reader.i32()?,
                metadata: reader.string()?,
            });
        }
    }
    let txn = TxnMetadata {
        transactional_id: transactional_id.clone(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups,
        pending_offsets,
        start_ms,
        last_update_ms,
        deadline: None,
    };
    Some((transactional_id, Some(txn)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: Kafka's partitioning and a lossless round trip, also of Kafka-written values
    // without the Weir trailer. Method: golden hash, encode/decode, a value cut before the
    // trailer, a tombstone, a Dead status.
    #[test]
    fn partitioning_and_round_trip() {
        // The partition is Kafka's (shared with __consumer_offsets, `offsets_log`).
        assert_eq!(crate::group::offsets_log::partition_for("group", 50), 47);
        let txn = TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeSet::from([("a".into(), 1), ("a".into(), 0), ("b".into(), 2)]),
            groups: BTreeSet::from(["g".to_string()]),
            pending_offsets: vec![PendingOffset {
                group: "g".into(),
                topic: "a".into(),
                partition: 0,
                offset: 42,
                leader_epoch: -1,
                metadata: "m".into(),
            }],
            start_ms: 10,
            last_update_ms: 11,
            deadline: None,
        };
        let key = key("tx");
        let value = value(&txn);
        assert_eq!(
            decode(&key, Some(&value)),
            Some(("tx".into(), Some(txn.clone())))
        );
        // Kafka's v0 fields only: 2+8+2+4+1 + partitions + 8+8.
        let trailer = 2 + 4 + (2 + 1) + 4 + (2 + 1 + 2 + 1 + 4 + 8 + 4 + 2 + 1);
        let kafka_only = &value[..value.len() - trailer];
        let (_, decoded) = decode(&key, Some(kafka_only)).expect("decodes");
        let decoded = decoded.expect("not a tombstone");
        assert_eq!(decoded.partitions, txn.partitions);
        assert!(decoded.groups.is_empty() && decoded.pending_offsets.is_empty());
        assert_eq!(decode(&key, None), Some(("tx".into(), None)));
        let mut dead = value.to_vec();
        dead[16] = 6;
        assert_eq!(decode(&key, Some(&dead)), Some(("tx".into(), None)));
        assert_eq!(decode(&[0, 1, 0, 1, b'x'], None), None);
    }
}
