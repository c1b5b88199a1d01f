//! Purgatory: requests parked until something happens or a deadline passes (Kafka's
//! delayed produce / delayed fetch), in a bounded map ordered by deadline. Every wait of
//! the core goes through one: client requests are keyed by [`RequestId`] (the default),
//! waits on behalf of a peer (a transaction marker answered once replicated) by the peer's
//! own key.
//!
//! Invariants: at most `capacity` entries; every entry with a deadline appears exactly once
//! in the deadline index and nothing else does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use crate::event::RequestId;
use crate::time::Instant;

/// A bounded set of parked requests with optional deadlines.
#[derive(Debug, Clone)]
pub(crate) struct Purgatory<T, K = RequestId> {
    entries: BTreeMap<K, (Option<Instant>, T)>,
    deadlines: BTreeSet<(Instant, K)>,
    capacity: usize,
}

impl<T, K: Ord + Copy + Debug> Purgatory<T, K> {
    /// An empty purgatory holding at most `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        Purgatory {
            entries: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            capacity,
        }
    }

    /// Number of parked requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when no more requests may be parked.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Park `value`; gives it back when full. Ids are unique per request, so a duplicate
    /// is a driver bug.
    pub fn insert(&mut self, id: K, deadline: Option<Instant>, value: T) -> Result<(), T> {
        if self.is_full() {
            return Err(value);
        }
        assert!(
            !self.entries.contains_key(&id),
            "request {id:?} parked twice"
        );
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, id));
        }
        self.entries.insert(id, (deadline, value));
        Ok(())
    }

    /// Unpark one request.
    pub fn remove(&mut self, id: K) -> Option<T> {
        let (deadline, value) = self.entries.remove(&id)?;
        if let Some(deadline) = deadline {
            self.deadlines.remove(&(deadline, id));
        }
        Some(value)
    }

    /// A parked request.
    pub fn get(&self, id: K) -> Option<&T> {
        self.entries.get(&id).map(|(_, value)| value)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Unpark one request whose deadline is at or before `now`, earliest first.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(K, T)> {
        let &(deadline, id) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.remove(id).map(|value| (id, value))
    }

    /// Iterate parked requests in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &T)> {
        self.entries.iter().map(|(id, (_, value))| (id, value))
    }

    /// Unpark every entry `pick` selects, in key order.
    pub fn remove_where(&mut self, pick: impl Fn(&K, &T) -> bool) -> Vec<(K, T)> {
        let ids: Vec<K> = (self.entries.iter())
            .filter(|(id, (_, value))| pick(id, value))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.remove(id).map(|value| (id, value)))
            .collect()
    }

    /// Unpark everything, in key order.
    pub fn drain(&mut self) -> Vec<(K, T)> {
        self.deadlines.clear();
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(id, (_, value))| (id, value))
            .collect()
    }

    /// Assert the module invariants.
    pub fn invariants(&self) {
        assert!(
            self.entries.len() <= self.capacity,
            "{} > {}",
            self.entries.len(),
            self.capacity
        );
        let with_deadline = self
            .entries
            .values()
            .filter(|(deadline, _)| deadline.is_some())
            .count();
        assert_eq!(with_deadline, self.deadlines.len());
        for (deadline, id) in &self.deadlines {
            let entry = self.entries.get(id).map(|(d, _)| *d);
            assert_eq!(
                entry,
                Some(Some(*deadline)),
                "deadline index out of sync for {id:?}"
            );
        }
    }
}

impl<T> Purgatory<T, RequestId> {
    /// Unpark every request of connection `conn`.
    pub fn remove_conn(&mut self, conn: u64) -> Vec<(RequestId, T)> {
        let first = RequestId::client(conn, 0);
        let ids: Vec<RequestId> = self
            .entries
            .range(first..)
            .map(|(id, _)| *id)
            .take_while(|id| id.conn() == Some(conn))
            .collect();
        ids.into_iter()
            .filter_map(|id| self.remove(id).map(|value| (id, value)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(conn: u64, seq: u64) -> RequestId {
        RequestId::client(conn, seq)
    }

    // Goal: bound, deadline order, per-connection removal. Method: fill, expire, drop.
    #[test]
    fn bounded_ordered_and_per_connection() {
        let mut purgatory = Purgatory::new(3);
        purgatory
            .insert(id(1, 1), Some(Instant::from_nanos(30)), "a")
            .expect("room");
        purgatory
            .insert(id(2, 1), Some(Instant::from_nanos(10)), "b")
            .expect("room");
        purgatory.insert(id(1, 2), None, "c").expect("room");
        assert_eq!(purgatory.insert(id(3, 1), None, "d"), Err("d"));
        purgatory.invariants();
        assert_eq!(purgatory.next_deadline(), Some(Instant::from_nanos(10)));
        assert!(purgatory.pop_expired(Instant::from_nanos(9)).is_none());
        assert_eq!(
            purgatory.pop_expired(Instant::from_nanos(10)),
            Some((id(2, 1), "b"))
        );
        let dropped = purgatory.remove_conn(1);
        assert_eq!(dropped, vec![(id(1, 1), "a"), (id(1, 2), "c")]);
        assert!(purgatory.is_empty());
        assert_eq!(purgatory.next_deadline(), None);
        purgatory.invariants();
    }

    // Goal: a purgatory keyed by a peer's own key (not a client request) keeps the same
    // bound and deadline order, and `remove_where` takes exactly what it picks.
    #[test]
    fn keyed_by_peer_and_picked() {
        let mut purgatory: Purgatory<i64, (i32, u64)> = Purgatory::new(2);
        purgatory
            .insert((2, 7), Some(Instant::from_nanos(5)), 10)
            .expect("room");
        purgatory.insert((1, 9), None, 20).expect("room");
        assert_eq!(purgatory.insert((3, 1), None, 30), Err(30));
        assert_eq!(
            purgatory.remove_where(|_, end| *end >= 15),
            vec![((1, 9), 20)]
        );
        purgatory.invariants();
        assert_eq!(
            purgatory.pop_expired(Instant::from_nanos(5)),
            Some(((2, 7), 10))
        );
        assert!(purgatory.is_empty());
        purgatory.invariants();
    }
}
