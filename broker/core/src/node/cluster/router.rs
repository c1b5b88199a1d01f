//! The request router's waits: requests forwarded to the controller, forwarded requests
//! the controller handles, and client requests held until what they need exists. The
//! handlers are in `node/cluster_api.rs`.

use std::collections::BTreeMap;

use crate::event::RequestId;
use crate::purgatory::Purgatory;
use crate::time::Instant;

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
    /// Admin requests this broker forwarded to the controller: correlation -> (client
    /// request, its header, deadline, the request for an error answer).
    pub forwarded: BTreeMap<u64, Forwarded>,
    /// Forwarded requests this controller is handling: synthetic id -> (broker, correlation,
    /// request header).
    pub forwarded_in: BTreeMap<RequestId, (i32, u64, weir_wire::codec::RequestHeader)>,
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
    /// When to give up.
    pub deadline: Instant,
    /// For an error answer.
    pub request: weir_wire::domain::ApiRequest,
}
