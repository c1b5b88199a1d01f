//! Remote log metadata, the leader's side (tiered storage, KIP-405): a partition leader
//! that uploaded a closed segment reports it to the controller, which records it in the
//! metadata log (`MetaRecord::RemoteSegmentUploaded`); every node's image then lists it,
//! and a new leader, or a new controller, knows what is in the object store.
//!
//! **Protocol.** [`Node::report_remote_segment`] checks the segment against this node's
//! image with the image's own rule (`MetadataImage::check_remote_upload`: this node leads
//! at the quoted epoch, the segment exactly continues the remote log), keeps it as the
//! partition's one pending report and sends it to the controller (handled in place when
//! this node is the controller). The controller answers nothing: the image is the answer.
//! After every apply the pending reports are settled: one the image now holds is
//! confirmed; one the image can no longer admit (another leader epoch, a segment that no
//! longer continues the log) is dropped, and its object is an orphan for the object
//! store's cleaner. One still admissible is resent every [`REMOTE_REPORT_RETRY_MS`] (the
//! message, or the controller, may have been lost); a resend of a report that did commit
//! is dropped by the controller, so resending is always safe.
//!
//! One report per partition at a time, like `AlterIsr`: a second one decided before the
//! first applied could only be admitted after it, and reports reordered by a reconnect
//! must not race (the image refuses a segment that does not exactly continue the log, so
//! a reordered one is refused rather than leaving a hole).
//!
//! **Must never break** (checked by `remote_invariants`): a pending report is for a
//! partition this node leads, at the epoch it leads at, and names this node as its
//! uploader; at most one per partition (the map's key).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::cluster::image::{RemoteLog, RemoteSegment, UploadCheck, UploadRefusal};
use crate::cluster::peer::{PeerMessage, RemoteSegmentUploaded};
use crate::node::Node;
use crate::time::{Instant, Now};
use crate::topic::PartitionId;

use super::{uuid_bytes, Replica, REMOTE_REPORT_RETRY_MS};

/// The reports of uploaded segments this node, as a leader, waits to see in its image.
// Bounded by the partitions this node leads: one entry per led partition at most
// (`remote_invariants`).
#[derive(Debug, Default)]
pub(in crate::node) struct RemoteReports {
    pub(in crate::node) pending: BTreeMap<PartitionId, PendingReport>,
}

/// One report sent and not yet settled.
#[derive(Debug, Clone)]
pub(in crate::node) struct PendingReport {
    /// The leader epoch it was uploaded (and is reported) under.
    pub(super) leader_epoch: i32,
    pub(in crate::node) segment: RemoteSegment,
    /// When it was last sent.
    pub(super) sent: Instant,
}

/// Why [`Node::report_remote_segment`] did not take a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteReportError {
    /// No such topic or partition in this node's image.
    #[error("unknown topic or partition")]
    UnknownPartition,
    /// This node does not lead the partition (any more).
    #[error("this node does not lead the partition")]
    NotLeader,
    /// Another report of the partition is pending; report again once it settled.
    #[error("another report of the partition is pending")]
    Pending,
    /// The image can never admit it: its object is an orphan.
    #[error("refused: {0}")]
    Refused(UploadRefusal),
}

impl RemoteReports {
    /// When the earliest pending report is due to be resent.
    pub(super) fn next_resend(&self) -> Option<Instant> {
        (self.pending.values())
            .map(|p| p.sent.add_ms(REMOTE_REPORT_RETRY_MS))
            .min()
    }
}

impl Node {
    /// The remote log of `topic`-`partition` in this node's image: the segments the
    /// object store holds for it, committed through the metadata quorum.
    pub fn remote_log(&self, topic: &str, partition: i32) -> Option<&RemoteLog> {
        let image = &self.cluster.meta.image;
        image.remote_log(*image.names.get(topic)?, partition)
    }

    /// As the leader of `topic`-`partition`, report that `segment` was uploaded to the
    /// object store (its `uploader` is set to this node). The upload path calls this once
    /// the object is durable in the store; the report is resent until the image settles
    /// it (see the module doc), and [`Node::remote_log`] shows it once committed.
    ///
    /// `Ok` when the report is pending or the image already holds the segment; an error
    /// when this node cannot report it now (not the leader, another report pending) or
    /// the image can never admit it.
    pub fn report_remote_segment(
        &mut self,
        now: Now,
        topic: &str,
        partition: i32,
        mut segment: RemoteSegment,
    ) -> Result<(), RemoteReportError> {
        // A poisoned node leads nothing it can vouch for.
        if self.poisoned.is_some() {
            return Err(RemoteReportError::NotLeader);
        }
        self.cluster_note_now(now);
        let node_id = self.config.node_id;
        let image = &self.cluster.meta.image;
        let id = *image
            .names
            .get(topic)
            .ok_or(RemoteReportError::UnknownPartition)?;
        let key = usize::try_from(partition)
            .ok()
            .filter(|_| image.partition(id, partition).is_some())
            .map(|index| PartitionId::new(Uuid::from_u128(id), index))
            .ok_or(RemoteReportError::UnknownPartition)?;
        let Some(Replica::Leader(leader)) = self.cluster.replication.replicas.get(&key) else {
            return Err(RemoteReportError::NotLeader);
        };
        let leader_epoch = leader.epoch;
        segment.uploader = node_id;
        match image.check_remote_upload(id, partition, leader_epoch, &segment) {
            UploadCheck::AlreadyHeld => return Ok(()),
            UploadCheck::Refused(refusal) => return Err(RemoteReportError::Refused(refusal)),
            UploadCheck::Admitted => {}
        }
        if let Some(pending) = self.cluster.remote.pending.get(&key) {
            // The same report again is the caller retrying: it is already pending.
            if pending.segment == segment && pending.leader_epoch == leader_epoch {
                return Ok(());
            }
            return Err(RemoteReportError::Pending);
        }
        let report = PendingReport {
            leader_epoch,
            segment,
            sent: now.instant,
        };
        self.cluster.remote.pending.insert(key, report.clone());
        self.send_remote_report(key, report);
        // In a quorum of one (or on the controller) the report was proposed in place:
        // drive Raft and emit the sync that covers the proposal, as every input does.
        self.drive_cluster(now);
        self.flush_syncs(now);
        Ok(())
    }

    /// Send a pending report to the controller (handled in place when this node is it).
    /// Without a known controller it is not sent; `resend_remote_reports` tries again.
    fn send_remote_report(&mut self, key: PartitionId, report: PendingReport) {
        let request = RemoteSegmentUploaded {
            topic_id: uuid_bytes(key.topic),
            partition: key.partition(),
            leader_epoch: report.leader_epoch,
            segment: report.segment,
        };
        let node_id = self.config.node_id;
        let Some(controller) = self.cluster.meta.controller() else {
            return;
        };
        if self.controller_is_here(controller) {
            self.on_remote_segment_uploaded(node_id, request);
        } else {
            self.send_peer(controller, PeerMessage::RemoteSegmentUploaded(request));
        }
    }

    /// Settle every pending report against the applied image and this node's roles:
    /// confirmed (the image holds it), or dropped (the role or its epoch changed, or the
    /// image can no longer admit it; the object is then an orphan). Runs after every
    /// apply and before every resend.
    /// Returns the partitions whose report the image now holds.
    pub(super) fn settle_remote_reports(&mut self) -> Vec<PartitionId> {
        let keys: Vec<PartitionId> = self.cluster.remote.pending.keys().copied().collect();
        keys.into_iter()
            .filter(|key| self.settle_remote_report(*key))
            .collect()
    }

    /// Settle the pending report of `key`, if any (see `settle_remote_reports`); also run
    /// whenever the partition's role changes, so no report outlives its leadership. True
    /// when the image now holds the report.
    pub(super) fn settle_remote_report(&mut self, key: PartitionId) -> bool {
        let cluster = &mut *self.cluster;
        let Some(report) = cluster.remote.pending.get(&key) else {
            return false;
        };
        let led_at = match cluster.replication.replicas.get(&key) {
            Some(Replica::Leader(leader)) => Some(leader.epoch),
            _ => None,
        };
        let check = cluster.meta.image.check_remote_upload(
            key.topic.as_u128(),
            key.partition(),
            report.leader_epoch,
            &report.segment,
        );
        if led_at == Some(report.leader_epoch) && check == UploadCheck::Admitted {
            return false;
        }
        let held = check == UploadCheck::AlreadyHeld;
        if held {
            tracing::debug!(%key, base = report.segment.base_offset, "remote segment recorded");
        } else {
            tracing::warn!(
                %key,
                object = %report.segment.object_key,
                ?check,
                "remote segment report dropped; its object is an orphan"
            );
        }
        cluster.remote.pending.remove(&key);
        held
    }

    /// Resend the pending reports unanswered for [`REMOTE_REPORT_RETRY_MS`], after
    /// settling them (a report the image holds is not resent).
    pub(super) fn resend_remote_reports(&mut self, now: Now) {
        let confirmed = self.settle_remote_reports();
        self.continue_uploads(now, confirmed);
        let due: Vec<(PartitionId, PendingReport)> = (self.cluster.remote.pending.iter_mut())
            .filter(|(_, report)| report.sent.add_ms(REMOTE_REPORT_RETRY_MS) <= now.instant)
            .map(|(key, report)| {
                report.sent = now.instant;
                (*key, report.clone())
            })
            .collect();
        for (key, report) in due {
            self.send_remote_report(key, report);
        }
    }

    /// See the module doc, "Must never break".
    pub(super) fn remote_invariants(&self) {
        let cluster = &*self.cluster;
        for (key, report) in &cluster.remote.pending {
            let led_at = match cluster.replication.replicas.get(key) {
                Some(Replica::Leader(leader)) => Some(leader.epoch),
                _ => None,
            };
            assert_eq!(
                led_at,
                Some(report.leader_epoch),
                "{key}: a remote report pending at epoch {} outside its leadership",
                report.leader_epoch
            );
            assert_eq!(
                report.segment.uploader, self.config.node_id,
                "{key}: a pending report names another uploader"
            );
        }
    }
}
