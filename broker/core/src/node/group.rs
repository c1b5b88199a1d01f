//! Consumer-group requests: routing to the [`GroupCoordinator`], and the offsets it
//! decides written to `__consumer_offsets` through the normal log.
//!
//! Protocol, as a client sees it: FindCoordinator names the broker that owns the group (the
//! leader of the group's partition of `__consumer_offsets`, `abs(hash(group)) % n`); then
//! either the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup; the state
//! machine is in [`crate::group`]) or KIP-848's ConsumerGroupHeartbeat
//! ([`crate::group::consumer_group`]); OffsetCommit / OffsetFetch in both. The coordinator
//! decides, this module does the IO-shaped part: it appends what was decided and releases
//! the answer when the append is safe.
//!
//! Why an answer waits for durability: a client that was told "committed" resumes from that
//! offset after any failure, and a member that was handed an assignment consumes it; if a
//! restart or a new coordinator did not know the commit or the generation, records would be
//! consumed twice or two members would own one partition. So the append comes first, the
//! in-memory state second, and the answer third, released by the sync that covers the
//! append (and in a cluster by the ISR acknowledging it).
//!
//! Invariants: an OffsetCommit, DeleteGroups or OffsetDelete that wrote records is answered
//! only after the sync covering them (durability like acks=all produce); the coordinator's
//! in-memory offsets are updated when the records are appended, so OffsetFetch reads the
//! latest commit (as Kafka's cache does once its append completes); recovery replays the
//! topic, latest record per key winning. Creation, appends and compaction of the topic are
//! shared with `__transaction_state` (`node/internal.rs`).
//!
//! Group metadata records ([`MetadataWrite`]) go through the same append. One that completes
//! a rebalance parks a marker response under a request id of its own
//! ([`Origin::GroupWrite`]) exactly as an OffsetCommit's answer is parked (sync, and in a
//! cluster the ISR); when the marker is released, timed out or failed, `respond` hands its
//! outcome to the coordinator at the end of the input (`finish_group_writes`), which then
//! answers the group's SyncGroups. So SyncGroup answers are released exactly when an
//! OffsetCommit appended at the same moment would be.

use weir_wire::domain::{
    coordinator_type, ApiRequest, ApiResponse, ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest, Coordinator, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest,
    OffsetCommitRequest, OffsetCommitResponse, OffsetCommitTopicResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchGroupResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupResponse,
};
use weir_wire::error::ErrorCode;
use weir_wire::records::Record;

use super::internal::replay_internal_batches;
use super::Node;
use crate::event::{Origin, RequestId};
use crate::group::consumer_group::{TopicInfo, TopicView};
use crate::group::offsets_log::{self, OFFSETS_TOPIC};
use crate::group::{
    CommitCheck, CommittedOffset, MetadataWrite, GROUPS_MAX, OFFSET_METADATA_BYTES_MAX,
};
use crate::storage::{Storage, StorageError};
use crate::time::Now;
use crate::topic::PartitionId;

/// Rounds of [`Node::drain_group_outputs`]: a write's failure can make the coordinator
/// answer and write once more (an abandoned rebalance that empties the group), never more.
const GROUP_DRAIN_ROUNDS_MAX: usize = 4;

/// Group metadata writes waiting to become durable, by marker id: `(group, generation)`.
pub(super) type GroupWrites = std::collections::BTreeMap<RequestId, (String, i32)>;

/// The group requests are routed by `Node::dispatch_request`, which ends every input with
/// [`Node::drain_group_outputs`], so the coordinator's answers and records leave in the
/// same input that produced them (records before answers: see the module doc).
impl Node {
    /// ListGroups: every group this node coordinates.
    pub(super) fn list_groups(&mut self, id: RequestId, request: ListGroupsRequest) {
        let response = self.groups.list_groups(&request);
        self.respond(id, ApiResponse::ListGroups(response));
    }

    /// DescribeGroups of classic groups.
    pub(super) fn describe_groups(&mut self, id: RequestId, request: DescribeGroupsRequest) {
        let response = self.groups.describe_groups(&request);
        self.respond(id, ApiResponse::DescribeGroups(response));
    }

    /// KIP-848's heartbeat: the assignor sees the current topics.
    pub(super) fn consumer_group_heartbeat(
        &mut self,
        now: Now,
        id: RequestId,
        request: ConsumerGroupHeartbeatRequest,
    ) {
        let topics = self.topic_view();
        self.groups.consumer_heartbeat(now, id, request, &topics);
    }

    /// KIP-848's describe.
    pub(super) fn consumer_group_describe(
        &mut self,
        id: RequestId,
        request: ConsumerGroupDescribeRequest,
    ) {
        let topics = self.topic_view();
        let response = self.groups.consumer_group_describe(&request, &topics);
        self.respond(id, ApiResponse::ConsumerGroupDescribe(response));
    }

    /// Every topic by name with its id and partition count, for KIP-848 assignors
    /// (internal topics are never assigned). Built per heartbeat: a topic created or grown
    /// since the last one changes the group's metadata, which moves its epoch and makes the
    /// assignor hand out the new partitions.
    fn topic_view(&self) -> TopicView {
        (self.topics.values())
            .filter(|t| !crate::topic::is_internal_topic(&t.name))
            .map(|t| {
                let partitions = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                (
                    t.name.clone(),
                    TopicInfo {
                        id: t.id,
                        partitions,
                    },
                )
            })
            .collect()
    }

    /// Write the coordinator's metadata records and move its answers to the node's outputs.
    /// Records first: an answer that depends on a record (a SyncGroup) is parked on that
    /// record's marker, so it cannot overtake it, and an answer that does not depend on one
    /// loses nothing by waiting for the appends of the same round.
    pub(super) fn drain_group_outputs(&mut self, now: Now) {
        for _ in 0..GROUP_DRAIN_ROUNDS_MAX {
            let writes = self.groups.take_metadata_writes();
            let responses = self.groups.take_responses();
            if writes.is_empty() && responses.is_empty() {
                return;
            }
            // Records before answers (see above); each kept in the coordinator's order.
            for write in writes {
                self.write_group_metadata(now, write);
            }
            for (id, response) in responses {
                self.respond(id, response);
            }
        }
        // Past the bound a write still coming would mean failed writes and rebalances feeding
        // each other without end: a bug, not a load to wait out.
        let left = self.groups.take_metadata_writes().len();
        assert_eq!(
            left, 0,
            "group writes still coming after {GROUP_DRAIN_ROUNDS_MAX} rounds"
        );
        for (id, response) in self.groups.take_responses() {
            self.respond(id, response);
        }
        // Answering writes nothing back into the coordinator, so its queues stay empty.
        assert!(
            !self.groups.has_outputs(),
            "group outputs left after a drain"
        );
    }

    /// Append one group metadata record to the group's offsets partition; one that completes
    /// a rebalance parks a marker until it is durable (module doc).
    fn write_group_metadata(&mut self, now: Now, write: MetadataWrite) {
        let MetadataWrite {
            group_id,
            record,
            completes_generation,
        } = write;
        if let Some(generation_id) = completes_generation {
            // Only a rebalance's record completes a generation, and it names that generation:
            // the SyncGroups released by this write hand out exactly what it stores.
            let stored = record.as_ref().map(|r| r.generation_id);
            assert_eq!(stored, Some(generation_id), "group {group_id}");
        }
        // `None` encodes as a null value: the group's tombstone.
        let value = record.as_ref().map(offsets_log::group_value);
        let records = [Record {
            offset: 0,
            timestamp: now.wall_ms,
            key: Some(offsets_log::group_key(&group_id)),
            value,
            headers: Vec::new(),
        }];
        // A rebalance's record needs a parked marker; with no room for one, the write fails
        // now and the coordinator makes the group rebalance, rather than hand out an
        // assignment whose record might not be durable. Other records need no marker.
        let full = completes_generation.is_some()
            && (self.sync_waiters.is_full() || self.group_writes.len() >= GROUPS_MAX);
        let appended = if full {
            Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
        } else {
            self.append_offset_records(now, &group_id, &records)
        };
        match (appended, completes_generation) {
            // Appended: what a new coordinator would load from now on (`persisted`).
            (Ok(()), None) => self.groups.metadata_appended(&group_id, record),
            (Ok(()), Some(generation_id)) => {
                self.groups.metadata_appended(&group_id, record);
                // Marker ids have their own origin and sequence, so they never collide with a
                // client's request id.
                self.group_write_seq += 1;
                let id = RequestId {
                    origin: Origin::GroupWrite,
                    seq: self.group_write_seq,
                };
                self.group_writes.insert(id, (group_id, generation_id));
                assert!(self.group_writes.len() <= GROUPS_MAX, "checked by `full`");
                // The marker is parked like an OffsetCommit's answer: released by the same
                // sync (and ISR acknowledgement) that makes the record durable.
                let marker = ApiResponse::SyncGroup(SyncGroupResponse {
                    error: ErrorCode::NONE,
                    ..SyncGroupResponse::default()
                });
                self.respond_when_durable(id, marker, None);
            }
            // A record that completes nothing (an Empty group, a static member's new id) can
            // be lost: the next coordinator loads an older membership, whose members rejoin.
            (Err(error), None) => {
                tracing::warn!(group = %group_id, error = error.name(), "group record not written");
            }
            // The coordinator hears a failed rebalance write at once and rebalances again;
            // the SyncGroups parked on it learn to find the coordinator.
            (Err(error), Some(generation_id)) => {
                self.groups
                    .metadata_write_done(now, &group_id, generation_id, error);
            }
        }
    }

    /// A marker of a group metadata write was released (`respond`): remember its outcome
    /// for [`Node::finish_group_writes`]. False when `id` is not such a marker.
    pub(super) fn intercept_group_write(&mut self, id: RequestId, response: &ApiResponse) -> bool {
        if id.origin != Origin::GroupWrite {
            return false;
        }
        assert!(
            id.seq <= self.group_write_seq,
            "marker {id:?} never handed out"
        );
        // The outcome is only recorded here; the coordinator hears it at the end of the
        // input, because `respond` runs inside other handlers (`drain_group_outputs` among
        // them), and calling back into the coordinator there would interleave its new
        // answers and records with the ones being drained.
        if let Some((group_id, generation_id)) = self.group_writes.remove(&id) {
            // The marker was parked as a SyncGroup answer, so its error is the write's outcome
            // (NONE once durable). Any other shape is a bug, reported as UNKNOWN_SERVER_ERROR,
            // which makes the coordinator rebalance rather than hand out the assignment.
            let error = match response {
                ApiResponse::SyncGroup(r) => r.error,
                _ => ErrorCode::UNKNOWN_SERVER_ERROR,
            };
            self.group_write_results
                .push((group_id, generation_id, error));
        }
        true
    }

    /// Hand the outcomes of group metadata writes released during this input to the
    /// coordinator (which answers the SyncGroups waiting on them). Runs at the end of every
    /// input, before its sync is emitted.
    pub(super) fn finish_group_writes(&mut self, now: Now) {
        if self.group_write_results.is_empty() {
            return;
        }
        let results = std::mem::take(&mut self.group_write_results);
        // A poisoned node lost its unsynced writes; telling the coordinator "done" would
        // hand out assignments whose records may be gone.
        if self.poisoned.is_some() {
            return; // Nothing is answered any more.
        }
        for (group_id, generation_id, error) in results {
            // Generations handed out start at 1 (0 is a group that never rebalanced).
            assert!(
                generation_id >= 1,
                "group {group_id} generation {generation_id}"
            );
            self.groups
                .metadata_write_done(now, &group_id, generation_id, error);
        }
        // The released SyncGroup answers (and any rebalance's records) leave in this input.
        self.drain_group_outputs(now);
    }

    /// FindCoordinator: the leader of the key's internal partition coordinates it (a
    /// single node leads them all); an unknown or dead leader is COORDINATOR_NOT_AVAILABLE
    /// (the client asks again), never a guess that would send it to a broker that refuses
    /// it.
    pub(super) fn find_coordinator(&mut self, id: RequestId, request: FindCoordinatorRequest) {
        let coordinators = (request.keys.iter())
            .map(|key| {
                // Group and transaction coordinators only; another key type (e.g. share groups)
                // is answered unavailable, not as a malformed request.
                let served = request.key_type == coordinator_type::GROUP
                    || request.key_type == coordinator_type::TRANSACTION;
                let (error, message) = if !served {
                    let message = "unknown coordinator type";
                    (ErrorCode::COORDINATOR_NOT_AVAILABLE, Some(message.into()))
                } else if key.is_empty() {
                    (ErrorCode::INVALID_REQUEST, Some("empty group id".into()))
                } else {
                    (ErrorCode::NONE, None)
                };
                let mut node = (
                    self.config.node_id,
                    self.config.advertised_host.clone(),
                    self.config.advertised_port,
                );
                let (mut error, mut message) = (error, message);
                // The coordinator is the leader of the key's partition of `__consumer_offsets` or
                // `__transaction_state`, by the same hash as `offsets_log::partition_for`.
                if error.is_ok() {
                    let transaction = request.key_type == coordinator_type::TRANSACTION;
                    let found = self.coordinator_for(key, transaction).ok();
                    match found.and_then(|c| self.live_broker(c)) {
                        Some(found) => node = found,
                        None => {
                            error = ErrorCode::COORDINATOR_NOT_AVAILABLE;
                            message = Some("the coordinator is not available".into());
                        }
                    }
                }
                // On error the node fields are the "none" values (-1, ""), so a client never
                // connects to a broker from a failed answer.
                let ok = error.is_ok();
                Coordinator {
                    key: key.clone(),
                    node_id: if ok { node.0 } else { -1 },
                    host: if ok { node.1 } else { String::new() },
                    port: if ok { node.2 } else { -1 },
                    error,
                    error_message: message,
                }
            })
            .collect::<Vec<Coordinator>>();
        assert_eq!(coordinators.len(), request.keys.len(), "one answer per key");
        let response = FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators,
        };
        self.respond(id, ApiResponse::FindCoordinator(response));
    }

    /// OffsetCommit: check membership, append the offsets to the group's partition of
    /// `__consumer_offsets`, answer once durable. The membership check is what stops a
    /// member of an old generation (whose partitions were handed on) from moving a new
    /// owner's offset back; a commit from outside the group is allowed only while it is
    /// Empty (generation -1), as in Kafka.
    pub(super) fn offset_commit(&mut self, now: Now, id: RequestId, request: OffsetCommitRequest) {
        let check = self.groups.check_commit(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        let count: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        // A membership refusal wins over a busy node: a fenced member must learn it is
        // fenced (and rejoin), not retry a retriable code under a generation that is gone.
        let refusal = match check {
            CommitCheck::Refuse(error) => Some(error),
            _ if self.sync_waiters.is_full() => Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            _ if !self.groups.has_room_for_offsets(&request.group_id, count) => {
                Some(ErrorCode::OFFSET_METADATA_TOO_LARGE)
            }
            CommitCheck::Accept => None,
        };
        let mut accepted = Vec::new();
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                let committed = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.metadata.clone().unwrap_or_default(),
                    commit_timestamp: now.wall_ms,
                };
                let key = (topic.name.clone(), p.partition);
                let checked = self.offset_record(refusal, &request.group_id, &key, &committed);
                let error = match checked {
                    Ok(record) => {
                        records.push(record);
                        accepted.push((key, committed));
                        ErrorCode::NONE
                    }
                    Err(error) => error,
                };
                partitions.push((p.partition, error));
            }
            topics.push(OffsetCommitTopicResponse {
                name: topic.name.clone(),
                partitions,
            });
        }
        // A refused commit writes nothing; an accepted partition is one record.
        assert!(
            refusal.is_none() || records.is_empty(),
            "refused commit wrote records"
        );
        assert_eq!(accepted.len(), records.len(), "group {}", request.group_id);
        let mut response = OffsetCommitResponse {
            throttle_time_ms: 0,
            topics,
        };
        // Nothing accepted, nothing written: the answer carries only errors, so it needs
        // no sync.
        if records.is_empty() {
            self.respond(id, ApiResponse::OffsetCommit(response));
            return;
        }
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): the commit is
        // answered and kept in memory but never written to `__consumer_offsets`, so a
        // coordinator restart loses it and the group's committed offset goes backwards.
        if crate::planted::on(crate::planted::Bug::LoseOffsetCommit) {
            self.groups
                .commit(now, &request.group_id, &request.member_id, accepted);
            self.respond(id, ApiResponse::OffsetCommit(response));
            return;
        }
        // Append before the in-memory update and the answer (module doc): OffsetFetch may
        // then show a commit a crash would lose only while its OffsetCommit is unanswered.
        if let Err(error) = self.append_offset_records(now, &request.group_id, &records) {
            // One batch failed as a whole: every partition that would have committed reports
            // the error, and nothing reached memory.
            for topic in &mut response.topics {
                for (_, e) in &mut topic.partitions {
                    if e.is_ok() {
                        *e = error;
                    }
                }
            }
            self.respond(id, ApiResponse::OffsetCommit(response));
            return;
        }
        // Memory after the append, the answer after the sync (module doc).
        self.groups
            .commit(now, &request.group_id, &request.member_id, accepted);
        self.respond_when_durable(id, ApiResponse::OffsetCommit(response), None);
    }

    /// OffsetFetch, from memory. With `require_stable`, partitions an open transaction will
    /// commit answer UNSTABLE_OFFSET_COMMIT (the client retries). Memory may hold a commit
    /// whose sync is still in flight; its OffsetCommit is not yet answered, so no client has
    /// been told it is durable, and a crash rolls both back together.
    pub(super) fn offset_fetch(&mut self, id: RequestId, request: OffsetFetchRequest) {
        let groups: Vec<OffsetFetchGroupResponse> = (request.groups.iter())
            .map(|g| {
                // An empty id names no group: INVALID_GROUP_ID for that entry only; the other
                // groups of the request are answered.
                if g.group_id.is_empty() {
                    return OffsetFetchGroupResponse {
                        group_id: g.group_id.clone(),
                        topics: Vec::new(),
                        error: ErrorCode::INVALID_GROUP_ID,
                    };
                }
                self.groups.fetch_offsets(g)
            })
            .collect();
        assert_eq!(groups.len(), request.groups.len(), "one answer per group");
        let mut response = OffsetFetchResponse {
            throttle_time_ms: 0,
            groups,
        };
        // KIP-447: with `require_stable`, offsets an open transaction will replace are
        // flagged UNSTABLE_OFFSET_COMMIT so the client retries instead of using them.
        self.mark_unstable_offsets(&request, &mut response);
        self.respond(id, ApiResponse::OffsetFetch(response));
    }

    /// DeleteGroups: only Empty groups; their offsets get tombstones (and the group's
    /// metadata record one, when it has a record). Tombstones rather than forgetting: the
    /// records are in the log, and recovery or a new coordinator would bring the group back.
    pub(super) fn delete_groups(&mut self, now: Now, id: RequestId, request: DeleteGroupsRequest) {
        let mut results = Vec::with_capacity(request.groups.len());
        let mut wrote = false;
        for group_id in &request.groups {
            let error = match self.groups.check_delete(group_id) {
                Err(error) => error,
                // The answer must wait for the tombstones' sync; with no room to park it, nothing
                // is written and the client retries.
                Ok(_) if self.sync_waiters.is_full() => ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                Ok(keys) => {
                    let with_group = self.groups.has_metadata_record(group_id);
                    let result = self.write_tombstones(now, group_id, &keys, with_group);
                    match result {
                        Ok(written) => {
                            wrote |= written;
                            // The tombstones are queued first, so a restart that replays
                            // them agrees with the group being gone now.
                            self.groups.delete_group(group_id);
                            assert!(self.groups.state(group_id).is_none(), "{group_id} kept");
                            ErrorCode::NONE
                        }
                        Err(error) => error,
                    }
                }
            };
            results.push((group_id.clone(), error));
        }
        assert_eq!(results.len(), request.groups.len(), "one answer per group");
        let response = ApiResponse::DeleteGroups(DeleteGroupsResponse {
            throttle_time_ms: 0,
            results,
        });
        // Only written tombstones need a sync before the answer: a group with no records
        // had nothing to erase.
        if wrote {
            self.respond_when_durable(id, response, None);
        } else {
            self.respond(id, response);
        }
    }

    /// OffsetDelete: refused for topics the group's members subscribe to, since a member
    /// would commit again right away (or, worse, restart from the reset policy mid-stream).
    pub(super) fn offset_delete(&mut self, now: Now, id: RequestId, request: OffsetDeleteRequest) {
        // An unknown group fails the whole request with GROUP_ID_NOT_FOUND.
        let Some(subscribed) = self.groups.subscribed_topics(&request.group_id) else {
            let response = OffsetDeleteResponse {
                error: ErrorCode::GROUP_ID_NOT_FOUND,
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
            self.respond(id, ApiResponse::OffsetDelete(response));
            return;
        };
        let mut keys = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for (topic, partitions) in &request.topics {
            let results = (partitions.iter())
                .map(|p| {
                    // KIP-496: a partition of a subscribed topic is refused alone; the
                    // request's other partitions are still deleted.
                    let error = if subscribed.contains(topic) {
                        ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                    } else if self.partition_exists(topic, *p).is_none() {
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        keys.push((topic.clone(), *p));
                        ErrorCode::NONE
                    };
                    (*p, error)
                })
                .collect();
            topics.push((topic.clone(), results));
        }
        let (error, wrote) = if self.sync_waiters.is_full() {
            (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, false)
        } else {
            match self.write_tombstones(now, &request.group_id, &keys, false) {
                Ok(wrote) => (ErrorCode::NONE, wrote),
                Err(error) => (error, false),
            }
        };
        // Memory forgets the offsets only once their tombstones are appended, the same order
        // as OffsetCommit's.
        if error.is_ok() {
            self.groups.delete_offsets(&request.group_id, &keys);
            debug_assert!(
                (self.groups.committed(&request.group_id).iter()).all(|(k, _)| !keys.contains(k)),
                "group {}: deleted offsets still committed",
                request.group_id
            );
        }
        let response = ApiResponse::OffsetDelete(OffsetDeleteResponse {
            error,
            throttle_time_ms: 0,
            // On a request-level error no partition was acted on, so none is listed.
            topics: if error.is_ok() { topics } else { Vec::new() },
        });
        if wrote {
            self.respond_when_durable(id, response, None);
        } else {
            self.respond(id, response);
        }
    }

    /// Tombstones for the committed offsets of `keys` that exist (and for the group's
    /// metadata record when `with_group`); true if any was written. A key with nothing
    /// committed gets none: a tombstone for a record that never existed only costs space.
    fn write_tombstones(
        &mut self,
        now: Now,
        group_id: &str,
        keys: &[(String, i32)],
        with_group: bool,
    ) -> Result<bool, ErrorCode> {
        let committed: Vec<(String, i32)> = (self.groups.committed(group_id).into_iter())
            .map(|(key, _)| key)
            .filter(|key| keys.contains(key))
            .collect();
        let tombstone = |key| Record {
            offset: 0,
            timestamp: now.wall_ms,
            key: Some(key),
            value: None,
            headers: Vec::new(),
        };
        let mut records: Vec<Record> = (committed.iter())
            .map(|(topic, partition)| {
                tombstone(offsets_log::offset_key(group_id, topic, *partition))
            })
            .collect();
        // The group's metadata record goes too, or recovery would bring the group back.
        if with_group {
            records.push(tombstone(offsets_log::group_key(group_id)));
        }
        assert_eq!(records.len(), committed.len() + usize::from(with_group));
        // Nothing to erase: no append, and the caller need not wait for a sync.
        if records.is_empty() {
            return Ok(false);
        }
        self.append_offset_records(now, group_id, &records)?;
        Ok(true)
    }

    /// `Some` when the topic has this partition: offsets are only stored for real ones, so a
    /// client's typo cannot fill the group's bounded offset table.
    /// The record of one partition of an offset commit (plain or transactional), or why
    /// that partition is refused: the whole request's `refusal` first; otherwise an unknown
    /// partition (its record would be one nothing reads) or oversized metadata refuses only
    /// this partition, and the others commit.
    pub(super) fn offset_record(
        &self,
        refusal: Option<ErrorCode>,
        group: &str,
        (topic, partition): &(String, i32),
        committed: &CommittedOffset,
    ) -> Result<Record, ErrorCode> {
        if let Some(error) = refusal {
            return Err(error);
        }
        if self.partition_exists(topic, *partition).is_none() {
            return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        if committed.metadata.len() > OFFSET_METADATA_BYTES_MAX {
            return Err(ErrorCode::OFFSET_METADATA_TOO_LARGE);
        }
        Ok(offsets_log::offset_record(
            group, topic, *partition, committed,
        ))
    }

    fn partition_exists(&self, topic: &str, partition: i32) -> Option<()> {
        let index = usize::try_from(partition).ok()?;
        (index < self.topic_by_name(topic)?.partitions.len()).then_some(())
    }

    /// The `__consumer_offsets` partition of `group_id`, creating the topic on first use.
    /// Kafka's mapping (`abs(hash(group_id)) % offsets.topic.num.partitions`), so a group's
    /// offsets and metadata records share one partition and one coordinator.
    pub(super) fn offsets_partition(&mut self, group_id: &str) -> Result<PartitionId, ErrorCode> {
        self.internal_partition(OFFSETS_TOPIC, group_id)
    }

    /// Append `records` as one batch to `group_id`'s offsets partition; the next sync
    /// covers it.
    pub(super) fn append_offset_records(
        &mut self,
        _now: Now,
        group_id: &str,
        records: &[Record],
    ) -> Result<(), ErrorCode> {
        // One batch: a group's commit is all or nothing, in the log as in the answer.
        assert!(!records.is_empty(), "empty append for group {group_id}");
        let key = self.offsets_partition(group_id)?;
        let (topic_id, index) = (key.topic, key.index());
        self.append_internal(topic_id, index, records)
    }

    /// Recovery: rebuild committed offsets and group metadata from `__consumer_offsets`,
    /// replaying in log order so the latest record per key wins, as compaction would keep.
    pub(super) fn recover_group_offsets(
        &mut self,
        storage: &impl Storage,
        now: Now,
    ) -> Result<(), StorageError> {
        let ranges = self.internal_ranges(OFFSETS_TOPIC);
        let groups = &mut self.groups;
        // Batch by batch: transactional offsets wait for their markers (`node/txn_offsets.rs`).
        let replayed = replay_internal_batches(storage, OFFSETS_TOPIC, &ranges, |batch, from| {
            super::txn_offsets::apply_offsets_batch(groups, now, batch, from)
        })?;
        tracing::info!(records = replayed, "replayed {OFFSETS_TOPIC}");
        // Before this point every group is a replayed, uncoordinated copy of its records,
        // running no timer: nobody could have heartbeated to it yet. The node coordinates
        // the groups of the offsets partitions it leads now (none yet at recovery: it takes
        // them over as the image gives it leadership), and their members get a full
        // session from now.
        let Some(topic) = self.topic_by_name(OFFSETS_TOPIC) else {
            return Ok(());
        };
        let topic_id = topic.id;
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let led: Vec<bool> = (0..topic.partitions.len())
            .map(|index| {
                self.serving_epoch(PartitionId::new(topic_id, index))
                    .is_ok()
            })
            .collect();
        // The mapping FindCoordinator uses: a group is taken over exactly when this node
        // leads its partition.
        let owns = |group: &str| {
            let index = offsets_log::partition_for(group, count);
            usize::try_from(index).is_ok_and(|index| led.get(index) == Some(&true))
        };
        let taken = self.groups.take_over(now, owns);
        tracing::info!(groups = taken, "coordinating the recovered groups");
        Ok(())
    }
}

/// The response to a group request with `error` everywhere (poisoned or overloaded node).
/// Each group, member, topic and partition the request names gets its entry, because
/// clients match results to what they asked and a missing one reads as a protocol error.
pub(super) fn group_error_response(request: &ApiRequest, error: ErrorCode) -> ApiResponse {
    use weir_wire::domain::*;
    match request {
        // No coordinator is named: node -1, empty host, port -1.
        ApiRequest::FindCoordinator(r) => ApiResponse::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: (r.keys.iter())
                .map(|key| Coordinator {
                    key: key.clone(),
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                    error,
                    error_message: None,
                })
                .collect(),
        }),
        // The member id is echoed (the client keeps it); generation -1: nothing was joined.
        ApiRequest::JoinGroup(r) => ApiResponse::JoinGroup(JoinGroupResponse {
            error,
            generation_id: -1,
            member_id: r.member_id.clone(),
            ..JoinGroupResponse::default()
        }),
        ApiRequest::SyncGroup(_) => ApiResponse::SyncGroup(SyncGroupResponse {
            error,
            ..SyncGroupResponse::default()
        }),
        ApiRequest::Heartbeat(_) => ApiResponse::Heartbeat(HeartbeatResponse {
            error,
            throttle_time_ms: 0,
        }),
        ApiRequest::LeaveGroup(r) => ApiResponse::LeaveGroup(LeaveGroupResponse {
            error,
            throttle_time_ms: 0,
            members: (r.members.iter())
                .map(|m| LeftMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error,
                })
                .collect(),
        }),
        ApiRequest::OffsetCommit(r) => ApiResponse::OffsetCommit(OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: (r.topics.iter())
                .map(|t| OffsetCommitTopicResponse {
                    name: t.name.clone(),
                    partitions: t.partitions.iter().map(|p| (p.partition, error)).collect(),
                })
                .collect(),
        }),
        ApiRequest::OffsetFetch(r) => ApiResponse::OffsetFetch(OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: (r.groups.iter())
                .map(|g| OffsetFetchGroupResponse {
                    group_id: g.group_id.clone(),
                    topics: Vec::new(),
                    error,
                })
                .collect(),
        }),
        // ListGroups and OffsetDelete carry one top-level error; the others one per entry.
        ApiRequest::ListGroups(_) => ApiResponse::ListGroups(ListGroupsResponse {
            error,
            ..ListGroupsResponse::default()
        }),
        // i32::MIN: authorized operations were not computed.
        ApiRequest::DescribeGroups(r) => ApiResponse::DescribeGroups(DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: (r.groups.iter())
                .map(|g| DescribedGroup {
                    error,
                    group_id: g.clone(),
                    group_state: String::new(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                    authorized_operations: i32::MIN,
                })
                .collect(),
        }),
        ApiRequest::DeleteGroups(r) => ApiResponse::DeleteGroups(DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: r.groups.iter().map(|g| (g.clone(), error)).collect(),
        }),
        ApiRequest::OffsetDelete(_) => ApiResponse::OffsetDelete(OffsetDeleteResponse {
            error,
            ..OffsetDeleteResponse::default()
        }),
        // Epoch -1 with the error: no epoch is granted, so the member acts on nothing new.
        ApiRequest::ConsumerGroupHeartbeat(r) => {
            ApiResponse::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                error,
                member_id: Some(r.member_id.clone()),
                member_epoch: -1,
                ..ConsumerGroupHeartbeatResponse::default()
            })
        }
        ApiRequest::ConsumerGroupDescribe(r) => {
            ApiResponse::ConsumerGroupDescribe(ConsumerGroupDescribeResponse {
                throttle_time_ms: 0,
                groups: (r.group_ids.iter())
                    .map(|g| ConsumerGroupDescribedGroup {
                        error,
                        error_message: None,
                        group_id: g.clone(),
                        group_state: String::new(),
                        group_epoch: -1,
                        assignment_epoch: -1,
                        assignor_name: String::new(),
                        members: Vec::new(),
                        authorized_operations: i32::MIN,
                    })
                    .collect(),
            })
        }
        // Not a group request: callers route those elsewhere.
        other => unreachable_group(other),
    }
}

fn unreachable_group(request: &ApiRequest) -> ApiResponse {
    panic!(
        "group_error_response called for api key {}",
        weir_wire::codec::api_key_of(request)
    )
}
