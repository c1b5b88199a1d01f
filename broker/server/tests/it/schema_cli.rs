//! `weir schema list|get|register|check` against a real broker's registry over HTTP.
//!
//! Method: an in-process server with the registry on a free port; the real `weir` binary
//! registers a schema from a file and from stdin, lists, gets by subject and by id, and
//! checks a compatible and an incompatible evolution (which must exit non-zero and say
//! what broke); an unknown subject prints the registry's error code. Over https
//! (`weir.http.ssl.enable`): `--ca` with the CA that signed the registry's certificate gets
//! through; another CA or no `--ca` fail with a clear message, plain http to it fails.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::certs::TestCa;
use common::{run_cli, InProcess};
use weir::config::{ServerConfig, ServiceListen};

const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
    {"name":"age","type":"int","default":0}]}"#;
const BAD: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
    {"name":"email","type":"string"}]}"#;

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn schema_commands_against_a_real_registry() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::from_toml_str("", "test").expect("defaults are valid");
    config.listen = "127.0.0.1:0".to_owned();
    config.data_dir = data_dir.path().to_owned();
    config.gateway = None;
    config.rest_proxy = None;
    config.schema_registry = Some(ServiceListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    let server = InProcess::start_with(config);
    let url = server.schema_registry_url().expect("the registry is on");
    let files = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, body: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, body).expect("write schema");
        path.to_string_lossy().into_owned()
    };
    let (v1, v2, bad) = (
        write("v1.avsc", V1),
        write("v2.avsc", V2),
        write("bad.avsc", BAD),
    );

    let registered = run_cli(&[
        "schema",
        "register",
        "users-value",
        "--file",
        &v1,
        "--url",
        &url,
    ]);
    assert_eq!(stdout(&registered).trim(), "1");
    // From stdin, as JSON Schema.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "schema",
            "register",
            "orders-value",
            "--file",
            "-",
            "--type",
            "json",
        ])
        .args(["--url", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weir");
    let schema = r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(schema.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("weir exits");
    assert_eq!(stdout(&output).trim(), "2");

    let listed = run_cli(&["schema", "list", "--url", &url]);
    assert_eq!(stdout(&listed), "orders-value\nusers-value\n");
    let got = run_cli(&["schema", "get", "users-value", "--url", &url]);
    let got: serde_json::Value = serde_json::from_str(&stdout(&got)).expect("JSON");
    assert_eq!(
        (got["id"].clone(), got["version"].clone()),
        (1.into(), 1.into())
    );
    let by_id = run_cli(&["schema", "get", "--id", "2", "--url", &url]);
    assert!(
        stdout(&by_id).contains("\"schemaType\": \"JSON\""),
        "{}",
        text(&by_id)
    );

    let compatible = run_cli(&[
        "schema",
        "check",
        "users-value",
        "--file",
        &v2,
        "--url",
        &url,
    ]);
    assert_eq!(stdout(&compatible).trim(), "compatible");
    let incompatible = run_cli(&[
        "schema",
        "check",
        "users-value",
        "--file",
        &bad,
        "--url",
        &url,
    ]);
    assert!(!incompatible.status.success(), "{}", text(&incompatible));
    let printed = String::from_utf8_lossy(&incompatible.stdout);
    assert!(
        printed.starts_with("incompatible\n") && printed.contains("email"),
        "{printed}"
    );

    let missing = run_cli(&["schema", "get", "nobody", "--url", &url]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("40401"),
        "{}",
        text(&missing)
    );
}

// Goal: `weir schema` talks to a registry served over https, verifying its certificate
// against `--ca`, and refuses clearly what it cannot trust. Method: a registry with
// `weir.http.ssl.enable` and an rcgen certificate for localhost/127.0.0.1; register and get
// by id with the right CA; a wrong CA, a missing --ca, --ca with http:// and a bad scheme
// must fail with a message saying why, and plain http to the https port must fail.
#[test]
fn schema_commands_over_https() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir schema CLI CA");
    let (keystore, truststore) = ca.write_files(dir.path(), "registry");
    let toml = format!(
        "\"ssl.keystore.type\" = \"PEM\"\n\"ssl.keystore.location\" = \"{}\"\n\
         \"weir.http.ssl.enable\" = true\n",
        keystore.display()
    );
    let mut config = ServerConfig::from_toml_str(&toml, "test").expect("valid config");
    config.listen = "127.0.0.1:0".to_owned();
    config.data_dir = dir.path().join("data");
    config.gateway = None;
    config.rest_proxy = None;
    config.schema_registry = Some(ServiceListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    let server = InProcess::start_with(config);
    let plain = server.schema_registry_url().expect("the registry is on");
    let url = plain.replacen("http://", "https://", 1);
    let schema = dir.path().join("v1.avsc");
    std::fs::write(&schema, V1).expect("write schema");
    let schema = schema.to_string_lossy().into_owned();
    let trust = truststore.to_string_lossy().into_owned();

    let registered = run_cli(&[
        "schema",
        "register",
        "tls-value",
        "--file",
        &schema,
        "--url",
        &url,
        "--ca",
        &trust,
    ]);
    assert_eq!(stdout(&registered).trim(), "1");
    let by_id = run_cli(&["schema", "get", "--id", "1", "--url", &url, "--ca", &trust]);
    assert!(stdout(&by_id).contains("User"), "{}", text(&by_id));

    let other = TestCa::new("another CA");
    let other_path = dir.path().join("other-ca.pem");
    std::fs::write(&other_path, &other.pem).expect("write CA");
    let other_path = other_path.to_string_lossy().into_owned();
    let refusals: [(Vec<&str>, &str); 4] = [
        (
            vec!["--url", &url, "--ca", &other_path],
            "not signed by a CA in --ca",
        ),
        (vec!["--url", &url], "needs --ca FILE"),
        (
            vec!["--url", &plain, "--ca", &trust],
            "--ca is for an https:// --url",
        ),
        (
            vec!["--url", "ftp://127.0.0.1:1"],
            "http://HOST:PORT or https://HOST:PORT",
        ),
    ];
    for (args, expected) in refusals {
        let mut full = vec!["schema", "list"];
        full.extend(args);
        let output = run_cli(&full);
        assert!(!output.status.success(), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected}: {}", text(&output));
    }
    // Plain http against the https port: a clear failure, and the registry keeps serving.
    let plain_to_tls = run_cli(&["schema", "list", "--url", &plain]);
    assert!(!plain_to_tls.status.success(), "{}", text(&plain_to_tls));
    let listed = run_cli(&["schema", "list", "--url", &url, "--ca", &trust]);
    assert_eq!(stdout(&listed), "tls-value\n");
}
