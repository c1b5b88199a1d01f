//! The data directory's identity: `meta.properties`, Kafka's file name and format
//! (`key=value` lines), holding the on-disk format version, `cluster.id`, `node.id` and
//! the number of shards whose storage the directory holds (`shards`, docs/sharding.md).
//!
//! Written at the first start in a directory (also in a directory written before this file
//! existed, which is adopted as it is); checked at every later start, before storage is
//! opened. A start refuses, with a message saying which, when the directory belongs to
//! another cluster or another node (a mixed-up volume or `log.dirs`: serving it would
//! hand another broker's replicas out as this one's), or was written by a newer on-disk
//! format than this build reads (a downgrade past a format change), or holds another
//! number of shards (each shard's partitions are in its own storage, so another count
//! would look for them in the wrong place).
//!
//! Shards: shard 0's storage is the data directory itself (an unsharded broker's layout,
//! unchanged), shard `k > 0`'s is its subdirectory [`shard_dir`]. A directory of more than
//! one shard is written at [`SHARDED_FORMAT_VERSION`], so a build that predates shards
//! (it ignores the `shards` key) refuses it as newer instead of opening shard 0 alone; a
//! directory of one shard stays at version 1 and says no `shards`.
//!
//! Invariants:
//! - The file is replaced atomically (temporary file, fsync, rename, fsync of the
//!   directory): a crash leaves the old file or the new one, never half of one.
//! - Unknown keys are kept out of the decision (a newer build may add some); the three
//!   keys above are required.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::ShardCount;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "meta.properties";
/// The on-disk format version this build writes and the newest it reads. Bump it when a
/// change of the stored layout cannot be read by the previous release.
pub const DATA_FORMAT_VERSION: u32 = 2;
/// The version of a directory holding more than one shard: builds before it ignore
/// `shards` and would serve shard 0's partitions only.
pub const SHARDED_FORMAT_VERSION: u32 = 2;

pub use super::shard_dir;

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
    /// `shards` differs.
    #[error(
        "data directory {dir} holds the storage of {found} shard(s), but this node is \
         configured for {configured} (num.shards); a directory keeps the number of shards \
         it was created with: start with num.shards={found} or use a new directory"
    )]
    OtherShards {
        /// The data directory.
        dir: String,
        /// The shard count in its `meta.properties`.
        found: u16,
        /// The configured one.
        configured: u16,
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
    /// How many shards' storage the directory holds (1 when the file says none).
    pub shards: u16,
}

impl Identity {
    /// The file's text.
    pub fn render(&self) -> String {
        let shards = if self.shards > 1 {
            format!("shards={}\n", self.shards)
        } else {
            String::new()
        };
        format!(
            "# Written by weir at the first start in this directory. Do not edit: a start\n\
             # with another cluster.id, node.id or number of shards is refused.\n\
             version={}\ncluster.id={}\nnode.id={}\n{shards}",
            self.version, self.cluster_id, self.node_id
        )
    }

    /// Parse the file's text (`#` comments, blank lines and unknown keys ignored).
    pub fn parse(text: &str) -> Result<Identity, String> {
        let (mut version, mut cluster_id, mut node_id) = (None, None, None);
        let mut shards = 1u16;
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
                "shards" => {
                    shards = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("shards {value:?}"))?;
                }
                _ => {}
            }
        }
        Ok(Identity {
            version: version.ok_or("no version")?,
            cluster_id: cluster_id.ok_or("no cluster.id")?,
            node_id: node_id.ok_or("no node.id")?,
            shards,
        })
    }
}

/// Check `dir`'s `meta.properties` against the configured ids and shard count, or write it
/// when there is none (creating every shard's directory). Returns the identity in force:
/// with [`ShardCount::Default`] (`num.shards` not set) an existing directory's own shard
/// count, whatever the default would be now.
pub fn check_or_write(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
    wanted: ShardCount,
) -> Result<Identity, IdentityError> {
    let shards = wanted.for_new_directory();
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
            if found.shards != shards && matches!(wanted, ShardCount::Exactly(_)) {
                return Err(IdentityError::OtherShards {
                    dir: shown,
                    found: found.shards,
                    configured: shards,
                });
            }
            Ok(found)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let identity = Identity {
                version: if shards > 1 {
                    SHARDED_FORMAT_VERSION
                } else {
                    1
                },
                cluster_id: cluster_id.to_owned(),
                node_id,
                shards,
            };
            // The shards' directories before the file: a directory with the file has them.
            for index in 0..shards {
                let shard = shard_dir(dir, index);
                std::fs::create_dir_all(&shard).map_err(|e| io(&shard, e))?;
            }
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
        let written = check_or_write(&data, "c1", 3, ShardCount::Exactly(1)).expect("first start");
        assert_eq!(
            written,
            Identity {
                version: 1,
                cluster_id: "c1".into(),
                node_id: 3,
                shards: 1,
            }
        );
        let text = std::fs::read_to_string(data.join(FILE_NAME)).expect("written");
        assert!(
            text.contains("cluster.id=c1\n") && text.contains("node.id=3\n"),
            "{text}"
        );
        assert_eq!(
            check_or_write(&data, "c1", 3, ShardCount::Exactly(1)),
            Ok(written)
        );

        let other =
            check_or_write(&data, "c2", 3, ShardCount::Exactly(1)).expect_err("other cluster");
        assert!(
            matches!(other, IdentityError::OtherCluster { .. }),
            "{other}"
        );
        assert!(
            other.to_string().contains("belongs to cluster \"c1\""),
            "{other}"
        );
        let other = check_or_write(&data, "c1", 4, ShardCount::Exactly(1)).expect_err("other node");
        assert!(other.to_string().contains("belongs to node 3"), "{other}");

        let newer = Identity {
            version: DATA_FORMAT_VERSION + 1,
            cluster_id: "c1".into(),
            node_id: 3,
            shards: 1,
        };
        std::fs::write(data.join(FILE_NAME), newer.render()).expect("write");
        let error =
            check_or_write(&data, "c1", 3, ShardCount::Exactly(1)).expect_err("newer format");
        assert!(error.to_string().contains("newer Weir"), "{error}");

        std::fs::write(data.join(FILE_NAME), "version=1\nnode.id=3\n").expect("write");
        let error = check_or_write(&data, "c1", 3, ShardCount::Exactly(1)).expect_err("malformed");
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
                node_id: 2,
                shards: 1,
            })
        );
        assert!(Identity::parse("version=1\ncluster.id=x\nnode.id=two\n").is_err());
        assert!(Identity::parse("version=2\ncluster.id=x\nnode.id=2\nshards=0\n").is_err());
    }

    // Goal: a directory keeps the shard count it was created with. The first start makes
    // every shard's directory and writes the count at the sharded format version (so a
    // build before shards refuses it); a start with another count is refused with a
    // message naming both; a directory of one shard (or one written before shards) stays
    // at version 1 with no `shards` key, as before.
    #[test]
    fn the_shard_count_is_written_and_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let written = check_or_write(&data, "c1", 1, ShardCount::Exactly(3)).expect("first start");
        assert_eq!(
            (written.version, written.shards),
            (SHARDED_FORMAT_VERSION, 3)
        );
        for index in 0..3 {
            assert!(shard_dir(&data, index).is_dir(), "shard {index}");
        }
        assert_eq!(shard_dir(&data, 0), data);
        assert_eq!(shard_dir(&data, 2), data.join("shard-2"));
        let text = std::fs::read_to_string(data.join(FILE_NAME)).expect("written");
        assert!(
            text.contains("version=2\n") && text.contains("shards=3\n"),
            "{text}"
        );
        assert_eq!(
            check_or_write(&data, "c1", 1, ShardCount::Exactly(3)),
            Ok(written)
        );
        for other in [1, 2, 4] {
            let error = check_or_write(&data, "c1", 1, ShardCount::Exactly(other))
                .expect_err("other count");
            assert_eq!(
                error,
                IdentityError::OtherShards {
                    dir: data.display().to_string(),
                    found: 3,
                    configured: other
                }
            );
            assert!(error.to_string().contains("num.shards=3"), "{error}");
        }

        let single = dir.path().join("single");
        let written =
            check_or_write(&single, "c1", 1, ShardCount::Exactly(1)).expect("first start");
        assert_eq!((written.version, written.shards), (1, 1));
        let text = std::fs::read_to_string(single.join(FILE_NAME)).expect("written");
        assert!(!text.contains("shards="), "{text}");
        let error = check_or_write(&single, "c1", 1, ShardCount::Exactly(2)).expect_err("grown");
        assert!(
            matches!(error, IdentityError::OtherShards { found: 1, .. }),
            "{error}"
        );
    }

    // Goal: without `num.shards` (the default: the cores) a new directory gets the
    // default's count and an existing one keeps its own, so an upgrade or a move to a
    // machine of other cores starts as before; only an explicit count is checked.
    // Method: directories of one and of three shards started with other defaults.
    #[test]
    fn an_unset_shard_count_keeps_the_directory_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fresh = dir.path().join("fresh");
        let written = check_or_write(&fresh, "c1", 1, ShardCount::Default(4)).expect("new");
        assert_eq!(written.shards, 4);
        assert!(shard_dir(&fresh, 3).is_dir());
        for default in [1, 2, 8] {
            let kept = check_or_write(&fresh, "c1", 1, ShardCount::Default(default));
            assert_eq!(
                kept.map(|identity| identity.shards),
                Ok(4),
                "default {default}"
            );
        }
        let old = dir.path().join("old");
        check_or_write(&old, "c1", 1, ShardCount::Exactly(1)).expect("one shard");
        let kept = check_or_write(&old, "c1", 1, ShardCount::Default(2)).expect("kept");
        assert_eq!((kept.version, kept.shards), (1, 1));
        assert!(!shard_dir(&old, 1).exists(), "no shard was added");
        assert!(check_or_write(&old, "c1", 1, ShardCount::Exactly(2)).is_err());
    }
}
