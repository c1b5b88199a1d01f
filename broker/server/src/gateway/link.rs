//! A gateway session's connection to the node loop, shaped like a Kafka connection's:
//! `NodeInput::Connect` with an events channel, `NodeInput::Request` with a per-session
//! sequence number, `NodeInput::Disconnect` at the end. Responses are routed back to the
//! caller by sequence number, so operations can be written as `link.call(request).await`.
//!
//! Invariants:
//! - A pending entry is registered before its request is sent, so a response never
//!   arrives for an unknown sequence number.
//! - The number of pending calls is bounded by the session (client requests in flight plus
//!   one heartbeat per consumer); the events channel carries at most one response per call.
//! - When the node loop drops the connection (or stops), every pending call fails with
//!   [`LinkClosed`] instead of hanging.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use weir_core::RequestId;
use weir_wire::domain::{ApiRequest, ApiResponse};

use super::lock;
use crate::messages::{ConnEvent, NodeInput};
use crate::shards::{Parts, PartsDone};

/// The node loop is gone or dropped this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the broker closed the gateway session")]
pub struct LinkClosed;

/// A call waiting for its answer: the parts of a request split over shards are merged
/// first (`None`: one part).
type Waiter = (Option<Parts>, oneshot::Sender<ApiResponse>);
type Pending = Arc<Mutex<Option<BTreeMap<u64, Waiter>>>>;

/// One session's node connection.
#[derive(Clone)]
pub struct NodeLink {
    conn: u64,
    node: crate::shards::NodeHandle,
    next_seq: Arc<AtomicU64>,
    pending: Pending,
}

/// A sent request whose response has not arrived yet.
pub struct PendingCall(oneshot::Receiver<ApiResponse>);

impl PendingCall {
    /// Wait for the response.
    pub async fn response(self) -> Result<ApiResponse, LinkClosed> {
        self.0.await.map_err(|_| LinkClosed)
    }
}

impl NodeLink {
    /// Register connection `conn` with the node loop and start routing its responses.
    pub async fn connect<R: weir_runtime::Runtime>(
        runtime: &R,
        node: crate::shards::NodeHandle,
        conn: u64,
    ) -> Result<NodeLink, LinkClosed> {
        let (events_sender, mut events) = mpsc::unbounded_channel();
        node.send(NodeInput::Connect {
            conn,
            events: events_sender,
        })
        .await
        .map_err(|_| LinkClosed)?;
        let pending: Pending = Arc::new(Mutex::new(Some(BTreeMap::new())));
        let routes = Arc::clone(&pending);
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                let ConnEvent::Response {
                    seq,
                    shard,
                    response,
                } = event
                else {
                    // Only the node loop writes here: responses, and NoResponse for acks=0
                    // produces, which the gateway never sends.
                    continue;
                };
                let mut map = lock(&routes);
                let Some(map) = map.as_mut() else {
                    continue;
                };
                let Some((parts, waiter)) = map.remove(&seq) else {
                    continue;
                };
                let response = match parts {
                    None => response,
                    Some(mut parts) => match parts.answered(shard, response) {
                        PartsDone::Answer(response) => response,
                        // No part of a gateway request is an acks=0 produce.
                        PartsDone::Waiting | PartsDone::NoResponse { .. } => {
                            map.insert(seq, (Some(parts), waiter));
                            continue;
                        }
                    },
                };
                // The caller may have given up (session closing): nothing to do then.
                let _ = waiter.send(response);
            }
            // Dropping the senders fails every pending call.
            lock(&routes).take();
        });
        Ok(NodeLink {
            conn,
            node,
            next_seq: Arc::new(AtomicU64::new(0)),
            pending,
        })
    }

    /// Send a request now (preserving the caller's order); await the returned call later.
    pub async fn send(&self, request: ApiRequest) -> Result<PendingCall, LinkClosed> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let parts = self.node.split(request, self.node.home(self.conn)).await;
        let split = (parts.len() > 1).then(|| Parts::new(parts.iter().map(|p| p.0).collect()));
        match lock(&self.pending).as_mut() {
            Some(map) => {
                map.insert(seq, (split, sender));
            }
            None => return Err(LinkClosed),
        }
        let id = RequestId::client(self.conn, seq);
        if self.node.send_parts(id, parts).await.is_err() {
            if let Some(map) = lock(&self.pending).as_mut() {
                map.remove(&seq);
            }
            return Err(LinkClosed);
        }
        Ok(PendingCall(receiver))
    }

    /// True once the node loop dropped this connection (or stopped).
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).is_none()
    }

    /// Send a request and wait for its response.
    pub async fn call(&self, request: ApiRequest) -> Result<ApiResponse, LinkClosed> {
        self.send(request).await?.response().await
    }

    /// Tell the node loop the session is gone (drops its pending work).
    pub async fn disconnect(&self) {
        let _ = self
            .node
            .send(NodeInput::Disconnect { conn: self.conn })
            .await;
    }
}
