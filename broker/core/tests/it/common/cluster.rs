//! An in-process cluster of real `Node`s over `MemStorage`, driven in virtual time: every
//! node's outputs are applied as a driver would (storage ops, syncs completed at once,
//! responses resolved and kept, peer messages delivered), in rounds until nothing moves.
//!
//! Faults: `kill` (SIGKILL: the node stops, its peers see its connections close),
//! `restart` (recovery from the node's own storage with its original configuration) and
//! `cut` (a node whose messages are dropped both ways while its timers keep running).
//!
//! Invariant: after every settled round each running node's `invariants()` hold.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use weir_core::cluster::peer::PeerMessage;
use weir_core::cluster::{ClusterConfig, Voter};
use weir_core::resolve::resolve_response;
use weir_core::storage::{MemStorage, Storage};
use weir_core::{Completion, Instant, Node, NodeConfig, Now, Output, RequestId};
use weir_wire::domain::{ApiRequest, ApiResponse};

/// Virtual time step between timer checks.
pub const STEP_MS: u64 = 10;
/// Bound on output/message rounds within one step (a livelock is a bug).
const PUMP_ROUNDS_MAX: usize = 10_000;
/// Longest a `call` waits for its answer.
const CALL_WAIT_MS_MAX: u64 = 30_000;

/// One node of the cluster.
pub struct Member {
    pub config: NodeConfig,
    pub node: Node,
    pub storage: MemStorage,
    responses: BTreeMap<RequestId, ApiResponse>,
}

/// The cluster.
pub struct Cluster {
    pub members: BTreeMap<i32, Member>,
    /// Killed nodes: no input, no timer, no message.
    pub down: BTreeSet<i32>,
    /// Nodes cut off the network: messages to and from them are dropped.
    pub cut: BTreeSet<i32>,
    pub now: Now,
    next_seq: u64,
    /// The object store every node shares (tiered storage); survives crashes.
    pub remote: weir_core::tier::MemObjects,
    /// Nodes a test expects may stop (poison); any other node's poison fails the test.
    pub may_poison: BTreeSet<i32>,
    /// Why each node of `may_poison` that stopped did; it is then down.
    pub poisoned: BTreeMap<i32, String>,
}

/// A node's controller listener address.
pub fn peer_addr(id: i32) -> String {
    format!("n{id}:9093")
}

impl Cluster {
    /// Nodes `ids`, all configured with the static voter set `voters`; `tweak` adjusts
    /// each node's configuration (preferred leader rebalancing is off).
    pub fn new(ids: &[i32], voters: &[i32], tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let voters: Vec<Voter> = (voters.iter())
            .map(|id| Voter {
                id: *id,
                addr: peer_addr(*id),
            })
            .collect();
        let now = Now::new(Instant::from_nanos(1), 1_767_225_600_000);
        let members = (ids.iter())
            .map(|id| {
                let mut cluster = ClusterConfig::new(voters.clone(), peer_addr(*id));
                cluster.auto_leader_rebalance = false;
                let mut config = NodeConfig {
                    node_id: *id,
                    advertised_host: format!("n{id}"),
                    advertised_port: 9092,
                    offsets_topic_num_partitions: 1,
                    cluster: Some(cluster),
                    ..NodeConfig::default()
                };
                tweak(&mut config);
                let storage = MemStorage::new();
                let node =
                    Node::recover(config.clone(), &storage, now).expect("empty storage recovers");
                let member = Member {
                    config,
                    node,
                    storage,
                    responses: BTreeMap::new(),
                };
                (*id, member)
            })
            .collect();
        let mut cluster = Cluster {
            members,
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            now,
            next_seq: 0,
            remote: weir_core::tier::MemObjects::default(),
            may_poison: BTreeSet::new(),
            poisoned: BTreeMap::new(),
        };
        cluster.pump();
        cluster
    }

    /// The nodes not killed.
    pub fn live(&self) -> Vec<i32> {
        (self.members.keys())
            .filter(|id| !self.down.contains(id))
            .copied()
            .collect()
    }

    /// Apply every running node's outputs and deliver peer messages until nothing moves.
    pub fn pump(&mut self) {
        let mut queue: VecDeque<(i32, i32, PeerMessage)> = VecDeque::new();
        let unreachable =
            |cluster: &Cluster, id: i32| cluster.down.contains(&id) || cluster.cut.contains(&id);
        for _ in 0..PUMP_ROUNDS_MAX {
            let mut moved = false;
            for id in self.live() {
                let now = self.now;
                let member = self.members.get_mut(&id).expect("live member");
                let mut synced = None;
                let mut jobs = Vec::new();
                let mut uploads = Vec::new();
                while let Some(output) = member.node.poll_output() {
                    moved = true;
                    match output {
                        Output::Compact(job) => jobs.push(job),
                        Output::Upload(job) => uploads.push(job),
                        Output::DeleteRemote(job) => self.remote.delete(&job),
                        Output::SweepRemote(job) => self.remote.sweep(&job, now.wall_ms),
                        Output::Storage(op) => member.storage.apply(&op).expect("apply"),
                        Output::Sync { sync_id, .. } => synced = Some(sync_id),
                        Output::Respond { id, mut response } => {
                            let failures = resolve_response(&member.storage, &mut response);
                            assert!(failures.is_empty(), "reads failed: {failures:?}");
                            let failures = self.remote.resolve(&mut response);
                            assert!(failures.is_empty(), "remote reads failed: {failures:?}");
                            member.responses.insert(id, response);
                        }
                        Output::Peer {
                            to, mut message, ..
                        } => {
                            message.resolve_reads(&member.storage).expect("peer reads");
                            queue.push_back((id, to, message));
                        }
                        Output::NoResponse { id, .. } => {
                            panic!("the harness sends no acks=0 produce ({id:?})")
                        }
                        Output::Poisoned { reason } if self.may_poison.contains(&id) => {
                            self.poisoned.insert(id, reason);
                        }
                        Output::Poisoned { reason } => panic!("node {id} poisoned: {reason}"),
                        Output::Reroute { id: request, .. } => {
                            panic!("node {id} is one shard; it rerouted {request:?}")
                        }
                    }
                }
                // Compaction jobs run after the outputs before them were applied, as a
                // driver runs them off its loop.
                for job in jobs {
                    let completion = weir_core::cleaner::run_for_driver(&member.storage, &job)
                        .expect("compaction reads MemStorage");
                    member.node.handle_storage(now, completion);
                }
                for job in uploads {
                    let completion = self.remote.upload(&member.storage, &job, now.wall_ms);
                    member.node.handle_storage(now, completion);
                }
                if let Some(sync_id) = synced {
                    member.storage.sync().expect("MemStorage sync cannot fail");
                    member
                        .node
                        .handle_storage(now, Completion::Synced { sync_id });
                    moved = true;
                }
            }
            // A stopped process: nothing more leaves or reaches it.
            for id in self.poisoned.keys() {
                self.down.insert(*id);
            }
            while let Some((from, to, message)) = queue.pop_front() {
                if unreachable(self, from) || unreachable(self, to) {
                    continue;
                }
                let now = self.now;
                let member = self.members.get_mut(&to).expect("known peer");
                member.node.handle_peer(now, from, message);
                moved = true;
            }
            if !moved {
                for id in self.live() {
                    self.members[&id].node.invariants();
                }
                return;
            }
        }
        panic!("outputs kept coming for {PUMP_ROUNDS_MAX} rounds");
    }

    /// Let `ms` of virtual time pass in steps, firing due timers of running nodes.
    pub fn advance_ms(&mut self, ms: u64) {
        for _ in 0..ms.div_ceil(STEP_MS) {
            let instant = self.now.instant.add_ms(STEP_MS);
            self.now = Now::new(instant, self.now.wall_ms + STEP_MS as i64);
            let now = self.now;
            for id in self.live() {
                let member = self.members.get_mut(&id).expect("live member");
                if member
                    .node
                    .poll_timeout()
                    .is_some_and(|at| at <= now.instant)
                {
                    member.node.handle_timeout(now);
                }
            }
            self.pump();
        }
    }

    /// SIGKILL: no message reaches or leaves `id`; the others see its connections close.
    pub fn kill(&mut self, id: i32) {
        self.down.insert(id);
        self.tell_closed(id);
    }

    /// Restart node `id` from its storage with its original configuration (static voters
    /// included); the others see its old connections close.
    pub fn restart(&mut self, id: i32) {
        let now = self.now;
        let member = self.members.get_mut(&id).expect("known node");
        member.node = Node::recover(member.config.clone(), &member.storage, now)
            .expect("a node recovers from its own storage");
        member.responses.clear();
        self.down.remove(&id);
        self.poisoned.remove(&id);
        self.tell_closed(id);
    }

    fn tell_closed(&mut self, id: i32) {
        let now = self.now;
        for other in self.live() {
            if other != id {
                let member = self.members.get_mut(&other).expect("live member");
                member.node.handle_peer_closed(now, id);
            }
        }
        self.pump();
    }

    /// Hand `request` to `to` without delivering anything yet.
    pub fn submit(&mut self, to: i32, request: ApiRequest) -> RequestId {
        self.next_seq += 1;
        let id = RequestId::client(1, self.next_seq);
        let now = self.now;
        let member = self.members.get_mut(&to).expect("known node");
        member.node.handle_request(now, id, request);
        id
    }

    /// Hand `request` to `to` on client connection `conn` (see `authenticate`) and let
    /// time pass until answered (at most 30 s of virtual time).
    pub fn call_on(&mut self, to: i32, conn: u64, request: ApiRequest) -> ApiResponse {
        self.next_seq += 1;
        let id = RequestId::client(conn, self.next_seq);
        let now = self.now;
        let member = self.members.get_mut(&to).expect("known node");
        member.node.handle_request(now, id, request);
        self.pump();
        for _ in 0..(CALL_WAIT_MS_MAX / STEP_MS) {
            if let Some(response) = self.take(to, id) {
                return response;
            }
            self.advance_ms(STEP_MS);
        }
        panic!("node {to} did not answer {id:?}")
    }

    /// Client connection `conn` of every live node is `User:<user>` (as SASL would say).
    pub fn authenticate(&mut self, conn: u64, user: &str) {
        for id in self.live() {
            let member = self.members.get_mut(&id).expect("live member");
            member
                .node
                .handle_authenticated(conn, weir_core::Principal::user(user));
        }
    }

    /// Hand `request` to `to` and settle.
    pub fn send(&mut self, to: i32, request: ApiRequest) -> RequestId {
        let id = self.submit(to, request);
        self.pump();
        id
    }

    /// The answer to `id` from `at`, if it came.
    pub fn take(&mut self, at: i32, id: RequestId) -> Option<ApiResponse> {
        self.members.get_mut(&at)?.responses.remove(&id)
    }

    /// Send and let time pass until answered (at most 30 s of virtual time).
    pub fn call(&mut self, to: i32, request: ApiRequest) -> ApiResponse {
        let id = self.send(to, request);
        for _ in 0..(CALL_WAIT_MS_MAX / STEP_MS) {
            if let Some(response) = self.take(to, id) {
                return response;
            }
            self.advance_ms(STEP_MS);
        }
        panic!("node {to} did not answer {id:?}")
    }

    /// The coordinator of `key` (`key_type` 0: group, 1: transactional id) as node `asked`
    /// reports it, asking every 100 ms for up to 30 s; never `not`.
    pub fn find_coordinator(
        &mut self,
        asked: i32,
        key_type: i8,
        key: &str,
        not: Option<i32>,
    ) -> i32 {
        for _ in 0..300 {
            let request = ApiRequest::FindCoordinator(weir_wire::domain::FindCoordinatorRequest {
                key_type,
                keys: vec![key.into()],
            });
            if let ApiResponse::FindCoordinator(r) = self.call(asked, request) {
                let found = &r.coordinators[0];
                if found.error.is_ok() && Some(found.node_id) != not {
                    return found.node_id;
                }
            }
            self.advance_ms(100);
        }
        panic!("no coordinator of {key} within 30 s")
    }

    /// The active controller as every live node agrees on it, waiting up to 20 s.
    pub fn agreed_controller(&mut self) -> i32 {
        for _ in 0..200 {
            let live = self.live();
            let seen: Vec<Option<i32>> = (live.iter())
                .map(|id| self.members[id].node.controller_id())
                .collect();
            if let Some(Some(id)) = seen.first() {
                if seen.iter().all(|s| *s == Some(*id)) && live.contains(id) {
                    return *id;
                }
            }
            self.advance_ms(100);
        }
        panic!("no agreed controller within 20 s")
    }

    /// The live leader of `topic`-0 as node `at`'s image has it.
    pub fn leader_of(&self, topic: &str, at: i32) -> Option<i32> {
        let (leader, _, _) = self.members[&at].node.partition_leadership(topic, 0)?;
        (leader >= 0 && !self.down.contains(&leader)).then_some(leader)
    }

    /// Wait (up to 30 s) until a live broker leads `topic`-0 (as a role too) with the whole
    /// of `isr` in sync; its id.
    pub fn settle(&mut self, topic: &str, isr: &[i32]) -> i32 {
        for _ in 0..300 {
            let at = self.live()[0];
            if let Some(leader) = self.leader_of(topic, at) {
                let (_, _, in_sync) = (self.members[&at].node)
                    .partition_leadership(topic, 0)
                    .expect("partition");
                let leads = self.members[&leader].node.leads(topic, 0);
                if isr.iter().all(|id| in_sync.contains(id)) && leads {
                    return leader;
                }
            }
            self.advance_ms(100);
        }
        panic!("no leader of {topic} with ISR {isr:?}")
    }

    /// Create `topic` through node `at`, retrying (up to 20 s) until it is created.
    pub fn create(&mut self, at: i32, topic: weir_wire::domain::CreatableTopic) {
        let create = ApiRequest::CreateTopics(weir_wire::domain::CreateTopicsRequest {
            topics: vec![topic],
            timeout_ms: 30_000,
            validate_only: false,
        });
        for _ in 0..100 {
            let ApiResponse::CreateTopics(created) = self.call(at, create.clone()) else {
                panic!("CreateTopics answer expected")
            };
            if created.topics[0].error.is_ok() {
                return;
            }
            self.advance_ms(200);
        }
        panic!("topic not created")
    }

    /// Create one-partition `topic` through node `at` on exactly `replicas` (the first
    /// is the preferred leader) and wait until it leads with all of them in sync; the
    /// leader.
    pub fn create_placed(&mut self, at: i32, topic: &str, replicas: &[i32]) -> i32 {
        self.create(
            at,
            weir_wire::domain::CreatableTopic {
                name: topic.into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![(0, replicas.to_vec())],
                configs: Vec::new(),
            },
        );
        self.settle(topic, replicas)
    }

    /// Produce `batch` to `topic`-0 at `leader` with acks=all, retrying (up to 5 s) until
    /// acknowledged; its base offset.
    pub fn write(&mut self, leader: i32, topic: &str, batch: bytes::Bytes) -> i64 {
        for _ in 0..50 {
            let request = super::produce(topic, 0, batch.clone(), -1);
            let ApiResponse::Produce(response) = self.call(leader, request) else {
                panic!("Produce answer expected")
            };
            let result = &response.topics[0].partitions[0];
            if result.error.is_ok() {
                return result.base_offset;
            }
            self.advance_ms(100);
        }
        panic!("write to {topic} not acknowledged")
    }

    /// Every record `at` serves of `topic`-0 from offset 0 to its high watermark.
    pub fn read_all(&mut self, at: i32, topic: &str) -> Vec<weir_wire::records::Record> {
        self.read_from(at, topic, 0)
    }

    /// Every record `at` serves of `topic`-0 from offset `from` to its high watermark.
    pub fn read_from(
        &mut self,
        at: i32,
        topic: &str,
        from: i64,
    ) -> Vec<weir_wire::records::Record> {
        let mut out = Vec::new();
        let mut offset = from;
        loop {
            let response = self.call(at, super::fetch(topic, 0, offset, 0, 1));
            let ApiResponse::Fetch(fetched) = &response else {
                panic!("Fetch answer expected")
            };
            let partition = &fetched.topics[0].partitions[0];
            assert!(partition.error.is_ok(), "offset {offset}: {partition:?}");
            let records = super::fetched_records(&response);
            let Some(last) = records.last() else {
                return out;
            };
            offset = last.offset + 1;
            out.extend(records);
            if offset >= partition.high_watermark {
                return out;
            }
        }
    }
}
