//! Correlation ids and the bounded in-flight map of one connection.
//!
//! Invariants:
//! - At most `limit` requests are in flight; `insert` refuses more.
//! - A correlation id is never reused while its request is in flight (ids wrap at
//!   `i32::MAX` back to 0 and skip ids still present).
//! - Each response completes at most one request: `complete` removes the entry.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_wire::codec::RequestHeader;

/// A request waiting for its response.
#[derive(Debug)]
pub struct Pending<T> {
    /// The header it was sent with; the response is decoded against it.
    pub header: RequestHeader,
    /// When it was handed to the connection.
    pub sent_at: Duration,
    /// Whatever the driver needs to deliver the response (a channel sender).
    pub token: T,
}

/// The in-flight map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightFull {
    /// The bound that was hit.
    pub limit: usize,
}

/// Correlation-id allocator plus the in-flight map.
#[derive(Debug)]
pub struct InFlight<T> {
    next_correlation_id: i32,
    entries: BTreeMap<i32, Pending<T>>,
    limit: usize,
}

impl<T> InFlight<T> {
    /// An empty map bounded to `limit` entries (at least 1).
    pub fn new(limit: usize) -> InFlight<T> {
        InFlight {
            next_correlation_id: 0,
            entries: BTreeMap::new(),
            limit: limit.max(1),
        }
    }

    /// Allocates the header of the next request. The id is reserved only once `insert`ed;
    /// requests that expect no response (acks=0 produce) are never inserted.
    pub fn next_header(
        &mut self,
        api_key: i16,
        api_version: i16,
        client_id: &str,
    ) -> RequestHeader {
        let mut id = self.next_correlation_id;
        // Bounded: at most `limit` ids are taken, so this skips at most `limit` times.
        while self.entries.contains_key(&id) {
            id = next_id(id);
        }
        self.next_correlation_id = next_id(id);
        RequestHeader {
            api_key,
            api_version,
            correlation_id: id,
            client_id: Some(client_id.to_owned()),
        }
    }

    /// Registers a sent request.
    pub fn insert(
        &mut self,
        header: RequestHeader,
        now: Duration,
        token: T,
    ) -> Result<(), (InFlightFull, T)> {
        if self.entries.len() >= self.limit {
            return Err((InFlightFull { limit: self.limit }, token));
        }
        let id = header.correlation_id;
        let previous = self.entries.insert(
            id,
            Pending {
                header,
                sent_at: now,
                token,
            },
        );
        assert!(
            previous.is_none(),
            "correlation id {id} reused while in flight"
        );
        Ok(())
    }

    /// The response with `correlation_id` arrived: hands back its request, if still waited for.
    pub fn complete(&mut self, correlation_id: i32) -> Option<Pending<T>> {
        self.entries.remove(&correlation_id)
    }

    /// Forgets a request (it timed out or its caller went away).
    pub fn remove(&mut self, correlation_id: i32) -> Option<Pending<T>> {
        self.entries.remove(&correlation_id)
    }

    /// Every waiting request, oldest id first (the connection died).
    pub fn drain(&mut self) -> Vec<Pending<T>> {
        std::mem::take(&mut self.entries).into_values().collect()
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `insert` would refuse.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.limit
    }
}

/// The correlation id of a response frame (the first field of every response header).
pub fn peek_correlation_id(frame: &[u8]) -> Option<i32> {
    let prefix: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(prefix))
}

fn next_id(id: i32) -> i32 {
    // Kafka brokers echo any i32; staying non-negative keeps ids readable in logs.
    if id == i32::MAX {
        0
    } else {
        id + 1
    }
}

#[cfg(test)]
mod tests {
    // Goal: correlation ids are unique among in-flight requests, responses match exactly one
    // request, and the bound holds. Method: drive the map through allocation, wraparound,
    // completion out of order and overflow.
    use super::*;

    #[test]
    fn responses_match_by_correlation_id_in_any_order() {
        let mut in_flight = InFlight::new(4);
        let first = in_flight.next_header(3, 12, "c");
        let second = in_flight.next_header(0, 11, "c");
        assert_eq!((first.correlation_id, second.correlation_id), (0, 1));
        assert!(in_flight
            .insert(first.clone(), Duration::ZERO, "metadata")
            .is_ok());
        assert!(in_flight
            .insert(second.clone(), Duration::ZERO, "produce")
            .is_ok());
        let done = in_flight
            .complete(1)
            .map(|pending| (pending.token, pending.header.api_key));
        assert_eq!(done, Some(("produce", 0)));
        // A duplicate or unknown response completes nothing.
        assert!(in_flight.complete(1).is_none());
        assert!(in_flight.complete(77).is_none());
        assert_eq!(in_flight.complete(0).map(|p| p.token), Some("metadata"));
        assert!(in_flight.is_empty());
    }

    #[test]
    fn bound_is_enforced() {
        let mut in_flight = InFlight::new(2);
        for _ in 0..2 {
            let header = in_flight.next_header(1, 12, "c");
            assert!(in_flight.insert(header, Duration::ZERO, ()).is_ok());
        }
        assert!(in_flight.is_full());
        let header = in_flight.next_header(1, 12, "c");
        assert!(matches!(
            in_flight.insert(header, Duration::ZERO, ()),
            Err((InFlightFull { limit: 2 }, ()))
        ));
        assert_eq!(in_flight.drain().len(), 2);
    }

    #[test]
    fn ids_wrap_and_skip_ids_in_flight() {
        let mut in_flight = InFlight::new(8);
        in_flight.next_correlation_id = i32::MAX;
        let last = in_flight.next_header(1, 12, "c");
        assert_eq!(last.correlation_id, i32::MAX);
        let zero = in_flight.next_header(1, 12, "c");
        assert_eq!(zero.correlation_id, 0);
        assert!(in_flight.insert(zero, Duration::ZERO, ()).is_ok());
        // Wrap again onto the still-pending id 0: it must be skipped.
        in_flight.next_correlation_id = 0;
        assert_eq!(in_flight.next_header(1, 12, "c").correlation_id, 1);
    }

    #[test]
    fn peek_reads_the_first_four_bytes() {
        assert_eq!(peek_correlation_id(&[0, 0, 1, 2, 9]), Some(258));
        assert_eq!(peek_correlation_id(&[0, 0, 1]), None);
    }
}
