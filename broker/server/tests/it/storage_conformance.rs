//! Goal: FjallStorage obeys the same storage contract as the simulator's disk.
//! Method: run weir-core's conformance suite against FjallStorage in temp directories,
//! reopening the database (a clean close) where the suite asks for it.

use weir::storage::fjall::FjallStorage;
use weir_core::storage::conformance::{run_all, StorageFactory};

#[derive(Default)]
struct FjallFactory {
    directories: Vec<tempfile::TempDir>,
}

impl StorageFactory for FjallFactory {
    type Storage = FjallStorage;

    fn create(&mut self) -> FjallStorage {
        let directory = tempfile::tempdir().expect("temp dir");
        let storage = FjallStorage::open(directory.path()).expect("open fjall");
        self.directories.push(directory);
        storage
    }

    fn reopen(&mut self, storage: FjallStorage) -> FjallStorage {
        let path = storage.directory().to_owned();
        drop(storage);
        FjallStorage::open(&path).expect("reopen fjall")
    }
}

#[test]
fn fjall_storage_passes_conformance() {
    run_all(&mut FjallFactory::default());
}
