//! The request router's waits: requests forwarded to the controller, forwarded requests
//! the controller handles, and client requests held until what they need exists. The
//! handlers are in `node/cluster_api.rs`.
//!
//! **Forwarding.** Admin requests a broker cannot decide (it is not the active
//! controller) are encoded with `weir-wire` and sent to the controller it knows
//! (`PeerMessage::Forward`); the controller decodes them and handles them as a client's
//! request under an [`Origin::Forwarded`] id, and `respond` sends the answer back
//! (`ForwardReply`), which the broker decodes with the header it encoded and answers its
//! client with. Either side gives up after [`FORWARD_TIMEOUT_MS`]: the broker answers
//! REQUEST_TIMED_OUT (the client retries), the controller forgets the request (its answer
//! would have nowhere to go). A full table, a malformed frame or an empty reply refuses
//! the request (NOT_CONTROLLER: the client refreshes metadata and retries).
//!
//! **Holding.** Client requests that wait for something to exist (this broker to start
//! serving, a topic the controller is creating on the request's behalf) are held with a
//! deadline, dispatched as usual once it exists, and answered as without the wait at the
//! deadline.

use crate::event::{Origin, RequestId};
use crate::purgatory::Purgatory;

/// Bound on admin requests a broker has forwarded and not yet had answered.
pub(in crate::node) const FORWARDED_MAX: usize = 4_096;
/// Bound on forwarded requests a controller handles at once; past it a forwarded request
/// is refused (the broker answers its client NOT_CONTROLLER, and the client retries).
pub(in crate::node) const FORWARDED_IN_MAX: usize = 4_096;
/// A forwarded request the controller has not answered in this long is timed out (the
/// broker answers REQUEST_TIMED_OUT; the controller forgets it too, and an answer that
/// comes later has nowhere to go).
pub(in crate::node) const FORWARD_TIMEOUT_MS: u64 = 30_000;

/// What a held client request waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::node) enum HoldFor {
    /// This broker to start serving.
    Start,
    /// Topics the controller is creating on the request's behalf (a coordinator's
    /// internal topic, a Metadata request's auto-created topics).
    Topics(Vec<String>),
}

/// The request router's waits: requests forwarded to the controller, forwarded requests
/// this controller handles, and client requests held until what they need exists.
#[derive(Debug)]
pub(in crate::node) struct Router {
    /// Admin requests this broker forwarded to the controller, by peer correlation id;
    /// timed out after [`FORWARD_TIMEOUT_MS`].
    pub forwarded: Purgatory<Forwarded, u64>,
    /// Forwarded requests this controller is handling, by their [`Origin::Forwarded`] id:
    /// (broker, its correlation, the request header that encodes the answer).
    pub forwarded_in: Purgatory<(i32, u64, weir_wire::codec::RequestHeader)>,
    /// The client principal of each forwarded request in `forwarded_in` that carried one
    /// (`PeerMessage::ForwardAs`): who the controller authorizes it as. Bounded by
    /// `forwarded_in` (entries leave with theirs).
    pub forwarded_principals: std::collections::BTreeMap<RequestId, crate::event::Principal>,
    /// The client address of each forwarded request that named one, as above.
    pub forwarded_hosts: std::collections::BTreeMap<RequestId, String>,
    /// Client requests held until something they need exists (see [`HoldFor`]):
    /// dispatched once it does, or at the deadline (then answered as without the wait).
    pub(in crate::node) held: Purgatory<(HoldFor, weir_wire::domain::ApiRequest)>,
}

/// An admin request forwarded to the controller.
#[derive(Debug, Clone)]
pub(in crate::node) struct Forwarded {
    /// The client's request.
    pub id: RequestId,
    /// The header it was encoded with (decodes the answer).
    pub header: weir_wire::codec::RequestHeader,
    /// For an error answer.
    pub request: weir_wire::domain::ApiRequest,
}

impl Router {
    /// Empty waits.
    pub(super) fn new(held_max: usize) -> Router {
        Router {
            forwarded: Purgatory::new(FORWARDED_MAX),
            forwarded_in: Purgatory::new(FORWARDED_IN_MAX),
            forwarded_principals: std::collections::BTreeMap::new(),
            forwarded_hosts: std::collections::BTreeMap::new(),
            held: Purgatory::new(held_max),
        }
    }

    /// The waits are bounded and keyed as their origin says: a forwarded request this
    /// controller handles carries a forwarded origin; what this broker forwarded or holds
    /// is a client's (or, forwarded on, a coordinator's group write, never a peer's).
    pub(super) fn invariants(&self) {
        self.forwarded.invariants();
        self.forwarded_in.invariants();
        assert!(
            (self.forwarded_principals.keys()).all(|id| self.forwarded_in.get(*id).is_some()),
            "a forwarded principal outlived its request"
        );
        assert!(
            (self.forwarded_hosts.keys()).all(|id| self.forwarded_in.get(*id).is_some()),
            "a forwarded host outlived its request"
        );
        self.held.invariants();
        assert!(
            (self.forwarded_in.iter())
                .all(|(id, (from, _, _))| id.origin == Origin::Forwarded { from: *from }),
            "a forwarded request under another origin"
        );
        assert!(
            (self.forwarded.iter()).all(|(_, f)| !matches!(f.id.origin, Origin::Forwarded { .. })),
            "a forwarded request forwarded again"
        );
    }
}
