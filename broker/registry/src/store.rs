//! The registry's in-memory state, built only by applying `_schemas` records in log order
//! (`Store::apply`); every read is served from it.
//!
//! Invariants: each id names one schema (type, text, references) whatever subjects carry
//! it; `next_id` is above every id any applied record has named (live, soft-deleted,
//! permanently deleted behind the watermark); applying the same records gives the same
//! store, and so does applying a compacted log (latest record per key).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::format::{ParsedSchema, Reference, ResolvedReference, SchemaType};
use crate::record::{ConfigValue, Key, Mode, ModeValue, SchemaValue, WatermarkValue};

/// How many references deep a schema may go (a bound on resolution work for any input).
pub const REFERENCE_DEPTH_MAX: usize = 16;

/// A schema's content, shared by every version that carries its id.
#[derive(Debug, Clone)]
pub struct SchemaContent {
    pub id: u32,
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
    /// `None` when the stored text no longer parses (a reference permanently deleted):
    /// it is still served, but takes no part in identity lookups.
    pub parsed: Option<Arc<ParsedSchema>>,
}

/// One subject's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: u32,
    pub deleted: bool,
}

#[derive(Debug, Default)]
pub struct Store {
    /// (subject, version) -> id and soft-delete flag.
    versions: BTreeMap<String, BTreeMap<u32, VersionEntry>>,
    contents: BTreeMap<u32, SchemaContent>,
    /// Which (subject, version)s carry each id.
    id_users: BTreeMap<u32, BTreeSet<(String, u32)>>,
    identities: BTreeMap<[u8; 32], u32>,
    id_watermark: u32,
    global_level: Option<CompatibilityLevel>,
    subject_levels: BTreeMap<String, CompatibilityLevel>,
    global_mode: Option<Mode>,
    subject_modes: BTreeMap<String, Mode>,
    /// Records that did not decode (skipped, counted, never fatal).
    skipped_count: u64,
}

impl Store {
    /// Applies one `_schemas` record. A record that does not decode is skipped (counted in
    /// `skipped_count`): the registry keeps serving whatever else the log holds.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(key) = serde_json::from_slice::<Key>(key) else {
            self.skipped_count += 1;
            return;
        };
        let applied = match key {
            Key::Schema {
                subject, version, ..
            } => self.apply_schema(subject, version, value),
            Key::Config { subject, .. } => self.apply_config(subject, value),
            Key::Mode { subject, .. } => self.apply_mode(subject, value),
            Key::IdWatermark { .. } => match value.map(serde_json::from_slice::<WatermarkValue>) {
                Some(Ok(watermark)) => {
                    self.id_watermark = self.id_watermark.max(watermark.id);
                    true
                }
                None => true,
                Some(Err(_)) => false,
            },
            Key::DeleteSubject { .. } | Key::Noop { .. } => true,
        };
        if !applied {
            self.skipped_count += 1;
        }
    }

    fn apply_schema(&mut self, subject: String, version: u32, value: Option<&[u8]>) -> bool {
        let Some(value) = value else {
            self.remove_version(&subject, version);
            return true;
        };
        let Ok(value) = serde_json::from_slice::<SchemaValue>(value) else {
            return false;
        };
        if value.subject != subject || value.version != version || value.id == 0 {
            return false;
        }
        // A record naming an id another schema holds is refused: ids name one schema.
        if let Some(content) = self.contents.get(&value.id) {
            let same = content.schema == value.schema
                && content.schema_type == value.schema_type
                && content.references == value.references;
            if !same {
                return false;
            }
        }
        self.remove_version(&subject, version);
        if !self.contents.contains_key(&value.id) {
            let parsed = self
                .parse(value.schema_type, &value.schema, &value.references)
                .ok();
            if let Some(parsed) = &parsed {
                self.identities.entry(parsed.identity()).or_insert(value.id);
            }
            let content = SchemaContent {
                id: value.id,
                schema_type: value.schema_type,
                schema: value.schema,
                references: value.references,
                parsed: parsed.map(Arc::new),
            };
            self.contents.insert(value.id, content);
        }
        self.id_watermark = self.id_watermark.max(value.id);
        self.id_users
            .entry(value.id)
            .or_default()
            .insert((subject.clone(), version));
        let entry = VersionEntry {
            id: value.id,
            deleted: value.deleted,
        };
        self.versions
            .entry(subject)
            .or_default()
            .insert(version, entry);
        true
    }

    fn remove_version(&mut self, subject: &str, version: u32) {
        let Some(versions) = self.versions.get_mut(subject) else {
            return;
        };
        let Some(entry) = versions.remove(&version) else {
            return;
        };
        if versions.is_empty() {
            self.versions.remove(subject);
        }
        let users = self.id_users.entry(entry.id).or_default();
        users.remove(&(subject.to_owned(), version));
        if users.is_empty() {
            self.id_users.remove(&entry.id);
            if let Some(content) = self.contents.remove(&entry.id) {
                if let Some(parsed) = content.parsed {
                    // Another id may hold the same identity (IMPORT can bring one in).
                    if self.identities.get(&parsed.identity()) == Some(&entry.id) {
                        self.identities.remove(&parsed.identity());
                    }
                }
            }
        }
    }

    fn apply_config(&mut self, subject: Option<String>, value: Option<&[u8]>) -> bool {
        let level = match value.map(serde_json::from_slice::<ConfigValue>) {
            Some(Ok(config)) => Some(config.compatibility_level),
            Some(Err(_)) => return false,
            None => None,
        };
        match (subject, level) {
            (None, level) => self.global_level = level,
            (Some(subject), Some(level)) => {
                self.subject_levels.insert(subject, level);
            }
            (Some(subject), None) => {
                self.subject_levels.remove(&subject);
            }
        }
        true
    }

    fn apply_mode(&mut self, subject: Option<String>, value: Option<&[u8]>) -> bool {
        let mode = match value.map(serde_json::from_slice::<ModeValue>) {
            Some(Ok(mode)) => Some(mode.mode),
            Some(Err(_)) => return false,
            None => None,
        };
        match (subject, mode) {
            (None, mode) => self.global_mode = mode,
            (Some(subject), Some(mode)) => {
                self.subject_modes.insert(subject, mode);
            }
            (Some(subject), None) => {
                self.subject_modes.remove(&subject);
            }
        }
        true
    }

    /// Parses a schema with its references resolved from this store.
    pub fn parse(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> Result<ParsedSchema, RegistryError> {
        let resolved = self.resolve_references(references)?;
        ParsedSchema::parse(schema_type, text, references, &resolved)
    }

    /// The referenced schemas' texts, transitively, each after the ones it references and
    /// once; an unknown reference is 42201, as in Confluent's registry.
    pub fn resolve_references(
        &self,
        references: &[Reference],
    ) -> Result<Vec<ResolvedReference>, RegistryError> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.resolve_into(references, 0, &mut seen, &mut out)?;
        Ok(out)
    }

    fn resolve_into(
        &self,
        references: &[Reference],
        depth: usize,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<ResolvedReference>,
    ) -> Result<(), RegistryError> {
        if depth > REFERENCE_DEPTH_MAX {
            return Err(RegistryError::InvalidSchema(format!(
                "references nest deeper than {REFERENCE_DEPTH_MAX}"
            )));
        }
        for reference in references {
            if !seen.insert(reference.name.clone()) {
                continue;
            }
            let content = self
                .versions
                .get(&reference.subject)
                .and_then(|versions| versions.get(&reference.version))
                .and_then(|entry| self.contents.get(&entry.id))
                .ok_or_else(|| {
                    RegistryError::InvalidSchema(format!(
                        "Invalid schema: reference '{}' to subject '{}' version {} not found",
                        reference.name, reference.subject, reference.version
                    ))
                })?;
            self.resolve_into(&content.references, depth + 1, seen, out)?;
            out.push(ResolvedReference {
                name: reference.name.clone(),
                schema: content.schema.clone(),
            });
        }
        Ok(())
    }

    /// Subjects with at least one version (live only, unless `deleted`).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.versions
            .iter()
            .filter(|(_, versions)| versions.values().any(|entry| deleted || !entry.deleted))
            .map(|(subject, _)| subject.clone())
            .collect()
    }

    /// A subject's versions, oldest first (live only, unless `deleted`).
    pub fn versions(&self, subject: &str, deleted: bool) -> Vec<(u32, VersionEntry)> {
        self.versions
            .get(subject)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|(_, entry)| deleted || !entry.deleted)
                    .map(|(version, entry)| (*version, entry.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn content(&self, id: u32) -> Option<&SchemaContent> {
        self.contents.get(&id)
    }

    /// The (subject, version)s that carry `id`, soft-deleted ones only if `deleted`.
    pub fn id_users(&self, id: u32, deleted: bool) -> Vec<(String, u32)> {
        let Some(users) = self.id_users.get(&id) else {
            return Vec::new();
        };
        users
            .iter()
            .filter(|(subject, version)| {
                deleted
                    || self
                        .versions
                        .get(subject)
                        .and_then(|versions| versions.get(version))
                        .is_some_and(|entry| !entry.deleted)
            })
            .cloned()
            .collect()
    }

    /// The id of a schema with this identity, if any subject carries one.
    pub fn id_of_identity(&self, identity: &[u8; 32]) -> Option<u32> {
        self.identities.get(identity).copied()
    }

    /// The id the next new schema gets: above every id ever handed out.
    pub fn next_id(&self) -> u32 {
        self.id_watermark.saturating_add(1)
    }

    /// The subject's own level, or the global one, or BACKWARD.
    pub fn effective_level(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|subject| self.subject_levels.get(subject).copied())
            .or(self.global_level)
            .unwrap_or_default()
    }

    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subject_levels.get(subject).copied()
    }

    pub fn global_level(&self) -> Option<CompatibilityLevel> {
        self.global_level
    }

    pub fn effective_mode(&self, subject: Option<&str>) -> Mode {
        subject
            .and_then(|subject| self.subject_modes.get(subject).copied())
            .or(self.global_mode)
            .unwrap_or_default()
    }

    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.subject_modes.get(subject).copied()
    }

    /// Live (subject, version)s whose schema references `subject`'s `version`.
    pub fn referrers(&self, subject: &str, version: u32) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for (user_subject, versions) in &self.versions {
            for (user_version, entry) in versions {
                let refers = self.contents.get(&entry.id).is_some_and(|content| {
                    content.references.iter().any(|reference| {
                        reference.subject == subject && reference.version == version
                    })
                });
                if refers && !entry.deleted {
                    out.push((user_subject.clone(), *user_version));
                }
            }
        }
        out
    }

    pub fn skipped_count(&self) -> u64 {
        self.skipped_count
    }

    /// A canonical description of the whole state, for replay tests and diagnostics.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (subject, versions) in &self.versions {
            for (version, entry) in versions {
                out.push_str(&format!(
                    "{subject} v{version} id{} deleted={}\n",
                    entry.id, entry.deleted
                ));
            }
        }
        for (id, content) in &self.contents {
            out.push_str(&format!(
                "id{id} {:?} {} {:?}\n",
                content.schema_type, content.schema, content.references
            ));
        }
        out.push_str(&format!(
            "next_id={} level={:?} {:?} mode={:?} {:?}\n",
            self.next_id(),
            self.global_level,
            self.subject_levels,
            self.global_mode,
            self.subject_modes
        ));
        out
    }
}
