//! Client-side record encoding and decoding (record batch v2), on top of
//! `kafka_protocol`'s `RecordBatchEncoder`/`RecordBatchDecoder`.
//!
//! Invariants:
//! - [`encode_batch`] writes exactly one batch with base offset 0 and offset delta = index,
//!   so the broker can assign offsets by patching the base offset.
//! - [`decode_records`] never trusts a count from the wire before checking it against the
//!   bytes present: `kafka_protocol` reserves `record_count` records and `header_count`
//!   headers up front, so both are checked here first (after decompression).
//! - Control batches are skipped; a truncated final batch (fetch responses may end
//!   mid-batch) is ignored; a corrupt batch (CRC) is an error.
//!
//! Known limitation inherited from `kafka_protocol`: record headers are an `IndexMap`, so two
//! headers with the same key collapse into one (the last wins) when decoding or encoding.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records as kr;

use crate::batch::{iter_batches, verify_crc};
use crate::WireError;

/// A record as producers send it and consumers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset (ignored by [`encode_batch`], which uses the index).
    pub offset: i64,
    /// CreateTime, or the batch's LogAppendTime when the topic uses it.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Compression codec of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as the Java client writes it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    fn to_kafka(self) -> kr::Compression {
        match self {
            Compression::None => kr::Compression::None,
            Compression::Gzip => kr::Compression::Gzip,
            Compression::Snappy => kr::Compression::Snappy,
            Compression::Lz4 => kr::Compression::Lz4,
            Compression::Zstd => kr::Compression::Zstd,
        }
    }
}

/// Batch-level producer settings.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Codec.
    pub compression: Compression,
    /// Producer id, -1 if not idempotent.
    pub producer_id: i64,
    /// Producer epoch, -1 if not idempotent.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 if not idempotent.
    pub base_sequence: i32,
    /// Part of a transaction.
    pub transactional: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        }
    }
}

/// Encodes `records` as one v2 batch: base offset 0, offset delta = index, timestamps as
/// given. Errors on an empty slice.
pub fn encode_batch(records: &[Record], options: &BatchOptions) -> Result<Bytes, WireError> {
    if records.is_empty() {
        return Err(WireError::Encode(
            "a record batch needs at least one record".into(),
        ));
    }
    let converted: Vec<kr::Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let i = i as i64;
            kr::Record {
                transactional: options.transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: kr::NO_PARTITION_LEADER_EPOCH,
                producer_id: options.producer_id,
                producer_epoch: options.producer_epoch,
                timestamp_type: kr::TimestampType::Creation,
                offset: i,
                // The encoder derives the base sequence from the first record and keeps
                // records in one batch only while offset - sequence stays constant.
                sequence: if options.base_sequence < 0 {
                    // Keep offset - sequence constant with "no sequence" at the first record.
                    (i as i32).wrapping_add(options.base_sequence)
                } else {
                    options.base_sequence.wrapping_add(i as i32)
                },
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            }
        })
        .collect();
    let mut out = BytesMut::new();
    let encode_options = kr::RecordEncodeOptions {
        version: 2,
        compression: options.compression.to_kafka(),
    };
    kr::RecordBatchEncoder::encode(&mut out, converted.iter(), &encode_options)
        .map_err(|e| WireError::Encode(format!("{e:#}")))?;
    Ok(out.freeze())
}

/// Decodes every record of every whole batch in `bytes` (decompressing as needed), skipping
/// control batches and ignoring a truncated final batch.
pub fn decode_records(bytes: Bytes) -> Result<Vec<Record>, WireError> {
    let mut out = Vec::new();
    for item in iter_batches(&bytes) {
        let (header, range) = item.map_err(|e| WireError::Malformed(e.to_string()))?;
        if header.is_control() {
            continue;
        }
        if !verify_crc(&bytes[range.clone()]) {
            return Err(WireError::Malformed(format!(
                "record batch at offset {} fails its CRC",
                header.base_offset
            )));
        }
        let record_count = header.record_count;
        let compression = header.compression();
        let mut batch = bytes.slice(range);
        // The custom decompressor runs before kafka_protocol reserves `record_count`
        // records, so it is where the counts get checked against the real bytes.
        let decompress = |compressed: &mut Bytes, _: kr::Compression| {
            let plain = decompress(compressed, compression)?;
            check_records(&plain, record_count)?;
            Ok(plain)
        };
        let set =
            kr::RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress))
                .map_err(|e| WireError::Malformed(format!("{e:#}")))?;
        for r in set.records {
            out.push(Record {
                offset: r.offset,
                // LogAppendTime batches carry the broker's time as the max timestamp.
                timestamp: if header.is_log_append_time() {
                    header.max_timestamp
                } else {
                    r.timestamp
                },
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

fn decompress(compressed: &mut Bytes, codec: u8) -> Result<Bytes, WireError> {
    let result = match codec {
        0 => Ok(std::mem::take(compressed)),
        1 => Gzip::decompress(compressed, |b: &mut Bytes| Ok(std::mem::take(b))),
        2 => Snappy::decompress(compressed, |b: &mut Bytes| Ok(std::mem::take(b))),
        3 => Lz4::decompress(compressed, |b: &mut Bytes| Ok(std::mem::take(b))),
        4 => Zstd::decompress(compressed, |b: &mut Bytes| Ok(std::mem::take(b))),
        other => return Err(WireError::Unsupported(format!("compression codec {other}"))),
    };
    result.map_err(|e| WireError::Malformed(format!("decompression: {e:#}")))
}

/// Walks `record_count` records in `plain`, checking every count and length against the
/// bytes left (each record and header takes at least one byte).
fn check_records(plain: &[u8], record_count: i32) -> Result<(), WireError> {
    let count = usize::try_from(record_count)
        .map_err(|_| WireError::Malformed(format!("record count {record_count}")))?;
    if count > plain.len() {
        return Err(WireError::TooLarge {
            len: count as i64,
            max: plain.len(),
        });
    }
    let mut pos = 0;
    for _ in 0..count {
        let len = varint(plain, &mut pos)?;
        let len = usize::try_from(len).map_err(|_| WireError::Malformed("record length".into()))?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= plain.len())
            .ok_or(WireError::Truncated)?;
        let record = &plain[pos..end];
        pos = end;
        let mut p = 1; // attributes
        varlong(record, &mut p)?; // timestamp delta
        varint(record, &mut p)?; // offset delta
        for _ in 0..2 {
            // key, value
            let n = varint(record, &mut p)?;
            if n > 0 {
                p = p.checked_add(n as usize).ok_or(WireError::Truncated)?;
            }
        }
        let headers = varint(record, &mut p)?;
        if headers < 0 || headers as usize > record.len().saturating_sub(p.min(record.len())) {
            return Err(WireError::Malformed(format!(
                "record header count {headers}"
            )));
        }
    }
    Ok(())
}

/// Zigzag varint (at most 5 bytes), as Kafka's records use.
fn varint(b: &[u8], pos: &mut usize) -> Result<i32, WireError> {
    let v = varlong_bytes(b, pos, 5)?;
    Ok(v as i32)
}

/// Zigzag varlong (at most 10 bytes).
fn varlong(b: &[u8], pos: &mut usize) -> Result<i64, WireError> {
    varlong_bytes(b, pos, 10)
}

fn varlong_bytes(b: &[u8], pos: &mut usize, max: u32) -> Result<i64, WireError> {
    let mut raw: u64 = 0;
    for i in 0..max {
        let byte = *b.get(*pos).ok_or(WireError::Truncated)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(WireError::Malformed("varint too long".into()))
}

#[cfg(test)]
mod tests {
    // Goal: records survive encode/decode under every codec; control batches and truncated
    // tails are skipped; absurd counts fail cleanly. Method: round trips plus hand-corrupted
    // batches (CRC recomputed so the count checks, not the CRC, must catch them).
    use super::*;
    use crate::batch::{parse_header, set_base_offset};

    fn records(n: i64) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                offset: i,
                timestamp: 1_000 + i,
                key: if i % 2 == 0 {
                    Some(Bytes::from(format!("key-{i}")))
                } else {
                    None
                },
                value: if i % 3 == 2 {
                    None
                } else {
                    Some(Bytes::from(vec![b'x'; i as usize * 10]))
                },
                headers: vec![
                    ("a".into(), Some(Bytes::from_static(b"1"))),
                    ("b".into(), None),
                ],
            })
            .collect()
    }

    #[test]
    fn round_trip_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let rs = records(20);
            let options = BatchOptions {
                compression,
                ..BatchOptions::default()
            };
            let bytes = encode_batch(&rs, &options).expect("encode");
            assert_eq!(
                decode_records(bytes).expect("decode"),
                rs,
                "{compression:?}"
            );
        }
    }

    #[test]
    fn concatenated_truncated_and_control() {
        let a = encode_batch(&records(3), &BatchOptions::default()).expect("a");
        let mut b = encode_batch(&records(2), &BatchOptions::default())
            .expect("b")
            .to_vec();
        set_base_offset(&mut b, 3);
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        let got = decode_records(Bytes::from(all.clone())).expect("decode");
        assert_eq!(got.len(), 5);
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        // Truncated tail: only the first batch.
        let cut = Bytes::from(all[..all.len() - 7].to_vec());
        assert_eq!(decode_records(cut).expect("decode").len(), 3);
        // Mark the first batch as control (CRC recomputed): skipped.
        let mut ctl = a.to_vec();
        ctl[22] |= 0x20;
        let crc = crc32c::crc32c(&ctl[21..]);
        ctl[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(parse_header(&ctl).expect("h").is_control());
        ctl.extend_from_slice(&b);
        assert_eq!(decode_records(Bytes::from(ctl)).expect("decode").len(), 2);
    }

    #[test]
    fn absurd_counts_fail_cleanly() {
        let a = encode_batch(&records(1), &BatchOptions::default())
            .expect("a")
            .to_vec();
        let mut bad = a.clone();
        bad[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_records(Bytes::from(bad)).is_err());
        // Corrupt CRC.
        let mut bad = a.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_records(Bytes::from(bad)).is_err());
        assert!(encode_batch(&[], &BatchOptions::default()).is_err());
    }

    #[test]
    fn log_append_time_overrides_timestamps() {
        let mut a = encode_batch(&records(2), &BatchOptions::default())
            .expect("a")
            .to_vec();
        crate::batch::set_max_timestamp_log_append(&mut a, 99);
        let got = decode_records(Bytes::from(a)).expect("decode");
        assert!(got.iter().all(|r| r.timestamp == 99));
    }
}
