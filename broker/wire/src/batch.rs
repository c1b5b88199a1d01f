//! Record batch v2 headers: parse, validate and patch without decompressing.
//!
//! Layout (big-endian), offsets in bytes:
//! `0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 |
//! 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 |
//! 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 |
//! 57 recordsCount i32 | 61 records...`
//!
//! Invariants: `batchLength` counts the bytes after itself, so a batch spans
//! `12 + batchLength` bytes; the CRC-32C covers `attributes..end`, so base offset and
//! leader epoch (which the broker assigns) can be patched without recomputing it, while
//! the attributes/max-timestamp patch for LogAppendTime must recompute it.

use std::ops::Range;

/// Size of the v2 batch header (up to and including recordsCount).
pub const BATCH_HEADER_BYTES: usize = 61;

/// Bytes before the part `batchLength` counts (baseOffset + batchLength).
const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const LEADER_EPOCH_OFFSET: usize = 12;

/// Attribute bits.
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Attribute bit 6 (KIP-534): the base timestamp holds the batch's delete horizon.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// A parsed v2 batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field (the batch spans `12 + batch_length` bytes).
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Format version; only 2 is supported.
    pub magic: i8,
    /// CRC-32C over attributes..end.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (3), transactional (4), control (5), delete
    /// horizon (6).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp (or LogAppendTime).
    pub max_timestamp: i64,
    /// Producer id, -1 if not idempotent.
    pub producer_id: i64,
    /// Producer epoch, -1 if not idempotent.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 if not idempotent.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Whole batch size in bytes, header included.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// A control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// The delete horizon a log cleaner stamped on the batch (KIP-534: attribute bit 6, the
    /// horizon stored as the base timestamp): past it, its tombstones and its transaction
    /// marker may be removed.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_BIT != 0).then_some(self.base_timestamp)
    }

    /// Timestamps are LogAppendTime (set by the broker), not CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
}

/// Why batch bytes were rejected.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The bytes end before the header or batch does.
    #[error("truncated record batch")]
    Truncated,
    /// The stored CRC does not match the bytes.
    #[error(
        "corrupt batch at offset {base_offset}: crc {expected:#010x}, computed {actual:#010x}"
    )]
    Corrupt {
        /// Base offset of the corrupt batch.
        base_offset: i64,
        /// CRC in the header.
        expected: u32,
        /// CRC of the bytes.
        actual: u32,
    },
    /// Magic 0/1 (legacy message sets) or garbage.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// Structurally invalid header.
    #[error("invalid record batch: {0}")]
    Invalid(String),
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Parses the header of the first batch in `bytes` (no CRC check). Errors if fewer than
/// [`BATCH_HEADER_BYTES`] are present, the magic is not 2, or the length is too small.
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    // The magic byte decides the layout, so check it as soon as it is present.
    if bytes.len() > MAGIC_OFFSET && bytes[MAGIC_OFFSET] as i8 != 2 {
        return Err(BatchError::UnsupportedMagic(bytes[MAGIC_OFFSET] as i8));
    }
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated);
    }
    let header = BatchHeader {
        base_offset: i64_at(bytes, 0),
        batch_length: i32_at(bytes, 8),
        partition_leader_epoch: i32_at(bytes, 12),
        magic: bytes[MAGIC_OFFSET] as i8,
        crc: i32_at(bytes, CRC_OFFSET) as u32,
        attributes: i16_at(bytes, ATTRIBUTES_OFFSET),
        last_offset_delta: i32_at(bytes, 23),
        base_timestamp: i64_at(bytes, 27),
        max_timestamp: i64_at(bytes, MAX_TIMESTAMP_OFFSET),
        producer_id: i64_at(bytes, 43),
        producer_epoch: i16_at(bytes, 51),
        base_sequence: i32_at(bytes, 53),
        record_count: i32_at(bytes, 57),
    };
    if (header.batch_length as i64) < (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i64 {
        return Err(BatchError::Invalid(format!(
            "batch length {} shorter than a header",
            header.batch_length
        )));
    }
    Ok(header)
}

fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// True when `batch` (exactly one whole batch) carries a correct CRC-32C.
pub fn verify_crc(batch: &[u8]) -> bool {
    if batch.len() < BATCH_HEADER_BYTES {
        return false;
    }
    i32_at(batch, CRC_OFFSET) as u32 == crc_of(batch)
}

/// Iterates the whole batches of `bytes`: each item is the header and the byte range of the
/// batch. Stops (without error) at a truncated tail, as fetch responses may end mid-batch;
/// a malformed header yields one error and ends the iteration.
pub fn iter_batches(bytes: &[u8]) -> BatchIter<'_> {
    BatchIter {
        bytes,
        pos: 0,
        done: false,
    }
}

/// Iterator returned by [`iter_batches`].
#[derive(Debug)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for BatchIter<'_> {
    type Item = Result<(BatchHeader, Range<usize>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        // A tail too short for a length, or whose length runs past the end, is a truncated
        // final batch: not an error.
        if rest.len() < LOG_OVERHEAD {
            self.done = true;
            return None;
        }
        let length = i32_at(rest, 8);
        if length >= 0 && LOG_OVERHEAD + length as usize > rest.len() {
            self.done = true;
            return None;
        }
        match parse_header(rest) {
            Ok(header) => {
                let start = self.pos;
                self.pos += header.size_bytes();
                Some(Ok((header, start..self.pos)))
            }
            Err(BatchError::Truncated) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates every batch of a produce payload: magic 2, whole lengths (no truncated tail),
/// CRC-32C, `record_count > 0` and `last_offset_delta == record_count - 1`.
pub fn validate_batches(bytes: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut headers = Vec::new();
    let mut end = 0;
    for item in iter_batches(bytes) {
        let (header, range) = item?;
        let batch = &bytes[range.clone()];
        let actual = crc_of(batch);
        if actual != header.crc {
            return Err(BatchError::Corrupt {
                base_offset: header.base_offset,
                expected: header.crc,
                actual,
            });
        }
        if header.record_count <= 0 {
            return Err(BatchError::Invalid(format!(
                "record count {}",
                header.record_count
            )));
        }
        if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
            return Err(BatchError::Invalid(format!(
                "last offset delta {} with {} records",
                header.last_offset_delta, header.record_count
            )));
        }
        end = range.end;
        headers.push(header);
    }
    if end != bytes.len() {
        return Err(BatchError::Truncated);
    }
    if headers.is_empty() {
        return Err(BatchError::Invalid("no record batch".into()));
    }
    Ok(headers)
}

/// Sets the base offset (not covered by the CRC). No-op on a slice shorter than a header.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if batch.len() >= BATCH_HEADER_BYTES {
        batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Sets the partition leader epoch (not covered by the CRC). No-op on a short slice.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if batch.len() >= BATCH_HEADER_BYTES {
        batch[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4].copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Marks the batch LogAppendTime with max timestamp `ts` and recomputes the CRC (both
/// fields are covered by it). `batch` must be exactly one whole batch; no-op on a short one.
pub fn set_max_timestamp_log_append(batch: &mut [u8], ts: i64) {
    if batch.len() < BATCH_HEADER_BYTES {
        return;
    }
    let attributes = i16_at(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = crc_of(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Recomputes the CRC-32C of `batch` (exactly one whole batch) after fields it covers were
/// rewritten, e.g. a compacted batch's records and record count. No-op on a short slice.
pub fn update_crc(batch: &mut [u8]) {
    if batch.len() < BATCH_HEADER_BYTES {
        return;
    }
    let crc = crc_of(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Attributes of a transaction marker batch: control (bit 5) and transactional (bit 4).
pub const CONTROL_ATTRIBUTES: i16 = 0x30;
/// Control record type of an abort marker.
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// A transaction marker: a control batch of one record at base offset 0 whose key is
/// `version: i16 = 0, type: i16` (0 abort, 1 commit) and whose value is
/// `version: i16 = 0, coordinator_epoch: i32` (Kafka's `EndTransactionMarker`).
pub fn encode_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    committed: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> bytes::Bytes {
    let control_type = if committed {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    // The record: length 16 (zigzag 32), attributes, timestamp delta 0, offset delta 0,
    // key length 4 (zigzag 8), key, value length 6 (zigzag 12), value, no headers.
    let mut record = vec![0x20u8, 0, 0, 0, 0x08];
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&control_type.to_be_bytes());
    record.push(0x0c);
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0);
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + record.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    let batch_length = (BATCH_HEADER_BYTES - 12 + record.len()) as i32;
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&CONTROL_ATTRIBUTES.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.extend_from_slice(&timestamp_ms.to_be_bytes());
    batch.extend_from_slice(&timestamp_ms.to_be_bytes());
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&1i32.to_be_bytes());
    batch.extend_from_slice(&record);
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    bytes::Bytes::from(batch)
}

/// The control type (0 abort, 1 commit) of a control batch's first record, `None` when the
/// batch is not a control batch or its first record's key is unreadable.
pub fn control_type(batch: &[u8]) -> Option<i16> {
    let header = parse_header(batch).ok()?;
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let mut rest = batch.get(BATCH_HEADER_BYTES..)?;
    // length, attributes (1 byte), timestamp delta, offset delta, key length.
    read_varint(&mut rest)?;
    rest = rest.get(1..)?;
    read_varint(&mut rest)?;
    read_varint(&mut rest)?;
    let key_len = read_varint(&mut rest)?;
    if key_len < 4 {
        return None;
    }
    let key = rest.get(..4)?;
    Some(i16::from_be_bytes([key[2], key[3]]))
}

/// A zigzag varint (Kafka's record fields), advancing `bytes`.
fn read_varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    // Goal: headers parse to the values the encoder wrote, CRC checks catch corruption, the
    // patch functions keep (or recompute) a valid CRC, and truncated tails are tolerated.
    // Method: batches built by records::encode_batch, then mutated byte by byte.
    use super::*;
    use crate::records::{encode_batch, BatchOptions, Compression, Record};
    use bytes::Bytes;

    fn record(i: i64) -> Record {
        Record {
            offset: i,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
        }
    }

    fn batch(n: i64, options: &BatchOptions) -> Vec<u8> {
        let records: Vec<Record> = (0..n).map(record).collect();
        encode_batch(&records, options).expect("encode").to_vec()
    }

    #[test]
    fn parses_encoded_batch() {
        let options = BatchOptions {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 7,
            transactional: true,
            compression: Compression::None,
        };
        let b = batch(3, &options);
        let h = parse_header(&b).expect("header");
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.size_bytes(), b.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.producer_id, 42);
        assert_eq!(h.producer_epoch, 3);
        assert_eq!(h.base_sequence, 7);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert_eq!(h.compression(), 0);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_002);
        assert!(verify_crc(&b));
        assert_eq!(validate_batches(&b).expect("valid"), vec![h]);
    }

    #[test]
    fn compressed_batch_header() {
        let options = BatchOptions {
            compression: Compression::Zstd,
            ..BatchOptions::default()
        };
        let b = batch(5, &options);
        let h = parse_header(&b).expect("header");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (-1, -1, -1)
        );
        assert!(!h.is_transactional());
        assert_eq!(h.compression(), 4);
        assert_eq!(h.record_count, 5);
        assert!(verify_crc(&b));
    }

    #[test]
    fn corruption_is_detected() {
        let b = batch(2, &BatchOptions::default());
        // Every byte from attributes on is covered by the CRC.
        for i in ATTRIBUTES_OFFSET..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(!verify_crc(&c), "flip at {i} undetected");
            assert!(validate_batches(&c).is_err());
        }
        let mut c = b.clone();
        c[CRC_OFFSET] ^= 1;
        assert!(matches!(
            validate_batches(&c),
            Err(BatchError::Corrupt { .. })
        ));
    }

    #[test]
    fn patches() {
        let mut b = batch(2, &BatchOptions::default());
        set_base_offset(&mut b, 1000);
        set_partition_leader_epoch(&mut b, 9);
        assert!(verify_crc(&b));
        let h = parse_header(&b).expect("header");
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1000, 9, 1001)
        );
        set_max_timestamp_log_append(&mut b, 123);
        assert!(verify_crc(&b));
        let h = parse_header(&b).expect("header");
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 123);
    }

    #[test]
    fn iteration_and_truncation() {
        let mut all = batch(2, &BatchOptions::default());
        let mut second = batch(3, &BatchOptions::default());
        set_base_offset(&mut second, 2);
        let first_len = all.len();
        all.extend_from_slice(&second);
        let items: Vec<_> = iter_batches(&all).collect::<Result<_, _>>().expect("iter");
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].1, first_len..all.len());
        assert_eq!(validate_batches(&all).expect("valid").len(), 2);
        for cut in 1..second.len() {
            let t = &all[..all.len() - cut];
            let items: Vec<_> = iter_batches(t).collect::<Result<_, _>>().expect("iter");
            assert_eq!(items.len(), 1, "cut {cut}");
            assert!(validate_batches(t).is_err());
        }
        assert!(validate_batches(&[]).is_err());
        assert!(matches!(
            parse_header(&all[..30]),
            Err(BatchError::Truncated)
        ));
    }

    #[test]
    fn bad_headers() {
        let mut b = batch(1, &BatchOptions::default());
        b[MAGIC_OFFSET] = 1;
        assert!(matches!(
            parse_header(&b),
            Err(BatchError::UnsupportedMagic(1))
        ));
        assert!(matches!(
            validate_batches(&b),
            Err(BatchError::UnsupportedMagic(1))
        ));
        let mut b = batch(1, &BatchOptions::default());
        b[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(parse_header(&b), Err(BatchError::Invalid(_))));
        let mut b = batch(1, &BatchOptions::default());
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        let crc = crc_of(&b);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate_batches(&b), Err(BatchError::Invalid(_))));
    }

    // Goal: update_crc makes a batch whose covered fields were patched verify again, and
    // ignores a slice too short to be a batch. Method: patch last_offset_delta, fix, verify.
    #[test]
    fn update_crc_after_patch() {
        let mut b = batch(1, &BatchOptions::default());
        b[23..27].copy_from_slice(&4i32.to_be_bytes());
        assert!(!verify_crc(&b), "patched last_offset_delta breaks the CRC");
        update_crc(&mut b);
        assert!(verify_crc(&b), "recomputed CRC");
        assert_eq!(parse_header(&b).expect("parses").last_offset_delta, 4);
        let mut short = [0u8; 10];
        update_crc(&mut short);
        assert_eq!(short, [0u8; 10], "short slice untouched");
    }
}
