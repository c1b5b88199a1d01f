//! Kafka's per-API authorization table, applied in `Node::dispatch_request` before a
//! request reaches its handler (docs/security.md lists the table).
//!
//! Two shapes:
//! - whole-request checks (a group, a transactional id, the cluster): one failing check
//!   answers the request in its error form (`errors::error_response`) with Kafka's
//!   `*_AUTHORIZATION_FAILED` code, and the handler never runs;
//! - per-item checks (topics of Produce, Fetch, ListOffsets, Metadata, CreateTopics,
//!   DeleteTopics, CreatePartitions, OffsetCommit, TxnOffsetCommit, OffsetDelete,
//!   OffsetForLeaderEpoch, DescribeProducers and DeleteRecords; groups of DescribeGroups
//!   and DeleteGroups; resources of DescribeConfigs, AlterConfigs and
//!   IncrementalAlterConfigs; groups and their topics of OffsetFetch): the denied items are
//!   taken out of the request, the handler serves the rest, and the denied items' error
//!   answers (built by `errors::error_response` on a request of only those items) are
//!   merged into its answer in `Node::respond` ([`Node::merge_denied`]). When every item
//!   is denied the error form answers at once. AddPartitionsToTxn, as in Kafka, adds
//!   nothing when a topic is denied: the denied topics answer TOPIC_AUTHORIZATION_FAILED,
//!   the others OPERATION_NOT_ATTEMPTED.
//!
//! Listings filter instead: Metadata for all topics hides topics without DESCRIBE,
//! ListGroups without DESCRIBE on the cluster shows only groups with DESCRIBE, and
//! ListTransactions only transactional ids with DESCRIBE.
//!
//! A topic that does not exist is checked like one that does (its name is the resource),
//! so an unauthorized principal learns nothing of existence (TOPIC_AUTHORIZATION_FAILED).
//! OffsetFetch for all of a group's topics leaves out the topics without DESCRIBE, as
//! Kafka does. ConsumerGroupHeartbeat is refused whole (TOPIC_AUTHORIZATION_FAILED) when a
//! subscribed topic may not be described, as Kafka refuses it.

use weir_wire::domain::acl::{AclOperation, AclPermissionType, ResourceType};
use weir_wire::domain::txn::AddPartitionsToTxnRequest;
use weir_wire::domain::{
    coordinator_type, resource_type, ApiRequest, ApiResponse, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, ListOffsetsRequest, MetadataRequest, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchGroupResponse, OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse,
    OffsetFetchTopic, ProduceRequest, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::{errors, Node};
use crate::acl::{self as model, CLUSTER_NAME};
use crate::event::RequestId;

use AclOperation::*;
use ResourceType::{Cluster, Group, Topic, TransactionalId};

const TOPIC_DENIED: ErrorCode = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
const GROUP_DENIED: ErrorCode = ErrorCode::GROUP_AUTHORIZATION_FAILED;
const CLUSTER_DENIED: ErrorCode = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
const TXN_DENIED: ErrorCode = ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

/// What the denied items of a request answer, merged into the handler's answer.
#[derive(Debug)]
pub(super) enum Denied {
    /// The error answer of the denied items (same response type as the request's).
    Items(ApiResponse),
    /// A listing to filter at answer time (Metadata all-topics, ListGroups,
    /// ListTransactions).
    Listing,
    /// OffsetFetch: whole groups denied, denied topics of allowed groups (by group), and
    /// the allowed groups asked for all their topics (filtered at answer time).
    OffsetFetch {
        groups: Vec<OffsetFetchGroupResponse>,
        topics: Vec<(String, Vec<OffsetFetchTopic>)>,
        all_topics: Vec<String>,
    },
}

/// Split the items in `$r.$field` by `$allowed`: the allowed ones are served, the others
/// answered with `$error` (merged into the handler's answer), as `Node::split` does.
macro_rules! split_items {
    (
        $self:ident, $id:ident, $r:ident, $variant:ident, $field:ident,
        |$item:ident| $allowed:expr, $error:expr
    ) => {{
        let (allowed, denied): (Vec<_>, Vec<_>) =
            (std::mem::take(&mut $r.$field).into_iter()).partition(|$item| $allowed);
        let mut denied_request = $r.clone();
        denied_request.$field = denied;
        $r.$field = allowed;
        let (served, denied) = (
            ApiRequest::$variant($r),
            ApiRequest::$variant(denied_request),
        );
        $self.split($id, served, denied, $error)
    }};
}

/// Split the resources of an AlterConfigs-like request: a topic needs ALTER_CONFIGS on it
/// (else TOPIC_AUTHORIZATION_FAILED), a broker or logger on the cluster (else
/// CLUSTER_AUTHORIZATION_FAILED).
macro_rules! split_alter_configs {
    ($self:ident, $id:ident, $r:ident, $variant:ident) => {{
        let mut denied_topics = Vec::new();
        let mut denied_cluster = Vec::new();
        let mut allowed = Vec::new();
        for resource in std::mem::take(&mut $r.resources) {
            match resource.resource_type {
                resource_type::TOPIC => {
                    if $self.authorize($id, AlterConfigs, Topic, &resource.resource_name) {
                        allowed.push(resource);
                    } else {
                        denied_topics.push(resource);
                    }
                }
                _ => {
                    if $self.authorize($id, AlterConfigs, Cluster, CLUSTER_NAME) {
                        allowed.push(resource);
                    } else {
                        denied_cluster.push(resource);
                    }
                }
            }
        }
        let message = "Authorization failed.";
        let mut topics_request = $r.clone();
        topics_request.resources = denied_topics;
        let mut cluster_request = $r.clone();
        cluster_request.resources = denied_cluster;
        let answers = (
            errors::error_response(&ApiRequest::$variant(topics_request), TOPIC_DENIED, message),
            errors::error_response(
                &ApiRequest::$variant(cluster_request),
                CLUSTER_DENIED,
                message,
            ),
        );
        let denied = match answers {
            (ApiResponse::$variant(mut a), ApiResponse::$variant(b)) => {
                a.results.extend(b.results);
                a
            }
            _ => unreachable!("error_response keeps the request's type"),
        };
        if allowed.is_empty() && !denied.results.is_empty() {
            $self.respond($id, ApiResponse::$variant(denied));
            Split::Answered
        } else {
            $r.resources = allowed;
            let denied = (!denied.results.is_empty()).then_some(ApiResponse::$variant(denied));
            Split::Serve(ApiRequest::$variant($r), denied)
        }
    }};
}

/// One whole-request check: operation, resource, and the error when denied.
type Check = (AclOperation, ResourceType, String, ErrorCode);

impl Node {
    /// Authorize `request` for `id`: `None` when it was answered here (denied), else the
    /// request to serve (denied items removed; their answers kept for `merge_denied`).
    pub(super) fn authorize_request(
        &mut self,
        id: RequestId,
        request: ApiRequest,
    ) -> Option<ApiRequest> {
        if !self.authorizer_enabled() || id.origin == crate::event::Origin::GroupWrite {
            return Some(request);
        }
        for (operation, resource, name, error) in whole_request_checks(&request) {
            if !self.authorize(id, operation, resource, &name) {
                let message = format!("{} authorization failed.", resource_label(resource));
                self.respond(id, errors::error_response(&request, error, &message));
                return None;
            }
        }
        // Per-item splits; every arm either returns the request to serve or answers.
        let split = match request {
            ApiRequest::Produce(r) => self.split_produce(id, r),
            ApiRequest::Fetch(r) => self.split_fetch(id, r),
            ApiRequest::ListOffsets(r) => self.split_list_offsets(id, r),
            ApiRequest::Metadata(r) => self.split_metadata(id, r),
            ApiRequest::CreateTopics(r) => self.split_create_topics(id, r),
            ApiRequest::DeleteTopics(r) => self.split_delete_topics(id, r),
            ApiRequest::DescribeGroups(r) => self.split_describe_groups(id, r),
            ApiRequest::DeleteGroups(r) => self.split_delete_groups(id, r),
            ApiRequest::DescribeConfigs(r) => self.split_describe_configs(id, r),
            ApiRequest::AlterConfigs(mut r) => split_alter_configs!(self, id, r, AlterConfigs),
            ApiRequest::IncrementalAlterConfigs(mut r) => {
                split_alter_configs!(self, id, r, IncrementalAlterConfigs)
            }
            ApiRequest::CreatePartitions(mut r) => split_items!(
                self,
                id,
                r,
                CreatePartitions,
                topics,
                |t| self.authorize(id, Alter, Topic, &t.name),
                TOPIC_DENIED
            ),
            ApiRequest::OffsetCommit(mut r) => split_items!(
                self,
                id,
                r,
                OffsetCommit,
                topics,
                |t| self.authorize(id, Read, Topic, &t.name),
                TOPIC_DENIED
            ),
            ApiRequest::TxnOffsetCommit(mut r) => split_items!(
                self,
                id,
                r,
                TxnOffsetCommit,
                topics,
                |t| self.authorize(id, Read, Topic, &t.name),
                TOPIC_DENIED
            ),
            ApiRequest::DescribeProducers(mut r) => split_items!(
                self,
                id,
                r,
                DescribeProducers,
                topics,
                |t| self.authorize(id, Read, Topic, &t.name),
                TOPIC_DENIED
            ),
            ApiRequest::OffsetForLeaderEpoch(mut r) => split_items!(
                self,
                id,
                r,
                OffsetForLeaderEpoch,
                topics,
                |t| self.authorize(id, Describe, Topic, &t.topic),
                TOPIC_DENIED
            ),
            ApiRequest::DeleteRecords(mut r) => split_items!(
                self,
                id,
                r,
                DeleteRecords,
                topics,
                |t| self.authorize(id, Delete, Topic, &t.name),
                TOPIC_DENIED
            ),
            ApiRequest::OffsetDelete(r) => self.split_offset_delete(id, r),
            ApiRequest::OffsetFetch(r) => self.split_offset_fetch(id, r),
            ApiRequest::AddPartitionsToTxn(r) => self.check_add_partitions(id, r),
            ApiRequest::ListGroups(r) => {
                if !self.authorize_filter(id, Describe, Cluster, CLUSTER_NAME) {
                    self.denied.insert(id, Denied::Listing);
                }
                Split::Serve(ApiRequest::ListGroups(r), None)
            }
            ApiRequest::ListTransactions(r) => {
                self.denied.insert(id, Denied::Listing);
                Split::Serve(ApiRequest::ListTransactions(r), None)
            }
            ApiRequest::InitProducerId(r) => {
                // KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster, or
                // WRITE on some topic (an ACL allowing it to write any topic at all).
                let idempotent_only = r.transactional_id.is_none();
                if idempotent_only
                    && !self.authorize_filter(id, IdempotentWrite, Cluster, CLUSTER_NAME)
                    && !self.may_write_some_topic(id)
                {
                    let request = ApiRequest::InitProducerId(r);
                    let message = "Cluster authorization failed.";
                    self.respond(
                        id,
                        errors::error_response(&request, CLUSTER_DENIED, message),
                    );
                    return None;
                }
                Split::Serve(ApiRequest::InitProducerId(r), None)
            }
            other => Split::Serve(other, None),
        };
        match split {
            Split::Serve(request, denied) => {
                if let Some(denied) = denied {
                    self.denied.insert(id, Denied::Items(denied));
                }
                Some(request)
            }
            Split::Answered => None,
        }
    }

    /// Merge what `authorize_request` denied into the handler's answer to `id` (or filter
    /// a listing). Runs in `respond`, once per request.
    pub(super) fn merge_denied(&mut self, id: RequestId, response: ApiResponse) -> ApiResponse {
        let Some(denied) = self.denied.remove(&id) else {
            return response;
        };
        match (denied, response) {
            (Denied::Items(ApiResponse::Produce(d)), ApiResponse::Produce(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::Produce(r)
            }
            (Denied::Items(ApiResponse::Fetch(d)), ApiResponse::Fetch(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::Fetch(r)
            }
            (Denied::Items(ApiResponse::ListOffsets(d)), ApiResponse::ListOffsets(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::ListOffsets(r)
            }
            (Denied::Items(ApiResponse::Metadata(d)), ApiResponse::Metadata(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::Metadata(r)
            }
            (Denied::Items(ApiResponse::CreateTopics(d)), ApiResponse::CreateTopics(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::CreateTopics(r)
            }
            (Denied::Items(ApiResponse::DeleteTopics(d)), ApiResponse::DeleteTopics(mut r)) => {
                r.responses.extend(d.responses);
                ApiResponse::DeleteTopics(r)
            }
            (Denied::Items(ApiResponse::DescribeGroups(d)), ApiResponse::DescribeGroups(mut r)) => {
                r.groups.extend(d.groups);
                ApiResponse::DescribeGroups(r)
            }
            (Denied::Items(ApiResponse::DeleteGroups(d)), ApiResponse::DeleteGroups(mut r)) => {
                r.results.extend(d.results);
                ApiResponse::DeleteGroups(r)
            }
            (
                Denied::Items(ApiResponse::DescribeConfigs(d)),
                ApiResponse::DescribeConfigs(mut r),
            ) => {
                r.results.extend(d.results);
                ApiResponse::DescribeConfigs(r)
            }
            (Denied::Items(ApiResponse::AlterConfigs(d)), ApiResponse::AlterConfigs(mut r)) => {
                r.results.extend(d.results);
                ApiResponse::AlterConfigs(r)
            }
            (
                Denied::Items(ApiResponse::IncrementalAlterConfigs(d)),
                ApiResponse::IncrementalAlterConfigs(mut r),
            ) => {
                r.results.extend(d.results);
                ApiResponse::IncrementalAlterConfigs(r)
            }
            (
                Denied::Items(ApiResponse::CreatePartitions(d)),
                ApiResponse::CreatePartitions(mut r),
            ) => {
                r.results.extend(d.results);
                ApiResponse::CreatePartitions(r)
            }
            (Denied::Items(ApiResponse::OffsetCommit(d)), ApiResponse::OffsetCommit(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::OffsetCommit(r)
            }
            (
                Denied::Items(ApiResponse::TxnOffsetCommit(d)),
                ApiResponse::TxnOffsetCommit(mut r),
            ) => {
                r.topics.extend(d.topics);
                ApiResponse::TxnOffsetCommit(r)
            }
            (
                Denied::Items(ApiResponse::DescribeProducers(d)),
                ApiResponse::DescribeProducers(mut r),
            ) => {
                r.topics.extend(d.topics);
                ApiResponse::DescribeProducers(r)
            }
            (
                Denied::Items(ApiResponse::OffsetForLeaderEpoch(d)),
                ApiResponse::OffsetForLeaderEpoch(mut r),
            ) => {
                r.topics.extend(d.topics);
                ApiResponse::OffsetForLeaderEpoch(r)
            }
            (Denied::Items(ApiResponse::DeleteRecords(d)), ApiResponse::DeleteRecords(mut r)) => {
                r.topics.extend(d.topics);
                ApiResponse::DeleteRecords(r)
            }
            // A group-level error (an unknown member, say) answers the whole request as
            // Kafka's would; the denied topics are only added to an answer without one.
            (Denied::Items(ApiResponse::OffsetDelete(d)), ApiResponse::OffsetDelete(mut r)) => {
                if r.error == ErrorCode::NONE {
                    r.topics.extend(d.topics);
                }
                ApiResponse::OffsetDelete(r)
            }
            (
                Denied::OffsetFetch {
                    groups,
                    topics,
                    all_topics,
                },
                ApiResponse::OffsetFetch(mut r),
            ) => {
                for group in &mut r.groups {
                    if all_topics.contains(&group.group_id) {
                        (group.topics)
                            .retain(|t| self.authorize_filter(id, Describe, Topic, &t.name));
                    }
                    let denied = (topics.iter()).filter(|(g, _)| *g == group.group_id);
                    for (_, denied_topics) in denied {
                        group.topics.extend(denied_topics.iter().cloned());
                    }
                }
                r.groups.extend(groups);
                ApiResponse::OffsetFetch(r)
            }
            (Denied::Listing, ApiResponse::Metadata(mut r)) => {
                r.topics.retain(|t| {
                    let name = t.name.clone().unwrap_or_default();
                    self.authorize_filter(id, Describe, Topic, &name)
                });
                ApiResponse::Metadata(r)
            }
            (Denied::Listing, ApiResponse::ListGroups(mut r)) => {
                r.groups
                    .retain(|g| self.authorize_filter(id, Describe, Group, &g.group_id));
                ApiResponse::ListGroups(r)
            }
            (Denied::Listing, ApiResponse::ListTransactions(mut r)) => {
                r.transactions.retain(|t| {
                    self.authorize_filter(id, Describe, TransactionalId, &t.transactional_id)
                });
                ApiResponse::ListTransactions(r)
            }
            // A response of another shape (an error answer built elsewhere): as it is.
            (_, response) => response,
        }
    }

    /// A Metadata request may auto-create its unknown topics only with CREATE on the
    /// cluster or on each of them (Kafka's rule); otherwise it is served without
    /// auto-creation (unknown topics: UNKNOWN_TOPIC_OR_PARTITION, or
    /// TOPIC_AUTHORIZATION_FAILED without DESCRIBE).
    pub(super) fn gate_auto_create(&mut self, id: RequestId, request: &mut ApiRequest) {
        let ApiRequest::Metadata(r) = request else {
            return;
        };
        if !self.authorizer_enabled() || !r.allow_auto_topic_creation {
            return;
        }
        if self.authorize_filter(id, Create, Cluster, CLUSTER_NAME) {
            return;
        }
        let unknown: Vec<String> = (r.topics.iter().flatten())
            .filter_map(|t| match t {
                TopicRef::Name(name) if !self.cluster.meta.image.names.contains_key(name) => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        let creatable = (unknown.iter()).all(|name| {
            self.authorize_filter(id, Create, Topic, name)
                && self.authorize_filter(id, Describe, Topic, name)
        });
        if !creatable {
            r.allow_auto_topic_creation = false;
        }
    }

    /// Kafka's authorized-operations bit sets (Metadata's topics and cluster,
    /// DescribeGroups, ConsumerGroupDescribe, DescribeCluster), where the client asked for
    /// them: each operation the handler listed is kept only if the principal may do it.
    /// Not counted or audited (Kafka neither).
    pub(super) fn restrict_operations(&self, id: RequestId, response: ApiResponse) -> ApiResponse {
        if !self.authorizer_enabled() || id.origin == crate::event::Origin::GroupWrite {
            return response;
        }
        match response {
            ApiResponse::Metadata(mut r) => {
                let cluster = r.cluster_authorized_operations;
                r.cluster_authorized_operations =
                    self.operation_bits(id, Cluster, CLUSTER_NAME, cluster);
                for t in &mut r.topics {
                    let name = t.name.clone().unwrap_or_default();
                    let bits = t.topic_authorized_operations;
                    t.topic_authorized_operations = self.operation_bits(id, Topic, &name, bits);
                }
                ApiResponse::Metadata(r)
            }
            ApiResponse::DescribeGroups(mut r) => {
                for g in &mut r.groups {
                    let bits = g.authorized_operations;
                    g.authorized_operations = self.operation_bits(id, Group, &g.group_id, bits);
                }
                ApiResponse::DescribeGroups(r)
            }
            ApiResponse::ConsumerGroupDescribe(mut r) => {
                for g in &mut r.groups {
                    let bits = g.authorized_operations;
                    g.authorized_operations = self.operation_bits(id, Group, &g.group_id, bits);
                }
                ApiResponse::ConsumerGroupDescribe(r)
            }
            ApiResponse::DescribeCluster(mut r) => {
                let cluster = r.cluster_authorized_operations;
                r.cluster_authorized_operations =
                    self.operation_bits(id, Cluster, CLUSTER_NAME, cluster);
                ApiResponse::DescribeCluster(r)
            }
            other => other,
        }
    }

    /// The operations of `listed` (a bit per operation code; `i32::MIN` = not requested,
    /// kept) the principal may do on the resource.
    fn operation_bits(
        &self,
        id: RequestId,
        resource_type: ResourceType,
        name: &str,
        listed: i32,
    ) -> i32 {
        if listed == i32::MIN {
            return listed;
        }
        let principal = self.principal(id).to_string();
        let host = self.client_host(id);
        let mut bits = 0;
        for &operation in AclOperation::ALL_VALUES {
            let bit = 1i32 << operation.code();
            if listed & bit == 0 {
                continue;
            }
            let action = model::Action {
                operation,
                resource_type,
                name,
            };
            let image = &self.cluster.meta.image;
            let decision = model::authorize(
                &image.acls,
                &self.config.authorizer,
                &principal,
                host,
                action,
            );
            if decision.is_allowed() {
                bits |= bit;
            }
        }
        bits
    }

    /// Drop what was kept for `id`'s answer: it will not be answered here.
    pub(super) fn forget_denied(&mut self, id: RequestId) {
        self.denied.remove(&id);
    }

    /// The name of a topic reference (an id through the image); `None` for an unknown id,
    /// which the handler answers UNKNOWN_TOPIC_ID.
    fn topic_ref_name(&self, topic: &TopicRef) -> Option<String> {
        match topic {
            TopicRef::Name(name) => Some(name.clone()),
            TopicRef::Id(topic_id) => {
                let image = &self.cluster.meta.image;
                image
                    .topics
                    .get(&topic_id.as_u128())
                    .map(|t| t.name.clone())
            }
        }
    }

    /// Whether the principal may `operation` the topic `topic` refers to (an unknown id
    /// passes: nothing to protect, and the handler answers it unknown).
    fn topic_allowed(&mut self, id: RequestId, operation: AclOperation, topic: &TopicRef) -> bool {
        match self.topic_ref_name(topic) {
            Some(name) => self.authorize(id, operation, Topic, &name),
            None => true,
        }
    }

    fn split_produce(&mut self, id: RequestId, mut r: ProduceRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|t| self.topic_allowed(id, Write, &t.topic));
        let denied_request = ProduceRequest {
            topics: denied,
            ..r.clone()
        };
        r.topics = allowed;
        self.split(
            id,
            ApiRequest::Produce(r),
            ApiRequest::Produce(denied_request),
            TOPIC_DENIED,
        )
    }

    fn split_fetch(&mut self, id: RequestId, mut r: FetchRequest) -> Split {
        // A follower's fetch (replica_id >= 0) is inter-broker: CLUSTER_ACTION.
        let operation = if r.replica_id >= 0 {
            ClusterAction
        } else {
            Read
        };
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|t| match operation {
                ClusterAction => self.authorize(id, ClusterAction, Cluster, CLUSTER_NAME),
                _ => self.topic_allowed(id, Read, &t.topic),
            });
        let denied_request = FetchRequest {
            topics: denied,
            ..r.clone()
        };
        r.topics = allowed;
        self.split(
            id,
            ApiRequest::Fetch(r),
            ApiRequest::Fetch(denied_request),
            TOPIC_DENIED,
        )
    }

    fn split_list_offsets(&mut self, id: RequestId, mut r: ListOffsetsRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|t| self.authorize(id, Describe, Topic, &t.name));
        let denied_request = ListOffsetsRequest {
            topics: denied,
            ..r.clone()
        };
        r.topics = allowed;
        let (served, denied) = (
            ApiRequest::ListOffsets(r),
            ApiRequest::ListOffsets(denied_request),
        );
        self.split(id, served, denied, TOPIC_DENIED)
    }

    fn split_metadata(&mut self, id: RequestId, mut r: MetadataRequest) -> Split {
        let Some(topics) = r.topics.take() else {
            // All topics: shown only where DESCRIBE is allowed.
            self.denied.insert(id, Denied::Listing);
            return Split::Serve(ApiRequest::Metadata(r), None);
        };
        let (allowed, denied): (Vec<_>, Vec<_>) =
            (topics.into_iter()).partition(|t| self.topic_allowed(id, Describe, t));
        let denied_request = MetadataRequest {
            topics: Some(denied),
            ..r.clone()
        };
        r.topics = Some(allowed);
        let (served, denied) = (
            ApiRequest::Metadata(r),
            ApiRequest::Metadata(denied_request),
        );
        // An empty request list means "no topics" here, not "all": serve it as it is.
        let served_empty = false;
        self.split_keep(id, served, denied, TOPIC_DENIED, served_empty)
    }

    fn split_create_topics(&mut self, id: RequestId, mut r: CreateTopicsRequest) -> Split {
        let cluster_create = self.authorize_filter(id, Create, Cluster, CLUSTER_NAME);
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|t| cluster_create || self.authorize(id, Create, Topic, &t.name));
        let denied_request = CreateTopicsRequest {
            topics: denied,
            ..r.clone()
        };
        r.topics = allowed;
        let (served, denied) = (
            ApiRequest::CreateTopics(r),
            ApiRequest::CreateTopics(denied_request),
        );
        self.split(id, served, denied, TOPIC_DENIED)
    }

    fn split_delete_topics(&mut self, id: RequestId, mut r: DeleteTopicsRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|t| self.topic_allowed(id, Delete, t));
        let denied_request = DeleteTopicsRequest {
            topics: denied,
            ..r.clone()
        };
        r.topics = allowed;
        let (served, denied) = (
            ApiRequest::DeleteTopics(r),
            ApiRequest::DeleteTopics(denied_request),
        );
        self.split(id, served, denied, TOPIC_DENIED)
    }

    fn split_describe_groups(&mut self, id: RequestId, mut r: DescribeGroupsRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.groups).into_iter())
            .partition(|g| self.authorize(id, Describe, Group, g));
        let denied_request = DescribeGroupsRequest {
            groups: denied,
            ..r.clone()
        };
        r.groups = allowed;
        let (served, denied) = (
            ApiRequest::DescribeGroups(r),
            ApiRequest::DescribeGroups(denied_request),
        );
        self.split(id, served, denied, GROUP_DENIED)
    }

    fn split_delete_groups(&mut self, id: RequestId, mut r: DeleteGroupsRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.groups).into_iter())
            .partition(|g| self.authorize(id, Delete, Group, g));
        let denied_request = DeleteGroupsRequest { groups: denied };
        r.groups = allowed;
        let (served, denied) = (
            ApiRequest::DeleteGroups(r),
            ApiRequest::DeleteGroups(denied_request),
        );
        self.split(id, served, denied, GROUP_DENIED)
    }

    fn split_describe_configs(&mut self, id: RequestId, mut r: DescribeConfigsRequest) -> Split {
        // Topics need DESCRIBE_CONFIGS on the topic, brokers (and broker loggers) on the
        // cluster; a denied resource is answered with its own kind's error.
        let mut denied_topics = Vec::new();
        let mut denied_cluster = Vec::new();
        let mut allowed = Vec::new();
        for resource in std::mem::take(&mut r.resources) {
            let ok = match resource.resource_type {
                resource_type::TOPIC => {
                    self.authorize(id, DescribeConfigs, Topic, &resource.resource_name)
                }
                _ => self.authorize(id, DescribeConfigs, Cluster, CLUSTER_NAME),
            };
            match (ok, resource.resource_type) {
                (true, _) => allowed.push(resource),
                (false, resource_type::TOPIC) => denied_topics.push(resource),
                (false, _) => denied_cluster.push(resource),
            }
        }
        let message = "Authorization failed.";
        let topics_answer = errors::error_response(
            &ApiRequest::DescribeConfigs(DescribeConfigsRequest {
                resources: denied_topics,
                ..r.clone()
            }),
            TOPIC_DENIED,
            message,
        );
        let cluster_answer = errors::error_response(
            &ApiRequest::DescribeConfigs(DescribeConfigsRequest {
                resources: denied_cluster,
                ..r.clone()
            }),
            CLUSTER_DENIED,
            message,
        );
        let denied = match (topics_answer, cluster_answer) {
            (ApiResponse::DescribeConfigs(mut a), ApiResponse::DescribeConfigs(b)) => {
                a.results.extend(b.results);
                a
            }
            _ => unreachable!("error_response keeps the request's type"),
        };
        let nothing_allowed = allowed.is_empty() && !denied.results.is_empty();
        if nothing_allowed {
            self.respond(id, ApiResponse::DescribeConfigs(denied));
            return Split::Answered;
        }
        r.resources = allowed;
        let denied = (!denied.results.is_empty()).then_some(ApiResponse::DescribeConfigs(denied));
        Split::Serve(ApiRequest::DescribeConfigs(r), denied)
    }

    fn split_offset_delete(&mut self, id: RequestId, mut r: OffsetDeleteRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) = (std::mem::take(&mut r.topics).into_iter())
            .partition(|(name, _)| self.authorize(id, Read, Topic, name));
        if denied.is_empty() {
            r.topics = allowed;
            return Split::Serve(ApiRequest::OffsetDelete(r), None);
        }
        // OffsetDelete's error form has one group-level error; a denied topic answers per
        // partition instead, as Kafka's does.
        let answer = OffsetDeleteResponse {
            error: ErrorCode::NONE,
            throttle_time_ms: 0,
            topics: (denied.into_iter())
                .map(|(name, partitions)| {
                    let partitions = partitions.into_iter().map(|p| (p, TOPIC_DENIED)).collect();
                    (name, partitions)
                })
                .collect(),
        };
        if allowed.is_empty() {
            self.respond(id, ApiResponse::OffsetDelete(answer));
            return Split::Answered;
        }
        r.topics = allowed;
        Split::Serve(
            ApiRequest::OffsetDelete(r),
            Some(ApiResponse::OffsetDelete(answer)),
        )
    }

    /// OffsetFetch: a group without DESCRIBE answers GROUP_AUTHORIZATION_FAILED (in its
    /// own entry from v8, where one request asks for several groups); a named topic
    /// without DESCRIBE answers TOPIC_AUTHORIZATION_FAILED per partition; a group asked
    /// for all its topics gets only those it may describe.
    fn split_offset_fetch(&mut self, id: RequestId, mut r: OffsetFetchRequest) -> Split {
        let mut denied_groups = Vec::new();
        let mut denied_topics = Vec::new();
        let mut all_topics = Vec::new();
        let mut allowed = Vec::new();
        for mut group in std::mem::take(&mut r.groups) {
            if !self.authorize(id, Describe, Group, &group.group_id) {
                denied_groups.push(OffsetFetchGroupResponse {
                    group_id: group.group_id,
                    topics: Vec::new(),
                    error: GROUP_DENIED,
                });
                continue;
            }
            match group.topics.take() {
                None => all_topics.push(group.group_id.clone()),
                Some(topics) => {
                    let (ok, denied): (Vec<_>, Vec<_>) = (topics.into_iter())
                        .partition(|(name, _)| self.authorize(id, Describe, Topic, name));
                    if !denied.is_empty() {
                        let answers = (denied.into_iter())
                            .map(|(name, partitions)| OffsetFetchTopic {
                                name,
                                partitions: (partitions.into_iter())
                                    .map(|partition| OffsetFetchPartition {
                                        partition,
                                        committed_offset: -1,
                                        committed_leader_epoch: -1,
                                        metadata: None,
                                        error: TOPIC_DENIED,
                                    })
                                    .collect(),
                            })
                            .collect();
                        denied_topics.push((group.group_id.clone(), answers));
                    }
                    group.topics = Some(ok);
                }
            }
            allowed.push(group);
        }
        if allowed.is_empty() {
            let answer = OffsetFetchResponse {
                throttle_time_ms: 0,
                groups: denied_groups,
            };
            self.respond(id, ApiResponse::OffsetFetch(answer));
            return Split::Answered;
        }
        r.groups = allowed;
        let nothing_denied =
            denied_groups.is_empty() && denied_topics.is_empty() && all_topics.is_empty();
        if !nothing_denied {
            self.denied.insert(
                id,
                Denied::OffsetFetch {
                    groups: denied_groups,
                    topics: denied_topics,
                    all_topics,
                },
            );
        }
        Split::Serve(ApiRequest::OffsetFetch(r), None)
    }

    /// AddPartitionsToTxn adds nothing when a topic is denied (Kafka's rule): the denied
    /// topics answer TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED.
    fn check_add_partitions(&mut self, id: RequestId, r: AddPartitionsToTxnRequest) -> Split {
        let (allowed, denied): (Vec<_>, Vec<_>) =
            (r.topics.iter().cloned()).partition(|t| self.authorize(id, Write, Topic, &t.name));
        if denied.is_empty() {
            return Split::Serve(ApiRequest::AddPartitionsToTxn(r), None);
        }
        let message = "Authorization failed.";
        let part = |topics| {
            ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                topics,
                ..r.clone()
            })
        };
        let answers = (
            errors::error_response(&part(denied), TOPIC_DENIED, message),
            errors::error_response(&part(allowed), ErrorCode::OPERATION_NOT_ATTEMPTED, message),
        );
        let answer = match answers {
            (ApiResponse::AddPartitionsToTxn(mut a), ApiResponse::AddPartitionsToTxn(b)) => {
                a.results.extend(b.results);
                ApiResponse::AddPartitionsToTxn(a)
            }
            (other, _) => other,
        };
        self.respond(id, answer);
        Split::Answered
    }

    /// Serve `served` with `denied`'s error answer merged in; answer `denied` alone when
    /// `served` has no items left (and it had some denied).
    fn split(
        &mut self,
        id: RequestId,
        served: ApiRequest,
        denied: ApiRequest,
        error: ErrorCode,
    ) -> Split {
        self.split_keep(id, served, denied, error, true)
    }

    fn split_keep(
        &mut self,
        id: RequestId,
        served: ApiRequest,
        denied: ApiRequest,
        error: ErrorCode,
        answer_when_all_denied: bool,
    ) -> Split {
        if item_count(&denied) == 0 {
            return Split::Serve(served, None);
        }
        let message = "Authorization failed.";
        let answer = errors::error_response(&denied, error, message);
        if answer_when_all_denied && item_count(&served) == 0 {
            self.respond(id, answer);
            return Split::Answered;
        }
        Split::Serve(served, Some(answer))
    }

    /// KIP-679: whether some ACL lets the principal WRITE a topic (any topic): an ALLOW of
    /// WRITE or ALL on a topic pattern for the principal or `User:*`, from `*` or no
    /// particular host. Kafka's `authorizeByResourceType` also weighs DENYs on the same
    /// patterns; this looks for an allow that no DENY of the same pattern cancels.
    fn may_write_some_topic(&mut self, id: RequestId) -> bool {
        let principal = self.principal(id).to_string();
        let host = self.client_host(id).to_owned();
        let acls = &self.cluster.meta.image.acls;
        let applies = |b: &weir_wire::domain::acl::AclBinding| {
            b.resource_type == Topic
                && (b.principal == principal || b.principal == model::WILDCARD_PRINCIPAL)
                && (b.host == model::WILDCARD || b.host == host)
                && matches!(b.operation, Write | All)
        };
        let allowed = (acls.iter().map(|a| &a.0)).any(|b| {
            applies(b)
                && b.permission_type == AclPermissionType::Allow
                && !(acls.iter().map(|a| &a.0)).any(|d| {
                    applies(d)
                        && d.permission_type == AclPermissionType::Deny
                        && d.resource_name == b.resource_name
                        && d.pattern_type == b.pattern_type
                })
        });
        if allowed {
            self.authorizer_counts.allowed += 1;
        } else {
            self.authorizer_counts.denied += 1;
        }
        allowed
    }
}

/// What `authorize_request`'s split decided. Lives for one call, moved once: not boxed.
#[allow(clippy::large_enum_variant)]
enum Split {
    /// Serve this request; merge this error answer of its denied items.
    Serve(ApiRequest, Option<ApiResponse>),
    /// Answered already (every item denied).
    Answered,
}

/// Items of a request the per-item splits count.
fn item_count(request: &ApiRequest) -> usize {
    match request {
        ApiRequest::Produce(r) => r.topics.len(),
        ApiRequest::Fetch(r) => r.topics.len(),
        ApiRequest::ListOffsets(r) => r.topics.len(),
        ApiRequest::Metadata(r) => r.topics.as_ref().map_or(0, Vec::len),
        ApiRequest::CreateTopics(r) => r.topics.len(),
        ApiRequest::DeleteTopics(r) => r.topics.len(),
        ApiRequest::DescribeGroups(r) => r.groups.len(),
        ApiRequest::DeleteGroups(r) => r.groups.len(),
        ApiRequest::CreatePartitions(r) => r.topics.len(),
        ApiRequest::OffsetCommit(r) => r.topics.len(),
        ApiRequest::TxnOffsetCommit(r) => r.topics.len(),
        ApiRequest::DescribeProducers(r) => r.topics.len(),
        ApiRequest::OffsetForLeaderEpoch(r) => r.topics.len(),
        ApiRequest::DeleteRecords(r) => r.topics.len(),
        _ => 1,
    }
}

fn resource_label(resource: ResourceType) -> &'static str {
    match resource {
        Topic => "Topic",
        Group => "Group",
        TransactionalId => "Transactional Id",
        _ => "Cluster",
    }
}

fn cluster(operation: AclOperation) -> Check {
    (operation, Cluster, CLUSTER_NAME.to_owned(), CLUSTER_DENIED)
}

fn group(operation: AclOperation, name: &str) -> Check {
    (operation, Group, name.to_owned(), GROUP_DENIED)
}

fn txn(operation: AclOperation, name: &str) -> Check {
    (operation, TransactionalId, name.to_owned(), TXN_DENIED)
}

fn topic(operation: AclOperation, name: &str) -> Check {
    (operation, Topic, name.to_owned(), TOPIC_DENIED)
}

/// Kafka's whole-request checks of `request`, in the order Kafka makes them.
fn whole_request_checks(request: &ApiRequest) -> Vec<Check> {
    use ApiRequest as R;
    match request {
        R::Produce(r) => (r.transactional_id.iter()).map(|t| txn(Write, t)).collect(),
        R::FindCoordinator(r) => (r.keys.iter())
            .map(|key| match r.key_type {
                coordinator_type::TRANSACTION => txn(Describe, key),
                _ => group(Describe, key),
            })
            .collect(),
        R::JoinGroup(r) => vec![group(Read, &r.group_id)],
        R::SyncGroup(r) => vec![group(Read, &r.group_id)],
        R::Heartbeat(r) => vec![group(Read, &r.group_id)],
        R::LeaveGroup(r) => vec![group(Read, &r.group_id)],
        R::OffsetCommit(r) => vec![group(Read, &r.group_id)],
        R::OffsetDelete(r) => vec![group(Delete, &r.group_id)],
        // Kafka refuses the whole heartbeat when a subscribed topic may not be described.
        R::ConsumerGroupHeartbeat(r) => std::iter::once(group(Read, &r.group_id))
            .chain((r.subscribed_topic_names.iter().flatten()).map(|t| topic(Describe, t)))
            .collect(),
        R::ConsumerGroupDescribe(r) => r.group_ids.iter().map(|g| group(Describe, g)).collect(),
        R::InitProducerId(r) => (r.transactional_id.iter()).map(|t| txn(Write, t)).collect(),
        R::AddPartitionsToTxn(r) => vec![txn(Write, &r.transactional_id)],
        R::AddOffsetsToTxn(r) => vec![txn(Write, &r.transactional_id), group(Read, &r.group_id)],
        R::TxnOffsetCommit(r) => vec![txn(Write, &r.transactional_id), group(Read, &r.group_id)],
        R::EndTxn(r) => vec![txn(Write, &r.transactional_id)],
        R::WriteTxnMarkers(_) => vec![cluster(ClusterAction)],
        R::DescribeTransactions(r) => (r.transactional_ids.iter())
            .map(|t| txn(Describe, t))
            .collect(),
        R::DescribeLogDirs(_)
        | R::DescribeCluster(_)
        | R::DescribeQuorum(_)
        | R::ListPartitionReassignments(_)
        | R::DescribeUserScramCredentials(_) => vec![cluster(Describe)],
        R::ElectLeaders(_)
        | R::AlterPartitionReassignments(_)
        | R::AlterUserScramCredentials(_)
        | R::UpdateFeatures(_)
        | R::AddRaftVoter(_)
        | R::RemoveRaftVoter(_) => vec![cluster(Alter)],
        // Per item (authorize_request), their own handler (ACL APIs), or nothing (SASL).
        R::Fetch(_)
        | R::OffsetFetch(_)
        | R::CreatePartitions(_)
        | R::AlterConfigs(_)
        | R::IncrementalAlterConfigs(_)
        | R::DescribeProducers(_)
        | R::OffsetForLeaderEpoch(_)
        | R::DeleteRecords(_)
        | R::ListOffsets(_)
        | R::Metadata(_)
        | R::CreateTopics(_)
        | R::DeleteTopics(_)
        | R::DescribeConfigs(_)
        | R::ListGroups(_)
        | R::DescribeGroups(_)
        | R::DeleteGroups(_)
        | R::ListTransactions(_)
        | R::DescribeAcls(_)
        | R::CreateAcls(_)
        | R::DeleteAcls(_)
        | R::SaslHandshake(_)
        | R::SaslAuthenticate(_) => Vec::new(),
    }
}
