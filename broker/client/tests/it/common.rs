//! The real `weir serve` process every end-to-end test drives: `target/debug/weir` (or
//! `$WEIR_BIN`) on a free port of 127.0.0.1 with a fresh data dir, killed when the test
//! ends, pass or fail. Build the binary first with `cargo build -p weir`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A broker process that can be killed and restarted on the same port and data dir.
pub struct Broker {
    child: Option<Child>,
    pub address: String,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker whose config file holds `config` (Kafka property lines; may be
    /// empty) and waits until it accepts connections.
    pub fn start(config: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("weir.toml"), config).expect("config file");
        let mut broker = Broker {
            child: None,
            address: format!("127.0.0.1:{port}"),
            dir,
        };
        broker.spawn();
        broker
    }

    /// Starts the process (again, after [`Broker::kill9`]) on the same port and data dir.
    pub fn spawn(&mut self) {
        let binary = weir_binary();
        assert!(
            binary.exists(),
            "{} not found: run `cargo build -p weir` first or set WEIR_BIN",
            binary.display()
        );
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", &self.address, "--config"])
            .arg(self.dir.path().join("weir.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn weir");
        // The broker prints "weir listening on ..." once it accepts connections; other
        // listeners (the WebSocket gateway) may announce themselves first.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let mut read = reader.read_line(&mut line);
        while matches!(read, Ok(n) if n > 0) && !line.contains("listening") {
            line.clear();
            read = reader.read_line(&mut line);
        }
        self.child = Some(child);
        assert!(
            matches!(read, Ok(n) if n > 0) && line.contains("listening"),
            "weir did not start: {read:?} {line:?}"
        );
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn weir_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("debug").join("weir")
}
