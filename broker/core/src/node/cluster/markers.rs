//! Transaction markers: a coordinator asks each partition's leader to write a marker and
//! resends until answered; a leader answers once its high watermark passes the marker.
//!
//! **The protocol.** When a transaction is prepared (EndTxn), its coordinator writes the
//! markers of the partitions it leads itself and asks each other partition's leader to
//! write one (`PeerMessage::WriteMarker`, one correlation id per marker). The leader
//! appends the control batch through the one append path and answers once its high
//! watermark passes the marker (`marker_waiters`): an answer before that could let a new
//! leader, elected from the ISR, lack the marker while the coordinator believes the
//! transaction complete. The coordinator ticks off each answered correlation and completes
//! the transaction (offsets committed, state CompleteCommit/CompleteAbort) only when the
//! last one is answered. Unanswered markers are resent every [`MARKER_RETRY_MS`] to the
//! partition's current leader: a second marker ends no transaction (the first ended it),
//! so resending is harmless, and it is what survives a leader change mid-way.
//!
//! **Must never break.** A transaction completes only after every marker is replicated;
//! a late or duplicate answer changes nothing (its correlation is gone); a leader holds a
//! marker answer at most [`MARKER_WAIT_MS`] (the coordinator resends), and both tables
//! are bounded: one pending entry per transactional id (`TXNS_MAX`), marker answers by
//! [`super::MARKER_WAITERS_MAX`].

use std::collections::BTreeMap;

use uuid::Uuid;
use weir_wire::error::ErrorCode;

use crate::cluster::peer::PeerMessage;
use crate::node::Node;
use crate::purgatory::Purgatory;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;

use super::{Replica, MARKER_RETRY_MS, MARKER_WAIT_MS};

/// Markers of one prepared transaction still unacknowledged (correlation -> partition),
/// and when they were last sent.
pub(super) type PendingMarkers = (BTreeMap<u64, (String, i32)>, Instant);

/// A transaction marker this leader wrote for a coordinator, answered once the high
/// watermark passes it; keyed in its purgatory by (coordinator, correlation).
#[derive(Debug, Clone)]
pub(super) struct MarkerWaiter {
    pub(super) topic_id: Uuid,
    pub(super) index: usize,
    /// Offset the high watermark must reach.
    pub(super) end: i64,
}

/// Transaction markers: those this node's coordinator asked partition leaders to write,
/// and those this node wrote as a leader for a coordinator.
#[derive(Debug)]
pub(in crate::node) struct Markers {
    /// Prepared transactions waiting for remote markers: id -> (correlation -> partition),
    /// and when the markers were last sent.
    pub(super) pending_markers: BTreeMap<String, PendingMarkers>,
    /// Markers written for a coordinator, answered once replicated:
    /// (coordinator, correlation, topic, partition index, end offset).
    pub(super) marker_waiters: Purgatory<MarkerWaiter, (i32, u64)>,
}

impl Markers {
    /// Both waits are bounded: one pending entry per prepared transaction, and the marker
    /// answers by their purgatory's bound.
    pub(super) fn invariants(&self) {
        assert!(
            self.pending_markers.len() <= crate::txn::TXNS_MAX,
            "{} prepared transactions wait for markers",
            self.pending_markers.len()
        );
        // A prepared transaction waits for at least one marker (it leaves once all are
        // answered).
        assert!(
            (self.pending_markers.values()).all(|(markers, _)| !markers.is_empty()),
            "a transaction waits for no marker"
        );
        self.marker_waiters.invariants();
    }
}

impl Node {
    /// True when this node leads every partition of `__transaction_state` (a one-voter
    /// cluster always does): it coordinates every transactional id.
    pub(in crate::node) fn coordinates_every_transaction(&self) -> bool {
        let Some(&topic_id) = self.topic_ids.get(crate::txn_log::TXN_STATE_TOPIC) else {
            return false;
        };
        let count = self.topics.get(&topic_id).map_or(0, |t| t.partitions.len());
        let cluster = &*self.cluster;
        count > 0
            && (0..count).all(|index| {
                matches!(
                    cluster
                        .replication
                        .replicas
                        .get(&PartitionId::new(topic_id, index)),
                    Some(Replica::Leader(_))
                )
            })
    }

    /// Coordinator: ask each partition's leader to write `txn`'s marker.
    // Each marker gets its own correlation id: the answers arrive in any order and from
    // several leaders, and a late answer must tick off exactly the marker it answers.
    pub(in crate::node) fn send_remote_markers(
        &mut self,
        now: Now,
        txn: &crate::txn::TxnMetadata,
        partitions: Vec<(String, i32)>,
    ) {
        // With nothing remote the transaction completes at once (`txn.rs`): an entry
        // without markers would never be answered.
        assert!(!partitions.is_empty(), "remote markers of no partition");
        let cluster = &mut *self.cluster;
        // One entry per transactional id (a later prepare of the same id replaces it), so
        // the table is bounded by the coordinator's own bound on ids (`TXNS_MAX`, checked
        // in `Markers::invariants`); refusing an entry would leave a prepared transaction
        // without its markers for good.
        let mut waiting = BTreeMap::new();
        for partition in partitions {
            let correlation = cluster.correlation();
            waiting.insert(correlation, partition);
        }
        cluster
            .markers
            .pending_markers
            .insert(txn.transactional_id.clone(), (waiting, now.instant));
        self.send_markers_of(&txn.transactional_id.clone());
    }

    /// This node stopped coordinating `transactional_id`: its unanswered markers are not
    /// sent again from here (the new coordinator finishes the transaction).
    pub(in crate::node) fn forget_pending_markers(&mut self, transactional_id: &str) {
        self.cluster
            .markers
            .pending_markers
            .remove(transactional_id);
    }

    /// Send (again) every unacknowledged marker of one prepared transaction to the
    /// partition's current leader. A partition without a leader is skipped this round;
    /// the resend timer tries again.
    pub(super) fn send_markers_of(&mut self, transactional_id: &str) {
        let Some(txn) = self.txns.txns.get(transactional_id).cloned() else {
            return;
        };
        let committed = txn.state == crate::txn::TxnState::PrepareCommit;
        let Some((waiting, _)) = self
            .cluster
            .markers
            .pending_markers
            .get(transactional_id)
            .cloned()
        else {
            return;
        };
        for (correlation, (topic, partition)) in waiting {
            let leader = self
                .partition_leadership(&topic, partition)
                .map(|(l, _, _)| l);
            let request = crate::cluster::peer::MarkerRequest {
                correlation,
                topic,
                partition,
                producer_id: txn.producer_id,
                producer_epoch: txn.producer_epoch,
                committed,
            };
            // This broker leads it: a call when this shard holds the partition too; else
            // a peer message to the broker's own id, which the driver hands to the shard
            // holding it (`shard::peer_route`).
            let here = self.holds_partition(&request.topic, request.partition);
            match leader {
                Some(leader) if leader == self.config.node_id && here => {
                    self.on_write_marker(Now::new(self.cluster_now(), 0), leader, request)
                }
                Some(leader) if leader >= 0 => {
                    self.send_peer(leader, PeerMessage::WriteMarker(request))
                }
                _ => {}
            }
        }
    }

    pub(super) fn cluster_now(&self) -> Instant {
        self.cluster.now
    }

    /// Resend the markers of transactions whose markers have waited [`MARKER_RETRY_MS`].
    pub(super) fn resend_markers(&mut self, now: Now) {
        let due: Vec<String> = self
            .cluster
            .markers
            .pending_markers
            .iter()
            .filter(|(_, (_, sent))| {
                now.instant.saturating_duration_since(*sent).as_millis() as u64 >= MARKER_RETRY_MS
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some((_, sent)) = self.cluster.markers.pending_markers.get_mut(&id) {
                *sent = now.instant;
            }
            self.send_markers_of(&id);
        }
    }

    /// Leader: write a coordinator's marker, answer once the ISR has it.
    ///
    /// Checked against this node's role, not the coordinator's view: a coordinator with a
    /// stale image may ask a former leader, which refuses, and it retries elsewhere.
    pub(super) fn on_write_marker(
        &mut self,
        now: Now,
        from: i32,
        request: crate::cluster::peer::MarkerRequest,
    ) {
        let reply_error = |code: ErrorCode| PeerMessage::MarkerReply {
            correlation: request.correlation,
            error: code.0,
        };
        if !self.leads(&request.topic, request.partition) {
            let message = reply_error(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            self.reply_marker(from, message);
            return;
        }
        match self.write_marker(
            now,
            &request.topic,
            request.partition,
            request.producer_id,
            request.producer_epoch,
            request.committed,
        ) {
            Ok(()) => {
                let Some(&topic_id) = self.topic_ids.get(&request.topic) else {
                    return;
                };
                let index = request.partition as usize;
                let end = self
                    .topics
                    .get(&topic_id)
                    .and_then(|t| t.partitions.get(index))
                    .map_or(0, |l| l.log_end_offset());
                let waiter = MarkerWaiter {
                    topic_id,
                    index,
                    end,
                };
                let cluster = &mut *self.cluster;
                let deadline = Some(cluster.now.add_ms(MARKER_WAIT_MS));
                let key = (from, request.correlation);
                // A resent marker replaces its earlier wait.
                cluster.markers.marker_waiters.remove(key);
                if cluster
                    .markers
                    .marker_waiters
                    .insert(key, deadline, waiter)
                    .is_err()
                {
                    // Full: refused, so the coordinator resends it on its timer.
                    let message = reply_error(ErrorCode::REQUEST_TIMED_OUT);
                    self.reply_marker(from, message);
                }
                self.release_marker_waiters();
            }
            Err(code) => {
                let message = reply_error(code);
                self.reply_marker(from, message);
            }
        }
    }

    /// Answer a coordinator (this node itself when it coordinates the transaction too).
    pub(super) fn reply_marker(&mut self, to: i32, message: PeerMessage) {
        // The coordinator is this very shard when the answer routes here; another shard of
        // this broker gets it through the driver.
        let here = crate::shard::peer_route(&message, self.config.shard.count())
            == crate::shard::PeerRoute::Shard(self.config.shard.index());
        if to == self.config.node_id && here {
            if let PeerMessage::MarkerReply { correlation, error } = message {
                let now = Now::new(self.cluster_now(), 0);
                self.on_marker_reply(now, correlation, error);
            }
        } else {
            self.send_peer(to, message);
        }
    }

    /// Answer the markers the HW now covers. A coordinator completes a transaction only
    /// after every marker is replicated: a marker lost with a failed leader would leave
    /// the transaction's records neither committed nor aborted on the new one.
    pub(super) fn release_marker_waiters(&mut self) {
        let cluster = &mut *self.cluster;
        if cluster.markers.marker_waiters.is_empty() {
            return;
        }
        let topics = &self.topics;
        // Released once replicated; dropped when the partition is gone (the coordinator
        // resends and learns where it went).
        let done = cluster.markers.marker_waiters.remove_where(|_, w| {
            let hw = (topics.get(&w.topic_id))
                .and_then(|t| t.partitions.get(w.index))
                .map(|l| l.high_watermark());
            hw.is_none_or(|hw| hw >= w.end)
        });
        let done: Vec<(i32, u64)> = (done.into_iter())
            .filter(|(_, w)| {
                (topics.get(&w.topic_id)).is_some_and(|t| t.partitions.get(w.index).is_some())
            })
            .map(|(key, _)| key)
            .collect();
        for (from, correlation) in done {
            self.reply_marker(
                from,
                PeerMessage::MarkerReply {
                    correlation,
                    error: 0,
                },
            );
        }
    }

    /// Coordinator: a marker is written (or refused: retried on the timer). The
    /// transaction completes only when its last marker is acknowledged; a duplicate or
    /// late answer finds no pending marker with its correlation and changes nothing.
    pub(super) fn on_marker_reply(&mut self, now: Now, correlation: u64, error: i16) {
        if error != 0 {
            return;
        }
        let cluster = &mut *self.cluster;
        let mut finished = None;
        for (id, (waiting, _)) in cluster.markers.pending_markers.iter_mut() {
            if waiting.remove(&correlation).is_some() {
                if waiting.is_empty() {
                    finished = Some(id.clone());
                }
                break;
            }
        }
        let Some(id) = finished else {
            return;
        };
        cluster.markers.pending_markers.remove(&id);
        if let Some(txn) = self.txns.txns.get(&id).cloned() {
            self.complete_transaction(now, txn);
        }
    }
}
