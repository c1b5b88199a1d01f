//! Storage drivers: the server-side face of weir-core's [`Storage`] contract.
//!
//! The core's trait covers buffered writes, fsync, and reads. A driver additionally needs
//! a cheap "flush to the OS" (for `weir.durability = "os"`, where acks wait only until a
//! crashed process could not lose the write) and must be shareable: the node loop applies
//! writes while connection tasks read concurrently, and syncs run on `Runtime::offload`.
//!
//! Invariant: clones of a [`StorageDriver`] share one underlying store; a write applied
//! through one clone is visible to reads through every other clone.

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "fjall")]
pub mod identity;

use std::path::{Path, PathBuf};

use weir_core::storage::{Storage, StorageError};

/// Where shard `index`'s storage lives in data directory `dir` (docs/sharding.md): shard 0
/// in the directory itself, as before shards, shard `k` in its subdirectory `shard-k`.
pub fn shard_dir(dir: &Path, index: u16) -> PathBuf {
    if index == 0 {
        dir.to_path_buf()
    } else {
        dir.join(format!("shard-{index}"))
    }
}
use weir_core::SyncMode;

/// A [`Storage`] the async drivers can share across tasks and threads.
pub trait StorageDriver: Storage + Clone + Send + Sync + 'static {
    /// Hand every applied write to the OS (survives a process crash, not a power loss).
    /// Blocking.
    fn flush_to_os(&self) -> Result<(), StorageError>;

    /// Make applied writes as durable as `mode` asks. Blocking.
    fn persist(&self, mode: SyncMode) -> Result<(), StorageError> {
        match mode {
            SyncMode::Fsync => self.sync(),
            SyncMode::OsBuffer => self.flush_to_os(),
        }
    }
}
