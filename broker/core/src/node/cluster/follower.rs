//! Partition replication, follower side: truncation by epoch queries, fetching from the
//! leader, appending the leader's batches at their offsets.
//!
//! **Replication, follower side.** A follower first truncates its divergent suffix by
//! epoch queries (KIP-101/KIP-279), then fetches from its log end, one request in flight.
//! Replicated batches are appended at their offsets only where they start exactly at the
//! log end (offsets stay dense); under `isr-fsync` the next fetch waits for the sync that
//! makes them durable, since it reports them durable to the leader. The follower's HW is
//! the leader's, capped by its own log end.
//!
//! **One round, step by step.** `update_role` makes a follower role for the image's leader
//! and epoch with `truncated` false. `follower_sends` then sends an epoch query for the
//! last epoch of this log (`EpochQuery`); the leader answers with the end offset of that
//! epoch in its own log (or of its largest epoch below it). `on_epoch_reply` truncates
//! this log to that end if it runs past it; if the leader answered with an epoch this log
//! does not hold, the next query asks about this log's largest epoch below it
//! (`query_epoch`), so each round asks about a smaller epoch and truncation ends. Then
//! `truncated` is set and fetches begin (`ReplicaFetch` from the log end, carrying the
//! durable offset under `isr-fsync`). A fetch answered OFFSET_OUT_OF_RANGE below the
//! leader's log start resets this log to the leader's start (`reset_follower_log`: the
//! leader's retention removed what this follower lacks). Any reply from another leader,
//! epoch or correlation than the one in flight is dropped (`follower_in_flight`), and an
//! unanswered request is resent after `PEER_RETRY_MS`.
//!
//! **Must never break.** Offsets stay dense (a batch that does not start exactly at the
//! log end is not appended); a follower never reports an offset durable before the sync
//! covering it completed; it never follows itself, and has at most one request in flight
//! (see [`FollowerState::invariants`]).

use uuid::Uuid;
use weir_wire::batch::iter_batches;
use weir_wire::error::ErrorCode;

use crate::cluster::peer::{
    EpochQuery, EpochReply, PeerMessage, PeerRecords, ReplicaFetch, ReplicaFetchReply,
};
use crate::cluster::AckDurability;
use crate::meta::epochs_op;
use crate::node::Node;
use crate::storage::StorageOp;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;

use super::{uuid_bytes, Replica, PEER_RETRY_MS, REFUSED_RETRY_MS};

/// This node follows the partition's leader.
#[derive(Debug, Clone)]
pub(in crate::node) struct FollowerState {
    /// The leader the image names (-1: none; the follower then waits).
    pub(super) leader: i32,
    /// The image's leader epoch: every request carries it, so a leader of another epoch
    /// refuses it rather than serving a history this follower is not following.
    pub(super) epoch: i32,
    /// The divergent suffix (if any) was truncated for this epoch.
    pub(super) truncated: bool,
    /// The epoch the next epoch query asks about, when a round of truncation found that
    /// this log lacks the epoch the leader answered with (KIP-279 asks again with this
    /// log's largest epoch below it); `None`: ask about this log's last epoch.
    pub(super) query_epoch: Option<i32>,
    /// The fetch or epoch query in flight: (correlation, sent at).
    pub(super) in_flight: Option<(u64, Instant)>,
    /// Do not send before this.
    pub(super) not_before: Instant,
    /// Appends wait for this sync before the next fetch reports them durable.
    pub(super) fetch_after_sync: Option<u64>,
}

impl FollowerState {
    /// When the follower timer next acts on this role: the back-off's end, or the resend
    /// of a request in flight; `None` while it waits for a sync or has no leader (an
    /// input, not the timer, moves it on). Kept in [`super::Replication`]'s timer index.
    pub(super) fn timer(&self) -> Option<Instant> {
        if self.fetch_after_sync.is_some() || self.leader < 0 {
            return None;
        }
        Some(match self.in_flight {
            Some((_, sent)) => sent.add_ms(PEER_RETRY_MS),
            None => self.not_before,
        })
    }
}

impl Node {
    /// Follower timer: send the next request where none is in flight and the back-off
    /// passed, or resend one unanswered for [`PEER_RETRY_MS`]. Visits the roles whose
    /// timer is due (the index), not every follower.
    pub(super) fn follower_sends(&mut self, now: Now) {
        let cluster = &*self.cluster;
        let replication = &cluster.replication;
        let due: Vec<PartitionId> = (replication.follower_timers.iter())
            .take_while(|(at, _)| *at <= now.instant)
            .filter_map(|(_, key)| Some((key, replication.replicas.get(key)?)))
            .filter_map(|(key, r)| match r {
                Replica::Follower(f) if f.leader >= 0 && f.fetch_after_sync.is_none() => {
                    let due = match f.in_flight {
                        Some((_, sent)) => {
                            now.instant.saturating_duration_since(sent).as_millis() as u64
                                >= PEER_RETRY_MS
                        }
                        None => now.instant >= f.not_before,
                    };
                    due.then_some(*key)
                }
                _ => None,
            })
            .collect();
        for key in due {
            if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
                if f.in_flight.is_some() {
                    // Unanswered: the leader may have restarted (and lost what we fetched)
                    // at this epoch. Ask for the epoch again before fetching.
                    f.truncated = false;
                    f.query_epoch = None;
                }
                f.in_flight = None;
            }
            self.cluster.replication.retime(key);
            self.send_follower_request(now, key);
        }
    }

    /// Send the follower's next request: an epoch query until truncated, then a fetch.
    ///
    /// Never a fetch before truncation: fetching from the log end of a divergent log
    /// would append the leader's records after records the leader never had, and both
    /// would be visible under offsets the leader assigned to other records.
    pub(super) fn send_follower_request(&mut self, now: Now, key: PartitionId) {
        let Some(log) = self
            .topics
            .get(&key.topic)
            .and_then(|t| t.partitions.get(key.index()))
        else {
            return;
        };
        let (leo, durable, last_epoch) =
            (log.log_end_offset(), log.durable_end(), log.last_epoch());
        let log_start = log.log_start_offset();
        // The follower fetches from its log end and reports its durable end: never past
        // what it holds (the leader's HW rule trusts these two numbers).
        assert!(
            durable <= leo,
            "durable end {durable} past the log end {leo}"
        );
        let cluster = &mut *self.cluster;
        let max_bytes = cluster.config.replica_fetch_max_bytes;
        let wait = cluster.config.replica_fetch_wait_max_ms;
        let correlation = cluster.correlation();
        let Some(Replica::Follower(f)) = cluster.replication.replicas.get_mut(&key) else {
            return;
        };
        if f.leader < 0 || f.in_flight.is_some() || now.instant < f.not_before {
            return;
        }
        f.in_flight = Some((correlation, now.instant));
        let (leader, epoch, truncated) = (f.leader, f.epoch, f.truncated);
        let last_epoch = f.query_epoch.unwrap_or(last_epoch);
        cluster.replication.retime(key);
        let message = if truncated {
            PeerMessage::Fetch(ReplicaFetch {
                correlation,
                topic_id: uuid_bytes(key.topic),
                partition: key.partition(),
                leader_epoch: epoch,
                fetch_offset: leo,
                durable_offset: durable,
                max_bytes,
                max_wait_ms: wait,
                log_start_offset: Some(log_start),
            })
        } else {
            PeerMessage::EpochQuery(EpochQuery {
                correlation,
                topic_id: uuid_bytes(key.topic),
                partition: key.partition(),
                current_leader_epoch: epoch,
                epoch: last_epoch,
            })
        };
        self.send_peer(leader, message);
    }

    /// True (and the request no longer in flight) when a reply answers this follower's
    /// request in flight: from its current leader, with its correlation. Anything else is
    /// a late or foreign reply and must be dropped: acting on an answer to an older
    /// request could append at stale offsets or truncate by a stale epoch.
    pub(super) fn follower_in_flight(
        &mut self,
        key: PartitionId,
        from: i32,
        correlation: u64,
    ) -> bool {
        let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) else {
            return false;
        };
        if f.leader != from || f.in_flight.map(|(c, _)| c) != Some(correlation) {
            return false;
        }
        f.in_flight = None;
        self.cluster.replication.retime(key);
        true
    }

    /// After a refusal: wait [`REFUSED_RETRY_MS`] before the next request (the leader may
    /// not have learned its new role yet; asking in a tight loop would only load it).
    pub(super) fn follower_back_off(&mut self, now: Now, key: PartitionId) {
        if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
            f.not_before = now.instant.add_ms(REFUSED_RETRY_MS);
        }
        self.cluster.replication.retime(key);
    }

    /// One round of KIP-101/KIP-279 truncation. The leader answered `(E, end)`: `E` is its
    /// largest epoch not above the one asked, `end` where `E` ends in its log. Everything
    /// here from our first epoch above `E` on, and everything from `end` on, diverges, so
    /// we truncate to the lower of the two. When our log holds `E` itself the logs agree
    /// below that point and we fetch; when it does not, our epoch-`E'` range (`E'` our
    /// largest epoch below `E`) may run past the leader's, so we ask again about `E'`.
    /// Each round asks about a smaller epoch, so this ends.
    pub(super) fn on_epoch_reply(&mut self, now: Now, from: i32, reply: EpochReply) {
        let topic = Uuid::from_u128(u128::from_be_bytes(reply.topic_id));
        let Some(key) = PartitionId::from_wire(topic, reply.partition) else {
            return;
        };
        if !self.follower_in_flight(key, from, reply.correlation) {
            return;
        }
        if reply.error != 0 {
            self.follower_back_off(now, key);
            return;
        }
        let asked = match self.cluster.replication.replicas.get(&key) {
            Some(Replica::Follower(f)) => f.query_epoch,
            _ => return,
        };
        let Some(log) = self.log_mut(key) else {
            return;
        };
        let asked = asked.unwrap_or(log.last_epoch());
        if reply.epoch > asked {
            // Not an answer to our question (a peer bug): ask again later.
            tracing::warn!(
                asked,
                answered = reply.epoch,
                "epoch reply above the epoch asked"
            );
            self.follower_back_off(now, key);
            return;
        }
        let step = log.truncation_step(reply.epoch, reply.end_offset);
        #[allow(unused_mut)]
        let mut target = step.target;
        let next_query = step.ask_next;
        // PLANTED BUG (weir-sim only): keep a divergent suffix after a leader change.
        if crate::planted::on(crate::planted::Bug::SkipTruncation) {
            target = log.log_end_offset();
        }
        let partition_key = log.partition_key();
        let truncated = log.truncate_suffix_to(target);
        if truncated && !log.has_unsynced() {
            // The truncation took every unsynced append with it.
            self.unsynced_partitions.remove(&key);
        }
        let Some(log) = self.log_mut(key) else {
            return;
        };
        if truncated {
            tracing::info!(partition_key, target, "truncated divergent suffix");
            let op = epochs_op(log);
            let producers = crate::node::producer_id::producer_snapshot_op(log);
            self.emit(StorageOp::TruncateSuffix {
                partition_key,
                offset: target,
            });
            self.emit(op);
            self.emit(producers);
        }
        if let Some(log) = self.log_mut(key) {
            // Nothing at or above the target survives: the divergent suffix is gone.
            debug_assert!(
                !truncated || log.log_end_offset() == target.max(log.log_start_offset()),
                "truncation to {target} left the log end at {}",
                log.log_end_offset()
            );
        }
        if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
            f.query_epoch = next_query;
            f.truncated = next_query.is_none();
        }
        self.send_follower_request(now, key);
    }

    /// The follower side of a fetch answer: append the records at their offsets, take the
    /// leader's HW (capped by this log), fetch again (under isr-fsync only after the sync
    /// that makes the appends durable, since the next fetch reports them durable).
    pub(super) fn on_fetch_reply(&mut self, now: Now, from: i32, reply: ReplicaFetchReply) {
        let topic = Uuid::from_u128(u128::from_be_bytes(reply.topic_id));
        let Some(key) = PartitionId::from_wire(topic, reply.partition) else {
            return;
        };
        if !self.follower_in_flight(key, from, reply.correlation) {
            return;
        }
        if reply.error == ErrorCode::OFFSET_OUT_OF_RANGE.0 {
            let below_start = self
                .topics
                .get(&key.topic)
                .and_then(|t| t.partitions.get(key.index()))
                .is_some_and(|log| reply.log_start_offset > log.log_end_offset());
            if below_start {
                // Everything we lack was removed on the leader: start over at its log start.
                self.reset_follower_log(key, reply.log_start_offset);
                self.send_follower_request(now, key);
                return;
            }
            if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
                f.truncated = false;
            }
            self.follower_back_off(now, key);
            return;
        }
        // An answer of another leader epoch than the one this follower fetches under is a
        // refusal too, whatever it says: its records may not continue this log.
        let epoch_matches = matches!(
            self.cluster.replication.replicas.get(&key),
            Some(Replica::Follower(f)) if f.epoch == reply.leader_epoch
        );
        if reply.error != 0 || !epoch_matches {
            // Refused (not the leader, other epoch): re-check the epoch before fetching.
            if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
                f.truncated = false;
                f.query_epoch = None;
            }
            self.follower_back_off(now, key);
            return;
        }
        let PeerRecords::Bytes(bytes) = reply.records else {
            return;
        };
        let appended = self.append_replicated(now, key, &bytes::Bytes::from(bytes));
        // The follower's HW: the leader's, capped by what this log holds (a follower never
        // shows consumers offsets it lacks), and never moved down by a stale reply.
        if let Some(log) = self.log_mut(key) {
            let hw = reply.high_watermark.min(log.log_end_offset());
            if log.replicated_hw().is_none_or(|h| hw > h) {
                log.set_replicated_hw(Some(hw));
            }
            debug_assert!((log.replicated_hw()).is_none_or(|h| h <= log.log_end_offset()));
        }
        // The leader's log start (moved by DeleteRecords or its retention): followed as
        // far as this replica's own high watermark, as Kafka's followers do, so a replica
        // that takes over does not serve records its leader had deleted.
        self.move_log_start(key, reply.log_start_offset);
        // isr-fsync: the next fetch reports the appends durable, so it waits for their
        // sync; isr-memory (Kafka's): holding them is enough, fetch again at once.
        let memory = self.cluster.config.ack_durability == AckDurability::IsrMemory;
        match appended {
            Some(_) if memory => self.send_follower_request(now, key),
            Some(sync_id) => {
                if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key)
                {
                    f.fetch_after_sync = Some(sync_id);
                }
                self.cluster.replication.retime(key);
            }
            None => self.send_follower_request(now, key),
        }
    }

    /// Empty a follower's log of `key` and start it at the leader's log start `offset`
    /// (KIP-101's truncate-fully-and-start-at), with the storage ops that make it so:
    /// every batch goes first, then the meta entries that describe them (recovery accepts
    /// storage ahead of meta, and an empty log at the persisted log start).
    pub(super) fn reset_follower_log(&mut self, key: PartitionId, offset: i64) {
        let Some(log) = self.log_mut(key) else {
            return;
        };
        let partition_key = log.partition_key();
        let old_start = log.log_start_offset();
        let old_end = log.log_end_offset();
        let dropped = log.reset_to(offset);
        self.unsynced_partitions.remove(&key);
        let Some(log) = self.log_mut(key) else {
            return;
        };
        assert_eq!(
            log.log_end_offset(),
            offset,
            "a reset log starts empty at {offset}"
        );
        let epochs = epochs_op(log);
        let producers = crate::node::producer_id::producer_snapshot_op(log);
        tracing::warn!(
            partition_key,
            old_start,
            old_end,
            offset,
            "follower log ends below the leader's log start; starting over there"
        );
        self.emit(StorageOp::TruncateSuffix {
            partition_key,
            offset: old_start,
        });
        // A batch straddling the old log start survives the suffix truncation.
        self.emit(StorageOp::TruncatePrefix {
            partition_key,
            offset,
        });
        for segment in dropped {
            self.emit(StorageOp::DeleteMeta {
                key: crate::meta::segment_key(partition_key, segment.base_offset),
            });
        }
        self.emit(StorageOp::PutMeta {
            key: crate::meta::log_start_key(partition_key),
            value: crate::meta::encode(&offset),
        });
        self.emit(epochs);
        self.emit(producers);
        if let Some(Replica::Follower(f)) = self.cluster.replication.replicas.get_mut(&key) {
            // Nothing left to compare epochs with: fetch from the leader's log start.
            f.truncated = true;
            f.query_epoch = None;
        }
    }

    /// Append the batches a leader sent, at their offsets; returns the covering sync id
    /// when anything was appended.
    ///
    /// The leader's bytes are checked before they touch the log: a batch wholly below the
    /// log end is skipped (a resent answer), one that straddles the log end ends the append,
    /// one that starts past it is appended there (the leader's compaction left the gap,
    /// which the follower's log keeps), and one with a bad CRC ends it too (the follower
    /// fetches again from its log end).
    pub(super) fn append_replicated(
        &mut self,
        now: Now,
        key: PartitionId,
        bytes: &bytes::Bytes,
    ) -> Option<u64> {
        let segment_bytes = self
            .topics
            .get(&key.topic)?
            .config
            .segment_bytes(&self.config);
        let mut appended_any = None;
        // The batches appended, for the coordinators' replay below (only those: a batch
        // skipped or refused must not teach a coordinator a state the log does not hold).
        let mut appended_batches = Vec::new();
        for item in iter_batches(bytes) {
            let Ok((header, range)) = item else { break };
            let leo = self
                .topics
                .get(&key.topic)?
                .partitions
                .get(key.index())?
                .log_end_offset();
            if header.last_offset() < leo {
                continue;
            }
            if header.base_offset < leo {
                // Overlaps the log end: a leader never sends that (batches are whole and
                // the fetch asked from the log end); drop it and fetch again.
                tracing::warn!(base = header.base_offset, leo, "replicated batch overlaps");
                break;
            }
            // A batch may start past the log end: the leader's compaction removed the batches
            // between (offsets increase, never repeat; `append_batch` asserts it too).
            if bytes.get(range.clone()).is_none() {
                break;
            }
            // The answer's own buffer, sliced: a follower appends the leader's bytes as
            // they are, so nothing is copied on the state machine's task.
            let batch = bytes.slice(range);
            if !weir_wire::batch::verify_crc(&batch) {
                tracing::warn!(base = header.base_offset, "replicated batch fails its CRC");
                break;
            }
            let copy = batch.clone();
            let origin = crate::node::append::AppendOrigin::Follower;
            match self.append_batch(now.wall_ms, key, batch, segment_bytes, origin) {
                Ok(appended) => {
                    appended_any = Some(appended.sync_id);
                    appended_batches.push(copy);
                }
                Err(error) => {
                    tracing::warn!(error = error.name(), "replicated batch not appended");
                    break;
                }
            }
        }
        // Followers of a coordinator's partition keep its state current (committed offsets
        // and group membership; transaction states), so they coordinate from the latest
        // state the moment they lead it.
        let name = (self.topics.get(&key.topic)).map(|t| t.name.clone());
        let groups = name.as_deref() == Some(crate::group::offsets_log::OFFSETS_TOPIC);
        let txns = name.as_deref() == Some(crate::txn_log::TXN_STATE_TOPIC);
        if groups {
            // Markers included: they commit or drop transactional offsets.
            for batch in appended_batches {
                crate::node::txn_offsets::apply_offsets_batch(&mut self.groups, now, batch, 0);
            }
        } else if txns {
            for batch in appended_batches {
                let Ok(records) = weir_wire::records::decode_records(batch) else {
                    continue;
                };
                for record in records {
                    let Some(k) = record.key.as_deref() else {
                        continue;
                    };
                    self.replay_txn_record(k, record.value.as_deref());
                }
            }
        }
        appended_any
    }
}
