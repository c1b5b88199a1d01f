//! The schema registry on a real broker: its REST API (weir-registry's Router) over the
//! broker's `_schemas` log (src/registry.rs), driven in-process without a socket.
//!
//! Goal: writes go through the broker's own transactional produce path and reads come back
//! from what the tail applied; `_schemas` is created compacted on first use; a restarted
//! broker replays `_schemas` into the same registry (same ids, versions, configs).
//! Method: start a fjall-backed broker in-process with the registry on, call the Router,
//! inspect `_schemas` with raw Kafka requests, restart on the same data directory.

use crate::common;

use axum::body::Body;
use axum::http::{header, Method, Request};
use common::InProcess;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use weir::config::ServerConfig;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

fn start(data_dir: &std::path::Path) -> InProcess {
    start_with(data_dir, "")
}

fn start_with(data_dir: &std::path::Path, toml: &str) -> InProcess {
    let mut config = ServerConfig::from_toml_str(toml, "test").expect("a valid config");
    config.listen = "127.0.0.1:0".to_owned();
    config.data_dir = data_dir.to_owned();
    config.gateway = None;
    config.rest_proxy = None;
    config.schema_registry = Some(weir::config::ServiceListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    InProcess::start_with(config)
}

fn call(server: &InProcess, method: Method, uri: &str, body: Option<Value>) -> (u16, Value) {
    let router = server.schema_registry().expect("the registry is on");
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, CONTENT_TYPE);
    }
    let body = body.map_or_else(String::new, |body| body.to_string());
    let request = request.body(Body::from(body)).expect("request");
    server.block_on(async move {
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    })
}

fn avro(fields: &str) -> Value {
    json!({"schema": format!(r#"{{"type":"record","name":"User","fields":[{fields}]}}"#)})
}

#[test]
fn registry_writes_through_schemas_and_survives_a_restart() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let v1 = avro(r#"{"name":"name","type":"string"}"#);
    let v2 = avro(r#"{"name":"name","type":"string"},{"name":"age","type":"int","default":0}"#);
    let bad = avro(r#"{"name":"name","type":"string"},{"name":"email","type":"string"}"#);
    {
        let server = start(data_dir.path());
        // Nothing exists before the first write.
        assert_eq!(
            call(&server, Method::GET, "/subjects", None),
            (200, json!([]))
        );
        let register = "/subjects/users-value/versions";
        assert_eq!(
            call(&server, Method::POST, register, Some(v1.clone())),
            (200, json!({"id": 1}))
        );
        assert_eq!(
            call(&server, Method::POST, register, Some(v2.clone())),
            (200, json!({"id": 2}))
        );
        assert_eq!(
            call(&server, Method::POST, register, Some(v1.clone())),
            (200, json!({"id": 1}))
        );
        let (status, refused) = call(&server, Method::POST, register, Some(bad.clone()));
        assert_eq!(status, 409, "{refused}");
        let full = Some(json!({"compatibility": "FULL"}));
        assert_eq!(
            call(&server, Method::PUT, "/config/users-value", full).0,
            200
        );
        assert_eq!(
            call(
                &server,
                Method::DELETE,
                "/subjects/users-value/versions/1",
                None
            )
            .0,
            200
        );

        // `_schemas` was created compacted, with one partition.
        let mut client = server.connect();
        let metadata = client.metadata();
        let topic = metadata
            .topics
            .iter()
            .find(|topic| topic.name.as_deref() == Some("_schemas"))
            .expect("_schemas exists");
        assert_eq!(topic.partitions.len(), 1);
        let configs = client.describe_topic_configs("_schemas");
        assert!(
            configs.iter().any(
                |(name, value)| name == "cleanup.policy" && value.as_deref() == Some("compact")
            ),
            "{configs:?}"
        );
    }
    // A restart replays `_schemas` into the same registry.
    let server = start(data_dir.path());
    // The first read waits until `_schemas` is replayed: no window where the registry
    // looks empty.
    assert_eq!(
        call(&server, Method::GET, "/subjects/users-value/versions", None),
        (200, json!([2]))
    );
    let (_, latest) = call(
        &server,
        Method::GET,
        "/subjects/users-value/versions/latest",
        None,
    );
    assert_eq!(
        (latest["id"].clone(), latest["version"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(
        call(&server, Method::GET, "/config/users-value", None),
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/subjects/users-value/versions?deleted=true",
            None
        ),
        (200, json!([1, 2]))
    );
    // Ids continue after the replayed ones, on the restarted broker's own writer.
    let v3 = avro(
        r#"{"name":"name","type":"string"},{"name":"age","type":"int","default":0},
        {"name":"nick","type":["null","string"],"default":null}"#,
    );
    let register = "/subjects/users-value/versions";
    assert_eq!(
        call(&server, Method::POST, register, Some(v3)),
        (200, json!({"id": 3}))
    );
}

#[test]
fn with_an_authorizer_the_registry_acts_as_its_own_principal() {
    // Goal: with ACLs on, the registry's `_schemas` traffic is authorized as
    // `User:__weir_schema_registry` (never as the anonymous callers): refused without a
    // grant, served once that principal is a super user. Method: two brokers with the
    // authorizer on, one with the principal in super.users; register on each.
    let v1 = avro(r#"{"name":"name","type":"string"}"#);
    let denied_dir = tempfile::tempdir().expect("temp dir");
    let denied = start_with(denied_dir.path(), "\"authorizer.class.name\" = \"weir\"\n");
    let (status, answer) = call(
        &denied,
        Method::POST,
        "/subjects/s/versions",
        Some(v1.clone()),
    );
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error_code"], 50001, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("AUTHORIZATION")),
        "{answer}"
    );

    let allowed_dir = tempfile::tempdir().expect("temp dir");
    let toml = "\"authorizer.class.name\" = \"weir\"\n\
                \"super.users\" = \"User:__weir_schema_registry\"\n";
    let allowed = start_with(allowed_dir.path(), toml);
    let register = "/subjects/s/versions";
    assert_eq!(
        call(&allowed, Method::POST, register, Some(v1)),
        (200, json!({"id": 1}))
    );
    assert_eq!(
        call(&allowed, Method::GET, "/subjects", None),
        (200, json!(["s"]))
    );
}
