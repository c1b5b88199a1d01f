//! The consumer-group workloads (`group`, `group-crash`): members that subscribe through the
//! real `weir-client` (classic protocol, range assignor, explicit commits), how their
//! operations are recorded, and the group properties the harness checks itself on top of
//! `weir_jepsen`'s `group-gap`.
//!
//! Actors (spawned by the simulators):
//! - `group-member-0..GROUP_MEMBERS`, one host each (faults hit members apart): subscribe
//!   to the topic in group [`GROUP_ID`] and loop poll -> commit. Each poll is one Jepsen
//!   `poll` op; its completion carries `committed` (the positions after the poll were
//!   committed, or the commit's outcome is unknown) and a `rebalance_log` when the member's
//!   identity (member id, generation) changed during the poll (eager protocol: everything
//!   revoked, the new assignment assigned). A commit refused by the coordinator
//!   (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) leaves the op
//!   uncommitted and seeks back to the op's first offsets, so what was read is read again
//!   (or by the next owner, from the committed offset). During the main phase members
//!   leave (LeaveGroup) and rejoin as new processes, or stall past the session timeout
//!   (the coordinator expires them; they come back as zombies that must rejoin).
//! - `consumer` (the plain workloads' consumer host) runs the watcher: it reads the
//!   group's committed offsets every [`WATCH_INTERVAL`], and in the final phase waits for
//!   the group to be stable with every partition owned and committed up to the high
//!   watermark, then stops the members and checks at-least-once over the history.
//! - `final-reader` runs as in every workload, and waits for the watcher before it ends
//!   the run.
//!
//! Properties (harness violations; the checker adds `group-gap` with `sub_via: both`):
//! - ownership: no two members claim one partition in the same generation (of one broker
//!   incarnation: the classic coordinator keeps generations in memory only);
//! - fencing: a commit acknowledged to generation g never follows (in real time) an
//!   acknowledged commit of a later generation of the same incarnation;
//! - durability and monotonicity of commits: the committed offset the broker reports is
//!   never below an offset already acknowledged to a member (no operator resets here);
//! - coverage: once producers are done, the group becomes stable with every partition
//!   owned by exactly one live member, as both the members and DescribeGroups say;
//! - at-least-once: every acknowledged value is returned to some member.
//!
//! Invariant: a claim's incarnation is known only when the member's identity changed
//! during a poll with no broker crash in between; claims of unknown incarnation are not
//! compared (a restarted coordinator reuses generation numbers and member ids).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use weir_client::{Admin, ClientError, Consumer, ErrorCode, GroupConfig, Offset, TopicPartition};
use weir_jepsen::history::{Rebalance, RebalanceKind};
use weir_jepsen::{Event, Kind, Mop, Phase, Value, F};
use weir_runtime::Runtime;
use weir_wire::domain::LATEST_TIMESTAMP;

use crate::disk::{DiskFaults, HostDisk};
use crate::seed::Rng;
use crate::shared_log::{AckedCommit, Claim};
use crate::workload::{
    all_keys, client_config, consumer_config, now_ns, sleep, Actors, Spec, BUGGIFY_PER_MILLE, TOPIC,
};

/// The group every member joins.
pub const GROUP_ID: &str = "sim-group";
/// Members in the group workloads.
pub const GROUP_MEMBERS: usize = 3;
/// Members' `session.timeout.ms`: short, so expiry happens within a run.
const SESSION_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Members' `heartbeat.interval.ms`.
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);
/// Members' `max.poll.interval.ms` (the rebalance timeout).
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(3);
/// One poll's timeout.
const POLL_TIMEOUT: Duration = Duration::from_millis(300);
/// How often the watcher reads the committed offsets.
const WATCH_INTERVAL: Duration = Duration::from_millis(150);
/// Simulated time the group may take in the final phase to become stable and catch up.
const GROUP_FINAL_BUDGET: Duration = Duration::from_secs(60);

/// The spec of `group` (`crash = false`) and `group-crash`.
pub fn spec(base: Spec, crash: bool, crashy_disk: DiskFaults) -> Spec {
    let group = Spec {
        group_members: GROUP_MEMBERS,
        // A longer main phase, so members leave, stall and rebalance while data flows.
        sends_per_producer: 60,
        ..base
    };
    if !crash {
        return group;
    }
    Spec {
        crashes: true,
        net_faults: true,
        clock_jumps: true,
        disk: crashy_disk,
        buggify_per_mille: BUGGIFY_PER_MILLE,
        ..group
    }
}

/// The host name of member `index`.
pub fn member_name(index: usize) -> String {
    format!("group-member-{index}")
}

/// What a member knows about its own identity and commits.
#[derive(Debug, Default)]
struct MemberState {
    /// Broker incarnation (crash count) the current identity was obtained in, if known.
    incarnation: Option<u64>,
    /// A commit is owed: the last one's outcome was unknown, or it was skipped.
    dirty: bool,
}

fn identity<R: Runtime>(consumer: &Consumer<R>) -> Option<(String, i32)> {
    consumer
        .group_generation()
        .filter(|(member, generation)| !member.is_empty() && *generation >= 0)
}

fn owned<R: Runtime>(consumer: &Consumer<R>) -> Vec<i32> {
    let mut partitions: Vec<i32> = (consumer.assignment().into_iter())
        .filter(|tp| tp.topic == TOPIC)
        .map(|tp| tp.partition)
        .collect();
    partitions.sort_unstable();
    partitions
}

fn keys(partitions: &[i32]) -> Vec<u32> {
    partitions
        .iter()
        .filter_map(|p| u32::try_from(*p).ok())
        .collect()
}

fn group_config() -> GroupConfig {
    GroupConfig {
        session_timeout: SESSION_TIMEOUT,
        rebalance_timeout: REBALANCE_TIMEOUT,
        heartbeat_interval: HEARTBEAT_INTERVAL,
        // The workload commits explicitly after each poll, so it knows what was committed.
        enable_auto_commit: false,
        ..GroupConfig::new(GROUP_ID)
    }
}

fn stopped(actors: &Actors) -> bool {
    actors.control.lock().group.stop
}

/// One group member actor: subscribe, poll and commit until the watcher says stop; leave
/// or stall now and then during the main phase.
pub async fn member<R: Runtime>(runtime: R, actors: Actors, index: usize, disk: HostDisk) {
    let name = member_name(index);
    let mut rng = Rng::fork(actors.seed, &name);
    let mut chaos_at = runtime.now() + Duration::from_millis(rng.between(300, 1_500));
    'process: while !stopped(&actors) {
        let process = actors.recorder.process();
        actors.control.lock().group.processes.insert(process);
        let Some(mut consumer) = subscribe(&runtime, &actors, process, &name).await else {
            sleep(&runtime, Duration::from_millis(200)).await;
            continue;
        };
        let mut state = MemberState::default();
        loop {
            if stopped(&actors) {
                actors.control.lock().group.live.remove(&index);
                drop(consumer.close().await);
                break 'process;
            }
            if !actors.control.final_phase() && runtime.now() >= chaos_at {
                chaos_at = runtime.now() + Duration::from_millis(rng.between(500, 2_500));
                actors.control.lock().group.live.remove(&index);
                if rng.chance(600) {
                    // Leave: LeaveGroup now; a new process subscribes a little later.
                    drop(consumer.close().await);
                    sleep(&runtime, Duration::from_millis(rng.between(50, 800))).await;
                    continue 'process;
                }
                // Stall past the session timeout: the coordinator expires this member,
                // which comes back still believing it owns its partitions.
                let stall = SESSION_TIMEOUT + Duration::from_millis(rng.between(200, 1_500));
                sleep(&runtime, stall).await;
            }
            let polled = member_poll(
                &runtime,
                &actors,
                process,
                index,
                &disk,
                &mut state,
                &mut consumer,
            )
            .await;
            if polled.is_err() {
                // Unknown outcome: this process is retired, as a crashed one would be (no
                // LeaveGroup: the session expires).
                actors.control.lock().group.live.remove(&index);
                continue 'process;
            }
        }
    }
    actors.control.lock().group.members_done += 1;
}

/// Connect, wait for the topic, subscribe; recorded as one `subscribe` op.
async fn subscribe<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    name: &str,
) -> Option<Consumer<R>> {
    let recorder = &actors.recorder;
    let keys = Value::Keys(all_keys(&actors.spec));
    let start = now_ns(runtime);
    recorder.event(
        process,
        Kind::Invoke,
        F::Subscribe,
        keys.clone(),
        start,
        Phase::Main,
        None,
        false,
    );
    let result = async {
        let mut consumer =
            Consumer::connect(runtime.clone(), consumer_config(&actors.bootstrap, name)).await?;
        // The range assignor skips topics that do not exist yet, and a classic member does
        // not rejoin when one appears: subscribe once the producers created it.
        let partitions = consumer.partitions_for(TOPIC).await?;
        if partitions.len() != usize::try_from(actors.spec.partitions).unwrap_or(0) {
            return Err(ClientError::kafka(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                TOPIC,
            ));
        }
        consumer
            .subscribe(group_config(), vec![TOPIC.to_owned()])
            .await?;
        Ok::<_, ClientError>(consumer)
    }
    .await;
    let end = now_ns(runtime);
    match result {
        Ok(consumer) => {
            recorder.event(
                process,
                Kind::Ok,
                F::Subscribe,
                keys,
                end,
                Phase::Main,
                None,
                false,
            );
            Some(consumer)
        }
        Err(error) => {
            let error = Some(error.to_string());
            recorder.event(
                process,
                Kind::Fail,
                F::Subscribe,
                keys,
                end,
                Phase::Main,
                error,
                false,
            );
            None
        }
    }
}

/// Commit errors that prove the coordinator refused the commit before writing anything.
fn commit_refused(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(
            ErrorCode::REBALANCE_IN_PROGRESS
                | ErrorCode::ILLEGAL_GENERATION
                | ErrorCode::UNKNOWN_MEMBER_ID
        )
    )
}

/// One recorded poll and its commit; `Err` when the process must retire.
async fn member_poll<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    process: u64,
    index: usize,
    disk: &HostDisk,
    state: &mut MemberState,
    consumer: &mut Consumer<R>,
) -> Result<(), ()> {
    let recorder = &actors.recorder;
    let crashes_before = disk.stats().crashes;
    let identity_before = identity(consumer);
    let owned_before = owned(consumer);
    let start = now_ns(runtime);
    let invoke = Value::Mops(vec![Mop::poll()]);
    recorder.event(
        process,
        Kind::Invoke,
        F::Poll,
        invoke.clone(),
        start,
        Phase::Main,
        None,
        false,
    );
    let records = match consumer.poll(POLL_TIMEOUT).await {
        Ok(records) => records,
        Err(error) => {
            let end = now_ns(runtime);
            let error = Some(error.to_string());
            recorder.event(
                process,
                Kind::Info,
                F::Poll,
                invoke,
                end,
                Phase::Main,
                error,
                false,
            );
            return Err(());
        }
    };
    let crashes_after = disk.stats().crashes;
    let identity_after = identity(consumer);
    let owned_after = owned(consumer);
    let mut rebalance_log = Vec::new();
    if identity_after != identity_before {
        // Joined during this poll: in this incarnation when no crash happened meanwhile.
        state.incarnation = (crashes_before == crashes_after).then_some(crashes_after);
        state.dirty = false;
        if !owned_before.is_empty() {
            rebalance_log.push(Rebalance {
                keys: keys(&owned_before),
                kind: RebalanceKind::Revoked,
            });
        }
        if !owned_after.is_empty() {
            rebalance_log.push(Rebalance {
                keys: keys(&owned_after),
                kind: RebalanceKind::Assigned,
            });
        }
    } else if state.incarnation != Some(crashes_after) {
        // The broker restarted since this identity was obtained: the member may hold a
        // stale claim or have rejoined under the very same id and generation.
        state.incarnation = None;
    }
    let mut reads: Vec<(u32, Vec<(i64, u64)>)> = Vec::new();
    let mut first_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for record in &records {
        let key = u32::try_from(record.partition).unwrap_or_default();
        first_offsets
            .entry(record.partition)
            .or_insert(record.offset);
        let value = record
            .value
            .as_ref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(value) = value else {
            recorder.violation(format!(
                "partition {} offset {}: unparseable value {:?}",
                record.partition, record.offset, record.value
            ));
            continue;
        };
        match reads.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push((record.offset, value)),
            None => reads.push((key, vec![(record.offset, value)])),
        }
    }
    reads.sort_by_key(|(key, _)| *key);

    // Record the claim before committing: it is what the member fetched under.
    if let (Some((member, generation)), Some(incarnation)) = (&identity_after, state.incarnation) {
        let claim = Claim {
            member: member.clone(),
            generation: *generation,
            partitions: owned_after.clone(),
        };
        let mut control = actors.control.lock();
        let violation = control.group.claim(incarnation, &claim);
        control.group.live.insert(index, claim);
        drop(control);
        if let Some(violation) = violation {
            recorder.violation(violation);
        }
    } else if let Some((member, generation)) = &identity_after {
        let claim = Claim {
            member: member.clone(),
            generation: *generation,
            partitions: owned_after.clone(),
        };
        actors.control.lock().group.live.insert(index, claim);
    } else {
        actors.control.lock().group.live.remove(&index);
    }

    let committed = if records.is_empty() && !state.dirty {
        false
    } else {
        commit(runtime, actors, disk, state, consumer, &first_offsets).await
    };
    let end = now_ns(runtime);
    let mut event = Event::new(
        process,
        Kind::Ok,
        F::Poll,
        Value::Mops(vec![Mop::polled(reads)]),
    );
    event.time = Some(end);
    event.committed = committed;
    event.rebalance_log = rebalance_log;
    recorder.push(event);
    Ok(())
}

/// Commit the positions after a poll. True when the commit was acknowledged or its outcome
/// is unknown (it may have been written: the reads count as committed, which only widens
/// what `group-gap` accepts as processed); false when it certainly did not happen, and then
/// the partitions read are sought back to this op's first offsets.
async fn commit<R: Runtime>(
    runtime: &R,
    actors: &Actors,
    disk: &HostDisk,
    state: &mut MemberState,
    consumer: &mut Consumer<R>,
    first_offsets: &BTreeMap<i32, i64>,
) -> bool {
    let Some((member, generation)) = identity(consumer) else {
        // Fenced (no generation): the client would skip the commit; the next poll rejoins
        // and the new owner starts from the committed offsets.
        seek_back(consumer, first_offsets).await;
        return false;
    };
    let positions: Vec<(i32, i64)> = owned(consumer)
        .into_iter()
        .filter_map(|p| Some((p, consumer.position(TOPIC, p)?)))
        .collect();
    let crashes_before = disk.stats().crashes;
    let invoked_ns = now_ns(runtime);
    let result = consumer.commit().await;
    let completed_ns = now_ns(runtime);
    let crashes_after = disk.stats().crashes;
    match result {
        Ok(()) => {
            state.dirty = false;
            let known = crashes_before == crashes_after && state.incarnation == Some(crashes_after);
            let acked = known.then_some(AckedCommit {
                incarnation: crashes_after,
                generation,
                member,
                invoked_ns,
                completed_ns,
            });
            let violation = actors.control.lock().group.acked_commit(&positions, acked);
            if let Some(violation) = violation {
                actors.recorder.violation(violation);
            }
            true
        }
        Err(error) if commit_refused(&error) => {
            seek_back(consumer, first_offsets).await;
            false
        }
        Err(error) => {
            tracing::debug!(%error, "commit outcome unknown");
            state.dirty = true;
            true
        }
    }
}

async fn seek_back<R: Runtime>(consumer: &mut Consumer<R>, first_offsets: &BTreeMap<i32, i64>) {
    for (&partition, &offset) in first_offsets {
        // Fails only when the partition is no longer assigned: then the next owner starts
        // from the committed offset anyway.
        drop(consumer.seek(TOPIC, partition, Offset::At(offset)).await);
    }
}

/// The watcher (on the `consumer` host): committed offsets over time, then the final-phase
/// convergence and the at-least-once check.
pub async fn watcher<R: Runtime>(runtime: R, actors: Actors) {
    let mut admin = connect_admin(&runtime, &actors).await;
    while !actors.control.final_phase() {
        if observe_offsets(&admin, &actors).await.is_err() {
            // A request that timed out leaves its connection open (and possibly wedged
            // after a crash or a lossy link): start over with fresh connections.
            admin = connect_admin(&runtime, &actors).await;
        }
        sleep(&runtime, WATCH_INTERVAL).await;
    }
    let deadline = runtime.now() + GROUP_FINAL_BUDGET;
    let converged = converge(&runtime, &mut admin, &actors, deadline).await;
    if let Err(why) = &converged {
        actors.recorder.violation(format!(
            "coverage: the group did not become stable with every partition owned and \
             committed up to the high watermark in {GROUP_FINAL_BUDGET:?}: {why}"
        ));
    }
    actors.control.lock().group.stop = true;
    while actors.control.lock().group.members_done < actors.spec.group_members
        && runtime.now() < deadline + GROUP_FINAL_BUDGET
    {
        sleep(&runtime, Duration::from_millis(50)).await;
    }
    admin = connect_admin(&runtime, &actors).await;
    drop(observe_offsets(&admin, &actors).await);
    if converged.is_ok() {
        at_least_once(&actors);
    }
    actors.control.lock().group.done = true;
}

async fn connect_admin<R: Runtime>(runtime: &R, actors: &Actors) -> Admin<R> {
    loop {
        let config = client_config(&actors.bootstrap, "watcher");
        match Admin::connect(runtime.clone(), config).await {
            Ok(admin) => return admin,
            Err(_) => sleep(runtime, Duration::from_millis(100)).await,
        }
    }
}

/// Read the committed offsets; a violation for any below what was already acknowledged.
async fn observe_offsets<R: Runtime>(
    admin: &Admin<R>,
    actors: &Actors,
) -> Result<BTreeMap<i32, i64>, ClientError> {
    // Only commits acknowledged before the request was sent bound the answer.
    let floor = actors.control.lock().group.acked.clone();
    let sent_ms = admin.cluster().runtime().now().as_millis();
    let committed = admin.list_group_offsets(GROUP_ID, None).await?;
    let committed: BTreeMap<i32, i64> = (committed.into_iter())
        .filter(|(tp, _)| tp.topic == TOPIC)
        .map(|(tp, offset)| (tp.partition, offset))
        .collect();
    for (partition, acked) in floor {
        let seen = committed.get(&partition).copied().unwrap_or(-1);
        if seen < acked {
            actors.recorder.violation(format!(
                "committed offset went backwards: partition {partition} reads {seen} (asked \
                 at {sent_ms} ms) after {acked} was acknowledged to a member"
            ));
        }
    }
    Ok(committed)
}

/// Wait until the group is stable, every partition owned by one live member, and the
/// committed offsets reached the high watermarks. `Err` says what was missing last.
async fn converge<R: Runtime>(
    runtime: &R,
    admin: &mut Admin<R>,
    actors: &Actors,
    deadline: Duration,
) -> Result<(), String> {
    let partitions: Vec<i32> = (0..actors.spec.partitions).collect();
    let mut high_watermarks = None;
    let mut missing = "nothing observed".to_owned();
    while runtime.now() < deadline {
        sleep(runtime, Duration::from_millis(200)).await;
        if high_watermarks.is_none() {
            match latest_offsets(admin, &partitions).await {
                Ok(latest) => high_watermarks = Some(latest),
                Err(error) => {
                    missing = format!("high watermarks unknown: {error}");
                    *admin = connect_admin(runtime, actors).await;
                }
            }
        }
        let Some(high_watermarks) = &high_watermarks else {
            continue;
        };
        let committed = match observe_offsets(admin, actors).await {
            Ok(committed) => committed,
            Err(error) => {
                missing = format!("committed offsets unknown: {error}");
                *admin = connect_admin(runtime, actors).await;
                continue;
            }
        };
        let behind: Vec<String> = (high_watermarks.iter())
            .filter(|(p, hw)| committed.get(p).copied().unwrap_or(-1) < **hw)
            .map(|(p, hw)| format!("{p}: {:?} < {hw}", committed.get(p)))
            .collect();
        if !behind.is_empty() {
            missing = format!(
                "committed behind the high watermark ({})",
                behind.join(", ")
            );
            continue;
        }
        match coverage(admin, actors, &partitions).await {
            Ok(()) => return Ok(()),
            Err(why) => missing = why,
        }
    }
    Err(missing)
}

async fn latest_offsets<R: Runtime>(
    admin: &Admin<R>,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let queries: Vec<(TopicPartition, i64)> = (partitions.iter())
        .map(|p| (TopicPartition::new(TOPIC, *p), LATEST_TIMESTAMP))
        .collect();
    let answers = admin.cluster().list_offsets(&queries, false).await?;
    let mut latest = BTreeMap::new();
    for (tp, answer) in answers {
        latest.insert(tp.partition, answer?.offset);
    }
    Ok(latest)
}

/// The members' claims and the coordinator's view agree on a stable group in which every
/// partition has exactly one live owner.
async fn coverage<R: Runtime>(
    admin: &Admin<R>,
    actors: &Actors,
    partitions: &[i32],
) -> Result<(), String> {
    let live: Vec<Claim> = actors.control.lock().group.live.values().cloned().collect();
    let generations: BTreeSet<i32> = live.iter().map(|c| c.generation).collect();
    if generations.len() != 1 {
        return Err(format!("members in generations {generations:?}"));
    }
    let mut owners: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for claim in &live {
        for p in &claim.partitions {
            owners.entry(*p).or_default().push(&claim.member);
        }
    }
    for p in partitions {
        match owners.get(p).map(Vec::len) {
            Some(1) => {}
            Some(_) => return Err(format!("partition {p} owned by {:?}", owners[p])),
            None => return Err(format!("partition {p} owned by no live member")),
        }
    }
    let described = admin
        .describe_group(GROUP_ID)
        .await
        .map_err(|error| format!("DescribeGroups: {error}"))?;
    if described.state != "Stable" {
        return Err(format!("coordinator says {}", described.state));
    }
    let live_members: BTreeSet<&str> = live.iter().map(|c| c.member.as_str()).collect();
    let members: BTreeSet<&str> = (described.members.iter())
        .map(|m| m.member_id.as_str())
        .collect();
    if members != live_members {
        return Err(format!(
            "coordinator's members {members:?} are not the live members {live_members:?}"
        ));
    }
    let mut assigned: Vec<i32> = (described.members.iter())
        .flat_map(|m| m.assignment.iter())
        .filter(|tp| tp.topic == TOPIC)
        .map(|tp| tp.partition)
        .collect();
    assigned.sort_unstable();
    if assigned != partitions {
        return Err(format!("coordinator's assignment covers {assigned:?}"));
    }
    Ok(())
}

/// Every value acknowledged to a producer was returned to some group member.
fn at_least_once(actors: &Actors) {
    let processes = actors.control.lock().group.processes.clone();
    let history = actors.recorder.history();
    let mut acked: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut consumed: BTreeSet<(u32, u64)> = BTreeSet::new();
    for event in &history.events {
        let client = match &event.process {
            weir_jepsen::history::Process::Client(id) => *id,
            weir_jepsen::history::Process::Named(_) => continue,
        };
        for mop in event.mops() {
            match mop {
                Mop::Send {
                    key,
                    value,
                    offset: _,
                } if event.kind == Kind::Ok => {
                    acked.insert((*key, *value));
                }
                Mop::Poll(Some(polled)) if processes.contains(&client) => {
                    for (key, records) in polled {
                        consumed.extend(records.iter().map(|(_, value)| (*key, *value)));
                    }
                }
                _ => {}
            }
        }
    }
    let missed: Vec<&(u32, u64)> = acked.difference(&consumed).collect();
    if !missed.is_empty() {
        let shown: Vec<String> = (missed.iter().take(5))
            .map(|(key, value)| format!("{value} (partition {key})"))
            .collect();
        actors.recorder.violation(format!(
            "at-least-once: {} acknowledged values never reached a group member, e.g. {}",
            missed.len(),
            shown.join(", ")
        ));
    }
}
