//! Turning one fetched partition's bytes into records and the next fetch position.
//!
//! A fetch starting at `position` may return whole batches that begin before it (the broker
//! serves stored batches as they are), batches holding only control records (which the
//! consumer must skip but still step over) and a truncated last batch (cut at the size
//! bound). So:
//! - records below `position` are dropped;
//! - the next position is one past the last *complete* batch, even when that batch yielded
//!   no records, so the consumer cannot get stuck on a control batch;
//! - every complete batch's CRC is checked, as Java's `check.crcs=true` does.
//!
//! read_committed ([`records_from_committed`]): the broker stops at the last stable offset
//! and lists the aborted transactions overlapping the answer (producer id, first offset).
//! Walking the batches in offset order, a producer joins the aborted set when the batch
//! reaches its aborted transaction's first offset, and leaves it at its next control batch
//! (the abort marker); its transactional batches in between are dropped, as Java's
//! `Fetcher` does.
//!
//! Invariant: the returned position never goes backwards, and every returned record has
//! `position <= offset < next_position`.

use std::collections::BTreeSet;

use bytes::Bytes;
use weir_wire::batch;
use weir_wire::domain::AbortedTransaction;
use weir_wire::records::Record;

use crate::error::ClientError;

/// Records of one partition from one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// Records at or after the fetch position, in offset order.
    pub records: Vec<Record>,
    /// Where the next fetch starts.
    pub next_position: i64,
}

/// Decodes `bytes` fetched at `position` (read_uncommitted: every data record).
pub fn records_from(bytes: Bytes, position: i64) -> Result<FetchedPartition, ClientError> {
    records_from_committed(bytes, position, None)
}

/// Decodes `bytes` fetched at `position`; with `aborted` (read_committed), records of the
/// listed aborted transactions are dropped.
pub fn records_from_committed(
    bytes: Bytes,
    position: i64,
    aborted: Option<&[AbortedTransaction]>,
) -> Result<FetchedPartition, ClientError> {
    let Some(aborted) = aborted else {
        return records_unfiltered(bytes, position);
    };
    let mut aborted: Vec<AbortedTransaction> = aborted.to_vec();
    aborted.sort_by_key(|txn| txn.first_offset);
    let mut pending = aborted.into_iter().peekable();
    let mut aborting: BTreeSet<i64> = BTreeSet::new();
    let mut next_position = position;
    let mut records = Vec::new();
    for item in batch::iter_batches(&bytes) {
        let (header, range) = item.map_err(|error| ClientError::Protocol(error.to_string()))?;
        checked_batch(&bytes, &header, range.clone())?;
        next_position = next_position.max(header.last_offset() + 1);
        while let Some(txn) = pending.next_if(|txn| txn.first_offset <= header.last_offset()) {
            aborting.insert(txn.producer_id);
        }
        if header.is_control() {
            // The marker ending the producer's aborted transaction.
            aborting.remove(&header.producer_id);
            continue;
        }
        if header.is_transactional() && aborting.contains(&header.producer_id) {
            continue;
        }
        let decoded = weir_wire::records::decode_records(bytes.slice(range.clone()))?;
        records.extend(
            decoded
                .into_iter()
                .filter(|record| record.offset >= position && record.offset < next_position),
        );
    }
    Ok(FetchedPartition {
        records,
        next_position,
    })
}

/// The bytes of one complete batch, CRC-checked.
fn checked_batch<'a>(
    bytes: &'a Bytes,
    header: &batch::BatchHeader,
    range: std::ops::Range<usize>,
) -> Result<&'a [u8], ClientError> {
    let Some(batch_bytes) = bytes.get(range.clone()) else {
        return Err(ClientError::Protocol(format!(
            "batch range {range:?} out of bounds"
        )));
    };
    if !batch::verify_crc(batch_bytes) {
        return Err(ClientError::Kafka {
            code: weir_wire::error::ErrorCode::CORRUPT_MESSAGE,
            context: format!("batch at offset {}", header.base_offset),
            message: Some("CRC32C mismatch in fetched batch".into()),
        });
    }
    Ok(batch_bytes)
}

fn records_unfiltered(bytes: Bytes, position: i64) -> Result<FetchedPartition, ClientError> {
    let mut next_position = position;
    let mut complete_len = 0usize;
    for item in batch::iter_batches(&bytes) {
        let (header, range) = item.map_err(|error| ClientError::Protocol(error.to_string()))?;
        let Some(batch_bytes) = bytes.get(range.clone()) else {
            return Err(ClientError::Protocol(format!(
                "batch range {range:?} out of bounds"
            )));
        };
        if !batch::verify_crc(batch_bytes) {
            return Err(ClientError::Kafka {
                code: weir_wire::error::ErrorCode::CORRUPT_MESSAGE,
                context: format!("batch at offset {}", header.base_offset),
                message: Some("CRC32C mismatch in fetched batch".into()),
            });
        }
        next_position = next_position.max(header.last_offset() + 1);
        complete_len = range.end;
    }
    if complete_len == 0 {
        return Ok(FetchedPartition {
            records: Vec::new(),
            next_position,
        });
    }
    let mut records = weir_wire::records::decode_records(bytes.slice(..complete_len))?;
    records.retain(|record| record.offset >= position && record.offset < next_position);
    Ok(FetchedPartition {
        records,
        next_position,
    })
}

#[cfg(test)]
mod tests {
    // Goal: fetched bytes become exactly the records at or after the position, the position
    // steps over whole batches only, and corruption is refused. Method: encode batches with
    // weir-wire, place them at chosen base offsets, and cut or flip bytes.
    use weir_wire::records::{encode_batch, BatchOptions};

    use super::*;

    fn batch_at(base_offset: i64, values: &[&'static str]) -> Vec<u8> {
        let records: Vec<Record> = values
            .iter()
            .map(|value| Record {
                offset: 0,
                timestamp: 5,
                key: None,
                value: Some(Bytes::from_static(value.as_bytes())),
                headers: Vec::new(),
            })
            .collect();
        let mut bytes = encode_batch(&records, &BatchOptions::default())
            .map_or_else(|error| panic!("encode: {error}"), |bytes| bytes.to_vec());
        batch::set_base_offset(&mut bytes, base_offset);
        bytes
    }

    fn offsets(fetched: &FetchedPartition) -> Vec<i64> {
        fetched.records.iter().map(|record| record.offset).collect()
    }

    #[test]
    fn drops_records_before_the_position() {
        let mut bytes = batch_at(10, &["a", "b", "c"]);
        bytes.extend(batch_at(13, &["d"]));
        let fetched = records_from(Bytes::from(bytes), 11).expect("valid batches");
        assert_eq!(offsets(&fetched), vec![11, 12, 13]);
        assert_eq!(fetched.next_position, 14);
        assert_eq!(fetched.records[2].value.as_deref(), Some(&b"d"[..]));
    }

    #[test]
    fn truncated_tail_is_left_for_the_next_fetch() {
        let mut bytes = batch_at(0, &["a", "b"]);
        let second = batch_at(2, &["c"]);
        bytes.extend_from_slice(&second[..second.len() - 3]);
        let fetched = records_from(Bytes::from(bytes), 0).expect("valid first batch");
        assert_eq!(offsets(&fetched), vec![0, 1]);
        assert_eq!(fetched.next_position, 2);
    }

    #[test]
    fn empty_and_stale_answers_do_not_move_backwards() {
        let fetched = records_from(Bytes::new(), 7).expect("empty");
        assert_eq!((fetched.records.len(), fetched.next_position), (0, 7));
        let fetched = records_from(Bytes::from(batch_at(0, &["a"])), 7).expect("old batch");
        assert_eq!((fetched.records.len(), fetched.next_position), (0, 7));
    }

    /// A transactional batch of producer `pid` at `base_offset`.
    fn txn_batch_at(base_offset: i64, pid: i64, values: &[&'static str]) -> Vec<u8> {
        let records: Vec<Record> = values
            .iter()
            .map(|value| Record {
                offset: 0,
                timestamp: 5,
                key: None,
                value: Some(Bytes::from_static(value.as_bytes())),
                headers: Vec::new(),
            })
            .collect();
        let options = BatchOptions {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
            ..BatchOptions::default()
        };
        let mut bytes = encode_batch(&records, &options)
            .map_or_else(|error| panic!("encode: {error}"), |bytes| bytes.to_vec());
        batch::set_base_offset(&mut bytes, base_offset);
        bytes
    }

    /// A control batch (commit or abort marker) of producer `pid` at `offset`.
    fn marker_at(offset: i64, pid: i64, commit: bool) -> Vec<u8> {
        let mut bytes = batch::encode_control_batch(pid, 0, commit, 0, 5).to_vec();
        batch::set_base_offset(&mut bytes, offset);
        bytes
    }

    // Goal: read_committed drops exactly the records of the listed aborted transactions
    // (interleaved with a committed one of another producer), never control records, and
    // still steps over every batch. Method: producer 7 aborts (0..2, marker at 3), producer
    // 8 commits (2, marker at 4), producer 7 then writes again (5) after its abort marker.
    #[test]
    fn read_committed_drops_aborted_transactions_only() {
        let mut bytes = txn_batch_at(0, 7, &["a0", "a1"]);
        bytes.extend(txn_batch_at(2, 8, &["c0"]));
        bytes.extend(marker_at(3, 7, false));
        bytes.extend(marker_at(4, 8, true));
        bytes.extend(txn_batch_at(5, 7, &["b0"]));
        let aborted = [AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
        }];
        let bytes = Bytes::from(bytes);
        let fetched = records_from_committed(bytes.clone(), 0, Some(&aborted)).expect("valid");
        assert_eq!(offsets(&fetched), vec![2, 5]);
        assert_eq!(fetched.next_position, 6);
        // read_uncommitted sees every data record.
        let all = records_from(bytes, 0).expect("valid");
        assert_eq!(offsets(&all), vec![0, 1, 2, 5]);
    }

    #[test]
    fn corrupt_batch_is_refused() {
        let mut bytes = batch_at(0, &["hello"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let error = records_from(Bytes::from(bytes), 0).expect_err("crc mismatch");
        assert_eq!(
            error.code(),
            Some(weir_wire::error::ErrorCode::CORRUPT_MESSAGE)
        );
    }
}
