//! Goal: tiered storage's driver works against a real S3-compatible server: uploads (one
//! put, and multipart with S3's 5 MiB parts), remote reads, deletes and sweeps, through an
//! `s3://bucket/prefix` URL configured by the AWS_* environment as an operator would.
//! Method: start moto's S3 server (`moto_server`, or `python3 -m moto.server`; pinned in
//! tests/compat/requirements.txt, installed by `cargo xtask install-deps`) on a free port
//! in a temp dir, create a bucket with a plain HTTP PUT, run the shared round trip over
//! fjall logs of real batches, and stop the server when the test ends. A missing moto
//! fails the test (it is never skipped).

use crate::remote_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use remote_common::{plan, resolve_one, upload, Log};
use weir::remote::{RemoteOptions, RemoteStore};
use weir_core::tier::{DeleteJob, SweepJob};
use weir_runtime::{Runtime, TokioRuntime};
use weir_wire::error::ErrorCode;

const BUCKET: &str = "weir-tier";
/// How long moto may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "moto's S3 server is needed: run `cargo xtask install-deps` \
                            (pip install -r tests/compat/requirements.txt)";

/// A moto S3 server on 127.0.0.1, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
    _directory: tempfile::TempDir,
}

impl Moto {
    async fn start() -> Moto {
        let directory = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let port_text = port.to_string();
        let args = ["-H", "127.0.0.1", "-p", port_text.as_str()];
        let spawn = |program: &str, prefix: &[&str]| {
            Command::new(program)
                .args(prefix)
                .args(args)
                .current_dir(directory.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        };
        let child = match spawn("moto_server", &[]) {
            Ok(child) => child,
            Err(_) => match spawn("python3", &["-m", "moto.server"]) {
                Ok(child) => child,
                Err(error) => panic!("cannot run python3 ({error}); {INSTALL_HINT}"),
            },
        };
        let mut moto = Moto {
            child,
            port,
            _directory: directory,
        };
        moto.wait_ready().await;
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Poll until moto answers HTTP; fail with the install hint if it exited.
    async fn wait_ready(&mut self) {
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(100);
        while waited < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(pipe) = self.child.stderr.as_mut() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("moto exited with {status}: {stderr}\n{INSTALL_HINT}");
            }
            if http(self.port, "GET", "/").is_some() {
                return;
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
        panic!(
            "moto did not answer on port {} within {START_TIMEOUT:?}",
            self.port
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (the OS's pick; released for the server to bind).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// One plain HTTP/1.1 request; the status line's code, or `None` when nothing answers.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

async fn keys(remote: &RemoteStore) -> Vec<String> {
    let listed: Vec<_> = (remote.object_store().list(None).try_collect().await).expect("list");
    let mut keys: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    keys.sort();
    keys
}

// Goal: the whole driver against moto's S3: round trips of a small object (one put) and
// of one over 5 MiB (multipart, S3's part rule), objects under the URL's prefix, deletes,
// and a sweep that keeps referenced and young objects. Method: one moto for the test, the
// AWS_* variables pointing at it, stores opened from s3:// URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_delete_and_sweep() {
    let moto = Moto::start().await;
    assert_eq!(
        http(moto.port, "PUT", &format!("/{BUCKET}")),
        Some(200),
        "create bucket"
    );
    // Set once, before any store reads them (this binary's only test).
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
    std::env::set_var("AWS_ACCESS_KEY_ID", "weir-test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "weir-test");
    std::env::remove_var("AWS_REGION");
    std::env::remove_var("AWS_DEFAULT_REGION");
    let runtime = TokioRuntime::new(11);
    // Parts as small as S3 allows (the store raises 1 to 5 MiB).
    let options = RemoteOptions {
        part_bytes: 1,
        request_timeout: Duration::from_secs(30),
        ..RemoteOptions::default()
    };
    let url = format!("s3://{BUCKET}/cluster-a/tiered");
    let remote = RemoteStore::from_url_with(&url, options.clone()).expect("open s3");
    let whole_bucket = RemoteStore::from_url(&format!("s3://{BUCKET}")).expect("open s3");

    let small = Log::new(&[1, 3, 2, 4, 1], 300);
    let small_key = "t-1/0/small.seg";
    let uploaded = upload(&remote, &runtime, &small, small_key, 1024).await;
    remote_common::check_round_trip(&remote, &runtime, &small, small_key, &uploaded).await;

    // Twelve batches of 512 KiB: 6 MiB, so one part of S3's minimum and a smaller last one.
    let large = Log::new(&[8; 12], 64 * 1024);
    assert!(large.data_bytes() > 6 << 20);
    let large_key = "t-1/0/large.seg";
    let uploaded = upload(&remote, &runtime, &large, large_key, 1 << 20).await;
    remote_common::check_round_trip(&remote, &runtime, &large, large_key, &uploaded).await;
    let expected = [
        "cluster-a/tiered/t-1/0/large.seg",
        "cluster-a/tiered/t-1/0/small.seg",
    ];
    assert_eq!(keys(&whole_bucket).await, expected);

    let delete = DeleteJob {
        keys: vec![large_key.to_owned(), "t-1/0/never.seg".to_owned()],
    };
    assert_eq!(remote.delete(&runtime, &delete).await, 0);
    let gone = resolve_one(&remote, &runtime, plan(large_key, 0, 1, 1, false)).await;
    assert_eq!(gone.error, ErrorCode::KAFKA_STORAGE_ERROR);
    assert_eq!(keys(&remote).await, [small_key]);

    // S3 stamps objects to the second: old ones are 2 s older than the young one.
    let orphan = "t-1/0/orphan.seg";
    upload(&remote, &runtime, &small, orphan, 1024).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let young = "t-1/0/young.seg";
    upload(&remote, &runtime, &small, young, 1024).await;
    let job = SweepJob {
        prefix: "t-1/0/".to_owned(),
        keep: vec![small_key.to_owned()],
        min_age_ms: 1000,
    };
    let outcome = remote.sweep(&runtime, &job, runtime.wall_ms()).await;
    let outcome = outcome.expect("sweep");
    assert_eq!(outcome.deleted, [orphan], "{outcome:?}");
    assert_eq!(keys(&remote).await, [small_key, young]);
    let young_path = Path::from("cluster-a/tiered/t-1/0/young.seg");
    let head = whole_bucket.object_store().head(&young_path).await;
    assert!(head.is_ok(), "{head:?}");
    drop(moto);
}
