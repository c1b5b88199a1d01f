//! Tidy: project rules checked as code (TigerBeetle's tidy.zig, rust-analyzer's tidy.rs).
//!
//! Runs as `cargo xtask tidy` and as a `#[test]`, so `cargo test` enforces it:
//! - crate dependency directions match docs/ARCHITECTURE.md (and DESIGN.md);
//! - the files of a crate form no import circle ([`crate::circles`], with its allowlist);
//! - only weir-wire names `kafka_protocol`;
//! - no stubs or debugging leftovers (`todo!`, `unimplemented!`, `dbg!`, FIX-ME markers);
//! - source lines fit in 100 columns;
//! - every workspace member has a section in docs/ARCHITECTURE.md.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{circles, project_root};

/// For each workspace crate, the workspace crates it may depend on (normal dependencies).
/// Dev-dependencies may additionally use anything except these edges' reverse.
const ALLOWED_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("weir-wire", &[]),
    ("weir-runtime", &[]),
    ("weir-core", &["weir-wire"]),
    ("weir-client", &["weir-wire", "weir-runtime"]),
    (
        "weir",
        &[
            "weir-core",
            "weir-wire",
            "weir-runtime",
            "weir-client",
            "weir-edge",
            "weir-registry",
        ],
    ),
    ("weir-edge", &[]),
    ("weir-registry", &[]),
    ("weir-wasm", &["weir-edge"]),
    ("weir-wasm-schema", &[]),
    // The checker depends on nothing; the real-process harness (feature `harness`, optional
    // dependencies) drives the cluster through the client only.
    ("weir-jepsen", &["weir-client", "weir-runtime"]),
    (
        "weir-sim",
        &[
            "weir",
            "weir-core",
            "weir-wire",
            "weir-runtime",
            "weir-client",
            "weir-jepsen",
        ],
    ),
    ("xtask", &["weir-jepsen"]),
];

/// Crates nothing else may depend on, not even in dev-dependencies.
const LEAF_CRATES: &[&str] = &["xtask", "weir-sim", "weir-wasm", "weir-wasm-schema"];

const LINE_COLUMNS_MAX: usize = 100;

/// Runs every tidy check and reports all violations at once.
pub(crate) fn run() -> Result<()> {
    let root = project_root();
    let mut violations = Vec::new();
    let metadata = cargo_metadata(&root)?;
    check_dependencies(&metadata, &mut violations);
    circles::check(&root, &metadata, &mut violations)?;
    let files = rust_files(&root)?;
    for file in &files {
        let text = fs::read_to_string(file).with_context(|| format!("reading {file:?}"))?;
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        check_source(&relative, &text, &mut violations);
    }
    check_architecture_doc(&root, &mut violations)?;
    if violations.is_empty() {
        eprintln!("tidy: {} files clean", files.len());
        return Ok(());
    }
    for violation in &violations {
        eprintln!("tidy: {violation}");
    }
    bail!("{} tidy violation(s)", violations.len())
}

/// `cargo metadata` of the workspace (its own packages only).
fn cargo_metadata(root: &Path) -> Result<serde_json::Value> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn check_dependencies(metadata: &serde_json::Value, violations: &mut Vec<String>) {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_DEPENDENCIES.iter().copied().collect();
    let empty = Vec::new();
    let packages = metadata["packages"].as_array().unwrap_or(&empty);
    let ours: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let Some(allowed_here) = allowed.get(name) else {
            violations.push(format!(
                "crate {name} is not listed in tidy's dependency rules"
            ));
            continue;
        };
        for dependency in package["dependencies"].as_array().unwrap_or(&empty) {
            let dep = dependency["name"].as_str().unwrap_or("?");
            if dep == "kafka-protocol" && name != "weir-wire" {
                violations.push(format!(
                    "{name} depends on kafka-protocol; only weir-wire may"
                ));
            }
            if !ours.contains(&dep) {
                continue;
            }
            let is_dev = dependency["kind"].as_str() == Some("dev");
            if LEAF_CRATES.contains(&dep) {
                violations.push(format!("{name} depends on {dep}, which is a leaf crate"));
            } else if !is_dev && !allowed_here.contains(&dep) {
                violations.push(format!(
                    "{name} may not depend on {dep} (see ARCHITECTURE.md)"
                ));
            }
        }
    }
}

fn check_source(path: &str, text: &str, violations: &mut Vec<String>) {
    // Spelled in pieces so this file does not flag itself.
    let banned: [(String, &str); 4] = [
        (["todo", "!("].concat(), "a stub behind an API is a defect"),
        (
            ["unimplemented", "!("].concat(),
            "a stub behind an API is a defect",
        ),
        (["dbg", "!("].concat(), "debugging leftover"),
        (
            ["FIX", "ME"].concat(),
            "unresolved marker; fix it or file an issue",
        ),
    ];
    let code_uses = [
        ["kafka", "_protocol::"].concat(),
        ["use kafka", "_protocol"].concat(),
    ];
    let in_wire = path.starts_with("broker/wire/");
    // Generated files (marked in their first line) are exempt from the width rule.
    let generated = text
        .lines()
        .next()
        .is_some_and(|line| line.contains("Generated by"));
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        for (pattern, why) in &banned {
            if line.contains(pattern.as_str()) {
                violations.push(format!("{path}:{line_number}: `{pattern}`: {why}"));
            }
        }
        let is_comment = line.trim_start().starts_with("//");
        if !in_wire && !is_comment && code_uses.iter().any(|used| line.contains(used.as_str())) {
            violations.push(format!(
                "{path}:{line_number}: only weir-wire may use kafka codec"
            ));
        }
        let columns = line.chars().count();
        if !generated && columns > LINE_COLUMNS_MAX {
            violations.push(format!(
                "{path}:{line_number}: {columns} columns (max {LINE_COLUMNS_MAX})"
            ));
        }
    }
}

fn check_architecture_doc(root: &Path, violations: &mut Vec<String>) -> Result<()> {
    let doc_path = root.join("docs/ARCHITECTURE.md");
    let doc = fs::read_to_string(&doc_path).context("reading docs/ARCHITECTURE.md")?;
    for (name, _) in ALLOWED_DEPENDENCIES {
        if !doc.contains(&format!("`{name}`")) {
            violations.push(format!(
                "docs/ARCHITECTURE.md does not describe crate `{name}`"
            ));
        }
    }
    Ok(())
}

fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {dir:?}"))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                let skipped = ["target", "node_modules", "pkg"].contains(&name);
                if !skipped && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    // Goal: `cargo test` fails whenever a project rule is broken. Method: run the same
    // checks as `cargo xtask tidy` over the real tree.
    #[test]
    fn tidy() {
        if let Err(error) = super::run() {
            panic!("{error:#}");
        }
    }

    // Goal: the source checks can fail. Method: feed a line with each banned construct.
    #[test]
    fn source_check_flags_banned_constructs() {
        let mut violations = Vec::new();
        let stub = ["todo", "!()"].concat();
        let wide = "x".repeat(101);
        let protocol = ["use kafka", "_protocol::messages;"].concat();
        super::check_source("broker/core/src/x.rs", &stub, &mut violations);
        super::check_source("broker/core/src/x.rs", &wide, &mut violations);
        super::check_source("broker/core/src/x.rs", &protocol, &mut violations);
        super::check_source("broker/wire/src/x.rs", &protocol, &mut violations);
        assert_eq!(violations.len(), 3, "{violations:?}");
    }
}
