//! The seven compatibility levels over a format's reader/writer check (Confluent's
//! semantics): BACKWARD means the new schema reads data written with the latest one,
//! FORWARD that the latest reads data written with the new one, FULL both; the
//! `_TRANSITIVE` levels check against every live version instead of the latest; NONE checks
//! nothing.

use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::format::ParsedSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
            Self::None => "NONE",
        }
    }

    /// Accepts Confluent's names in any case.
    pub fn parse_name(name: &str) -> Result<Self, RegistryError> {
        let upper = name.to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|level| level.name() == upper)
            .ok_or(RegistryError::InvalidCompatibilityLevel)
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

/// What breaks `level` if `candidate` follows `existing` (live versions, oldest first);
/// empty when compatible. Each message names the version it is about.
pub fn check(
    level: CompatibilityLevel,
    candidate: &ParsedSchema,
    existing: &[(u32, ParsedSchema)],
) -> Vec<String> {
    let against: &[(u32, ParsedSchema)] = if level.transitive() {
        existing
    } else {
        match existing.split_last() {
            Some((latest, _)) => std::slice::from_ref(latest),
            None => &[],
        }
    };
    let mut problems = Vec::new();
    for (version, old) in against.iter().rev() {
        if level.backward() {
            for problem in ParsedSchema::read_problems(old, candidate) {
                problems.push(format!(
                    "the new schema cannot read data written with version {version} ({}): \
                        {problem}",
                    level.name()
                ));
            }
        }
        if level.forward() {
            for problem in ParsedSchema::read_problems(candidate, old) {
                problems.push(format!(
                    "version {version} cannot read data written with the new schema ({}): \
                        {problem}",
                    level.name()
                ));
            }
        }
    }
    problems
}
