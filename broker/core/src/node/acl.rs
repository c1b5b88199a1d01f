//! Authorization on the node: [`Node::authorize`] (every per-API check goes through it,
//! counted and audited) and Kafka's ACL administration: DescribeAcls from this node's
//! image, CreateAcls and DeleteAcls on the active controller (other brokers forward both
//! with the client's principal, `PeerMessage::ForwardAs`, and the controller checks again).
//!
//! ACLs are records of the metadata log (`MetaRecord::AclCreated` / `AclDeleted`), so every
//! broker decides from the same set and they survive failover and restarts like topics.
//!
//! The audit log (`weir.authorizer.audit.log`) writes one line per audited decision at
//! target [`crate::acl::AUDIT_TARGET`]: principal, host, operation, resource and decision,
//! never a secret. Checks that only filter what a listing shows (Metadata without topic
//! names, ListGroups) are counted but not audited, as Kafka logs them only at DEBUG.

use std::collections::BTreeSet;

use weir_wire::domain::acl::{
    AclBinding, AclDescription, AclOperation, AclResource, AclResult, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsRequest,
    DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse, ResourceType,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use super::{errors, Node};
use crate::acl::{self, Acl, Action, AuditLog, AUDIT_TARGET, CLUSTER_NAME};
use crate::cluster::image::MetaRecord;
use crate::event::{Origin, RequestId};

/// The host of a request whose client address the node was not told (the gateway's
/// sessions, the broker's own writes): only ACLs with host `*` apply to it.
pub const UNKNOWN_HOST: &str = "";

/// Decisions the authorizer took on this node since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorizerCounts {
    /// Allowed (authorization on; super users included).
    pub allowed: u64,
    /// Denied.
    pub denied: u64,
}

impl Node {
    /// Whether request `id` may do `operation` on `(resource_type, name)`: always when
    /// authorization is off or the request is the broker's own (a group coordinator's
    /// write); otherwise the authorizer decides for the request's principal. Counted, and
    /// audited per `weir.authorizer.audit.log`.
    pub(super) fn authorize(
        &mut self,
        id: RequestId,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorize_logged(id, operation, resource_type, name, true)
    }

    /// [`Node::authorize`] on the cluster resource.
    pub(super) fn authorize_cluster(&mut self, id: RequestId, operation: AclOperation) -> bool {
        self.authorize(id, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// [`Node::authorize`] without the audit line: a check that filters a listing.
    pub(super) fn authorize_filter(
        &mut self,
        id: RequestId,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorize_logged(id, operation, resource_type, name, false)
    }

    /// True when authorization is on (`authorizer.class.name` set).
    pub(super) fn authorizer_enabled(&self) -> bool {
        self.config.authorizer.enabled
    }

    fn authorize_logged(
        &mut self,
        id: RequestId,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
        audited: bool,
    ) -> bool {
        if !self.config.authorizer.enabled || id.origin == Origin::GroupWrite {
            return true;
        }
        let principal = self.principal(id).to_string();
        let host = self.client_host(id).to_owned();
        let action = Action {
            operation,
            resource_type,
            name,
        };
        let decision = acl::authorize(
            &self.cluster.meta.image.acls,
            &self.config.authorizer,
            &principal,
            &host,
            action,
        );
        let allowed = decision.is_allowed();
        if allowed {
            self.authorizer_counts.allowed += 1;
        } else {
            self.authorizer_counts.denied += 1;
        }
        let audit = self.config.authorizer.audit;
        let logged = audited
            && match audit {
                AuditLog::None => false,
                AuditLog::Denied => !allowed,
                AuditLog::All => true,
            };
        if logged {
            let outcome = if allowed { "Allowed" } else { "Denied" };
            tracing::info!(
                target: AUDIT_TARGET,
                principal = %principal,
                host = %host,
                operation = %operation,
                resource_type = %resource_type,
                resource = name,
                decision = outcome,
                rule = ?decision,
                "Principal = {principal} is {outcome} operation = {operation} on resource = \
                 {resource_type}:LITERAL:{name}"
            );
        }
        allowed
    }

    /// The authorizer's decision counts (for the metrics snapshot).
    pub fn authorizer_counts(&self) -> AuthorizerCounts {
        self.authorizer_counts
    }

    /// DescribeAcls, from this node's image; needs DESCRIBE on the cluster.
    pub(super) fn describe_acls(&mut self, id: RequestId, request: DescribeAclsRequest) {
        let refused = |error: ErrorCode, message: String| DescribeAclsResponse {
            error,
            error_message: Some(message),
            ..DescribeAclsResponse::default()
        };
        let response = if !self.authorizer_enabled() {
            refused(ErrorCode::SECURITY_DISABLED, NO_AUTHORIZER.to_owned())
        } else if !self.authorize_cluster(id, AclOperation::Describe) {
            refused(
                ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
                CLUSTER_DENIED.to_owned(),
            )
        } else if let Err(message) = acl::validate_filter(&request.filter) {
            refused(ErrorCode::INVALID_REQUEST, message)
        } else {
            let matching = (self.cluster.meta.image.acls.iter())
                .map(|a| &a.0)
                .filter(|b| acl::filter_matches(&request.filter, b));
            DescribeAclsResponse {
                resources: group_by_resource(matching),
                ..DescribeAclsResponse::default()
            }
        };
        self.respond(id, ApiResponse::DescribeAcls(response));
    }

    /// CreateAcls, on the active controller: each creation validated alone; the valid
    /// ones not yet in the set proposed together; answered once committed.
    pub(super) fn create_acls(&mut self, id: RequestId, request: CreateAclsRequest) {
        let request = ApiRequest::CreateAcls(request);
        if let Some(error) = self.acl_admin_refusal(id) {
            let (code, message) = error;
            self.respond(id, errors::error_response(&request, code, message));
            return;
        }
        if self.not_controller(id, &request) {
            return;
        }
        let ApiRequest::CreateAcls(request) = request else {
            unreachable!("built above")
        };
        let held = &self.cluster.meta.decision_image().acls;
        let mut records = Vec::new();
        let mut planned: BTreeSet<&AclBinding> = BTreeSet::new();
        let mut results = Vec::with_capacity(request.creations.len());
        let mut proposed = Vec::new();
        for (index, binding) in request.creations.iter().enumerate() {
            let outcome = if index >= acl::ACLS_PER_REQUEST_MAX {
                Err("too many ACLs in one request".to_owned())
            } else if held.len() + planned.len() >= acl::ACLS_MAX {
                Err(format!(
                    "the cluster holds its maximum of {} ACLs",
                    acl::ACLS_MAX
                ))
            } else {
                acl::validate_binding(binding)
            };
            let result = match outcome {
                Ok(()) => {
                    // Creating an ACL that exists succeeds without a record (Kafka too).
                    let acl = Acl(binding.clone());
                    if !held.contains(&acl) && planned.insert(binding) {
                        records.push(MetaRecord::AclCreated { acl });
                    }
                    proposed.push(index);
                    AclResult::default()
                }
                Err(message) => AclResult {
                    error: ErrorCode::INVALID_REQUEST,
                    error_message: Some(message),
                },
            };
            results.push(result);
        }
        let last = if records.is_empty() {
            None
        } else {
            let last = self.propose(records);
            if last.is_none() {
                for index in proposed {
                    results[index] = AclResult {
                        error: ErrorCode::NOT_CONTROLLER,
                        error_message: Some(NOT_PROPOSED.to_owned()),
                    };
                }
            }
            last
        };
        let response = ApiResponse::CreateAcls(CreateAclsResponse {
            throttle_time_ms: 0,
            results,
        });
        self.respond_after_index(id, last, response);
    }

    /// DeleteAcls, on the active controller: every ACL a valid filter matches is deleted
    /// (one proposal for all filters) and listed in that filter's result.
    pub(super) fn delete_acls(&mut self, id: RequestId, request: DeleteAclsRequest) {
        let request = ApiRequest::DeleteAcls(request);
        if let Some((code, message)) = self.acl_admin_refusal(id) {
            self.respond(id, errors::error_response(&request, code, message));
            return;
        }
        if self.not_controller(id, &request) {
            return;
        }
        let ApiRequest::DeleteAcls(request) = request else {
            unreachable!("built above")
        };
        let held = &self.cluster.meta.decision_image().acls;
        let mut deleted: BTreeSet<&Acl> = BTreeSet::new();
        let mut filter_results = Vec::with_capacity(request.filters.len());
        for (index, filter) in request.filters.iter().enumerate() {
            let valid = if index >= acl::ACLS_PER_REQUEST_MAX {
                Err("too many filters in one request".to_owned())
            } else {
                acl::validate_filter(filter)
            };
            let result = match valid {
                Ok(()) => {
                    let matching: Vec<&Acl> = held
                        .iter()
                        .filter(|a| acl::filter_matches(filter, &a.0))
                        .collect();
                    deleted.extend(matching.iter().copied());
                    DeleteAclsFilterResult {
                        matching_acls: matching.into_iter().map(|a| matched(&a.0)).collect(),
                        ..DeleteAclsFilterResult::default()
                    }
                }
                Err(message) => DeleteAclsFilterResult {
                    error: ErrorCode::INVALID_REQUEST,
                    error_message: Some(message),
                    matching_acls: Vec::new(),
                },
            };
            filter_results.push(result);
        }
        let records: Vec<MetaRecord> = (deleted.into_iter())
            .map(|acl| MetaRecord::AclDeleted { acl: acl.clone() })
            .collect();
        let mut response = DeleteAclsResponse {
            throttle_time_ms: 0,
            filter_results,
        };
        let last = if records.is_empty() {
            None
        } else {
            let last = self.propose(records);
            if last.is_none() {
                let failed = errors::with_error(
                    ApiResponse::DeleteAcls(response),
                    ErrorCode::NOT_CONTROLLER,
                    NOT_PROPOSED,
                );
                let ApiResponse::DeleteAcls(failed) = failed else {
                    unreachable!("with_error keeps the response type")
                };
                response = failed;
            }
            last
        };
        self.respond_after_index(id, last, ApiResponse::DeleteAcls(response));
    }

    /// Why CreateAcls/DeleteAcls cannot go on here: no authorizer (SECURITY_DISABLED, as
    /// Kafka), or the principal lacks ALTER on the cluster. Checked on the receiving broker
    /// and again on the controller (as the forwarded principal).
    fn acl_admin_refusal(&mut self, id: RequestId) -> Option<(ErrorCode, &'static str)> {
        if !self.authorizer_enabled() {
            return Some((ErrorCode::SECURITY_DISABLED, NO_AUTHORIZER));
        }
        if !self.authorize_cluster(id, AclOperation::Alter) {
            return Some((ErrorCode::CLUSTER_AUTHORIZATION_FAILED, CLUSTER_DENIED));
        }
        None
    }
}

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";
const CLUSTER_DENIED: &str = "Cluster authorization failed.";
const NOT_PROPOSED: &str = "the controller could not propose the change; retry";

/// A DeleteAcls match, deleted.
fn matched(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl {
        error: ErrorCode::NONE,
        error_message: None,
        acl: b.clone(),
    }
}

/// DescribeAcls' shape: bindings grouped by resource pattern. The image's order is by
/// (type, name, pattern), so equal patterns are adjacent.
fn group_by_resource<'a>(bindings: impl Iterator<Item = &'a AclBinding>) -> Vec<AclResource> {
    let mut out: Vec<AclResource> = Vec::new();
    for b in bindings {
        let description = AclDescription {
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation,
            permission_type: b.permission_type,
        };
        match out.last_mut() {
            Some(last)
                if last.resource_type == b.resource_type
                    && last.resource_name == b.resource_name
                    && last.pattern_type == b.pattern_type =>
            {
                last.acls.push(description)
            }
            _ => out.push(AclResource {
                resource_type: b.resource_type,
                resource_name: b.resource_name.clone(),
                pattern_type: b.pattern_type,
                acls: vec![description],
            }),
        }
    }
    out
}
