//! The server side of shards (docs/sharding.md): a broker runs `num.shards` node loops,
//! each a sans-IO [`weir_core::Node`] with its own storage, and everything around them
//! talks to the loops through one [`NodeHandle`] that routes each input to its shard.
//!
//! Invariants:
//! - With one shard the handle is the one channel it replaces: every input goes to shard
//!   0, unchanged (`split` returns the request whole).
//! - A connection's life (`Connect`, `ClientHost`, `Authenticated`, `Disconnect`) and the
//!   schema validator reach every shard, in the order sent, before anything the connection
//!   sends after them (each shard's channel is FIFO).
//! - A request reaches the shards [`split::split`] names, each its own part, under the
//!   request's id; the connection's writer merges the parts' answers ([`Parts`]).
//! - A peer message goes to the shard [`weir_core::shard::peer_route`] names; a message
//!   naming a topic the routing table lacks goes to shard 0, which refuses it like any
//!   stale message.
//! - Lookups that only the control shard can answer (SCRAM credentials, feature levels,
//!   readiness) go to shard 0; `/metrics` asks every shard and sums ([`merge_metrics`]).
//! - The routing table ([`Placement`]) is published by shard 0's loop after it handed the
//!   metadata that changed it to the data shards' channels, so a request routed by a new
//!   table finds its shard's image at least as new, unless a full channel made the loop
//!   send that shard the whole image later (the request is then answered with a retriable
//!   error, as during any metadata propagation).
//! - A broker of several shards routes client requests only once the table is
//!   [`NodeHandle::is_routable`]: shard 0 has caught up with the metadata log (its image at
//!   recovery can lack a topic created shortly before a crash, which would send that
//!   topic's requests to shard 0), or it waited [`ROUTABLE_WAIT_MAX`] for that, as a
//!   request held for the start waits (then errors answer what cannot be served yet).

pub mod split;
pub mod storage;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot, Notify};
use weir_core::node::metrics::MetricsSnapshot;
use weir_core::shard::{peer_route, PeerRoute, Placement};
use weir_core::RequestId;
use weir_wire::domain::{ApiRequest, ApiResponse};

use crate::messages::NodeInput;

/// The node loops have stopped (the process is exiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node loop has stopped")]
pub struct NodeClosed;

/// How long shard 0 waits to catch up with the metadata log before the router places
/// requests by the table it has: the time weir-core holds a request for the broker's
/// start (`HELD_REQUEST_MS`), so a sharded broker answers no later than one shard does.
pub const ROUTABLE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Every shard's input channel and the routing table; clones share both.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    shards: Arc<[mpsc::Sender<NodeInput>]>,
    placement: Arc<RwLock<Arc<Placement>>>,
    /// True once requests may be placed by the table (see the module's invariants).
    routable: Arc<Routable>,
}

/// The routable flag and its waiters. A `Notify`, not a `watch` channel: `watch` spreads
/// its waiters over several queues picked at random, so the order in which waiting
/// readers woke differed between runs of one simulated seed; `Notify` wakes its one
/// queue in order.
#[derive(Debug, Default)]
struct Routable {
    flag: AtomicBool,
    waiters: Notify,
}

impl NodeHandle {
    /// The handle of a broker whose shard `k` reads `shards[k]` (at least one).
    pub fn new(shards: Vec<mpsc::Sender<NodeInput>>, placement: Placement) -> Self {
        assert!(!shards.is_empty(), "a broker has at least one shard");
        // One shard places nothing: routable from the start.
        let routable = Routable {
            flag: AtomicBool::new(shards.len() == 1),
            waiters: Notify::new(),
        };
        NodeHandle {
            shards: shards.into(),
            placement: Arc::new(RwLock::new(Arc::new(placement))),
            routable: Arc::new(routable),
        }
    }

    /// True once client requests may be placed by the routing table: always with one
    /// shard; with several, once shard 0 caught up with the metadata log (or gave up
    /// waiting, [`ROUTABLE_WAIT_MAX`]).
    pub fn is_routable(&self) -> bool {
        self.routable.flag.load(Ordering::Acquire)
    }

    /// Wait until [`NodeHandle::is_routable`] (before a request is placed). Shard 0's
    /// loop bounds the wait ([`ROUTABLE_WAIT_MAX`]).
    pub async fn routable(&self) {
        // The flag is never cleared: once set, no waiter is registered (a lock per request).
        if self.is_routable() {
            return;
        }
        loop {
            // Registered before the flag is read, so a set in between still wakes it.
            let notified = self.routable.waiters.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_routable() {
                return;
            }
            notified.await;
        }
    }

    /// Let requests be placed by the table (shard 0's loop, once it caught up or waited
    /// long enough).
    pub fn set_routable(&self) {
        if !self.routable.flag.swap(true, Ordering::AcqRel) {
            self.routable.waiters.notify_waiters();
        }
    }

    /// The handle of a broker of one shard (the node loop reads `sender`).
    pub fn single(sender: mpsc::Sender<NodeInput>) -> Self {
        let placement = Placement {
            count: 1,
            ..Placement::default()
        };
        NodeHandle::new(vec![sender], placement)
    }

    /// How many shards the broker runs.
    pub fn count(&self) -> u16 {
        u16::try_from(self.shards.len()).unwrap_or(u16::MAX)
    }

    /// True once a node loop stopped (the broker is exiting).
    pub fn is_closed(&self) -> bool {
        self.shards.iter().any(mpsc::Sender::is_closed)
    }

    /// The routing table as last published.
    pub fn placement(&self) -> Arc<Placement> {
        let table = self
            .placement
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&table)
    }

    /// Replace the routing table (shard 0's loop, after its image moved).
    pub fn publish(&self, placement: Placement) {
        let mut table = self
            .placement
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *table = Arc::new(placement);
    }

    /// The parts `request` goes out as, each (shard, part), for a connection whose home
    /// shard is `home` (what no partition or key places goes there); placed once the
    /// table is routable ([`NodeHandle::routable`]). Every front end's requests are
    /// placed here: the Kafka listeners' and the gateway's through this, the HTTP
    /// services' through [`NodeHandle::send`].
    pub async fn split(&self, request: ApiRequest, home: u16) -> Vec<(u16, ApiRequest)> {
        if self.shards.len() == 1 {
            return vec![(0, request)];
        }
        self.routable().await;
        split::split(request, home, &self.placement())
    }

    /// The home shard of connection `conn`: where its requests that no partition or key
    /// places go, spreading connections over the shards.
    pub fn home(&self, conn: u64) -> u16 {
        let count = u64::try_from(self.shards.len()).unwrap_or(1).max(1);
        u16::try_from(conn % count).unwrap_or(0)
    }

    /// Send each part of a request to its shard, under the request's id.
    pub async fn send_parts(
        &self,
        id: RequestId,
        parts: Vec<(u16, ApiRequest)>,
    ) -> Result<(), NodeClosed> {
        for (shard, request) in parts {
            self.send_to(shard, NodeInput::Request { id, request })
                .await?;
        }
        Ok(())
    }

    /// Send `input` to shard `shard` itself.
    pub async fn send_to(&self, shard: u16, input: NodeInput) -> Result<(), NodeClosed> {
        let sender = self.shards.get(usize::from(shard)).ok_or(NodeClosed)?;
        sender.send(input).await.map_err(|_| NodeClosed)
    }

    /// Send `input` to shard `shard` itself without waiting (dropped when it is full).
    pub fn try_send_to(&self, shard: u16, input: NodeInput) -> Result<(), NodeClosed> {
        let sender = self.shards.get(usize::from(shard)).ok_or(NodeClosed)?;
        sender.try_send(input).map_err(|_| NodeClosed)
    }

    /// [`NodeHandle::try_send_to`] that gives `input` back when it could not be sent.
    pub fn try_send_to_or_return(
        &self,
        shard: u16,
        input: NodeInput,
    ) -> Result<(), Box<NodeInput>> {
        match self.shards.get(usize::from(shard)) {
            Some(sender) => (sender.try_send(input)).map_err(|error| Box::new(error.into_inner())),
            None => Err(Box::new(input)),
        }
    }

    /// Send `input` where it belongs (see the module's invariants), waiting while a
    /// channel is full. A request goes out as its parts; a caller that merges answers
    /// uses [`NodeHandle::split`] and [`NodeHandle::send_parts`] instead.
    pub async fn send(&self, input: NodeInput) -> Result<(), NodeClosed> {
        if self.shards.len() == 1 {
            return self.send_to(0, input).await;
        }
        if matches!(input, NodeInput::Request { .. }) {
            // Placed by the table like a connection's request (`split`).
            self.routable().await;
        }
        match self.route(input) {
            Routed::One(shard, input) => self.send_to(shard, input).await,
            Routed::Many(inputs) => {
                for (shard, input) in inputs {
                    self.send_to(shard, input).await?;
                }
                Ok(())
            }
        }
    }

    /// [`NodeHandle::send`] without waiting: an input for a full channel is dropped (an
    /// error), as a peer message or hint may be.
    pub fn try_send(&self, input: NodeInput) -> Result<(), NodeClosed> {
        let send = |shard: u16, input| {
            let sender = self.shards.get(usize::from(shard)).ok_or(NodeClosed)?;
            sender.try_send(input).map_err(|_| NodeClosed)
        };
        if self.shards.len() == 1 {
            return send(0, input);
        }
        match self.route(input) {
            Routed::One(shard, input) => send(shard, input),
            Routed::Many(inputs) => inputs
                .into_iter()
                .try_for_each(|(shard, input)| send(shard, input)),
        }
    }

    fn route(&self, input: NodeInput) -> Routed {
        let count = self.count();
        let every = |make: &dyn Fn() -> NodeInput| {
            Routed::Many((0..count).map(|shard| (shard, make())).collect())
        };
        match input {
            NodeInput::Connect { conn, events } => every(&|| NodeInput::Connect {
                conn,
                events: events.clone(),
            }),
            NodeInput::ClientHost { conn, host } => every(&|| NodeInput::ClientHost {
                conn,
                host: host.clone(),
            }),
            NodeInput::Authenticated { conn, principal } => every(&|| NodeInput::Authenticated {
                conn,
                principal: principal.clone(),
            }),
            NodeInput::Disconnect { conn } => every(&|| NodeInput::Disconnect { conn }),
            NodeInput::SchemaValidator(validator) => {
                every(&|| NodeInput::SchemaValidator(Arc::clone(&validator)))
            }
            NodeInput::PeerClosed { from } => every(&|| NodeInput::PeerClosed { from }),
            NodeInput::Request { id, request } => {
                let home = self.home(id.conn().unwrap_or(0));
                let parts = split::split(request, home, &self.placement());
                Routed::Many(
                    (parts.into_iter())
                        .map(|(shard, request)| (shard, NodeInput::Request { id, request }))
                        .collect(),
                )
            }
            NodeInput::Peer { from, message } => {
                let shard = match peer_route(&message, count) {
                    PeerRoute::Shard(shard) => shard,
                    PeerRoute::Topic { topic, partition } => {
                        self.placement().by_name(&topic, partition).unwrap_or(0)
                    }
                };
                Routed::One(shard, NodeInput::Peer { from, message })
            }
            input @ (NodeInput::ScramCredential { .. }
            | NodeInput::FeatureLevels { .. }
            | NodeInput::Metrics { .. }
            | NodeInput::Health { .. }
            | NodeInput::Shutdown { .. }
            | NodeInput::Feed(_)
            | NodeInput::AnswerFetchNow { .. }) => Routed::One(0, input),
        }
    }

    /// A metrics snapshot of the whole broker: every shard's, merged ([`merge_metrics`]);
    /// `None` once a node loop stopped.
    pub async fn metrics(&self) -> Option<MetricsSnapshot> {
        let mut snapshots = Vec::with_capacity(self.shards.len());
        for shard in 0..self.count() {
            let (reply, snapshot) = oneshot::channel();
            self.send_to(shard, NodeInput::Metrics { reply })
                .await
                .ok()?;
            snapshots.push(snapshot.await.ok()?);
        }
        Some(merge_metrics(snapshots, &self.placement()))
    }

    /// A weak copy for the node loops themselves (a loop holding strong senders to its own
    /// channel would never see every sender gone).
    pub fn downgrade(&self) -> WeakNodeHandle {
        WeakNodeHandle {
            shards: self.shards.iter().map(mpsc::Sender::downgrade).collect(),
            placement: Arc::clone(&self.placement),
            routable: Arc::clone(&self.routable),
        }
    }
}

/// Where [`NodeHandle::route`] sends an input.
// Routed once per input and moved at once: boxing the one input would cost an allocation
// per request, as in `NodeInput` itself.
#[allow(clippy::large_enum_variant)]
enum Routed {
    One(u16, NodeInput),
    Many(Vec<(u16, NodeInput)>),
}

/// What a node loop holds of the handle: weak senders to every shard and the table.
#[derive(Debug, Clone)]
pub struct WeakNodeHandle {
    shards: Vec<mpsc::WeakSender<NodeInput>>,
    placement: Arc<RwLock<Arc<Placement>>>,
    routable: Arc<Routable>,
}

impl WeakNodeHandle {
    /// The handle again, while any strong sender lives.
    pub fn upgrade(&self) -> Option<NodeHandle> {
        let shards = (self.shards.iter())
            .map(mpsc::WeakSender::upgrade)
            .collect::<Option<Vec<_>>>()?;
        Some(NodeHandle {
            shards: shards.into(),
            placement: Arc::clone(&self.placement),
            routable: Arc::clone(&self.routable),
        })
    }
}

/// One broker's metrics from its shards' snapshots (shard 0 first): each partition's
/// series from the shard that holds it, groups from their coordinators' shards (each lag
/// against the high watermark of the shard that holds the partition), counters and busy
/// times summed, the broker's identity from shard 0.
pub fn merge_metrics(snapshots: Vec<MetricsSnapshot>, placement: &Placement) -> MetricsSnapshot {
    let mut snapshots = snapshots.into_iter();
    let Some(mut merged) = snapshots.next() else {
        return MetricsSnapshot::default();
    };
    if placement.count <= 1 {
        return merged;
    }
    let holds = |shard: u16, topic: &str, partition: i32| {
        placement.by_name(topic, partition).unwrap_or(0) == shard
    };
    merged.shard_busy = vec![merged.state_machine_busy];
    let mut partitions: BTreeMap<(String, i32), _> = std::mem::take(&mut merged.partitions)
        .into_iter()
        .filter(|p| holds(0, &p.topic, p.partition))
        .map(|p| ((p.topic.clone(), p.partition), p))
        .collect();
    for (index, snapshot) in snapshots.enumerate() {
        let shard = u16::try_from(index + 1).unwrap_or(u16::MAX);
        for partition in snapshot.partitions {
            if holds(shard, &partition.topic, partition.partition) {
                let key = (partition.topic.clone(), partition.partition);
                partitions.insert(key, partition);
            }
        }
        merged.groups.extend(snapshot.groups);
        merged.cleaner_bytes_read += snapshot.cleaner_bytes_read;
        merged.cleaner_bytes_cleaned += snapshot.cleaner_bytes_cleaned;
        merged.remote_bytes_uploaded += snapshot.remote_bytes_uploaded;
        merged.remote_uploads += snapshot.remote_uploads;
        merged.remote_upload_failures += snapshot.remote_upload_failures;
        merged.authorizer.allowed += snapshot.authorizer.allowed;
        merged.authorizer.denied += snapshot.authorizer.denied;
        merged.state_machine_busy += snapshot.state_machine_busy;
        merged.shard_busy.push(snapshot.state_machine_busy);
        merged.cleaner_busy += snapshot.cleaner_busy;
    }
    // A group's coordinator shard knows its commits but not the high watermarks of the
    // partitions other shards hold: its lag is computed again from theirs.
    for group in &mut merged.groups {
        for lag in &mut group.partitions {
            let key = (lag.topic.clone(), lag.partition);
            if let Some(partition) = partitions.get(&key) {
                lag.high_watermark = Some(partition.high_watermark);
                lag.lag = Some((partition.high_watermark - lag.committed_offset).max(0));
            }
        }
    }
    merged.partitions = partitions.into_values().collect();
    merged
        .groups
        .sort_by(|left, right| left.group_id.cmp(&right.group_id));
    merged
}

/// A request split over shards, as its connection's writer holds it until every part
/// answered: the parts' shards in part order, and what each part did so far.
#[derive(Debug)]
pub struct Parts {
    shards: Vec<u16>,
    slots: Vec<Slot>,
}

/// One part's state.
#[derive(Debug)]
enum Slot {
    Waiting,
    Answered(ApiResponse),
    /// Completed without an answer (acks=0 produce); `true`: close the connection.
    NoAnswer(bool),
}

/// What a part's answer completed.
#[derive(Debug)]
pub enum PartsDone {
    /// Parts are still out.
    Waiting,
    /// Every part answered: the merged answer.
    Answer(ApiResponse),
    /// Every part completed without an answer (acks=0): close the connection if any asked.
    NoResponse {
        /// A part asked to close the connection.
        close: bool,
    },
}

impl Parts {
    /// A request sent as parts to `shards` (in part order).
    pub fn new(shards: Vec<u16>) -> Self {
        let slots = shards.iter().map(|_| Slot::Waiting).collect();
        Parts { shards, slots }
    }

    /// How many parts there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// True for a request of no parts (never made by [`NodeHandle::split`]).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shards whose parts have not completed yet.
    pub fn outstanding(&self) -> impl Iterator<Item = u16> + '_ {
        (self.shards.iter().zip(&self.slots))
            .filter(|(_, slot)| matches!(slot, Slot::Waiting))
            .map(|(shard, _)| *shard)
    }

    /// Shard `shard`'s part answered (a second answer from one shard is ignored).
    pub fn answered(&mut self, shard: u16, response: ApiResponse) -> PartsDone {
        self.complete(shard, Slot::Answered(response))
    }

    /// Shard `shard`'s part completed without an answer.
    pub fn unanswered(&mut self, shard: u16, close: bool) -> PartsDone {
        self.complete(shard, Slot::NoAnswer(close))
    }

    fn complete(&mut self, shard: u16, done: Slot) -> PartsDone {
        let waiting = (self.shards.iter().zip(&self.slots))
            .position(|(s, slot)| *s == shard && matches!(slot, Slot::Waiting));
        if let Some(index) = waiting {
            self.slots[index] = done;
        }
        if self.slots.iter().any(|slot| matches!(slot, Slot::Waiting)) {
            return PartsDone::Waiting;
        }
        let mut close = false;
        let mut answers = Vec::with_capacity(self.slots.len());
        for slot in std::mem::take(&mut self.slots) {
            match slot {
                Slot::Answered(response) => answers.push(response),
                Slot::NoAnswer(asked) => close |= asked,
                Slot::Waiting => {}
            }
        }
        if answers.is_empty() {
            return PartsDone::NoResponse { close };
        }
        PartsDone::Answer(split::merge(answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::node::metrics::{GroupMetrics, GroupPartitionLag, PartitionOffsets};

    fn partition(topic: &str, partition: i32, high_watermark: i64) -> PartitionOffsets {
        PartitionOffsets {
            topic: topic.to_owned(),
            partition,
            log_start_offset: 0,
            high_watermark,
            size_bytes: 0,
            cleaner_dirty_ratio: None,
            remote: None,
        }
    }

    // Goal: `/metrics` of a sharded broker reports each partition once, from the shard
    // that holds it, and a group's lag against that shard's high watermark, not the
    // coordinator shard's empty copy. Method: two shards' snapshots of a two-partition
    // topic (one partition each), the group coordinated by shard 0.
    #[test]
    fn metrics_take_each_partition_from_its_shard() {
        let id = uuid::Uuid::from_u128(7);
        let mut placement = Placement {
            count: 2,
            ..Placement::default()
        };
        placement.names.insert("t".to_owned(), (id, 2));
        placement.ids.insert(id, 2);
        let held = |shard: u16| (0..2).find(|p| placement.by_name("t", *p) == Some(shard));
        let (Some(on_0), Some(on_1)) = (held(0), held(1)) else {
            panic!("a two-partition topic spreads over two shards");
        };
        let lag = |partition: i32| GroupPartitionLag {
            topic: "t".to_owned(),
            partition,
            committed_offset: 3,
            high_watermark: Some(0),
            lag: Some(0),
        };
        let control = MetricsSnapshot {
            partitions: vec![partition("t", on_0, 10), partition("t", on_1, 0)],
            groups: vec![GroupMetrics {
                group_id: "g".to_owned(),
                state: "Stable".to_owned(),
                member_count: 1,
                partitions: vec![lag(on_0), lag(on_1)],
            }],
            state_machine_busy: std::time::Duration::from_secs(1),
            ..MetricsSnapshot::default()
        };
        let data = MetricsSnapshot {
            partitions: vec![partition("t", on_0, 0), partition("t", on_1, 20)],
            state_machine_busy: std::time::Duration::from_secs(2),
            ..MetricsSnapshot::default()
        };
        let merged = merge_metrics(vec![control, data], &placement);
        let mut offsets: Vec<(i32, i64)> = (merged.partitions.iter())
            .map(|p| (p.partition, p.high_watermark))
            .collect();
        offsets.sort_unstable();
        let mut expected = vec![(on_0, 10), (on_1, 20)];
        expected.sort_unstable();
        assert_eq!(offsets, expected);
        let lags: Vec<(i32, Option<i64>)> = (merged.groups[0].partitions.iter())
            .map(|p| (p.partition, p.lag))
            .collect();
        assert_eq!(lags, [(on_0, Some(7)), (on_1, Some(17))]);
        assert_eq!(merged.state_machine_busy, std::time::Duration::from_secs(3));
        let seconds = std::time::Duration::from_secs;
        assert_eq!(merged.shard_busy, [seconds(1), seconds(2)]);
    }

    // Goal: a broker of one shard routes at once; one of several routes only once shard
    // 0's loop says so, and a reader waiting for it (a connection after a restart) is
    // woken then, through every clone and the loops' weak copy.
    // Method: handles over plain channels; the waiter polled before and after the flag.
    #[tokio::test]
    async fn requests_wait_until_the_table_is_routable() {
        let channel = || mpsc::channel::<NodeInput>(4).0;
        assert!(NodeHandle::single(channel()).is_routable());
        let handle = NodeHandle::new(vec![channel(), channel()], Placement::default());
        assert!(!handle.is_routable());
        let reader = handle.clone();
        let waiter = tokio::spawn(async move { reader.routable().await });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "routed before the table was complete"
        );
        let weak = handle.downgrade();
        weak.upgrade().expect("senders alive").set_routable();
        waiter.await.expect("the waiter is woken");
        assert!(handle.is_routable());
        handle.routable().await;
    }
}
