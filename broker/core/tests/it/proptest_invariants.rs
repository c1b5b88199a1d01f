//! Property test: random interleavings of produce (all acks levels), sync completion, time
//! passing (retention), clean restarts and crashes keep every node invariant and never lose
//! an acknowledged record that retention did not remove.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use weir_core::testing::{batch_of_values, SingleNode, WALL_MS_START};
use weir_core::{NodeConfig, RequestId};
use weir_wire::domain::ApiResponse;

#[derive(Debug, Clone)]
enum Step {
    Produce {
        partition: i32,
        acks: i16,
        value: u8,
    },
    CompleteSyncs,
    Advance {
        ms: u64,
    },
    Restart,
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..2i32, prop::sample::select(vec![0i16, 1, -1]), any::<u8>())
            .prop_map(|(partition, acks, value)| Step::Produce { partition, acks, value }),
        3 => Just(Step::CompleteSyncs),
        2 => (0..3_000u64).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Restart),
        1 => Just(Step::Crash),
    ]
}

/// What the test knows was promised to producers.
#[derive(Default)]
struct Model {
    /// Acknowledged (acks=1/all) records: (partition, offset) -> value.
    acked: BTreeMap<(i32, i64), u8>,
    /// Produces waiting for an answer: id -> (partition, value, acks).
    pending: BTreeMap<RequestId, (i32, u8, i16)>,
}

impl Model {
    fn collect(&mut self, node: &mut SingleNode) {
        let ids: Vec<RequestId> = self.pending.keys().copied().collect();
        for id in ids {
            if node.take_no_response(id).is_some() {
                // acks=0: nothing was promised.
                self.pending.remove(&id);
                continue;
            }
            let Some(response) = node.take(id) else {
                continue;
            };
            let produced = self.pending.remove(&id).expect("pending");
            note_ack(&mut self.acked, produced, &response);
        }
    }

    /// Every acknowledged record at or above the log start is readable with its value.
    fn check(&self, node: &mut SingleNode) {
        for partition in 0..2 {
            let (log_start, high_watermark, _) =
                node.node.partition_offsets("t", partition).expect("exists");
            let response = node.call(fetch_all(partition, log_start));
            let stored: BTreeMap<i64, Vec<u8>> = fetched_records(&response)
                .into_iter()
                .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
                .collect();
            for ((p, offset), value) in self.acked.range((partition, log_start)..(partition + 1, 0))
            {
                assert_eq!(*p, partition);
                assert!(
                    *offset < high_watermark,
                    "acked offset {offset} above hw {high_watermark}"
                );
                assert_eq!(
                    stored.get(offset),
                    Some(&vec![*value]),
                    "acked record at {offset} lost"
                );
            }
        }
    }
}

fn fetch_all(partition: i32, offset: i64) -> weir_wire::domain::ApiRequest {
    let weir_wire::domain::ApiRequest::Fetch(mut request) = fetch("t", partition, offset, 0, 1)
    else {
        unreachable!()
    };
    request.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    weir_wire::domain::ApiRequest::Fetch(request)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    // Goal: invariants hold and acknowledged data survives any schedule. Method: random
    // steps against the harness (which checks Node::invariants after every output batch),
    // a model of acknowledged records checked after every restart/crash and at the end.
    #[test]
    fn random_schedules_keep_invariants(steps in prop::collection::vec(step(), 1..60)) {
        let mut node =
            node_with(|config: &mut NodeConfig| config.retention_check_interval_ms = 500);
        let one = batch_of_values(&[b"x"], WALL_MS_START).len();
        let segment_bytes = (2 * one).to_string();
        let retention_bytes = (6 * one).to_string();
        let configs = [
            ("segment.bytes", segment_bytes.as_str()),
            ("retention.bytes", retention_bytes.as_str()),
        ];
        must_create(&mut node, "t", 2, &configs);
        let mut model = Model::default();
        for (conn, step) in steps.into_iter().enumerate() {
            match step {
                Step::Produce { partition, acks, value } => {
                    let records = batch_of_values(&[&[value]], WALL_MS_START);
                    let id = node.send(conn as u64, produce("t", partition, records, acks));
                    model.pending.insert(id, (partition, value, acks));
                }
                Step::CompleteSyncs => node.complete_syncs(),
                Step::Advance { ms } => node.advance_ms(ms),
                Step::Restart | Step::Crash => {
                    model.collect(&mut node);
                    model.pending.clear();
                    if matches!(step, Step::Crash) { node.crash(); } else { node.restart(); }
                    model.check(&mut node);
                }
            }
            model.collect(&mut node);
        }
        node.complete_syncs();
        model.collect(&mut node);
        model.check(&mut node);
        prop_assert!(matches!(node.call(metadata(None, false)), ApiResponse::Metadata(_)));
    }
}
