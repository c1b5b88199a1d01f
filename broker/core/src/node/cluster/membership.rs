//! This node as a broker of the cluster: registration, heartbeats and fencing, seen from
//! the broker's side.

use crate::cluster::peer::{BrokerHeartbeat, PeerMessage};
use crate::node::Node;
use crate::time::{Instant, Now};

/// This node as a broker of the cluster: its registration, heartbeats and fencing, seen
/// from the broker's side.
#[derive(Debug)]
pub(in crate::node) struct BrokerMembership {
    /// This process start's identity: registrations and heartbeats carry it, so the
    /// controller tells a restarted node (which may have lost unsynced data) from the old.
    pub(super) incarnation: u64,
    /// The controller a heartbeat answer named (non-voters learn it only so).
    pub(super) controller_hint: Option<i32>,
    pub(super) next_heartbeat: Instant,
    /// When the controller last answered a heartbeat: the self-fencing clock.
    pub(super) last_heartbeat_ok: Option<Instant>,
    /// The committed fencing state as the controller last answered it, or set by self-
    /// fencing. A fenced broker refuses produces even where it still holds a leader role.
    pub fenced: bool,
    /// Which voter to ask next while no controller is known.
    pub(super) heartbeat_rotation: usize,
    /// Set once this broker first served (registered, unfenced, caught up); until then
    /// client requests other than ApiVersions wait, as a Kafka broker does not process
    /// them before the controller unfences it. Controller-only nodes start set.
    pub(in crate::node) started: bool,
}

impl Node {
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
        // Self-fencing: a broker the controller has not answered for a session stops
        // leading (the controller will have fenced it by then).
        if let Some(ok) = cluster.broker.last_heartbeat_ok {
            let silent = now.instant.saturating_duration_since(ok).as_millis() as u64;
            if silent > cluster.config.broker_session_timeout_ms && !cluster.broker.fenced {
                tracing::warn!(
                    silent,
                    "no heartbeat answer from the controller; self-fenced"
                );
                cluster.broker.fenced = true;
            }
        }
        if now.instant < cluster.broker.next_heartbeat {
            return;
        }
        cluster.broker.next_heartbeat = now
            .instant
            .add_ms(cluster.config.broker_heartbeat_interval_ms);
        let heartbeat = BrokerHeartbeat {
            incarnation: cluster.broker.incarnation,
            host,
            port,
            peer_addr: cluster.config.peer_addr.clone(),
            applied_index: cluster.meta.image.applied_index,
            broker_role: cluster.config.broker_role,
        };
        let target = match cluster
            .meta
            .raft
            .leader()
            .or(cluster.broker.controller_hint)
        {
            Some(leader) => leader,
            None => {
                // Ask the voters in force in turn (the set changes at run time); their
                // addresses come from the static config or the brokers' registrations.
                cluster.broker.heartbeat_rotation += 1;
                let voters = cluster.meta.raft.voters();
                let Some(voter) = voters
                    .iter()
                    .nth(cluster.broker.heartbeat_rotation % voters.len().max(1))
                else {
                    return;
                };
                *voter
            }
        };
        if target == node_id {
            self.on_heartbeat(now, node_id, heartbeat);
        } else {
            self.send_peer(target, PeerMessage::Heartbeat(heartbeat));
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
        let cluster = &mut *self.cluster;
        cluster.broker.controller_hint = controller;
        if controller == Some(from) {
            cluster.broker.last_heartbeat_ok = Some(now.instant);
            if cluster.broker.fenced != fenced {
                tracing::info!(fenced, "fencing state from the controller");
            }
            cluster.broker.fenced = fenced;
        } else if let Some(controller) = controller {
            // Ask the real controller at once.
            cluster.broker.next_heartbeat = now.instant;
            cluster.broker.controller_hint = Some(controller);
        }
    }
}
