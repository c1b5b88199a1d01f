//! Writes as pure plans: each function reads a store caught up with the committed log,
//! decides (validation, compatibility, the id and the version), and returns the records to
//! append with the answer to give once they are applied. The `SchemaLog` runs a plan as
//! the only writer, so what it decided still holds when its records land.

use std::sync::Arc;

use crate::compat::{self, CompatibilityLevel};
use crate::error::RegistryError;
use crate::format::{ParsedSchema, Reference, SchemaType};
use crate::record::{Mode, Record, SchemaValue};
use crate::store::Store;

/// Records to append, and the answer once they are applied.
#[derive(Debug)]
pub struct Planned<T> {
    pub records: Vec<Record>,
    pub answer: T,
}

impl<T> Planned<T> {
    fn answer_only(answer: T) -> Planned<T> {
        Planned {
            records: Vec::new(),
            answer,
        }
    }
}

/// A version in a path: a number in [1, 2^31-1], `latest` or `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    pub fn parse(text: &str) -> Result<VersionSpec, RegistryError> {
        if text == "latest" || text == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match text.parse::<u32>() {
            Ok(number) if (1..=i32::MAX as u32).contains(&number) => {
                Ok(VersionSpec::Number(number))
            }
            _ => Err(RegistryError::InvalidVersion(text.to_owned())),
        }
    }
}

/// A registration's body.
#[derive(Debug, Clone)]
pub struct SchemaRequest {
    pub schema: String,
    pub schema_type: SchemaType,
    pub references: Vec<Reference>,
    /// Only in IMPORT mode: the id and version the schema had elsewhere.
    pub id: Option<u32>,
    pub version: Option<u32>,
}

/// Where a subject's version resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub subject: String,
    pub version: u32,
    pub id: u32,
}

fn writable(store: &Store, subject: Option<&str>) -> Result<Mode, RegistryError> {
    let mode = store.effective_mode(subject);
    if mode == Mode::Readonly {
        let what = subject.map_or("The registry".to_owned(), |s| format!("Subject {s}"));
        return Err(RegistryError::OperationNotPermitted(format!(
            "{what} is in read-only mode"
        )));
    }
    Ok(mode)
}

/// Resolves a version of a subject; soft-deleted versions only if `deleted`.
pub fn find_version(
    store: &Store,
    subject: &str,
    spec: VersionSpec,
    deleted: bool,
) -> Result<Found, RegistryError> {
    let all = store.versions(subject, true);
    if all.is_empty() || (!deleted && all.iter().all(|(_, entry)| entry.deleted)) {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let found = match spec {
        VersionSpec::Latest => all
            .iter()
            .rev()
            .find(|(_, entry)| deleted || !entry.deleted),
        VersionSpec::Number(number) => all
            .iter()
            .find(|(version, entry)| *version == number && (deleted || !entry.deleted)),
    };
    let not_found = || RegistryError::VersionNotFound {
        subject: subject.to_owned(),
        version: match spec {
            VersionSpec::Latest => "latest".to_owned(),
            VersionSpec::Number(number) => number.to_string(),
        },
    };
    let (version, entry) = found.ok_or_else(not_found)?;
    Ok(Found {
        subject: subject.to_owned(),
        version: *version,
        id: entry.id,
    })
}

/// The parsed live versions of a subject, oldest first (compatibility's "existing").
fn live_parsed(store: &Store, subject: &str) -> Vec<(u32, ParsedSchema)> {
    store
        .versions(subject, false)
        .into_iter()
        .filter_map(|(version, entry)| {
            let parsed: &Arc<ParsedSchema> = store.content(entry.id)?.parsed.as_ref()?;
            Some((version, ParsedSchema::clone(parsed)))
        })
        .collect()
}

/// POST /subjects/{subject}/versions: the id (existing if the subject already has this
/// schema, or if any subject has it; new otherwise).
pub fn register(
    store: &Store,
    subject: &str,
    request: &SchemaRequest,
) -> Result<Planned<u32>, RegistryError> {
    let mode = writable(store, Some(subject))?;
    let parsed = store.parse(request.schema_type, &request.schema, &request.references)?;
    let known_id = store.id_of_identity(&parsed.identity());
    if let Some(id) = known_id {
        let in_subject = store
            .versions(subject, false)
            .iter()
            .any(|(_, entry)| entry.id == id);
        if in_subject && request.id.is_none_or(|wanted| wanted == id) {
            return Ok(Planned::answer_only(id));
        }
    }
    let id = match (mode, request.id) {
        (Mode::Import, Some(id)) => {
            if id == 0 || id > i32::MAX as u32 {
                return Err(RegistryError::bad_request(422, format!("Invalid id {id}")));
            }
            if store.content(id).is_some() && known_id != Some(id) {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Overwrite new schema with id {id} is not permitted."
                )));
            }
            id
        }
        (Mode::Import, None) => {
            return Err(RegistryError::OperationNotPermitted(
                "An id must be given to register a schema in IMPORT mode".to_owned(),
            ))
        }
        (_, Some(_)) => {
            return Err(RegistryError::OperationNotPermitted(
                "A schema's id may be given only in IMPORT mode".to_owned(),
            ))
        }
        (_, None) => {
            let level = store.effective_level(Some(subject));
            let problems = compat::check(level, &parsed, &live_parsed(store, subject));
            if !problems.is_empty() {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    messages: problems,
                });
            }
            known_id.unwrap_or_else(|| store.next_id())
        }
    };
    let latest = store
        .versions(subject, true)
        .last()
        .map_or(0, |(version, _)| *version);
    let version = match request.version {
        Some(version) if mode == Mode::Import => {
            if store
                .versions(subject, true)
                .iter()
                .any(|(v, _)| *v == version)
            {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} already has a version {version}"
                )));
            }
            version
        }
        _ => latest + 1,
    };
    // An id names one text: a schema equal to a registered one (same identity) in another
    // layout is stored as the registered text, under the registered id.
    let schema = match store.content(id) {
        Some(content) if known_id == Some(id) => content.schema.clone(),
        _ => parsed.normalized.clone(),
    };
    let value = SchemaValue {
        subject: subject.to_owned(),
        version,
        id,
        schema_type: request.schema_type,
        references: request.references.clone(),
        schema,
        deleted: false,
    };
    Ok(Planned {
        records: vec![Record::schema(&value)],
        answer: id,
    })
}

/// POST /subjects/{subject}: the latest version of the subject holding this schema.
pub fn lookup(
    store: &Store,
    subject: &str,
    request: &SchemaRequest,
    deleted: bool,
) -> Result<Found, RegistryError> {
    let versions = store.versions(subject, deleted);
    if versions.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let parsed = store.parse(request.schema_type, &request.schema, &request.references)?;
    let id = store.id_of_identity(&parsed.identity());
    let found = versions
        .iter()
        .rev()
        .find(|(_, entry)| Some(entry.id) == id);
    match found {
        Some((version, entry)) => Ok(Found {
            subject: subject.to_owned(),
            version: *version,
            id: entry.id,
        }),
        None => Err(RegistryError::SchemaNotFound("Schema not found".to_owned())),
    }
}

/// DELETE /subjects/{subject}/versions/{version}: the deleted version.
pub fn delete_version(
    store: &Store,
    subject: &str,
    spec: VersionSpec,
    permanent: bool,
) -> Result<Planned<u32>, RegistryError> {
    writable(store, Some(subject))?;
    // A numbered version is found even when soft-deleted, so that deleting it again says
    // so (40406); `latest` of a soft delete is the latest live one.
    let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
    let found = find_version(store, subject, spec, include_deleted)?;
    let deleted = store
        .versions(subject, true)
        .iter()
        .any(|(version, entry)| *version == found.version && entry.deleted);
    if !store.referrers(subject, found.version).is_empty() {
        return Err(RegistryError::ReferenceExists {
            subject: subject.to_owned(),
            version: found.version,
        });
    }
    let records = if permanent {
        if !deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version: found.version,
            });
        }
        permanent_records(store, subject, &[found.version])
    } else {
        if deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version: found.version,
            });
        }
        vec![soft_delete_record(store, subject, found.version, found.id)?]
    };
    Ok(Planned {
        records,
        answer: found.version,
    })
}

/// DELETE /subjects/{subject}: the versions deleted.
pub fn delete_subject(
    store: &Store,
    subject: &str,
    permanent: bool,
) -> Result<Planned<Vec<u32>>, RegistryError> {
    writable(store, Some(subject))?;
    let all = store.versions(subject, true);
    if all.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let live: Vec<(u32, u32)> = all
        .iter()
        .filter(|(_, e)| !e.deleted)
        .map(|(v, e)| (*v, e.id))
        .collect();
    for (version, _) in &all {
        let outside: Vec<_> = store
            .referrers(subject, *version)
            .into_iter()
            .filter(|(s, _)| s != subject)
            .collect();
        if !outside.is_empty() {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_owned(),
                version: *version,
            });
        }
    }
    if permanent {
        if !live.is_empty() {
            return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
        }
        let versions: Vec<u32> = all.iter().map(|(version, _)| *version).collect();
        let records = permanent_records(store, subject, &versions);
        return Ok(Planned {
            records,
            answer: versions,
        });
    }
    if live.is_empty() {
        return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
    }
    let mut records = Vec::new();
    for (version, id) in &live {
        records.push(soft_delete_record(store, subject, *version, *id)?);
    }
    Ok(Planned {
        records,
        answer: live.iter().map(|(version, _)| *version).collect(),
    })
}

fn soft_delete_record(
    store: &Store,
    subject: &str,
    version: u32,
    id: u32,
) -> Result<Record, RegistryError> {
    let content = store
        .content(id)
        .ok_or_else(|| RegistryError::Store(format!("schema {id} missing from the store")))?;
    Ok(Record::schema(&SchemaValue {
        subject: subject.to_owned(),
        version,
        id,
        schema_type: content.schema_type,
        references: content.references.clone(),
        schema: content.schema.clone(),
        deleted: true,
    }))
}

/// Tombstones for the versions, and the id watermark first, so the ids they free are never
/// handed out again once compaction has dropped their records.
fn permanent_records(store: &Store, subject: &str, versions: &[u32]) -> Vec<Record> {
    let mut records = vec![Record::id_watermark(store.next_id().saturating_sub(1))];
    records.extend(
        versions
            .iter()
            .map(|version| Record::schema_tombstone(subject, *version)),
    );
    records
}

/// PUT /config[/{subject}].
pub fn set_level(
    store: &Store,
    subject: Option<&str>,
    level: CompatibilityLevel,
) -> Result<Planned<CompatibilityLevel>, RegistryError> {
    let _ = store;
    Ok(Planned {
        records: vec![Record::config(subject, Some(level))],
        answer: level,
    })
}

/// DELETE /config[/{subject}]: the level it had.
pub fn delete_level(
    store: &Store,
    subject: Option<&str>,
) -> Result<Planned<CompatibilityLevel>, RegistryError> {
    let previous = match subject {
        Some(subject) => store
            .subject_level(subject)
            .ok_or_else(|| RegistryError::SubjectConfigNotFound(subject.to_owned()))?,
        None => store.effective_level(None),
    };
    Ok(Planned {
        records: vec![Record::config(subject, None)],
        answer: previous,
    })
}

/// PUT /mode[/{subject}]: IMPORT only on an empty registry (subject), unless `force`.
pub fn set_mode(
    store: &Store,
    subject: Option<&str>,
    mode: Mode,
    force: bool,
) -> Result<Planned<Mode>, RegistryError> {
    if mode == Mode::Import && !force {
        let occupied = match subject {
            Some(subject) => !store.versions(subject, true).is_empty(),
            None => !store.subjects(true).is_empty(),
        };
        if occupied {
            return Err(RegistryError::OperationNotPermitted(
                "Cannot import since found existing subjects".to_owned(),
            ));
        }
    }
    Ok(Planned {
        records: vec![Record::mode(subject, Some(mode))],
        answer: mode,
    })
}

/// DELETE /mode/{subject}: the mode it had.
pub fn delete_mode(store: &Store, subject: &str) -> Result<Planned<Mode>, RegistryError> {
    let previous = store
        .subject_mode(subject)
        .ok_or_else(|| RegistryError::SubjectModeNotFound(subject.to_owned()))?;
    Ok(Planned {
        records: vec![Record::mode(Some(subject), None)],
        answer: previous,
    })
}

/// POST /compatibility/subjects/{subject}/versions[/{version}]: what breaks the subject's
/// level (against one version when given, else the versions the level names).
pub fn check_compatibility(
    store: &Store,
    subject: &str,
    spec: Option<VersionSpec>,
    request: &SchemaRequest,
) -> Result<Vec<String>, RegistryError> {
    let parsed = store.parse(request.schema_type, &request.schema, &request.references)?;
    let level = store.effective_level(Some(subject));
    let existing = match spec {
        None => live_parsed(store, subject),
        Some(spec) => {
            let found = find_version(store, subject, spec, false)?;
            live_parsed(store, subject)
                .into_iter()
                .filter(|(v, _)| *v == found.version)
                .collect()
        }
    };
    Ok(compat::check(level, &parsed, &existing))
}
