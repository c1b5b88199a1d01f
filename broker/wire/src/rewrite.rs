//! Broker-side rewriting of stored record batches (v2): read the records of one batch as
//! they are on the wire, and write a batch holding a subset of them at their original
//! offsets. This is what Kafka's log cleaner does to a batch (`MemoryRecords.filterTo`), and
//! the bytes half of `weir_core::compaction`, which decides what to keep.
//!
//! Why not [`crate::records`]: its encoder starts every batch at offset 0 with offset delta
//! = index and its decoder goes through `kafka_protocol`, which merges record headers with
//! the same key. A cleaner must keep every surviving record exactly as written, so records
//! here are located in the decompressed bytes and copied, never decoded into values.
//!
//! Invariants:
//! - [`BatchRecords::parse`] accepts only one whole batch with a correct CRC, walks exactly
//!   `record_count` records, and checks every length against the bytes present, so no input
//!   can make it panic or allocate more than the decompressed size.
//! - [`rebuild_batch`] keeps the source's base offset, last offset delta, producer id,
//!   epoch, base sequence, leader epoch, compression and timestamp type, so every kept
//!   record keeps its absolute offset and the batch keeps the producer's last sequence
//!   (Kafka's `MemoryRecordsBuilder.overrideLastOffset`). Kept records are copied byte for
//!   byte, except for the timestamp delta when the base timestamp moves (delete horizon).
//! - [`empty_batch`] is Kafka's `DefaultRecordBatch.writeEmptyHeader`: a header with no
//!   records that still spans the source's offsets and sequences.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{parse_header, verify_crc, BatchHeader, BATCH_HEADER_BYTES, DELETE_HORIZON_BIT};
use crate::WireError;

/// Attribute bits a rebuilt batch copies from its source: compression, timestamp type,
/// transactional and control. The delete-horizon bit is decided anew.
const COPIED_ATTRIBUTES: i16 = 0x3f;
/// Bits of the attributes that name the compression codec.
const COMPRESSION_MASK: i16 = 0x07;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;
/// Smallest encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const RECORD_BYTES_MIN: usize = 7;

/// One record of a parsed batch, borrowed from the decompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// Absolute offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Absolute timestamp: base timestamp plus delta (LogAppendTime batches: the batch's
    /// max timestamp, as consumers see it).
    pub timestamp: i64,
    /// Key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

/// Where one record lies in the decompressed bytes.
#[derive(Debug, Clone)]
struct RecordSpan {
    /// The whole record, length prefix included.
    whole: Range<usize>,
    /// Record attributes (unused by Kafka, kept as written).
    attributes: u8,
    timestamp_delta: i64,
    offset_delta: i32,
    /// From the offset delta to the record's end: everything a rewrite copies as is.
    after_timestamp: Range<usize>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

/// The records of one batch, decompressed and located but not copied.
#[derive(Debug, Clone)]
pub struct BatchRecords {
    header: BatchHeader,
    plain: Bytes,
    records: Vec<RecordSpan>,
}

impl BatchRecords {
    /// Parses `batch`, exactly one whole v2 batch: header, CRC, decompression, and every
    /// record's fields. Trailing bytes after the last record are malformed.
    pub fn parse(batch: &[u8]) -> Result<BatchRecords, WireError> {
        let header = parse_header(batch).map_err(|e| WireError::Malformed(e.to_string()))?;
        if header.size_bytes() != batch.len() {
            return Err(WireError::Malformed(format!(
                "batch at {} spans {} bytes, {} given",
                header.base_offset,
                header.size_bytes(),
                batch.len()
            )));
        }
        if !verify_crc(batch) {
            return Err(WireError::Malformed(format!(
                "record batch at offset {} fails its CRC",
                header.base_offset
            )));
        }
        let compressed = Bytes::copy_from_slice(&batch[BATCH_HEADER_BYTES..]);
        let plain = decompress(compressed, header.compression())?;
        let records = locate_records(&plain, header.record_count)?;
        Ok(BatchRecords {
            header,
            plain,
            records,
        })
    }

    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True for a batch without records (one a cleaner emptied).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record at `index` (< [`Self::len`]).
    pub fn record(&self, index: usize) -> RawRecord<'_> {
        let span = &self.records[index];
        let timestamp = if self.header.is_log_append_time() {
            self.header.max_timestamp
        } else {
            self.header
                .base_timestamp
                .wrapping_add(span.timestamp_delta)
        };
        RawRecord {
            offset: self.header.base_offset + i64::from(span.offset_delta),
            timestamp,
            key: span.key.clone().map(|r| &self.plain[r]),
            value: span.value.clone().map(|r| &self.plain[r]),
        }
    }

    /// Every record in order.
    pub fn records(&self) -> impl Iterator<Item = RawRecord<'_>> + '_ {
        (0..self.records.len()).map(|index| self.record(index))
    }
}

/// Writes a batch holding the records of `source` at indices `keep` (strictly increasing,
/// at least one), at their original offsets. With `delete_horizon_ms` the batch carries the
/// delete-horizon attribute and the horizon as its base timestamp (KIP-534); without, the
/// source's base timestamp stays (unless it was a horizon: then the first kept record's
/// timestamp becomes the base). The max timestamp is the largest kept (CreateTime) or the
/// source's (LogAppendTime). Errors only when the codec fails.
pub fn rebuild_batch(
    source: &BatchRecords,
    keep: &[usize],
    delete_horizon_ms: Option<i64>,
) -> Result<Bytes, WireError> {
    assert!(!keep.is_empty(), "a rebuilt batch holds records");
    let ordered = keep.windows(2).all(|pair| pair[0] < pair[1]);
    assert!(ordered, "kept indices must increase: {keep:?}");
    let last = keep[keep.len() - 1];
    assert!(last < source.len(), "index {last} of {}", source.len());
    let header = &source.header;
    let had_horizon = header.attributes & DELETE_HORIZON_BIT != 0;
    let base_timestamp = match delete_horizon_ms {
        Some(horizon) => horizon,
        None if had_horizon => source.record(keep[0]).timestamp,
        None => header.base_timestamp,
    };
    let mut plain = BytesMut::new();
    for &index in keep {
        write_record(&mut plain, source, index, base_timestamp)?;
    }
    let max_timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        keep.iter()
            .map(|&index| source.record(index).timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP)
    };
    let mut attributes = header.attributes & COPIED_ATTRIBUTES;
    if delete_horizon_ms.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let fields = HeaderFields {
        attributes,
        base_timestamp,
        max_timestamp,
        record_count: i32::try_from(keep.len()).expect("keep.len() <= source.len(), an i32"),
    };
    let records = compress(&plain, header.compression())?;
    Ok(write_batch(header, &fields, &records))
}

/// Kafka's empty batch (`writeEmptyHeader`): no records, no compression, base timestamp
/// -1, and the source's base offset, last offset delta, producer id, epoch, base sequence,
/// leader epoch, max timestamp, timestamp type, transactional and control bits. It keeps a
/// producer's last sequence and epoch in the log once every record of its batch is gone.
pub fn empty_batch(source: &BatchHeader) -> Bytes {
    let fields = HeaderFields {
        attributes: source.attributes & COPIED_ATTRIBUTES & !COMPRESSION_MASK,
        base_timestamp: NO_TIMESTAMP,
        max_timestamp: source.max_timestamp,
        record_count: 0,
    };
    write_batch(source, &fields, &[])
}

/// The header fields a rewrite changes; everything else comes from the source.
struct HeaderFields {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
}

/// Header from `source` and `fields`, then `records` (already compressed), then the CRC.
fn write_batch(source: &BatchHeader, fields: &HeaderFields, records: &[u8]) -> Bytes {
    let batch_length = BATCH_HEADER_BYTES - 12 + records.len();
    let mut out = BytesMut::with_capacity(12 + batch_length);
    out.put_i64(source.base_offset);
    // A rebuilt batch is never larger than its source plus a few varint bytes per record,
    // and the source's length was an i32.
    out.put_i32(i32::try_from(batch_length).unwrap_or(i32::MAX));
    out.put_i32(source.partition_leader_epoch);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(fields.attributes);
    out.put_i32(source.last_offset_delta);
    out.put_i64(fields.base_timestamp);
    out.put_i64(fields.max_timestamp);
    out.put_i64(source.producer_id);
    out.put_i16(source.producer_epoch);
    out.put_i32(source.base_sequence);
    out.put_i32(fields.record_count);
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = out.freeze();
    assert!(
        verify_crc(&batch),
        "rebuilt batch at {}",
        source.base_offset
    );
    batch
}

/// Appends record `index` of `source` to `out`, its timestamp delta relative to
/// `base_timestamp`. A record whose delta does not change is copied whole.
fn write_record(
    out: &mut BytesMut,
    source: &BatchRecords,
    index: usize,
    base_timestamp: i64,
) -> Result<(), WireError> {
    let span = &source.records[index];
    let absolute = source
        .header
        .base_timestamp
        .wrapping_add(span.timestamp_delta);
    let delta = absolute.wrapping_sub(base_timestamp);
    if delta == span.timestamp_delta {
        out.extend_from_slice(&source.plain[span.whole.clone()]);
        return Ok(());
    }
    let mut body = Vec::with_capacity(span.whole.len() + 10);
    body.push(span.attributes);
    put_varlong(&mut body, delta);
    body.extend_from_slice(&source.plain[span.after_timestamp.clone()]);
    let length = i64::try_from(body.len())
        .map_err(|_| WireError::Encode(format!("record of {} bytes", body.len())))?;
    let mut prefix = Vec::with_capacity(5);
    put_varlong(&mut prefix, length);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&body);
    Ok(())
}

/// Locates `record_count` records in `plain`, checking every length against the bytes.
fn locate_records(plain: &[u8], record_count: i32) -> Result<Vec<RecordSpan>, WireError> {
    let count = usize::try_from(record_count)
        .map_err(|_| WireError::Malformed(format!("record count {record_count}")))?;
    if count > plain.len() / RECORD_BYTES_MIN {
        return Err(WireError::Malformed(format!(
            "{count} records cannot fit in {} bytes",
            plain.len()
        )));
    }
    let mut records = Vec::with_capacity(count);
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let length = to_length(varint(plain, &mut pos)?)?;
        let end = pos
            .checked_add(length)
            .filter(|&end| end <= plain.len())
            .ok_or(WireError::Truncated)?;
        let record = &plain[..end];
        let attributes = *record.get(pos).ok_or(WireError::Truncated)?;
        pos += 1;
        let timestamp_delta = varlong(record, &mut pos)?;
        let after_timestamp = pos;
        let offset_delta = varint(record, &mut pos)?;
        let key = nullable_bytes(record, &mut pos)?;
        let value = nullable_bytes(record, &mut pos)?;
        let header_count = varint(record, &mut pos)?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| WireError::Malformed(format!("record header count {header_count}")))?;
        for _ in 0..header_count {
            // Header key (not nullable) and value (nullable).
            nullable_bytes(record, &mut pos)?
                .ok_or(WireError::Malformed("record header with a null key".into()))?;
            nullable_bytes(record, &mut pos)?;
        }
        if pos != end {
            return Err(WireError::Malformed(format!(
                "record of {length} bytes holds {} bytes of fields",
                pos - (end - length)
            )));
        }
        records.push(RecordSpan {
            whole: start..end,
            attributes,
            timestamp_delta,
            offset_delta,
            after_timestamp: after_timestamp..end,
            key,
            value,
        });
    }
    if pos != plain.len() {
        return Err(WireError::Malformed(format!(
            "{} bytes after the last record",
            plain.len() - pos
        )));
    }
    Ok(records)
}

/// A varint length prefix then that many bytes (-1: null), bounded by `record`.
fn nullable_bytes(record: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>, WireError> {
    let length = varint(record, pos)?;
    if length == -1 {
        return Ok(None);
    }
    let length = to_length(length)?;
    let end = pos
        .checked_add(length)
        .filter(|&end| end <= record.len())
        .ok_or(WireError::Truncated)?;
    let range = *pos..end;
    *pos = end;
    Ok(Some(range))
}

fn to_length(value: i32) -> Result<usize, WireError> {
    usize::try_from(value).map_err(|_| WireError::Malformed(format!("length {value}")))
}

fn decompress(compressed: Bytes, codec: u8) -> Result<Bytes, WireError> {
    let mut compressed = compressed;
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    let result = match codec {
        0 => return Ok(compressed),
        1 => Gzip::decompress(&mut compressed, take),
        2 => Snappy::decompress(&mut compressed, take),
        3 => Lz4::decompress(&mut compressed, take),
        4 => Zstd::decompress(&mut compressed, take),
        other => return Err(WireError::Unsupported(format!("compression codec {other}"))),
    };
    result.map_err(|e| WireError::Malformed(format!("decompression: {e:#}")))
}

fn compress(plain: &[u8], codec: u8) -> Result<Bytes, WireError> {
    let mut out = BytesMut::new();
    let fill = |buf: &mut BytesMut| {
        buf.extend_from_slice(plain);
        Ok(())
    };
    let result = match codec {
        0 => return Ok(Bytes::copy_from_slice(plain)),
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        other => return Err(WireError::Unsupported(format!("compression codec {other}"))),
    };
    result.map_err(|e| WireError::Encode(format!("compression: {e:#}")))?;
    Ok(out.freeze())
}

/// Zigzag varint (at most 5 bytes).
fn varint(b: &[u8], pos: &mut usize) -> Result<i32, WireError> {
    let value = varlong_bytes(b, pos, 5)?;
    i32::try_from(value).map_err(|_| WireError::Malformed(format!("varint {value}")))
}

/// Zigzag varlong (at most 10 bytes).
fn varlong(b: &[u8], pos: &mut usize) -> Result<i64, WireError> {
    varlong_bytes(b, pos, 10)
}

fn varlong_bytes(b: &[u8], pos: &mut usize, bytes_max: u32) -> Result<i64, WireError> {
    let mut raw: u64 = 0;
    for i in 0..bytes_max {
        let byte = *b.get(*pos).ok_or(WireError::Truncated)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(WireError::Malformed("varint too long".into()))
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

#[cfg(test)]
mod tests {
    // Goal: a parsed batch yields the records that were encoded; a rebuilt batch keeps
    // offsets, sequences and bytes of kept records under every codec; the horizon moves the
    // base timestamp without moving record timestamps; malformed bytes are errors.
    // Method: batches from records::encode_batch (what clients send), decoded back with
    // records::decode_records (kafka_protocol's reading, as a consumer would).
    use super::*;
    use crate::batch::set_base_offset;
    use crate::records::{decode_records, encode_batch, BatchOptions, Compression, Record};

    fn records(n: i64) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                offset: i,
                timestamp: 1_000 + 10 * i,
                key: (i % 3 != 2).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 4 != 3).then(|| Bytes::from(vec![b'v'; i as usize])),
                headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
            })
            .collect()
    }

    fn options(compression: Compression) -> BatchOptions {
        BatchOptions {
            compression,
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 40,
            transactional: false,
        }
    }

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn parse_matches_encoded_records() {
        for codec in CODECS {
            let mut batch = encode_batch(&records(6), &options(codec))
                .expect("encode")
                .to_vec();
            set_base_offset(&mut batch, 100);
            let parsed = BatchRecords::parse(&batch).expect("parse");
            assert_eq!(parsed.len(), 6);
            for (i, (raw, want)) in parsed.records().zip(records(6)).enumerate() {
                assert_eq!(raw.offset, 100 + i as i64, "{codec:?}");
                assert_eq!(raw.timestamp, want.timestamp);
                assert_eq!(raw.key, want.key.as_deref());
                assert_eq!(raw.value, want.value.as_deref());
            }
        }
    }

    #[test]
    fn rebuild_keeps_offsets_sequences_and_codec() {
        for codec in CODECS {
            let mut batch = encode_batch(&records(6), &options(codec))
                .expect("encode")
                .to_vec();
            set_base_offset(&mut batch, 100);
            let parsed = BatchRecords::parse(&batch).expect("parse");
            let rebuilt = rebuild_batch(&parsed, &[1, 4], None).expect("rebuild");
            assert!(verify_crc(&rebuilt));
            let header = parse_header(&rebuilt).expect("header");
            let source = parsed.header();
            assert_eq!(header.base_offset, 100);
            assert_eq!(header.last_offset_delta, source.last_offset_delta);
            assert_eq!(header.base_sequence, source.base_sequence);
            assert_eq!(header.producer_id, 7);
            assert_eq!(header.producer_epoch, 2);
            assert_eq!(header.compression(), source.compression(), "{codec:?}");
            assert_eq!(header.record_count, 2);
            assert_eq!(header.max_timestamp, 1_040);
            let decoded = decode_records(rebuilt).expect("decode");
            let want = records(6);
            assert_eq!(
                decoded.iter().map(|r| r.offset).collect::<Vec<_>>(),
                [101, 104]
            );
            assert_eq!(decoded[0].value, want[1].value);
            assert_eq!(decoded[1].key, want[4].key);
            assert_eq!(decoded[1].headers, want[4].headers);
        }
    }

    #[test]
    fn horizon_moves_base_timestamp_only() {
        let batch = encode_batch(&records(4), &options(Compression::None)).expect("encode");
        let parsed = BatchRecords::parse(&batch).expect("parse");
        let with = rebuild_batch(&parsed, &[0, 3], Some(99_000)).expect("rebuild");
        let header = parse_header(&with).expect("header");
        assert_eq!(header.attributes & DELETE_HORIZON_BIT, DELETE_HORIZON_BIT);
        assert_eq!(header.base_timestamp, 99_000);
        let again = BatchRecords::parse(&with).expect("parse");
        let stamps: Vec<i64> = again.records().map(|r| r.timestamp).collect();
        assert_eq!(stamps, [1_000, 1_030]);
        let decoded = decode_records(with.clone()).expect("decode");
        assert_eq!(decoded[1].timestamp, 1_030);
        // Dropping the horizon again bases timestamps on the first kept record.
        let without = rebuild_batch(&again, &[1], None).expect("rebuild");
        let header = parse_header(&without).expect("header");
        assert_eq!(header.attributes & DELETE_HORIZON_BIT, 0);
        assert_eq!(header.base_timestamp, 1_030);
    }

    #[test]
    fn empty_batch_spans_the_source() {
        let mut batch = encode_batch(&records(5), &options(Compression::Zstd))
            .expect("encode")
            .to_vec();
        set_base_offset(&mut batch, 50);
        let source = parse_header(&batch).expect("header");
        let empty = empty_batch(&source);
        let header = parse_header(&empty).expect("header");
        assert!(verify_crc(&empty));
        assert_eq!(empty.len(), BATCH_HEADER_BYTES);
        assert_eq!(header.last_offset(), 54);
        assert_eq!(header.base_sequence, 40);
        assert_eq!((header.record_count, header.compression()), (0, 0));
        assert!(BatchRecords::parse(&empty).expect("parse").is_empty());
        assert!(decode_records(empty).expect("decode").is_empty());
    }

    #[test]
    fn malformed_batches_are_errors() {
        let batch = encode_batch(&records(3), &options(Compression::None))
            .expect("encode")
            .to_vec();
        // Every strict prefix, and every single-byte corruption with a fixed-up CRC.
        for cut in 0..batch.len() {
            assert!(BatchRecords::parse(&batch[..cut]).is_err(), "cut {cut}");
        }
        for at in BATCH_HEADER_BYTES..batch.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = batch.clone();
                bad[at] ^= flip;
                let crc = crc32c::crc32c(&bad[21..]);
                bad[17..21].copy_from_slice(&crc.to_be_bytes());
                // Either an error or a batch whose records all lie in bounds.
                if let Ok(parsed) = BatchRecords::parse(&bad) {
                    assert_eq!(parsed.records().count(), parsed.len());
                }
            }
        }
        let mut bad = batch.clone();
        bad[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(BatchRecords::parse(&bad).is_err());
        let mut bad = batch.clone();
        bad[30] ^= 1;
        assert!(BatchRecords::parse(&bad).is_err(), "CRC");
    }
}
