//! Dependency graph and cycle search (§6.4 step 12), in the manner of Elle.
//!
//! Nodes are committed send/poll/txn ops. Edges: `wr` (writer → reader of a value), `rt`
//! (A completed `ok` before B was invoked; Elle's transitive reduction with a buffer of
//! recent completions) and, with `ww_deps`, `ww` (writers of consecutive positions).
//! The *bad* search runs Tarjan on the wr∪rt subgraph: under read_committed every such edge
//! implies commit order, so any cycle is impossible (G1c / G1c-realtime). The informational
//! search (ww_deps) runs on all edges and names new components G0 / G1c-ww. Each non-trivial
//! component is explained by one shortest cycle found by BFS; a deterministic step budget
//! bounds the BFS work, and a component left unexplained is `scc-without-cycle`.

use super::{len_u32, Arena, Evidence, FClass, KeyLog, Role, NONE};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::CheckConfig;

const WR: u8 = 1;
const RT: u8 = 2;
const WW: u8 = 4;
const ALL: u8 = WR | RT | WW;
/// Members listed in a `scc-without-cycle` anomaly, at most.
const MEMBERS_LISTED_MAX: usize = 32;

/// Builds the graph and reports cycles.
pub(crate) fn cycles(
    config: &CheckConfig,
    arena: &Arena,
    evidence: &Evidence,
    logs: &[KeyLog],
    anomalies: &mut Vec<Anomaly>,
) {
    // Only ops that certainly took effect are transactions in the graph: an uncommitted
    // info op or a failed op has no place in the commit order the cycles reason about.
    let mut node_of = vec![NONE; arena.ops.len()];
    let mut nodes: Vec<u32> = Vec::new();
    for (op, rec) in arena.ops.iter().enumerate() {
        if matches!(rec.f, FClass::Send | FClass::Poll | FClass::Txn) && evidence.op_committed[op] {
            node_of[op] = len_u32(&nodes);
            nodes.push(u32::try_from(op).expect("op count fits u32"));
        }
    }
    if nodes.len() < 2 {
        return;
    }
    let mut edges = Vec::new();
    wr_edges(arena, evidence, &node_of, &mut edges);
    rt_edges(arena, &node_of, nodes.len(), &mut edges);
    if config.ww_deps {
        ww_edges(evidence, logs, arena, &node_of, &mut edges);
    }
    let graph = Csr::new(nodes.len(), edges);
    // One budget shared by every search keeps the worst case bounded however many
    // components there are; components are visited in sorted order, so which ones run out
    // is deterministic.
    let mut search = Search::new(&graph, config.cycle_search_steps_max);
    let bad = tarjan(&graph, WR | RT);
    let mut bad_comp = vec![NONE; nodes.len()];
    for (c, members) in bad.iter().enumerate() {
        for &m in members {
            bad_comp[m as usize] = u32::try_from(c).expect("component count fits u32");
        }
    }
    for members in &bad {
        // Any member of a strongly connected component lies on a cycle inside it, so a BFS
        // from the smallest member always succeeds unless the budget runs out.
        let start = members[0];
        let cycle = search.path(members, start, start, WR | RT);
        anomalies.push(explain(arena, &graph, &nodes, members, cycle, false));
    }
    if !config.ww_deps {
        return;
    }
    for members in tarjan(&graph, ALL) {
        // A component identical to a bad one is already explained (and judged) above.
        let c = bad_comp[members[0] as usize];
        let same_as_bad = c != NONE
            && members.iter().all(|&m| bad_comp[m as usize] == c)
            && bad[c as usize].len() == members.len();
        if same_as_bad {
            continue;
        }
        // Explain through a ww edge: the new component exists because of one.
        let Some((from, to)) = members.iter().find_map(|&u| {
            graph
                .row(u)
                .iter()
                .find(|&&(v, m)| m & WW != 0 && members.binary_search(&v).is_ok())
                .map(|&(v, _)| (u, v))
        }) else {
            continue;
        };
        // Prefer a pure ww cycle (G0) over one that needs wr edges (G1c-ww).
        let cycle = match search.path(&members, to, from, WW) {
            Ok(None) => search.path(&members, to, from, ALL),
            other => other,
        };
        let cycle = cycle.map(|path| path.map(|p| std::iter::once(from).chain(p).collect()));
        anomalies.push(explain(arena, &graph, &nodes, &members, cycle, true));
    }
}

fn wr_edges(arena: &Arena, evidence: &Evidence, node_of: &[u32], edges: &mut Vec<(u32, u32, u8)>) {
    for (r, read) in arena.reads.iter().enumerate() {
        let w = evidence.read_writer[r];
        if w == NONE {
            continue;
        }
        let (writer, reader) = (
            node_of[arena.writes[w as usize].op as usize],
            node_of[read.op as usize],
        );
        // Self-edges would make every op that reads its own write a trivial cycle; that
        // case is precommitted-read's business.
        if writer != NONE && reader != NONE && writer != reader {
            edges.push((writer, reader, WR));
        }
    }
}

/// Elle's realtime reduction: at B's invocation, every op in the buffer precedes B; when an
/// `ok` node B completes, its predecessors leave the buffer (B now stands for them).
fn rt_edges(arena: &Arena, node_of: &[u32], node_count: usize, edges: &mut Vec<(u32, u32, u8)>) {
    let mut buffer: Vec<u32> = Vec::new();
    let mut preds: Vec<u32> = Vec::new();
    let mut preds_of: Vec<(u32, u32)> = vec![(0, 0); node_count];
    let mut stamp = vec![NONE; node_count];
    for role in &arena.roles {
        match *role {
            Role::Ignored => {}
            Role::Invoke(op) => {
                let node = node_of[op as usize];
                if node == NONE {
                    continue;
                }
                let start = len_u32(&preds);
                for &b in &buffer {
                    edges.push((b, node, RT));
                    preds.push(b);
                }
                preds_of[node as usize] = (start, len_u32(&preds));
            }
            Role::Complete(op) => {
                let node = node_of[op as usize];
                if node == NONE || arena.ops[op as usize].kind != crate::history::Kind::Ok {
                    continue;
                }
                // Ops that preceded B are now implied through B (transitively), so dropping
                // them keeps the buffer at about the concurrency and the edge count O(n*C).
                let (start, end) = preds_of[node as usize];
                for &p in &preds[start as usize..end as usize] {
                    stamp[p as usize] = node;
                }
                buffer.retain(|&b| stamp[b as usize] != node);
                buffer.push(node);
            }
        }
    }
}

/// Writers of consecutive positions of each key (representative values).
fn ww_edges(
    evidence: &Evidence,
    logs: &[KeyLog],
    arena: &Arena,
    node_of: &[u32],
    edges: &mut Vec<(u32, u32, u8)>,
) {
    for (key, log) in logs.iter().enumerate() {
        let key = u32::try_from(key).expect("key count fits u32");
        let writer_node = |pos: u32| {
            evidence
                .writer_of(key, log.rep(pos))
                .map_or(NONE, |w| node_of[arena.writes[w as usize].op as usize])
        };
        // Positions with several values (inconsistent offsets) use the smallest as the
        // representative; the inconsistency itself is reported elsewhere.
        let mut prev = if log.len() > 0 { writer_node(0) } else { NONE };
        for pos in 1..log.len() {
            let next = writer_node(pos);
            if prev != NONE && next != NONE && prev != next {
                edges.push((prev, next, WW));
            }
            prev = next;
        }
    }
}

/// Compressed adjacency: row `u` is `targets[start[u]..start[u+1]]`, sorted by target,
/// each with the union of its edge-type bits.
struct Csr {
    start: Vec<u32>,
    targets: Vec<(u32, u8)>,
}

impl Csr {
    fn new(node_count: usize, mut edges: Vec<(u32, u32, u8)>) -> Self {
        edges.sort_unstable();
        let mut start = vec![0u32; node_count + 1];
        let mut targets: Vec<(u32, u8)> = Vec::with_capacity(edges.len());
        let mut last: Option<(u32, u32)> = None;
        for (from, to, mask) in edges {
            if last == Some((from, to)) {
                targets.last_mut().expect("an edge was pushed").1 |= mask;
                continue;
            }
            last = Some((from, to));
            targets.push((to, mask));
            start[from as usize + 1] += 1;
        }
        for u in 0..node_count {
            start[u + 1] += start[u];
        }
        Self { start, targets }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    fn row(&self, u: u32) -> &[(u32, u8)] {
        &self.targets[self.start[u as usize] as usize..self.start[u as usize + 1] as usize]
    }

    fn mask(&self, u: u32, v: u32) -> u8 {
        let row = self.row(u);
        row.binary_search_by_key(&v, |e| e.0)
            .map_or(0, |i| row[i].1)
    }
}

/// Iterative Tarjan over edges whose mask intersects `mask`; returns the components with at
/// least two members, each sorted, in a deterministic order.
fn tarjan(graph: &Csr, mask: u8) -> Vec<Vec<u32>> {
    let n = graph.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut calls: Vec<(u32, usize)> = Vec::new();
    let mut counter = 0u32;
    let mut components = Vec::new();
    for root in 0..len_u32(&graph.start[1..]) {
        if index[root as usize] != NONE {
            continue;
        }
        index[root as usize] = counter;
        low[root as usize] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        calls.push((root, 0));
        // Explicit call stack: histories with 10^6 ops would overflow a recursive Tarjan.
        while let Some(frame) = calls.last_mut() {
            let v = frame.0;
            let row = graph.row(v);
            if frame.1 < row.len() {
                let (w, m) = row[frame.1];
                frame.1 += 1;
                if m & mask == 0 {
                    continue;
                }
                if index[w as usize] == NONE {
                    index[w as usize] = counter;
                    low[w as usize] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    calls.push((w, 0));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
                continue;
            }
            calls.pop();
            if let Some(parent) = calls.last() {
                low[parent.0 as usize] = low[parent.0 as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w as usize] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    members.sort_unstable();
                    components.push(members);
                }
            }
        }
    }
    components.sort_unstable();
    components
}

/// The cycle search ran out of its step budget.
struct Exhausted;

/// BFS state reused across searches, with the shared step budget.
struct Search<'g> {
    graph: &'g Csr,
    parent: Vec<u32>,
    visited: Vec<bool>,
    steps_left: u64,
}

impl<'g> Search<'g> {
    fn new(graph: &'g Csr, steps_max: u64) -> Self {
        Self {
            graph,
            parent: vec![NONE; graph.len()],
            visited: vec![false; graph.len()],
            steps_left: steps_max,
        }
    }

    /// Shortest path `from → … → to` (a cycle when equal) inside `members` (sorted) over
    /// edges intersecting `mask`. Returns the nodes from `from` to `to` inclusive.
    fn path(
        &mut self,
        members: &[u32],
        from: u32,
        to: u32,
        mask: u8,
    ) -> Result<Option<Vec<u32>>, Exhausted> {
        let mut queue = std::collections::VecDeque::from([from]);
        let mut touched = vec![from];
        self.visited[from as usize] = true;
        let mut found = None;
        'bfs: while let Some(v) = queue.pop_front() {
            for &(w, m) in self.graph.row(v) {
                if self.steps_left == 0 {
                    break 'bfs;
                }
                self.steps_left -= 1;
                if m & mask == 0 || members.binary_search(&w).is_err() {
                    continue;
                }
                if w == to {
                    found = Some(v);
                    break 'bfs;
                }
                if !self.visited[w as usize] {
                    self.visited[w as usize] = true;
                    self.parent[w as usize] = v;
                    touched.push(w);
                    queue.push_back(w);
                }
            }
        }
        let result = found.map(|last| {
            let mut path = vec![to];
            let mut at = last;
            while at != from {
                path.push(at);
                at = self.parent[at as usize];
            }
            path.push(from);
            path.reverse();
            path
        });
        for t in touched {
            self.visited[t as usize] = false;
            self.parent[t as usize] = NONE;
        }
        match result {
            None if self.steps_left == 0 => Err(Exhausted),
            result => Ok(result),
        }
    }
}

/// Names and explains one component from its cycle (closed node list) or budget failure.
fn explain(
    arena: &Arena,
    graph: &Csr,
    nodes: &[u32],
    members: &[u32],
    cycle: Result<Option<Vec<u32>>, Exhausted>,
    with_ww: bool,
) -> Anomaly {
    let op_id = |node: u32| arena.id(nodes[node as usize]);
    let Ok(Some(cycle)) = cycle else {
        let kind = if with_ww {
            AnomalyKind::SccWithoutCycleWw
        } else {
            AnomalyKind::SccWithoutCycle
        };
        let ops: Vec<u32> = members
            .iter()
            .take(MEMBERS_LISTED_MAX)
            .map(|&m| op_id(m))
            .collect();
        let explanation = format!(
            "{} ops form a strongly connected component; the cycle search ran out of budget",
            members.len()
        );
        return Anomaly::new(kind, explanation).ops(ops);
    };
    let allowed = if with_ww { ALL } else { WR | RT };
    let (mut has_wr, mut has_rt, mut text) = (false, false, format!("op {}", op_id(cycle[0])));
    for pair in cycle.windows(2) {
        let m = graph.mask(pair[0], pair[1]) & allowed;
        // An edge that is both ww and wr counts as ww, so the informational name is used
        // whenever the cycle can be read as one of non-isolated writes.
        let label = if m & WW != 0 {
            "ww"
        } else if m & WR != 0 {
            has_wr = true;
            "wr"
        } else {
            has_rt = true;
            "rt"
        };
        text.push_str(&format!(" -{label}-> op {}", op_id(pair[1])));
    }
    let kind = match (with_ww, has_wr, has_rt) {
        (false, _, false) => AnomalyKind::G1c,
        (false, _, true) => AnomalyKind::G1cRealtime,
        (true, false, false) => AnomalyKind::G0,
        (true, false, true) => AnomalyKind::G0Realtime,
        (true, true, false) => AnomalyKind::G1cWw,
        (true, true, true) => AnomalyKind::G1cWwRealtime,
    };
    let ops: Vec<u32> = cycle[..cycle.len() - 1].iter().map(|&n| op_id(n)).collect();
    let explanation = format!("cycle of {} ops: {text}", ops.len());
    Anomaly::new(kind, explanation).ops(ops)
}
