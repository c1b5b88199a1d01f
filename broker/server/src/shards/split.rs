//! Splitting a request over a broker's shards and merging the shards' answers
//! (docs/sharding.md, "Requests"). Pure: no I/O, no clock, no async; the connection's
//! router calls [`split`] on the decoded request, sends each part to its shard's loop, and
//! its writer calls [`merge`] once every part has answered.
//!
//! Where a request goes, with `S` shards:
//! - by partition (each partition to its shard, [`Placement::by_name`] or
//!   [`Placement::by_id`]; a partition the placement does not know to shard 0, which
//!   answers UNKNOWN_TOPIC_OR_PARTITION or auto-creates): Produce, Fetch, ListOffsets,
//!   OffsetForLeaderEpoch, DescribeProducers, WriteTxnMarkers;
//! - by group id to its coordinator's shard: the group APIs, TxnOffsetCommit (by its group);
//!   OffsetFetch, DescribeGroups, DeleteGroups and ConsumerGroupDescribe split by group;
//! - by transactional id to its coordinator's shard: InitProducerId with an id (without
//!   one, the connection's home shard), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn;
//!   DescribeTransactions splits by id;
//! - to every shard, the answers concatenated: ListGroups, ListTransactions,
//!   DescribeLogDirs;
//! - everything else (Metadata, admin, ACL, SCRAM, configs, quorum, features,
//!   FindCoordinator, DescribeCluster, SASL) to shard 0.
//!
//! Invariants:
//! - [`split`] returns at least one part; parts are sorted by shard, their shards distinct
//!   and below `S`; with `S <= 1` the request comes back untouched as shard 0's one part.
//! - Every partition (group, transactional id, marker partition) of the request is in
//!   exactly one part, in the part of its shard; within a part a topic is one entry (when
//!   it was one in the request) with its partitions in request order, and every other
//!   field of the request is kept in every part (Fetch's `max_bytes` is divided).
//! - [`merge`] of one part returns it unchanged. Of several, each partition (group,
//!   transaction) a part answered is in the answer as often as the parts answered it, and
//!   the entries of one topic (from every part) are one entry. Output order is part
//!   order, then each part's own order: no hash order reaches an answer.

use std::collections::BTreeMap;
use std::mem::{discriminant, take};

use weir_core::shard::Placement;
use weir_wire::domain::cluster::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use weir_wire::domain::log_dirs::{DescribeLogDirsResponse, LogDirResult, VOLUME_BYTES_UNKNOWN};
use weir_wire::domain::txn::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsResponse, TxnTopic, TxnTopicResult,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FetchRecords, FetchRequest, FetchResponse,
    ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, ProduceResponse, TopicRef,
};
use weir_wire::error::ErrorCode;

/// The parts of `request`, one per shard that has something to do, each `(shard,
/// request)`, sorted by shard, never empty, shards distinct (see the module doc for where
/// each API goes). `home` is the connection's own shard, which answers what any shard
/// could (an InitProducerId without transactional id); a `home` outside the placement's
/// shards is taken as shard 0. With `placement.count <= 1`, `[(0, request)]` untouched.
pub fn split(request: ApiRequest, home: u16, placement: &Placement) -> Vec<(u16, ApiRequest)> {
    let count = placement.count;
    if count <= 1 {
        return vec![(0, request)];
    }
    let home = if home < count { home } else { 0 };
    let group = |id: &str| placement.coordinator(id, false).unwrap_or(0);
    let transaction = |id: &str| placement.coordinator(id, true).unwrap_or(0);
    match request {
        // By partition.
        ApiRequest::Produce(r) => split_produce(r, placement),
        ApiRequest::Fetch(r) => split_fetch(r, placement),
        ApiRequest::ListOffsets(r) => split_list_offsets(r, placement),
        ApiRequest::OffsetForLeaderEpoch(r) => split_offset_for_leader_epoch(r, placement),
        ApiRequest::DeleteRecords(r) => split_delete_records(r, placement),
        ApiRequest::DescribeProducers(r) => split_describe_producers(r, placement),
        ApiRequest::WriteTxnMarkers(r) => split_write_txn_markers(r, placement),

        // By group id.
        ApiRequest::JoinGroup(r) => one(group(&r.group_id), ApiRequest::JoinGroup(r)),
        ApiRequest::Heartbeat(r) => one(group(&r.group_id), ApiRequest::Heartbeat(r)),
        ApiRequest::LeaveGroup(r) => one(group(&r.group_id), ApiRequest::LeaveGroup(r)),
        ApiRequest::SyncGroup(r) => one(group(&r.group_id), ApiRequest::SyncGroup(r)),
        ApiRequest::OffsetCommit(r) => one(group(&r.group_id), ApiRequest::OffsetCommit(r)),
        ApiRequest::OffsetDelete(r) => one(group(&r.group_id), ApiRequest::OffsetDelete(r)),
        ApiRequest::ConsumerGroupHeartbeat(r) => {
            one(group(&r.group_id), ApiRequest::ConsumerGroupHeartbeat(r))
        }
        ApiRequest::TxnOffsetCommit(r) => one(group(&r.group_id), ApiRequest::TxnOffsetCommit(r)),
        ApiRequest::OffsetFetch(mut r) => {
            let parts = split_items(take(&mut r.groups), |g| group(&g.group_id));
            let fill = |r: &mut OffsetFetchRequest, groups| r.groups = groups;
            assemble(r, parts, fill, ApiRequest::OffsetFetch)
        }
        ApiRequest::DescribeGroups(mut r) => {
            let parts = split_items(take(&mut r.groups), |g| group(g));
            let fill = |r: &mut DescribeGroupsRequest, groups| r.groups = groups;
            assemble(r, parts, fill, ApiRequest::DescribeGroups)
        }
        ApiRequest::DeleteGroups(mut r) => {
            let parts = split_items(take(&mut r.groups), |g| group(g));
            let fill = |r: &mut DeleteGroupsRequest, groups| r.groups = groups;
            assemble(r, parts, fill, ApiRequest::DeleteGroups)
        }
        ApiRequest::ConsumerGroupDescribe(mut r) => {
            let parts = split_items(take(&mut r.group_ids), |g| group(g));
            let fill = |r: &mut ConsumerGroupDescribeRequest, groups| r.group_ids = groups;
            assemble(r, parts, fill, ApiRequest::ConsumerGroupDescribe)
        }

        // By transactional id.
        ApiRequest::InitProducerId(r) => {
            let shard = r.transactional_id.as_deref().map_or(home, transaction);
            one(shard, ApiRequest::InitProducerId(r))
        }
        ApiRequest::AddPartitionsToTxn(r) => {
            // The domain type is the client shape: one transaction per request.
            one(
                transaction(&r.transactional_id),
                ApiRequest::AddPartitionsToTxn(r),
            )
        }
        ApiRequest::AddOffsetsToTxn(r) => one(
            transaction(&r.transactional_id),
            ApiRequest::AddOffsetsToTxn(r),
        ),
        ApiRequest::EndTxn(r) => one(transaction(&r.transactional_id), ApiRequest::EndTxn(r)),
        ApiRequest::DescribeTransactions(mut r) => {
            let parts = split_items(take(&mut r.transactional_ids), |id| transaction(id));
            let fill = |r: &mut DescribeTransactionsRequest, ids| r.transactional_ids = ids;
            assemble(r, parts, fill, ApiRequest::DescribeTransactions)
        }

        // To every shard.
        ApiRequest::ListGroups(r) => every(count, ApiRequest::ListGroups(r)),
        ApiRequest::ListTransactions(r) => every(count, ApiRequest::ListTransactions(r)),
        ApiRequest::DescribeLogDirs(r) => every(count, ApiRequest::DescribeLogDirs(r)),

        // Shard 0: the control shard answers for the broker as a whole. Listed one by one
        // so that a new API must be placed here on purpose.
        request @ (ApiRequest::Metadata(_)
        | ApiRequest::CreateTopics(_)
        | ApiRequest::DeleteTopics(_)
        | ApiRequest::DescribeConfigs(_)
        | ApiRequest::CreatePartitions(_)
        | ApiRequest::DescribeCluster(_)
        | ApiRequest::FindCoordinator(_)
        | ApiRequest::ElectLeaders(_)
        | ApiRequest::AlterPartitionReassignments(_)
        | ApiRequest::ListPartitionReassignments(_)
        | ApiRequest::IncrementalAlterConfigs(_)
        | ApiRequest::AlterConfigs(_)
        | ApiRequest::DescribeQuorum(_)
        | ApiRequest::AddRaftVoter(_)
        | ApiRequest::RemoveRaftVoter(_)
        | ApiRequest::SaslHandshake(_)
        | ApiRequest::SaslAuthenticate(_)
        | ApiRequest::DescribeUserScramCredentials(_)
        | ApiRequest::AlterUserScramCredentials(_)
        | ApiRequest::DescribeAcls(_)
        | ApiRequest::CreateAcls(_)
        | ApiRequest::DeleteAcls(_)
        | ApiRequest::UpdateFeatures(_)) => one(0, request),
    }
}

/// One answer from the answers of the parts of one request (the same variant, in part
/// order, as [`split`] returned the parts). With one part, returns it unchanged.
///
/// Per-topic lists are concatenated, a topic's entries from several parts merged into one
/// (by name or id, as the answer carries it; WriteTxnMarkers' markers by producer id);
/// per-group and per-transaction lists are concatenated; `throttle_time_ms` is the largest;
/// a top-level error is the first part's that is not NONE; Fetch's `session_id` is 0.
/// DescribeLogDirs merges the directories of the same path (topics merged by name, the
/// volume sizes not summed: the shards reporting one path share its volume).
///
/// Parts of an API that [`split`] routes to one shard never come in several; if they do,
/// the first is returned. The first is also returned, unmerged, when the parts are not
/// all the same variant: they cannot be merged, and the first is the lowest shard's.
///
/// # Panics
/// If `parts` is empty: a caller bug ([`split`] never returns zero parts), not input.
pub fn merge(parts: Vec<ApiResponse>) -> ApiResponse {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        panic!("merge of zero parts: split never returns zero parts");
    };
    let rest: Vec<ApiResponse> = parts.collect();
    if rest.is_empty() || !rest.iter().all(|p| discriminant(p) == discriminant(&first)) {
        return first;
    }
    macro_rules! all {
        ($variant:ident, $first:expr) => {
            std::iter::once($first)
                .chain(rest.into_iter().filter_map(|part| match part {
                    ApiResponse::$variant(part) => Some(part),
                    _ => None,
                }))
                .collect::<Vec<_>>()
        };
    }
    match first {
        ApiResponse::Produce(r) => ApiResponse::Produce(merge_produce(all!(Produce, r))),
        ApiResponse::Fetch(r) => ApiResponse::Fetch(merge_fetch(all!(Fetch, r))),
        ApiResponse::ListOffsets(r) => {
            ApiResponse::ListOffsets(merge_list_offsets(all!(ListOffsets, r)))
        }
        ApiResponse::OffsetForLeaderEpoch(r) => ApiResponse::OffsetForLeaderEpoch(
            merge_offset_for_leader_epoch(all!(OffsetForLeaderEpoch, r)),
        ),
        ApiResponse::DeleteRecords(r) => {
            ApiResponse::DeleteRecords(merge_delete_records(all!(DeleteRecords, r)))
        }
        ApiResponse::DescribeProducers(r) => {
            ApiResponse::DescribeProducers(merge_describe_producers(all!(DescribeProducers, r)))
        }
        ApiResponse::WriteTxnMarkers(r) => {
            ApiResponse::WriteTxnMarkers(merge_write_txn_markers(all!(WriteTxnMarkers, r)))
        }
        ApiResponse::OffsetFetch(r) => {
            let all = all!(OffsetFetch, r);
            ApiResponse::OffsetFetch(OffsetFetchResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                groups: all.into_iter().flat_map(|r| r.groups).collect(),
            })
        }
        ApiResponse::DescribeGroups(r) => {
            let all = all!(DescribeGroups, r);
            ApiResponse::DescribeGroups(DescribeGroupsResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                groups: all.into_iter().flat_map(|r| r.groups).collect(),
            })
        }
        ApiResponse::DeleteGroups(r) => {
            let all = all!(DeleteGroups, r);
            ApiResponse::DeleteGroups(DeleteGroupsResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                results: all.into_iter().flat_map(|r| r.results).collect(),
            })
        }
        ApiResponse::ConsumerGroupDescribe(r) => {
            let all = all!(ConsumerGroupDescribe, r);
            ApiResponse::ConsumerGroupDescribe(ConsumerGroupDescribeResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                groups: all.into_iter().flat_map(|r| r.groups).collect(),
            })
        }
        ApiResponse::DescribeTransactions(r) => {
            let all = all!(DescribeTransactions, r);
            ApiResponse::DescribeTransactions(DescribeTransactionsResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                transactions: all.into_iter().flat_map(|r| r.transactions).collect(),
            })
        }
        ApiResponse::ListGroups(r) => {
            let all = all!(ListGroups, r);
            ApiResponse::ListGroups(ListGroupsResponse {
                throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
                error: first_error(all.iter().map(|r| r.error)),
                groups: all.into_iter().flat_map(|r| r.groups).collect(),
            })
        }
        ApiResponse::ListTransactions(r) => {
            ApiResponse::ListTransactions(merge_list_transactions(all!(ListTransactions, r)))
        }
        ApiResponse::DescribeLogDirs(r) => {
            ApiResponse::DescribeLogDirs(merge_log_dirs(all!(DescribeLogDirs, r)))
        }
        // Routed to one shard: several parts are a caller's mistake; the first stands.
        other => other,
    }
}

/// True when a Fetch part's answer carries records (a partition with a non-empty read
/// plan, remote plan or bytes) or an error (top-level or a partition's): then the other
/// parts of the same fetch should answer at once rather than wait for their long poll, as
/// an unsplit fetch would have answered at once. False for any other variant.
pub fn fetch_part_is_final(response: &ApiResponse) -> bool {
    let ApiResponse::Fetch(fetch) = response else {
        return false;
    };
    fetch.error != ErrorCode::NONE
        || (fetch.topics.iter())
            .flat_map(|topic| &topic.partitions)
            .any(|p| p.error != ErrorCode::NONE || has_records(&p.records))
}

// ---------------------------------------------------------------------------------------
// Splitting

/// The one part of a request routed whole.
fn one(shard: u16, request: ApiRequest) -> Vec<(u16, ApiRequest)> {
    vec![(shard, request)]
}

/// A copy of `request` for each of `count` shards.
fn every(count: u16, request: ApiRequest) -> Vec<(u16, ApiRequest)> {
    (0..count).map(|shard| (shard, request.clone())).collect()
}

/// The shard of a partition of `topic` (by name or id); shard 0 when the placement does
/// not know it (shard 0 answers UNKNOWN_TOPIC_OR_PARTITION, or auto-creates).
fn place_ref(placement: &Placement, topic: &TopicRef, partition: i32) -> u16 {
    match topic {
        TopicRef::Name(name) => placement.by_name(name, partition),
        TopicRef::Id(id) => placement.by_id(*id, partition),
    }
    .unwrap_or(0)
}

/// [`place_ref`] for a topic named by name.
fn place_name(placement: &Placement, topic: &str, partition: i32) -> u16 {
    placement.by_name(topic, partition).unwrap_or(0)
}

/// `topics` divided by shard, each shard's entries in request order. A topic entry whose
/// partitions span shards becomes one entry per shard (a copy of the entry around that
/// shard's partitions, in request order); an entry without partitions goes to shard 0,
/// which answers it as an unsplit request would be answered.
fn split_topics<T: Clone, P>(
    topics: Vec<T>,
    partitions: fn(&mut T) -> &mut Vec<P>,
    shard: impl Fn(&T, &P) -> u16,
) -> BTreeMap<u16, Vec<T>> {
    let mut parts: BTreeMap<u16, Vec<T>> = BTreeMap::new();
    for mut topic in topics {
        let all = take(partitions(&mut topic));
        if all.is_empty() {
            parts.entry(0).or_default().push(topic);
            continue;
        }
        let mut by_shard: BTreeMap<u16, Vec<P>> = BTreeMap::new();
        for partition in all {
            by_shard
                .entry(shard(&topic, &partition))
                .or_default()
                .push(partition);
        }
        for (index, partitions_of_shard) in by_shard {
            // `topic`'s partitions were taken: the copy costs its name, not its data.
            let mut entry = topic.clone();
            *partitions(&mut entry) = partitions_of_shard;
            parts.entry(index).or_default().push(entry);
        }
    }
    parts
}

/// `items` (groups, transactional ids) divided by shard, each shard's in request order.
fn split_items<T>(items: Vec<T>, shard: impl Fn(&T) -> u16) -> BTreeMap<u16, Vec<T>> {
    let mut parts: BTreeMap<u16, Vec<T>> = BTreeMap::new();
    for item in items {
        parts.entry(shard(&item)).or_default().push(item);
    }
    parts
}

/// The parts of a request: `shell` (the request with its divided list taken out) around
/// each shard's share, filled in by `fill`. No shares (the request's list was empty): the
/// shell whole, to shard 0.
fn assemble<R: Clone, T>(
    shell: R,
    shares: BTreeMap<u16, Vec<T>>,
    fill: impl Fn(&mut R, Vec<T>),
    wrap: fn(R) -> ApiRequest,
) -> Vec<(u16, ApiRequest)> {
    if shares.is_empty() {
        return vec![(0, wrap(shell))];
    }
    (shares.into_iter())
        .map(|(shard, share)| {
            let mut part = shell.clone();
            fill(&mut part, share);
            (shard, wrap(part))
        })
        .collect()
}

fn split_produce(mut request: ProduceRequest, placement: &Placement) -> Vec<(u16, ApiRequest)> {
    let shares = split_topics(
        take(&mut request.topics),
        |t| &mut t.partitions,
        |t, p| place_ref(placement, &t.topic, p.partition),
    );
    assemble(
        request,
        shares,
        |r, topics| r.topics = topics,
        ApiRequest::Produce,
    )
}

/// Fetch: by partition, with `max_bytes` divided among the parts (rounded up, at least 1),
/// so the parts' answers together stay within what the client accepts: librdkafka refuses
/// an answer above `receive.message.max.bytes`, which it sizes from `fetch.max.bytes`.
fn split_fetch(mut request: FetchRequest, placement: &Placement) -> Vec<(u16, ApiRequest)> {
    let shares = split_topics(
        take(&mut request.topics),
        |t| &mut t.partitions,
        |t, p| place_ref(placement, &t.topic, p.partition),
    );
    let max_bytes = divide_max_bytes(request.max_bytes, shares.len());
    let fill = |r: &mut FetchRequest, topics| {
        r.topics = topics;
        r.max_bytes = max_bytes;
    };
    assemble(request, shares, fill, ApiRequest::Fetch)
}

/// `max_bytes` divided among `parts` parts: `ceil(max_bytes / parts)`, at least 1; the
/// whole with at most one part.
fn divide_max_bytes(max_bytes: i32, parts: usize) -> i32 {
    if parts <= 1 {
        return max_bytes;
    }
    // A non-positive bound has nothing to divide; 1 asks for the first batch, as 0 does.
    let Ok(max_bytes) = u64::try_from(max_bytes) else {
        return 1;
    };
    let parts = u64::try_from(parts).unwrap_or(u64::MAX);
    i32::try_from(max_bytes.div_ceil(parts).max(1)).unwrap_or(i32::MAX)
}

fn split_list_offsets(
    mut request: ListOffsetsRequest,
    placement: &Placement,
) -> Vec<(u16, ApiRequest)> {
    let shares = split_topics(
        take(&mut request.topics),
        |t| &mut t.partitions,
        |t, p| place_name(placement, &t.name, p.partition),
    );
    assemble(
        request,
        shares,
        |r, topics| r.topics = topics,
        ApiRequest::ListOffsets,
    )
}

fn split_offset_for_leader_epoch(
    mut request: OffsetForLeaderEpochRequest,
    placement: &Placement,
) -> Vec<(u16, ApiRequest)> {
    let shares = split_topics(
        take(&mut request.topics),
        |t| &mut t.partitions,
        |t, p| place_name(placement, &t.topic, p.partition),
    );
    let fill = |r: &mut OffsetForLeaderEpochRequest, topics| r.topics = topics;
    assemble(request, shares, fill, ApiRequest::OffsetForLeaderEpoch)
}

fn split_delete_records(
    mut request: DeleteRecordsRequest,
    placement: &Placement,
) -> Vec<(u16, ApiRequest)> {
    let shares = split_topics(
        take(&mut request.topics),
        |t| &mut t.partitions,
        |t, p| place_name(placement, &t.name, p.0),
    );
    let fill = |r: &mut DeleteRecordsRequest, topics| r.topics = topics;
    assemble(request, shares, fill, ApiRequest::DeleteRecords)
}

fn split_describe_producers(
    mut request: DescribeProducersRequest,
    placement: &Placement,
) -> Vec<(u16, ApiRequest)> {
    let shares = split_txn_topics(take(&mut request.topics), placement);
    let fill = |r: &mut DescribeProducersRequest, topics| r.topics = topics;
    assemble(request, shares, fill, ApiRequest::DescribeProducers)
}

/// WriteTxnMarkers: each marker by its partitions; a part carries, in request order, the
/// markers with partitions in its shard, each around those partitions only. A marker
/// without partitions goes to shard 0.
fn split_write_txn_markers(
    request: WriteTxnMarkersRequest,
    placement: &Placement,
) -> Vec<(u16, ApiRequest)> {
    let mut shares: BTreeMap<u16, Vec<_>> = BTreeMap::new();
    for mut marker in request.markers {
        let topics = split_txn_topics(take(&mut marker.topics), placement);
        if topics.is_empty() {
            shares.entry(0).or_default().push(marker);
            continue;
        }
        for (shard, topics) in topics {
            let mut part = marker.clone();
            part.topics = topics;
            shares.entry(shard).or_default().push(part);
        }
    }
    let shell = WriteTxnMarkersRequest {
        markers: Vec::new(),
    };
    let fill = |r: &mut WriteTxnMarkersRequest, markers| r.markers = markers;
    assemble(shell, shares, fill, ApiRequest::WriteTxnMarkers)
}

fn split_txn_topics(topics: Vec<TxnTopic>, placement: &Placement) -> BTreeMap<u16, Vec<TxnTopic>> {
    split_topics(
        topics,
        |t| &mut t.partitions,
        |t, p| place_name(placement, &t.name, *p),
    )
}

// ---------------------------------------------------------------------------------------
// Merging

/// The largest throttle of the parts (0 when none throttles).
fn throttle(times_ms: impl Iterator<Item = i32>) -> i32 {
    times_ms.max().unwrap_or(0)
}

/// The first error that is not NONE, else NONE.
fn first_error(mut errors: impl Iterator<Item = ErrorCode>) -> ErrorCode {
    (errors.find(|error| *error != ErrorCode::NONE)).unwrap_or(ErrorCode::NONE)
}

/// The topic entries of `lists` (one list per part, in part order) with the entries of the
/// same topic (`key`) merged into the first one's place, their partitions concatenated.
fn merge_topics<T, K: Ord, P>(
    lists: impl IntoIterator<Item = Vec<T>>,
    key: impl Fn(&T) -> K,
    partitions: fn(&mut T) -> &mut Vec<P>,
) -> Vec<T> {
    let mut merged: Vec<T> = Vec::new();
    let mut index: BTreeMap<K, usize> = BTreeMap::new();
    for topic in lists.into_iter().flatten() {
        let k = key(&topic);
        match index.get(&k).and_then(|i| merged.get_mut(*i)) {
            Some(into) => {
                let mut topic = topic;
                let more = take(partitions(&mut topic));
                partitions(into).extend(more);
            }
            None => {
                index.insert(k, merged.len());
                merged.push(topic);
            }
        }
    }
    merged
}

fn merge_produce(all: Vec<ProduceResponse>) -> ProduceResponse {
    ProduceResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.topic.clone(),
            |t| &mut t.partitions,
        ),
    }
}

fn merge_fetch(all: Vec<FetchResponse>) -> FetchResponse {
    FetchResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        error: first_error(all.iter().map(|r| r.error)),
        // Weir serves no fetch sessions.
        session_id: 0,
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.topic.clone(),
            |t| &mut t.partitions,
        ),
    }
}

fn merge_list_offsets(all: Vec<ListOffsetsResponse>) -> ListOffsetsResponse {
    ListOffsetsResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.name.clone(),
            |t| &mut t.partitions,
        ),
    }
}

fn merge_offset_for_leader_epoch(
    all: Vec<OffsetForLeaderEpochResponse>,
) -> OffsetForLeaderEpochResponse {
    OffsetForLeaderEpochResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.topic.clone(),
            |t| &mut t.partitions,
        ),
    }
}

fn merge_delete_records(all: Vec<DeleteRecordsResponse>) -> DeleteRecordsResponse {
    DeleteRecordsResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.name.clone(),
            |t| &mut t.partitions,
        ),
    }
}

fn merge_describe_producers(all: Vec<DescribeProducersResponse>) -> DescribeProducersResponse {
    DescribeProducersResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        topics: merge_topics(
            all.into_iter().map(|r| r.topics),
            |t| t.name.clone(),
            |t| &mut t.partitions,
        ),
    }
}

/// WriteTxnMarkers: the markers of the same producer id merged into one (the answer names
/// a marker only by its producer id, and Kafka's callers read it as a map by producer id),
/// their topics merged by name.
fn merge_write_txn_markers(all: Vec<WriteTxnMarkersResponse>) -> WriteTxnMarkersResponse {
    let mut markers = merge_topics(
        all.into_iter().map(|r| r.markers),
        |m| m.producer_id,
        |m| &mut m.topics,
    );
    for marker in &mut markers {
        marker.topics = merge_topics([take(&mut marker.topics)], name_of, |t| &mut t.partitions);
    }
    WriteTxnMarkersResponse { markers }
}

fn name_of(topic: &TxnTopicResult) -> String {
    topic.name.clone()
}

fn merge_list_transactions(all: Vec<ListTransactionsResponse>) -> ListTransactionsResponse {
    // Every shard checks the same filters: each unknown one is listed once.
    let mut unknown_state_filters: Vec<String> = Vec::new();
    for filter in all.iter().flat_map(|r| &r.unknown_state_filters) {
        if !unknown_state_filters.contains(filter) {
            unknown_state_filters.push(filter.clone());
        }
    }
    ListTransactionsResponse {
        throttle_time_ms: throttle(all.iter().map(|r| r.throttle_time_ms)),
        error: first_error(all.iter().map(|r| r.error)),
        unknown_state_filters,
        transactions: all.into_iter().flat_map(|r| r.transactions).collect(),
    }
}

/// DescribeLogDirs: the directories of the same path merged into one, its topics merged by
/// name (a partition lives in one shard, so each is listed once; in partition order) and
/// its error the first that is not NONE. A directory's `total_bytes` and `usable_bytes`
/// describe the volume holding it, which the shards reporting the same path share: they
/// are not summed, the first known value (not [`VOLUME_BYTES_UNKNOWN`]) is kept.
fn merge_log_dirs(all: Vec<DescribeLogDirsResponse>) -> DescribeLogDirsResponse {
    let throttle_time_ms = throttle(all.iter().map(|r| r.throttle_time_ms));
    let error = first_error(all.iter().map(|r| r.error));
    let mut results: Vec<LogDirResult> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for result in all.into_iter().flat_map(|r| r.results) {
        let Some(into) = index.get(&result.log_dir).and_then(|i| results.get_mut(*i)) else {
            index.insert(result.log_dir.clone(), results.len());
            results.push(result);
            continue;
        };
        if into.error == ErrorCode::NONE {
            into.error = result.error;
        }
        if into.total_bytes == VOLUME_BYTES_UNKNOWN {
            into.total_bytes = result.total_bytes;
        }
        if into.usable_bytes == VOLUME_BYTES_UNKNOWN {
            into.usable_bytes = result.usable_bytes;
        }
        into.topics = merge_topics(
            [take(&mut into.topics), result.topics],
            |t| t.name.clone(),
            |t| &mut t.partitions,
        );
    }
    // Each topic's partitions in partition order, as one shard lists them.
    for topic in results
        .iter_mut()
        .flat_map(|result| result.topics.iter_mut())
    {
        topic.partitions.sort_by_key(|p| p.partition);
    }
    DescribeLogDirsResponse {
        throttle_time_ms,
        error,
        results,
    }
}

/// True when a fetched partition's records are not empty.
fn has_records(records: &FetchRecords) -> bool {
    match records {
        FetchRecords::Empty => false,
        FetchRecords::Read(plan) => plan.end_offset > plan.start_offset,
        FetchRecords::Bytes(bytes) => !bytes.is_empty(),
        FetchRecords::Remote(plan) => plan.end_offset > plan.start_offset,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;
    use uuid::Uuid;
    use weir_core::rng::Rng;
    use weir_wire::domain::log_dirs::{
        DescribeLogDirsRequest, LogDirPartition, LogDirTopic, REMOTE_LOG_DIR,
    };
    use weir_wire::domain::txn::{
        EndTxnRequest, TxnPartitionResult, WritableTxnMarker, WriteTxnMarkersResult,
    };
    use weir_wire::domain::*;

    use super::*;

    const SHARDS: u16 = 3;
    const PARTITIONS: i32 = 12;
    const ALPHA: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
    const BETA: Uuid = Uuid::from_u128(0xbe7a);
    const UNKNOWN: Uuid = Uuid::from_u128(0xdead);

    /// Three shards; topics `alpha` and `beta` of 12 partitions, and the two coordinator
    /// topics of 50.
    fn placement() -> Placement {
        let mut placement = Placement {
            count: SHARDS,
            ..Placement::default()
        };
        let topics = [
            ("alpha", ALPHA, 12),
            ("beta", BETA, 12),
            ("__consumer_offsets", Uuid::from_u128(0xc0), 50),
            ("__transaction_state", Uuid::from_u128(0x75), 50),
        ];
        for (name, id, partitions) in topics {
            placement.names.insert(name.to_owned(), (id, partitions));
            placement.ids.insert(id, partitions);
        }
        placement
    }

    fn name(topic: &str) -> TopicRef {
        TopicRef::Name(topic.to_owned())
    }

    fn produce(topics: &[(TopicRef, Vec<i32>)]) -> ProduceRequest {
        ProduceRequest {
            transactional_id: Some("tx".into()),
            acks: Acks::Leader,
            timeout_ms: 1234,
            topics: (topics.iter())
                .map(|(topic, partitions)| ProduceTopic {
                    topic: topic.clone(),
                    partitions: (partitions.iter())
                        .map(|p| ProducePartition {
                            partition: *p,
                            records: Some(records_of(topic, *p)),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Bytes naming their topic and partition, to follow them through a split.
    fn records_of(topic: &TopicRef, partition: i32) -> Bytes {
        Bytes::from(format!("{topic:?}/{partition}"))
    }

    fn fetch(topics: &[(TopicRef, Vec<i32>)], max_bytes: i32) -> FetchRequest {
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 7,
            max_bytes,
            isolation_level: 1,
            session_id: 0,
            session_epoch: -1,
            topics: (topics.iter())
                .map(|(topic, partitions)| FetchTopic {
                    topic: topic.clone(),
                    partitions: (partitions.iter())
                        .map(|p| FetchPartition {
                            partition: *p,
                            current_leader_epoch: -1,
                            fetch_offset: 0,
                            log_start_offset: -1,
                            partition_max_bytes: 1 << 20,
                        })
                        .collect(),
                })
                .collect(),
            rack_id: String::new(),
        }
    }

    fn fetch_partition(
        partition: i32,
        error: ErrorCode,
        records: FetchRecords,
    ) -> FetchPartitionResponse {
        FetchPartitionResponse {
            partition,
            error,
            high_watermark: 10,
            last_stable_offset: 10,
            log_start_offset: 0,
            aborted_transactions: Vec::new(),
            preferred_read_replica: -1,
            records,
        }
    }

    /// The (topic, partition, records) of a Produce request, flattened in order.
    fn produce_flat(request: &ProduceRequest) -> Vec<(TopicRef, i32, Option<Bytes>)> {
        (request.topics.iter())
            .flat_map(|t| {
                (t.partitions.iter()).map(|p| (t.topic.clone(), p.partition, p.records.clone()))
            })
            .collect()
    }

    /// What the shard would answer to a Produce part: every partition, base offset 10 x its
    /// index, throttle 7 x the shard.
    fn answer_produce(shard: u16, request: &ApiRequest) -> ApiResponse {
        let ApiRequest::Produce(request) = request else {
            panic!("not Produce: {request:?}");
        };
        ApiResponse::Produce(ProduceResponse {
            throttle_time_ms: 7 * i32::from(shard),
            topics: (request.topics.iter())
                .map(|t| ProduceTopicResponse {
                    topic: t.topic.clone(),
                    partitions: (t.partitions.iter())
                        .map(|p| ProducePartitionResponse {
                            partition: p.partition,
                            error: ErrorCode::NONE,
                            base_offset: 10 * i64::from(p.partition),
                            log_append_time_ms: -1,
                            log_start_offset: 0,
                            error_message: None,
                            record_errors: Vec::new(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    fn assert_sorted_distinct(parts: &[(u16, ApiRequest)]) {
        assert!(!parts.is_empty());
        let shards: Vec<u16> = parts.iter().map(|(s, _)| *s).collect();
        assert!(shards.windows(2).all(|w| w[0] < w[1]), "{shards:?}");
        assert!(shards.iter().all(|s| *s < SHARDS), "{shards:?}");
    }

    // Goal: a Produce of 2 topics x 12 partitions (one by name, one by id) reaches every
    // shard, each part holding exactly its shard's partitions, each once, in request order,
    // one entry per topic, with their own records and the request's other fields.
    // Method: split; check every part against `Placement::by_name`/`by_id`, and that each
    // part's flattened partitions are the request's filtered by the part's shard.
    #[test]
    fn produce_splits_by_partition_placement() {
        let placement = placement();
        let all: Vec<i32> = (0..PARTITIONS).collect();
        let request = produce(&[(name("alpha"), all.clone()), (TopicRef::Id(BETA), all)]);
        let parts = split(ApiRequest::Produce(request.clone()), 0, &placement);
        assert_eq!(
            parts.len(),
            usize::from(SHARDS),
            "12 partitions span every shard"
        );
        assert_sorted_distinct(&parts);
        let mut seen = Vec::new();
        for (shard, part) in &parts {
            let ApiRequest::Produce(part) = part else {
                panic!("not Produce: {part:?}");
            };
            assert_eq!(part.transactional_id, request.transactional_id);
            assert_eq!(
                (part.acks, part.timeout_ms),
                (request.acks, request.timeout_ms)
            );
            let topics: BTreeSet<&TopicRef> = part.topics.iter().map(|t| &t.topic).collect();
            assert_eq!(topics.len(), part.topics.len(), "one entry per topic");
            let expected: Vec<_> = (produce_flat(&request).into_iter())
                .filter(|(t, p, _)| place_ref(&placement, t, *p) == *shard)
                .collect();
            assert_eq!(produce_flat(part), expected, "shard {shard}");
            for (topic, partition, records) in produce_flat(part) {
                let placed = match &topic {
                    TopicRef::Name(n) => placement.by_name(n, partition),
                    TopicRef::Id(id) => placement.by_id(*id, partition),
                };
                assert_eq!(placed, Some(*shard));
                assert_eq!(records, Some(records_of(&topic, partition)));
                seen.push((topic, partition));
            }
        }
        seen.sort();
        let mut wanted: Vec<_> = produce_flat(&request)
            .into_iter()
            .map(|(t, p, _)| (t, p))
            .collect();
        wanted.sort();
        assert_eq!(seen, wanted, "every partition exactly once");
    }

    // Goal: the parts' answers merge into one answer with one entry per topic holding each
    // partition's own answer once, and the largest throttle.
    // Method: split a Produce of 2 x 12 partitions, answer each part as its shard would
    // (base offset from the partition index), merge.
    #[test]
    fn produce_answers_merge_one_entry_per_topic() {
        let placement = placement();
        let all: Vec<i32> = (0..PARTITIONS).collect();
        let request = produce(&[(name("alpha"), all.clone()), (TopicRef::Id(BETA), all)]);
        let parts = split(ApiRequest::Produce(request), 0, &placement);
        let answers: Vec<ApiResponse> =
            (parts.iter()).map(|(s, r)| answer_produce(*s, r)).collect();
        let ApiResponse::Produce(merged) = merge(answers) else {
            panic!("not Produce");
        };
        assert_eq!(merged.throttle_time_ms, 14);
        let topics: Vec<&TopicRef> = merged.topics.iter().map(|t| &t.topic).collect();
        assert_eq!(topics, [&name("alpha"), &TopicRef::Id(BETA)]);
        for topic in &merged.topics {
            let mut partitions: Vec<(i32, i64)> = (topic.partitions.iter())
                .map(|p| (p.partition, p.base_offset))
                .collect();
            partitions.sort();
            let expected: Vec<(i32, i64)> =
                (0..PARTITIONS).map(|p| (p, 10 * i64::from(p))).collect();
            assert_eq!(partitions, expected, "{:?}", topic.topic);
        }
    }

    // Goal: for any Produce (known and unknown topics, by name and id, partitions out of
    // range, repeated partitions and topics, topics without partitions), split places each
    // partition in its shard (unknown: shard 0) exactly once in request order, and merge
    // of the echoed answers returns every partition once under one entry per topic.
    // Method: 500 random requests from a seeded `Rng`; the same checks on each.
    #[test]
    fn random_produces_split_and_merge_faithfully() {
        let placement = placement();
        let pool = [
            name("alpha"),
            TopicRef::Id(ALPHA),
            name("beta"),
            TopicRef::Id(BETA),
            name("nope"),
            TopicRef::Id(UNKNOWN),
        ];
        let mut rng = Rng::new(0x5eed);
        for round in 0..500 {
            let topics: Vec<(TopicRef, Vec<i32>)> = (0..rng.between(0, 5))
                .map(|_| {
                    let topic = pool[rng.range(0, pool.len() as u64) as usize].clone();
                    let partitions = (0..rng.between(0, 20))
                        .map(|_| rng.between(0, 15) as i32 - 2)
                        .collect();
                    (topic, partitions)
                })
                .collect();
            let request = produce(&topics);
            let parts = split(ApiRequest::Produce(request.clone()), 1, &placement);
            assert_sorted_distinct(&parts);
            let mut entries = 0;
            for (shard, part) in &parts {
                let ApiRequest::Produce(part) = part else {
                    panic!("not Produce");
                };
                let expected: Vec<_> = (produce_flat(&request).into_iter())
                    .filter(|(t, p, _)| place_ref(&placement, t, *p) == *shard)
                    .collect();
                assert_eq!(produce_flat(part), expected, "round {round} shard {shard}");
                entries += part.topics.len();
            }
            // An entry is split at most over every shard; one without partitions stays.
            assert!(entries >= request.topics.len(), "round {round}");
            let answers: Vec<ApiResponse> =
                (parts.iter()).map(|(s, r)| answer_produce(*s, r)).collect();
            let ApiResponse::Produce(merged) = merge(answers) else {
                panic!("not Produce");
            };
            let mut got: Vec<(TopicRef, i32)> = (merged.topics.iter())
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), p.partition)))
                .collect();
            let mut wanted: Vec<(TopicRef, i32)> = (produce_flat(&request).into_iter())
                .map(|(t, p, _)| (t, p))
                .collect();
            got.sort();
            wanted.sort();
            assert_eq!(got, wanted, "round {round}");
            let refs: BTreeSet<&TopicRef> = merged.topics.iter().map(|t| &t.topic).collect();
            if parts.len() > 1 {
                // One part is returned as answered, a topic repeated in the request too.
                assert_eq!(
                    refs.len(),
                    merged.topics.len(),
                    "round {round}: one entry per topic"
                );
            }
            let asked: BTreeSet<&TopicRef> = request.topics.iter().map(|t| &t.topic).collect();
            assert_eq!(refs, asked, "round {round}: every topic answered");
        }
    }

    // Goal: a split Fetch divides `max_bytes` among its parts (rounded up, at least 1) and
    // keeps the other fields; a Fetch whose partitions all live in one shard keeps it whole.
    // Method: alpha's 12 partitions (3 parts) at several bounds; then only shard 1's.
    #[test]
    fn fetch_divides_max_bytes_among_parts() {
        let placement = placement();
        let all: Vec<i32> = (0..PARTITIONS).collect();
        for (max_bytes, share) in [
            (1000, 334),
            (999, 333),
            (1, 1),
            (0, 1),
            (i32::MAX, 715_827_883),
        ] {
            let request = fetch(&[(name("alpha"), all.clone())], max_bytes);
            let parts = split(ApiRequest::Fetch(request.clone()), 0, &placement);
            assert_eq!(parts.len(), 3);
            assert_sorted_distinct(&parts);
            for (_, part) in &parts {
                let ApiRequest::Fetch(part) = part else {
                    panic!("not Fetch");
                };
                assert_eq!(part.max_bytes, share, "max_bytes {max_bytes}");
                assert_eq!((part.min_bytes, part.max_wait_ms), (7, 500));
                assert_eq!((part.isolation_level, part.session_epoch), (1, -1));
            }
        }
        let one_shard: Vec<i32> = (0..PARTITIONS)
            .filter(|p| placement.by_name("alpha", *p) == Some(1))
            .collect();
        assert!(!one_shard.is_empty());
        let request = fetch(&[(name("alpha"), one_shard)], 1000);
        let parts = split(ApiRequest::Fetch(request.clone()), 0, &placement);
        assert_eq!(parts, vec![(1, ApiRequest::Fetch(request))]);
    }

    // Goal: a Fetch part is final exactly when it carries records or an error; merged
    // Fetch answers keep each partition once, the first top-level error and no session.
    // Method: fabricated Fetch answers, one property changed at a time.
    #[test]
    fn fetch_parts_final_and_merged() {
        let answer = |error, partitions| {
            ApiResponse::Fetch(FetchResponse {
                throttle_time_ms: 0,
                error,
                session_id: 9,
                topics: vec![FetchTopicResponse {
                    topic: name("alpha"),
                    partitions,
                }],
            })
        };
        let plan = |start, end| {
            FetchRecords::Read(ReadPlan {
                partition_key: 1,
                start_offset: start,
                end_offset: end,
                max_bytes: 100,
            })
        };
        let none = ErrorCode::NONE;
        let empty = answer(none, vec![fetch_partition(0, none, FetchRecords::Empty)]);
        assert!(!fetch_part_is_final(&empty));
        assert!(!fetch_part_is_final(&answer(
            none,
            vec![fetch_partition(0, none, plan(5, 5))]
        )));
        assert!(fetch_part_is_final(&answer(
            none,
            vec![fetch_partition(0, none, plan(5, 9))]
        )));
        let bytes = FetchRecords::Bytes(Bytes::from_static(b"batch"));
        assert!(fetch_part_is_final(&answer(
            none,
            vec![fetch_partition(0, none, bytes)]
        )));
        let empty_bytes = FetchRecords::Bytes(Bytes::new());
        assert!(!fetch_part_is_final(&answer(
            none,
            vec![fetch_partition(0, none, empty_bytes)]
        )));
        let failed = fetch_partition(0, ErrorCode::OFFSET_OUT_OF_RANGE, FetchRecords::Empty);
        assert!(fetch_part_is_final(&answer(none, vec![failed])));
        assert!(fetch_part_is_final(&answer(
            ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
            vec![]
        )));
        assert!(!fetch_part_is_final(&ApiResponse::Metadata(
            MetadataResponse::default()
        )));

        let parts = vec![
            answer(none, vec![fetch_partition(0, none, FetchRecords::Empty)]),
            answer(
                ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
                vec![fetch_partition(1, none, plan(0, 3))],
            ),
            answer(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                vec![fetch_partition(2, none, FetchRecords::Empty)],
            ),
        ];
        let ApiResponse::Fetch(merged) = merge(parts) else {
            panic!("not Fetch");
        };
        assert_eq!(merged.session_id, 0);
        assert_eq!(merged.error, ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
        assert_eq!(merged.topics.len(), 1);
        let partitions: Vec<i32> = merged.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(partitions, [0, 1, 2]);
        assert_eq!(merged.topics[0].partitions[1].records, plan(0, 3));
    }

    // Goal: the other partition-scoped APIs (ListOffsets, OffsetForLeaderEpoch,
    // DescribeProducers, WriteTxnMarkers) split by their own partition fields, and
    // WriteTxnMarkers' answers merge one marker per producer id.
    // Method: each over alpha's and beta's partitions; every part's partitions against the
    // placement, every partition once; answers echoed and merged.
    #[test]
    fn other_partition_apis_split_by_placement() {
        let placement = placement();
        let all: Vec<i32> = (0..PARTITIONS).collect();
        let check = |parts: &[(u16, ApiRequest)],
                     flat: &dyn Fn(&ApiRequest) -> Vec<(String, i32)>| {
            assert_sorted_distinct(parts);
            assert_eq!(parts.len(), 3);
            let mut seen = Vec::new();
            for (shard, part) in parts {
                for (topic, partition) in flat(part) {
                    assert_eq!(placement.by_name(&topic, partition), Some(*shard));
                    seen.push((topic, partition));
                }
            }
            seen.sort();
            let mut wanted: Vec<(String, i32)> = ["alpha", "beta"]
                .iter()
                .flat_map(|t| (0..PARTITIONS).map(move |p| (t.to_string(), p)))
                .collect();
            wanted.sort();
            assert_eq!(seen, wanted);
        };

        let list = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: ["alpha", "beta"]
                .iter()
                .map(|t| ListOffsetsTopic {
                    name: t.to_string(),
                    partitions: (all.iter())
                        .map(|p| ListOffsetsPartition {
                            partition: *p,
                            current_leader_epoch: -1,
                            timestamp: LATEST_TIMESTAMP,
                        })
                        .collect(),
                })
                .collect(),
        };
        let parts = split(ApiRequest::ListOffsets(list), 0, &placement);
        check(&parts, &|r| match r {
            ApiRequest::ListOffsets(r) => (r.topics.iter())
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
                .collect(),
            _ => panic!("not ListOffsets"),
        });

        use weir_wire::domain::cluster::{OffsetForLeaderPartition, OffsetForLeaderTopic};
        let epochs = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: ["alpha", "beta"]
                .iter()
                .map(|t| OffsetForLeaderTopic {
                    topic: t.to_string(),
                    partitions: (all.iter())
                        .map(|p| OffsetForLeaderPartition {
                            partition: *p,
                            current_leader_epoch: -1,
                            leader_epoch: 0,
                        })
                        .collect(),
                })
                .collect(),
        };
        let parts = split(ApiRequest::OffsetForLeaderEpoch(epochs), 0, &placement);
        check(&parts, &|r| match r {
            ApiRequest::OffsetForLeaderEpoch(r) => (r.topics.iter())
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), p.partition)))
                .collect(),
            _ => panic!("not OffsetForLeaderEpoch"),
        });

        let deletions = DeleteRecordsRequest {
            topics: ["alpha", "beta"]
                .iter()
                .map(|t| DeleteRecordsTopic {
                    name: t.to_string(),
                    partitions: (all.iter()).map(|p| (*p, -1)).collect(),
                })
                .collect(),
            timeout_ms: 1_000,
        };
        let parts = split(ApiRequest::DeleteRecords(deletions), 0, &placement);
        check(&parts, &|r| match r {
            ApiRequest::DeleteRecords(r) => (r.topics.iter())
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.0)))
                .collect(),
            _ => panic!("not DeleteRecords"),
        });

        let txn_topics = |names: &[&str]| -> Vec<TxnTopic> {
            (names.iter())
                .map(|t| TxnTopic {
                    name: t.to_string(),
                    partitions: all.clone(),
                })
                .collect()
        };
        let txn_flat = |topics: &[TxnTopic]| -> Vec<(String, i32)> {
            (topics.iter())
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
                .collect()
        };
        let producers = DescribeProducersRequest {
            topics: txn_topics(&["alpha", "beta"]),
        };
        let parts = split(ApiRequest::DescribeProducers(producers), 0, &placement);
        check(&parts, &|r| match r {
            ApiRequest::DescribeProducers(r) => txn_flat(&r.topics),
            _ => panic!("not DescribeProducers"),
        });

        let marker = |producer_id, names: &[&str]| WritableTxnMarker {
            producer_id,
            producer_epoch: 0,
            committed: true,
            topics: txn_topics(names),
            coordinator_epoch: 3,
        };
        let markers = WriteTxnMarkersRequest {
            markers: vec![marker(1, &["alpha"]), marker(2, &["beta"])],
        };
        let parts = split(ApiRequest::WriteTxnMarkers(markers), 0, &placement);
        check(&parts, &|r| match r {
            ApiRequest::WriteTxnMarkers(r) => {
                r.markers.iter().flat_map(|m| txn_flat(&m.topics)).collect()
            }
            _ => panic!("not WriteTxnMarkers"),
        });
        let answers: Vec<ApiResponse> = (parts.iter())
            .map(|(_, r)| {
                let ApiRequest::WriteTxnMarkers(r) = r else {
                    panic!("not WriteTxnMarkers");
                };
                let markers = (r.markers.iter())
                    .map(|m| {
                        assert_eq!(m.coordinator_epoch, 3, "the marker's fields are kept");
                        WriteTxnMarkersResult {
                            producer_id: m.producer_id,
                            topics: (m.topics.iter())
                                .map(|t| TxnTopicResult {
                                    name: t.name.clone(),
                                    partitions: (t.partitions.iter())
                                        .map(|p| TxnPartitionResult {
                                            partition: *p,
                                            error: ErrorCode::NONE,
                                        })
                                        .collect(),
                                })
                                .collect(),
                        }
                    })
                    .collect();
                ApiResponse::WriteTxnMarkers(WriteTxnMarkersResponse { markers })
            })
            .collect();
        let ApiResponse::WriteTxnMarkers(merged) = merge(answers) else {
            panic!("not WriteTxnMarkers");
        };
        let ids: Vec<i64> = merged.markers.iter().map(|m| m.producer_id).collect();
        assert_eq!(ids, [1, 2]);
        for (marker, topic) in merged.markers.iter().zip(["alpha", "beta"]) {
            assert_eq!(marker.topics.len(), 1, "one entry per topic");
            assert_eq!(marker.topics[0].name, topic);
            let mut partitions: Vec<i32> = marker.topics[0]
                .partitions
                .iter()
                .map(|p| p.partition)
                .collect();
            partitions.sort();
            assert_eq!(partitions, all);
        }
    }

    // Goal: a partition the placement does not know (unknown topic by name or id, index
    // out of range) goes to shard 0, which answers it or auto-creates the topic.
    // Method: a Produce of only such partitions is one part for shard 0, unchanged; mixed
    // with a known partition in shard 2, the unknown ones still go to shard 0.
    #[test]
    fn unknown_partitions_go_to_shard_zero() {
        let placement = placement();
        let request = produce(&[
            (name("nope"), vec![0, 1]),
            (name("alpha"), vec![99, -1]),
            (TopicRef::Id(UNKNOWN), vec![3]),
        ]);
        let parts = split(ApiRequest::Produce(request.clone()), 2, &placement);
        assert_eq!(parts, vec![(0, ApiRequest::Produce(request))]);

        let in_two = (0..PARTITIONS).find(|p| placement.by_name("alpha", *p) == Some(2));
        let in_two = in_two.expect("12 partitions reach shard 2");
        let request = produce(&[(name("alpha"), vec![in_two, 99]), (name("nope"), vec![0])]);
        let parts = split(ApiRequest::Produce(request), 2, &placement);
        let shards: Vec<u16> = parts.iter().map(|(s, _)| *s).collect();
        assert_eq!(shards, [0, 2]);
        let ApiRequest::Produce(zero) = &parts[0].1 else {
            panic!("not Produce");
        };
        let flat: Vec<(TopicRef, i32)> = produce_flat(zero)
            .into_iter()
            .map(|(t, p, _)| (t, p))
            .collect();
        assert_eq!(flat, [(name("alpha"), 99), (name("nope"), 0)]);
    }

    // Goal: with one shard (or the count 0, taken as 1) the request comes back untouched,
    // whatever the API and home.
    // Method: a Produce and a ListGroups through a placement of count 1 and 0.
    #[test]
    fn one_shard_returns_the_request_untouched() {
        for count in [0, 1] {
            let placement = Placement {
                count,
                ..placement()
            };
            let all: Vec<i32> = (0..PARTITIONS).collect();
            let request = ApiRequest::Produce(produce(&[(name("alpha"), all)]));
            assert_eq!(split(request.clone(), 5, &placement), vec![(0, request)]);
            let request = ApiRequest::ListGroups(ListGroupsRequest::default());
            assert_eq!(split(request.clone(), 0, &placement), vec![(0, request)]);
        }
    }

    // Goal: group APIs go to the shard of the group's `__consumer_offsets` partition (by
    // the group id, also for TxnOffsetCommit), to shard 0 before that topic exists; a
    // multi-group OffsetFetch splits by group and its answers concatenate.
    // Method: 60 group ids over Heartbeat, OffsetDelete, TxnOffsetCommit and OffsetFetch
    // against `Placement::coordinator`; every shard must be reached.
    #[test]
    fn group_apis_route_to_the_coordinator_shard() {
        let placement = placement();
        let groups: Vec<String> = (0..60).map(|i| format!("group-{i}")).collect();
        let mut reached = BTreeSet::new();
        for group in &groups {
            let shard = placement
                .coordinator(group, false)
                .expect("offsets topic exists");
            reached.insert(shard);
            let heartbeat = ApiRequest::Heartbeat(HeartbeatRequest {
                group_id: group.clone(),
                generation_id: 1,
                member_id: "m".into(),
                group_instance_id: None,
            });
            assert_eq!(
                split(heartbeat.clone(), 0, &placement),
                vec![(shard, heartbeat)]
            );
            let delete = ApiRequest::OffsetDelete(OffsetDeleteRequest {
                group_id: group.clone(),
                topics: vec![("alpha".into(), vec![0, 1, 2])],
            });
            assert_eq!(split(delete.clone(), 0, &placement), vec![(shard, delete)]);
            let commit = ApiRequest::TxnOffsetCommit(txn::TxnOffsetCommitRequest {
                transactional_id: format!("not-{group}"),
                group_id: group.clone(),
                producer_id: 1,
                producer_epoch: 0,
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                topics: Vec::new(),
            });
            assert_eq!(split(commit.clone(), 0, &placement), vec![(shard, commit)]);
        }
        assert_eq!(reached.len(), usize::from(SHARDS), "{reached:?}");

        let request = OffsetFetchRequest {
            groups: (groups.iter())
                .map(|g| OffsetFetchGroup {
                    group_id: g.clone(),
                    topics: None,
                })
                .collect(),
            require_stable: true,
        };
        let parts = split(ApiRequest::OffsetFetch(request), 0, &placement);
        assert_eq!(parts.len(), 3);
        assert_sorted_distinct(&parts);
        let mut answers = Vec::new();
        for (shard, part) in &parts {
            let ApiRequest::OffsetFetch(part) = part else {
                panic!("not OffsetFetch");
            };
            assert!(part.require_stable);
            for group in &part.groups {
                assert_eq!(placement.coordinator(&group.group_id, false), Some(*shard));
            }
            answers.push(ApiResponse::OffsetFetch(OffsetFetchResponse {
                throttle_time_ms: i32::from(*shard),
                groups: (part.groups.iter())
                    .map(|g| OffsetFetchGroupResponse {
                        group_id: g.group_id.clone(),
                        topics: Vec::new(),
                        error: ErrorCode::NONE,
                    })
                    .collect(),
            }));
        }
        let ApiResponse::OffsetFetch(merged) = merge(answers) else {
            panic!("not OffsetFetch");
        };
        assert_eq!(merged.throttle_time_ms, 2);
        let mut answered: Vec<String> = merged.groups.into_iter().map(|g| g.group_id).collect();
        answered.sort();
        let mut asked = groups.clone();
        asked.sort();
        assert_eq!(answered, asked, "every group once");

        let mut bare = placement.clone();
        bare.names.remove("__consumer_offsets");
        let heartbeat = ApiRequest::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            group_instance_id: None,
        });
        assert_eq!(split(heartbeat.clone(), 2, &bare), vec![(0, heartbeat)]);
    }

    // Goal: transaction APIs go to the shard of the id's `__transaction_state` partition;
    // InitProducerId without an id to the home shard (shard 0 for a home out of range);
    // DescribeTransactions splits by id.
    // Method: 60 transactional ids against `Placement::coordinator(id, true)`.
    #[test]
    fn transaction_apis_route_to_the_coordinator_shard() {
        let placement = placement();
        let ids: Vec<String> = (0..60).map(|i| format!("txn-{i}")).collect();
        let mut reached = BTreeSet::new();
        for id in &ids {
            let shard = placement.coordinator(id, true).expect("state topic exists");
            reached.insert(shard);
            let init = ApiRequest::InitProducerId(InitProducerIdRequest {
                transactional_id: Some(id.clone()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            });
            assert_eq!(split(init.clone(), 0, &placement), vec![(shard, init)]);
            let end = ApiRequest::EndTxn(EndTxnRequest {
                transactional_id: id.clone(),
                producer_id: 1,
                producer_epoch: 0,
                committed: true,
            });
            assert_eq!(split(end.clone(), 0, &placement), vec![(shard, end)]);
        }
        assert_eq!(reached.len(), usize::from(SHARDS), "{reached:?}");

        let idempotent = ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        });
        assert_eq!(
            split(idempotent.clone(), 2, &placement),
            vec![(2, idempotent.clone())]
        );
        assert_eq!(
            split(idempotent.clone(), 9, &placement),
            vec![(0, idempotent)]
        );

        let describe = DescribeTransactionsRequest {
            transactional_ids: ids.clone(),
        };
        let parts = split(ApiRequest::DescribeTransactions(describe), 0, &placement);
        assert_eq!(parts.len(), 3);
        let mut seen = Vec::new();
        for (shard, part) in &parts {
            let ApiRequest::DescribeTransactions(part) = part else {
                panic!("not DescribeTransactions");
            };
            for id in &part.transactional_ids {
                assert_eq!(placement.coordinator(id, true), Some(*shard));
                seen.push(id.clone());
            }
        }
        seen.sort();
        let mut asked = ids;
        asked.sort();
        assert_eq!(seen, asked);
    }

    // Goal: ListGroups goes to every shard and the answers concatenate, with the largest
    // throttle and the first error that is not NONE.
    // Method: split, answer each part with one group named after its shard, merge.
    #[test]
    fn list_groups_goes_to_every_shard_and_concatenates() {
        let placement = placement();
        let request = ApiRequest::ListGroups(ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            types_filter: Vec::new(),
        });
        let parts = split(request.clone(), 1, &placement);
        let expected: Vec<(u16, ApiRequest)> = (0..SHARDS).map(|s| (s, request.clone())).collect();
        assert_eq!(parts, expected);
        let answers: Vec<ApiResponse> = (parts.iter())
            .map(|(shard, _)| {
                ApiResponse::ListGroups(ListGroupsResponse {
                    throttle_time_ms: 10 - i32::from(*shard),
                    error: if *shard == 1 {
                        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                    } else {
                        ErrorCode::NONE
                    },
                    groups: vec![ListedGroup {
                        group_id: format!("group-of-{shard}"),
                        protocol_type: "consumer".into(),
                        group_state: "Stable".into(),
                        group_type: "classic".into(),
                    }],
                })
            })
            .collect();
        let ApiResponse::ListGroups(merged) = merge(answers) else {
            panic!("not ListGroups");
        };
        assert_eq!(merged.throttle_time_ms, 10);
        assert_eq!(merged.error, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        let ids: Vec<&str> = merged.groups.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, ["group-of-0", "group-of-1", "group-of-2"]);
    }

    // Goal: DescribeLogDirs answers from every shard merge into one directory per path,
    // each partition once under one entry per topic; volume sizes are the volume's, not
    // summed.
    // Method: three fabricated answers, each with the local directory (a shard's own
    // partitions of alpha) and the remote one.
    #[test]
    fn log_dirs_merge_by_path() {
        let placement = placement();
        let request = ApiRequest::DescribeLogDirs(DescribeLogDirsRequest { topics: None });
        let parts = split(request, 0, &placement);
        assert_eq!(parts.len(), 3);
        let dir = |path: &str, shard: u16, total_bytes| LogDirResult {
            error: ErrorCode::NONE,
            log_dir: path.into(),
            topics: vec![LogDirTopic {
                name: "alpha".into(),
                partitions: (0..PARTITIONS)
                    .filter(|p| placement.by_name("alpha", *p) == Some(shard))
                    .map(|partition| LogDirPartition {
                        partition,
                        partition_size: 100,
                        offset_lag: 0,
                        is_future_key: false,
                    })
                    .collect(),
            }],
            total_bytes,
            usable_bytes: VOLUME_BYTES_UNKNOWN,
        };
        let answers: Vec<ApiResponse> = (parts.iter())
            .map(|(shard, _)| {
                let total = if *shard == 1 {
                    5000
                } else {
                    VOLUME_BYTES_UNKNOWN
                };
                ApiResponse::DescribeLogDirs(DescribeLogDirsResponse {
                    throttle_time_ms: 0,
                    error: ErrorCode::NONE,
                    results: vec![dir("/data", *shard, total), dir(REMOTE_LOG_DIR, *shard, -1)],
                })
            })
            .collect();
        let ApiResponse::DescribeLogDirs(merged) = merge(answers) else {
            panic!("not DescribeLogDirs");
        };
        let paths: Vec<&str> = merged.results.iter().map(|r| r.log_dir.as_str()).collect();
        assert_eq!(paths, ["/data", REMOTE_LOG_DIR]);
        assert_eq!(merged.results[0].total_bytes, 5000);
        for result in &merged.results {
            assert_eq!(result.topics.len(), 1, "{}", result.log_dir);
            let mut partitions: Vec<i32> = result.topics[0]
                .partitions
                .iter()
                .map(|p| p.partition)
                .collect();
            partitions.sort();
            assert_eq!(partitions, (0..PARTITIONS).collect::<Vec<_>>());
        }
    }

    // Goal: everything answered for the broker as a whole goes to shard 0 alone, whatever
    // the home shard; merge of one part is that part, and of parts it cannot merge (a
    // single-shard API's, or mismatched variants) the first.
    // Method: Metadata split with home 2; merges of fabricated answers.
    #[test]
    fn broker_wide_apis_go_to_shard_zero_and_merge_keeps_the_first() {
        let placement = placement();
        let request = ApiRequest::Metadata(MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        assert_eq!(split(request.clone(), 2, &placement), vec![(0, request)]);
        let first = ApiResponse::Metadata(MetadataResponse {
            controller_id: 1,
            ..MetadataResponse::default()
        });
        let second = ApiResponse::Metadata(MetadataResponse {
            controller_id: 2,
            ..MetadataResponse::default()
        });
        assert_eq!(merge(vec![first.clone()]), first);
        assert_eq!(merge(vec![first.clone(), second]), first);
        let produce = ApiResponse::Produce(ProduceResponse::default());
        assert_eq!(merge(vec![produce.clone(), first]), produce);
    }
}
