//! v3 ACLs: `GET`, `POST` and `DELETE /v3/clusters/{cluster_id}/acls`, through the
//! broker's DescribeAcls, CreateAcls and DeleteAcls (created and deleted on the active
//! controller, as for `kafka-acls`), acting as the caller: only a principal the broker lets
//! alter the cluster changes ACLs.
//!
//! Filters come from the query string (`resource_type`, `resource_name`, `pattern_type`,
//! `principal`, `host`, `operation`, `permission`); a missing one matches anything. Names
//! are Kafka's (`TOPIC`, `PREFIXED`, `DESCRIBE_CONFIGS`, `ALLOW`, ...), case-insensitive.

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use weir_runtime::Runtime;
use weir_wire::domain::acl::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, CreateAclsRequest, DeleteAclsRequest,
    DescribeAclsRequest, PatternType, ResourceType,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

use super::error::RestError;
use super::{unexpected, Rest};
use crate::storage::StorageDriver;

/// An ACL's fields as Confluent names them (query string or body).
#[derive(Debug, Deserialize, Default)]
pub struct AclFields {
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    resource_name: Option<String>,
    #[serde(default)]
    pattern_type: Option<String>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    permission: Option<String>,
}

/// Parse one enum field; `None` when absent, 400 when not one of Kafka's names.
fn parse_field<T>(
    value: Option<&str>,
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, RestError> {
    match value {
        None => Ok(None),
        Some(text) => parse(text)
            .map(Some)
            .ok_or_else(|| RestError::bad_request(format!("{field} {text:?} is not valid"))),
    }
}

impl AclFields {
    fn filter(&self) -> Result<AclFilter, RestError> {
        Ok(AclFilter {
            resource_type: parse_field(
                self.resource_type.as_deref(),
                "resource_type",
                ResourceType::parse,
            )?
            .unwrap_or(ResourceType::Any),
            resource_name: self.resource_name.clone(),
            pattern_type: parse_field(
                self.pattern_type.as_deref(),
                "pattern_type",
                PatternType::parse,
            )?
            .unwrap_or(PatternType::Any),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: parse_field(self.operation.as_deref(), "operation", AclOperation::parse)?
                .unwrap_or(AclOperation::Any),
            permission_type: parse_field(
                self.permission.as_deref(),
                "permission",
                AclPermissionType::parse,
            )?
            .unwrap_or(AclPermissionType::Any),
        })
    }

    fn binding(&self) -> Result<AclBinding, RestError> {
        let required = |value: &Option<String>, field: &str| {
            value
                .clone()
                .ok_or_else(|| RestError::bad_request(format!("{field} is required")))
        };
        let filter = self.filter()?;
        Ok(AclBinding {
            resource_type: filter.resource_type,
            resource_name: required(&self.resource_name, "resource_name")?,
            pattern_type: match self.pattern_type {
                Some(_) => filter.pattern_type,
                None => PatternType::Literal,
            },
            principal: required(&self.principal, "principal")?,
            host: self.host.clone().unwrap_or_else(|| "*".to_owned()),
            operation: filter.operation,
            permission_type: filter.permission_type,
        })
    }
}

fn acl_json(base: &str, id: &str, acl: &AclBinding) -> Value {
    json!({
        "kind": "KafkaAcl",
        "metadata": {"self": format!(
            "{base}/v3/clusters/{id}/acls?resource_type={}&resource_name={}&pattern_type={}\
             &principal={}&host={}&operation={}&permission={}",
            acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.host,
            acl.operation, acl.permission_type
        )},
        "cluster_id": id,
        "resource_type": acl.resource_type.name(),
        "resource_name": acl.resource_name,
        "pattern_type": acl.pattern_type.name(),
        "principal": acl.principal,
        "host": acl.host,
        "operation": acl.operation.name(),
        "permission": acl.permission_type.name(),
    })
}

fn check_error(error: ErrorCode, message: Option<String>) -> Result<(), RestError> {
    if error == ErrorCode::NONE {
        return Ok(());
    }
    Err(RestError::kafka(error, message.unwrap_or_default()))
}

/// `GET /v3/clusters/{cluster_id}/acls?...`.
pub async fn list<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
    Query(fields): Query<AclFields>,
) -> Result<Json<Value>, RestError> {
    let id = state.cluster_id(&cluster_id).await?;
    let request = ApiRequest::DescribeAcls(DescribeAclsRequest {
        filter: fields.filter()?,
    });
    let ApiResponse::DescribeAcls(answer) = state.admin(request).await? else {
        return Err(unexpected("DescribeAcls"));
    };
    check_error(answer.error, answer.error_message)?;
    let mut data = Vec::new();
    for resource in answer.resources {
        for acl in resource.acls {
            let binding = AclBinding {
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                pattern_type: resource.pattern_type,
                principal: acl.principal,
                host: acl.host,
                operation: acl.operation,
                permission_type: acl.permission_type,
            };
            data.push(acl_json(&state.base, &id, &binding));
        }
    }
    Ok(Json(json!({
        "kind": "KafkaAclList",
        "metadata": {"self": format!("{}/v3/clusters/{id}/acls", state.base), "next": null},
        "data": data,
    })))
}

/// `POST /v3/clusters/{cluster_id}/acls` with one ACL: 201.
pub async fn create<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, RestError> {
    let fields: AclFields = super::v3::json_body(&body.map_err(super::records::body_error)?)?;
    state.cluster_id(&cluster_id).await?;
    let request = ApiRequest::CreateAcls(CreateAclsRequest {
        creations: vec![fields.binding()?],
    });
    let ApiResponse::CreateAcls(answer) = state.admin(request).await? else {
        return Err(unexpected("CreateAcls"));
    };
    for result in answer.results {
        check_error(result.error, result.error_message)?;
    }
    Ok(StatusCode::CREATED)
}

/// `DELETE /v3/clusters/{cluster_id}/acls?...`: the ACLs the filter matched and deleted.
pub async fn delete<R: Runtime, S: StorageDriver>(
    state: Rest<R, S>,
    Path(cluster_id): Path<String>,
    Query(fields): Query<AclFields>,
) -> Result<Json<Value>, RestError> {
    let id = state.cluster_id(&cluster_id).await?;
    let request = ApiRequest::DeleteAcls(DeleteAclsRequest {
        filters: vec![fields.filter()?],
    });
    let ApiResponse::DeleteAcls(answer) = state.admin(request).await? else {
        return Err(unexpected("DeleteAcls"));
    };
    let mut data = Vec::new();
    for result in answer.filter_results {
        check_error(result.error, result.error_message)?;
        for matched in result.matching_acls {
            check_error(matched.error, matched.error_message)?;
            data.push(acl_json(&state.base, &id, &matched.acl));
        }
    }
    Ok(Json(json!({"data": data})))
}
