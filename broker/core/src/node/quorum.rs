//! The KIP-853 controller-quorum APIs in cluster mode: DescribeQuorum, AddRaftVoter and
//! RemoveRaftVoter, served by the active controller over the metadata Raft's voter set
//! ([`crate::raft::Raft::propose_add_voter`], [`crate::raft::Raft::propose_remove_voter`]).
//!
//! Routing follows Kafka's brokers (`KafkaApis` forwards all three to the controller): a
//! node that is not the active controller forwards them, or answers NOT_CONTROLLER when it
//! knows of none. A single node is a quorum of one: it describes it, and adding a voter
//! needs a registered broker to add (it has no peers, so none is).
//!
//! Invariants:
//! - An AddRaftVoter/RemoveRaftVoter success is sent only once the voter-set entry is
//!   committed, through the same commit waiters every controller-bound admin answer uses
//!   (`Node::respond_when_applied`): an entry a new leader replaced is answered
//!   NOT_CONTROLLER.

use weir_wire::domain::quorum::{
    AddRaftVoterRequest, DescribeQuorumRequest, DescribeQuorumResponse, QuorumNode,
    QuorumPartition, QuorumTopic, RaftListener, RaftVoterResponse, RemoveRaftVoterRequest,
    ReplicaState, METADATA_TOPIC,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use super::Node;
use crate::event::RequestId;
use crate::raft::ChangeVotersError;

/// The listener name DescribeQuorum gives Weir's peer (controller) listener.
const CONTROLLER_LISTENER: &str = "CONTROLLER";

impl Node {
    /// DescribeQuorum: the metadata Raft as the active controller sees it.
    pub(super) fn describe_quorum(&mut self, id: RequestId, request: DescribeQuorumRequest) {
        if self.not_controller(id, &ApiRequest::DescribeQuorum(request.clone())) {
            return;
        }
        let cluster = &*self.cluster;
        let raft = &cluster.meta.raft;
        let replica = |replica_id: i32| {
            let log_end = if replica_id == self.config.node_id {
                Some(raft.last_index())
            } else {
                raft.match_index(replica_id)
            };
            ReplicaState {
                replica_id,
                directory_id: uuid::Uuid::nil(),
                log_end_offset: log_end.map_or(-1, |index| index as i64),
                // Weir's Raft keeps no wall-clock fetch times.
                last_fetch_timestamp: -1,
                last_caught_up_timestamp: -1,
            }
        };
        let state = QuorumPartition {
            partition: 0,
            error: ErrorCode::NONE,
            error_message: None,
            leader_id: raft.leader().unwrap_or(-1),
            leader_epoch: i32::try_from(raft.term()).unwrap_or(i32::MAX),
            high_watermark: raft.commit_index() as i64,
            current_voters: raft.voters().iter().map(|v| replica(*v)).collect(),
            observers: raft.learners().iter().map(|l| replica(*l)).collect(),
        };
        let topics = (request.topics.iter())
            .map(|topic| QuorumTopic {
                name: topic.name.clone(),
                partitions: (topic.partitions.iter())
                    .map(|partition| {
                        if topic.name == METADATA_TOPIC && *partition == 0 {
                            state.clone()
                        } else {
                            unknown_partition(*partition)
                        }
                    })
                    .collect(),
            })
            .collect();
        let nodes = (raft.voters().iter())
            .map(|voter| QuorumNode {
                node_id: *voter,
                listeners: self.controller_listener(*voter).into_iter().collect(),
            })
            .collect();
        let response = DescribeQuorumResponse {
            error: ErrorCode::NONE,
            error_message: None,
            topics,
            nodes,
        };
        self.respond(id, ApiResponse::DescribeQuorum(response));
    }

    /// AddRaftVoter: make a node that follows the metadata log (a registered broker, which
    /// the controller replicates to as a learner) a voter. Answered once committed.
    pub(super) fn add_raft_voter(&mut self, id: RequestId, request: AddRaftVoterRequest) {
        let answer = |error, message: &str| {
            ApiResponse::AddRaftVoter(RaftVoterResponse::error(error, Some(message)))
        };
        if let Some(refusal) = self.refuse_voter_change(request.cluster_id.as_deref()) {
            self.respond(id, answer(refusal.0, &refusal.1));
            return;
        }
        if self.not_controller(id, &ApiRequest::AddRaftVoter(request.clone())) {
            return;
        }
        let voter = request.voter_id;
        // A voter already is refused as DUPLICATE_VOTER by Raft, whatever its endpoints.
        let voting = self.cluster.meta.raft.voters().contains(&voter);
        let checked = if voting {
            Ok(())
        } else {
            self.check_endpoints(voter, &request.listeners)
        };
        if let Err(message) = checked {
            self.respond(id, answer(ErrorCode::INVALID_REQUEST, &message));
            return;
        }
        let cluster = &mut *self.cluster;
        // A voter-set entry is a proposal like a record's: later decisions build on it.
        cluster.meta.start_decisions();
        match cluster.meta.raft.propose_add_voter(voter) {
            Ok(index) => {
                let answer = RaftVoterResponse::error(ErrorCode::NONE, None);
                self.respond_when_applied(id, index, ApiResponse::AddRaftVoter(answer));
            }
            Err(error) => {
                let response = answer(change_error_code(error), &error.to_string());
                self.respond(id, response);
            }
        }
    }

    /// RemoveRaftVoter: drop a voter (possibly this controller, which then steps down once
    /// the change commits). Answered once committed.
    pub(super) fn remove_raft_voter(&mut self, id: RequestId, request: RemoveRaftVoterRequest) {
        let answer = |error, message: &str| {
            ApiResponse::RemoveRaftVoter(RaftVoterResponse::error(error, Some(message)))
        };
        if let Some(refusal) = self.refuse_voter_change(request.cluster_id.as_deref()) {
            self.respond(id, answer(refusal.0, &refusal.1));
            return;
        }
        if self.not_controller(id, &ApiRequest::RemoveRaftVoter(request.clone())) {
            return;
        }
        let cluster = &mut *self.cluster;
        cluster.meta.start_decisions();
        match cluster.meta.raft.propose_remove_voter(request.voter_id) {
            Ok(index) => {
                let answer = RaftVoterResponse::error(ErrorCode::NONE, None);
                self.respond_when_applied(id, index, ApiResponse::RemoveRaftVoter(answer));
            }
            Err(error) => {
                let response = answer(change_error_code(error), &error.to_string());
                self.respond(id, response);
            }
        }
    }

    /// Why a voter change cannot even be routed: a foreign cluster id, or
    /// too many answers waiting already.
    fn refuse_voter_change(&self, cluster_id: Option<&str>) -> Option<(ErrorCode, String)> {
        let cluster = &*self.cluster;
        if let Some(requested) = cluster_id.filter(|c| *c != self.config.cluster_id) {
            let message = format!(
                "cluster id {requested} is not this cluster's ({})",
                self.config.cluster_id
            );
            return Some((ErrorCode::INCONSISTENT_CLUSTER_ID, message));
        }
        if cluster.controller.commit_waiters.is_full() {
            let message = "too many changes waiting to commit; retry later";
            return Some((ErrorCode::REQUEST_TIMED_OUT, message.into()));
        }
        None
    }

    /// The new voter's endpoints must include the address it registered (the one Weir sends
    /// Raft messages to): a mismatch is a misconfiguration caught before it costs a voter.
    fn check_endpoints(&self, voter: i32, listeners: &[RaftListener]) -> Result<(), String> {
        let cluster = &*self.cluster;
        if listeners.is_empty() {
            return Err("the new voter's endpoints are missing".into());
        }
        let Some(broker) = cluster.meta.image.brokers.get(&voter) else {
            return Err(format!(
                "node {voter} has not registered with the controller; start it with this \
                 cluster's controller.quorum.voters first"
            ));
        };
        let matches = |l: &RaftListener| format!("{}:{}", l.host, l.port) == broker.peer_addr;
        if listeners.iter().any(matches) {
            Ok(())
        } else {
            Err(format!(
                "node {voter} registered controller endpoint {}, not one of the endpoints given",
                broker.peer_addr
            ))
        }
    }

    /// Voter `id`'s controller endpoint, from the static config or its registration.
    fn controller_listener(&self, id: i32) -> Option<RaftListener> {
        let cluster = &*self.cluster;
        let addr = match cluster.config.voter_addr(id) {
            Some(addr) => addr.to_owned(),
            None => cluster.meta.image.brokers.get(&id)?.peer_addr.clone(),
        };
        let (host, port) = addr.rsplit_once(':')?;
        Some(RaftListener {
            name: CONTROLLER_LISTENER.into(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: port.parse().ok()?,
        })
    }
}

/// The KIP-853 error code of a refused change (see [`ChangeVotersError`]'s variants).
fn change_error_code(error: ChangeVotersError) -> ErrorCode {
    match error {
        ChangeVotersError::NotLeader(_) => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ChangeVotersError::LeaderNotReady { .. }
        | ChangeVotersError::ChangeInProgress { .. }
        | ChangeVotersError::Throttled { .. }
        | ChangeVotersError::LearnerLagging { .. } => ErrorCode::REQUEST_TIMED_OUT,
        ChangeVotersError::AlreadyVoter { .. } => ErrorCode::DUPLICATE_VOTER,
        ChangeVotersError::NotVoter { .. } => ErrorCode::VOTER_NOT_FOUND,
        ChangeVotersError::UnknownLearner { .. }
        | ChangeVotersError::TooManyVoters
        | ChangeVotersError::LastVoter { .. } => ErrorCode::INVALID_REQUEST,
    }
}

fn unknown_partition(partition: i32) -> QuorumPartition {
    QuorumPartition {
        partition,
        error: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        error_message: Some(format!("only {METADATA_TOPIC}-0 has a quorum")),
        leader_id: -1,
        leader_epoch: -1,
        high_watermark: -1,
        current_voters: Vec::new(),
        observers: Vec::new(),
    }
}
