//! The librdkafka client: `clients/queue_client.py` (confluent-kafka) as a subprocess that
//! prints its operations as history lines, so the test does not only trust weir-client.
//!
//! Invariants: the subprocess's process ids start at [`EXTERNAL_PROCESS_BASE`] and its
//! values at [`EXTERNAL_VALUE_BASE`], so they never collide with the Rust actors'; each of
//! its lines must parse as an [`Event`] of a client process in that range with a time, or
//! the run reports the client as broken (no line is silently dropped); its stderr goes to
//! `rdkafka-client.log` in the report directory.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::recorder::{Recorder, EXTERNAL_PROCESS_BASE, EXTERNAL_VALUE_BASE};
use super::workload::Ctx;
use crate::{Event, Process};

/// The running client.
#[derive(Debug)]
pub struct PythonClient {
    child: Child,
    reader: JoinHandle<Result<Vec<Event>>>,
}

/// Starts the client for `seconds`: its producer writes `keys` (idempotent), its consumer
/// reads every key.
pub fn spawn(
    script: &Path,
    ctx: &Ctx,
    keys: &[u32],
    seconds: u64,
    dir: &Path,
) -> Result<PythonClient> {
    let join = |keys: &[u32]| {
        keys.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let all: Vec<u32> = (0..ctx.keys).collect();
    let stderr = std::fs::File::create(dir.join("rdkafka-client.log"))?;
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--bootstrap", &ctx.bootstrap.join(",")])
        .args(["--topic", &ctx.topic])
        .args(["--keys", &join(keys)])
        .args(["--all-keys", &join(&all)])
        .args(["--process-base", &EXTERNAL_PROCESS_BASE.to_string()])
        .args(["--value-base", &EXTERNAL_VALUE_BASE.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .arg("--idempotent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting python3 {}", script.display()))?;
    let Some(stdout) = child.stdout.take() else {
        bail!("python client has no stdout");
    };
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut events = Vec::new();
        while let Some(line) = lines.next_line().await? {
            events.push(parse_line(&line)?);
        }
        Ok(events)
    });
    Ok(PythonClient { child, reader })
}

/// Parses and validates one line of the client.
pub fn parse_line(line: &str) -> Result<Event> {
    let event: Event =
        serde_json::from_str(line).with_context(|| format!("bad line from the client: {line}"))?;
    match event.process {
        Process::Client(p) if p >= EXTERNAL_PROCESS_BASE => {}
        _ => bail!("client line with a process outside its range: {line}"),
    }
    if event.time.is_none() {
        bail!("client line without a time: {line}");
    }
    Ok(event)
}

/// Waits for the client to end (killing it 30 s after its deadline) and records its events;
/// returns how many.
pub async fn finish(mut client: PythonClient, recorder: &Recorder) -> Result<usize> {
    let status = match tokio::time::timeout(Duration::from_secs(30), client.child.wait()).await {
        Ok(status) => Some(status?),
        Err(_) => {
            client.child.kill().await.ok();
            None
        }
    };
    let events = client.reader.await.context("client reader task")??;
    let count = events.len();
    for event in events {
        recorder.external(event);
    }
    match status {
        Some(status) if status.success() => Ok(count),
        Some(status) => bail!("python client exited with {status}; see rdkafka-client.log"),
        None => bail!("python client did not stop; killed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the client's lines are held to the protocol. Method: a good line, a line in
    // the Rust range, a line without time.
    #[test]
    fn validates_lines() {
        let good =
            r#"{"process":1000000,"type":"invoke","f":"send","value":[["send",2,7]],"time":5}"#;
        assert!(parse_line(good).is_ok());
        let rust_range = r#"{"process":3,"type":"invoke","f":"poll","value":[["poll"]],"time":5}"#;
        assert!(parse_line(rust_range).is_err());
        let no_time = r#"{"process":1000001,"type":"invoke","f":"poll","value":[["poll"]]}"#;
        assert!(parse_line(no_time).is_err());
        assert!(parse_line("not json").is_err());
    }
}
