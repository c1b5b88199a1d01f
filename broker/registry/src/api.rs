//! Confluent's REST API as an axum Router over a `SchemaLog`: the paths, bodies, content
//! types (`application/vnd.schemaregistry.v1+json`) and error bodies
//! (`{"error_code": N, "message": ...}`) that Confluent's clients and serializers expect.
//! Reads are served from the store in memory; writes are plans (`ops`) run by the log.
//! Authentication, TLS and body size limits are the serving stack's, not this module's.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::format::{Reference, SchemaType};
use crate::log::{read, ready, SchemaLog};
use crate::ops::{self, SchemaRequest, VersionSpec};
use crate::record::Mode;
use crate::store::{SchemaContent, Store};

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types Confluent's registry accepts (and none at all).
const ACCEPTED_CONTENT_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// The longest subject name accepted (a bound on every key the store holds).
pub const SUBJECT_BYTES_MAX: usize = 1024;

/// The registry's routes, with the log as their state.
pub fn routes<L: SchemaLog>() -> Router<Arc<L>> {
    Router::new()
        .route("/", get(|| async { answer(json!({})) }))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id::<L>))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id::<L>))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id::<L>))
        .route("/schemas/ids/{id}/versions", get(versions_by_id::<L>))
        .route("/subjects", get(list_subjects::<L>))
        .route(
            "/subjects/{subject}",
            post(lookup::<L>).delete(delete_subject::<L>),
        )
        .route(
            "/subjects/{subject}/versions",
            get(list_versions::<L>).post(register::<L>),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version::<L>).delete(delete_version::<L>),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version::<L>),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by::<L>),
        )
        .route(
            "/config",
            get(get_global_config::<L>)
                .put(put_global_config::<L>)
                .delete(delete_global_config::<L>),
        )
        .route(
            "/config/{subject}",
            get(get_config::<L>)
                .put(put_config::<L>)
                .delete(delete_config::<L>),
        )
        .route("/mode", get(get_global_mode::<L>).put(put_global_mode::<L>))
        .route(
            "/mode/{subject}",
            get(get_mode::<L>)
                .put(put_mode::<L>)
                .delete(delete_mode::<L>),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::<L>),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with::<L>),
        )
        .fallback(|| async { ApiError(RegistryError::bad_request(404, "HTTP 404 Not Found")) })
        .method_not_allowed_fallback(|| async {
            ApiError(RegistryError::bad_request(
                405,
                "HTTP 405 Method Not Allowed",
            ))
        })
}

/// A registry error as Confluent's answer.
#[derive(Debug)]
pub struct ApiError(pub RegistryError);

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error_code": self.0.error_code(), "message": self.0.to_string()});
        with_content_type(status, body.to_string())
    }
}

type Answer = Result<Response, ApiError>;

fn with_content_type(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn answer<T: Serialize>(value: T) -> Response {
    match serde_json::to_string(&value) {
        Ok(body) => with_content_type(StatusCode::OK, body),
        Err(error) => ApiError(RegistryError::Store(error.to_string())).into_response(),
    }
}

/// A JSON body under one of the accepted content types: 415 otherwise, 400 when it is not
/// JSON, 422 when it does not have the expected fields.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("");
            let essence = essence.trim().to_ascii_lowercase();
            if !ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) {
                return Err(ApiError(RegistryError::bad_request(
                    415,
                    "HTTP 415 Unsupported Media Type",
                )));
            }
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError(RegistryError::bad_request(
                    rejection.status().as_u16(),
                    rejection.body_text(),
                ))
            })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
            ApiError(RegistryError::bad_request(
                400,
                format!("Invalid JSON: {error}"),
            ))
        })?;
        let body = serde_json::from_value(value).map_err(|error| {
            ApiError(RegistryError::bad_request(
                422,
                format!("Unprocessable entity: {error}"),
            ))
        })?;
        Ok(Body(body))
    }
}

type Flags = Query<BTreeMap<String, String>>;

fn flag(flags: &Flags, name: &str) -> bool {
    flags
        .get(name)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

fn subject_name(subject: String) -> Result<String, ApiError> {
    check_subject(&subject)?;
    Ok(subject)
}

/// A subject name a registration may use: 1 to [`SUBJECT_BYTES_MAX`] bytes, no control
/// characters (422 otherwise). The REST proxy's registrations check the same.
pub fn check_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty()
        || subject.len() > SUBJECT_BYTES_MAX
        || subject.chars().any(char::is_control)
    {
        return Err(RegistryError::bad_request(
            422,
            format!("Invalid subject name (1 to {SUBJECT_BYTES_MAX} bytes, no control characters)"),
        ));
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<u32, ApiError> {
    id.parse::<u32>().map_err(|_| {
        ApiError(RegistryError::SchemaNotFound(format!(
            "Schema {id} not found"
        )))
    })
}

fn content_of(store: &Store, id: u32) -> Result<SchemaContent, RegistryError> {
    store
        .content(id)
        .cloned()
        .ok_or_else(|| RegistryError::SchemaNotFound(format!("Schema {id} not found")))
}

fn schema_fields(content: &SchemaContent, out: &mut serde_json::Map<String, Value>) {
    if content.schema_type != SchemaType::Avro {
        out.insert("schemaType".into(), json!(content.schema_type.name()));
    }
    if !content.references.is_empty() {
        out.insert("references".into(), json!(content.references));
    }
    out.insert("schema".into(), json!(content.schema));
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    version: Option<u32>,
}

impl SchemaBody {
    fn into_request(self) -> Result<SchemaRequest, RegistryError> {
        let schema_type = match self.schema_type.as_deref() {
            None | Some("") => SchemaType::Avro,
            Some(name) => SchemaType::parse_name(name)?,
        };
        Ok(SchemaRequest {
            schema: self.schema,
            schema_type,
            references: self.references,
            id: self.id,
            version: self.version,
        })
    }
}

async fn schema_types() -> Response {
    answer(SchemaType::ALL.map(SchemaType::name))
}

async fn schema_by_id<L: SchemaLog>(State(log): State<Arc<L>>, Path(id): Path<String>) -> Answer {
    ready(&*log).await?;
    let id = parse_id(&id)?;
    let content = read(&*log, |store| content_of(store, id))?;
    let mut out = serde_json::Map::new();
    schema_fields(&content, &mut out);
    Ok(answer(out))
}

async fn raw_schema_by_id<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(id): Path<String>,
) -> Answer {
    ready(&*log).await?;
    let id = parse_id(&id)?;
    let content = read(&*log, |store| content_of(store, id))?;
    Ok(with_content_type(StatusCode::OK, content.schema))
}

async fn subjects_by_id<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(id): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let id = parse_id(&id)?;
    let users = read(&*log, |store| {
        content_of(store, id)?;
        Ok(store.id_users(id, flag(&flags, "deleted")))
    })?;
    let mut subjects: Vec<String> = users.into_iter().map(|(subject, _)| subject).collect();
    subjects.dedup();
    Ok(answer(subjects))
}

async fn versions_by_id<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(id): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let id = parse_id(&id)?;
    let users = read(&*log, |store| {
        content_of(store, id)?;
        Ok(store.id_users(id, flag(&flags, "deleted")))
    })?;
    let pairs: Vec<Value> = users
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(answer(pairs))
}

async fn list_subjects<L: SchemaLog>(State(log): State<Arc<L>>, flags: Flags) -> Answer {
    ready(&*log).await?;
    let prefix = flags.get("subjectPrefix").cloned().unwrap_or_default();
    let subjects = read(&*log, |store| Ok(store.subjects(flag(&flags, "deleted"))))?;
    let subjects: Vec<String> = subjects
        .into_iter()
        .filter(|s| s.starts_with(&prefix))
        .collect();
    Ok(answer(subjects))
}

async fn list_versions<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let versions = read(&*log, |store| {
        let versions = store.versions(&subject, flag(&flags, "deleted"));
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.clone()));
        }
        Ok(versions
            .into_iter()
            .map(|(version, _)| version)
            .collect::<Vec<u32>>())
    })?;
    Ok(answer(versions))
}

async fn register<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    Body(body): Body<SchemaBody>,
) -> Answer {
    ready(&*log).await?;
    let subject = subject_name(subject)?;
    let request = body.into_request()?;
    let id = log
        .write(move |store| ops::register(store, &subject, &request))
        .await?;
    Ok(answer(json!({"id": id})))
}

async fn lookup<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
    Body(body): Body<SchemaBody>,
) -> Answer {
    ready(&*log).await?;
    let request = body.into_request()?;
    let (found, content) = read(&*log, |store| {
        let found = ops::lookup(store, &subject, &request, flag(&flags, "deleted"))?;
        let content = content_of(store, found.id)?;
        Ok((found, content))
    })?;
    Ok(answer(version_json(
        &found.subject,
        found.version,
        &content,
    )))
}

fn version_json(subject: &str, version: u32, content: &SchemaContent) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("subject".into(), json!(subject));
    out.insert("version".into(), json!(version));
    out.insert("id".into(), json!(content.id));
    schema_fields(content, &mut out);
    Value::Object(out)
}

fn found_version<L: SchemaLog>(
    log: &L,
    subject: &str,
    version: &str,
    deleted: bool,
) -> Result<(u32, SchemaContent), ApiError> {
    let spec = VersionSpec::parse(version)?;
    Ok(read(log, |store| {
        let found = ops::find_version(store, subject, spec, deleted)?;
        Ok((found.version, content_of(store, found.id)?))
    })?)
}

async fn get_version<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path((subject, version)): Path<(String, String)>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let (version, content) = found_version(&*log, &subject, &version, flag(&flags, "deleted"))?;
    Ok(answer(version_json(&subject, version, &content)))
}

async fn raw_version<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path((subject, version)): Path<(String, String)>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let (_, content) = found_version(&*log, &subject, &version, flag(&flags, "deleted"))?;
    Ok(with_content_type(StatusCode::OK, content.schema))
}

async fn referenced_by<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path((subject, version)): Path<(String, String)>,
) -> Answer {
    ready(&*log).await?;
    let (version, _) = found_version(&*log, &subject, &version, false)?;
    let ids = read(&*log, |store| {
        let mut ids: Vec<u32> = store
            .referrers(&subject, version)
            .into_iter()
            .filter_map(|(s, v)| store.versions(&s, false).into_iter().find(|(x, _)| *x == v))
            .map(|(_, entry)| entry.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    })?;
    Ok(answer(ids))
}

async fn delete_subject<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let permanent = flag(&flags, "permanent");
    let versions = log
        .write(move |store| ops::delete_subject(store, &subject, permanent))
        .await?;
    Ok(answer(versions))
}

async fn delete_version<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path((subject, version)): Path<(String, String)>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let spec = VersionSpec::parse(&version)?;
    let permanent = flag(&flags, "permanent");
    let version = log
        .write(move |store| ops::delete_version(store, &subject, spec, permanent))
        .await?;
    Ok(answer(version))
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

fn level_json(level: CompatibilityLevel) -> Value {
    json!({"compatibilityLevel": level.name()})
}

async fn get_global_config<L: SchemaLog>(State(log): State<Arc<L>>) -> Answer {
    ready(&*log).await?;
    let level = read(&*log, |store| Ok(store.effective_level(None)))?;
    Ok(answer(level_json(level)))
}

async fn put_global_config<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Body(body): Body<ConfigBody>,
) -> Answer {
    ready(&*log).await?;
    let level = CompatibilityLevel::parse_name(&body.compatibility)?;
    let level = log
        .write(move |store| ops::set_level(store, None, level))
        .await?;
    Ok(answer(json!({"compatibility": level.name()})))
}

async fn delete_global_config<L: SchemaLog>(State(log): State<Arc<L>>) -> Answer {
    ready(&*log).await?;
    let previous = log.write(|store| ops::delete_level(store, None)).await?;
    Ok(answer(level_json(previous)))
}

async fn get_config<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let level = read(&*log, |store| match store.subject_level(&subject) {
        Some(level) => Ok(level),
        None if flag(&flags, "defaultToGlobal") => Ok(store.effective_level(None)),
        None => Err(RegistryError::SubjectConfigNotFound(subject.clone())),
    })?;
    Ok(answer(level_json(level)))
}

async fn put_config<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    Body(body): Body<ConfigBody>,
) -> Answer {
    ready(&*log).await?;
    let subject = subject_name(subject)?;
    let level = CompatibilityLevel::parse_name(&body.compatibility)?;
    let level = log
        .write(move |store| ops::set_level(store, Some(&subject), level))
        .await?;
    Ok(answer(json!({"compatibility": level.name()})))
}

async fn delete_config<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
) -> Answer {
    ready(&*log).await?;
    let previous = log
        .write(move |store| ops::delete_level(store, Some(&subject)))
        .await?;
    Ok(answer(level_json(previous)))
}

fn parse_mode(name: &str) -> Result<Mode, RegistryError> {
    Mode::parse_name(name).ok_or(RegistryError::InvalidMode)
}

async fn get_global_mode<L: SchemaLog>(State(log): State<Arc<L>>) -> Answer {
    ready(&*log).await?;
    let mode = read(&*log, |store| Ok(store.effective_mode(None)))?;
    Ok(answer(json!({"mode": mode.name()})))
}

async fn put_global_mode<L: SchemaLog>(
    State(log): State<Arc<L>>,
    flags: Flags,
    Body(body): Body<ModeBody>,
) -> Answer {
    ready(&*log).await?;
    let mode = parse_mode(&body.mode)?;
    let force = flag(&flags, "force");
    let mode = log
        .write(move |store| ops::set_mode(store, None, mode, force))
        .await?;
    Ok(answer(json!({"mode": mode.name()})))
}

async fn get_mode<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
) -> Answer {
    ready(&*log).await?;
    let mode = read(&*log, |store| match store.subject_mode(&subject) {
        Some(mode) => Ok(mode),
        None if flag(&flags, "defaultToGlobal") => Ok(store.effective_mode(None)),
        None => Err(RegistryError::SubjectModeNotFound(subject.clone())),
    })?;
    Ok(answer(json!({"mode": mode.name()})))
}

async fn put_mode<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
    Body(body): Body<ModeBody>,
) -> Answer {
    ready(&*log).await?;
    let subject = subject_name(subject)?;
    let mode = parse_mode(&body.mode)?;
    let force = flag(&flags, "force");
    let mode = log
        .write(move |store| ops::set_mode(store, Some(&subject), mode, force))
        .await?;
    Ok(answer(json!({"mode": mode.name()})))
}

async fn delete_mode<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
) -> Answer {
    ready(&*log).await?;
    let previous = log
        .write(move |store| ops::delete_mode(store, &subject))
        .await?;
    Ok(answer(json!({"mode": previous.name()})))
}

fn compatibility_answer(problems: Vec<String>, verbose: bool) -> Response {
    let mut out = json!({"is_compatible": problems.is_empty()});
    if verbose {
        out["messages"] = json!(problems);
    }
    answer(out)
}

async fn compatibility<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path(subject): Path<String>,
    flags: Flags,
    Body(body): Body<SchemaBody>,
) -> Answer {
    ready(&*log).await?;
    let request = body.into_request()?;
    let problems = read(&*log, |store| {
        ops::check_compatibility(store, &subject, None, &request)
    })?;
    Ok(compatibility_answer(problems, flag(&flags, "verbose")))
}

async fn compatibility_with<L: SchemaLog>(
    State(log): State<Arc<L>>,
    Path((subject, version)): Path<(String, String)>,
    flags: Flags,
    Body(body): Body<SchemaBody>,
) -> Answer {
    ready(&*log).await?;
    let spec = VersionSpec::parse(&version)?;
    let request = body.into_request()?;
    let problems = read(&*log, |store| {
        ops::check_compatibility(store, &subject, Some(spec), &request)
    })?;
    Ok(compatibility_answer(problems, flag(&flags, "verbose")))
}

#[cfg(test)]
mod tests;
