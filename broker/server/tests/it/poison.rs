//! Goal: a failed fsync poisons the node: the produce it covered is never acknowledged as
//! a success and the server stops with an error (so `main` exits non-zero).
//! Method: serve in-process over FjallStorage wrapped so that `sync` fails, produce with
//! acks=1, then check the client got no success and `RunningServer::wait` reports poison.

use crate::common;

use std::collections::BTreeMap;

use bytes::Bytes;
use weir::config::ServerConfig;
use weir::server::ServerError;
use weir::storage::fjall::FjallStorage;
use weir::storage::StorageDriver;
use weir_core::storage::{RangeSummary, Storage, StorageError, StorageOp, TimestampHit};
use weir_runtime::TokioRuntime;
use weir_wire::domain::{ApiResponse, ReadPlan, TimestampLookup};

#[derive(Clone)]
struct FailingSync(FjallStorage);

impl Storage for FailingSync {
    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        self.0.apply(op)
    }
    fn sync(&self) -> Result<(), StorageError> {
        Err(StorageError::Io("injected fsync failure".to_owned()))
    }
    fn read(&self, plan: &ReadPlan) -> Result<Bytes, StorageError> {
        self.0.read(plan)
    }
    fn lookup_timestamp(
        &self,
        lookup: &TimestampLookup,
    ) -> Result<Option<TimestampHit>, StorageError> {
        self.0.lookup_timestamp(lookup)
    }
    fn summarize(&self, key: u64, from: i64) -> Result<RangeSummary, StorageError> {
        self.0.summarize(key, from)
    }
    fn meta_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
        self.0.meta_entries()
    }
    fn logs(&self) -> Result<BTreeMap<u64, Option<(i64, i64)>>, StorageError> {
        self.0.logs()
    }
}

impl StorageDriver for FailingSync {
    fn flush_to_os(&self) -> Result<(), StorageError> {
        self.sync()
    }
}

#[test]
fn failed_fsync_poisons_and_stops_the_server() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut config = ServerConfig::from_toml_str("", "test").expect("defaults");
    config.listen = "127.0.0.1:0".to_owned();
    let storage = FailingSync(FjallStorage::open(data_dir.path()).expect("open"));
    let server = runtime
        .block_on(weir::server::start(TokioRuntime::new(3), storage, config))
        .expect("start");
    let mut client = common::Client::connect(server.local_addr());
    // Topic creation itself needs a sync, so it may already poison the node; either way
    // nothing may be acknowledged as a success afterwards.
    let header = client.header(19, 7);
    client.send(&header, &create_request());
    if let Some(frame) = client.read_frame() {
        let response = weir_wire::codec::decode_response(&header, frame).expect("decode");
        if let ApiResponse::CreateTopics(created) = response {
            assert_ne!(
                created.topics[0].error.0, 0,
                "creation acked despite failed fsync"
            );
        }
    }
    let outcome = runtime.block_on(server.wait());
    assert!(
        matches!(outcome, Err(ServerError::Poisoned(_))),
        "{outcome:?}"
    );
}

fn create_request() -> weir_wire::domain::ApiRequest {
    weir_wire::domain::ApiRequest::CreateTopics(weir_wire::domain::CreateTopicsRequest {
        topics: vec![weir_wire::domain::CreatableTopic {
            name: "doomed".to_owned(),
            num_partitions: 1,
            replication_factor: 1,
            assignments: vec![],
            configs: vec![],
        }],
        timeout_ms: 5_000,
        validate_only: false,
    })
}
