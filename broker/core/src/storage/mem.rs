//! [`MemStorage`]: the in-memory [`Storage`], for tests and (extended with faults) the
//! simulator.
//!
//! It keeps two states: `current`, what reads see (every applied op), and `durable`, what
//! survives [`MemStorage::crash`] (every op covered by a completed [`Storage::sync`]). The
//! ops applied since the last sync are kept in order, so a simulator can also model a
//! journal that reached the disk only partly ([`MemStorage::crash_keeping`]).
//!
//! Invariants: `durable` + the unsynced ops, replayed in order, equals `current`; every
//! stored batch's header was parsed and checked against its op once, at apply, and a
//! log's batches never overlap (gaps between them are allowed, see [`super`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use weir_wire::batch::{parse_header, BatchHeader};
use weir_wire::domain::{ReadPlan, TimestampLookup};

use super::{
    first_record_in_batch, MetaPair, RangeSummary, Storage, StorageError, StorageOp, TimestampHit,
};

/// Bound on ops applied without a sync; past it `apply` fails like a full journal would.
pub const MEM_UNSYNCED_OPS_MAX: usize = 1 << 20;

/// An in-memory storage that loses unsynced writes on [`MemStorage::crash`].
#[derive(Debug, Default)]
pub struct MemStorage {
    current: MemState,
    /// Behind a mutex because `Storage::sync` takes `&self` (fjall's persist does too).
    durable: Mutex<Durable>,
}

#[derive(Debug, Clone, Default)]
struct Durable {
    state: MemState,
    unsynced: Vec<StorageOp>,
}

/// Partition logs and metadata, as one consistent state.
#[derive(Debug, Clone, Default, PartialEq)]
struct MemState {
    logs: BTreeMap<u64, BTreeMap<i64, StoredBatch>>,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A stored batch with its header, parsed once at append (or replacement).
#[derive(Debug, Clone, PartialEq)]
struct StoredBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl StoredBatch {
    fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulate a crash: every op not covered by a completed sync is lost. Returns how many
    /// ops were dropped.
    pub fn crash(&mut self) -> usize {
        self.crash_keeping(0)
    }

    /// Simulate a crash where the first `keep` unsynced ops reached the disk anyway (a
    /// journal written in order, cut short). Returns how many ops were dropped.
    pub fn crash_keeping(&mut self, keep: usize) -> usize {
        let durable = self
            .durable
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let ops = std::mem::take(&mut durable.unsynced);
        let kept = keep.min(ops.len());
        for op in ops.iter().take(kept) {
            // These ops already applied cleanly to `current`, so they apply here too.
            durable
                .state
                .apply(op)
                .expect("replaying an op that applied before");
        }
        self.current = durable.state.clone();
        ops.len() - kept
    }

    /// The ops applied since the last completed sync, in order.
    pub fn unsynced_ops(&self) -> Vec<StorageOp> {
        self.lock_durable().unsynced.clone()
    }

    fn lock_durable(&self) -> std::sync::MutexGuard<'_, Durable> {
        self.durable.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clone for MemStorage {
    fn clone(&self) -> Self {
        MemStorage {
            current: self.current.clone(),
            durable: Mutex::new(self.lock_durable().clone()),
        }
    }
}

impl Storage for MemStorage {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        let durable = self
            .durable
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // A node that never syncs is a bug; fail loudly instead of growing without bound.
        if durable.unsynced.len() >= MEM_UNSYNCED_OPS_MAX {
            return Err(StorageError::Io(format!(
                "{MEM_UNSYNCED_OPS_MAX} ops without a sync"
            )));
        }
        // Apply to the visible state first: an op that fails is not recorded as pending.
        self.current.apply(op)?;
        durable.unsynced.push(op.clone());
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        let mut durable = self.lock_durable();
        // Replaying the pending ops onto the durable state is this storage's "fsync".
        let ops = std::mem::take(&mut durable.unsynced);
        for op in &ops {
            durable.state.apply(op)?;
        }
        Ok(())
    }

    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError> {
        let Some(log) = self.current.logs.get(&plan.partition_key) else {
            return Ok(Bytes::new());
        };
        let max_bytes = usize::try_from(plan.max_bytes).unwrap_or(usize::MAX);
        let mut out = BytesMut::new();
        // Whole batches only: a consumer never receives part of a batch.
        for (base_offset, batch) in batches_from(log, plan.start_offset) {
            if *base_offset >= plan.end_offset {
                break;
            }
            // The first batch is returned whole whatever its size (Kafka's rule).
            if !out.is_empty() && out.len() + batch.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&batch.bytes);
        }
        Ok(out.freeze())
    }

    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        let Some(log) = self.current.logs.get(&lookup.partition_key) else {
            return Ok(None);
        };
        for (base_offset, batch) in batches_from(log, lookup.start_offset) {
            if *base_offset >= lookup.end_offset {
                break;
            }
            if let Some(found) = first_record_in_batch(lookup, &batch.header, &batch.bytes)? {
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
        let Some(log) = self.current.logs.get(&partition_key) else {
            return Ok(summary);
        };
        for (_, batch) in batches_from(log, from_offset) {
            summary.push(&batch.header, batch.bytes.len() as u64);
        }
        Ok(summary)
    }

    fn meta_entries(&self) -> Result<Vec<MetaPair>, StorageError> {
        Ok(self
            .current
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        let bounds = |log: &BTreeMap<i64, StoredBatch>| {
            let first = log.first_key_value()?;
            let last = log.last_key_value()?;
            Some((*first.0, last.1.last_offset() + 1))
        };
        Ok(self
            .current
            .logs
            .iter()
            .map(|(key, log)| (*key, bounds(log)))
            .collect())
    }
}

impl MemState {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        match op {
            StorageOp::Append {
                partition_key,
                base_offset,
                last_offset,
                batch,
            } => {
                let stored = stored_batch(*partition_key, *base_offset, *last_offset, batch)?;
                let log = self.logs.entry(*partition_key).or_default();
                if let Some((_, previous)) = log.last_key_value() {
                    // A base offset above the log end is a gap, and allowed.
                    if previous.last_offset() >= *base_offset {
                        return Err(StorageError::Io(format!(
                            "append at {base_offset} to log {partition_key} ending at {}",
                            previous.last_offset()
                        )));
                    }
                }
                log.insert(*base_offset, stored);
            }
            StorageOp::ReplaceBatch {
                partition_key,
                base_offset,
                batch,
            } => {
                // No log, or no batch starting there: a no-op (see the op's doc).
                let Some(log) = self.logs.get_mut(partition_key) else {
                    return Ok(());
                };
                let Some(previous) = log.get(base_offset) else {
                    return Ok(());
                };
                match batch {
                    Some(batch) => {
                        let last_offset = previous.last_offset();
                        let stored =
                            stored_batch(*partition_key, *base_offset, last_offset, batch)?;
                        log.insert(*base_offset, stored);
                    }
                    None => {
                        log.remove(base_offset);
                    }
                }
            }
            StorageOp::TruncatePrefix {
                partition_key,
                offset,
            } => {
                if let Some(log) = self.logs.get_mut(partition_key) {
                    log.retain(|_, batch| batch.last_offset() >= *offset);
                }
            }
            StorageOp::TruncateSuffix {
                partition_key,
                offset,
            } => {
                if let Some(log) = self.logs.get_mut(partition_key) {
                    log.split_off(offset);
                }
            }
            StorageOp::DropPartition { partition_key } => {
                self.logs.remove(partition_key);
            }
            StorageOp::PutMeta { key, value } => {
                self.meta.insert(key.clone(), value.clone());
            }
            StorageOp::DeleteMeta { key } => {
                self.meta.remove(key);
            }
        }
        Ok(())
    }
}

/// Parse and check an appended batch once, so reads never meet a malformed one.
fn stored_batch(
    partition_key: u64,
    base_offset: i64,
    last_offset: i64,
    batch: &Bytes,
) -> Result<StoredBatch, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        partition_key,
        offset: base_offset,
        reason,
    };
    // The CRC is not checked here (readers check it): a simulator may corrupt stored bytes
    // and the node's readers must catch it, not the write path.
    let header = parse_header(batch).map_err(|error| corrupt(error.to_string()))?;
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
    Ok(StoredBatch {
        header,
        bytes: batch.clone(),
    })
}

/// Batches from the one containing `offset` (or the first after it, when `offset` is in a
/// gap) to the end.
fn batches_from(
    log: &BTreeMap<i64, StoredBatch>,
    offset: i64,
) -> impl Iterator<Item = (&i64, &StoredBatch)> {
    let containing = log
        .range(..=offset)
        .next_back()
        .filter(|(_, batch)| batch.last_offset() >= offset);
    let start = containing.map_or(offset, |(base, _)| *base);
    log.range(start..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{run_all, StorageFactory};
    use crate::testing::batch_at;

    /// Reopening a MemStorage after a clean close keeps what was synced.
    struct MemFactory;

    impl StorageFactory for MemFactory {
        type Storage = MemStorage;
        fn create(&mut self) -> MemStorage {
            MemStorage::new()
        }
        fn reopen(&mut self, mut storage: MemStorage) -> MemStorage {
            storage.crash();
            storage
        }
    }

    // Goal: MemStorage meets the contract fjall is held to. Method: the shared suite.
    #[test]
    fn conformance() {
        run_all(&mut MemFactory);
    }

    fn append(key: u64, base_offset: i64) -> StorageOp {
        let batch = batch_at(base_offset, &[base_offset]);
        StorageOp::Append {
            partition_key: key,
            base_offset,
            last_offset: base_offset,
            batch,
        }
    }

    // Goal: crash() keeps exactly what a completed sync covered; crash_keeping keeps a
    // prefix of the rest. Method: sync some ops, apply more, crash in both ways.
    #[test]
    fn crash_drops_unsynced_ops() {
        let mut storage = MemStorage::new();
        storage.apply(&append(1, 0)).expect("apply");
        storage.sync().expect("sync");
        storage.apply(&append(1, 1)).expect("apply");
        storage.apply(&append(1, 2)).expect("apply");
        assert_eq!(storage.unsynced_ops().len(), 2);
        let mut partial = storage.clone();
        assert_eq!(storage.crash(), 2);
        assert_eq!(storage.logs().expect("logs").get(&1), Some(&Some((0, 1))));
        assert_eq!(partial.crash_keeping(1), 1);
        assert_eq!(partial.logs().expect("logs").get(&1), Some(&Some((0, 2))));
        // After a crash the log continues where the durable state ends.
        storage.apply(&append(1, 1)).expect("re-append after crash");
    }

    // Goal: malformed appends are refused, never stored. Method: wrong offsets, garbage.
    #[test]
    fn refuses_inconsistent_appends() {
        let mut storage = MemStorage::new();
        let batch = batch_at(5, &[1]);
        let lying = StorageOp::Append {
            partition_key: 1,
            base_offset: 6,
            last_offset: 6,
            batch,
        };
        assert!(matches!(
            storage.apply(&lying),
            Err(StorageError::Corrupt { .. })
        ));
        let garbage = StorageOp::Append {
            partition_key: 1,
            base_offset: 0,
            last_offset: 0,
            batch: Bytes::from_static(b"nonsense"),
        };
        assert!(storage.apply(&garbage).is_err());
        storage.apply(&append(1, 3)).expect("apply");
        assert!(
            storage.apply(&append(1, 2)).is_err(),
            "offsets must increase"
        );
        assert_eq!(storage.unsynced_ops().len(), 1);
    }
}
