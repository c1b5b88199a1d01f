//! The handlers against the in-memory log: Confluent's answers for every endpoint,
//! the error codes of bad input, and replays of the records they wrote.

use axum::http::Method;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::log::mem::{compacted, replay, MemLog};

struct Api {
    log: Arc<MemLog>,
}

impl Api {
    fn new() -> Api {
        Api {
            log: Arc::new(MemLog::default()),
        }
    }

    async fn call_as(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        content_type: &str,
    ) -> (u16, Value) {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let body = body.map_or_else(String::new, |body| body.to_string());
        let request = request
            .body(axum::body::Body::from(body))
            .expect("valid request");
        let response = routes::<MemLog>()
            .with_state(self.log.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        assert_eq!(
            content_type.as_ref().map(|v| v.as_bytes()),
            Some(CONTENT_TYPE.as_bytes()),
            "{uri}"
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(method, uri, body, CONTENT_TYPE).await
    }

    async fn get(&self, uri: &str) -> (u16, Value) {
        self.call(Method::GET, uri, None).await
    }

    async fn register(&self, subject: &str, body: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/subjects/{subject}/versions"),
            Some(body),
        )
        .await
    }

    /// The store rebuilt from the log, and from the log compacted: both must equal the
    /// live store.
    fn assert_replays(&self) {
        let records = self.log.records.lock().expect("lock").clone();
        let live = self.log.store().read().expect("lock").describe();
        assert_eq!(replay(&records).describe(), live);
        assert_eq!(replay(&compacted(&records)).describe(), live);
    }
}

fn avro(fields: &str) -> Value {
    json!({"schema": format!(r#"{{"type":"record","name":"User","fields":[{fields}]}}"#)})
}

const NAME: &str = r#"{"name":"name","type":"string"}"#;
const AGE: &str = r#"{"name":"age","type":"int"}"#;
const AGE_DEFAULT: &str = r#"{"name":"age","type":"int","default":0}"#;

fn error_code(value: &Value) -> u64 {
    value["error_code"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn register_and_read_back() {
    // Goal: the read endpoints answer what registration stored, in Confluent's shapes;
    // identical schemas share one id across subjects. Method: register, then read.
    let api = Api::new();
    assert_eq!(
        api.register("users-value", avro(NAME)).await,
        (200, json!({"id": 1}))
    );
    // Same schema, other layout: same id, no new version.
    let spaced = format!("{{ \"type\" : \"record\", \"name\": \"User\", \"fields\": [ {NAME} ] }}");
    let spaced = json!({ "schema": spaced });
    assert_eq!(
        api.register("users-value", spaced).await,
        (200, json!({"id": 1}))
    );
    assert_eq!(
        api.register("other-value", avro(NAME)).await,
        (200, json!({"id": 1}))
    );
    let v2 = avro(&format!("{NAME},{AGE_DEFAULT}"));
    assert_eq!(
        api.register("users-value", v2.clone()).await,
        (200, json!({"id": 2}))
    );

    assert_eq!(
        api.get("/subjects").await,
        (200, json!(["other-value", "users-value"]))
    );
    assert_eq!(
        api.get("/subjects?subjectPrefix=users").await,
        (200, json!(["users-value"]))
    );
    assert_eq!(
        api.get("/subjects/users-value/versions").await,
        (200, json!([1, 2]))
    );
    let (status, latest) = api.get("/subjects/users-value/versions/latest").await;
    assert_eq!(status, 200);
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], 2);
    assert_eq!(latest["subject"], "users-value");
    assert!(
        latest.get("schemaType").is_none(),
        "AVRO is implied: {latest}"
    );
    let stored: Value =
        serde_json::from_str(latest["schema"].as_str().unwrap_or("")).expect("json");
    assert_eq!(stored["fields"][1]["default"], 0);
    let (status, raw) = api.get("/subjects/users-value/versions/1/schema").await;
    assert_eq!(status, 200);
    assert_eq!(raw["name"], "User");
    let (status, by_id) = api.get("/schemas/ids/1").await;
    assert_eq!(status, 200);
    assert!(
        by_id["schema"].as_str().is_some_and(|s| s.contains("User")),
        "{by_id}"
    );
    assert_eq!(
        api.get("/schemas/ids/1/subjects").await,
        (200, json!(["other-value", "users-value"]))
    );
    assert_eq!(
        api.get("/schemas/ids/1/versions").await,
        (
            200,
            json!([
                {"subject": "other-value", "version": 1},
                {"subject": "users-value", "version": 1}
            ])
        )
    );
    assert_eq!(
        api.get("/schemas/types").await,
        (200, json!(["JSON", "PROTOBUF", "AVRO"]))
    );
    let (status, found) = api
        .call(Method::POST, "/subjects/users-value", Some(v2))
        .await;
    assert_eq!(
        (status, found["version"].clone(), found["id"].clone()),
        (200, json!(2), json!(2))
    );
    // The same Protobuf file in another layout, in another subject: the same id, and the
    // subject exists with the registered text.
    let proto = |text: &str| json!({"schema": text, "schemaType": "PROTOBUF"});
    let compact = "syntax = \"proto3\"; message A { int32 x = 1; }";
    let spaced = "syntax = \"proto3\";\n\n// a comment\nmessage A {\n  int32 x = 1;\n}\n";
    assert_eq!(
        api.register("p1", proto(compact)).await,
        (200, json!({"id": 3}))
    );
    assert_eq!(
        api.register("p2", proto(spaced)).await,
        (200, json!({"id": 3}))
    );
    let (status, p2) = api.get("/subjects/p2/versions/1").await;
    assert_eq!(
        (status, p2["id"].clone(), p2["schema"].clone()),
        (200, json!(3), json!(compact))
    );
    api.assert_replays();
}

#[tokio::test]
async fn not_found_and_invalid_input() {
    // Goal: every kind of bad request gets Confluent's error code and status, and the
    // registry keeps serving. Method: one request per error.
    let api = Api::new();
    api.register("s", avro(NAME)).await;
    let cases: Vec<(Method, &str, Option<Value>, u16, u64)> = vec![
        (Method::GET, "/subjects/nope/versions", None, 404, 40401),
        (Method::GET, "/subjects/s/versions/7", None, 404, 40402),
        (Method::GET, "/schemas/ids/99", None, 404, 40403),
        (Method::GET, "/schemas/ids/abc", None, 404, 40403),
        (Method::POST, "/subjects/s", Some(avro(AGE)), 404, 40403),
        (Method::GET, "/subjects/s/versions/abc", None, 422, 42202),
        (Method::GET, "/subjects/s/versions/0", None, 422, 42202),
        (
            Method::POST,
            "/subjects/s/versions",
            Some(json!({"schema": "{\"type\": \"nope\"}"})),
            422,
            42201,
        ),
        (
            Method::POST,
            "/subjects/s/versions",
            Some(json!({"schema": "{", "schemaType": "JSON"})),
            422,
            42201,
        ),
        (
            Method::POST,
            "/subjects/s/versions",
            Some(json!({"schema": "x", "schemaType": "XML"})),
            422,
            42201,
        ),
        (
            Method::POST,
            "/subjects/s/versions",
            Some(json!({"nothing": 1})),
            422,
            422,
        ),
        (
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "SIDEWAYS"})),
            422,
            42203,
        ),
        (
            Method::PUT,
            "/mode",
            Some(json!({"mode": "FAST"})),
            422,
            42204,
        ),
        (Method::GET, "/config/s", None, 404, 40408),
        (Method::GET, "/mode/s", None, 404, 40409),
        (Method::GET, "/no/such/route", None, 404, 404),
        (Method::DELETE, "/schemas/types", None, 405, 405),
    ];
    for (method, uri, body, status, code) in cases {
        let (got_status, got) = api.call(method, uri, body).await;
        assert_eq!(
            (got_status, error_code(&got)),
            (status, code),
            "{uri}: {got}"
        );
        assert!(
            got["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{uri}: {got}"
        );
    }
    let (status, got) = api
        .call_as(
            Method::POST,
            "/subjects/s/versions",
            Some(avro(NAME)),
            "text/plain",
        )
        .await;
    assert_eq!((status, error_code(&got)), (415, 415));
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/subjects/s/versions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from("{not json"))
        .expect("request");
    let response = routes::<MemLog>()
        .with_state(api.log.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/subjects").await, (200, json!(["s"])));
}

#[tokio::test]
async fn compatibility_levels_gate_registration() {
    // Goal: BACKWARD (default) refuses a field without default, with a 409 naming the
    // field; the compatibility endpoint says the same; NONE lets it through. Method:
    // register v1, try v2, change the subject's level.
    let api = Api::new();
    api.register("s", avro(NAME)).await;
    let v2 = avro(&format!("{NAME},{AGE}"));
    let (status, refused) = api.register("s", v2.clone()).await;
    assert_eq!((status, error_code(&refused)), (409, 409), "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("age")),
        "{refused}"
    );
    let (status, check) = api
        .call(
            Method::POST,
            "/compatibility/subjects/s/versions/latest?verbose=true",
            Some(v2.clone()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(check["is_compatible"], false);
    assert!(
        check["messages"][0]
            .as_str()
            .is_some_and(|m| m.contains("age")),
        "{check}"
    );
    let ok = avro(&format!("{NAME},{AGE_DEFAULT}"));
    let (_, check) = api
        .call(Method::POST, "/compatibility/subjects/s/versions", Some(ok))
        .await;
    assert_eq!(check, json!({"is_compatible": true}));

    let none = Some(json!({"compatibility": "NONE"}));
    assert_eq!(
        api.call(Method::PUT, "/config/s", none).await,
        (200, json!({"compatibility": "NONE"}))
    );
    assert_eq!(
        api.get("/config/s").await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(api.register("s", v2).await, (200, json!({"id": 2})));
    assert_eq!(
        api.call(Method::DELETE, "/config/s", None).await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_eq!(error_code(&api.get("/config/s").await.1), 40408);
    api.assert_replays();
}

#[tokio::test]
async fn soft_then_permanent_deletes_and_ids_never_reused() {
    // Goal: Confluent's two-step deletes with their error codes, and an id freed by a
    // permanent delete is never handed out again, even from a compacted log. Method:
    // delete versions and subjects in each order, then register a new schema.
    let api = Api::new();
    api.register("s", avro(NAME)).await;
    api.register("s", avro(&format!("{NAME},{AGE_DEFAULT}")))
        .await;
    let version_2 = "/subjects/s/versions/2";
    assert_eq!(
        error_code(
            &api.call(Method::DELETE, &format!("{version_2}?permanent=true"), None)
                .await
                .1
        ),
        40407
    );
    assert_eq!(
        api.call(Method::DELETE, version_2, None).await,
        (200, json!(2))
    );
    assert_eq!(
        error_code(&api.call(Method::DELETE, version_2, None).await.1),
        40406
    );
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([1])));
    assert_eq!(
        api.get("/subjects/s/versions?deleted=true").await,
        (200, json!([1, 2]))
    );
    assert_eq!(api.get(&format!("{version_2}?deleted=true")).await.0, 200);
    assert_eq!(
        api.call(Method::DELETE, &format!("{version_2}?permanent=true"), None)
            .await,
        (200, json!(2))
    );
    assert_eq!(api.get("/schemas/ids/2").await.0, 404);

    assert_eq!(
        error_code(
            &api.call(Method::DELETE, "/subjects/s?permanent=true", None)
                .await
                .1
        ),
        40405
    );
    assert_eq!(
        api.call(Method::DELETE, "/subjects/s", None).await,
        (200, json!([1]))
    );
    assert_eq!(
        error_code(&api.call(Method::DELETE, "/subjects/s", None).await.1),
        40404
    );
    assert_eq!(api.get("/subjects").await, (200, json!([])));
    assert_eq!(api.get("/subjects?deleted=true").await, (200, json!(["s"])));
    assert_eq!(
        api.call(Method::DELETE, "/subjects/s?permanent=true", None)
            .await,
        (200, json!([1]))
    );
    assert_eq!(
        error_code(&api.call(Method::DELETE, "/subjects/s", None).await.1),
        40401
    );
    api.assert_replays();

    assert_eq!(api.register("t", avro(AGE)).await, (200, json!({"id": 3})));
    let records = api.log.records.lock().expect("lock").clone();
    assert_eq!(replay(&compacted(&records)).next_id(), 4);
}

#[tokio::test]
async fn modes_guard_writes() {
    // Goal: READONLY refuses writes with 42205, IMPORT takes ids from the request and
    // only on an empty registry unless forced. Method: switch modes and register.
    let api = Api::new();
    let mode = |m: &str| Some(json!({"mode": m}));
    assert_eq!(
        api.call(Method::PUT, "/mode", mode("IMPORT")).await,
        (200, json!({"mode": "IMPORT"}))
    );
    let mut imported = avro(NAME);
    imported["id"] = json!(42);
    imported["version"] = json!(3);
    assert_eq!(api.register("s", imported).await, (200, json!({"id": 42})));
    assert_eq!(error_code(&api.register("s", avro(AGE)).await.1), 42205);
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([3])));
    assert_eq!(
        api.call(Method::PUT, "/mode", mode("READONLY")).await.0,
        200
    );
    assert_eq!(error_code(&api.register("s", avro(AGE)).await.1), 42205);
    assert_eq!(
        error_code(&api.call(Method::DELETE, "/subjects/s", None).await.1),
        42205
    );
    assert_eq!(
        api.call(Method::PUT, "/mode/s", mode("READWRITE")).await.0,
        200
    );
    assert_eq!(
        api.get("/mode/s").await,
        (200, json!({"mode": "READWRITE"}))
    );
    assert_eq!(
        api.register("s", avro(&format!("{NAME},{AGE_DEFAULT}")))
            .await,
        (200, json!({"id": 43}))
    );
    assert_eq!(api.call(Method::PUT, "/mode", mode("IMPORT")).await.0, 422);
    assert_eq!(
        api.call(Method::PUT, "/mode?force=true", mode("IMPORT"))
            .await
            .0,
        200
    );
    api.assert_replays();
}

#[tokio::test]
async fn references_across_subjects() {
    // Goal: a schema may reference another subject's version; an unknown reference is
    // 42201 and a referenced version cannot be deleted (42206). Method: Avro record
    // using a named type from another subject, and a Protobuf import.
    let api = Api::new();
    let address = r#"{"type":"record","name":"Address","namespace":"demo",
        "fields":[{"name":"city","type":"string"}]}"#;
    assert_eq!(
        api.register("address", json!({"schema": address})).await,
        (200, json!({"id": 1}))
    );
    let user = json!({
        "schema": r#"{"type":"record","name":"User","namespace":"demo",
            "fields":[{"name":"home","type":"demo.Address"}]}"#,
        "references": [{"name": "demo.Address", "subject": "address", "version": 1}],
    });
    assert_eq!(
        api.register("user", user.clone()).await,
        (200, json!({"id": 2}))
    );
    let (_, got) = api.get("/subjects/user/versions/1").await;
    assert_eq!(got["references"][0]["subject"], "address");
    assert_eq!(
        api.get("/subjects/address/versions/1/referencedby").await,
        (200, json!([2]))
    );
    assert_eq!(
        error_code(
            &api.call(Method::DELETE, "/subjects/address/versions/1", None)
                .await
                .1
        ),
        42206
    );
    let mut dangling = user;
    dangling["references"][0]["version"] = json!(9);
    assert_eq!(error_code(&api.register("user", dangling).await.1), 42201);

    let common = "syntax = \"proto3\"; package demo; message Money { int64 units = 1; }";
    let body = json!({"schema": common, "schemaType": "PROTOBUF"});
    assert_eq!(api.register("money", body).await, (200, json!({"id": 3})));
    let order = json!({
        "schema": "syntax = \"proto3\"; package demo; import \"money.proto\"; \
            message Order { Money total = 1; }",
        "schemaType": "PROTOBUF",
        "references": [{"name": "money.proto", "subject": "money", "version": 1}],
    });
    assert_eq!(api.register("order", order).await, (200, json!({"id": 4})));
    let (_, got) = api.get("/schemas/ids/4").await;
    assert_eq!(got["schemaType"], "PROTOBUF");
    api.assert_replays();
}

#[tokio::test]
async fn json_schema_registration() {
    // Goal: JSON Schema goes through the same paths with its own rules. Method: an
    // open object gets a constrained property (refused under BACKWARD), then a closed
    // one gets one (accepted).
    let api = Api::new();
    let v1 = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
    let v1 = json!({"schemaType": "JSON", "schema": v1});
    assert_eq!(api.register("j", v1).await, (200, json!({"id": 1})));
    let open = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
    let open = json!({"schemaType": "JSON", "schema": open});
    let (status, refused) = api.register("j", open).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("'b'")),
        "{refused}"
    );
    let closed = |props: &str| {
        let schema =
            format!(r#"{{"type":"object","properties":{{{props}}},"additionalProperties":false}}"#);
        json!({"schemaType": "JSON", "schema": schema})
    };
    assert_eq!(
        api.register("k", closed(r#""a":{"type":"string"}"#)).await,
        (200, json!({"id": 2}))
    );
    let wider = closed(r#""a":{"type":"string"},"b":{"type":"integer"}"#);
    assert_eq!(api.register("k", wider).await, (200, json!({"id": 3})));
}

#[tokio::test]
async fn json_schema_references_are_resolved_for_compatibility() {
    // Goal: a JSON Schema `$ref` to another subject's schema (named in `references`) is
    // followed by the compatibility check. Method: v1 refers to an address schema that
    // allows any city; v2 refers to one that limits its length, which BACKWARD refuses
    // (maxLength added), naming the referenced property.
    let api = Api::new();
    let json = |schema: &str| json!({"schemaType": "JSON", "schema": schema});
    let open = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;
    let short = r#"{"type":"object","properties":{"city":{"type":"string","maxLength":3}}}"#;
    assert_eq!(
        api.register("address", json(open)).await,
        (200, json!({"id": 1}))
    );
    assert_eq!(
        api.register("address-short", json(short)).await,
        (200, json!({"id": 2}))
    );
    let person = |subject: &str| {
        json!({
            "schemaType": "JSON",
            "schema": r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#,
            "references": [{"name": "address.json", "subject": subject, "version": 1}],
        })
    };
    assert_eq!(
        api.register("person", person("address")).await,
        (200, json!({"id": 3}))
    );
    let (status, refused) = api.register("person", person("address-short")).await;
    assert_eq!(status, 409, "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("maxLength") && message.contains("city"),
        "{refused}"
    );
    api.assert_replays();
}

#[tokio::test]
async fn raw_schema_by_id_is_the_bare_schema_string() {
    // Goal: GET /schemas/ids/{id}/schema answers the schema text itself, not wrapped in
    // {"schema": ...}, for JSON-shaped (Avro) and plain-text (Protobuf) schemas alike;
    // an unknown id is 40403. Method: register one of each, read them back raw.
    let api = Api::new();
    assert_eq!(
        api.register("users-value", avro(NAME)).await,
        (200, json!({"id": 1}))
    );
    let (status, wrapped) = api.get("/schemas/ids/1").await;
    assert_eq!(status, 200);
    let text = wrapped["schema"].as_str().expect("schema string");
    let (status, raw) = api.get("/schemas/ids/1/schema").await;
    assert_eq!(status, 200);
    assert_eq!(raw, serde_json::from_str::<Value>(text).expect("json"));
    assert_eq!(
        raw,
        json!({"type": "record", "name": "User", "fields": [{"name": "name", "type": "string"}]})
    );
    let proto = "syntax = \"proto3\"; message A { int32 x = 1; }";
    let body = json!({"schema": proto, "schemaType": "PROTOBUF"});
    assert_eq!(api.register("p", body).await, (200, json!({"id": 2})));
    assert_eq!(api.get("/schemas/ids/2/schema").await, (200, json!(proto)));
    for uri in ["/schemas/ids/3/schema", "/schemas/ids/x/schema"] {
        let (status, got) = api.get(uri).await;
        assert_eq!((status, error_code(&got)), (404, 40403), "{uri}: {got}");
    }
}

#[tokio::test]
async fn global_config_put_then_delete_back_to_default() {
    // Goal: PUT /config changes the level registrations obey (for subjects without their
    // own), and DELETE /config answers the level it removed and restores the default,
    // BACKWARD. Method: under FORWARD, a field added without default passes and a field
    // removed without default is refused; after the delete, the reverse.
    let api = Api::new();
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        api.call(
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "FORWARD"}))
        )
        .await,
        (200, json!({"compatibility": "FORWARD"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
    assert_eq!(
        api.get("/config/s?defaultToGlobal=true").await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
    const EMAIL: &str = r#"{"name":"email","type":"string"}"#;
    assert_eq!(
        api.register("s", avro(&format!("{NAME},{AGE}"))).await,
        (200, json!({"id": 1}))
    );
    // Added without default: BACKWARD would refuse it, FORWARD accepts.
    assert_eq!(
        api.register("s", avro(&format!("{NAME},{AGE},{EMAIL}")))
            .await,
        (200, json!({"id": 2}))
    );
    // Removed without default: FORWARD refuses (version 2 cannot read it).
    let without_age = avro(&format!("{NAME},{EMAIL}"));
    let (status, refused) = api.register("s", without_age.clone()).await;
    assert_eq!((status, error_code(&refused)), (409, 409), "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("FORWARD") && m.contains("age")),
        "{refused}"
    );

    assert_eq!(
        api.call(Method::DELETE, "/config", None).await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    // Back to BACKWARD: the removal passes, an addition without default is refused.
    assert_eq!(
        api.register("s", without_age).await,
        (200, json!({"id": 3}))
    );
    let (status, refused) = api
        .register("s", avro(&format!("{NAME},{EMAIL},{AGE}")))
        .await;
    assert_eq!((status, error_code(&refused)), (409, 409), "{refused}");
    // Deleting again (nothing set) answers the default.
    assert_eq!(
        api.call(Method::DELETE, "/config", None).await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        api.get("/subjects/s/versions").await,
        (200, json!([1, 2, 3]))
    );
    api.assert_replays();
}

#[tokio::test]
async fn subject_config_overrides_global_until_deleted() {
    // Goal: PUT /config/{subject} wins over the global level for that subject only, and
    // DELETE /config/{subject} answers the level it removed, after which the global level
    // applies again; deleting a level the subject does not have is 40408. Method: global
    // NONE, subject BACKWARD; register incompatible schemas in both subjects.
    let api = Api::new();
    let level = |name: &str| Some(json!({"compatibility": name}));
    assert_eq!(
        api.call(Method::PUT, "/config", level("NONE")).await,
        (200, json!({"compatibility": "NONE"}))
    );
    assert_eq!(
        api.call(Method::PUT, "/config/s", level("BACKWARD")).await,
        (200, json!({"compatibility": "BACKWARD"}))
    );
    assert_eq!(
        api.get("/config/s").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    let (status, got) = api.get("/config/t").await;
    assert_eq!((status, error_code(&got)), (404, 40408), "{got}");
    let v1 = avro(NAME);
    let v2 = avro(&format!("{NAME},{AGE}"));
    for subject in ["s", "t"] {
        assert_eq!(
            api.register(subject, v1.clone()).await,
            (200, json!({"id": 1}))
        );
    }
    // t follows the global NONE; s its own BACKWARD.
    assert_eq!(api.register("t", v2.clone()).await, (200, json!({"id": 2})));
    let (status, refused) = api.register("s", v2.clone()).await;
    assert_eq!((status, error_code(&refused)), (409, 409), "{refused}");

    assert_eq!(
        api.call(Method::DELETE, "/config/s", None).await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    let (status, got) = api.get("/config/s").await;
    assert_eq!((status, error_code(&got)), (404, 40408), "{got}");
    assert_eq!(
        api.get("/config/s?defaultToGlobal=true").await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_eq!(api.register("s", v2).await, (200, json!({"id": 2})));
    let (status, got) = api.call(Method::DELETE, "/config/s", None).await;
    assert_eq!((status, error_code(&got)), (404, 40408), "{got}");
    api.assert_replays();
}

#[tokio::test]
async fn deleting_a_subject_mode_restores_the_global_mode() {
    // Goal: DELETE /mode/{subject} answers the mode it removed, and the subject then
    // follows the global mode again; deleting a mode the subject does not have is 40409.
    // Method: global READONLY with a READWRITE subject, register before and after.
    let api = Api::new();
    let mode = |m: &str| Some(json!({"mode": m}));
    assert_eq!(
        api.call(Method::PUT, "/mode", mode("READONLY")).await,
        (200, json!({"mode": "READONLY"}))
    );
    assert_eq!(
        api.call(Method::PUT, "/mode/s", mode("READWRITE")).await,
        (200, json!({"mode": "READWRITE"}))
    );
    assert_eq!(api.register("s", avro(NAME)).await, (200, json!({"id": 1})));
    assert_eq!(error_code(&api.register("t", avro(NAME)).await.1), 42205);

    assert_eq!(
        api.call(Method::DELETE, "/mode/s", None).await,
        (200, json!({"mode": "READWRITE"}))
    );
    let (status, got) = api.get("/mode/s").await;
    assert_eq!((status, error_code(&got)), (404, 40409), "{got}");
    assert_eq!(
        api.get("/mode/s?defaultToGlobal=true").await,
        (200, json!({"mode": "READONLY"}))
    );
    let (status, got) = api
        .register("s", avro(&format!("{NAME},{AGE_DEFAULT}")))
        .await;
    assert_eq!((status, error_code(&got)), (422, 42205), "{got}");
    let (status, got) = api.call(Method::DELETE, "/mode/s", None).await;
    assert_eq!((status, error_code(&got)), (404, 40409), "{got}");
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([1])));
    api.assert_replays();
}

#[tokio::test]
async fn forward_and_full_transitive_check_every_version() {
    // Goal: FORWARD and FULL check the new schema against the latest version only, their
    // _TRANSITIVE levels against every one. Method: v1 {a, b without default},
    // v2 {a, b default 1}, v3 {a}: v2 reads v3's data (b's default) but v1 cannot (b has
    // none), while v3 reads both v1's and v2's (b ignored). So v3 passes FORWARD and FULL,
    // and FORWARD_TRANSITIVE and FULL_TRANSITIVE refuse it naming version 1.
    let api = Api::new();
    let record = |fields: &str| {
        let schema = format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
        json!({ "schema": schema })
    };
    let a = r#"{"name":"a","type":"int"}"#;
    let v1 = record(&format!(r#"{a},{{"name":"b","type":"int"}}"#));
    let v2 = record(&format!(r#"{a},{{"name":"b","type":"int","default":1}}"#));
    let v3 = record(a);
    for (subject, level, transitive) in [
        ("forward", "FORWARD", false),
        ("forward-transitive", "FORWARD_TRANSITIVE", true),
        ("full", "FULL", false),
        ("full-transitive", "FULL_TRANSITIVE", true),
    ] {
        let body = Some(json!({"compatibility": level}));
        let uri = format!("/config/{subject}");
        assert_eq!(
            api.call(Method::PUT, &uri, body).await,
            (200, json!({"compatibility": level}))
        );
        assert_eq!(
            api.register(subject, v1.clone()).await,
            (200, json!({"id": 1}))
        );
        assert_eq!(
            api.register(subject, v2.clone()).await,
            (200, json!({"id": 2}))
        );
        let check = format!("/compatibility/subjects/{subject}/versions");
        let (status, checked) = api.call(Method::POST, &check, Some(v3.clone())).await;
        assert_eq!(
            (status, checked),
            (200, json!({"is_compatible": !transitive})),
            "{subject}"
        );
        let (status, got) = api.register(subject, v3.clone()).await;
        if transitive {
            assert_eq!((status, error_code(&got)), (409, 409), "{subject}: {got}");
            let message = got["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("version 1 cannot read")
                    && message.contains(&format!("({level})"))
                    && !message.contains("version 2"),
                "{subject}: {got}"
            );
            assert_eq!(
                api.get(&format!("/subjects/{subject}/versions")).await,
                (200, json!([1, 2]))
            );
        } else {
            assert_eq!((status, got), (200, json!({"id": 3})), "{subject}");
        }
    }
    api.assert_replays();
}
