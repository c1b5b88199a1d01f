//! The admin client's ACL calls (Kafka's `Admin.createAcls`, `describeAcls`, `deleteAcls`,
//! what `kafka-acls.sh` uses): CreateAcls, DescribeAcls and DeleteAcls, sent to the
//! controller (ACLs are cluster metadata; any broker may forward them, the controller
//! always answers).
//!
//! The types are weir-wire's (`weir_wire::domain::acl`), re-exported here so callers need
//! no second import path.

use weir_runtime::Runtime;
pub use weir_wire::domain::acl::{
    AclBinding, AclDescription, AclFilter, AclOperation, AclPermissionType, AclResource,
    PatternType, ResourceType,
};
use weir_wire::domain::acl::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use weir_wire::domain::{ApiRequest, ApiResponse};

use crate::admin::Admin;
use crate::driver::cluster::unexpected;
use crate::error::ClientError;

/// Kafka's name of the one cluster resource (`kafka-acls.sh --cluster`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

impl<R: Runtime> Admin<R> {
    /// Create `bindings`. Fails with the first binding the broker refused (the others in
    /// the same request may have been created, as with Kafka's `createAcls`).
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ClientError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let request = ApiRequest::CreateAcls(CreateAclsRequest {
            creations: bindings.clone(),
        });
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::CreateAcls(response) => response,
            other => return Err(unexpected("CreateAcls", &other)),
        };
        if response.results.len() != bindings.len() {
            return Err(ClientError::Protocol(format!(
                "CreateAcls answered {} results for {} creations",
                response.results.len(),
                bindings.len()
            )));
        }
        for (binding, result) in bindings.iter().zip(response.results) {
            if !result.error.is_ok() {
                return Err(ClientError::Kafka {
                    code: result.error,
                    context: format!("CreateAcls {}", describe_binding(binding)),
                    message: result.error_message,
                });
            }
        }
        Ok(())
    }

    /// The ACLs matching `filter`, grouped by resource pattern.
    pub async fn describe_acls(&self, filter: AclFilter) -> Result<Vec<AclResource>, ClientError> {
        let request = ApiRequest::DescribeAcls(DescribeAclsRequest { filter });
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::DescribeAcls(response) => response,
            other => return Err(unexpected("DescribeAcls", &other)),
        };
        if !response.error.is_ok() {
            return Err(ClientError::Kafka {
                code: response.error,
                context: "DescribeAcls".into(),
                message: response.error_message,
            });
        }
        Ok(response.resources)
    }

    /// Delete every ACL matching one of `filters`; returns the ACLs deleted. Fails with the
    /// first filter or ACL the broker refused.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<AclBinding>, ClientError> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let count = filters.len();
        let request = ApiRequest::DeleteAcls(DeleteAclsRequest { filters });
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::DeleteAcls(response) => response,
            other => return Err(unexpected("DeleteAcls", &other)),
        };
        if response.filter_results.len() != count {
            return Err(ClientError::Protocol(format!(
                "DeleteAcls answered {} results for {count} filters",
                response.filter_results.len()
            )));
        }
        let mut deleted = Vec::new();
        for result in response.filter_results {
            if !result.error.is_ok() {
                return Err(ClientError::Kafka {
                    code: result.error,
                    context: "DeleteAcls".into(),
                    message: result.error_message,
                });
            }
            for matching in result.matching_acls {
                if !matching.error.is_ok() {
                    return Err(ClientError::Kafka {
                        code: matching.error,
                        context: format!("DeleteAcls {}", describe_binding(&matching.acl)),
                        message: matching.error_message,
                    });
                }
                deleted.push(matching.acl);
            }
        }
        Ok(deleted)
    }
}

/// A binding as Kafka prints it in errors: `(pattern, entry)`.
fn describe_binding(binding: &AclBinding) -> String {
    format!(
        "{} {}:{} {} {} {} from {}",
        binding.permission_type,
        binding.resource_type,
        binding.resource_name,
        binding.pattern_type,
        binding.operation,
        binding.principal,
        binding.host
    )
}
