//! The seam between the registry and `_schemas`: the server implements `SchemaLog` on the
//! broker's own produce/fetch paths; tests use an in-memory log.

use std::future::Future;
use std::sync::RwLock;

use crate::error::RegistryError;
use crate::ops::Planned;
use crate::store::Store;

/// The registry's view of `_schemas`.
///
/// Contract for `write`: become the only writer (fencing any other broker's), bring the
/// store up to the committed end of the log, call `plan` on it, append the planned
/// records atomically (all or none), and return the answer only once the local store has
/// applied them, so the caller's next read sees its write. A writer fenced meanwhile starts
/// over from the top (`plan` may run more than once; it is pure). A plan with no records
/// is answered without appending.
pub trait SchemaLog: Send + Sync + 'static {
    /// The store this log's records are applied to, in log order.
    fn store(&self) -> &RwLock<Store>;

    /// Resolves once the store holds at least everything committed when the registry was
    /// first used (a restarted broker answers only after replaying `_schemas`); bounded.
    fn caught_up(&self) -> impl Future<Output = Result<(), RegistryError>> + Send;

    fn write<T, F>(&self, plan: F) -> impl Future<Output = Result<T, RegistryError>> + Send
    where
        T: Send + 'static,
        F: Fn(&Store) -> Result<Planned<T>, RegistryError> + Send + Sync + 'static;
}

/// Waits until the log's store has caught up (see `SchemaLog::caught_up`).
pub async fn ready<L: SchemaLog>(log: &L) -> Result<(), RegistryError> {
    log.caught_up().await
}

/// Runs `read` on the store (a poisoned lock is a store error, never a panic).
pub fn read<L: SchemaLog, T>(
    log: &L,
    read: impl FnOnce(&Store) -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let store = log
        .store()
        .read()
        .map_err(|_| RegistryError::Store("store lock poisoned".into()))?;
    read(&store)
}

/// An in-memory `_schemas` for the handler tests: one writer by construction (a mutex),
/// records kept so a test can replay or compact them.
#[cfg(test)]
pub(crate) mod mem {
    use std::sync::Mutex;

    use super::*;
    use crate::record::Record;

    #[derive(Default)]
    pub(crate) struct MemLog {
        store: RwLock<Store>,
        pub(crate) records: Mutex<Vec<Record>>,
    }

    impl SchemaLog for MemLog {
        fn store(&self) -> &RwLock<Store> {
            &self.store
        }

        async fn caught_up(&self) -> Result<(), RegistryError> {
            Ok(())
        }

        async fn write<T, F>(&self, plan: F) -> Result<T, RegistryError>
        where
            T: Send + 'static,
            F: Fn(&Store) -> Result<Planned<T>, RegistryError> + Send + Sync + 'static,
        {
            let mut records = self
                .records
                .lock()
                .map_err(|_| RegistryError::Store("poisoned".into()))?;
            let mut store = self
                .store
                .write()
                .map_err(|_| RegistryError::Store("poisoned".into()))?;
            let planned = plan(&store)?;
            for record in planned.records {
                store.apply(&record.key, record.value.as_deref());
                records.push(record);
            }
            Ok(planned.answer)
        }
    }

    /// Replays records into a fresh store.
    pub(crate) fn replay(records: &[Record]) -> Store {
        let mut store = Store::default();
        for record in records {
            store.apply(&record.key, record.value.as_deref());
        }
        store
    }

    /// What compaction leaves once every tombstone is past its retention: the latest
    /// record per key, in log order, tombstones dropped.
    pub(crate) fn compacted(records: &[Record]) -> Vec<Record> {
        let mut latest = std::collections::BTreeMap::new();
        for (index, record) in records.iter().enumerate() {
            latest.insert(record.key.clone(), index);
        }
        let mut kept: Vec<usize> = latest.into_values().collect();
        kept.sort_unstable();
        kept.into_iter()
            .map(|index| records[index].clone())
            .filter(|record| record.value.is_some())
            .collect()
    }
}
