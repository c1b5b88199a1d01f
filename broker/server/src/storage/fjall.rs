//! `FjallStorage`: weir-core's [`Storage`] on the fjall LSM engine (production).
//!
//! Layout (three keyspaces of one fjall database, so one journal orders every write):
//! - `batches`: key = partition_key (u64 BE) ++ last_offset (u64 BE), value = the record
//!   batch exactly as the core handed it over. Big-endian keys sort like
//!   (partition, offset), so a partition log is one contiguous key range in offset order.
//!   Keying by the *last* offset makes the hot read ("the batch containing offset X") the
//!   first key >= X — one forward scan — and retention ("batches ending below X") a key
//!   range, with no batch read to decide either.
//!   Values are separated from keys (fjall's blob files) because batches are large and
//!   written once: compaction then moves 16-byte keys instead of megabytes of records.
//! - `logs`: key = partition_key, empty value: the partition log exists (it may be empty
//!   after truncation, and must still be reported by `logs()`).
//! - `meta`: the core's opaque metadata entries.
//!
//! Log compaction's `ReplaceBatch` keeps a batch's last offset, so a replacement is one
//! insert at the same key and a removal one key removal: both atomic without a write
//! batch. A removal leaves a gap in the offsets; keyed by last offset, "the first key >= X"
//! is then the first stored batch after the gap, which is what every read wants.
//!
//! Invariants:
//! - Ops are applied in order into one journal; multi-key ops (truncations, drops) are one
//!   atomic fjall write batch. After a crash, recovery sees a prefix of the applied ops, and
//!   every op covered by a completed `sync` is in that prefix.
//! - Offsets are never negative (asserted on append), so `offset as u64` preserves order.
//! - Writes are buffered (`manual_journal_persist`): nothing reaches the OS until
//!   `flush_to_os` or `sync`, which is what makes group commit cheap.
//! - `sync` never holds fjall's journal lock while the disk works. fjall's own
//!   `persist(SyncData)` fdatasyncs under the journal mutex that every insert takes, so the
//!   node loop's next append blocked for as long as the disk took (issue 19: one slow
//!   fdatasync stalled the loop, every request that arrived meanwhile, and the sync after
//!   it; acks=all p99 of 100+ ms on a disk whose fdatasync p99 was under 1 ms). Instead the
//!   journal's buffer goes to the OS under the lock (`persist(Buffer)`, one short write),
//!   and the active journal file is fdatasynced through our own descriptor outside it. That
//!   covers every op applied before the call: the bytes are in the journal that was active
//!   at the flush, or fjall rotated that journal since, and a rotation `sync_all`s the old
//!   journal (under the lock) before it creates the next one. The active journal is the
//!   highest-numbered `<id>.jnl` in the database directory (fjall's recovery picks it the
//!   same way), read after the flush, so it is the flushed one or a later one.
//! - Clones share the database (it is reference-counted), so reads run on connection tasks
//!   while the node loop writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use fjall::{
    Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, OwnedWriteBatch, PersistMode,
};
use weir_core::storage::{
    first_record_in_batch, RangeSummary, Storage, StorageError, StorageOp, TimestampHit,
};
use weir_wire::batch::{parse_header, BatchHeader};
use weir_wire::domain::{ReadPlan, TimestampLookup};

use super::StorageDriver;

const KEYSPACE_BATCHES: &str = "batches";
const KEYSPACE_LOGS: &str = "logs";
const KEYSPACE_META: &str = "meta";

/// Batches at or above this size go to blob files (see the module doc). Record batches are
/// rarely smaller; small ones stay inline where they are cheaper to read.
const BLOB_SEPARATION_BYTES_MIN: u32 = 1024;

/// weir-core's storage on fjall. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct FjallStorage {
    inner: Arc<Inner>,
}

struct Inner {
    directory: std::path::PathBuf,
    database: Database,
    batches: Keyspace,
    logs: Keyspace,
    meta: Keyspace,
    /// Partition keys with a `logs` marker, with the last offset of their last batch (if
    /// any): an append writes the marker only once and is checked against the log's end
    /// without a read. Only the node loop writes; the mutex is uncontended.
    known_logs: Mutex<BTreeMap<u64, Option<i64>>>,
    /// The journal file `sync` fdatasyncs (see the module doc). Only syncs lock it, and the
    /// driver runs one at a time.
    journal: Mutex<Option<ActiveJournal>>,
    /// Set by a failed fdatasync: the kernel may forget a write-back error once reported,
    /// so every later sync fails too (fjall poisons itself the same way).
    sync_failed: std::sync::atomic::AtomicBool,
}

/// An open descriptor of the journal fjall appends to, and its id (`<id>.jnl`).
struct ActiveJournal {
    id: u64,
    file: std::fs::File,
}

impl Inner {
    fn lock_known_logs(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Option<i64>>> {
        self.known_logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FjallStorage")
            .finish_non_exhaustive()
    }
}

impl FjallStorage {
    /// Open (or create) the store in `directory`. Fails if another process holds it.
    pub fn open(directory: &Path) -> Result<FjallStorage, StorageError> {
        std::fs::create_dir_all(directory).map_err(|error| {
            StorageError::Io(format!("cannot create {}: {error}", directory.display()))
        })?;
        let database = Database::builder(directory)
            .manual_journal_persist(true)
            .open()
            .map_err(|error| {
                StorageError::Io(format!("cannot open {}: {error}", directory.display()))
            })?;
        let batches = database
            .keyspace(KEYSPACE_BATCHES, || {
                KeyspaceCreateOptions::default()
                    .manual_journal_persist(true)
                    .with_kv_separation(Some(
                        KvSeparationOptions::default()
                            .separation_threshold(BLOB_SEPARATION_BYTES_MIN)
                            // Clients compress batches; compressing again wastes a core.
                            .compression(fjall::CompressionType::None),
                    ))
            })
            .map_err(io_error)?;
        let logs = database
            .keyspace(KEYSPACE_LOGS, || {
                KeyspaceCreateOptions::default().manual_journal_persist(true)
            })
            .map_err(io_error)?;
        let meta = database
            .keyspace(KEYSPACE_META, || {
                KeyspaceCreateOptions::default().manual_journal_persist(true)
            })
            .map_err(io_error)?;
        let mut partition_keys = Vec::new();
        for guard in logs.iter() {
            let key = guard.key().map_err(io_error)?;
            partition_keys.push(decode_log_key(&key)?);
        }
        let directory = directory.to_owned();
        let inner = Inner {
            directory,
            database,
            batches,
            logs,
            meta,
            known_logs: Mutex::default(),
            journal: Mutex::default(),
            sync_failed: std::sync::atomic::AtomicBool::new(false),
        };
        let storage = FjallStorage {
            inner: Arc::new(inner),
        };
        for partition_key in partition_keys {
            let last = storage.last_offset(partition_key)?;
            storage.inner.lock_known_logs().insert(partition_key, last);
        }
        Ok(storage)
    }

    /// Open (or create) shard `index`'s store in data directory `data_dir`
    /// ([`crate::storage::identity::shard_dir`]): each shard has its own database, journal
    /// and group commit (docs/sharding.md).
    pub fn open_shard(data_dir: &Path, index: u16) -> Result<FjallStorage, StorageError> {
        FjallStorage::open(&crate::storage::identity::shard_dir(data_dir, index))
    }

    /// The directory the store lives in.
    pub fn directory(&self) -> &Path {
        &self.inner.directory
    }

    /// The journal file the last [`Storage::sync`] fdatasynced (none before the first).
    pub fn synced_journal(&self) -> Option<std::path::PathBuf> {
        let journal = self
            .inner
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = journal.as_ref()?.id;
        Some(self.inner.directory.join(format!("{id}.jnl")))
    }

    fn append(
        &self,
        partition_key: u64,
        base_offset: i64,
        last_offset: i64,
        batch: &Bytes,
    ) -> Result<(), StorageError> {
        check_append(partition_key, base_offset, last_offset, batch)?;
        let inner = &self.inner;
        let key = batch_key(partition_key, last_offset);
        let mut known_logs = inner.lock_known_logs();
        match known_logs.get(&partition_key) {
            Some(Some(previous_last)) if *previous_last >= base_offset => {
                return Err(StorageError::Io(format!(
                    "append at {base_offset} to log {partition_key} ending at {previous_last}"
                )));
            }
            Some(_) => inner.batches.insert(key, batch.clone()).map_err(io_error)?,
            None => {
                // First append to this log: the marker and the batch land atomically.
                let mut write = inner.database.batch();
                write.insert(&inner.logs, log_key(partition_key), Bytes::new());
                write.insert(&inner.batches, key, batch.clone());
                write.commit().map_err(io_error)?;
            }
        }
        known_logs.insert(partition_key, Some(last_offset));
        Ok(())
    }

    /// [`StorageOp::ReplaceBatch`]: find the stored batch starting at `base_offset` (the
    /// first key >= it, if its header starts there) and overwrite or remove its key.
    fn replace_batch(
        &self,
        partition_key: u64,
        base_offset: i64,
        batch: Option<&Bytes>,
    ) -> Result<(), StorageError> {
        let inner = &self.inner;
        // Held across the read and the write so the log end cached for appends stays true.
        let mut known_logs = inner.lock_known_logs();
        if !known_logs.contains_key(&partition_key) {
            return Ok(()); // No log (dropped, or never written): nothing to replace.
        }
        let range =
            batch_key_clamped(partition_key, base_offset)..=batch_key(partition_key, i64::MAX);
        let Some(guard) = inner.batches.range(range).next() else {
            return Ok(()); // Nothing at or after `base_offset`: already gone.
        };
        let (key, value) = guard.into_inner().map_err(io_error)?;
        let stored = header_of(partition_key, &value)?;
        if stored.base_offset != base_offset {
            // The first batch ending at or after `base_offset` starts elsewhere: the batch
            // was removed already, or `base_offset` is inside another batch. A no-op.
            return Ok(());
        }
        let (_, last_offset) = decode_batch_key(&key)?;
        if last_offset != stored.last_offset() {
            // Bytes read back from disk: damage is an error, not a panic.
            return Err(StorageError::Corrupt {
                partition_key,
                offset: base_offset,
                reason: format!(
                    "batch keyed by last offset {last_offset}, header says {}",
                    stored.last_offset()
                ),
            });
        }
        match batch {
            Some(batch) => {
                // Same base and last offset, so the same key: one atomic overwrite.
                check_append(partition_key, base_offset, last_offset, batch)?;
                inner.batches.insert(key, batch.clone()).map_err(io_error)?;
            }
            None => {
                inner.batches.remove(key).map_err(io_error)?;
                let new_last = self.last_offset(partition_key)?;
                known_logs.insert(partition_key, new_last);
            }
        }
        Ok(())
    }

    fn truncate_prefix(&self, partition_key: u64, offset: i64) -> Result<(), StorageError> {
        // Keyed by last offset, "every batch ending below `offset`" is exactly a key range.
        let range = batch_key(partition_key, 0)..batch_key_clamped(partition_key, offset);
        let mut keys = Vec::new();
        for guard in self.inner.batches.range(range) {
            keys.push(guard.key().map_err(io_error)?);
        }
        self.remove_batches(keys)
    }

    fn truncate_suffix(&self, partition_key: u64, offset: i64) -> Result<(), StorageError> {
        // Candidates end at or after `offset`; only the first may start before it (straddle
        // it) and stay, every later one starts after the first one's end.
        let range = batch_key_clamped(partition_key, offset)..=batch_key(partition_key, i64::MAX);
        let mut keys = Vec::new();
        for (index, guard) in self.inner.batches.range(range).enumerate() {
            let key = guard.key().map_err(io_error)?;
            if index == 0 {
                let (_, value) = self.get_batch(&key)?;
                if header_of(partition_key, &value)?.base_offset < offset {
                    continue; // Straddles `offset`: it stays.
                }
            }
            keys.push(key);
        }
        self.remove_batches(keys)?;
        // The log now ends with whatever batch is left last.
        let new_last = self.last_offset(partition_key)?;
        if let Some(last) = self.inner.lock_known_logs().get_mut(&partition_key) {
            *last = new_last;
        }
        Ok(())
    }

    /// Last offset of the last stored batch of a log, if it has any (read from its key).
    fn last_offset(&self, partition_key: u64) -> Result<Option<i64>, StorageError> {
        let last = self
            .inner
            .batches
            .prefix(partition_key.to_be_bytes())
            .next_back();
        match last {
            None => Ok(None),
            Some(guard) => {
                let key = guard.key().map_err(io_error)?;
                Ok(Some(decode_batch_key(&key)?.1))
            }
        }
    }

    fn drop_partition(&self, partition_key: u64) -> Result<(), StorageError> {
        let inner = &self.inner;
        let mut known_logs = inner.lock_known_logs();
        let mut write = inner.database.batch();
        for guard in inner.batches.prefix(partition_key.to_be_bytes()) {
            write.remove(&inner.batches, guard.key().map_err(io_error)?);
        }
        write.remove(&inner.logs, log_key(partition_key));
        write.commit().map_err(io_error)?;
        known_logs.remove(&partition_key);
        Ok(())
    }

    fn remove_batches(&self, keys: Vec<fjall::UserKey>) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let mut write: OwnedWriteBatch = inner.database.batch();
        for key in keys {
            write.remove(&inner.batches, key);
        }
        write.commit().map_err(io_error)
    }

    fn get_batch(&self, key: &[u8]) -> Result<(fjall::UserKey, Bytes), StorageError> {
        match self.inner.batches.get(key).map_err(io_error)? {
            Some(value) => Ok((fjall::UserKey::from(key), Bytes::from(value))),
            None => Err(StorageError::Io("batch vanished during a read".to_owned())),
        }
    }

    /// Batches of `partition_key` from the one containing `from_offset` (or the first after
    /// it) until, excluding, the first with base offset >= `end_offset`, in offset order.
    /// Keys carry last offsets, so the containing batch is the first key >= `from_offset`:
    /// one forward scan, no lookup.
    fn scan(
        &self,
        partition_key: u64,
        from_offset: i64,
        end_offset: i64,
    ) -> impl Iterator<Item = Result<(BatchHeader, Bytes), StorageError>> + '_ {
        let range =
            batch_key_clamped(partition_key, from_offset)..=batch_key(partition_key, i64::MAX);
        self.inner
            .batches
            .range(range)
            .map(move |guard| {
                let (_, value) = guard.into_inner().map_err(io_error)?;
                let value = Bytes::from(value);
                let header = header_of(partition_key, &value)?;
                Ok((header, value))
            })
            .take_while(move |item| match item {
                Ok((header, _)) => header.base_offset < end_offset,
                // Let the error through: the caller stops at it.
                Err(_) => true,
            })
    }
}

impl Storage for FjallStorage {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        match op {
            StorageOp::Append {
                partition_key,
                base_offset,
                last_offset,
                batch,
            } => self.append(*partition_key, *base_offset, *last_offset, batch),
            StorageOp::ReplaceBatch {
                partition_key,
                base_offset,
                batch,
            } => self.replace_batch(*partition_key, *base_offset, batch.as_ref()),
            StorageOp::TruncatePrefix {
                partition_key,
                offset,
            } => self.truncate_prefix(*partition_key, *offset),
            StorageOp::TruncateSuffix {
                partition_key,
                offset,
            } => self.truncate_suffix(*partition_key, *offset),
            StorageOp::DropPartition { partition_key } => self.drop_partition(*partition_key),
            StorageOp::PutMeta { key, value } => self
                .inner
                .meta
                .insert(key.as_slice(), value.as_slice())
                .map_err(io_error),
            StorageOp::DeleteMeta { key } => {
                self.inner.meta.remove(key.as_slice()).map_err(io_error)
            }
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        if self.inner.sync_failed.load(Ordering::Acquire) {
            return Err(StorageError::Io("an earlier fdatasync failed".to_owned()));
        }
        // Under fjall's journal lock: only the buffered bytes' write(2) (module doc).
        self.inner
            .database
            .persist(PersistMode::Buffer)
            .map_err(io_error)?;
        // Outside it: fdatasync, not fsync (journals are preallocated, so no size change
        // needs the inode's metadata; timestamps are skipped), the one disk wait on the
        // acks=all path.
        let mut journal = self
            .inner
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let synced = follow_active_journal(&self.inner.directory, &mut journal)
            .and_then(|file| file.sync_data());
        synced.map_err(|error| {
            self.inner.sync_failed.store(true, Ordering::Release);
            StorageError::Io(format!("fdatasync of the journal failed: {error}"))
        })
    }

    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError> {
        let mut batches: Vec<Bytes> = Vec::new();
        let mut total_bytes: usize = 0;
        let max_bytes = usize::try_from(plan.max_bytes).unwrap_or(usize::MAX);
        for item in self.scan(plan.partition_key, plan.start_offset, plan.end_offset) {
            let (_, batch) = item?;
            // The first batch is returned whole even when it alone exceeds max_bytes.
            if !batches.is_empty() && total_bytes.saturating_add(batch.len()) > max_bytes {
                break;
            }
            total_bytes += batch.len();
            batches.push(batch);
        }
        Ok(concatenate(batches, total_bytes))
    }

    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        for item in self.scan(lookup.partition_key, lookup.start_offset, lookup.end_offset) {
            let (header, batch) = item?;
            if let Some(found) = first_record_in_batch(lookup, &header, &batch)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn summarize(
        &self,
        partition_key: u64,
        from_offset: i64,
    ) -> Result<RangeSummary, StorageError> {
        let mut summary = RangeSummary::empty(from_offset);
        for item in self.scan(partition_key, from_offset, i64::MAX) {
            let (header, batch) = item?;
            summary.push(&header, batch.len() as u64);
        }
        Ok(summary)
    }

    fn meta_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
        let mut entries = Vec::new();
        for guard in self.inner.meta.iter() {
            let (key, value) = guard.into_inner().map_err(io_error)?;
            entries.push((key.to_vec(), value.to_vec()));
        }
        Ok(entries)
    }

    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        let known_logs: Vec<u64> = self.inner.lock_known_logs().keys().copied().collect();
        let mut logs = BTreeMap::new();
        for partition_key in known_logs {
            let first = self
                .inner
                .batches
                .prefix(partition_key.to_be_bytes())
                .next();
            let bounds = match first {
                None => None,
                Some(first) => {
                    let (_, value) = first.into_inner().map_err(io_error)?;
                    let first_offset = header_of(partition_key, &value)?.base_offset;
                    let last_offset = self.last_offset(partition_key)?.unwrap_or(first_offset);
                    Some((first_offset, last_offset + 1))
                }
            };
            logs.insert(partition_key, bounds);
        }
        Ok(logs)
    }
}

impl StorageDriver for FjallStorage {
    fn flush_to_os(&self) -> Result<(), StorageError> {
        self.inner
            .database
            .persist(PersistMode::Buffer)
            .map_err(io_error)
    }
}

/// The journal fjall appends to now: the highest-numbered `<id>.jnl` in `directory`,
/// reopened when it changed since the last call (fjall's journals only ever get higher ids,
/// and the active one is never deleted).
fn follow_active_journal<'a>(
    directory: &Path,
    journal: &'a mut Option<ActiveJournal>,
) -> std::io::Result<&'a std::fs::File> {
    // A journal listed as the highest can be rotated and (its memtables flushed) deleted
    // before it is opened; rotation synced it, so a later journal is the one to sync: list
    // again. Three rotations while one open runs would mean something else is wrong.
    let mut attempts = 0;
    loop {
        let id = active_journal_id(directory)?.ok_or_else(|| {
            std::io::Error::other(format!("no journal in {}", directory.display()))
        })?;
        if journal.as_ref().is_some_and(|open| open.id == id) {
            break;
        }
        let path = directory.join(format!("{id}.jnl"));
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(file) => {
                *journal = Some(ActiveJournal { id, file });
                break;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                attempts += 1;
            }
            Err(error) => return Err(error),
        }
    }
    journal
        .as_ref()
        .map(|open| &open.file)
        .ok_or_else(|| std::io::Error::other("journal vanished"))
}

/// The highest `<id>.jnl` in `directory` (other files are ignored).
pub(crate) fn active_journal_id(directory: &Path) -> std::io::Result<Option<u64>> {
    let mut highest = None;
    for entry in std::fs::read_dir(directory)? {
        let name = entry?.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(".jnl"))
            .and_then(|id| id.parse::<u64>().ok());
        highest = highest.max(id);
    }
    Ok(highest)
}

/// The checks MemStorage makes too, so the simulated disk is not stricter than this one:
/// the op's offsets match the batch header and the batch is exactly one whole batch.
fn check_append(
    partition_key: u64,
    base_offset: i64,
    last_offset: i64,
    batch: &Bytes,
) -> Result<(), StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        partition_key,
        offset: base_offset,
        reason,
    };
    if base_offset < 0 {
        return Err(corrupt(format!("negative base offset {base_offset}")));
    }
    let header = header_of(partition_key, batch)?;
    if header.base_offset != base_offset || header.last_offset() != last_offset {
        return Err(corrupt(format!(
            "op offsets {base_offset}..={last_offset}, batch says {}..={}",
            header.base_offset,
            header.last_offset()
        )));
    }
    if header.size_bytes() != batch.len() {
        return Err(corrupt(format!(
            "batch of {} bytes, header says {}",
            batch.len(),
            header.size_bytes()
        )));
    }
    Ok(())
}

fn concatenate(batches: Vec<Bytes>, total_bytes: usize) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        // The common case for a caught-up consumer: no copy at all.
        1 => batches.into_iter().next().unwrap_or_default(),
        _ => {
            let mut out = BytesMut::with_capacity(total_bytes);
            for batch in batches {
                out.extend_from_slice(&batch);
            }
            out.freeze()
        }
    }
}

fn header_of(partition_key: u64, batch: &[u8]) -> Result<BatchHeader, StorageError> {
    parse_header(batch).map_err(|error| StorageError::Corrupt {
        partition_key,
        offset: batch
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(-1, i64::from_be_bytes),
        reason: format!("unreadable batch header: {error}"),
    })
}

fn batch_key(partition_key: u64, offset: i64) -> [u8; 16] {
    debug_assert!(offset >= 0);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&partition_key.to_be_bytes());
    key[8..].copy_from_slice(&(offset as u64).to_be_bytes());
    key
}

/// Like [`batch_key`] for a bound that may be negative (treated as 0).
fn batch_key_clamped(partition_key: u64, offset: i64) -> [u8; 16] {
    batch_key(partition_key, offset.max(0))
}

fn decode_batch_key(key: &[u8]) -> Result<(u64, i64), StorageError> {
    let corrupt = || StorageError::Io(format!("malformed batch key of {} bytes", key.len()));
    let partition: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let offset: [u8; 8] = key
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let offset = i64::try_from(u64::from_be_bytes(offset)).map_err(|_| corrupt())?;
    Ok((u64::from_be_bytes(partition), offset))
}

fn log_key(partition_key: u64) -> [u8; 8] {
    partition_key.to_be_bytes()
}

fn decode_log_key(key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StorageError::Io(format!("malformed log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn io_error(error: fjall::Error) -> StorageError {
    StorageError::Io(error.to_string())
}

#[cfg(test)]
mod tests {
    use weir_core::storage::{Storage as _, StorageOp};

    // Goal: each shard's store is its own database: shard 0 in the data directory, shard
    // 1 in its subdirectory, both open at once, a write to one is not in the other, and
    // both survive a reopen. Method: the same partition key in both, different batches.
    #[test]
    fn shard_stores_are_independent() {
        let directory = tempfile::tempdir().expect("temp dir");
        let data = directory.path();
        let batches = [
            weir_core::testing::batch_at(0, &[10]),
            weir_core::testing::batch_at(0, &[20, 30]),
        ];
        {
            let mut shards = [
                super::FjallStorage::open_shard(data, 0).expect("shard 0"),
                super::FjallStorage::open_shard(data, 1).expect("shard 1"),
            ];
            for (index, shard) in shards.iter_mut().enumerate() {
                let op = StorageOp::Append {
                    partition_key: 7,
                    base_offset: 0,
                    last_offset: index as i64,
                    batch: batches[index].clone(),
                };
                shard.apply(&op).expect("append");
                shard.sync().expect("sync");
            }
            assert_eq!(shards[1].directory(), data.join("shard-1"));
        }
        for (index, batch) in batches.iter().enumerate() {
            let shard = super::FjallStorage::open_shard(data, index as u16).expect("reopen");
            let logs = shard.logs().expect("logs");
            assert_eq!(
                logs.get(&7),
                Some(&Some((0, index as i64 + 1))),
                "shard {index}"
            );
            let plan = weir_wire::domain::ReadPlan {
                partition_key: 7,
                start_offset: 0,
                end_offset: 10,
                max_bytes: u32::MAX,
            };
            assert_eq!(&shard.read(&plan).expect("read"), batch, "shard {index}");
        }
    }

    // Goal: the journal `sync` fdatasyncs is the one fjall appends to: the highest
    // `<id>.jnl`, whatever else the directory holds.
    #[test]
    fn active_journal_is_the_highest_numbered() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path();
        assert_eq!(super::active_journal_id(path).expect("read dir"), None);
        for name in ["3.jnl", "12.jnl", "9.jnl", "lock", "100.jnl.tmp", "x.jnl"] {
            std::fs::write(path.join(name), b"").expect("write");
        }
        std::fs::create_dir(path.join("keyspaces")).expect("mkdir");
        assert_eq!(super::active_journal_id(path).expect("read dir"), Some(12));
    }
}
