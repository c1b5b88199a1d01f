//! Tiered storage, the node's side (KIP-405): which closed segments a leader uploads, when
//! local copies may go, remote retention, and the object store's housekeeping. The object
//! layout and the job types are `crate::tier`; the remote log metadata (what is uploaded,
//! committed through the metadata quorum) is `cluster::image::RemoteLog`, reported by
//! `node/cluster/remote.rs`.
//!
//! # The cycle (every `remote.log.manager.task.interval.ms`, on each partition's leader)
//! 1. **Upload.** For a partition of a topic with `remote.storage.enable=true` that this
//!    node leads, with no upload in flight, no report pending and no backoff running: the
//!    next offset to upload is the remote log's end (or, with none, the local log start).
//!    The closed local segment holding it is uploaded from there to its end, if that end
//!    is at or below both the high watermark and the last stable offset (nothing a
//!    replica may still truncate, no open transaction). The job leaves as `Output::Upload`
//!    under a fresh object key (objects are never overwritten).
//! 2. **Report.** `Completion::Uploaded` comes back; if this node still leads at the same
//!    epoch, the segment is reported to the controller (`report_remote_segment`). Until the
//!    image holds it, nothing depends on it. Once the applied image holds it, the
//!    partition's next upload starts at once (`continue_uploads`), not at the next cycle,
//!    so a backlog uploads back to back as with Kafka's copy task. A report the image
//!    refuses leaves an orphan, deleted at once; a failed upload backs off (1 s doubling
//!    to a minute) and retries.
//! 3. **Remote retention.** Remote segments past `retention.ms` (by their max timestamp)
//!    or beyond `retention.bytes` (remote plus local-only bytes) are dropped by asking the
//!    controller (`PeerMessage::RemoteSegmentsExpired`); once the image applied it, the
//!    leader deletes their objects.
//! 4. **Sweep.** Every `weir.remote.orphan.min.age.ms` a leader lists its partitions'
//!    directories and deletes objects no image references (uploads refused or abandoned
//!    by a crash), if at least that old. A deleted topic's directory is swept whole by the
//!    controller when the deletion applies.
//!
//! # Local retention (every replica, in `retention.rs`)
//! A tiered partition's local segments go by `local.retention.ms` / `local.retention.bytes`
//! and only once they lie entirely below the remote log's end in the *applied* image: an
//! upload that is not committed yet never lets a local copy go (the planted bug
//! `planted-tier-delete-unconfirmed` removes that guard; the simulator must catch it).
//!
//! # The log start (every replica)
//! The remote log start is the partition's log start once it passes the local one, as
//! Kafka's log start offset spans both tiers: remote retention and DeleteRecords move it
//! through the image, and each replica deletes its local records below it when the image
//! changes (`follow_remote_start`). DeleteRecords past the remote end deletes local data
//! not uploaded yet: the leader deletes locally only up to the remote end at once, the
//! rest follows the image, so the remote log never has to continue past a local gap; an
//! upload that started below the new start is dropped when it completes.
//!
//! # Invariants (checked by [`Node::tier_invariants`])
//! - An upload in flight is for a partition this node leads at the upload's epoch, or its
//!   completion will be dropped (checked on completion, not asserted: leadership may move
//!   while the job runs).
//! - At most `remote.log.manager.copy.max.jobs` uploads in flight, one per partition.
//! - Local retention of a tiered partition deletes only below the remote end the applied
//!   image confirms (asserted where it deletes, `retention.rs`).

use std::collections::BTreeMap;

use super::cluster::Replica;
use super::Node;
use crate::cluster::image::RemoteSegment;
use crate::cluster::peer::{PeerMessage, RemoteSegmentsExpired};
use crate::compaction::AbortedTxn;
use crate::tier::{self, DeleteJob, SweepJob, UploadFailed, UploadJob, Uploaded};
use crate::time::{Instant, Now};
use crate::topic::PartitionId;
use crate::Output;

/// Bytes per storage read of an upload.
const UPLOAD_READ_BYTES: u32 = 1 << 20;
/// First retry delay after a failed upload; it doubles up to [`UPLOAD_BACKOFF_MAX_MS`].
const UPLOAD_BACKOFF_MS: u64 = 1_000;
/// Longest retry delay after failed uploads.
const UPLOAD_BACKOFF_MAX_MS: u64 = 60_000;
/// An upload in flight this long is taken as lost (its object, if any, is an orphan).
const UPLOAD_LOST_MS: u64 = 600_000;

/// The node's tiered-storage bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Tierer {
    /// Uploads in flight by partition.
    in_flight: BTreeMap<PartitionId, InFlight>,
    /// Last job id handed out.
    next_job_id: u64,
    /// When to run the cycle next (`None`: at the next timeout).
    next_check: Option<Instant>,
    /// When to sweep for orphans next.
    next_sweep: Option<Instant>,
    /// Partitions whose last upload failed: until when they wait, and failures in a row.
    backoff: BTreeMap<PartitionId, (Instant, u32)>,
    /// Totals, for metrics.
    pub bytes_uploaded: u64,
    /// Uploads that completed.
    pub uploads: u64,
    /// Uploads that failed.
    pub failures: u64,
}

/// One upload in flight.
#[derive(Debug, Clone)]
struct InFlight {
    job_id: u64,
    leader_epoch: i32,
    base_offset: i64,
    end_offset: i64,
    /// Epoch of the segment's last batch.
    data_epoch: i32,
    object_key: String,
    started: Instant,
}

impl Node {
    /// When the tiering cycle wants a timeout.
    pub(super) fn tier_deadline(&self) -> Option<Instant> {
        if !self.config.remote_storage_enable {
            return None;
        }
        self.tierer.next_check
    }

    /// True when `topic` is tiered.
    pub(super) fn tiered(&self, topic: &super::Topic) -> bool {
        self.config.remote_storage_enable && topic.config.remote_storage_enable(&self.config)
    }

    /// Run the cycle if due (see the module doc).
    pub(super) fn schedule_tiering(&mut self, now: Now) {
        if !self.config.remote_storage_enable || self.poisoned.is_some() {
            return;
        }
        if self.tierer.next_check.is_some_and(|at| now.instant < at) {
            return;
        }
        let interval = self.config.remote_log_task_interval_ms.max(1);
        self.tierer.next_check = Some(now.instant.add_ms(interval));
        (self.tierer.in_flight).retain(|_, upload| {
            now.instant
                .saturating_duration_since(upload.started)
                .as_millis()
                < u128::from(UPLOAD_LOST_MS)
        });
        // Backoffs stay after they end (their count of failures in a row sets the next
        // delay); a success removes one, and so does losing the partition's leadership.
        let led = self.led_tiered_partitions();
        self.tierer.backoff.retain(|key, _| led.contains(key));
        let sweep = self.tierer.next_sweep.is_none_or(|at| now.instant >= at);
        if sweep {
            let every = self.config.remote_orphan_min_age_ms.max(interval);
            self.tierer.next_sweep = Some(now.instant.add_ms(every));
        }
        for key in led {
            self.expire_remote_segments(now, key);
            if sweep {
                self.sweep_partition(key);
            }
            self.start_upload(now, key);
        }
    }

    /// Right after the image confirmed an upload of each of `keys`, start the partition's
    /// next one (if a closed segment is due) instead of waiting for the next cycle, as
    /// Kafka's copy task uploads every eligible segment in one run: a new leader catching
    /// up after a failover, or a burst of closed segments, uploads back to back.
    pub(in crate::node) fn continue_uploads(&mut self, now: Now, keys: Vec<PartitionId>) {
        if !self.config.remote_storage_enable || self.poisoned.is_some() {
            return;
        }
        for key in keys {
            let tiered = (self.topics.get(&key.topic)).is_some_and(|topic| self.tiered(topic));
            if tiered {
                self.start_upload(now, key);
            }
        }
    }

    /// The partitions of tiered topics this node leads, with their leader epoch.
    fn led_tiered_partitions(&self) -> Vec<PartitionId> {
        let replicas = &self.cluster.replication.replicas;
        (self.topics.values())
            .filter(|topic| self.tiered(topic))
            .flat_map(|topic| {
                (0..topic.partitions.len()).map(|index| PartitionId::new(topic.id, index))
            })
            .filter(|key| matches!(replicas.get(key), Some(Replica::Leader(_))))
            .collect()
    }

    /// The epoch this node leads `key` at, if it does.
    fn leader_epoch_of(&self, key: PartitionId) -> Option<i32> {
        match self.cluster.replication.replicas.get(&key) {
            Some(Replica::Leader(leader)) => Some(leader.epoch),
            _ => None,
        }
    }

    /// Where the next upload of `key` must start, and where it may end (exclusive): the
    /// remote log's end (or the local start without one) and the closed segment holding
    /// it, bounded by the high watermark and the last stable offset.
    pub(super) fn next_upload_range(&self, key: PartitionId) -> Option<(i64, i64)> {
        let log = self.partition(key)?;
        let remote = (self.cluster.meta.image).remote_log(key.topic.as_u128(), key.partition());
        let base = match remote {
            Some(remote) if !remote.segments.is_empty() => remote.end_offset(),
            Some(remote) => remote.log_start_offset.max(log.log_start_offset()),
            None => log.log_start_offset(),
        };
        if base < log.log_start_offset() {
            // The local copy of what must be uploaded next is gone (should not happen:
            // local retention waits for uploads); the partition cannot continue its
            // remote log, and says so at every cycle.
            tracing::warn!(%key, base, local_start = log.log_start_offset(),
                "tiered partition cannot upload: local data below its start is gone");
            return None;
        }
        let segment = log
            .segments()
            .find(|segment| segment.base_offset <= base && base < segment.end_offset)?;
        let active = log.active_segment();
        let stable = log.txns.last_stable_offset(log.high_watermark());
        let end = segment.end_offset;
        let closed = segment.base_offset != active.base_offset;
        (closed && end <= stable).then_some((base, end))
    }

    /// Start the next upload of `key` if one is due and fewer than
    /// `remote.log.manager.copy.max.jobs` uploads are in flight node-wide.
    fn start_upload(&mut self, now: Now, key: PartitionId) {
        if self.tierer.in_flight.len() >= self.config.remote_copy_jobs_max.max(1)
            || self.tierer.in_flight.contains_key(&key)
            || (self.tierer.backoff.get(&key)).is_some_and(|(until, _)| now.instant < *until)
            || self.cluster.remote.pending.contains_key(&key)
        {
            return;
        }
        let Some(leader_epoch) = self.leader_epoch_of(key) else {
            return;
        };
        let Some((base_offset, end_offset)) = self.next_upload_range(key) else {
            return;
        };
        let (Some(topic), Some(log)) = (self.topics.get(&key.topic), self.partition(key)) else {
            return;
        };
        let data_epoch = log.epoch_at(end_offset - 1).min(leader_epoch);
        let aborted: Vec<AbortedTxn> = (log.txns.aborted_below(end_offset).into_iter())
            .filter(|a| a.last_offset >= base_offset)
            .map(|a| AbortedTxn {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                last_offset: a.last_offset,
            })
            .collect();
        let job_id = self.tierer.next_job_id + 1;
        let partition_key = log.partition_key();
        let upload_id = (u128::from(self.cluster.broker.incarnation) << 64) | u128::from(job_id);
        let object_key = tier::segment_key(
            &topic.name,
            key.topic.as_u128(),
            key.partition(),
            base_offset,
            end_offset,
            leader_epoch,
            upload_id,
        );
        let job = UploadJob {
            job_id,
            partition: key,
            partition_key,
            leader_epoch,
            base_offset,
            end_offset,
            object_key: object_key.clone(),
            read_bytes: UPLOAD_READ_BYTES,
            aborted,
        };
        self.tierer.next_job_id = job_id;
        tracing::debug!(%key, base_offset, end_offset, %object_key, "uploading segment");
        self.tierer.in_flight.insert(
            key,
            InFlight {
                job_id,
                leader_epoch,
                base_offset,
                end_offset,
                data_epoch,
                object_key,
                started: now.instant,
            },
        );
        self.outputs.push_back(Output::Upload(Box::new(job)));
    }

    /// An upload finished (see the module doc, step 2).
    pub(super) fn on_uploaded(&mut self, now: Now, outcome: Result<Uploaded, UploadFailed>) {
        let job_id = match &outcome {
            Ok(done) => done.job_id,
            Err(failed) => failed.job_id,
        };
        let Some(key) = (self.tierer.in_flight.iter())
            .find(|(_, upload)| upload.job_id == job_id)
            .map(|(key, _)| *key)
        else {
            // Forgotten (lost, or the partition went away): its object, if any, is an
            // orphan.
            if let Ok(done) = &outcome {
                tracing::debug!(job_id, size = done.size_bytes, "late upload dropped");
            }
            return;
        };
        let Some(upload) = self.tierer.in_flight.remove(&key) else {
            return;
        };
        let done = match outcome {
            Ok(done) => done,
            Err(failed) => {
                self.tierer.failures += 1;
                let attempts = self.tierer.backoff.get(&key).map_or(0, |(_, n)| *n) + 1;
                let delay = (UPLOAD_BACKOFF_MS << attempts.min(16)).min(UPLOAD_BACKOFF_MAX_MS);
                tracing::warn!(%key, attempts, delay, reason = failed.reason,
                    "upload failed; retrying after a backoff");
                self.tierer
                    .backoff
                    .insert(key, (now.instant.add_ms(delay), attempts));
                return;
            }
        };
        self.tierer.backoff.remove(&key);
        self.tierer.uploads += 1;
        self.tierer.bytes_uploaded += done.size_bytes;
        let name = self.topics.get(&key.topic).map(|t| t.name.clone());
        let still_leads = self.leader_epoch_of(key) == Some(upload.leader_epoch);
        let Some(name) = name.filter(|_| still_leads) else {
            // Deposed or deleted meanwhile: nobody will ever reference the object.
            self.delete_objects(vec![upload.object_key]);
            return;
        };
        // DeleteRecords moved the log start past the upload's base while it ran (local
        // retention never does: it waits for the image to hold an upload): the object holds
        // deleted records. The next cycle uploads from the new start.
        if (self.partition(key)).is_some_and(|log| upload.base_offset < log.log_start_offset()) {
            tracing::info!(%key, base_offset = upload.base_offset,
                "upload from below the log start dropped (records deleted meanwhile)");
            self.delete_objects(vec![upload.object_key]);
            return;
        }
        let segment = RemoteSegment {
            base_offset: upload.base_offset,
            end_offset: upload.end_offset,
            leader_epoch: upload.data_epoch,
            size_bytes: done.size_bytes,
            max_timestamp: done.max_timestamp,
            object_key: upload.object_key.clone(),
            uploader: self.config.node_id,
        };
        if let Err(error) = self.report_remote_segment(now, &name, key.partition(), segment) {
            tracing::info!(%key, %error, object = upload.object_key, "upload not reported");
            self.delete_objects(vec![upload.object_key]);
        }
    }

    /// Remote retention of `key` (module doc, step 3): ask the controller to drop the
    /// expired prefix of its remote log.
    fn expire_remote_segments(&mut self, now: Now, key: PartitionId) {
        let Some(leader_epoch) = self.leader_epoch_of(key) else {
            return;
        };
        let (Some(topic), Some(log)) = (self.topics.get(&key.topic), self.partition(key)) else {
            return;
        };
        let image = &self.cluster.meta.image;
        let Some(remote) = image.remote_log(key.topic.as_u128(), key.partition()) else {
            return;
        };
        let retention_ms = topic.config.retention_ms(&self.config);
        let retention_bytes = topic.config.retention_bytes(&self.config);
        let remote_end = remote.end_offset();
        // Total size: the remote segments plus the local data not uploaded yet.
        let local_only: u64 = (log.segments())
            .filter(|segment| segment.base_offset >= remote_end)
            .map(|segment| segment.bytes)
            .sum();
        let mut total = remote.size_bytes() + local_only;
        let mut below = None;
        for segment in remote.segments.values() {
            let expired_by_time = retention_ms >= 0
                && segment.max_timestamp >= 0
                && now.wall_ms.saturating_sub(segment.max_timestamp) > retention_ms;
            let over_size = u64::try_from(retention_bytes)
                .is_ok_and(|limit| total.saturating_sub(segment.size_bytes) >= limit);
            if !(expired_by_time || over_size) {
                break;
            }
            total -= segment.size_bytes;
            below = Some(segment.end_offset);
        }
        if let Some(below) = below {
            self.ask_remote_deletion(now, key, leader_epoch, below);
        }
    }

    /// Ask the controller to move `key`'s remote log start up to `below`, dropping the
    /// segments that end at or below it (remote retention, DeleteRecords). No answer: the
    /// applied image shows it ([`Node::on_remote_segments_removed`]).
    pub(super) fn ask_remote_deletion(
        &mut self,
        now: Now,
        key: PartitionId,
        leader_epoch: i32,
        below: i64,
    ) {
        let request = RemoteSegmentsExpired {
            topic_id: *key.topic.as_bytes(),
            partition: key.partition(),
            leader_epoch,
            below,
        };
        let node_id = self.config.node_id;
        match self.cluster.meta.controller() {
            Some(controller) if self.controller_is_here(controller) => {
                self.on_remote_segments_expired(node_id, request);
                self.drive_cluster(now);
            }
            Some(controller) => {
                self.send_peer(controller, PeerMessage::RemoteSegmentsExpired(request));
            }
            None => {}
        }
    }

    /// Sweep `key`'s directory for orphans (module doc, step 4).
    fn sweep_partition(&mut self, key: PartitionId) {
        let Some(topic) = self.topics.get(&key.topic) else {
            return;
        };
        let id = key.topic.as_u128();
        let prefix = tier::partition_prefix(&topic.name, id, key.partition());
        let image = &self.cluster.meta.image;
        let mut keep: Vec<String> = (image.remote_log(id, key.partition()).into_iter())
            .flat_map(|remote| remote.segments.values())
            .map(|segment| segment.object_key.clone())
            .collect();
        keep.extend(
            self.tierer
                .in_flight
                .get(&key)
                .map(|u| u.object_key.clone()),
        );
        keep.extend((self.cluster.remote.pending.get(&key)).map(|p| p.segment.object_key.clone()));
        let job = SweepJob {
            prefix,
            keep,
            min_age_ms: self.config.remote_orphan_min_age_ms,
        };
        self.outputs.push_back(Output::SweepRemote(job));
    }

    /// Delete objects (no completion: a failure leaves orphans for the sweep).
    fn delete_objects(&mut self, keys: Vec<String>) {
        if !keys.is_empty() {
            self.outputs
                .push_back(Output::DeleteRemote(DeleteJob { keys }));
        }
    }

    /// The image changed `key`'s remote log, dropping `removed`: its leader deletes their
    /// objects (a leader that changes meanwhile leaves them to the sweep), every replica's
    /// local log follows the remote start ([`Node::follow_remote_start`]), and the
    /// DeleteRecords answers waiting for it go.
    pub(super) fn on_remote_segments_removed(
        &mut self,
        key: PartitionId,
        removed: &[RemoteSegment],
    ) {
        if self.leader_epoch_of(key).is_some() {
            self.delete_objects(removed.iter().map(|s| s.object_key.clone()).collect());
        }
        self.follow_remote_start(key);
        self.release_hw_waiters();
    }

    /// A tiered partition's log start is its remote log start once that passes the local
    /// one (as Kafka's log start offset spans both tiers): DeleteRecords and remote
    /// retention move it through the image, and every replica deletes its local records
    /// below it, up to its own high watermark. Without this a local copy would still
    /// serve records the remote log start says are gone.
    pub(super) fn follow_remote_start(&mut self, key: PartitionId) {
        let Some(topic) = self.topics.get(&key.topic) else {
            return;
        };
        if !self.tiered(topic) {
            return;
        }
        let image = &self.cluster.meta.image;
        let Some(remote_start) = image
            .remote_log(key.topic.as_u128(), key.partition())
            .map(|remote| remote.log_start_offset)
        else {
            return;
        };
        if let Some(truncation) = self.move_log_start(key, remote_start) {
            tracing::info!(%key, log_start_offset = truncation.log_start_offset,
                segments = truncation.removed.len(), "local log follows the remote log start");
        }
    }

    /// A topic with remote data was deleted: the active controller sweeps its whole
    /// directory (every node applies the deletion; one deletes the objects).
    pub(super) fn on_tiered_topic_deleted(&mut self, name: &str, id: u128) {
        if self.cluster.meta.is_active_controller() && self.config.remote_storage_enable {
            let job = SweepJob {
                prefix: tier::topic_prefix(name, id),
                keep: Vec::new(),
                min_age_ms: 0,
            };
            self.outputs.push_back(Output::SweepRemote(job));
        }
    }

    /// Where a fetch of `key` may start: the remote log start when the remote log reaches
    /// the local log (so the two together are one log), else the local start.
    pub(super) fn total_log_start(&self, key: PartitionId, local_start: i64) -> i64 {
        let Some(topic) = self.topics.get(&key.topic) else {
            return local_start;
        };
        if !self.tiered(topic) {
            return local_start;
        }
        let image = &self.cluster.meta.image;
        match image.remote_log(key.topic.as_u128(), key.partition()) {
            Some(remote)
                if !remote.segments.is_empty()
                    && remote.log_start_offset < local_start
                    && remote.end_offset() >= local_start =>
            {
                remote.log_start_offset
            }
            _ => local_start,
        }
    }

    /// The remote end `key`'s local copies may be deleted below (applied image only).
    pub(super) fn local_delete_bound(&self, key: PartitionId) -> i64 {
        let image = &self.cluster.meta.image;
        let confirmed = image
            .remote_log(key.topic.as_u128(), key.partition())
            .map_or(i64::MIN, |remote| remote.end_offset());
        // PLANTED BUG (weir-sim's planted suite only; never in a real build): local
        // retention trusts uploads in flight, deleting local copies the image does not
        // hold yet.
        if crate::planted::on(crate::planted::Bug::TierDeleteUnconfirmed) {
            if let Some(upload) = self.tierer.in_flight.get(&key) {
                return confirmed.max(upload.end_offset);
            }
        }
        confirmed
    }

    /// Bytes of closed, stable segments of `key` not uploaded yet (the upload lag).
    pub(super) fn upload_lag_bytes(&self, key: PartitionId) -> u64 {
        let Some(log) = self.partition(key) else {
            return 0;
        };
        let image = &self.cluster.meta.image;
        let remote_end = (image.remote_log(key.topic.as_u128(), key.partition()))
            .filter(|remote| !remote.segments.is_empty())
            .map_or(i64::MIN, |remote| remote.end_offset());
        let stable = log.txns.last_stable_offset(log.high_watermark());
        let active = log.active_segment().base_offset;
        (log.segments())
            .filter(|s| {
                s.end_offset > remote_end && s.end_offset <= stable && s.base_offset < active
            })
            .map(|s| s.bytes)
            .sum()
    }

    /// Bytes uploaded, uploads done, uploads failed (node totals, for metrics).
    pub(super) fn tier_totals(&self) -> (u64, u64, u64) {
        let t = &self.tierer;
        (t.bytes_uploaded, t.uploads, t.failures)
    }

    /// See the module doc.
    pub(super) fn tier_invariants(&self) {
        let t = &self.tierer;
        assert!(
            t.in_flight.len() <= self.config.remote_copy_jobs_max.max(1),
            "{} uploads in flight",
            t.in_flight.len()
        );
        for (key, upload) in &t.in_flight {
            assert!(
                upload.base_offset < upload.end_offset,
                "{key}: empty upload"
            );
        }
    }
}
