//! Conversions for DescribeLogDirs (key 35, v1-4).
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at `v`
//! (the top-level error from v3, the volume sizes from v4), and `*_to_domain` copies every
//! field, so the pair round-trips whenever `x` holds the schema default in the fields `v`
//! lacks. v5 (KIP-1066's `IsCordoned`) is beyond kafka-protocol 0.18.

use kafka_protocol::messages::{
    describe_log_dirs_request as dldr, describe_log_dirs_response as dlds, DescribeLogDirsRequest,
    DescribeLogDirsResponse,
};

use super::convert_helpers::{sb, st, tn};
use crate::domain::log_dirs as d;
use crate::error::ErrorCode;

pub(super) fn req_to_domain(k: DescribeLogDirsRequest) -> d::DescribeLogDirsRequest {
    d::DescribeLogDirsRequest {
        topics: k.topics.map(|topics| {
            (topics.into_iter())
                .map(|t| d::DescribableLogDirTopic {
                    topic: st(&t.topic.0),
                    partitions: t.partitions,
                })
                .collect()
        }),
    }
}

pub(super) fn req_from_domain(x: &d::DescribeLogDirsRequest) -> DescribeLogDirsRequest {
    let mut k = DescribeLogDirsRequest::default();
    k.topics = x.topics.as_ref().map(|topics| {
        (topics.iter())
            .map(|t| {
                dldr::DescribableLogDirTopic::default()
                    .with_topic(tn(&t.topic))
                    .with_partitions(t.partitions.clone())
            })
            .collect()
    });
    k
}

pub(super) fn resp_from_domain(x: &d::DescribeLogDirsResponse, v: i16) -> DescribeLogDirsResponse {
    let mut k = DescribeLogDirsResponse::default();
    k.throttle_time_ms = x.throttle_time_ms;
    if v >= 3 {
        k.error_code = x.error.0;
    }
    k.results = (x.results.iter())
        .map(|r| {
            let mut kr = dlds::DescribeLogDirsResult::default()
                .with_error_code(r.error.0)
                .with_log_dir(sb(&r.log_dir))
                .with_topics(r.topics.iter().map(topic_from_domain).collect());
            if v >= 4 {
                kr.total_bytes = r.total_bytes;
                kr.usable_bytes = r.usable_bytes;
            }
            kr
        })
        .collect();
    k
}

fn topic_from_domain(t: &d::LogDirTopic) -> dlds::DescribeLogDirsTopic {
    let partitions = (t.partitions.iter())
        .map(|p| {
            dlds::DescribeLogDirsPartition::default()
                .with_partition_index(p.partition)
                .with_partition_size(p.partition_size)
                .with_offset_lag(p.offset_lag)
                .with_is_future_key(p.is_future_key)
        })
        .collect();
    dlds::DescribeLogDirsTopic::default()
        .with_name(tn(&t.name))
        .with_partitions(partitions)
}

pub(super) fn resp_to_domain(k: DescribeLogDirsResponse) -> d::DescribeLogDirsResponse {
    d::DescribeLogDirsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        results: (k.results.into_iter())
            .map(|r| d::LogDirResult {
                error: ErrorCode(r.error_code),
                log_dir: st(&r.log_dir),
                topics: (r.topics.into_iter())
                    .map(|t| d::LogDirTopic {
                        name: st(&t.name.0),
                        partitions: (t.partitions.into_iter())
                            .map(|p| d::LogDirPartition {
                                partition: p.partition_index,
                                partition_size: p.partition_size,
                                offset_lag: p.offset_lag,
                                is_future_key: p.is_future_key,
                            })
                            .collect(),
                    })
                    .collect(),
                total_bytes: r.total_bytes,
                usable_bytes: r.usable_bytes,
            })
            .collect(),
    }
}
