//! weir-client: a native Rust Kafka client — producer, consumer and admin — that speaks only
//! the Kafka protocol, so it can test Weir or any other broker.
//!
//! # Layout
//! - [`session`] is sans-IO (quinn-proto style): correlation ids and the bounded in-flight
//!   map, API version negotiation, the metadata cache, the default partitioner, the producer's
//!   batching/linger/retry decisions and the consumer's fetch bookkeeping. Every decision that
//!   depends on time takes `now` as an argument, so it is unit-tested without a clock.
//! - [`driver`] is async over `R:` [`weir_runtime::Runtime`]: one pipelined connection per
//!   broker (a writer task and a reader task), the ApiVersions handshake and metadata refresh.
//! - [`Producer`], [`Consumer`] and [`Admin`] are the user-facing handles built on both.
//!
//! # Architecture invariants
//! - Depends on weir-wire and weir-runtime only (never weir-core, never `kafka_protocol`);
//!   rustls (ring) for TLS when [`ClientConfig::tls`] is set.
//! - No clock, socket, task or randomness outside the [`weir_runtime::Runtime`] it is given,
//!   so the simulators can drive it deterministically.
//! - Every queue and map has a named bound: in-flight requests per connection
//!   ([`ClientConfig::in_flight_requests_max`]), buffered producer bytes
//!   ([`ProducerConfig::buffer_bytes_max`]), batches in flight per partition
//!   ([`ProducerConfig::in_flight_batches_per_partition_max`]).
//! - Responses are matched to requests by correlation id only; a response nobody waits for
//!   (its request timed out) is dropped, never delivered to another request.
//! - With `in_flight_batches_per_partition_max == 1` (the default) records of one partition
//!   are acknowledged in the order they were sent, retries included.

pub mod acl_admin;
pub mod admin;
pub mod config;
pub mod consumer;
pub mod driver;
pub mod error;
pub mod feature_admin;
pub mod group_admin;
pub mod log_dir_admin;
pub mod producer;
pub mod scram_admin;
pub mod session;
pub mod tls;
pub mod txn_admin;

pub use admin::{
    Admin, ClusterDescription, ConfigEntry, ListedOffset, NewTopic, OffsetSpec, QuorumDescription,
    TopicDescription,
};
pub use config::{
    Acks, AutoOffsetReset, ClientConfig, ConsumerConfig, GroupConfig, ProducerConfig,
    SaslCredentials,
};
pub use consumer::{Consumer, ConsumerRecord, Offset};
pub use driver::coordinator::CoordinatorInfo;
pub use error::ClientError;
pub use group_admin::{GroupDescription, GroupListing, MemberDescription};
pub use log_dir_admin::{BrokerLogDirs, LogDirDescription, ReplicaLogInfo};
pub use producer::{DeliveryFuture, Producer, RecordMetadata, TransactionPhase};
pub use session::metadata::{PartitionMetadata, TopicMetadata};
pub use tls::{ClientTls, TlsConfigError, TlsIdentity};
pub use txn_admin::{ProducerState, TransactionDescription, TransactionListing};
pub use weir_wire::domain::BrokerInfo;
pub use weir_wire::error::ErrorCode;
pub use weir_wire::records::Compression;

/// A topic and a partition index: the unit of ordering in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
