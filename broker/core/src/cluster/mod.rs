//! The cluster layer: Weir in KRaft's shape.
//!
//! - [`peer`]: the node-to-node protocol (postcard frames over the controller listener):
//!   Raft messages, broker heartbeats, ISR changes, replica fetches, epoch queries,
//!   leaders' reports of uploaded remote segments.
//! - [`image`]: the metadata image every node builds by applying the committed metadata
//!   log ([`image::MetaRecord`]): brokers, topics, partition leaders, epochs and ISRs, and
//!   each partition's remote log (tiered storage: the segments in the object store).
//! - [`features`]: `metadata.version`, the finalized level that says which record kinds the
//!   controller may write (rolling upgrades), and its checks.
//! - [`controller`]: what the active controller (the Raft leader) decides: replica
//!   placement, fencing, leader election, ISR changes, which upload reports to record.
//!
//! The metadata log is replicated by [`crate::raft`], a sans-IO Raft written here (openraft
//! is bound to real tokio and the OS RNG, so it cannot run under both simulators).
//!
//! Invariants: a node acts on the image only (never on a record that is not committed); a
//! partition leader's epoch comes from the image, so two nodes can only both believe they
//! lead a partition with different epochs, and followers refuse the stale one.

pub mod controller;
pub mod features;
pub mod image;
pub mod peer;

/// One controller quorum voter: `id@host:port` of `controller.quorum.voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// Node id.
    pub id: i32,
    /// Its controller (peer) listener, `host:port`.
    pub addr: String,
}

/// How acks=all waits for followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDurability {
    /// Weir's default: a follower counts for the high watermark only with what it has
    /// fsynced, so acknowledged records survive every replica losing power at once.
    IsrFsync,
    /// Kafka's behaviour: a follower counts once it has the batch in memory.
    IsrMemory,
}

/// Cluster settings of one node (`node.id` is [`crate::NodeConfig::node_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `controller.quorum.voters`.
    pub voters: Vec<Voter>,
    /// `process.roles` contains `controller` (must then be one of the voters).
    pub controller_role: bool,
    /// `process.roles` contains `broker`.
    pub broker_role: bool,
    /// This node's controller (peer) listener as other nodes reach it.
    pub peer_addr: String,
    /// `broker.heartbeat.interval.ms` (Kafka 2000; Weir 500).
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms` (Kafka 9000; Weir 6000): a broker silent this long is
    /// fenced and its leaderships move.
    pub broker_session_timeout_ms: u64,
    /// `replica.lag.time.max.ms` (Kafka 30000): a follower not caught up for this long
    /// leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms` (500).
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes` (1048576).
    pub replica_fetch_max_bytes: u32,
    /// `unclean.leader.election.enable` (false).
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable` (true): move leadership back to preferred replicas.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds` in ms (Kafka 300 s; Weir 30 s).
    pub leader_imbalance_check_interval_ms: u64,
    /// `weir.acks.all.durability`: `isr-fsync` (default) or `isr-memory`.
    pub ack_durability: AckDurability,
    /// `controller.quorum.election.timeout.ms` (1000): Raft's minimum election timeout.
    pub election_timeout_ms: u64,
    /// The `metadata.version` range this node advertises and follows: the build's
    /// ([`features::VersionRange::BUILD`]); tests lower it to play a node of an older build.
    pub supported_metadata_versions: features::VersionRange,
}

impl ClusterConfig {
    /// A cluster config with Weir's defaults.
    pub fn new(voters: Vec<Voter>, peer_addr: String) -> ClusterConfig {
        ClusterConfig {
            voters,
            controller_role: true,
            broker_role: true,
            peer_addr,
            broker_heartbeat_interval_ms: 500,
            broker_session_timeout_ms: 6_000,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1 << 20,
            unclean_leader_election: false,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_ms: 30_000,
            ack_durability: AckDurability::IsrFsync,
            election_timeout_ms: 1_000,
            supported_metadata_versions: features::VersionRange::BUILD,
        }
    }

    /// A node that is its own one-voter quorum: no peers, so no peer address.
    pub fn single(node_id: i32) -> ClusterConfig {
        let voter = Voter {
            id: node_id,
            addr: String::new(),
        };
        ClusterConfig::new(vec![voter], String::new())
    }

    /// The address of voter `id`.
    pub fn voter_addr(&self, id: i32) -> Option<&str> {
        self.voters
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.addr.as_str())
    }
}
