//! The REST proxy: Confluent's REST API (v3, and v2's consumer API) served by the broker
//! itself on the HTTP platform ([`crate::http`]). Every handler acts as its [`Caller`]
//! through the broker's own request paths (the caller's router into the node loop), so
//! ACLs, produce, fetch, groups and admin behave exactly as for a Kafka client.

use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json};
use serde_json::{json, Value};
use weir_runtime::Runtime;
use weir_wire::domain::{ApiRequest, ApiResponse, MetadataRequest, MetadataResponse};

use crate::http::{Caller, HttpError, Peer, PlatformState};
use crate::storage::StorageDriver;

/// The REST proxy's routes.
pub fn routes<R: Runtime, S: StorageDriver>() -> axum::Router<PlatformState<R, S>> {
    axum::Router::new()
        .route("/v3/clusters", get(list_clusters::<R, S>))
        .route("/v3/clusters/{cluster_id}", get(get_cluster::<R, S>))
}

/// The `http(s)://host` this request reached, for `metadata.self` links.
fn base_url(headers: &HeaderMap, peer: &Peer) -> String {
    let host = (headers.get(HOST))
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("localhost");
    let scheme = if peer.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The cluster as the caller's broker session sees it (a Metadata request, no topics).
async fn metadata<R: Runtime>(caller: &Caller<R>) -> Result<MetadataResponse, HttpError> {
    let request = ApiRequest::Metadata(MetadataRequest {
        topics: Some(Vec::new()),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    });
    let answer = (caller.router().local().call(request).await)
        .map_err(|_| HttpError::unavailable("the broker is stopping"))?;
    match answer {
        ApiResponse::Metadata(response) => Ok(response),
        _ => Err(HttpError::internal("unexpected answer to Metadata")),
    }
}

fn cluster_json(base: &str, metadata: &MetadataResponse) -> Value {
    let id = metadata.cluster_id.clone().unwrap_or_default();
    let cluster = format!("{base}/v3/clusters/{id}");
    let related = |path: &str| json!({ "related": format!("{cluster}/{path}") });
    let controller = (metadata.controller_id >= 0)
        .then(|| related(&format!("brokers/{}", metadata.controller_id)));
    json!({
        "kind": "KafkaCluster",
        "metadata": {
            "self": cluster,
            "resource_name": format!("crn:///kafka={id}"),
        },
        "cluster_id": id,
        "controller": controller,
        "acls": related("acls"),
        "brokers": related("brokers"),
        "broker_configs": related("broker-configs"),
        "consumer_groups": related("consumer-groups"),
        "topics": related("topics"),
        "partition_reassignments": related("topics/-/partitions/-/reassignment"),
    })
}

async fn list_clusters<R: Runtime, S: StorageDriver>(
    State(_platform): State<PlatformState<R, S>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    caller: Caller<R>,
) -> Result<Json<Value>, HttpError> {
    let base = base_url(&headers, &peer);
    let metadata = metadata(&caller).await?;
    Ok(Json(json!({
        "kind": "KafkaClusterList",
        "metadata": { "self": format!("{base}/v3/clusters"), "next": null },
        "data": [cluster_json(&base, &metadata)],
    })))
}

async fn get_cluster<R: Runtime, S: StorageDriver>(
    State(_platform): State<PlatformState<R, S>>,
    Extension(peer): Extension<Peer>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    caller: Caller<R>,
) -> Result<Json<Value>, HttpError> {
    let base = base_url(&headers, &peer);
    let metadata = metadata(&caller).await?;
    if metadata.cluster_id.as_deref() != Some(cluster_id.as_str()) {
        return Err(cluster_not_found(&cluster_id));
    }
    Ok(Json(cluster_json(&base, &metadata)))
}

/// Confluent's answer for a cluster id that is not this cluster's.
pub fn cluster_not_found(cluster_id: &str) -> HttpError {
    HttpError::new(
        axum::http::StatusCode::NOT_FOUND,
        404,
        format!("Cluster {cluster_id} cannot be found."),
    )
}
