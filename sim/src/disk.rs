//! `SimDisk`: the simulator's storage, weir-core's `MemStorage` plus faults drawn from the
//! seed.
//!
//! # Fault model (the "fault atlas")
//! - **Crash** ([`SimDisk::crash`]): ops applied since the last completed sync meet a seeded
//!   fate: all lost, all kept, a prefix kept (a journal written in order and cut short), or
//!   a prefix kept with the next op *torn* ([`CrashFate::Torn`]). A checksummed journal
//!   (fjall's) drops a torn entry at recovery, so by default a torn op is simply lost; with
//!   [`DiskFaults::torn_kept`] the torn batch survives with damaged bytes and the broker's
//!   readers must catch it by CRC.
//! - **Fsync failure** (`fsync_fail_per_mille`): [`Storage::sync`] fails and nothing new
//!   becomes durable; the node poisons itself and the harness crashes and restarts it.
//! - **Corrupt read** (`corrupt_read_per_mille`): [`Storage::read`] returns the stored bytes
//!   with one byte flipped inside a batch's CRC-covered range. The stored copy stays intact
//!   (a bad sector read, not a bad write), so a retry succeeds; the broker must never serve
//!   the damaged copy.
//!
//! Synced data is never damaged: there is no replica to repair it from yet (single node),
//! so damaging it would only test that lost data is reported lost.
//!
//! # Invariants
//! - Clones share one disk; the disk lives outside the simulated broker, so it survives
//!   the broker's crash and restart.
//! - With [`DiskFaults::NONE`] it behaves exactly like `MemStorage` (the storage conformance
//!   suite runs against it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use weir::storage::StorageDriver;
use weir_core::storage::{
    MemStorage, MetaPair, RangeSummary, Storage, StorageError, StorageOp, TimestampHit,
};
use weir_wire::batch::{iter_batches, BATCH_HEADER_BYTES};
use weir_wire::domain::{ReadPlan, TimestampLookup};

use crate::seed::Rng;

/// Which faults the disk injects, as rates per thousand calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFaults {
    /// Chance that a sync fails.
    pub fsync_fail_per_mille: u32,
    /// Chance that a non-empty read returns a damaged copy.
    pub corrupt_read_per_mille: u32,
    /// A crash may keep a torn op with damaged bytes instead of dropping it.
    pub torn_kept: bool,
}

impl DiskFaults {
    /// A perfect disk (crash still loses unsynced writes).
    pub const NONE: DiskFaults = DiskFaults {
        fsync_fail_per_mille: 0,
        corrupt_read_per_mille: 0,
        torn_kept: false,
    };
}

/// What a crash did to the unsynced ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashFate {
    /// Every unsynced op was lost.
    LoseAll,
    /// Every unsynced op reached the disk anyway.
    KeepAll,
    /// The first `n` unsynced ops reached the disk.
    KeepPrefix(usize),
    /// The first `n` reached the disk and op `n` was torn (dropped unless `torn_kept`).
    Torn(usize),
}

/// One log's records with their keys: `(offset, key, value)` in offset order.
pub type KeyedRecords = Vec<(i64, Option<Bytes>, Option<Bytes>)>;

/// Counters of injected faults (part of the trace and the run summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Crashes applied.
    pub crashes: u64,
    /// Unsynced ops lost in crashes.
    pub ops_lost: u64,
    /// Syncs failed on purpose.
    pub fsync_failures: u64,
    /// Reads that returned damaged bytes.
    pub corrupt_reads: u64,
    /// Torn batches kept with damaged bytes.
    pub torn_kept: u64,
}

#[derive(Debug)]
struct DiskState {
    mem: MemStorage,
    rng: Rng,
    faults: DiskFaults,
    stats: DiskStats,
}

/// The simulated disk; cheap to clone, clones share state.
#[derive(Debug, Clone)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

impl SimDisk {
    /// An empty disk drawing its faults from `rng`.
    pub fn new(rng: Rng, faults: DiskFaults) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(DiskState {
                mem: MemStorage::new(),
                rng,
                faults,
                stats: DiskStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic elsewhere (reported by the harness) must not hide the disk's state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Change the injected faults (the final phase of a run turns them off).
    pub fn set_faults(&self, faults: DiskFaults) {
        self.lock().faults = faults;
    }

    /// Fault counters so far.
    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }

    /// Ops applied since the last completed sync (what a crash now could lose).
    pub fn unsynced(&self) -> usize {
        self.lock().mem.unsynced_ops().len()
    }

    /// Per storage partition key, the lowest base offset among the unsynced appends: where
    /// a crash that loses every unsynced op cuts that log (no unsynced truncation assumed).
    pub fn unsynced_append_starts(&self) -> BTreeMap<u64, i64> {
        let mut starts: BTreeMap<u64, i64> = BTreeMap::new();
        for op in self.lock().mem.unsynced_ops() {
            if let StorageOp::Append {
                partition_key,
                base_offset,
                ..
            } = op
            {
                let start = starts.entry(partition_key).or_insert(base_offset);
                *start = (*start).min(base_offset);
            }
        }
        starts
    }

    /// Per storage partition key, the end offset of the log the disk holds now.
    pub fn log_ends(&self) -> BTreeMap<u64, i64> {
        let Ok(logs) = self.lock().mem.logs() else {
            return BTreeMap::new();
        };
        logs.into_iter()
            .filter_map(|(key, bounds)| bounds.map(|(_, end)| (key, end)))
            .collect()
    }

    /// The value of the record at `offset` of log `partition_key`, if the disk holds it.
    /// For the harness; never faulted.
    pub fn value_at(&self, partition_key: u64, offset: i64) -> Option<Bytes> {
        let plan = ReadPlan {
            partition_key,
            start_offset: offset,
            end_offset: offset + 1,
            max_bytes: u32::MAX,
        };
        let bytes = self.lock().mem.read(&plan).ok()?;
        let records = weir_wire::records::decode_records(bytes).ok()?;
        records
            .into_iter()
            .find(|r| r.offset == offset)
            .and_then(|r| r.value)
    }

    /// Every record the disk holds now (synced or not), per storage partition key: `(offset,
    /// value)` in offset order. For the harness's replica comparison; never faulted.
    pub fn records(&self) -> BTreeMap<u64, Vec<(i64, Option<Bytes>)>> {
        (self.decoded_records().into_iter())
            .map(|(key, records)| {
                (
                    key,
                    records.into_iter().map(|r| (r.offset, r.value)).collect(),
                )
            })
            .collect()
    }

    /// Like [`SimDisk::records`], with each record's key: `(offset, key, value)`. For the
    /// compaction workloads' replica comparison (latest value per key); never faulted.
    pub fn keyed_records(&self) -> BTreeMap<u64, KeyedRecords> {
        (self.decoded_records().into_iter())
            .map(|(key, records)| {
                let list = (records.into_iter())
                    .map(|r| (r.offset, r.key, r.value))
                    .collect();
                (key, list)
            })
            .collect()
    }

    /// Every record of every log, decoded, per storage partition key (logs that cannot be
    /// read or decoded are left out).
    fn decoded_records(&self) -> BTreeMap<u64, Vec<weir_wire::records::Record>> {
        let state = self.lock();
        let Ok(logs) = state.mem.logs() else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (partition_key, bounds) in logs {
            let Some((start_offset, end_offset)) = bounds else {
                continue;
            };
            let plan = ReadPlan {
                partition_key,
                start_offset,
                end_offset,
                max_bytes: u32::MAX,
            };
            let Ok(bytes) = state.mem.read(&plan) else {
                continue;
            };
            if let Ok(records) = weir_wire::records::decode_records(bytes) {
                out.insert(partition_key, records);
            }
        }
        out
    }

    /// Crash: apply a seeded fate to the ops not covered by a completed sync.
    pub fn crash(&self) -> CrashFate {
        self.crash_with(None)
    }

    /// Crash losing every op not covered by a completed sync (the journal's unsynced tail
    /// never reached the platter), whatever the seed would have drawn. Draws nothing from
    /// the disk's rng.
    pub fn crash_lose_all(&self) -> CrashFate {
        self.crash_with(Some(CrashFate::LoseAll))
    }

    fn crash_with(&self, forced: Option<CrashFate>) -> CrashFate {
        let mut state = self.lock();
        let pending = state.mem.unsynced_ops();
        let count = pending.len();
        let fate = match forced {
            Some(fate) => fate,
            None => match state.rng.below(4) {
                _ if count == 0 => CrashFate::LoseAll,
                0 => CrashFate::LoseAll,
                1 => CrashFate::KeepAll,
                2 => CrashFate::KeepPrefix(state.rng.below(count as u64 + 1) as usize),
                _ => CrashFate::Torn(state.rng.below(count as u64) as usize),
            },
        };
        let kept = match fate {
            CrashFate::LoseAll => 0,
            CrashFate::KeepAll => count,
            CrashFate::KeepPrefix(n) | CrashFate::Torn(n) => n,
        };
        let lost = state.mem.crash_keeping(kept);
        state.stats.crashes += 1;
        state.stats.ops_lost += lost as u64;
        if let (CrashFate::Torn(n), true) = (fate, state.faults.torn_kept) {
            if let Some(StorageOp::Append {
                partition_key,
                base_offset,
                last_offset,
                batch,
            }) = pending.get(n)
            {
                let position = state.rng.below(batch.len() as u64) as usize;
                let torn = StorageOp::Append {
                    partition_key: *partition_key,
                    base_offset: *base_offset,
                    last_offset: *last_offset,
                    batch: damage(batch, position),
                };
                // The torn op lands after the kept prefix, as the journal wrote it.
                if state.mem.apply(&torn).is_ok() && state.mem.sync().is_ok() {
                    state.stats.torn_kept += 1;
                    state.stats.ops_lost -= 1;
                }
            }
        }
        fate
    }
}

/// One broker host's disks: one [`SimDisk`] per shard (docs/sharding.md: shard `k`'s node
/// loop writes its own fjall database), so a host of `S` shards runs `S` sans-IO nodes over
/// `S` disks, as `weir serve --num-shards S` does. Cheap to clone; clones share the disks.
///
/// The harness's questions span the host: partition keys are disjoint across shards (each
/// shard allocates keys in its own range, `weir_core::shard::partition_key_base`), so the
/// per-key answers of the shards are one map. A crash hits every shard, each with its own
/// seeded fate: the shards' journals are separate files, synced separately.
#[derive(Debug, Clone)]
pub struct HostDisk {
    shards: Vec<SimDisk>,
}

/// What a host crash did to each shard's unsynced ops (one entry per shard). Printed as
/// the single fate when there is one shard.
#[derive(Clone, PartialEq, Eq)]
pub struct HostCrash(pub Vec<CrashFate>);

impl std::fmt::Debug for HostCrash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one:?}"),
            many => write!(f, "{many:?}"),
        }
    }
}

impl HostDisk {
    /// A host of `shards` (at least one) empty disks. Shard 0 draws its faults from the
    /// stream `salt` of `seed` (what a one-disk host always drew), shard `k` from
    /// `"{salt}-shard-{k}"`.
    pub fn new(seed: u64, salt: &str, faults: DiskFaults, shards: u16) -> HostDisk {
        let shards = (0..shards.max(1))
            .map(|k| {
                let rng = match k {
                    0 => Rng::fork(seed, salt),
                    k => Rng::fork(seed, &format!("{salt}-shard-{k}")),
                };
                SimDisk::new(rng, faults)
            })
            .collect();
        HostDisk { shards }
    }

    /// Each shard's disk, in shard order (what `weir::server::start_shards` takes).
    pub fn shards(&self) -> Vec<SimDisk> {
        self.shards.clone()
    }

    /// How many shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Change every shard's injected faults.
    pub fn set_faults(&self, faults: DiskFaults) {
        for disk in &self.shards {
            disk.set_faults(faults);
        }
    }

    /// The host's fault counters: crashes counted once per host crash, the rest summed.
    pub fn stats(&self) -> DiskStats {
        let mut total = DiskStats::default();
        for stats in self.shards.iter().map(SimDisk::stats) {
            total.crashes = total.crashes.max(stats.crashes);
            total.ops_lost += stats.ops_lost;
            total.fsync_failures += stats.fsync_failures;
            total.corrupt_reads += stats.corrupt_reads;
            total.torn_kept += stats.torn_kept;
        }
        total
    }

    /// Ops applied since each shard's last completed sync, summed.
    pub fn unsynced(&self) -> usize {
        self.shards.iter().map(SimDisk::unsynced).sum()
    }

    /// [`SimDisk::unsynced_append_starts`] of every shard.
    pub fn unsynced_append_starts(&self) -> BTreeMap<u64, i64> {
        (self.shards.iter())
            .flat_map(SimDisk::unsynced_append_starts)
            .collect()
    }

    /// [`SimDisk::log_ends`] of every shard.
    pub fn log_ends(&self) -> BTreeMap<u64, i64> {
        self.shards.iter().flat_map(SimDisk::log_ends).collect()
    }

    /// [`SimDisk::value_at`] on the shard whose range holds `partition_key`.
    pub fn value_at(&self, partition_key: u64, offset: i64) -> Option<Bytes> {
        let shard = weir_core::shard::shard_of_key(partition_key);
        self.shards
            .get(usize::from(shard))?
            .value_at(partition_key, offset)
    }

    /// [`SimDisk::records`] of every shard.
    pub fn records(&self) -> BTreeMap<u64, Vec<(i64, Option<Bytes>)>> {
        self.shards.iter().flat_map(SimDisk::records).collect()
    }

    /// [`SimDisk::keyed_records`] of every shard.
    pub fn keyed_records(&self) -> BTreeMap<u64, KeyedRecords> {
        self.shards
            .iter()
            .flat_map(SimDisk::keyed_records)
            .collect()
    }

    /// Crash the host: every shard meets its own seeded fate.
    pub fn crash(&self) -> HostCrash {
        HostCrash(self.shards.iter().map(SimDisk::crash).collect())
    }

    /// Crash the host losing every unsynced op of every shard.
    pub fn crash_lose_all(&self) -> HostCrash {
        HostCrash(self.shards.iter().map(SimDisk::crash_lose_all).collect())
    }
}

/// A copy of `bytes` with one CRC-covered byte flipped (bytes of a batch's header before
/// the attributes are not covered; damaging them would be caught by parsing instead).
fn damage(bytes: &Bytes, position: usize) -> Bytes {
    let mut copy = BytesMut::from(&bytes[..]);
    // Byte 21 onwards is covered by the CRC (attributes .. end of records).
    let covered_start = 21.min(copy.len().saturating_sub(1));
    let span = copy.len().saturating_sub(covered_start).max(1);
    let index = covered_start + position % span;
    if let Some(byte) = copy.get_mut(index) {
        *byte ^= 0x5A;
    }
    copy.freeze()
}

impl Storage for SimDisk {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        self.lock().mem.apply(op)
    }

    fn sync(&self) -> Result<(), StorageError> {
        let mut state = self.lock();
        let fail = state.faults.fsync_fail_per_mille;
        if fail > 0 && state.rng.chance(fail) {
            state.stats.fsync_failures += 1;
            return Err(StorageError::Io(
                "injected fsync failure (simulated)".into(),
            ));
        }
        state.mem.sync()
    }

    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError> {
        let mut state = self.lock();
        let bytes = state.mem.read(plan)?;
        let corrupt = state.faults.corrupt_read_per_mille;
        if bytes.len() > BATCH_HEADER_BYTES && corrupt > 0 && state.rng.chance(corrupt) {
            // Damage one batch of the read, inside its CRC-covered range.
            let batches: Vec<std::ops::Range<usize>> = iter_batches(&bytes)
                .filter_map(Result::ok)
                .map(|(_, range)| range)
                .collect();
            let pick = state.rng.below(batches.len() as u64) as usize;
            if let Some(range) = batches.get(pick) {
                let offset = state.rng.below(range.len() as u64) as usize;
                let mut copy = BytesMut::from(&bytes[..]);
                let damaged = damage(&bytes.slice(range.clone()), offset);
                copy[range.clone()].copy_from_slice(&damaged);
                state.stats.corrupt_reads += 1;
                return Ok(copy.freeze());
            }
        }
        Ok(bytes)
    }

    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        self.lock().mem.lookup_timestamp(lookup)
    }

    fn summarize(
        &self,
        partition_key: u64,
        from_offset: i64,
    ) -> Result<RangeSummary, StorageError> {
        self.lock().mem.summarize(partition_key, from_offset)
    }

    fn meta_entries(&self) -> Result<Vec<MetaPair>, StorageError> {
        self.lock().mem.meta_entries()
    }

    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        self.lock().mem.logs()
    }
}

impl StorageDriver for SimDisk {
    fn flush_to_os(&self) -> Result<(), StorageError> {
        // The simulated crash is a power loss: handing bytes to the OS guarantees nothing.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::storage::conformance::{run_all, StorageFactory};
    use weir_core::testing::batch_at;

    struct SimDiskFactory(u64);

    impl StorageFactory for SimDiskFactory {
        type Storage = SimDisk;
        fn create(&mut self) -> SimDisk {
            self.0 += 1;
            SimDisk::new(Rng::new(self.0), DiskFaults::NONE)
        }
        fn reopen(&mut self, storage: SimDisk) -> SimDisk {
            storage.crash();
            storage
        }
    }

    // Goal: with faults off SimDisk keeps the contract fjall is held to, so the simulation
    // is never kinder than production. Method: weir-core's conformance suite.
    #[test]
    fn conformance_without_faults() {
        run_all(&mut SimDiskFactory(0));
    }

    fn append(base_offset: i64) -> StorageOp {
        StorageOp::Append {
            partition_key: 1,
            base_offset,
            last_offset: base_offset,
            batch: batch_at(base_offset, &[base_offset]),
        }
    }

    /// A disk holding ops 0..2 synced and 2..5 applied but unsynced.
    fn two_synced_three_not(seed: u64) -> SimDisk {
        let mut disk = SimDisk::new(Rng::new(seed), DiskFaults::NONE);
        for offset in 0..2 {
            disk.apply(&append(offset)).expect("apply");
        }
        disk.sync().expect("sync");
        for offset in 2..5 {
            disk.apply(&append(offset)).expect("apply");
        }
        disk
    }

    // Goal: a crash never loses synced data and keeps at most the unsynced ops, in order.
    // Method: many seeds; sync two ops, apply three more, crash, check the log's bounds.
    #[test]
    fn crash_keeps_synced_and_a_prefix_of_the_rest() {
        for seed in 0..64 {
            let disk = two_synced_three_not(seed);
            let fate = disk.crash();
            let (first, end) = disk.logs().expect("logs")[&1].expect("non-empty");
            assert_eq!(first, 0);
            let expected = match fate {
                CrashFate::LoseAll => 2,
                CrashFate::KeepAll => 5,
                CrashFate::KeepPrefix(n) | CrashFate::Torn(n) => 2 + n as i64,
            };
            assert_eq!(end, expected, "seed {seed}: {fate:?}");
        }
    }

    // Goal: a forced lose-all crash keeps exactly the synced prefix, whatever the seed.
    // Method: many seeds; sync two ops, apply three more, crash_lose_all, check the bounds.
    #[test]
    fn crash_lose_all_keeps_only_synced() {
        for seed in 0..16 {
            let disk = two_synced_three_not(seed);
            assert_eq!(disk.crash_lose_all(), CrashFate::LoseAll);
            assert_eq!(disk.logs().expect("logs")[&1], Some((0, 2)), "seed {seed}");
            assert_eq!(disk.unsynced(), 0);
            assert_eq!(disk.stats().ops_lost, 3);
        }
    }

    // Goal: corrupt reads are caught by the CRC check every reader runs; the stored copy
    // stays intact. Method: corrupt every read, verify with weir-core's resolver check.
    #[test]
    fn corrupt_reads_fail_the_crc_and_leave_storage_intact() {
        let faults = DiskFaults {
            corrupt_read_per_mille: 1000,
            ..DiskFaults::NONE
        };
        let mut disk = SimDisk::new(Rng::new(3), faults);
        disk.apply(&append(0)).expect("apply");
        let plan = ReadPlan {
            partition_key: 1,
            start_offset: 0,
            end_offset: 1,
            max_bytes: 1 << 20,
        };
        for _ in 0..32 {
            assert!(weir_core::resolve::read_checked(&disk, &plan).is_err());
        }
        disk.set_faults(DiskFaults::NONE);
        assert!(weir_core::resolve::read_checked(&disk, &plan).is_ok());
        assert_eq!(disk.stats().corrupt_reads, 32);
    }
}
