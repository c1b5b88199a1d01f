//! The build's identity for `weir --version`: the git commit this build is of and the cargo
//! profile, so two builds of one version string tell apart (a rolling upgrade shows the
//! change in `cargo xtask deploy status`). `WEIR_BUILD_COMMIT` overrides the commit (a build
//! from a source tarball, which has no `.git`); without either it says `unknown`. The
//! commit is HEAD's: uncommitted changes are not part of it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WEIR_BUILD_COMMIT");
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let commit = match std::env::var("WEIR_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => manifest
            .as_deref()
            .and_then(git_commit)
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    // "debug" or "release" (cargo's PROFILE for build scripts: the base profile).
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=WEIR_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=WEIR_BUILD_PROFILE={profile}");
}

/// HEAD's short hash, and the files whose change moves HEAD marked for a rerun; `None`
/// without git or outside a repository.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=10", "HEAD"])?;
    // HEAD (per worktree) names a branch whose ref lives in the common dir, loose (a file
    // under refs/heads, which a commit may create) or packed. Only paths that exist are
    // named: cargo reruns a build script at every build while a named path is missing.
    let watch = |path: String| {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    };
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watch(format!("{git_dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        watch(format!("{common}/refs/heads"));
        watch(format!("{common}/packed-refs"));
    }
    Some(commit)
}
