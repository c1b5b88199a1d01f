//! This node as a broker of the cluster: registration, heartbeats and fencing, seen from
//! the broker's side.
//!
//! **Registration, heartbeats, fencing.** A broker heartbeats the controller; the
//! controller registers a new incarnation fenced (first fencing the old incarnation, which
//! moves its leaderships to new epochs), and unfences it once it has applied the log up to
//! its registration. The answer carries the *committed* fencing state: a broker serves as
//! unfenced only once the unfence is in the log every future controller continues from.
//! A broker the controller has not answered for a session fences itself. The controller
//! fences brokers whose sessions expired, and sooner those whose connections closed
//! ([`PEER_CLOSED_GRACE_MS`]) or that a new controller has not heard from yet.

use crate::cluster::peer::{BrokerHeartbeat, PeerMessage};
use crate::node::Node;
use std::collections::BTreeSet;

use crate::time::{Instant, Now};

/// This node as a broker of the cluster: its registration, heartbeats and fencing, seen
/// from the broker's side.
#[derive(Debug)]
pub(in crate::node) struct BrokerMembership {
    /// This process start's identity: registrations and heartbeats carry it, so the
    /// controller tells a restarted node (which may have lost unsynced data) from the old.
    pub(in crate::node) incarnation: u64,
    /// The controller a heartbeat answer named (non-voters learn it only so).
    pub(super) controller_hint: Option<i32>,
    pub(super) next_heartbeat: Instant,
    /// When the controller last answered a heartbeat: the self-fencing clock.
    pub(in crate::node) last_heartbeat_ok: Option<Instant>,
    /// The committed fencing state as the controller last answered it, or set by self-
    /// fencing. A fenced broker refuses produces even where it still holds a leader role.
    pub fenced: bool,
    /// Which voter to ask next while no controller is known.
    pub(super) heartbeat_rotation: usize,
    /// Set once this broker first served (registered, unfenced, caught up); until then
    /// client requests other than ApiVersions wait, as a Kafka broker does not process
    /// them before the controller unfences it. Controller-only nodes start set.
    pub(in crate::node) started: bool,
    /// A controlled shutdown in progress ([`Node::begin_controlled_shutdown`]): from then
    /// on every heartbeat is a [`PeerMessage::ControlledShutdown`].
    pub(in crate::node) shutdown: Option<ShutdownRequest>,
}

/// A controlled shutdown asked for by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::node) struct ShutdownRequest {
    /// When it was asked for.
    pub(in crate::node) started: Instant,
    /// When the driver stops waiting for the controller (`weir.controlled.shutdown.timeout.ms`
    /// after `started`).
    pub(in crate::node) deadline: Instant,
    /// Set by the first timeout at or after `deadline`, so the deadline stops waking the
    /// node (a past deadline left armed would make the driver spin).
    pub(in crate::node) expired: bool,
    /// When this node first applied its shutdown fence.
    pub(in crate::node) moved_at: Option<Instant>,
}

/// Where a controlled shutdown stands ([`Node::controlled_shutdown_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// None was asked for.
    Running,
    /// Asked for; the controller has not yet moved this broker's leaderships (as far as
    /// this node's applied metadata shows).
    Draining {
        /// Partitions this broker still leads, in its applied image.
        leaderships: usize,
    },
    /// The driver may flush and exit.
    Ready {
        /// Why: see [`ShutdownReady`].
        why: ShutdownReady,
        /// Partitions this broker still leads, in its applied image (0 unless timed out or
        /// nowhere to move them).
        leaderships: usize,
        /// Milliseconds since the shutdown was asked for.
        waited_ms: u64,
    },
}

/// Why a controlled shutdown may complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReady {
    /// The controller fenced this broker for its shutdown and this node applied it: it
    /// leads nothing and sits in no ISR it is not the last member of.
    Moved,
    /// Nothing to hand over: no other live broker (a single node, or the others are
    /// down), or this node serves no client (`process.roles=controller`).
    Alone,
    /// `weir.controlled.shutdown.timeout.ms` passed first (the controller is unreachable,
    /// say); leaderships still held move as after a crash.
    TimedOut,
}

impl BrokerMembership {
    /// A broker that has not registered yet: fenced, heartbeating at once. A
    /// controller-only node (`broker_role` false) serves no client and counts as started.
    pub(super) fn new(now: Instant, incarnation: u64, broker_role: bool) -> BrokerMembership {
        BrokerMembership {
            incarnation,
            controller_hint: None,
            next_heartbeat: now,
            last_heartbeat_ok: None,
            fenced: true,
            heartbeat_rotation: 0,
            started: !broker_role,
            shutdown: None,
        }
    }

    /// Self-fencing: true when this call fenced the broker because the controller has
    /// not answered a heartbeat for more than a session (`session_ms`). By then the
    /// controller has fenced it and moved its leaderships, so serving on would let two
    /// leaders accept writes. A broker never answered is fenced already.
    pub(super) fn fence_if_silent(&mut self, now: Instant, session_ms: u64) -> bool {
        let Some(ok) = self.last_heartbeat_ok else {
            return false;
        };
        let silent = now.saturating_duration_since(ok).as_millis() as u64;
        if silent > session_ms && !self.fenced {
            self.fenced = true;
            return true;
        }
        false
    }

    /// True when a heartbeat is due; the next is then planned `interval_ms` later.
    pub(super) fn heartbeat_due(&mut self, now: Instant, interval_ms: u64) -> bool {
        if now < self.next_heartbeat {
            return false;
        }
        self.next_heartbeat = now.add_ms(interval_ms);
        true
    }

    /// Whom to heartbeat: the Raft leader this node knows, else the controller a
    /// heartbeat answer named, else the voters in force in turn (the set changes at run
    /// time). `None` with no voter known.
    pub(super) fn heartbeat_target(
        &mut self,
        raft_leader: Option<i32>,
        voters: &BTreeSet<i32>,
    ) -> Option<i32> {
        if let Some(target) = raft_leader.or(self.controller_hint) {
            return Some(target);
        }
        self.heartbeat_rotation = self.heartbeat_rotation.wrapping_add(1);
        voters
            .iter()
            .nth(self.heartbeat_rotation % voters.len().max(1))
            .copied()
    }

    /// A heartbeat answer from `from`, naming `controller` and the committed fencing
    /// state. Only the controller's own answer counts (and sets the fencing state and the
    /// self-fencing clock); any other node merely points at the controller it knows, which
    /// is then asked at once.
    pub(super) fn on_answer(
        &mut self,
        now: Instant,
        from: i32,
        controller: Option<i32>,
        fenced: bool,
    ) {
        self.controller_hint = controller;
        if controller == Some(from) {
            self.last_heartbeat_ok = Some(now);
            if self.fenced != fenced {
                tracing::info!(fenced, "fencing state from the controller");
            }
            self.fenced = fenced;
        } else if controller.is_some() {
            self.next_heartbeat = now;
        }
    }

    /// Unfenced only on a controller's answer: an unfenced broker has one on record (the
    /// self-fencing clock runs from it).
    pub(super) fn invariants(&self) {
        assert!(
            self.fenced || self.last_heartbeat_ok.is_some(),
            "unfenced without a heartbeat answer"
        );
    }
}

/// Whether this node is ready for traffic (`/readyz`), and why not
/// ([`Node::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Registered, unfenced, caught up on metadata, and in the ISR of every partition it
    /// replicates that has a live leader.
    Ready,
    /// Not ready; a short reason for humans and deploy scripts.
    NotReady(String),
}

impl Node {
    /// Readiness for `/readyz`, as a rolling restart waits for it after a start: the node
    /// applied the metadata log of the current term, the controller registered this
    /// incarnation and unfenced it (its committed answer), it is not shutting down, and
    /// every partition it replicates (not as a replica still being added) whose leader is
    /// live has it back in the ISR. A controller-only node needs only the metadata.
    pub fn readiness(&self) -> Readiness {
        let node_id = self.config.node_id;
        let cluster = &*self.cluster;
        let not_ready = |reason: String| Readiness::NotReady(reason);
        if cluster.broker.shutdown.is_some() {
            return not_ready("shutting down".into());
        }
        if !cluster.meta.caught_up {
            return not_ready("metadata not caught up".into());
        }
        if !cluster.config.broker_role {
            return Readiness::Ready;
        }
        let image = &cluster.meta.image;
        let registered =
            (image.brokers.get(&node_id)).filter(|b| b.incarnation == cluster.broker.incarnation);
        let Some(registered) = registered else {
            return not_ready("not registered with the controller".into());
        };
        if registered.fenced || cluster.broker.fenced {
            return not_ready("fenced".into());
        }
        let out_of_isr = (image.topics.values())
            .flat_map(|topic| topic.partitions.iter())
            .filter(|state| {
                state.replicas.contains(&node_id)
                    && !state.adding.contains(&node_id)
                    && !state.isr.contains(&node_id)
                    && state.leader >= 0
                    && image.is_live(state.leader)
            })
            .count();
        if out_of_isr > 0 {
            return not_ready(format!("not in the ISR of {out_of_isr} partition(s)"));
        }
        Readiness::Ready
    }

    /// Start a controlled shutdown (SIGTERM): from now on this broker's heartbeats ask the
    /// controller to move every leadership it holds to another in-sync replica and take it
    /// out of the ISRs (Kafka's BrokerHeartbeat `WantShutDown`); the first one leaves at
    /// once. [`Node::controlled_shutdown_status`] says when the driver may flush and exit;
    /// it gives up waiting `timeout_ms` from now. Asking again keeps the first deadline.
    pub fn begin_controlled_shutdown(&mut self, now: Now, timeout_ms: u64) {
        if self.poisoned.is_some() || self.cluster.broker.shutdown.is_some() {
            return;
        }
        self.cluster_note_now(now);
        tracing::info!(
            timeout_ms,
            "controlled shutdown: asking the controller to move leaderships"
        );
        let cluster = &mut *self.cluster;
        cluster.broker.shutdown = Some(ShutdownRequest {
            started: now.instant,
            deadline: now.instant.add_ms(timeout_ms),
            expired: false,
            moved_at: None,
        });
        cluster.broker.next_heartbeat = now.instant;
        self.send_heartbeat(now);
        self.drive_cluster(now);
        self.flush_syncs(now);
    }

    /// Note when this node first applied its own shutdown fence (called after every
    /// input's Raft work, see `drive_cluster`).
    pub(in crate::node) fn note_shutdown_fence(&mut self) {
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        let incarnation = cluster.broker.incarnation;
        let now = cluster.now;
        let Some(shutdown) = cluster.broker.shutdown.as_mut() else {
            return;
        };
        let fenced = (cluster.meta.image.brokers.get(&node_id))
            .is_some_and(|b| b.fenced && b.incarnation == incarnation);
        if fenced && shutdown.moved_at.is_none() {
            shutdown.moved_at = Some(now);
            // The committed fence is the controller's answer the next heartbeat reply
            // would bring: stop serving now rather than a heartbeat later.
            cluster.broker.fenced = true;
        }
    }

    /// Where a controlled shutdown stands at `now`, judged on this node's applied
    /// metadata image (what clients are told): ready once the image has this incarnation
    /// fenced (the controller's shutdown fence: its partition changes are in the same
    /// record batch, so the leaderships have moved), at once when there is no other live
    /// broker to hand anything to, and at the deadline otherwise.
    ///
    /// The Raft leader (the active controller shutting itself down) waits two Raft
    /// heartbeats more after applying the fence (after the start when it has nobody to
    /// hand anything to): followers learn that an entry committed only from the leader's
    /// next append, so a leader exiting at once would leave them without the move until a
    /// new leader is elected and commits (an election timeout, 1-2 s, during which the new
    /// partition leaders still counted it in their ISRs and acks=all writes stalled; and
    /// when every node stops at once, a follower waiting for its own fence could wait for
    /// a quorum that is gone until its timeout).
    pub fn controlled_shutdown_status(&self, now: Instant) -> ShutdownStatus {
        let cluster = &*self.cluster;
        let Some(request) = cluster.broker.shutdown else {
            return ShutdownStatus::Running;
        };
        let node_id = self.config.node_id;
        let image = &cluster.meta.image;
        let leaderships = (image.topics.values())
            .flat_map(|topic| topic.partitions.iter())
            .filter(|state| state.leader == node_id)
            .count();
        let waited_ms = now.saturating_duration_since(request.started).as_millis() as u64;
        let fenced = (image.brokers.get(&node_id))
            .is_some_and(|b| b.fenced && b.incarnation == cluster.broker.incarnation);
        let others_live = image.live_brokers().iter().any(|id| *id != node_id);
        let why = if fenced {
            ShutdownReady::Moved
        } else if !others_live || !cluster.config.broker_role {
            ShutdownReady::Alone
        } else if now >= request.deadline {
            ShutdownReady::TimedOut
        } else {
            return ShutdownStatus::Draining { leaderships };
        };
        // The Raft leader stays two Raft heartbeats after its fence applied (or, with
        // nobody to move anything to, after the shutdown began: it may just have committed
        // other brokers' fences), so that its followers hear of the last commits.
        let raft_grace_ms = 2 * super::raft_heartbeat_interval_ms(&cluster.config);
        let anchor = match why {
            ShutdownReady::Moved => request.moved_at,
            ShutdownReady::Alone | ShutdownReady::TimedOut => Some(request.started),
        };
        let leader_waits = cluster.meta.raft.is_leader()
            && !cluster.meta.alone(node_id)
            && anchor.is_none_or(|at| now < at.add_ms(raft_grace_ms));
        if leader_waits && now < request.deadline {
            return ShutdownStatus::Draining { leaderships };
        }
        ShutdownStatus::Ready {
            why,
            leaderships,
            waited_ms,
        }
    }

    /// True once this broker can serve: it applied the metadata log of the current term
    /// and the controller has registered and unfenced it.
    pub fn is_serving(&self) -> bool {
        self.cluster.meta.caught_up && !self.cluster.broker.fenced
    }

    /// The broker side of fencing: fence itself when the controller has been silent for a
    /// session (by then the controller fenced it and moved its leaderships, so serving on
    /// would let two leaders accept writes), and heartbeat when due.
    pub(super) fn send_heartbeat(&mut self, now: Now) {
        let node_id = self.config.node_id;
        let host = self.config.advertised_host.clone();
        let port = self.config.advertised_port;
        let cluster = &mut *self.cluster;
        let session_ms = cluster.config.broker_session_timeout_ms;
        if cluster.broker.fence_if_silent(now.instant, session_ms) {
            tracing::warn!("no heartbeat answer from the controller for a session; self-fenced");
        }
        let interval_ms = cluster.config.broker_heartbeat_interval_ms;
        if !cluster.broker.heartbeat_due(now.instant, interval_ms) {
            return;
        }
        let heartbeat = BrokerHeartbeat {
            incarnation: cluster.broker.incarnation,
            host,
            port,
            peer_addr: cluster.config.peer_addr.clone(),
            applied_index: cluster.meta.image.applied_index,
            broker_role: cluster.config.broker_role,
            supported: Some(cluster.config.supported_metadata_versions),
        };
        let voters = cluster.meta.raft.voters();
        let leader = cluster.meta.raft.leader();
        let Some(target) = cluster.broker.heartbeat_target(leader, voters) else {
            return;
        };
        let shutting_down = cluster.broker.shutdown.is_some();
        match (target == node_id, shutting_down) {
            (true, false) => self.on_heartbeat(now, node_id, heartbeat),
            (true, true) => self.on_controlled_shutdown(now, node_id, heartbeat),
            (false, false) => self.send_peer(target, PeerMessage::Heartbeat(heartbeat)),
            (false, true) => {
                self.send_peer(target, PeerMessage::ControlledShutdown(heartbeat));
            }
        }
    }

    /// The broker side of a heartbeat answer. Only an answer from the controller itself
    /// counts as a heartbeat answered (and sets the fencing state); any other node merely
    /// points at the controller it knows.
    pub(super) fn on_heartbeat_reply(
        &mut self,
        now: Now,
        from: i32,
        controller: Option<i32>,
        fenced: bool,
    ) {
        (self.cluster.broker).on_answer(now.instant, from, controller, fenced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    // Goal: a broker stops serving once the controller has been silent for a session, and
    // not before; one never answered has nothing to fence.
    #[test]
    fn self_fences_after_a_silent_session_only() {
        let mut broker = BrokerMembership::new(at(0), 7, true);
        assert!(
            !broker.fence_if_silent(at(60_000), 1_000),
            "never answered: fenced already"
        );
        broker.on_answer(at(10), 1, Some(1), false);
        assert!(!broker.fenced);
        broker.invariants();
        assert!(
            !broker.fence_if_silent(at(1_010), 1_000),
            "exactly a session is not more"
        );
        assert!(!broker.fenced);
        assert!(broker.fence_if_silent(at(1_011), 1_000));
        assert!(broker.fenced);
        assert!(!broker.fence_if_silent(at(2_000), 1_000), "fenced once");
        broker.invariants();
    }

    // Goal: only the controller's own answer sets the fencing state; another node's answer
    // only points at the controller, which is then asked at once.
    #[test]
    fn only_the_controllers_answer_unfences() {
        let mut broker = BrokerMembership::new(at(0), 7, true);
        assert!(broker.heartbeat_due(at(0), 500));
        assert!(!broker.heartbeat_due(at(499), 500));
        broker.on_answer(at(100), 2, Some(3), false);
        assert!(
            broker.fenced,
            "node 2 cannot unfence on behalf of controller 3"
        );
        assert_eq!(broker.last_heartbeat_ok, None);
        assert!(
            broker.heartbeat_due(at(100), 500),
            "ask the named controller at once"
        );
        assert_eq!(broker.heartbeat_target(None, &BTreeSet::new()), Some(3));
        broker.on_answer(at(200), 3, Some(3), false);
        assert!(!broker.fenced);
        broker.on_answer(at(300), 3, Some(3), true);
        assert!(broker.fenced, "the controller fenced it");
        broker.invariants();
    }

    // Goal: with no controller known, heartbeats go to every voter in turn.
    #[test]
    fn heartbeats_rotate_over_the_voters_without_a_controller() {
        let mut broker = BrokerMembership::new(at(0), 7, true);
        let voters: BTreeSet<i32> = [1, 2, 3].into();
        let asked: BTreeSet<i32> = (0..3)
            .filter_map(|_| broker.heartbeat_target(None, &voters))
            .collect();
        assert_eq!(asked, voters);
        assert_eq!(broker.heartbeat_target(Some(2), &voters), Some(2));
        assert_eq!(broker.heartbeat_target(None, &BTreeSet::new()), None);
    }
}
