//! Finding a group's coordinator and talking to it.
//!
//! Group requests must go to the broker that coordinates the group (FindCoordinator);
//! others answer NOT_COORDINATOR. The coordinator is looked up per call here: admin calls
//! are rare, and the consumer caches the answer itself and asks again after
//! NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE.

use std::time::Duration;

use weir_runtime::Runtime;
use weir_wire::domain::{coordinator_type, ApiRequest, ApiResponse, FindCoordinatorRequest};
use weir_wire::error::ErrorCode;

use crate::driver::cluster::{unexpected, Cluster};
use crate::driver::connection::Connection;
use crate::error::ClientError;

/// Where a group's coordinator lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
}

impl CoordinatorInfo {
    /// `host:port`.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Asks any broker where `group_id`'s coordinator is.
pub async fn find_coordinator<R: Runtime>(
    cluster: &Cluster<R>,
    group_id: &str,
) -> Result<CoordinatorInfo, ClientError> {
    let request = ApiRequest::FindCoordinator(FindCoordinatorRequest {
        key_type: coordinator_type::GROUP,
        keys: vec![group_id.to_owned()],
    });
    let response = match cluster.request_any(&request).await? {
        ApiResponse::FindCoordinator(response) => response,
        other => return Err(unexpected("FindCoordinator", &other)),
    };
    let Some(found) = response.coordinators.into_iter().next() else {
        return Err(ClientError::Protocol(
            "empty FindCoordinator response".into(),
        ));
    };
    if !found.error.is_ok() {
        return Err(ClientError::Kafka {
            code: found.error,
            context: format!("group {group_id}"),
            message: found.error_message,
        });
    }
    Ok(CoordinatorInfo {
        node_id: found.node_id,
        host: found.host,
        port: found.port,
    })
}

/// A connection to `group_id`'s coordinator.
pub async fn coordinator_connection<R: Runtime>(
    cluster: &Cluster<R>,
    group_id: &str,
) -> Result<Connection<R>, ClientError> {
    let coordinator = find_coordinator(cluster, group_id).await?;
    cluster.connection_at(&coordinator.address()).await
}

/// Sends `request` to `group_id`'s coordinator with the configured request timeout,
/// retrying (with a fresh lookup) while the coordinator is loading or moved, up to
/// `COORDINATOR_ATTEMPTS_MAX` attempts.
pub async fn request_coordinator<R: Runtime>(
    cluster: &Cluster<R>,
    group_id: &str,
    request: &ApiRequest,
) -> Result<ApiResponse, ClientError> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = async {
            let connection = coordinator_connection(cluster, group_id).await?;
            connection
                .request(request, cluster.config().request_timeout)
                .await
        }
        .await;
        match result {
            Err(error) if attempt < COORDINATOR_ATTEMPTS_MAX && is_coordinator_error(&error) => {
                let runtime = cluster.runtime();
                let delay = cluster
                    .config()
                    .retry_backoff
                    .max(Duration::from_millis(10));
                runtime
                    .sleep_until(runtime.now().saturating_add(delay))
                    .await;
            }
            other => return other,
        }
    }
}

/// Bound on lookups of a coordinator that is loading, moving or unreachable.
pub const COORDINATOR_ATTEMPTS_MAX: u32 = 5;

/// Errors after which the coordinator must be looked up again.
pub fn is_coordinator_error(error: &ClientError) -> bool {
    match error.code() {
        Some(code) => is_coordinator_code(code),
        None => error.is_retriable(),
    }
}

/// Kafka codes meaning "ask FindCoordinator again" (or wait for the load to finish).
pub fn is_coordinator_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}
