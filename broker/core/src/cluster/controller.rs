//! The active controller's decisions, as pure functions from the applied image to the
//! records to propose. The node proposes them through Raft; nothing changes until they
//! commit and every node applies them.
//!
//! # What is decided here
//! - **Placement** ([`place_replicas`]): `replication_factor` distinct live brokers per
//!   partition, round robin from a starting offset, so consecutive partitions start on
//!   different brokers and leadership spreads. Fails rather than placing two replicas of
//!   one partition on one broker.
//! - **Fencing** ([`fence_broker`]): a broker whose session lapsed is marked fenced, leaves
//!   every ISR it is in (unless it is the last member, see below) and loses every
//!   leadership it holds. Fencing is how a silent broker stops being counted: nothing else
//!   takes it out of an ISR.
//! - **Leader election** (Kafka's rules, [`elect_offline`], [`fence_broker`]): the new
//!   leader is the first replica, in replica order, that is in the ISR and unfenced,
//!   preferring replicas not being removed by a reassignment (one being removed is elected
//!   only when no other ISR member is live: it still holds every acknowledged record). With
//!   `unclean.leader.election.enable` a live replica outside the ISR may be chosen when no
//!   ISR member is live; the ISR then shrinks to that replica alone (possible data loss, off
//!   by default). The ISR never becomes empty by an election or a fence: when its last live
//!   member is fenced it stays, with no leader (`-1`), so that only it can be elected when
//!   it returns (no acknowledged record is lost by electing a replica that may lack it).
//! - **ISR changes** ([`alter_isr`]): only the current leader, quoting the current leader
//!   and partition epochs, may change the ISR; it must stay within the replicas and keep
//!   the leader; only live brokers may join (leaving is always allowed).
//! - **Remote segments** ([`remote_segment_uploaded`], tiered storage): only the current
//!   leader, quoting its current leader epoch and naming itself the uploader, may add a
//!   segment, and only one that exactly continues the partition's remote log
//!   ([`MetadataImage::check_remote_upload`], the same rule the image applies with, so a
//!   record proposed here applies). A segment already held is not proposed again. The
//!   bounds that may change between versions ([`REMOTE_SEGMENTS_PER_PARTITION_MAX`],
//!   [`REMOTE_OBJECT_KEY_BYTES_MAX`], a non-empty object) are checked here only, never at
//!   apply time: nodes of two versions replaying one log must compute one image.
//! - **Preferred leaders and reassignments** ([`preferred_elections`], [`reassign`]).
//!   A reassignment follows KIP-455 as Kafka's KRaft controller runs it: the partition
//!   keeps its current replicas plus the ones being added, and completes (drops the
//!   replicas being removed) only once every *target* replica is in the ISR, so the ISR
//!   never loses its last member to a reassignment. A leader being removed keeps leading
//!   until then, and hands over to a target ISR member at completion.
//!
//! # Epochs
//! Every record carries a whole [`PartitionState`], and the image applies it only if its
//! `partition_epoch` is higher than the current one (and its `leader_epoch` not lower).
//! So every decision here bumps `partition_epoch` by one over the state it was made from,
//! and bumps `leader_epoch` exactly when the leader changes: two different leaders never
//! share a leader epoch, which is what lets followers and clients refuse a stale leader.
//! `check_change` asserts this for every state that leaves this module.
//!
//! # Invariants kept by every decision
//! Given a state with ISR ⊆ replicas (the image guarantees it), the decided state keeps
//! ISR ⊆ replicas, a leader elected here is a live replica, epochs move as above, and a
//! fenced broker never comes out of [`fence_broker`] as a leader. These are assertions:
//! the inputs are the controller's own image, never a peer's claim; requests (AlterIsr,
//! reassignments, elections) are validated and refused with `None` or an error first.

use super::image::{MetaRecord, MetadataImage, PartitionState, UploadCheck};
use super::peer::{AlterIsr, RemoteSegmentUploaded};
use crate::topic::PartitionId;

/// Bound on the segments of one partition's remote log. Every node holds the whole list
/// in its image and every snapshot carries it, so an uploader past it waits for remote
/// retention (its report is refused and resent). At the default `segment.bytes` (1 GiB)
/// this is 10 TB per partition.
pub const REMOTE_SEGMENTS_PER_PARTITION_MAX: usize = 10_000;
/// Bound on an object key (S3's own limit).
pub const REMOTE_OBJECT_KEY_BYTES_MAX: usize = 1_024;

/// Spread `count` partitions of `replication_factor` replicas over the live brokers,
/// round robin from `start` (Kafka's rack-unaware placement).
pub fn place_replicas(
    image: &MetadataImage,
    count: i32,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>, String> {
    // Only live brokers: a replica placed on a fenced broker would start out of the ISR
    // (or, worse, be elected at creation while nobody serves it).
    let brokers = image.live_brokers();
    // A negative factor from the request maps to 0 and is refused below, like Kafka.
    let factor = usize::try_from(replication_factor).unwrap_or(0);
    if factor == 0 || factor > brokers.len() {
        return Err(format!(
            "Unable to replicate the partition {replication_factor} time(s): The target \
             replication factor of {replication_factor} cannot be reached because only {} \
             broker(s) are registered.",
            brokers.len()
        ));
    }
    let count = usize::try_from(count).unwrap_or(0);
    let placement: Vec<Vec<i32>> = (0..count)
        .map(|p| {
            (0..factor)
                .map(|r| brokers[(start + p + r) % brokers.len()])
                .collect()
        })
        .collect();
    // `factor` consecutive slots of a ring of `brokers.len() >= factor` are distinct: two
    // replicas on one broker would count one disk twice towards acks=all.
    debug_assert!(placement.iter().all(|replicas| {
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == factor && replicas.iter().all(|r| image.is_live(*r))
    }));
    Ok(placement)
}

/// Choose a leader for `state` given who is live; `None` when no replica may lead.
fn elect(image: &MetadataImage, state: &PartitionState, unclean: bool) -> Option<(i32, bool)> {
    // PLANTED BUG (weir-sim's planted suite only): elect any live replica, in the ISR or
    // not, without telling anyone the election was unclean.
    if crate::planted::on(crate::planted::Bug::ElectOutsideIsr) {
        return state
            .replicas
            .iter()
            .copied()
            .find(|r| image.is_live(*r))
            .map(|leader| (leader, false));
    }
    // Replica order puts the preferred leader first, so a clean election returns to it as
    // soon as it is back in the ISR and live. A replica being removed is passed over while
    // another ISR member can lead (it would lose the leadership at completion anyway), but
    // not refused: when it is the only live ISR member it is the only clean choice, and
    // refusing it would leave the partition offline or, with unclean elections allowed,
    // hand it to a replica that may lack acknowledged records.
    let in_sync = |r: &i32| state.isr.contains(r) && image.is_live(*r);
    let clean = (state.replicas.iter().copied())
        .find(|r| in_sync(r) && !state.removing.contains(r))
        .or_else(|| state.replicas.iter().copied().find(in_sync));
    if let Some(leader) = clean {
        // The heart of clean election: an ISR member has every acknowledged record.
        debug_assert!(state.isr.contains(&leader) && state.replicas.contains(&leader));
        return Some((leader, false));
    }
    // Unclean: no ISR member is live. Picking a replica outside the ISR can lose records it
    // never received; only allowed when the operator asked for availability over that.
    if unclean {
        return (state.replicas.iter().copied())
            .find(|r| image.is_live(*r) && !state.removing.contains(r))
            .or_else(|| state.replicas.iter().copied().find(|r| image.is_live(*r)))
            .map(|leader| (leader, true));
    }
    None
}

/// The state after a leader change to `leader` (or none).
fn with_leader(state: &PartitionState, leader: Option<(i32, bool)>) -> PartitionState {
    // Whoever `elect` chose is a replica: leadership on a broker that holds no copy would
    // serve an empty log as the partition's truth.
    debug_assert!(leader.is_none_or(|(id, _)| state.replicas.contains(&id)));
    let mut next = state.clone();
    next.partition_epoch += 1;
    match leader {
        Some((id, unclean)) => {
            if id != state.leader {
                next.leader_epoch += 1;
            }
            next.leader = id;
            // After an unclean election only the new leader's log is authoritative: the
            // old ISR members may hold records it lacks, and must truncate before rejoining.
            if unclean {
                next.isr = vec![id];
            }
        }
        None => {
            if state.leader >= 0 {
                next.leader_epoch += 1;
            }
            next.leader = -1;
        }
    }
    check_change(state, &next);
    next
}

/// Fence broker `id`: the fence record, then for every partition it leads or follows in
/// sync, its removal from the ISR (unless it is the last member) and a new leader.
pub fn fence_broker(image: &MetadataImage, id: i32, unclean: bool) -> Vec<MetaRecord> {
    let mut records = vec![MetaRecord::SetFenced { id, fenced: true }];
    // Elections below must already see `id` as fenced, or they could hand leadership
    // straight back to the broker being fenced.
    let mut view = image.clone();
    if let Some(broker) = view.brokers.get_mut(&id) {
        broker.fenced = true;
    }
    for topic in image.topics.values() {
        for (index, state) in topic.partitions.iter().enumerate() {
            // A partition where `id` neither leads nor is in sync needs no record: its ISR
            // does not count `id`, so acks=all is not waiting on the fenced broker.
            if state.leader != id && !state.isr.contains(&id) {
                continue;
            }
            let mut next = state.clone();
            // Keep the last ISR member even when fenced: it may be the only replica with
            // every acknowledged record, so it must stay the only one electable.
            if next.isr.len() > 1 {
                next.isr.retain(|r| *r != id);
            }
            let leader = if state.leader == id || state.leader < 0 {
                elect(&view, &next, unclean)
            } else {
                Some((state.leader, false))
            };
            let mut next = with_leader(&next, leader);
            // Same leader, same epoch: bumping it would make the leader's followers reject
            // its fetches for nothing, since only the ISR changed.
            if next.leader == state.leader {
                next.leader_epoch = state.leader_epoch;
            }
            check_change(state, &next);
            // The fenced broker leads nothing after this record, and sits in no ISR it is
            // not the last member of.
            assert_ne!(next.leader, id, "fenced broker {id} kept a leadership");
            debug_assert!(!next.isr.contains(&id) || next.isr.len() == 1);
            if &next != state {
                records.push(MetaRecord::PartitionChange {
                    id: topic.id,
                    partition: index as i32,
                    state: next,
                });
            }
        }
    }
    records
}

/// Partitions without a live leader that can now get one.
pub fn elect_offline(image: &MetadataImage, unclean: bool) -> Vec<MetaRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, state) in topic.partitions.iter().enumerate() {
            // Leaderless (`-1`) or led by a fenced broker: both are offline for clients.
            if state.leader >= 0 && image.is_live(state.leader) {
                continue;
            }
            if let Some(leader) = elect(image, state, unclean) {
                let next = with_leader(state, Some(leader));
                // Electing a fenced broker would leave the partition as offline as before,
                // with a new epoch that fences out the broker that comes back.
                assert!(
                    image.is_live(next.leader),
                    "elected fenced broker {}",
                    next.leader
                );
                records.push(MetaRecord::PartitionChange {
                    id: topic.id,
                    partition: index as i32,
                    state: next,
                });
            }
        }
    }
    records
}

/// A leader's ISR change request, if it is current and valid.
pub fn alter_isr(image: &MetadataImage, from: i32, request: &AlterIsr) -> Option<MetaRecord> {
    let id = u128::from_be_bytes(request.topic_id);
    let state = image.partition(id, request.partition)?;
    // Everything in `request` is a peer's claim and is checked here with returns: an
    // old leader, an old epoch (a request decided before a change it did not see), an
    // ISR without its own sender or with a non-replica is refused, never asserted.
    if state.leader != from
        || state.leader_epoch != request.leader_epoch
        || state.partition_epoch != request.partition_epoch
        || !request.isr.contains(&from)
        || request.isr.iter().any(|r| !state.replicas.contains(r))
    {
        return None;
    }
    // Only live brokers join the ISR; leaving is always allowed.
    if request
        .isr
        .iter()
        .any(|r| !state.isr.contains(r) && !image.is_live(*r))
    {
        return None;
    }
    let mut next = state.clone();
    next.isr = request.isr.clone();
    next.partition_epoch += 1;
    // An ISR that now holds every target replica completes a reassignment in progress:
    // this is where a reassignment waiting for its targets to catch up finishes.
    let next = finish_reassignment(image, state, next);
    check_change(state, &next);
    Some(MetaRecord::PartitionChange {
        id,
        partition: request.partition,
        state: next,
    })
}

/// A leader's report of an uploaded segment, if it is current and valid: the record to
/// propose, or `None` (refused, or already held: a resend of a committed report).
///
/// The decision image is the applied image as it will be just before the proposed
/// record (everything proposed before it commits first, or nothing does), so the image's
/// own check at apply time gives the same answer: the record is applied, never dropped.
pub fn remote_segment_uploaded(
    image: &MetadataImage,
    from: i32,
    request: &RemoteSegmentUploaded,
) -> Option<MetaRecord> {
    let id = u128::from_be_bytes(request.topic_id);
    let segment = &request.segment;
    // A peer's claim: a sender that is not the uploader it names, an object with no bytes
    // or a key no store accepts is refused here, never asserted on.
    if segment.uploader != from
        || segment.size_bytes == 0
        || segment.object_key.is_empty()
        || segment.object_key.len() > REMOTE_OBJECT_KEY_BYTES_MAX
    {
        return None;
    }
    let check = image.check_remote_upload(id, request.partition, request.leader_epoch, segment);
    if check != UploadCheck::Admitted {
        return None;
    }
    let held = image
        .remote_log(id, request.partition)
        .map_or(0, |log| log.segments.len());
    if held >= REMOTE_SEGMENTS_PER_PARTITION_MAX {
        return None;
    }
    // Admitted means the partition exists and `from` leads it at the quoted epoch.
    debug_assert!(image
        .partition(id, request.partition)
        .is_some_and(|s| s.leader == from && s.leader_epoch == request.leader_epoch));
    Some(MetaRecord::RemoteSegmentUploaded {
        id,
        partition: request.partition,
        leader_epoch: request.leader_epoch,
        segment: segment.clone(),
    })
}

/// A leader's request to drop its partition's remote log below `below` (remote retention,
/// which asks at a segment's end, or DeleteRecords, at any offset up to its high
/// watermark). Refused (None) unless `from` leads the partition at the quoted epoch and
/// `below` lies above the remote log start: a repeat of one already applied is dropped.
pub fn remote_segments_expired(
    image: &MetadataImage,
    from: i32,
    request: &crate::cluster::peer::RemoteSegmentsExpired,
) -> Option<MetaRecord> {
    let id = u128::from_be_bytes(request.topic_id);
    let state = image.partition(id, request.partition)?;
    if state.leader != from || state.leader_epoch != request.leader_epoch {
        return None;
    }
    let log = image.remote_log(id, request.partition)?;
    if request.below <= log.log_start_offset {
        return None;
    }
    Some(MetaRecord::RemoteSegmentsDeleted {
        id,
        partition: request.partition,
        below: request.below,
    })
}

/// Complete the reassignment in progress in `next` (decided from `before`) if every
/// target replica is in its ISR (KIP-455): the replicas being removed leave the replicas
/// and the ISR, and a leader among them hands over to a target ISR member.
///
/// The targets are the replicas not being removed, so the ISR left after completion holds
/// all of them and is never empty. Before that, nothing is removed: a shrink to replicas
/// outside the ISR waits for them to catch up (the leader's AlterIsr adding them completes
/// it), rather than dropping the only replicas known to hold every acknowledged record.
fn finish_reassignment(
    image: &MetadataImage,
    before: &PartitionState,
    mut next: PartitionState,
) -> PartitionState {
    // Replicas being added or removed are listed in `replicas` for the whole move, so
    // they are fetched from (adding) or still counted (removing) until it completes.
    debug_assert!(next.adding.iter().all(|r| next.replicas.contains(r)));
    debug_assert!(next.removing.iter().all(|r| next.replicas.contains(r)));
    if next.adding.is_empty() && next.removing.is_empty() {
        return next;
    }
    let targets: Vec<i32> = (next.replicas.iter().copied())
        .filter(|r| !next.removing.contains(r))
        .collect();
    // `reassign` refuses an empty target, so there is always a target to wait for.
    debug_assert!(!targets.is_empty(), "reassignment to no replica: {next:?}");
    if targets.is_empty() || !targets.iter().all(|r| next.isr.contains(r)) {
        return next;
    }
    let removing = std::mem::take(&mut next.removing);
    next.adding.clear();
    next.replicas = targets;
    next.isr.retain(|r| !removing.contains(r));
    // Every target is in the ISR, so the ISR keeps at least them.
    debug_assert!(next.replicas.iter().all(|r| next.isr.contains(r)));
    debug_assert!(!next.isr.is_empty());
    keep_or_elect(image, before, &mut next);
    next
}

/// After a change of `next`'s replicas or ISR (decided from `before`): a leader that is no
/// longer in the ISR (removed from the replicas, or dropped from the ISR), or no leader,
/// gives way to a clean election: the first live ISR member in replica order, `-1` when
/// none is live. A leader change takes the leader epoch one past `before`'s.
fn keep_or_elect(image: &MetadataImage, before: &PartitionState, next: &mut PartitionState) {
    if !next.isr.contains(&next.leader) {
        next.leader = elect(image, next, false).map_or(-1, |(leader, _)| leader);
    }
    next.leader_epoch = if next.leader == before.leader {
        before.leader_epoch
    } else {
        before.leader_epoch + 1
    };
    // A clean election only: the ISR is kept as it is, and the leader comes from it.
    debug_assert!(next.leader < 0 || next.isr.contains(&next.leader));
}

/// Move leadership to preferred replicas that are in the ISR and live (ElectLeaders
/// PREFERRED, and the periodic rebalance). `only`: restrict to these partitions.
pub fn preferred_elections(image: &MetadataImage, only: Option<&[PartitionId]>) -> Vec<MetaRecord> {
    let mut records = Vec::new();
    // A leader change costs every client and follower a metadata refresh, so partitions
    // already led by their preferred replica (or whose preferred replica cannot lead
    // safely right now) produce no record at all.
    for topic in image.topics.values() {
        for (index, state) in topic.partitions.iter().enumerate() {
            let key = PartitionId::new(uuid::Uuid::from_u128(topic.id), index);
            if only.is_some_and(|o| !o.contains(&key)) {
                continue;
            }
            let Some(&preferred) = state.replicas.first() else {
                continue;
            };
            if preferred == state.leader
                || !state.isr.contains(&preferred)
                || !image.is_live(preferred)
            {
                continue;
            }
            // Only to an ISR member that is live: moving leadership must never cost records,
            // unlike an unclean election.
            let mut next = state.clone();
            next.leader = preferred;
            next.leader_epoch += 1;
            next.partition_epoch += 1;
            check_change(state, &next);
            records.push(MetaRecord::PartitionChange {
                id: topic.id,
                partition: index as i32,
                state: next,
            });
        }
    }
    records
}

/// Start (or cancel, with `None`) a reassignment of one partition to `target`.
pub fn reassign(
    image: &MetadataImage,
    id: u128,
    partition: i32,
    target: Option<&[i32]>,
) -> Result<Option<MetaRecord>, String> {
    let state = image
        .partition(id, partition)
        .ok_or_else(|| "unknown partition".to_string())?;
    let mut next = state.clone();
    next.partition_epoch += 1;
    match target {
        None => {
            if state.adding.is_empty() && state.removing.is_empty() {
                return Err("no reassignment in progress".into());
            }
            // Cancel: back to the original replicas (current minus those being added).
            // The original replicas never left the replica list during the move, so
            // whatever of them is in the ISR is still in sync: no record can be lost by
            // falling back to them, as long as one of them remains in the ISR.
            let adding = std::mem::take(&mut next.adding);
            next.removing.clear();
            next.replicas.retain(|r| !adding.contains(r));
            next.isr.retain(|r| !adding.contains(r));
            if next.isr.is_empty() {
                return Err("cancelling would leave no in-sync replica".into());
            }
            // An added replica that had become leader hands over to an original ISR member
            // (one leader per epoch).
            keep_or_elect(image, state, &mut next);
        }
        Some(target) => {
            if target.is_empty() {
                return Err("empty replica list".into());
            }
            let mut seen = target.to_vec();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != target.len() {
                return Err(format!("duplicate replicas in {target:?}"));
            }
            if let Some(unknown) = target.iter().find(|r| !image.brokers.contains_key(r)) {
                return Err(format!("broker {unknown} is not registered"));
            }
            // Measured against the current replicas, as Kafka's KRaft controller does:
            // replacing a reassignment in progress keeps the replicas its predecessor was
            // adding until the new one completes, now as replicas being removed. They may
            // already be in the ISR, even lead, or be the only live ISR members: dropping
            // them at once could leave the leader outside the replicas or the ISR empty.
            next.adding = (target.iter().copied())
                .filter(|r| !state.replicas.contains(r))
                .collect();
            next.removing = (state.replicas.iter().copied())
                .filter(|r| !target.contains(r))
                .collect();
            let mut replicas = target.to_vec();
            replicas.extend(next.removing.iter().copied());
            next.replicas = replicas;
            // Nothing left the replicas: the ISR and the leader stand as they are until
            // completion (a leader being removed keeps leading until then, like Kafka's).
            debug_assert!(state.replicas.iter().all(|r| next.replicas.contains(r)));
        }
    }
    // A target that only reorders or is already in sync completes in this same record.
    let next = finish_reassignment(image, state, next);
    check_change(state, &next);
    Ok(Some(MetaRecord::PartitionChange {
        id,
        partition,
        state: next,
    }))
}

/// Asserts what every decided state owes the state it was decided from. The image drops a
/// record whose `partition_epoch` does not grow, so a decision that forgot to bump it
/// would vanish silently; a leader change without a new leader epoch would give two
/// leaders one epoch, and followers could not tell them apart.
fn check_change(before: &PartitionState, after: &PartitionState) {
    assert!(
        after.partition_epoch > before.partition_epoch,
        "partition epoch {} -> {}",
        before.partition_epoch,
        after.partition_epoch
    );
    assert!(
        after.leader_epoch >= before.leader_epoch,
        "leader epoch {} -> {}",
        before.leader_epoch,
        after.leader_epoch
    );
    if after.leader != before.leader {
        assert!(
            after.leader_epoch > before.leader_epoch,
            "leader {} -> {} in one epoch {}",
            before.leader,
            after.leader,
            after.leader_epoch
        );
    }
    // O(replicas × ISR), a handful of brokers: cheap, but kept to debug builds with the
    // other set checks.
    debug_assert!(
        after.isr.iter().all(|r| after.replicas.contains(r)),
        "isr {:?} outside replicas {:?}",
        after.isr,
        after.replicas
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerState, TopicImage};

    fn image(live: &[i32], fenced: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (id, is_fenced) in live
            .iter()
            .map(|id| (*id, false))
            .chain(fenced.iter().map(|id| (*id, true)))
        {
            image.apply(
                1,
                MetaRecord::RegisterBroker(BrokerState {
                    id,
                    incarnation: 1,
                    host: "h".into(),
                    port: 1,
                    peer_addr: "p".into(),
                    fenced: is_fenced,
                    broker_role: true,
                }),
            );
        }
        image.apply(
            2,
            MetaRecord::CreateTopic(TopicImage {
                name: "t".into(),
                id: 9,
                configs: vec![],
                partitions: vec![PartitionState::new(vec![1, 2, 3])],
            }),
        );
        image
    }

    fn apply_all(image: &mut MetadataImage, records: Vec<MetaRecord>) {
        for record in records {
            image.apply(3, record);
        }
        image.invariants();
    }

    // Goal: the record sets of two fencings decided within one commit window all apply
    // when each decision is made on the image that includes the previous one (the
    // controller's decision image), and are partly dropped as stale when both are made on
    // the same applied image (the acknowledged-write loss of issue 12: the dropped change
    // was the one moving leadership off a restarted broker).
    // Method: broker 1 leads; fence 1 then 2 on one image (stale), then on a decision view.
    #[test]
    fn decisions_in_one_commit_window_build_on_each_other() {
        let applied = image(&[1, 2, 3], &[]);
        // Deciding both on the applied image: the second set's change carries the same
        // partition epoch as the first and is dropped at apply time.
        let first = fence_broker(&applied, 1, false);
        let second = fence_broker(&applied, 2, false);
        let mut committed = applied.clone();
        apply_all(&mut committed, first.clone());
        apply_all(&mut committed, second);
        let stale = committed.partition(9, 0).expect("partition").clone();
        assert_eq!(stale.leader, 2, "the second fencing was dropped as stale");
        assert!(!committed.is_live(2));
        // Deciding on the view that already holds the first set.
        let mut view = applied.clone();
        apply_all(&mut view, first.clone());
        let second = fence_broker(&view, 2, false);
        apply_all(&mut view, second.clone());
        let mut committed = applied;
        apply_all(&mut committed, first);
        apply_all(&mut committed, second);
        assert_eq!(committed, view, "the committed image is the decision image");
        let state = committed.partition(9, 0).expect("partition");
        assert_eq!(state.leader, 3);
        assert_eq!(
            state.leader_epoch, 2,
            "each leader change has its own epoch"
        );
        assert_eq!(state.isr, vec![3]);
    }

    #[test]
    fn fencing_the_leader_elects_the_next_isr_member() {
        let mut image = image(&[1, 2, 3], &[]);
        let records = fence_broker(&image, 1, false);
        apply_all(&mut image, records);
        let state = image.partition(9, 0).expect("partition");
        assert_eq!(state.leader, 2);
        assert_eq!(state.leader_epoch, 1);
        assert_eq!(state.isr, vec![2, 3]);
    }

    #[test]
    fn last_isr_member_stays_and_only_it_is_elected_clean() {
        let mut image = image(&[1, 2, 3], &[]);
        for id in [1, 2, 3] {
            let records = fence_broker(&image, id, false);
            apply_all(&mut image, records);
        }
        let state = image.partition(9, 0).expect("partition").clone();
        assert_eq!(state.leader, -1);
        assert_eq!(state.isr, vec![3]);
        // Broker 1 returns: not in the ISR, so no clean leader.
        image.apply(
            4,
            MetaRecord::SetFenced {
                id: 1,
                fenced: false,
            },
        );
        assert!(elect_offline(&image, false).is_empty());
        // Unclean election picks it and resets the ISR.
        let records = elect_offline(&image, true);
        apply_all(&mut image, records);
        assert_eq!(image.partition(9, 0).map(|s| s.leader), Some(1));
        // Broker 3 returning would have been elected cleanly.
        let mut image2 = image_with_all_fenced();
        image2.apply(
            4,
            MetaRecord::SetFenced {
                id: 3,
                fenced: false,
            },
        );
        let records = elect_offline(&image2, false);
        apply_all(&mut image2, records);
        assert_eq!(image2.partition(9, 0).map(|s| s.leader), Some(3));
    }

    fn image_with_all_fenced() -> MetadataImage {
        let mut image = image(&[1, 2, 3], &[]);
        for id in [1, 2, 3] {
            let records = fence_broker(&image, id, false);
            apply_all(&mut image, records);
        }
        image
    }

    #[test]
    fn placement_needs_enough_live_brokers() {
        let image = image(&[1, 2], &[3]);
        assert!(place_replicas(&image, 2, 3, 0).is_err());
        let placed = place_replicas(&image, 3, 2, 1).expect("placed");
        assert_eq!(placed, vec![vec![2, 1], vec![1, 2], vec![2, 1]]);
    }

    #[test]
    fn reassignment_completes_when_targets_are_in_sync() {
        let mut image = image(&[1, 2, 3, 4], &[]);
        let record = reassign(&image, 9, 0, Some(&[2, 3, 4])).expect("ok");
        apply_all(&mut image, record.into_iter().collect());
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!(state.adding, vec![4]);
        assert_eq!(state.removing, vec![1]);
        let request = AlterIsr {
            topic_id: 9u128.to_be_bytes(),
            partition: 0,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: vec![1, 2, 3, 4],
        };
        let record = alter_isr(&image, 1, &request).expect("valid");
        apply_all(&mut image, vec![record]);
        let state = image.partition(9, 0).expect("p");
        assert_eq!(state.replicas, vec![2, 3, 4]);
        assert_eq!(state.leader, 2);
        assert!(state.adding.is_empty() && state.removing.is_empty());
    }

    /// The leader's AlterIsr setting the ISR of partition 9-0 to `isr`, quoting its epochs.
    fn set_isr(image: &mut MetadataImage, isr: &[i32]) {
        let state = image.partition(9, 0).expect("p").clone();
        let request = AlterIsr {
            topic_id: 9u128.to_be_bytes(),
            partition: 0,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: isr.to_vec(),
        };
        let record = alter_isr(image, state.leader, &request).expect("valid");
        apply_all(image, vec![record]);
    }

    fn reassign_to(image: &mut MetadataImage, target: &[i32]) {
        let record = reassign(image, 9, 0, Some(target)).expect("ok");
        apply_all(image, record.into_iter().collect());
    }

    // Goal: shrinking away from the only ISR member neither empties the ISR nor loses the
    // leader; it completes once the targets are in sync (KIP-455), and the leader then
    // hands over to a target. Method: ISR [1], reassign [1,2,3] to [2,3], then the leader
    // adds 2 and 3 to the ISR.
    #[test]
    fn shrinking_reassignment_waits_for_the_targets_to_join_the_isr() {
        let mut image = image(&[1, 2, 3], &[]);
        set_isr(&mut image, &[1]);
        reassign_to(&mut image, &[2, 3]);
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!(
            state.replicas,
            vec![2, 3, 1],
            "1 stays until 2 and 3 catch up"
        );
        assert_eq!(
            (state.adding.clone(), state.removing.clone()),
            (vec![], vec![1])
        );
        assert_eq!(state.isr, vec![1]);
        assert_eq!((state.leader, state.leader_epoch), (1, 0));
        // One target in sync is not enough.
        set_isr(&mut image, &[1, 2]);
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!(state.removing, vec![1]);
        assert_eq!(state.leader, 1);
        set_isr(&mut image, &[1, 2, 3]);
        let done = image.partition(9, 0).expect("p").clone();
        assert_eq!(done.replicas, vec![2, 3]);
        assert_eq!(done.isr, vec![2, 3]);
        assert!(done.adding.is_empty() && done.removing.is_empty());
        assert_eq!(done.leader, 2, "the removed leader hands over to a target");
        assert_eq!(done.leader_epoch, state.leader_epoch + 1);
        assert!(done.partition_epoch > state.partition_epoch);
    }

    // Goal: a replica being removed that is the only ISR member is still elected when it
    // returns (it alone is known to hold every acknowledged record), cleanly.
    // Method: ISR [1], reassign to [2,3], fence 1, unfence it, elect offline partitions.
    #[test]
    fn replica_being_removed_is_elected_when_it_is_the_only_isr_member() {
        let mut image = image(&[1, 2, 3], &[]);
        set_isr(&mut image, &[1]);
        reassign_to(&mut image, &[2, 3]);
        let records = fence_broker(&image, 1, false);
        apply_all(&mut image, records);
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!((state.leader, state.isr.clone()), (-1, vec![1]));
        image.apply(
            4,
            MetaRecord::SetFenced {
                id: 1,
                fenced: false,
            },
        );
        // Unclean elections allowed or not, the clean choice 1 wins over 2 and 3, which
        // may lack acknowledged records.
        for unclean in [false, true] {
            let records = elect_offline(&image, unclean);
            let mut after = image.clone();
            apply_all(&mut after, records);
            let state = after.partition(9, 0).expect("p");
            assert_eq!((state.leader, state.isr.clone()), (1, vec![1]));
            assert_eq!(state.removing, vec![1]);
        }
    }

    // Goal: replacing a reassignment in progress never leaves the leader outside the
    // replicas. Method: reassign [1,2,3] to [4,5,1,2,3], 4 joins the ISR and becomes the
    // preferred leader, then reassign back to [1,2,3], which is in sync: it completes and
    // leadership moves off 4 under a new leader epoch.
    #[test]
    fn replacing_a_reassignment_moves_leadership_off_dropped_replicas() {
        let mut image = image(&[1, 2, 3, 4, 5], &[]);
        reassign_to(&mut image, &[4, 5, 1, 2, 3]);
        set_isr(&mut image, &[1, 2, 3, 4]);
        let records = preferred_elections(&image, None);
        apply_all(&mut image, records);
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!(state.leader, 4);
        reassign_to(&mut image, &[1, 2, 3]);
        assert_moved_to_1_2_3(&image, &state);
    }

    /// The reassignment to [1, 2, 3] completed: 1 leads, one epoch after `before`.
    fn assert_moved_to_1_2_3(image: &MetadataImage, before: &PartitionState) {
        let done = image.partition(9, 0).expect("p").clone();
        assert_eq!(done.replicas, vec![1, 2, 3]);
        assert_eq!(done.isr, vec![1, 2, 3]);
        assert!(done.adding.is_empty() && done.removing.is_empty());
        assert_eq!(done.leader, 1);
        assert_eq!(done.leader_epoch, before.leader_epoch + 1);
    }

    // Goal: replacing a reassignment whose added replica is the only live ISR member keeps
    // that replica (as one being removed) until the new targets are in sync: dropping it at
    // once would empty the ISR. Method: [1,2,3] to [4,5,1,2,3], 4 joins the ISR, 1, 2 and
    // 3 are fenced (4 leads alone), then reassign to [1,2,3]; 1, 2, 3 return and catch up.
    #[test]
    fn replacing_a_reassignment_never_empties_the_isr() {
        let mut image = image(&[1, 2, 3, 4, 5], &[]);
        reassign_to(&mut image, &[4, 5, 1, 2, 3]);
        set_isr(&mut image, &[1, 2, 3, 4]);
        for id in [1, 2, 3] {
            let records = fence_broker(&image, id, false);
            apply_all(&mut image, records);
        }
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!((state.leader, state.isr.clone()), (4, vec![4]));
        reassign_to(&mut image, &[1, 2, 3]);
        let state = image.partition(9, 0).expect("p").clone();
        assert_eq!(state.replicas, vec![1, 2, 3, 4, 5]);
        assert_eq!(
            (state.adding.clone(), state.removing.clone()),
            (vec![], vec![4, 5])
        );
        assert_eq!((state.leader, state.isr.clone()), (4, vec![4]));
        for id in [1, 2, 3] {
            image.apply(4, MetaRecord::SetFenced { id, fenced: false });
        }
        set_isr(&mut image, &[4, 1, 2, 3]);
        assert_moved_to_1_2_3(&image, &state);
    }

    fn report(from: i32, leader_epoch: i32, base: i64, end: i64) -> RemoteSegmentUploaded {
        RemoteSegmentUploaded {
            topic_id: 9u128.to_be_bytes(),
            partition: 0,
            leader_epoch,
            segment: crate::cluster::image::RemoteSegment {
                base_offset: base,
                end_offset: end,
                leader_epoch,
                size_bytes: 4_096,
                max_timestamp: 5,
                object_key: format!("9-0/{base}"),
                uploader: from,
            },
        }
    }

    // Goal: the controller proposes the current leader's continuation once, and what it
    // proposes the image applies. Method: report, apply, report again, continue.
    #[test]
    fn a_leader_report_is_recorded_once() {
        let mut image = image(&[1, 2, 3], &[]);
        let first = report(1, 0, 0, 100);
        let record = remote_segment_uploaded(&image, 1, &first).expect("admitted");
        apply_all(&mut image, vec![record]);
        let log = image.remote_log(9, 0).expect("log");
        assert_eq!(log.segments[&0], first.segment);
        assert_eq!(remote_segment_uploaded(&image, 1, &first), None, "a resend");
        let next = report(1, 0, 100, 150);
        let record = remote_segment_uploaded(&image, 1, &next).expect("continues");
        apply_all(&mut image, vec![record]);
        assert_eq!(image.remote_log(9, 0).map(|l| l.end_offset()), Some(150));
    }

    // Goal: reports from a follower, a deposed leader, a sender naming another uploader,
    // an overlap, an empty object, an oversized key, and past the segment bound are all
    // refused. Method: one refused variation each of a valid report.
    #[test]
    fn invalid_remote_reports_are_refused() {
        let mut image = image(&[1, 2, 3], &[]);
        assert!(remote_segment_uploaded(&image, 2, &report(2, 0, 0, 10)).is_none());
        let mut foreign = report(1, 0, 0, 10);
        foreign.segment.uploader = 2;
        assert!(remote_segment_uploaded(&image, 1, &foreign).is_none());
        let mut empty = report(1, 0, 0, 10);
        empty.segment.size_bytes = 0;
        assert!(remote_segment_uploaded(&image, 1, &empty).is_none());
        let mut long_key = report(1, 0, 0, 10);
        long_key.segment.object_key = "k".repeat(REMOTE_OBJECT_KEY_BYTES_MAX + 1);
        assert!(remote_segment_uploaded(&image, 1, &long_key).is_none());
        let record = remote_segment_uploaded(&image, 1, &report(1, 0, 0, 10)).expect("ok");
        apply_all(&mut image, vec![record]);
        assert!(remote_segment_uploaded(&image, 1, &report(1, 0, 5, 20)).is_none());
        // Leader 1 is fenced: 2 leads at epoch 1, and 1's next report is stale.
        let records = fence_broker(&image, 1, false);
        apply_all(&mut image, records);
        assert!(remote_segment_uploaded(&image, 1, &report(1, 0, 10, 20)).is_none());
        let record = remote_segment_uploaded(&image, 2, &report(2, 1, 10, 20)).expect("new");
        apply_all(&mut image, vec![record]);
        // The bound: a full list refuses the next segment.
        let log = image
            .remote
            .get_mut(&9)
            .and_then(|l| l.get_mut(&0))
            .expect("log");
        for base in 20..(REMOTE_SEGMENTS_PER_PARTITION_MAX as i64 + 18) {
            log.segments
                .insert(base, report(2, 1, base, base + 1).segment);
        }
        image.invariants();
        let end = image.remote_log(9, 0).expect("log").end_offset();
        assert!(remote_segment_uploaded(&image, 2, &report(2, 1, end, end + 1)).is_none());
    }

    #[test]
    fn stale_or_foreign_isr_changes_are_refused() {
        let image = image(&[1, 2, 3], &[]);
        let request = AlterIsr {
            topic_id: 9u128.to_be_bytes(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1, 2],
        };
        assert!(alter_isr(&image, 2, &request).is_none(), "not the leader");
        let mut stale = request.clone();
        stale.partition_epoch = 5;
        assert!(alter_isr(&image, 1, &stale).is_none());
        assert!(alter_isr(&image, 1, &request).is_some());
    }
}
