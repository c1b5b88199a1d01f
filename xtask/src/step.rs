//! Steps: how xtask's commands (ci, wasm) run another program, announce it with a title,
//! time it, and fail when it fails. Every command file stands on this one; it stands on
//! nothing of the crate.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Whether `name` is on the PATH.
pub(crate) fn has_program(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

/// Run `program args` in `dir` as the titled step `title`; fails unless it succeeds.
pub(crate) fn step(title: &str, dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    run_command(title, command)
}

/// Run a prepared command as the titled step `title`, timing it on stderr.
pub(crate) fn run_command(title: &str, mut command: Command) -> Result<()> {
    eprintln!("==> {title}");
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("could not start: {title}"))?;
    eprintln!("<== {title}: {status} in {:.1?}", started.elapsed());
    if !status.success() {
        bail!("step failed: {title} ({status})");
    }
    Ok(())
}
