//! Shared helpers for the server's integration tests: an in-process server on a private
//! tokio runtime, a spawned `weir serve` process, runs of the `weir` CLI and parsing of its
//! output, and a blocking raw-bytes Kafka client built on weir-wire's client-direction codec.
#![allow(dead_code)] // Helpers for every file; not each is used.

pub mod certs;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir::config::ServerConfig;
use weir::server::RunningServer;
use weir_runtime::TokioRuntime;
use weir_wire::codec::{self, RequestHeader};
use weir_wire::domain::*;
use weir_wire::records::{self, BatchOptions, Record};

/// Socket read timeout: a hung server fails the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A server running in this process on its own tokio runtime.
pub struct InProcess {
    pub address: String,
    /// The WebSocket gateway's `host:port`, when it is on.
    pub gateway: Option<String>,
    /// `/metrics`' `host:port`, when it is on.
    pub metrics: Option<String>,
    /// Every Kafka listener, the first (`address`) first.
    pub listeners: Vec<weir::server::BoundListener>,
    _server: RunningServer,
    // Dropped last: dropping the runtime stops every server task.
    _runtime: tokio::runtime::Runtime,
}

impl InProcess {
    /// Start on 127.0.0.1:0 with fjall in `data_dir`.
    pub fn start(data_dir: &Path) -> InProcess {
        let mut config = ServerConfig::from_toml_str("", "test").expect("defaults are valid");
        config.listen = "127.0.0.1:0".to_owned();
        config.data_dir = data_dir.to_owned();
        InProcess::start_with(config)
    }

    pub fn start_with(config: ServerConfig) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime
            .block_on(async { weir::server::start_fjall(TokioRuntime::new(7), config).await })
            .expect("server starts");
        let address = server.local_addr().to_owned();
        let gateway = server.gateway_addr().map(str::to_owned);
        let metrics = server.metrics_addr().map(str::to_owned);
        let listeners = server.listeners().to_vec();
        InProcess {
            address,
            gateway,
            metrics,
            listeners,
            _server: server,
            _runtime: runtime,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.address)
    }

    /// The schema registry's REST API, when the config turned it on.
    pub fn schema_registry(&self) -> Option<axum::Router> {
        self._server.schema_registry()
    }

    /// The schema registry's `http://host:port`, when it is on.
    pub fn schema_registry_url(&self) -> Option<String> {
        self._server
            .schema_registry_addr()
            .map(|addr| format!("http://{addr}"))
    }

    /// Run `future` on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self._runtime.block_on(future)
    }

    /// The bound address of the listener called `name`.
    pub fn listener(&self, name: &str) -> &str {
        (self.listeners.iter())
            .find(|listener| listener.name == name)
            .map(|listener| listener.addr.as_str())
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.listeners))
    }
}

/// A `weir serve` child process, killed and reaped on drop.
pub struct Process {
    pub address: String,
    pub child: Child,
    /// The stdout lines printed before the "weir listening on " line: the other
    /// listeners' announcements (metrics, gateway, controller listener).
    pub startup: Vec<String>,
}

impl Process {
    /// Spawn the binary on a free port and wait for its startup line.
    pub fn spawn(data_dir: &Path) -> Process {
        Process::spawn_args([
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data-dir"),
            data_dir.as_os_str(),
        ])
    }

    /// Spawn `weir serve ARGS` (RUST_LOG=warn, stderr inherited) and wait for its
    /// "weir listening on " line; `address` is the `host:port` it names.
    pub fn spawn_args<I, S>(args: I) -> Process
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weir");
        // Owned from here on, so a failed start still kills the child.
        let mut process = Process {
            address: String::new(),
            child,
            startup: Vec::new(),
        };
        let stdout = process.child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader.read_line(&mut line).expect("read startup line");
            if read == 0 {
                panic!(
                    "weir exited without its startup line; it printed {:?}",
                    process.startup
                );
            }
            let line = line.trim_end();
            if let Some(rest) = line.strip_prefix("weir listening on ") {
                process.address = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
                    .to_owned();
                return process;
            }
            process.startup.push(line.to_owned());
        }
    }

    /// The rest of the startup line beginning with `prefix`, if one was printed.
    pub fn announced(&self, prefix: &str) -> Option<&str> {
        (self.startup.iter()).find_map(|line| line.strip_prefix(prefix))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the `weir` binary with `args` (RUST_LOG=warn) and collect its output.
pub fn run_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run weir")
}

/// [`run_cli`] with `--bootstrap-server BOOTSTRAP` appended.
pub fn run_cli_at(bootstrap: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--bootstrap-server", bootstrap]);
    run_cli(&all)
}

/// `weir ARGS --bootstrap-server BOOTSTRAP --command-config CONFIG`.
pub fn run_cli_with_config(bootstrap: &str, config: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--command-config", config]);
    run_cli_at(bootstrap, &all)
}

/// [`run_cli_with_config`] with `stdin` piped in (for `weir produce`).
pub fn run_cli_with_stdin(bootstrap: &str, config: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .args(["--bootstrap-server", bootstrap, "--command-config", config])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("weir output")
}

/// The stdout of a run that must have succeeded (else fail showing its stderr).
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `Key: value` fields of one tab-separated output line.
pub fn fields(line: &str) -> Vec<(String, String)> {
    line.split('\t')
        .filter(|field| !field.is_empty())
        .filter_map(|field| field.split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The value of `key` among `fields` (fail if it is missing).
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// A loopback port nothing listens on right now and that this test binary has not handed
/// out before: the kernel may give the same ephemeral port to two sockets bound and closed
/// one after the other, which once gave two brokers of one cluster the same listener.
pub fn free_port() -> u16 {
    static ISSUED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut issued = ISSUED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("bound address").port();
        if !issued.contains(&port) {
            issued.push(port);
            return port;
        }
    }
}

/// A blocking Kafka client speaking raw frames, over TCP or any other byte stream (a
/// rustls `StreamOwned` in the TLS tests).
pub struct Client<S = TcpStream> {
    pub stream: S,
    correlation_id: i32,
}

impl Client {
    pub fn connect(address: &str) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client::over(stream)
    }
}

impl<S: Read + Write> Client<S> {
    /// A client over an established stream.
    pub fn over(stream: S) -> Client<S> {
        Client {
            stream,
            correlation_id: 0,
        }
    }

    pub fn header(&mut self, api_key: i16, api_version: i16) -> RequestHeader {
        self.correlation_id += 1;
        RequestHeader {
            api_key,
            api_version,
            correlation_id: self.correlation_id,
            client_id: Some("weir-test".to_owned()),
        }
    }

    /// Read one response frame (without its length prefix); None on EOF or reset.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).ok()?;
        let len = usize::try_from(i32::from_be_bytes(prefix)).expect("sane length");
        let mut frame = vec![0u8; len];
        self.stream.read_exact(&mut frame).ok()?;
        Some(Bytes::from(frame))
    }

    pub fn api_versions(&mut self, version: i16) -> Vec<(i16, i16, i16)> {
        let header = self.header(18, version);
        let mut out = BytesMut::new();
        codec::encode_api_versions_request(&header, &mut out).expect("encode");
        self.stream.write_all(&out).expect("write");
        let frame = self.read_frame().expect("ApiVersions response");
        codec::decode_api_versions_response(&header, frame).expect("decode ApiVersions")
    }

    pub fn request(&mut self, api_key: i16, version: i16, request: &ApiRequest) -> ApiResponse {
        let header = self.header(api_key, version);
        self.send(&header, request);
        let frame = self.read_frame().expect("response");
        codec::decode_response(&header, frame).expect("decode response")
    }

    pub fn send(&mut self, header: &RequestHeader, request: &ApiRequest) {
        let mut out = BytesMut::new();
        codec::encode_request(header, request, &mut out).expect("encode");
        self.stream.write_all(&out).expect("write");
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32) -> CreateTopicsResponse {
        let request = ApiRequest::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_owned(),
                num_partitions: partitions,
                replication_factor: 1,
                assignments: vec![],
                configs: vec![],
            }],
            timeout_ms: 5_000,
            validate_only: false,
        });
        match self.request(19, 7, &request) {
            ApiResponse::CreateTopics(response) => response,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A topic's configuration entries (DescribeConfigs v4): (name, value).
    pub fn describe_topic_configs(&mut self, topic: &str) -> Vec<(String, Option<String>)> {
        let request = ApiRequest::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: topic.to_owned(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        });
        match self.request(32, 4, &request) {
            ApiResponse::DescribeConfigs(response) => (response.results.into_iter())
                .flat_map(|result| result.configs)
                .map(|entry| (entry.name, entry.value))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn metadata(&mut self) -> MetadataResponse {
        let request = ApiRequest::Metadata(MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        match self.request(3, 12, &request) {
            ApiResponse::Metadata(response) => response,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Produce one batch to partition 0; returns (error, base offset).
    pub fn produce(&mut self, topic: &str, acks: i16, batch: Bytes) -> (ErrorCodeValue, i64) {
        let request = produce_request(topic, acks, batch);
        match self.request(0, 9, &request) {
            ApiResponse::Produce(response) => {
                let partition = &response.topics[0].partitions[0];
                (partition.error.0, partition.base_offset)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Fetch partition 0 from `offset`; returns (error, high watermark, records).
    pub fn fetch(&mut self, topic: &str, offset: i64) -> (ErrorCodeValue, i64, Vec<Record>) {
        let request = fetch_request(topic, [0], offset, 100);
        match self.request(1, 12, &request) {
            ApiResponse::Fetch(response) => {
                let partition = &response.topics[0].partitions[0];
                let records = match &partition.records {
                    FetchRecords::Bytes(bytes) => {
                        records::decode_records(bytes.clone()).expect("decode records")
                    }
                    FetchRecords::Empty => vec![],
                    FetchRecords::Read(_) | FetchRecords::Remote(_) => {
                        panic!("unresolved read plan {:?}", partition.records)
                    }
                };
                (partition.error.0, partition.high_watermark, records)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Fetch from `offset` until `count` records are seen (or give up after a while).
    pub fn fetch_all(&mut self, topic: &str, count: usize) -> Vec<Record> {
        let mut all = Vec::new();
        for _ in 0..200 {
            if all.len() >= count {
                break;
            }
            let next = all.last().map_or(0, |record: &Record| record.offset + 1);
            let (error, _, records) = self.fetch(topic, next);
            assert_eq!(error, 0, "fetch error");
            all.extend(records.into_iter().filter(|record| record.offset >= next));
        }
        all
    }

    /// True if the server closed the connection (EOF or reset) within the timeout.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// An i16 error code (what tests compare against).
pub type ErrorCodeValue = i16;

/// A consumer's Fetch of `partitions` of `topic`, each from `offset`, waiting up to
/// `max_wait_ms` for one byte.
pub fn fetch_request(
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    offset: i64,
    max_wait_ms: i32,
) -> ApiRequest {
    ApiRequest::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TopicRef::Name(topic.to_owned()),
            partitions: (partitions.into_iter())
                .map(|partition| FetchPartition {
                    partition,
                    current_leader_epoch: -1,
                    fetch_offset: offset,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                })
                .collect(),
        }],
        rack_id: String::new(),
    })
}

/// A one-partition produce; `acks` is the wire value (0, 1 or -1).
pub fn produce_request(topic: &str, acks: i16, batch: Bytes) -> ApiRequest {
    ApiRequest::Produce(ProduceRequest {
        transactional_id: None,
        acks: Acks::from_i16(acks).expect("tests produce with acks 0, 1 or -1"),
        timeout_ms: 5_000,
        topics: vec![ProduceTopic {
            topic: TopicRef::Name(topic.to_owned()),
            partitions: vec![ProducePartition {
                partition: 0,
                records: Some(batch),
            }],
        }],
    })
}

/// A batch of `count` records with values `{prefix}-{i}`.
pub fn batch(prefix: &str, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            offset: index as i64,
            timestamp: 1_700_000_000_000 + index as i64,
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::from(format!("{prefix}-{index}"))),
            headers: vec![],
        })
        .collect();
    records::encode_batch(&records, &BatchOptions::default()).expect("encode batch")
}
