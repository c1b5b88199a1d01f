//! Client configuration, with Kafka's property names in the docs and Kafka's defaults
//! (Apache Kafka 4.0) unless a comment says why Weir differs.

use std::time::Duration;

use weir_wire::records::Compression;

/// Settings shared by producer, consumer and admin.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` entries tried in order.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for one response.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connect_timeout: Duration,
    /// `metadata.max.age.ms`: refresh metadata at least this often when in use.
    pub metadata_max_age: Duration,
    /// `retry.backoff.ms`: first retry delay.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the exponential backoff's ceiling.
    pub retry_backoff_max: Duration,
    /// Requests in flight on one connection (pipelining depth). Kafka's
    /// `max.in.flight.requests.per.connection` is a per-producer knob; this bound protects the
    /// connection's in-flight map and applies to every request type.
    pub in_flight_requests_max: usize,
    /// Largest response frame accepted (`socket.request.max.bytes` on the broker side).
    pub frame_bytes_max: usize,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`: authenticate every connection
    /// (SASL_PLAINTEXT, or SASL_SSL with [`ClientConfig::tls`]) right after ApiVersions;
    /// `None` = no authentication.
    pub sasl: Option<SaslCredentials>,
    /// `security.protocol` SSL / SASL_SSL: TLS on every connection (`ssl.ca.location`,
    /// `ssl.certificate.location`, `ssl.key.location`,
    /// `ssl.endpoint.identification.algorithm`); `None` = plaintext.
    pub tls: Option<crate::tls::ClientTls>,
}

/// What a connection authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: weir_wire::sasl::SaslMechanism,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password` (never printed).
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            bootstrap_servers: vec!["127.0.0.1:9092".to_owned()],
            client_id: "weir-client".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            metadata_max_age: Duration::from_secs(300),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            in_flight_requests_max: 64,
            frame_bytes_max: weir_wire::frame::FRAME_BYTES_MAX,
            sasl: None,
            tls: None,
        }
    }
}

impl ClientConfig {
    /// Defaults with one bootstrap server.
    pub fn with_bootstrap(server: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: vec![server.into()],
            ..ClientConfig::default()
        }
    }
}

/// `acks`: how many replicas must have the batch before the broker answers (weir-wire's
/// domain type, so the producer config and the request share one parse).
pub use weir_wire::domain::Acks;

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Connection settings.
    pub client: ClientConfig,
    /// `acks`.
    pub acks: Acks,
    /// `linger.ms`: how long a non-full batch may wait for more records (Kafka 4.0: 5 ms).
    pub linger: Duration,
    /// `batch.size`: a batch is sent once it holds this many bytes.
    pub batch_bytes_max: usize,
    /// `buffer.memory`: bytes of records waiting to be acknowledged before `send` refuses.
    pub buffer_bytes_max: usize,
    /// `max.request.size`: the largest produce request (and so the largest record).
    pub request_bytes_max: usize,
    /// `retries`: attempts after the first for a batch failing with a retriable error.
    pub retries: u32,
    /// `delivery.timeout.ms`: a record fails once this long has passed since `send`.
    pub delivery_timeout: Duration,
    /// Batches of one partition in flight at once. 1 keeps per-partition order through
    /// retries (Kafka's `max.in.flight.requests.per.connection=1` without idempotence);
    /// higher values pipeline more but a retried batch may land after a later one.
    pub in_flight_batches_per_partition_max: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// Broker-side wait bound for acks=all, sent as the request's `timeout_ms`.
    pub ack_timeout: Duration,
    /// Ask the broker to create unknown topics on metadata requests
    /// (`allow.auto.create.topics`).
    pub allow_auto_create_topics: bool,
    /// `enable.idempotence`: get a producer id (InitProducerId) and number every batch per
    /// partition, so retries after connection drops or broker restarts are deduplicated by
    /// the broker. Needs `acks = all`.
    pub idempotent: bool,
    /// `transactional.id`: makes the producer transactional (and idempotent). It must call
    /// [`crate::Producer::init_transactions`] once, then send with
    /// [`crate::Producer::send_txn`] between `begin_transaction` and
    /// `commit_transaction`/`abort_transaction`. A second producer with the same id fences
    /// this one.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: the broker aborts a transaction open longer than this.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            client: ClientConfig::default(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_bytes_max: 16_384,
            buffer_bytes_max: 32 * 1024 * 1024,
            request_bytes_max: 1_048_576,
            retries: 2_147_483_647,
            delivery_timeout: Duration::from_secs(120),
            in_flight_batches_per_partition_max: 1,
            compression: Compression::None,
            ack_timeout: Duration::from_secs(30),
            allow_auto_create_topics: true,
            idempotent: false,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// `auto.offset.reset`: where to start when a partition has no valid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Kafka's default).
    #[default]
    Latest,
    /// Fail with [`crate::ClientError::NoOffset`] / the OFFSET_OUT_OF_RANGE error.
    None,
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Connection settings.
    pub client: ClientConfig,
    /// `fetch.max.wait.ms`: the broker's long-poll bound per fetch.
    pub fetch_max_wait: Duration,
    /// `fetch.min.bytes`: the broker answers early once this many bytes are ready.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: response size bound.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: per-partition size bound.
    pub partition_fetch_bytes_max: i32,
    /// `auto.offset.reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `isolation.level`: false = read_uncommitted, true = read_committed.
    pub read_committed: bool,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            client: ClientConfig::default(),
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            partition_fetch_bytes_max: 1_048_576,
            auto_offset_reset: AutoOffsetReset::Latest,
            read_committed: false,
        }
    }
}

/// Consumer-group settings for [`crate::Consumer::subscribe`] (classic protocol).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership (no LeaveGroup on close, as in Kafka).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: the coordinator drops a member silent for this long.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, sent as the rebalance timeout: how long the coordinator
    /// waits for members to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`. Heartbeats are sent from `poll`, so poll at least this often
    /// (and always within `session_timeout`).
    pub heartbeat_interval: Duration,
    /// `enable.auto.commit`: commit positions every `auto_commit_interval` from `poll`,
    /// before a rebalance and on close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
}

impl GroupConfig {
    /// Kafka's defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> GroupConfig {
        GroupConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
        }
    }
}
