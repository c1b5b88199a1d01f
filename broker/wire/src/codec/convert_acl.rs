//! Conversions for DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), v1-3.
//!
//! Same invariants as `convert.rs`; every field exists at every served version (v2+ only
//! adds flexible encoding), so no conversion looks at the version. The enum codes become
//! the domain enums here, once (an undefined code is the enum's `Unknown`).

use kafka_protocol::messages::{
    create_acls_request as car, create_acls_response as cas, delete_acls_request as dar,
    delete_acls_response as das, describe_acls_response as des, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};

use super::convert_helpers::{osb, ost, sb, st};
use crate::domain::acl as d;
use crate::domain::acl::{AclOperation, AclPermissionType, PatternType, ResourceType};
use crate::error::ErrorCode;

pub(super) fn describe_req_to_domain(k: DescribeAclsRequest) -> d::DescribeAclsRequest {
    d::DescribeAclsRequest {
        filter: d::AclFilter {
            resource_type: ResourceType::from_code(k.resource_type_filter),
            resource_name: ost(&k.resource_name_filter),
            pattern_type: PatternType::from_code(k.pattern_type_filter),
            principal: ost(&k.principal_filter),
            host: ost(&k.host_filter),
            operation: AclOperation::from_code(k.operation),
            permission_type: AclPermissionType::from_code(k.permission_type),
        },
    }
}

pub(super) fn describe_req_from_domain(x: &d::DescribeAclsRequest) -> DescribeAclsRequest {
    let f = &x.filter;
    DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type.code())
        .with_resource_name_filter(osb(&f.resource_name))
        .with_pattern_type_filter(f.pattern_type.code())
        .with_principal_filter(osb(&f.principal))
        .with_host_filter(osb(&f.host))
        .with_operation(f.operation.code())
        .with_permission_type(f.permission_type.code())
}

pub(super) fn describe_resp_from_domain(x: &d::DescribeAclsResponse) -> DescribeAclsResponse {
    let resources = (x.resources.iter())
        .map(|r| {
            let acls = (r.acls.iter())
                .map(|a| {
                    des::AclDescription::default()
                        .with_principal(sb(&a.principal))
                        .with_host(sb(&a.host))
                        .with_operation(a.operation.code())
                        .with_permission_type(a.permission_type.code())
                })
                .collect();
            des::DescribeAclsResource::default()
                .with_resource_type(r.resource_type.code())
                .with_resource_name(sb(&r.resource_name))
                .with_pattern_type(r.pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default()
        .with_throttle_time_ms(x.throttle_time_ms)
        .with_error_code(x.error.0)
        .with_error_message(osb(&x.error_message))
        .with_resources(resources)
}

pub(super) fn describe_resp_to_domain(k: DescribeAclsResponse) -> d::DescribeAclsResponse {
    d::DescribeAclsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        resources: (k.resources.iter())
            .map(|r| d::AclResource {
                resource_type: ResourceType::from_code(r.resource_type),
                resource_name: st(&r.resource_name),
                pattern_type: PatternType::from_code(r.pattern_type),
                acls: (r.acls.iter())
                    .map(|a| d::AclDescription {
                        principal: st(&a.principal),
                        host: st(&a.host),
                        operation: AclOperation::from_code(a.operation),
                        permission_type: AclPermissionType::from_code(a.permission_type),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn create_req_to_domain(k: CreateAclsRequest) -> d::CreateAclsRequest {
    d::CreateAclsRequest {
        creations: (k.creations.iter())
            .map(|c| d::AclBinding {
                resource_type: ResourceType::from_code(c.resource_type),
                resource_name: st(&c.resource_name),
                pattern_type: PatternType::from_code(c.resource_pattern_type),
                principal: st(&c.principal),
                host: st(&c.host),
                operation: AclOperation::from_code(c.operation),
                permission_type: AclPermissionType::from_code(c.permission_type),
            })
            .collect(),
    }
}

pub(super) fn create_req_from_domain(x: &d::CreateAclsRequest) -> CreateAclsRequest {
    let creations = (x.creations.iter())
        .map(|b| {
            car::AclCreation::default()
                .with_resource_type(b.resource_type.code())
                .with_resource_name(sb(&b.resource_name))
                .with_resource_pattern_type(b.pattern_type.code())
                .with_principal(sb(&b.principal))
                .with_host(sb(&b.host))
                .with_operation(b.operation.code())
                .with_permission_type(b.permission_type.code())
        })
        .collect();
    CreateAclsRequest::default().with_creations(creations)
}

pub(super) fn create_resp_from_domain(x: &d::CreateAclsResponse) -> CreateAclsResponse {
    let results = (x.results.iter())
        .map(|r| {
            cas::AclCreationResult::default()
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
        })
        .collect();
    CreateAclsResponse::default()
        .with_throttle_time_ms(x.throttle_time_ms)
        .with_results(results)
}

pub(super) fn create_resp_to_domain(k: CreateAclsResponse) -> d::CreateAclsResponse {
    d::CreateAclsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: (k.results.iter())
            .map(|r| d::AclResult {
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
            })
            .collect(),
    }
}

pub(super) fn delete_req_to_domain(k: DeleteAclsRequest) -> d::DeleteAclsRequest {
    d::DeleteAclsRequest {
        filters: (k.filters.iter())
            .map(|f| d::AclFilter {
                resource_type: ResourceType::from_code(f.resource_type_filter),
                resource_name: ost(&f.resource_name_filter),
                pattern_type: PatternType::from_code(f.pattern_type_filter),
                principal: ost(&f.principal_filter),
                host: ost(&f.host_filter),
                operation: AclOperation::from_code(f.operation),
                permission_type: AclPermissionType::from_code(f.permission_type),
            })
            .collect(),
    }
}

pub(super) fn delete_req_from_domain(x: &d::DeleteAclsRequest) -> DeleteAclsRequest {
    let filters = (x.filters.iter())
        .map(|f| {
            dar::DeleteAclsFilter::default()
                .with_resource_type_filter(f.resource_type.code())
                .with_resource_name_filter(osb(&f.resource_name))
                .with_pattern_type_filter(f.pattern_type.code())
                .with_principal_filter(osb(&f.principal))
                .with_host_filter(osb(&f.host))
                .with_operation(f.operation.code())
                .with_permission_type(f.permission_type.code())
        })
        .collect();
    DeleteAclsRequest::default().with_filters(filters)
}

pub(super) fn delete_resp_from_domain(x: &d::DeleteAclsResponse) -> DeleteAclsResponse {
    let filter_results = (x.filter_results.iter())
        .map(|r| {
            let matching = (r.matching_acls.iter())
                .map(|m| {
                    let b = &m.acl;
                    das::DeleteAclsMatchingAcl::default()
                        .with_error_code(m.error.0)
                        .with_error_message(osb(&m.error_message))
                        .with_resource_type(b.resource_type.code())
                        .with_resource_name(sb(&b.resource_name))
                        .with_pattern_type(b.pattern_type.code())
                        .with_principal(sb(&b.principal))
                        .with_host(sb(&b.host))
                        .with_operation(b.operation.code())
                        .with_permission_type(b.permission_type.code())
                })
                .collect();
            das::DeleteAclsFilterResult::default()
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
                .with_matching_acls(matching)
        })
        .collect();
    DeleteAclsResponse::default()
        .with_throttle_time_ms(x.throttle_time_ms)
        .with_filter_results(filter_results)
}

pub(super) fn delete_resp_to_domain(k: DeleteAclsResponse) -> d::DeleteAclsResponse {
    d::DeleteAclsResponse {
        throttle_time_ms: k.throttle_time_ms,
        filter_results: (k.filter_results.iter())
            .map(|r| d::DeleteAclsFilterResult {
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
                matching_acls: (r.matching_acls.iter())
                    .map(|m| d::DeleteAclsMatchingAcl {
                        error: ErrorCode(m.error_code),
                        error_message: ost(&m.error_message),
                        acl: d::AclBinding {
                            resource_type: ResourceType::from_code(m.resource_type),
                            resource_name: st(&m.resource_name),
                            pattern_type: PatternType::from_code(m.pattern_type),
                            principal: st(&m.principal),
                            host: st(&m.host),
                            operation: AclOperation::from_code(m.operation),
                            permission_type: AclPermissionType::from_code(m.permission_type),
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}
