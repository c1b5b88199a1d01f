//! Tiered storage (KIP-405) without IO: what a leader asks its driver to upload, the layout
//! of an uploaded segment object, and how a remote read finds its bytes in one.
//!
//! The node decides (sans-IO, `node/tier.rs`): which closed segment of which partition
//! goes next, under which object key, and when local copies may go. The driver runs an
//! [`UploadJob`] off its loop: it reads the segment's batches from storage with a
//! [`SegmentReader`] (chunk by chunk, so a large segment never sits whole in memory),
//! streams them to the object store followed by the reader's footer, and reports
//! `Completion::Uploaded`. A fetch below the local log start leaves the node as a
//! `FetchRecords::Remote` plan; the driver reads the object's [`Footer`], its
//! [`SegmentIndex`], then the byte range the index names, and checks every batch's CRC
//! before serving it (the same rule as local reads).
//!
//! # The segment object
//! ```text
//! [batch][batch]...[batch] [index entry]... [footer]
//! ```
//! The batches exactly as stored (untouched wire bytes), then one [`IndexEntry`] per batch
//! (base offset, last offset, position; 24 bytes, big-endian), then one 24-byte entry per
//! aborted transaction with data in the segment (producer id, first offset, offset of its
//! abort marker: what a read_committed fetch must be told, Kafka's transaction index),
//! then a [`FOOTER_LEN`]-byte footer: where the index starts, how many entries of each
//! kind follow, the CRC-32C of both sections, the largest record timestamp, a format
//! version and the magic `WEIRTIER`. A reader needs two ranged GETs before the data
//! (footer, index), and caches the index.
//!
//! # Invariants
//! - An object holds whole batches only, in offset order, covering exactly
//!   `[base_offset, end_offset)` of its job (up to gaps left by compaction, which tiered
//!   topics do not have; a gap is served like a local one, from the next batch).
//! - Nothing in an object is trusted on read: the footer's magic and version, the index's
//!   CRC and bounds, and every served batch's CRC are checked; a mismatch is an error, never
//!   bytes given to a client.

use bytes::{BufMut, Bytes, BytesMut};
use weir_wire::batch::iter_batches;
use weir_wire::domain::{AbortedTransaction, ReadPlan};

use crate::compaction::AbortedTxn;

use crate::storage::{Storage, StorageError};
use crate::topic::PartitionId;

/// The footer's magic, the object's last 8 bytes.
pub const MAGIC: &[u8; 8] = b"WEIRTIER";
/// The object format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the footer: index position (8), entry count (8), aborted count (8), index CRC
/// (4), max timestamp (8), version (2), magic (8).
pub const FOOTER_LEN: usize = 46;
/// Bytes of one index entry, and of one aborted transaction.
pub const INDEX_ENTRY_LEN: usize = 24;

/// One upload a leader asks its driver to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    /// Identifies the job in its completion.
    pub job_id: u64,
    /// The partition.
    pub partition: PartitionId,
    /// Its storage key (what [`SegmentReader`] reads).
    pub partition_key: u64,
    /// The leader epoch this node leads at; the report quotes it.
    pub leader_epoch: i32,
    /// First offset of the segment.
    pub base_offset: i64,
    /// One past its last offset.
    pub end_offset: i64,
    /// Where to put it in the store (relative to the configured root).
    pub object_key: String,
    /// Bytes per storage read.
    pub read_bytes: u32,
    /// The aborted transactions with data in the segment (the object carries them so a
    /// read_committed fetch from remote learns them, whatever is left locally).
    pub aborted: Vec<AbortedTxn>,
}

/// An object written whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The job's id.
    pub job_id: u64,
    /// Bytes of the object (batches, index and footer).
    pub size_bytes: u64,
    /// Largest record timestamp in it (-1 when none).
    pub max_timestamp: i64,
}

/// An upload that did not happen (or may have half happened: its object, if any, is an
/// orphan the sweeper removes). The node tries again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFailed {
    /// The job's id.
    pub job_id: u64,
    /// What went wrong, for logs.
    pub reason: String,
}

/// Object keys the driver deletes (remote retention, a deleted topic, orphans). Failures
/// are logged and left to the next sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteJob {
    /// Keys to delete, relative to the store's root.
    pub keys: Vec<String>,
}

/// List a prefix and delete what no image references: a topic gone from the image
/// (`keep` empty), or a partition's orphans (objects of refused or abandoned uploads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepJob {
    /// The prefix listed (a topic's or a partition's directory, ending in `/`).
    pub prefix: String,
    /// Keys under it that must stay.
    pub keep: Vec<String>,
    /// Only objects last modified at least this long ago go (an upload in flight has no
    /// entry in the image yet).
    pub min_age_ms: u64,
}

/// The directory of a topic's objects: `<name>-<id as 32 hex digits>/`, the name for a
/// person browsing the bucket, the id because a name can be reused after a delete.
pub fn topic_prefix(name: &str, topic_id: u128) -> String {
    format!("{name}-{topic_id:032x}/")
}

/// The topic id in a [`topic_prefix`] (without its trailing `/`), or `None` when the
/// directory is not one of ours.
pub fn topic_id_of_prefix(dir: &str) -> Option<u128> {
    let dir = dir.trim_end_matches('/');
    let (_, hex) = dir.rsplit_once('-')?;
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

/// The directory of a partition's objects.
pub fn partition_prefix(name: &str, topic_id: u128, partition: i32) -> String {
    format!("{}{partition}/", topic_prefix(name, topic_id))
}

/// A segment's object key: its offsets (so a listing sorts by offset), the uploader's leader
/// epoch, and a per-upload id (an object is never overwritten: a retried or concurrent
/// upload of the same offsets writes another key, and the loser is an orphan).
pub fn segment_key(
    name: &str,
    topic_id: u128,
    partition: i32,
    base_offset: i64,
    end_offset: i64,
    leader_epoch: i32,
    upload_id: u128,
) -> String {
    format!(
        "{}{base_offset:020}-{end_offset:020}-{leader_epoch}-{upload_id:032x}.seg",
        partition_prefix(name, topic_id, partition)
    )
}

/// One batch's place in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The batch's base offset.
    pub base_offset: i64,
    /// Its last offset.
    pub last_offset: i64,
    /// Byte position of the batch in the object.
    pub position: u64,
}

/// The footer of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Where the index starts (= bytes of batches).
    pub index_position: u64,
    /// Entries in the index.
    pub entries: u64,
    /// Aborted transactions after the index.
    pub aborted: u64,
    /// CRC-32C of the index and aborted sections.
    pub index_crc: u32,
    /// Largest record timestamp (-1 when none).
    pub max_timestamp: i64,
}

/// Why an object's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Not a segment object of a version this code reads.
    #[error("not a segment object: {0}")]
    Footer(String),
    /// The index does not match its footer or is out of order.
    #[error("bad segment index: {0}")]
    Index(String),
    /// Batch bytes that do not parse or fail their CRC.
    #[error("bad batch in segment object: {0}")]
    Batch(String),
}

impl Footer {
    /// Encode, [`FOOTER_LEN`] bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(FOOTER_LEN);
        out.put_u64(self.index_position);
        out.put_u64(self.entries);
        out.put_u64(self.aborted);
        out.put_u32(self.index_crc);
        out.put_i64(self.max_timestamp);
        out.put_u16(FORMAT_VERSION);
        out.put_slice(MAGIC);
        out.freeze()
    }

    /// Decode the last [`FOOTER_LEN`] bytes of an object of `object_len` bytes.
    pub fn decode(bytes: &[u8], object_len: u64) -> Result<Footer, ObjectError> {
        if bytes.len() != FOOTER_LEN {
            return Err(ObjectError::Footer(format!(
                "{} footer bytes, expected {FOOTER_LEN}",
                bytes.len()
            )));
        }
        if &bytes[38..46] != MAGIC {
            return Err(ObjectError::Footer("wrong magic".into()));
        }
        let version = u16::from_be_bytes([bytes[36], bytes[37]]);
        if version != FORMAT_VERSION {
            return Err(ObjectError::Footer(format!("format version {version}")));
        }
        let footer = Footer {
            index_position: be_u64(&bytes[0..8]),
            entries: be_u64(&bytes[8..16]),
            aborted: be_u64(&bytes[16..24]),
            index_crc: u32::from_be_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]),
            max_timestamp: be_u64(&bytes[28..36]) as i64,
        };
        let index_len = footer.index_len();
        let expected = (footer.index_position)
            .checked_add(index_len)
            .and_then(|n| n.checked_add(FOOTER_LEN as u64));
        if expected != Some(object_len) {
            return Err(ObjectError::Footer(format!(
                "index at {} with {} + {} entries does not end an object of {object_len} bytes",
                footer.index_position, footer.entries, footer.aborted
            )));
        }
        Ok(footer)
    }

    /// Bytes of the index and aborted sections (what a reader fetches after the footer).
    pub fn index_len(&self) -> u64 {
        (self.entries.saturating_add(self.aborted)).saturating_mul(INDEX_ENTRY_LEN as u64)
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(array)
}

/// An object's index, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    entries: Vec<IndexEntry>,
    aborted: Vec<AbortedTxn>,
    /// Bytes of batches (where the index starts).
    data_len: u64,
}

impl SegmentIndex {
    /// Decode the index bytes named by `footer`.
    pub fn decode(bytes: &[u8], footer: &Footer) -> Result<SegmentIndex, ObjectError> {
        if bytes.len() as u64 != footer.index_len() {
            return Err(ObjectError::Index(format!(
                "{} index bytes, footer says {}",
                bytes.len(),
                footer.index_len()
            )));
        }
        if crc32c::crc32c(bytes) != footer.index_crc {
            return Err(ObjectError::Index("CRC mismatch".into()));
        }
        let split = usize::try_from(footer.entries)
            .ok()
            .and_then(|n| n.checked_mul(INDEX_ENTRY_LEN))
            .filter(|&n| n <= bytes.len())
            .ok_or_else(|| ObjectError::Index("entry count out of bounds".into()))?;
        let (index_bytes, aborted_bytes) = bytes.split_at(split);
        let aborted = aborted_bytes
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|raw| AbortedTxn {
                producer_id: be_u64(&raw[0..8]) as i64,
                first_offset: be_u64(&raw[8..16]) as i64,
                last_offset: be_u64(&raw[16..24]) as i64,
            })
            .collect();
        let mut entries = Vec::with_capacity(index_bytes.len() / INDEX_ENTRY_LEN);
        for raw in index_bytes.chunks_exact(INDEX_ENTRY_LEN) {
            let entry = IndexEntry {
                base_offset: be_u64(&raw[0..8]) as i64,
                last_offset: be_u64(&raw[8..16]) as i64,
                position: be_u64(&raw[16..24]),
            };
            if entry.last_offset < entry.base_offset || entry.position >= footer.index_position {
                return Err(ObjectError::Index(format!("entry {entry:?} out of bounds")));
            }
            if let Some(previous) = entries.last() {
                let previous: &IndexEntry = previous;
                if entry.base_offset <= previous.last_offset || entry.position <= previous.position
                {
                    return Err(ObjectError::Index(format!("entry {entry:?} out of order")));
                }
            }
            entries.push(entry);
        }
        Ok(SegmentIndex {
            entries,
            aborted,
            data_len: footer.index_position,
        })
    }

    /// The aborted transactions overlapping `[start, end)`, as a fetch answers them.
    pub fn aborted_overlapping(&self, start: i64, end: i64) -> Vec<AbortedTransaction> {
        (self.aborted.iter())
            .filter(|a| a.last_offset >= start && a.first_offset < end)
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
            })
            .collect()
    }

    /// The entries, in offset order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// What to read for `[start_offset, end_offset)` within `max_bytes`: from the batch
    /// holding `start_offset` (or the next one, past a gap), whole batches, at least one,
    /// none starting at or past `end_offset`. `None` when no batch qualifies.
    pub fn range_for(
        &self,
        start_offset: i64,
        end_offset: i64,
        max_bytes: u32,
    ) -> Option<RangeRead> {
        let first = self
            .entries
            .partition_point(|entry| entry.last_offset < start_offset);
        let entry = self.entries.get(first)?;
        if entry.base_offset >= end_offset {
            return None;
        }
        let start = entry.position;
        let mut count = 1;
        for index in first + 1..self.entries.len() {
            let next_end = self.end_of(index);
            if self.entries[index].base_offset >= end_offset
                || next_end - start > u64::from(max_bytes)
            {
                break;
            }
            count += 1;
        }
        Some(RangeRead {
            range: start..self.end_of(first + count - 1),
            first,
            count,
        })
    }

    /// Check the bytes read for `read`: exactly the batches the index names there, each
    /// with its offsets and a valid CRC.
    pub fn check(&self, read: &RangeRead, bytes: Bytes) -> Result<Bytes, ObjectError> {
        if bytes.len() as u64 != read.range.end - read.range.start {
            return Err(ObjectError::Batch(format!(
                "{} bytes read for a range of {}",
                bytes.len(),
                read.range.end - read.range.start
            )));
        }
        let expected = self
            .entries
            .get(read.first..read.first + read.count)
            .ok_or_else(|| ObjectError::Index("range outside the index".into()))?;
        let mut batches = iter_batches(&bytes);
        for entry in expected {
            let (header, range) = batches
                .next()
                .ok_or_else(|| ObjectError::Batch("fewer batches than indexed".into()))?
                .map_err(|error| ObjectError::Batch(error.to_string()))?;
            let position = read.range.start + range.start as u64;
            if header.base_offset != entry.base_offset
                || header.last_offset() != entry.last_offset
                || position != entry.position
            {
                return Err(ObjectError::Batch(format!(
                    "batch {}..={} at {position} where the index has {entry:?}",
                    header.base_offset,
                    header.last_offset()
                )));
            }
            if !weir_wire::batch::verify_crc(&bytes[range]) {
                return Err(ObjectError::Batch(format!(
                    "CRC mismatch in the batch at offset {}",
                    header.base_offset
                )));
            }
        }
        if batches.next().is_some() {
            return Err(ObjectError::Batch("more batches than indexed".into()));
        }
        Ok(bytes)
    }

    /// Where the batch at `index` ends.
    fn end_of(&self, index: usize) -> u64 {
        self.entries
            .get(index + 1)
            .map_or(self.data_len, |next| next.position)
    }
}

/// A ranged read of an object's batches: the byte range and the index entries it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRead {
    /// Bytes of the object to read.
    pub range: std::ops::Range<u64>,
    /// Index of the first entry.
    pub first: usize,
    /// Entries (batches) covered.
    pub count: usize,
}

/// Reads one job's segment from storage, chunk by chunk, building the index as it goes.
#[derive(Debug)]
pub struct SegmentReader {
    partition_key: u64,
    next_offset: i64,
    end_offset: i64,
    read_bytes: u32,
    position: u64,
    max_timestamp: i64,
    index: BytesMut,
    entries: u64,
    aborted: Vec<AbortedTxn>,
}

impl SegmentReader {
    /// A reader of `job`'s segment.
    pub fn new(job: &UploadJob) -> SegmentReader {
        SegmentReader {
            partition_key: job.partition_key,
            next_offset: job.base_offset,
            end_offset: job.end_offset,
            read_bytes: job.read_bytes.max(1),
            position: 0,
            max_timestamp: -1,
            index: BytesMut::new(),
            entries: 0,
            aborted: job.aborted.clone(),
        }
    }

    /// The next chunk of whole batches (CRC-checked), or `None` once the segment is read.
    /// A batch reaching past the segment's end is an error (segments end on batch
    /// boundaries).
    pub fn next_chunk(&mut self, storage: &impl Storage) -> Result<Option<Bytes>, TierError> {
        if self.next_offset >= self.end_offset {
            return Ok(None);
        }
        let plan = ReadPlan {
            partition_key: self.partition_key,
            start_offset: self.next_offset,
            end_offset: self.end_offset,
            max_bytes: self.read_bytes,
        };
        let bytes = crate::resolve::read_checked(storage, &plan)?;
        let mut keep = 0;
        for item in iter_batches(&bytes) {
            let (header, range) = item.map_err(|error| ObjectError::Batch(error.to_string()))?;
            if header.base_offset >= self.end_offset {
                break;
            }
            let last = header.last_offset();
            if last >= self.end_offset {
                return Err(TierError::Object(ObjectError::Batch(format!(
                    "batch {}..={last} crosses the segment end {}",
                    header.base_offset, self.end_offset
                ))));
            }
            self.index.put_i64(header.base_offset);
            self.index.put_i64(last);
            self.index.put_u64(self.position + range.start as u64);
            self.entries += 1;
            self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
            self.next_offset = last + 1;
            keep = range.end;
        }
        if keep == 0 {
            // Nothing stored in what is left (a gap up to the end): the segment is read.
            self.next_offset = self.end_offset;
            return Ok(None);
        }
        self.position += keep as u64;
        Ok(Some(bytes.slice(..keep)))
    }

    /// The index and footer that end the object, and what the upload reports.
    pub fn finish(mut self) -> (Bytes, i64) {
        for aborted in &self.aborted {
            self.index.put_i64(aborted.producer_id);
            self.index.put_i64(aborted.first_offset);
            self.index.put_i64(aborted.last_offset);
        }
        let index = self.index.freeze();
        let footer = Footer {
            index_position: self.position,
            entries: self.entries,
            aborted: self.aborted.len() as u64,
            index_crc: crc32c::crc32c(&index),
            max_timestamp: self.max_timestamp,
        };
        let mut tail = BytesMut::with_capacity(index.len() + FOOTER_LEN);
        tail.extend_from_slice(&index);
        tail.extend_from_slice(&footer.encode());
        (tail.freeze(), self.max_timestamp)
    }
}

/// Why a driver could not build or read an object.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// Reading local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The object's bytes are not what they must be.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// Build a whole object in memory (tests and small segments; drivers stream with
/// [`SegmentReader`] instead).
pub fn build_object(storage: &impl Storage, job: &UploadJob) -> Result<(Bytes, i64), TierError> {
    let mut reader = SegmentReader::new(job);
    let mut out = BytesMut::new();
    while let Some(chunk) = reader.next_chunk(storage)? {
        out.extend_from_slice(&chunk);
    }
    let (tail, max_timestamp) = reader.finish();
    out.extend_from_slice(&tail);
    Ok((out.freeze(), max_timestamp))
}

/// Read `[start_offset, end_offset)` from a whole object held in memory (tests, and any
/// store that returns whole objects): footer, index, range, checked batches.
pub fn read_from_object(
    object: &Bytes,
    start_offset: i64,
    end_offset: i64,
    max_bytes: u32,
) -> Result<Bytes, ObjectError> {
    let (bytes, _) = read_plan_from_object(object, start_offset, end_offset, max_bytes)?;
    Ok(bytes)
}

/// [`read_from_object`], with the aborted transactions overlapping the range asked for.
pub fn read_plan_from_object(
    object: &Bytes,
    start_offset: i64,
    end_offset: i64,
    max_bytes: u32,
) -> Result<(Bytes, Vec<AbortedTransaction>), ObjectError> {
    let len = object.len() as u64;
    if object.len() < FOOTER_LEN {
        return Err(ObjectError::Footer("object shorter than a footer".into()));
    }
    let footer = Footer::decode(&object[object.len() - FOOTER_LEN..], len)?;
    let index_start = footer.index_position as usize;
    let index_end = index_start + footer.index_len() as usize;
    let index = SegmentIndex::decode(&object[index_start..index_end], &footer)?;
    let Some(read) = index.range_for(start_offset, end_offset, max_bytes) else {
        return Ok((Bytes::new(), Vec::new()));
    };
    let bytes = object.slice(read.range.start as usize..read.range.end as usize);
    let aborted = index.aborted_overlapping(start_offset, end_offset);
    Ok((index.check(&read, bytes)?, aborted))
}

/// An object store in memory, for the core's own test drivers: uploads run at once,
/// remote plans resolve synchronously, objects remember when they were written.
#[derive(Debug, Default, Clone)]
pub struct MemObjects {
    objects: std::collections::BTreeMap<String, (Bytes, i64)>,
    /// Fail every upload (an unreachable store).
    pub failing: bool,
}

impl MemObjects {
    /// Run an upload job over `storage` at wall time `now_ms`.
    pub fn upload(
        &mut self,
        storage: &impl Storage,
        job: &UploadJob,
        now_ms: i64,
    ) -> crate::Completion {
        if self.failing {
            return crate::Completion::Uploaded(Err(UploadFailed {
                job_id: job.job_id,
                reason: "store unavailable".into(),
            }));
        }
        let outcome = match build_object(storage, job) {
            Ok((object, max_timestamp)) => {
                let size_bytes = object.len() as u64;
                self.objects
                    .insert(job.object_key.clone(), (object, now_ms));
                Ok(Uploaded {
                    job_id: job.job_id,
                    size_bytes,
                    max_timestamp,
                })
            }
            Err(error) => Err(UploadFailed {
                job_id: job.job_id,
                reason: error.to_string(),
            }),
        };
        crate::Completion::Uploaded(outcome)
    }

    /// Delete the job's keys.
    pub fn delete(&mut self, job: &DeleteJob) {
        for key in &job.keys {
            self.objects.remove(key);
        }
    }

    /// Run a sweep at wall time `now_ms`.
    pub fn sweep(&mut self, job: &SweepJob, now_ms: i64) {
        let min_age = i64::try_from(job.min_age_ms).unwrap_or(i64::MAX);
        self.objects.retain(|key, (_, written)| {
            !key.starts_with(&job.prefix)
                || job.keep.contains(key)
                || now_ms.saturating_sub(*written) < min_age
        });
    }

    /// The keys held, in order.
    pub fn keys(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Replace every `FetchRecords::Remote` plan of `response` with the object's bytes; a
    /// missing or corrupt object answers KAFKA_STORAGE_ERROR (the production rule).
    pub fn resolve(&self, response: &mut weir_wire::domain::ApiResponse) -> Vec<String> {
        use weir_wire::domain::{ApiResponse, FetchRecords};
        let mut failures = Vec::new();
        let ApiResponse::Fetch(fetch) = response else {
            return failures;
        };
        for partition in fetch
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            let FetchRecords::Remote(plan) = &partition.records else {
                continue;
            };
            let read = match self.objects.get(&plan.object_key) {
                Some((object, _)) => read_plan_from_object(
                    object,
                    plan.start_offset,
                    plan.end_offset,
                    plan.max_bytes,
                )
                .map_err(|error| error.to_string()),
                None => Err(format!("no object {}", plan.object_key)),
            };
            let read_committed = plan.read_committed;
            match read {
                Ok((bytes, _)) if bytes.is_empty() => partition.records = FetchRecords::Empty,
                Ok((bytes, aborted)) => {
                    partition.records = FetchRecords::Bytes(bytes);
                    if read_committed {
                        partition.aborted_transactions = aborted;
                    }
                }
                Err(error) => {
                    partition.error = weir_wire::error::ErrorCode::KAFKA_STORAGE_ERROR;
                    partition.records = FetchRecords::Empty;
                    failures.push(error);
                }
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStorage, StorageOp};
    use crate::testing::batch_at;

    fn storage_with(batches: &[(i64, i32)]) -> MemStorage {
        let mut storage = MemStorage::default();
        for &(base, count) in batches {
            let bytes = batch_at(base, &vec![0; count as usize]);
            let op = StorageOp::Append {
                partition_key: 1,
                base_offset: base,
                last_offset: base + i64::from(count) - 1,
                batch: bytes,
            };
            storage.apply(&op).expect("append");
        }
        storage
    }

    fn job(base: i64, end: i64, read_bytes: u32) -> UploadJob {
        UploadJob {
            job_id: 1,
            partition: PartitionId::new(uuid::Uuid::from_u128(7), 0),
            partition_key: 1,
            leader_epoch: 3,
            base_offset: base,
            end_offset: end,
            object_key: "t/0/x.seg".into(),
            read_bytes,
            aborted: vec![AbortedTxn {
                producer_id: 4,
                first_offset: 3,
                last_offset: 4,
            }],
        }
    }

    // Goal: an object built from storage serves every offset it covers, in whole batches,
    // from the batch holding the offset, and nothing past the end asked for.
    #[test]
    fn object_round_trip() {
        let storage = storage_with(&[(0, 3), (3, 2), (5, 4), (9, 1)]);
        for read_bytes in [1, 64, 1 << 20] {
            let (object, _) = build_object(&storage, &job(0, 10, read_bytes)).expect("build");
            for start in 0..10 {
                let bytes = read_from_object(&object, start, 10, 1).expect("read");
                let (header, _) = iter_batches(&bytes).next().expect("a batch").expect("ok");
                assert!(header.base_offset <= start && start <= header.last_offset());
            }
            let all = read_from_object(&object, 0, 10, u32::MAX).expect("read");
            assert_eq!(iter_batches(&all).count(), 4);
            let head = read_from_object(&object, 0, 5, u32::MAX).expect("read");
            assert_eq!(iter_batches(&head).count(), 2);
            let footer = Footer::decode(&object[object.len() - FOOTER_LEN..], object.len() as u64)
                .expect("footer");
            let start = footer.index_position as usize;
            let index =
                SegmentIndex::decode(&object[start..start + footer.index_len() as usize], &footer)
                    .expect("index");
            assert_eq!(index.aborted_overlapping(0, 3).len(), 0);
            assert_eq!(index.aborted_overlapping(4, 10).len(), 1);
        }
    }

    // Goal: a segment ends on a batch boundary; a job whose end cuts a batch is refused.
    #[test]
    fn a_job_cutting_a_batch_fails() {
        let storage = storage_with(&[(0, 3), (3, 2)]);
        assert!(build_object(&storage, &job(0, 4, 1 << 20)).is_err());
        assert!(build_object(&storage, &job(0, 5, 1 << 20)).is_ok());
    }

    // Goal: corrupt objects are refused, never served: a flipped byte anywhere in the
    // footer, the index or a batch is an error.
    #[test]
    fn corruption_is_detected() {
        let storage = storage_with(&[(0, 3), (3, 2)]);
        let (object, _) = build_object(&storage, &job(0, 5, 1 << 20)).expect("build");
        let batch_starts: Vec<usize> = iter_batches(&object)
            .map_while(Result::ok)
            .map(|(_, range)| range.start)
            .take(2)
            .collect();
        for at in 0..object.len() {
            let mut bad = object.to_vec();
            bad[at] ^= 0x40;
            let bad = Bytes::from(bad);
            let read = read_from_object(&bad, 0, 5, u32::MAX);
            // A flip inside a record's bytes is caught by the batch CRC, in a batch's
            // offsets or length by the index, in the index by its CRC, in the footer by its
            // checks. Harmless: the footer's max_timestamp, and a batch's leader epoch
            // (outside Kafka's CRC, as in local storage).
            let footer_at = object.len() - FOOTER_LEN;
            let in_timestamp = (footer_at + 28..footer_at + 36).contains(&at);
            let in_epoch = batch_starts
                .iter()
                .any(|&start| (start + 12..start + 16).contains(&at));
            if !in_timestamp && !in_epoch {
                assert!(read.is_err(), "flip at {at} of {} served", object.len());
            }
        }
    }

    #[test]
    fn prefixes_round_trip() {
        let id = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        let prefix = topic_prefix("a-b.c", id);
        assert_eq!(topic_id_of_prefix(&prefix), Some(id));
        assert_eq!(topic_id_of_prefix("junk"), None);
        let key = segment_key("a-b.c", id, 2, 10, 20, 4, 9);
        assert!(key.starts_with(&partition_prefix("a-b.c", id, 2)));
    }
}
