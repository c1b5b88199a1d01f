//! The data directory's identity: `meta.properties`, Kafka's file name and format
//! (`key=value` lines), holding the on-disk format version, `cluster.id` and `node.id`.
//!
//! Written at the first start in a directory (also in a directory written before this file
//! existed, which is adopted as it is); checked at every later start, before storage is
//! opened. A start refuses, with a message saying which, when the directory belongs to
//! another cluster or another node (a mixed-up volume or `log.dirs`: serving it would
//! hand another broker's replicas out as this one's), or was written by a newer on-disk
//! format than this build reads (a downgrade past a format change).
//!
//! Invariants:
//! - The file is replaced atomically (temporary file, fsync, rename, fsync of the
//!   directory): a crash leaves the old file or the new one, never half of one.
//! - Unknown keys are kept out of the decision (a newer build may add some); the three
//!   keys above are required.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "meta.properties";
/// The on-disk format version this build writes and the newest it reads. Bump it when a
/// change of the stored layout cannot be read by the previous release.
pub const DATA_FORMAT_VERSION: u32 = 1;

/// Why a data directory may not be used by this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// `cluster.id` differs.
    #[error(
        "data directory {dir} belongs to cluster {found:?}, but this node is configured for \
         cluster {configured:?} (cluster.id); give it this cluster's data directory or fix \
         cluster.id"
    )]
    OtherCluster {
        /// The data directory.
        dir: String,
        /// The cluster id in its `meta.properties`.
        found: String,
        /// The configured one.
        configured: String,
    },
    /// `node.id` differs.
    #[error(
        "data directory {dir} belongs to node {found}, but this node is configured as node \
         {configured} (node.id); give it its own data directory or fix node.id"
    )]
    OtherNode {
        /// The data directory.
        dir: String,
        /// The node id in its `meta.properties`.
        found: i32,
        /// The configured one.
        configured: i32,
    },
    /// Written by a newer format.
    #[error(
        "data directory {dir} was written by a newer Weir (on-disk format version {found}; \
         this build reads versions up to {known}); run that release or a newer one"
    )]
    Newer {
        /// The data directory.
        dir: String,
        /// The version in its `meta.properties`.
        found: u32,
        /// [`DATA_FORMAT_VERSION`].
        known: u32,
    },
    /// The file is there but not readable as one.
    #[error("{path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("cannot use {path}: {reason}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        reason: String,
    },
}

/// What `meta.properties` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// On-disk format version.
    pub version: u32,
    /// `cluster.id`.
    pub cluster_id: String,
    /// `node.id`.
    pub node_id: i32,
}

impl Identity {
    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "# Written by weir at the first start in this directory. Do not edit: a start\n\
             # with another cluster.id or node.id is refused.\n\
             version={}\ncluster.id={}\nnode.id={}\n",
            self.version, self.cluster_id, self.node_id
        )
    }

    /// Parse the file's text (`#` comments, blank lines and unknown keys ignored).
    pub fn parse(text: &str) -> Result<Identity, String> {
        let (mut version, mut cluster_id, mut node_id) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {line:?} is not key=value"));
            };
            let value = value.trim();
            match key.trim() {
                "version" => {
                    let parsed = value.parse().map_err(|_| format!("version {value:?}"))?;
                    version = Some(parsed);
                }
                "cluster.id" => cluster_id = Some(value.to_owned()),
                "node.id" => {
                    let parsed = value.parse().map_err(|_| format!("node.id {value:?}"))?;
                    node_id = Some(parsed);
                }
                _ => {}
            }
        }
        Ok(Identity {
            version: version.ok_or("no version")?,
            cluster_id: cluster_id.ok_or("no cluster.id")?,
            node_id: node_id.ok_or("no node.id")?,
        })
    }
}

/// Check `dir`'s `meta.properties` against the configured ids, or write it when there is
/// none. Returns the identity in force.
pub fn check_or_write(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
) -> Result<Identity, IdentityError> {
    let path = dir.join(FILE_NAME);
    let shown = dir.display().to_string();
    let io = |path: &Path, error: std::io::Error| IdentityError::Io {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = Identity::parse(&text).map_err(|reason| IdentityError::Malformed {
                path: path.display().to_string(),
                reason,
            })?;
            if found.version > DATA_FORMAT_VERSION {
                return Err(IdentityError::Newer {
                    dir: shown,
                    found: found.version,
                    known: DATA_FORMAT_VERSION,
                });
            }
            if found.cluster_id != cluster_id {
                return Err(IdentityError::OtherCluster {
                    dir: shown,
                    found: found.cluster_id,
                    configured: cluster_id.to_owned(),
                });
            }
            if found.node_id != node_id {
                return Err(IdentityError::OtherNode {
                    dir: shown,
                    found: found.node_id,
                    configured: node_id,
                });
            }
            Ok(found)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let identity = Identity {
                version: DATA_FORMAT_VERSION,
                cluster_id: cluster_id.to_owned(),
                node_id,
            };
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            write_atomically(dir, &path, identity.render().as_bytes()).map_err(|e| io(&path, e))?;
            Ok(identity)
        }
        Err(error) => Err(io(&path, error)),
    }
}

/// Replace `path` with `bytes`: a temporary file beside it, fsynced, renamed over it, and
/// the directory fsynced so the rename itself is durable.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary: PathBuf = path.with_extension("properties.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the first start writes the file; the same ids pass later; another cluster,
    // another node or a newer format are refused with a message saying which; a broken
    // file is refused, never overwritten.
    #[test]
    fn first_start_writes_later_starts_check() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let written = check_or_write(&data, "c1", 3).expect("first start");
        assert_eq!(
            written,
            Identity {
                version: DATA_FORMAT_VERSION,
                cluster_id: "c1".into(),
                node_id: 3
            }
        );
        let text = std::fs::read_to_string(data.join(FILE_NAME)).expect("written");
        assert!(
            text.contains("cluster.id=c1\n") && text.contains("node.id=3\n"),
            "{text}"
        );
        assert_eq!(check_or_write(&data, "c1", 3), Ok(written));

        let other = check_or_write(&data, "c2", 3).expect_err("other cluster");
        assert!(
            matches!(other, IdentityError::OtherCluster { .. }),
            "{other}"
        );
        assert!(
            other.to_string().contains("belongs to cluster \"c1\""),
            "{other}"
        );
        let other = check_or_write(&data, "c1", 4).expect_err("other node");
        assert!(other.to_string().contains("belongs to node 3"), "{other}");

        let newer = Identity {
            version: DATA_FORMAT_VERSION + 1,
            cluster_id: "c1".into(),
            node_id: 3,
        };
        std::fs::write(data.join(FILE_NAME), newer.render()).expect("write");
        let error = check_or_write(&data, "c1", 3).expect_err("newer format");
        assert!(error.to_string().contains("newer Weir"), "{error}");

        std::fs::write(data.join(FILE_NAME), "version=1\nnode.id=3\n").expect("write");
        let error = check_or_write(&data, "c1", 3).expect_err("malformed");
        assert!(matches!(error, IdentityError::Malformed { .. }), "{error}");
        assert_eq!(
            std::fs::read_to_string(data.join(FILE_NAME)).expect("kept"),
            "version=1\nnode.id=3\n"
        );
    }

    // Goal: a newer build's extra keys do not stop this one (only the version does).
    #[test]
    fn unknown_keys_are_ignored() {
        let parsed = Identity::parse("# c\n\nversion=1\ncluster.id=x\nnode.id=2\ndirectory.id=q\n");
        assert_eq!(
            parsed,
            Ok(Identity {
                version: 1,
                cluster_id: "x".into(),
                node_id: 2
            })
        );
        assert!(Identity::parse("version=1\ncluster.id=x\nnode.id=two\n").is_err());
    }
}
