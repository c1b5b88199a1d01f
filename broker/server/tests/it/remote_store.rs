//! Goal: tiered storage's object store driver (`weir::remote`) over a local directory
//! (file://) and memory (memory://): uploads of real stored batches round-trip through
//! remote reads, sweeps and deletes remove exactly what they must, corrupt or missing
//! objects are never served, a failing, slow or dead store fails within its deadlines
//! without panicking, and a connection serves remote reads in request order. Method: fjall
//! logs of real batches, `RemoteStore` calls checked field by field, a fault-injecting
//! store (`weir::remote::faulty`) in front of memory, and a connection driven over an
//! in-memory duplex stream with this test acting as the node loop.

use crate::remote_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use remote_common::{fetch, partitions, plan, resolve_one, upload, Log};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use weir::conn::{self, ConnContext};
use weir::messages::{ConnEvent, NodeInput};
use weir::remote::faulty::{Fault, FaultPlan, FaultyStore};
use weir::remote::{RemoteOptions, RemoteStore};
use weir_core::tier::{DeleteJob, SweepJob};
use weir_core::Completion;
use weir_runtime::{Runtime, TokioRuntime};
use weir_wire::codec::{self, RequestHeader};
use weir_wire::domain::{ApiResponse, FetchRecords};
use weir_wire::error::ErrorCode;

const KEY: &str = "tiered-00000000000000000000000000000077/0/seg-a.seg";

/// Options with small parts (multipart uploads of small logs) or large ones (single puts).
fn options(part_bytes: usize) -> RemoteOptions {
    RemoteOptions {
        part_bytes,
        request_timeout: Duration::from_secs(10),
        ..RemoteOptions::default()
    }
}

/// A log of 24 batches of 1 to 4 records of 600 bytes: about 40 KiB.
fn small_log() -> Log {
    let counts: Vec<usize> = (0..24).map(|index| 1 + index % 4).collect();
    Log::new(&counts, 600)
}

// Goal: an object uploaded from stored batches serves every offset from the batch holding
// it, stops at the end asked for, and carries the aborted transactions; over file:// and
// memory://, as one put and as a multipart upload, read in small and large chunks.
// Method: upload the same log under each combination and run the shared round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_round_trip_over_file_and_memory() {
    let runtime = TokioRuntime::new(1);
    let log = small_log();
    let directory = tempfile::tempdir().expect("temp dir");
    let file_url = format!("file://{}/tier", directory.path().display());
    for url in [file_url.as_str(), "memory://", "memory://some/prefix"] {
        for (part_bytes, read_bytes) in [(4096, 1024), (8 << 20, 1 << 20)] {
            let remote = RemoteStore::from_url_with(url, options(part_bytes)).expect("open");
            let key = format!("t-{part_bytes}/0/object-{read_bytes}.seg");
            let uploaded = upload(&remote, &runtime, &log, &key, read_bytes).await;
            remote_common::check_round_trip(&remote, &runtime, &log, &key, &uploaded).await;
        }
    }
    // The file store keeps objects under the directory, by key.
    let on_disk = directory.path().join("tier/t-4096/0/object-1024.seg");
    assert!(on_disk.is_file(), "{} missing", on_disk.display());
}

// Goal: corrupt, foreign and missing objects are never served: each answers its partition
// KAFKA_STORAGE_ERROR with no records, while a good object in the same response is served.
// Method: upload one good object, write damaged copies of it (a flipped bit in a batch, in
// the index, in the footer's magic; a truncated copy; junk) under other keys, resolve one
// response reading all of them plus a key never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_missing_objects_answer_storage_error() {
    let runtime = TokioRuntime::new(2);
    let log = small_log();
    let remote = RemoteStore::from_url_with("memory://", options(8 << 20)).expect("open");
    upload(&remote, &runtime, &log, KEY, 1 << 20).await;
    let store = remote.object_store();
    let object = store.get(&Path::from(KEY)).await.expect("get");
    let object = object.bytes().await.expect("bytes");
    let first_batch_len = log.batches[0].bytes.len();
    let damaged = [
        ("bad/batch.seg", flip(&object, first_batch_len / 2)),
        ("bad/index.seg", flip(&object, log.data_bytes() + 3)),
        ("bad/magic.seg", flip(&object, object.len() - 1)),
        ("bad/short.seg", object.slice(..object.len() - 10)),
        (
            "bad/junk.seg",
            Bytes::from_static(b"not a segment object at all"),
        ),
    ];
    for (key, bytes) in &damaged {
        let path = Path::from(*key);
        let put = store.put(&path, PutPayload::from(bytes.clone()));
        put.await.expect("put damaged copy");
    }
    let end = log.end_offset();
    let mut plans = vec![plan(KEY, 0, end, u32::MAX, false)];
    plans.extend(
        damaged
            .iter()
            .map(|(key, _)| plan(key, 0, end, u32::MAX, false)),
    );
    plans.push(plan("bad/never-written.seg", 0, end, u32::MAX, false));
    let mut response = fetch(plans);
    remote.resolve(&runtime, &mut response, "test").await;
    let answered = partitions(&response);
    assert_eq!(answered[0].error, ErrorCode::NONE);
    assert!(matches!(answered[0].records, FetchRecords::Bytes(_)));
    for partition in &answered[1..] {
        assert_eq!(
            partition.error,
            ErrorCode::KAFKA_STORAGE_ERROR,
            "{partition:?}"
        );
        assert_eq!(partition.records, FetchRecords::Empty);
    }
}

fn flip(object: &Bytes, at: usize) -> Bytes {
    let mut bytes = object.to_vec();
    bytes[at] ^= 0x10;
    Bytes::from(bytes)
}

// Goal: a sweep deletes exactly the objects under its prefix that are neither kept nor
// young; other prefixes (a sibling partition whose number starts alike included) are never
// touched; over memory:// and file://. Method: write old objects, wait, write young ones,
// sweep with a minimum age between the two, then list what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_keeps_referenced_and_young_objects() {
    let runtime = TokioRuntime::new(3);
    let directory = tempfile::tempdir().expect("temp dir");
    let file_url = format!("file://{}", directory.path().display());
    for url in ["memory://", file_url.as_str()] {
        let remote = RemoteStore::from_url_with(url, options(8 << 20)).expect("open");
        let store = remote.object_store();
        let old = [
            "t/0/a.seg",
            "t/0/b.seg",
            "t/0/c.seg",
            "t/01/x.seg",
            "u/0/y.seg",
        ];
        for key in old {
            put(store, key).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        put(store, "t/0/young.seg").await;
        let job = SweepJob {
            prefix: "t/0/".to_owned(),
            keep: vec!["t/0/b.seg".to_owned()],
            min_age_ms: 200,
        };
        let outcome = remote.sweep(&runtime, &job, runtime.wall_ms()).await;
        let outcome = outcome.expect("sweep");
        assert_eq!(outcome.listed, 4, "{url}");
        assert_eq!(outcome.deleted, ["t/0/a.seg", "t/0/c.seg"], "{url}");
        assert_eq!(outcome.failed, 0);
        let left = keys(store).await;
        let expected = ["t/0/b.seg", "t/0/young.seg", "t/01/x.seg", "u/0/y.seg"];
        assert_eq!(left, expected, "{url}");
        // A topic gone from the image: nothing kept, everything old enough goes.
        let gone = SweepJob {
            prefix: "t/".to_owned(),
            keep: Vec::new(),
            min_age_ms: 0,
        };
        remote
            .sweep(&runtime, &gone, runtime.wall_ms() + 1)
            .await
            .expect("sweep");
        assert_eq!(keys(store).await, ["u/0/y.seg"], "{url}");
        // A partition that never uploaded anything has nothing to sweep, and that is fine.
        let empty = SweepJob {
            prefix: "never/7/".to_owned(),
            keep: Vec::new(),
            min_age_ms: 0,
        };
        let outcome = remote.sweep(&runtime, &empty, runtime.wall_ms()).await;
        assert_eq!(outcome.expect("sweep of nothing").listed, 0, "{url}");
    }
}

// Goal: deletes remove their keys and take missing ones in their stride; a deleted
// object's cached index is dropped with it, so it is not served from the cache.
// Method: upload, read (caching the index), delete it and a never-written key, read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_remove_keys_and_tolerate_missing_ones() {
    let runtime = TokioRuntime::new(4);
    let log = small_log();
    let remote = RemoteStore::from_url_with("memory://", options(8 << 20)).expect("open");
    upload(&remote, &runtime, &log, KEY, 1 << 20).await;
    let end = log.end_offset();
    let before = resolve_one(&remote, &runtime, plan(KEY, 0, end, 1, false)).await;
    assert_eq!(before.error, ErrorCode::NONE);
    let job = DeleteJob {
        keys: vec![KEY.to_owned(), "t/0/never.seg".to_owned()],
    };
    assert_eq!(remote.delete(&runtime, &job).await, 0, "no delete failed");
    assert!(keys(remote.object_store()).await.is_empty());
    let after = resolve_one(&remote, &runtime, plan(KEY, 0, end, 1, false)).await;
    assert_eq!(after.error, ErrorCode::KAFKA_STORAGE_ERROR);
}

/// A remote store over memory behind a fault injector, with short deadlines.
fn faulty(
    runtime: &TokioRuntime,
    request_timeout: Duration,
) -> (RemoteStore, weir::remote::faulty::Faults) {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store = FaultyStore::new(inner, runtime.clone(), 7);
    let faults = store.faults();
    let options = RemoteOptions {
        part_bytes: 4096,
        request_timeout,
        upload_timeout: Duration::from_secs(5),
        index_cache_entries: 4,
    };
    (
        RemoteStore::with_store(Arc::new(store), "faulty", options),
        faults,
    )
}

// Goal: a store that refuses writes makes uploads report failure (never panic), and a
// failed multipart upload leaves no object behind; a store that fails some calls at random
// fails some uploads and completes the rest correctly. Method: writes set to Fail, then a
// seeded 10% failure rate over many uploads, each outcome checked against the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_store_fails_uploads_cleanly() {
    let runtime = TokioRuntime::new(5);
    let log = small_log();
    let (remote, faults) = faulty(&runtime, Duration::from_secs(2));
    faults.set(FaultPlan {
        writes: Fault::Fail,
        ..FaultPlan::default()
    });
    for read_bytes in [512, 1 << 20] {
        let job = log.job(9, KEY, read_bytes);
        let Completion::Uploaded(Err(failed)) = remote.upload(&log.storage, &runtime, &job).await
        else {
            panic!("an upload to a failing store succeeded");
        };
        assert_eq!(failed.job_id, 9);
        assert!(failed.reason.contains("injected"), "{}", failed.reason);
    }
    assert!(keys(remote.object_store()).await.is_empty());
    faults.set(FaultPlan {
        fail_per_mille: 100,
        ..FaultPlan::default()
    });
    let (mut succeeded, mut failed) = (0, 0);
    for job_id in 0..20 {
        let key = format!("t/0/random-{job_id}.seg");
        let job = log.job(job_id, &key, 2048);
        match remote.upload(&log.storage, &runtime, &job).await {
            Completion::Uploaded(Ok(uploaded)) => {
                succeeded += 1;
                faults.set(FaultPlan::default());
                let end = log.end_offset();
                let read = resolve_one(&remote, &runtime, plan(&key, 0, end, u32::MAX, false));
                assert_eq!(read.await.error, ErrorCode::NONE, "{key}: {uploaded:?}");
                faults.set(FaultPlan {
                    fail_per_mille: 100,
                    ..FaultPlan::default()
                });
            }
            Completion::Uploaded(Err(_)) => failed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        succeeded > 0 && failed > 0,
        "{succeeded} ok, {failed} failed"
    );
    assert!(faults.injected() > 0);
}

// Goal: a dead store (calls that never answer) costs a failed upload, a
// KAFKA_STORAGE_ERROR and a failed sweep, each within its deadline; a slow store within
// the deadline still works. Method: Hang every call with a 300 ms deadline and time each
// operation on the runtime's clock; then Delay calls by 20 ms and upload and read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_store_fails_within_deadlines_and_slow_store_works() {
    let runtime = TokioRuntime::new(6);
    let log = small_log();
    let deadline = Duration::from_millis(300);
    let (remote, faults) = faulty(&runtime, deadline);
    faults.set(FaultPlan::all(Fault::Hang));
    let started = runtime.now();
    let job = log.job(3, KEY, 4096);
    let outcome = remote.upload(&log.storage, &runtime, &job).await;
    let Completion::Uploaded(Err(failed)) = outcome else {
        panic!("an upload to a dead store succeeded: {outcome:?}");
    };
    assert!(failed.reason.contains("deadline"), "{}", failed.reason);
    let end = log.end_offset();
    let read = resolve_one(&remote, &runtime, plan(KEY, 0, end, 1, false)).await;
    assert_eq!(read.error, ErrorCode::KAFKA_STORAGE_ERROR);
    let sweep = SweepJob {
        prefix: "t/".to_owned(),
        keep: Vec::new(),
        min_age_ms: 0,
    };
    assert!(remote.sweep(&runtime, &sweep, 0).await.is_err());
    let job = DeleteJob {
        keys: vec![KEY.to_owned()],
    };
    assert_eq!(remote.delete(&runtime, &job).await, 1);
    // Upload (one call to start, and the abort after it), read, list, delete: a few
    // deadlines, far from forever.
    let elapsed = runtime.now() - started;
    assert!(elapsed < deadline * 8, "took {elapsed:?}");

    faults.set(FaultPlan::all(Fault::Delay(Duration::from_millis(20))));
    let uploaded = upload(&remote, &runtime, &log, KEY, 4096).await;
    remote_common::check_round_trip(&remote, &runtime, &log, KEY, &uploaded).await;
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str) {
    let payload = PutPayload::from(Bytes::from(key.to_owned()));
    store.put(&Path::from(key), payload).await.expect("put");
}

async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    use futures_util::TryStreamExt;
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    let mut keys: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    keys.sort();
    keys
}

// Goal: a connection answers a fetch carrying remote reads with the object's bytes, in
// request order behind it, while a later answer waits its turn; with no store configured
// the partition answers KAFKA_STORAGE_ERROR instead. Method: start a connection over an
// in-memory stream, act as the node loop (answer each request through the connection's
// event channel: the first with a remote plan, the second with bytes), read both answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_resolve_remote_reads_in_order() {
    let runtime = TokioRuntime::new(7);
    let log = small_log();
    let remote = RemoteStore::from_url_with("memory://", options(8 << 20)).expect("open");
    upload(&remote, &runtime, &log, KEY, 1 << 20).await;
    for store in [Some(remote), None] {
        let configured = store.is_some();
        let answers = serve_two_fetches(&runtime, &log, store).await;
        let first = &partitions(&answers[0])[0];
        if configured {
            assert_eq!(first.error, ErrorCode::NONE);
            let expected = FetchRecords::Bytes(log.batches[0].bytes.clone());
            assert_eq!(first.records, expected);
        } else {
            assert_eq!(first.error, ErrorCode::KAFKA_STORAGE_ERROR);
            assert_eq!(first.records, FetchRecords::Empty);
        }
        let second = &partitions(&answers[1])[0];
        assert_eq!(
            second.records,
            FetchRecords::Bytes(log.batches[1].bytes.clone())
        );
    }
}

/// Send two fetches on a new connection; answer the first with a remote plan of [`KEY`],
/// the second (before the first) with the log's second batch; return both answers as the
/// client decoded them.
async fn serve_two_fetches(
    runtime: &TokioRuntime,
    log: &Log,
    remote: Option<RemoteStore>,
) -> Vec<ApiResponse> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let (node, mut inputs) = mpsc::channel(16);
    let context = ConnContext {
        conn: 1,
        peer: "test".to_owned(),
        frame_bytes_max: 1 << 20,
        advertised: None,
        remote,
        sasl: None,
        principal: None,
        limits: weir::limits::ClientLimits::new(weir::limits::LimitSettings::default()),
        slot: None,
    };
    let node = weir::shards::NodeHandle::single(node);
    conn::start(runtime, server, log.storage.clone(), context, node).await;
    let Some(NodeInput::Connect { events, .. }) = inputs.recv().await else {
        panic!("no connect");
    };
    // The client address (what ACL hosts match) follows the connect.
    let Some(NodeInput::ClientHost { .. }) = inputs.recv().await else {
        panic!("no client host");
    };
    let headers: Vec<RequestHeader> = (1..=2).map(fetch_header).collect();
    for header in &headers {
        let mut out = BytesMut::new();
        codec::encode_request(
            header,
            &crate::common::fetch_request("tiered", [0], 0, 100),
            &mut out,
        )
        .expect("encode");
        client.write_all(&out).await.expect("write");
    }
    for _ in 0..2 {
        let Some(NodeInput::Request { .. }) = inputs.recv().await else {
            panic!("no request");
        };
    }
    let end = log.end_offset();
    let remote_answer = fetch(vec![plan(KEY, 0, end, 1, false)]);
    let mut local_answer = fetch(vec![plan(KEY, 0, end, 1, false)]);
    if let ApiResponse::Fetch(answer) = &mut local_answer {
        let batch = log.batches[1].bytes.clone();
        answer.topics[0].partitions[0].records = FetchRecords::Bytes(batch);
    }
    // The second answer reaches the writer first: it must still be written second.
    let second = ConnEvent::Response {
        seq: 1,
        shard: 0,
        response: local_answer,
    };
    events.send(second).expect("writer alive");
    let first = ConnEvent::Response {
        seq: 0,
        shard: 0,
        response: remote_answer,
    };
    events.send(first).expect("writer alive");
    let mut answers = Vec::new();
    for header in &headers {
        let mut prefix = [0u8; 4];
        client.read_exact(&mut prefix).await.expect("length");
        let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
        client.read_exact(&mut frame).await.expect("frame");
        let answer = codec::decode_response(header, Bytes::from(frame)).expect("decode");
        answers.push(answer);
    }
    answers
}

fn fetch_header(correlation_id: i32) -> RequestHeader {
    RequestHeader {
        api_key: 1,
        api_version: 12,
        correlation_id,
        client_id: Some("remote-test".to_owned()),
    }
}
