//! One reader over every shard's storage (docs/sharding.md): the connections, the gateway
//! and the HTTP services resolve a response's reads here, whichever shard made them.
//!
//! Each shard allocates partition keys in its own range (`weir_core::shard::partition_key_base`),
//! so a key names the store that holds its log ([`weir_core::shard::shard_of_key`]).
//!
//! Invariants:
//! - A keyed read or write goes to the store of the key's shard; a key outside every
//!   shard's range is refused with an error (never served from another shard's store).
//! - Metadata entries are shard 0's (the control shard's): the node loops never write
//!   through this reader, and nothing but a test calls `apply` on it.
//! - `sync` and `flush_to_os` cover every shard's store.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use weir_core::shard::shard_of_key;
use weir_core::storage::{MetaPair, RangeSummary, Storage, StorageError, StorageOp, TimestampHit};
use weir_wire::domain::{ReadPlan, TimestampLookup};

use crate::storage::StorageDriver;

/// Every shard's store, shard `k` at index `k`; clones share them.
#[derive(Debug, Clone)]
pub struct ShardedStorage<S> {
    shards: Arc<[S]>,
}

impl<S: StorageDriver> ShardedStorage<S> {
    /// The reader over `shards` (shard 0 first; at least one).
    pub fn new(shards: Vec<S>) -> Self {
        assert!(!shards.is_empty(), "a broker has at least one shard");
        ShardedStorage {
            shards: shards.into(),
        }
    }

    /// Shard `index`'s store.
    pub fn shard(&self, index: u16) -> Option<&S> {
        self.shards.get(usize::from(index))
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    fn for_key(&self, key: u64) -> Result<&S, StorageError> {
        let shard = shard_of_key(key);
        self.shards.get(usize::from(shard)).ok_or_else(|| {
            StorageError::Io(format!(
                "partition key {key} belongs to shard {shard}, which this broker does not run"
            ))
        })
    }
}

fn key_of(op: &StorageOp) -> Option<u64> {
    match op {
        StorageOp::Append { partition_key, .. }
        | StorageOp::ReplaceBatch { partition_key, .. }
        | StorageOp::TruncatePrefix { partition_key, .. }
        | StorageOp::TruncateSuffix { partition_key, .. }
        | StorageOp::DropPartition { partition_key, .. } => Some(*partition_key),
        StorageOp::PutMeta { .. } | StorageOp::DeleteMeta { .. } => None,
    }
}

impl<S: StorageDriver> Storage for ShardedStorage<S> {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        match key_of(op) {
            // Clones share a store: a write through a clone is a write to it.
            Some(key) => self.for_key(key)?.clone().apply(op),
            None => self.shards[0].clone().apply(op),
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.shards.iter().try_for_each(Storage::sync)
    }

    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError> {
        self.for_key(plan.partition_key)?.read(plan)
    }

    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        self.for_key(lookup.partition_key)?.lookup_timestamp(lookup)
    }

    fn summarize(
        &self,
        partition_key: u64,
        from_offset: i64,
    ) -> Result<RangeSummary, StorageError> {
        self.for_key(partition_key)?
            .summarize(partition_key, from_offset)
    }

    fn meta_entries(&self) -> Result<Vec<MetaPair>, StorageError> {
        self.shards[0].meta_entries()
    }

    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        let mut logs = BTreeMap::new();
        for shard in self.shards.iter() {
            logs.extend(shard.logs()?);
        }
        Ok(logs)
    }
}

impl<S: StorageDriver> StorageDriver for ShardedStorage<S> {
    fn flush_to_os(&self) -> Result<(), StorageError> {
        self.shards.iter().try_for_each(StorageDriver::flush_to_os)
    }
}

#[cfg(all(test, feature = "fjall"))]
mod tests {
    // Goal: the reader over every shard's store finds each key's log in its shard's store
    // and nowhere else, and refuses a key of a shard the broker does not run.
    // Method: two real fjall stores; the same offsets appended under a key of each shard's
    // range, with different bytes; reads through the reader return each shard's own.
    use super::*;
    use crate::storage::fjall::FjallStorage;
    use weir_core::shard::partition_key_base;
    use weir_core::testing::batch_at;

    #[test]
    fn a_key_reads_from_its_own_shard() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shards: Vec<FjallStorage> = (0..2)
            .map(|index| FjallStorage::open_shard(dir.path(), index).expect("opens"))
            .collect();
        let keys = [partition_key_base(0) + 1, partition_key_base(1) + 1];
        let batches = [batch_at(0, &[1_000]), batch_at(0, &[2_000, 2_001])];
        let mut reader = ShardedStorage::new(shards.clone());
        for ((key, batch), last_offset) in keys.iter().zip(&batches).zip([0, 1]) {
            let op = StorageOp::Append {
                partition_key: *key,
                base_offset: 0,
                last_offset,
                batch: batch.clone(),
            };
            reader.apply(&op).expect("append");
        }
        for (index, (key, batch)) in keys.iter().zip(&batches).enumerate() {
            let plan = ReadPlan {
                partition_key: *key,
                start_offset: 0,
                end_offset: 2,
                max_bytes: 1 << 20,
            };
            assert_eq!(&reader.read(&plan).expect("reads"), batch, "shard {index}");
            // The write reached the key's own shard's store, and only that one.
            assert_eq!(&shards[index].read(&plan).expect("reads"), batch);
            let other = &shards[1 - index];
            assert!(
                other.read(&plan).expect("reads").is_empty(),
                "shard {index}"
            );
        }
        let foreign = ReadPlan {
            partition_key: partition_key_base(2) + 1,
            start_offset: 0,
            end_offset: 1,
            max_bytes: 1 << 20,
        };
        assert!(reader.read(&foreign).is_err(), "a key of a shard not run");
        assert_eq!(reader.logs().expect("logs").len(), 2);
    }
}
