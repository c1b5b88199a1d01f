//! Where a workload's name meets its code: [`Workload::spec`] and the actors' entry points
//! ([`producer`], [`consumer`], [`final_reader`]), which pick the plain
//! (`workload.rs`), transactional (`workload_txn`) or consumer-group (`workload_group`)
//! variant. It sits above every workload file, so `workload.rs` (what they all share)
//! imports none of them and no file of a workload imports another's dispatcher.

use weir_client::Acks;
use weir_runtime::Runtime;

use crate::disk::DiskFaults;
use crate::workload::{
    plain_consumer, plain_final_reader, plain_producer, Actors, Spec, Workload, BUGGIFY_PER_MILLE,
};

impl Workload {
    /// What this workload does.
    pub fn spec(self) -> Spec {
        let base = Spec {
            acks: Acks::All,
            keyed: true,
            producers: 2,
            sends_per_producer: 24,
            partitions: 3,
            crashes: false,
            net_faults: false,
            clock_jumps: false,
            disk: DiskFaults::NONE,
            idempotent: false,
            buggify_per_mille: 0,
            txn: false,
            group_members: 0,
            cluster_nodes: 0,
            isr_memory: false,
            compact: false,
            tiered: false,
            acl: false,
        };
        let crashy_disk = DiskFaults {
            fsync_fail_per_mille: 15,
            corrupt_read_per_mille: 60,
            torn_kept: false,
        };
        match self {
            Workload::Produce => base,
            Workload::ProduceCrash => Spec {
                crashes: true,
                clock_jumps: true,
                disk: crashy_disk,
                buggify_per_mille: BUGGIFY_PER_MILLE,
                ..base
            },
            Workload::ProducePartition => Spec {
                keyed: false,
                net_faults: true,
                buggify_per_mille: BUGGIFY_PER_MILLE,
                ..base
            },
            Workload::Acks1 => Spec {
                acks: Acks::Leader,
                crashes: true,
                disk: crashy_disk,
                buggify_per_mille: BUGGIFY_PER_MILLE,
                ..base
            },
            Workload::Acks0 => Spec {
                acks: Acks::None,
                crashes: true,
                buggify_per_mille: BUGGIFY_PER_MILLE,
                ..base
            },
            Workload::IdempotentCrash => Spec {
                crashes: true,
                net_faults: true,
                clock_jumps: true,
                disk: crashy_disk,
                idempotent: true,
                buggify_per_mille: BUGGIFY_PER_MILLE,
                ..base
            },
            Workload::Txn => crate::workload_txn::spec(base, false, crashy_disk),
            Workload::TxnCrash => crate::workload_txn::spec(base, true, crashy_disk),
            Workload::Group => crate::workload_group::spec(base, false, crashy_disk),
            Workload::GroupCrash => crate::workload_group::spec(base, true, crashy_disk),
            Workload::ClusterCrash
            | Workload::ClusterPartition
            | Workload::ClusterTwoDown
            | Workload::ClusterMixed
            | Workload::ClusterMixed5
            | Workload::ClusterPower
            | Workload::ClusterPowerMemory
            | Workload::ClusterMajorityCrash => crate::workload_cluster::spec(base, self),
            Workload::Compact => crate::workload_compact::spec(base, crashy_disk),
            Workload::ClusterCompact => {
                let cluster = crate::workload_cluster::spec(base, Workload::ClusterCrash);
                crate::workload_compact::cluster_spec(cluster)
            }
            Workload::ClusterTiered => Spec {
                tiered: true,
                ..crate::workload_cluster::spec(base, Workload::ClusterCrash)
            },
            Workload::ClusterAcl => Spec {
                acl: true,
                ..crate::workload_cluster::spec(base, Workload::ClusterCrash)
            },
        }
    }
}

/// One producer actor: the compaction one (`workload_compact`), the transactional one
/// (`workload_txn`) or the plain one.
pub async fn producer<R: Runtime>(runtime: R, actors: Actors, index: usize) {
    if actors.spec.compact {
        return crate::workload_compact::producer(runtime, actors, index).await;
    }
    if actors.spec.txn {
        return crate::workload_txn::producer(runtime, actors, index).await;
    }
    plain_producer(runtime, actors, index).await;
}

/// The main-phase consumer: the transactional one, the group watcher (the members run on
/// their own hosts), or the plain one.
pub async fn consumer<R: Runtime>(runtime: R, actors: Actors) {
    if actors.spec.compact {
        return crate::workload_compact::consumer(runtime, actors).await;
    }
    if actors.spec.txn {
        return crate::workload_txn::consumer(runtime, actors).await;
    }
    if actors.spec.group_members > 0 {
        // The members run on their own hosts; this host watches the group.
        return crate::workload_group::watcher(runtime, actors).await;
    }
    plain_consumer(runtime, actors).await;
}

/// The final phase's reader: the transactional one or the plain one.
pub async fn final_reader<R: Runtime>(runtime: R, actors: Actors) {
    if actors.spec.compact {
        return crate::workload_compact::final_reader(runtime, actors).await;
    }
    if actors.spec.txn {
        return crate::workload_txn::final_reader(runtime, actors).await;
    }
    if actors.spec.acl {
        crate::workload_acl::final_check(&runtime, &actors).await;
    }
    plain_final_reader(runtime, actors).await;
}
