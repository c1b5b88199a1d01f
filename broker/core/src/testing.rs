//! Test support shared by unit tests, scenario tests, the conformance suite and
//! simulations: record-batch builders and [`SingleNode`], a minimal in-memory driver.
//!
//! [`SingleNode`] drives a [`Node`] the way the production loop does (apply outputs in
//! order, resolve reads, report syncs) but lets the test decide *when* syncs complete and
//! when the machine crashes. It is deliberately small: anything fancier (faults, many
//! nodes) belongs to the simulator.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use weir_wire::batch::{set_base_offset, update_crc, BATCH_HEADER_BYTES};
use weir_wire::domain::{ApiRequest, ApiResponse, FindCoordinatorRequest};
use weir_wire::records::{encode_batch, BatchOptions, Record};

use crate::cluster::peer::PeerMessage;
use crate::config::NodeConfig;
use crate::event::{Completion, Output, RequestId, SyncMode};
use crate::node::Node;
use crate::resolve::resolve_response;
use crate::shard::MetadataFeed;
use crate::storage::{MemStorage, Storage};
use crate::time::{Instant, Now};

/// An uncompressed batch at base offset 0: one record per timestamp, values `v0`, `v1`...
pub fn batch(timestamps: &[i64]) -> Bytes {
    batch_at(0, timestamps)
}

/// Like [`batch`], with the given base offset (as storage holds it).
pub fn batch_at(base_offset: i64, timestamps: &[i64]) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(index, timestamp)| Record {
            offset: index as i64,
            timestamp: *timestamp,
            key: None,
            value: Some(Bytes::from(format!("v{index}"))),
            headers: Vec::new(),
        })
        .collect();
    encode(&records, base_offset)
}

/// An uncompressed batch of `values`, all stamped `timestamp`, at base offset 0.
pub fn batch_of_values(values: &[&[u8]], timestamp: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            offset: index as i64,
            timestamp,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Vec::new(),
        })
        .collect();
    encode(&records, 0)
}

/// A batch as log compaction leaves it: it spans offsets `base_offset ..= base_offset +
/// last_offset_delta` but holds only `records`, given as `(offset_delta, timestamp)` in
/// increasing delta order (possibly none: an empty batch kept for its producer state).
/// Uncompressed, no keys, values `v{offset_delta}`, not idempotent. `max_timestamp` is
/// written as given: compaction keeps the original batch's, so an empty batch still carries
/// the timestamp of records it no longer holds. `log_append_time` marks the batch
/// LogAppendTime, whose records all read as `max_timestamp`.
pub fn compacted_batch_at(
    base_offset: i64,
    last_offset_delta: i32,
    records: &[(i32, i64)],
    max_timestamp: i64,
    log_append_time: bool,
) -> Bytes {
    assert!(
        last_offset_delta >= 0,
        "last_offset_delta={last_offset_delta}"
    );
    let base_timestamp = records
        .first()
        .map_or(max_timestamp, |(_, timestamp)| *timestamp);
    let mut body = Vec::new();
    let mut previous_delta = -1;
    for (offset_delta, timestamp) in records {
        assert!(
            *offset_delta > previous_delta,
            "deltas increase: {records:?}"
        );
        assert!(
            *offset_delta <= last_offset_delta,
            "delta {offset_delta} beyond last_offset_delta {last_offset_delta}"
        );
        assert!(
            log_append_time || *timestamp <= max_timestamp,
            "timestamp {timestamp} above max_timestamp {max_timestamp}"
        );
        previous_delta = *offset_delta;
        let value = format!("v{offset_delta}");
        let mut record = vec![0u8]; // attributes
        put_varlong(&mut record, timestamp - base_timestamp);
        put_varlong(&mut record, i64::from(*offset_delta));
        put_varlong(&mut record, -1); // null key
        put_varlong(&mut record, value.len() as i64);
        record.extend_from_slice(value.as_bytes());
        put_varlong(&mut record, 0); // no headers
        put_varlong(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let record_count = i32::try_from(records.len()).expect("a test batch holds few records");
    let attributes: i16 = if log_append_time { 0x08 } else { 0 };
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.extend_from_slice(&base_offset.to_be_bytes());
    let batch_length = i32::try_from(BATCH_HEADER_BYTES - 12 + body.len()).expect("small batch");
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, computed below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&last_offset_delta.to_be_bytes());
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&record_count.to_be_bytes());
    assert_eq!(batch.len(), BATCH_HEADER_BYTES, "header layout");
    batch.extend_from_slice(&body);
    update_crc(&mut batch);
    Bytes::from(batch)
}

/// A zigzag varint/varlong (Kafka's record fields; both encode the same way).
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn encode(records: &[Record], base_offset: i64) -> Bytes {
    let encoded = encode_batch(records, &BatchOptions::default()).expect("test records encode");
    let mut batch = BytesMut::from(&encoded[..]);
    set_base_offset(&mut batch, base_offset);
    batch.freeze()
}

/// Wall-clock start of [`SingleNode`]'s clock: 2026-01-01T00:00:00Z.
pub const WALL_MS_START: i64 = 1_767_225_600_000;

/// A node over [`MemStorage`] with a hand-cranked clock and hand-completed syncs.
#[derive(Debug)]
pub struct SingleNode {
    /// The node under test.
    pub node: Node,
    /// Its storage; survives [`SingleNode::crash`] minus unsynced writes.
    pub storage: MemStorage,
    /// The config the node is (re)built with.
    pub config: NodeConfig,
    /// Current time.
    pub now: Now,
    /// Responses not yet taken, resolved against storage.
    responses: BTreeMap<RequestId, ApiResponse>,
    /// Requests completed without an answer (acks=0), with their close flag.
    unanswered: BTreeMap<RequestId, bool>,
    /// Syncs emitted and not yet completed, in order.
    pending_syncs: Vec<(u64, SyncMode)>,
    /// Set once the node emitted `Output::Poisoned`.
    pub poisoned: Option<String>,
    /// The remote store of tiered storage; survives crashes (it is another system).
    pub remote: crate::tier::MemObjects,
    /// Peer messages sent, when the harness takes them ([`ShardedBroker`]'s data shards);
    /// `None`: a peer message is a bug (a single node has no peers).
    pub peer_out: Option<Vec<(i32, PeerMessage)>>,
    /// Requests handed to another shard ([`Output::Reroute`]): `(id, shard, request)`, for
    /// [`ShardedBroker`] to deliver. A single node never reroutes.
    pub rerouted: Vec<(RequestId, u16, ApiRequest)>,
    next_seq: u64,
}

impl SingleNode {
    /// A fresh node on empty storage.
    pub fn new(config: NodeConfig) -> Self {
        let mut harness = SingleNode::unstarted(config);
        harness.pump();
        harness.start();
        harness
    }

    /// A node recovered from empty storage, its first outputs not yet applied.
    fn unstarted(config: NodeConfig) -> Self {
        let storage = MemStorage::new();
        let now = Now::new(Instant::from_nanos(1), WALL_MS_START);
        let node = Node::recover(config.clone(), &storage, now).expect("empty storage recovers");
        SingleNode {
            node,
            storage,
            config,
            now,
            responses: BTreeMap::new(),
            unanswered: BTreeMap::new(),
            pending_syncs: Vec::new(),
            poisoned: None,
            remote: crate::tier::MemObjects::default(),
            peer_out: None,
            rerouted: Vec::new(),
            next_seq: 0,
        }
    }

    /// A fresh node whose group and transaction coordinators were found, as a client's
    /// first use does (the node creates its internal topics then): coordinator scenarios
    /// start with them ready.
    pub fn with_coordinators(config: NodeConfig) -> Self {
        let mut harness = SingleNode::new(config);
        harness.find_coordinators();
        harness
    }

    fn find_coordinators(&mut self) {
        for key_type in [0, 1] {
            let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
                key_type,
                keys: vec!["harness".to_string()],
            });
            match self.call(request) {
                ApiResponse::FindCoordinator(r) if r.coordinators[0].error.is_ok() => {}
                other => panic!("no coordinator on a fresh node: {other:?}"),
            }
        }
    }

    /// Drive a (re)started node until it serves: its one-voter metadata quorum elects
    /// itself, registers and unfences its broker and elects it for its partitions, each
    /// step a sync or a timer away.
    fn start(&mut self) {
        for _ in 0..32 {
            if self.node.is_serving() {
                return;
            }
            self.node.handle_timeout(self.now);
            self.pump();
            self.complete_syncs();
        }
        panic!("the node did not start serving: {:?}", self.node);
    }

    /// Hand a request to the node on connection `conn` and apply its outputs.
    pub fn send(&mut self, conn: u64, request: ApiRequest) -> RequestId {
        self.next_seq += 1;
        let id = RequestId::client(conn, self.next_seq);
        self.node.handle_request(self.now, id, request);
        self.pump();
        id
    }

    /// Send on connection 0, complete syncs until answered, return the answer.
    pub fn call(&mut self, request: ApiRequest) -> ApiResponse {
        let id = self.send(0, request);
        // Each sync round can only release work; a few rounds always suffice.
        for _ in 0..4 {
            if let Some(response) = self.take(id) {
                return response;
            }
            self.complete_syncs();
        }
        panic!("request {id:?} was not answered after syncs completed")
    }

    /// Take the response to `id`, if emitted.
    pub fn take(&mut self, id: RequestId) -> Option<ApiResponse> {
        self.responses.remove(&id)
    }

    /// Take the completion of a request answered with no response (an acks=0 produce):
    /// `Some(close)`, where `close` says the connection is to be closed.
    pub fn take_no_response(&mut self, id: RequestId) -> Option<bool> {
        self.unanswered.remove(&id)
    }

    /// Syncs emitted and not completed.
    pub fn pending_syncs(&self) -> &[(u64, SyncMode)] {
        &self.pending_syncs
    }

    /// Make storage durable and report every pending sync complete.
    pub fn complete_syncs(&mut self) {
        let Some(&(sync_id, _)) = self.pending_syncs.last() else {
            return;
        };
        self.storage.sync().expect("MemStorage sync cannot fail");
        self.pending_syncs.clear();
        self.node
            .handle_storage(self.now, Completion::Synced { sync_id });
        self.pump();
    }

    /// Report a storage failure.
    pub fn fail_storage(&mut self, reason: &str) {
        self.node.handle_storage(
            self.now,
            Completion::Failed {
                reason: reason.to_string(),
            },
        );
        self.pump();
    }

    /// Move both clocks forward by `ms` and let the node handle the passage of time.
    pub fn advance_ms(&mut self, ms: u64) {
        self.now = Now::new(self.now.instant.add_ms(ms), self.now.wall_ms + ms as i64);
        self.node.handle_timeout(self.now);
        self.pump();
    }

    /// Power loss: unsynced writes vanish, pending work is forgotten, the node recovers
    /// from what storage kept. Returns how many writes were lost.
    pub fn crash(&mut self) -> usize {
        let lost = self.storage.crash();
        self.rebuild();
        lost
    }

    /// Clean restart: storage is synced first, so nothing is lost.
    pub fn restart(&mut self) {
        self.storage.sync().expect("MemStorage sync cannot fail");
        self.rebuild();
    }

    fn rebuild(&mut self) {
        // A restart takes time: two starts of a node never share a moment, which is what
        // tells the controller this is a new incarnation of the broker.
        self.recover();
        self.start();
    }

    /// Forget what was in flight and rebuild the node from storage, a moment later.
    fn recover(&mut self) {
        self.now = Now::new(self.now.instant.add_ms(1), self.now.wall_ms + 1);
        self.responses.clear();
        self.pending_syncs.clear();
        self.node =
            Node::recover(self.config.clone(), &self.storage, self.now).expect("storage recovers");
        self.node.invariants();
        self.pump();
    }

    /// A data shard (docs/sharding.md) on empty storage, started from shard 0's image:
    /// it serves once a feed says the broker caught up and is unfenced.
    pub fn data_shard(config: NodeConfig, start: MetadataFeed) -> Self {
        let mut harness = SingleNode::unstarted(config);
        harness.peer_out = Some(Vec::new());
        harness.pump();
        harness.feed(start);
        harness
    }

    /// A data shard: hand it a metadata feed and apply what it did.
    pub fn feed(&mut self, feed: MetadataFeed) {
        self.node.handle_metadata_feed(self.now, feed);
        self.pump();
    }

    /// A data shard's restart (after [`SingleNode::crash`]'s or [`SingleNode::restart`]'s
    /// storage step): recover from storage, then start from shard 0's image.
    pub fn restart_data_shard(&mut self, lose_unsynced: bool, start: MetadataFeed) {
        if lose_unsynced {
            self.storage.crash();
        } else {
            self.storage.sync().expect("MemStorage sync cannot fail");
        }
        self.recover();
        self.feed(start);
    }

    /// Apply every queued output, as a driver does. Compaction and upload jobs run at
    /// once, after the outputs that preceded them were applied (a real driver runs them
    /// off its loop), and their completions are handed back once the queue is empty.
    pub fn pump(&mut self) {
        loop {
            let mut done = Vec::new();
            self.apply_outputs(&mut done);
            if done.is_empty() {
                break;
            }
            for completion in done {
                self.node.handle_storage(self.now, completion);
            }
        }
        self.node.invariants();
    }

    fn apply_outputs(&mut self, done: &mut Vec<Completion>) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Compact(job) => {
                    let completion = match crate::cleaner::run_for_driver(&self.storage, &job) {
                        Ok(completion) => completion,
                        Err(error) => Completion::Failed {
                            reason: format!("compaction read failed: {error}"),
                        },
                    };
                    done.push(completion);
                }
                Output::Upload(job) => {
                    done.push(self.remote.upload(&self.storage, &job, self.now.wall_ms));
                }
                Output::DeleteRemote(job) => self.remote.delete(&job),
                Output::SweepRemote(job) => self.remote.sweep(&job, self.now.wall_ms),
                Output::Storage(op) => self.storage.apply(&op).expect("MemStorage apply"),
                Output::Sync { sync_id, mode } => self.pending_syncs.push((sync_id, mode)),
                Output::Respond { id, mut response } => {
                    let failures = resolve_response(&self.storage, &mut response);
                    assert!(failures.is_empty(), "reads failed: {failures:?}");
                    let failures = self.remote.resolve(&mut response);
                    assert!(failures.is_empty(), "remote reads failed: {failures:?}");
                    let previous = self.responses.insert(id, response);
                    assert!(previous.is_none(), "request {id:?} answered twice");
                }
                Output::NoResponse { id, close } => {
                    let answered = self.responses.contains_key(&id);
                    let previous = self.unanswered.insert(id, close);
                    assert!(
                        previous.is_none() && !answered,
                        "request {id:?} answered twice"
                    );
                }
                Output::Poisoned { reason } => self.poisoned = Some(reason),
                Output::Reroute { id, shard, request } => {
                    self.rerouted.push((id, shard, request));
                }
                Output::Peer { to, message, .. } => match self.peer_out.as_mut() {
                    Some(out) => out.push((to, message)),
                    // A single-node harness has no peers.
                    None => panic!("single node sent a peer message to {to}"),
                },
            }
        }
    }
}

/// One broker of several shards over [`SingleNode`]s (docs/sharding.md), driven as the
/// server drives one: shard 0 runs the metadata quorum, and after each of its steps its
/// metadata feed goes to every data shard. Requests go to the shard the caller names
/// ([`ShardedBroker::shard_for`] says which holds a partition).
#[derive(Debug)]
pub struct ShardedBroker {
    /// Shard 0, then the data shards.
    pub shards: Vec<SingleNode>,
    /// Requests rerouted ([`Output::Reroute`]): `(first shard, id)` -> the shard that
    /// answers.
    rerouted: BTreeMap<(usize, RequestId), usize>,
}

impl ShardedBroker {
    /// A fresh broker of `count` shards (at least 2) configured as `config` otherwise.
    pub fn new(config: NodeConfig, count: u16) -> Self {
        let shard = |index| crate::shard::Shard::new(index, count).expect("index below count");
        let control = SingleNode::new(NodeConfig {
            shard: shard(0),
            ..config.clone()
        });
        let start = control.node.metadata_feed_snapshot();
        let mut control = control;
        control.peer_out = Some(Vec::new());
        let mut shards = vec![control];
        for index in 1..count {
            let config = NodeConfig {
                shard: shard(index),
                ..config.clone()
            };
            shards.push(SingleNode::data_shard(config, start.clone()));
        }
        let mut broker = ShardedBroker {
            shards,
            rerouted: BTreeMap::new(),
        };
        broker.feed();
        broker
    }

    /// Hand what shard 0 applied to every data shard, and every shard's messages to its
    /// own broker to the shard `shard::peer_route` names (the driver's peer routing), until
    /// neither has more. A message for another broker is a bug here: one broker.
    pub fn feed(&mut self) {
        let count = u16::try_from(self.shards.len()).expect("shards fit u16");
        loop {
            let mut moved = false;
            while let Some(feed) = self.shards[0].node.take_metadata_feed() {
                moved = true;
                for shard in &mut self.shards[1..] {
                    shard.feed(feed.clone());
                }
            }
            let node_id = self.shards[0].config.node_id;
            for index in 0..self.shards.len() {
                let out = self.shards[index].peer_out.as_mut().map(std::mem::take);
                for (to, message) in out.unwrap_or_default() {
                    assert_eq!(to, node_id, "a one-broker harness: {message:?}");
                    moved = true;
                    let target = match crate::shard::peer_route(&message, count) {
                        crate::shard::PeerRoute::Shard(shard) => usize::from(shard),
                        crate::shard::PeerRoute::Topic { topic, partition } => {
                            let shard = self.shards[0].node.shard_for(&topic, partition);
                            usize::from(shard.unwrap_or(0))
                        }
                    };
                    let shard = &mut self.shards[target];
                    shard.node.handle_peer(shard.now, node_id, message);
                    shard.pump();
                }
            }
            // After the feeds, as the driver sends them: the target knows the topic.
            for index in 0..self.shards.len() {
                for (id, target, request) in std::mem::take(&mut self.shards[index].rerouted) {
                    moved = true;
                    let target = usize::from(target);
                    assert_ne!(target, index, "a shard rerouted {id:?} to itself");
                    // Once: the target coordinates it, so it answers.
                    self.rerouted.insert((index, id), target);
                    let shard = &mut self.shards[target];
                    shard.node.handle_request(shard.now, id, request);
                    shard.pump();
                }
            }
            if !moved {
                break;
            }
        }
        // Fed to the end, every data shard's image is shard 0's (docs/sharding.md).
        let applied = self.shards[0].node.applied_metadata_index();
        for shard in &self.shards[1..] {
            assert_eq!(
                shard.node.applied_metadata_index(),
                applied,
                "a data shard's image is not shard 0's after a feed"
            );
        }
    }

    /// The shard that holds `topic`-`partition` (shard 0's image).
    pub fn shard_for(&self, topic: &str, partition: i32) -> usize {
        let shard = self.shards[0].node.shard_for(topic, partition);
        usize::from(shard.expect("a partition of the image"))
    }

    /// Send `request` to shard `shard` and return its answer; then feed the data shards.
    pub fn call(&mut self, shard: usize, request: ApiRequest) -> ApiResponse {
        let id = self.shards[shard].send(0, request);
        // Each round completes every shard's syncs and feeds: a request may wait for its
        // own sync, for shard 0 (a topic it asked the controller for), or both.
        for _ in 0..8 {
            self.feed();
            let answers = self.rerouted.get(&(shard, id)).copied().unwrap_or(shard);
            if let Some(response) = self.shards[answers].take(id) {
                self.rerouted.remove(&(shard, id));
                return response;
            }
            for shard in &mut self.shards {
                shard.complete_syncs();
            }
        }
        panic!("request {id:?} to shard {shard} was not answered")
    }

    /// Move every shard's clock forward by `ms`, shard 0 first, then feed.
    pub fn advance_ms(&mut self, ms: u64) {
        for shard in &mut self.shards {
            shard.advance_ms(ms);
        }
        self.feed();
    }

    /// Restart every shard, losing their unsynced writes (`crash`) or not: shard 0 first
    /// (it serves once its quorum of one elected itself), then each data shard from its
    /// image.
    pub fn restart(&mut self, crash: bool) {
        if crash {
            self.shards[0].crash();
        } else {
            self.shards[0].restart();
        }
        let start = self.shards[0].node.metadata_feed_snapshot();
        // Whatever shard 0 kept for a feed before is in that image.
        let _ = self.shards[0].node.take_metadata_feed();
        for shard in &mut self.shards[1..] {
            shard.restart_data_shard(crash, start.clone());
        }
        self.feed();
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::batch::{parse_header, verify_crc};
    use weir_wire::records::decode_records;

    use super::compacted_batch_at;

    // Goal: compacted_batch_at builds what compaction will store: a valid v2 batch keeping
    // its offset span with fewer records (or none) at their original offsets. Method: build
    // sparse, empty and LogAppendTime batches and read them back with weir-wire.
    #[test]
    fn compacted_batches_decode_at_their_offsets() {
        let sparse = compacted_batch_at(10, 4, &[(1, 300), (4, 200)], 300, false);
        assert!(verify_crc(&sparse), "CRC");
        let header = parse_header(&sparse).expect("header");
        assert_eq!(
            (
                header.base_offset,
                header.last_offset(),
                header.record_count
            ),
            (10, 14, 2)
        );
        assert_eq!(header.size_bytes(), sparse.len());
        let records = decode_records(sparse).expect("decodes");
        let read: Vec<(i64, i64)> = records.iter().map(|r| (r.offset, r.timestamp)).collect();
        assert_eq!(read, vec![(11, 300), (14, 200)]);
        assert_eq!(records[1].value.as_deref(), Some(&b"v4"[..]));

        let empty = compacted_batch_at(20, 2, &[], 77, false);
        assert!(verify_crc(&empty), "CRC of an empty batch");
        let header = parse_header(&empty).expect("header");
        assert_eq!((header.last_offset(), header.record_count), (22, 0));
        assert_eq!(header.max_timestamp, 77);
        assert!(decode_records(empty).expect("decodes").is_empty());

        let stamped = compacted_batch_at(0, 2, &[(2, 5)], 99, true);
        let records = decode_records(stamped).expect("decodes");
        assert_eq!((records[0].offset, records[0].timestamp), (2, 99));
    }
}
