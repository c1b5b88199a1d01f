//! weir's client commands over TLS (issue 15): `--command-config` with `security.protocol`
//! SSL and SASL_SSL (SCRAM-SHA-256), and a client certificate (mTLS) under both property
//! spellings (librdkafka's certificate + key files, Java's one-file PEM keystore).
//!
//! Method: an in-process server (fjall, real sockets) with PLAINTEXT, SSL, SASL_SSL and an
//! SSL listener requiring client certificates (MTLS); certificates made here with rcgen; the
//! real `weir` binary runs `user`, `topic`, `produce`, `consume`, `group`, `txn`, `cluster`
//! and `bench` against the TLS listeners. Failures (a CA that did not sign the broker, a
//! missing client certificate, a wrong password, TLS against a plaintext port) must end the
//! command quickly with an error that says what is wrong.
// Real processes on real sockets: the tests measure wall-clock time.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::certs::TestCa;
use common::{run_cli_with_config, run_cli_with_stdin, stdout_of, InProcess};
use weir::config::ServerConfig;

/// How long a failing command may take: well under the 10 s connect timeout would be a
/// refusal, not a hang; the bound leaves room for a loaded machine.
const FAILURE_SECONDS_MAX: u64 = 20;

struct Setup {
    server: InProcess,
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("weir test CA");
        let (keystore, truststore) = ca.write_files(dir.path(), "b");
        let listeners = ["PLAINTEXT", "SSL", "SASL_SSL", "MTLS"]
            .map(|name| format!("{name}://127.0.0.1:0"))
            .join(",");
        let map = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL";
        let text = format!(
            r#"
            listeners = "{listeners}"
            "listener.security.protocol.map" = "{map}"
            "ssl.keystore.type" = "PEM"
            "ssl.keystore.location" = "{}"
            "ssl.truststore.type" = "PEM"
            "ssl.truststore.location" = "{}"
            "listener.name.mtls.ssl.client.auth" = "required"
            "group.initial.rebalance.delay.ms" = 0
            "weir.gateway.listener" = "off"
            "#,
            keystore.display(),
            truststore.display()
        );
        let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
        config.data_dir = dir.path().join("data");
        let server = InProcess::start_with(config);
        Setup { server, dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a `--command-config` file; returns its path as a string.
    fn properties(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write properties");
        path.display().to_string()
    }

    fn ca_location(&self) -> String {
        self.path("b-ca.pem").display().to_string()
    }
}

/// Produce `lines` to `topic` and read them back from the beginning, both over `config`.
fn produce_and_consume(bootstrap: &str, config: &str, topic: &str, lines: &[&str]) {
    let text = lines.join("\n") + "\n";
    stdout_of(&run_cli_with_stdin(
        bootstrap,
        config,
        &["produce", topic],
        &text,
    ));
    let count = lines.len().to_string();
    let args = [
        "consume",
        topic,
        "--from",
        "earliest",
        "--max-messages",
        &count,
        "--timeout-ms",
        "15000",
    ];
    let consumed = stdout_of(&run_cli_with_config(bootstrap, config, &args));
    assert_eq!(consumed.lines().collect::<Vec<_>>(), lines, "{consumed}");
}

/// Run a command that must fail; returns its stderr after checking it failed in time.
fn failing(bootstrap: &str, config: &str, args: &[&str]) -> String {
    let started = Instant::now();
    let output = run_cli_with_config(bootstrap, config, args);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("{args:?} failed as expected in {elapsed:?}: {stderr}");
    assert!(!output.status.success(), "succeeded: {stderr}");
    assert!(
        elapsed < Duration::from_secs(FAILURE_SECONDS_MAX),
        "took {elapsed:?}: {stderr}"
    );
    stderr
}

// Goal: every kind of client command works over SSL and SASL_SSL with SCRAM-SHA-256.
// Method: create the SCRAM user over SSL (`weir user`), then topic/produce/consume/group/
// txn/cluster/bench over SSL and SASL_SSL, checking what the commands print.
#[test]
fn client_commands_over_ssl_and_sasl_ssl() {
    let setup = Setup::start();
    let ssl = setup.server.listener("SSL").to_owned();
    let sasl_ssl = setup.server.listener("SASL_SSL").to_owned();
    let ca = setup.ca_location();
    let ssl_config = setup.properties(
        "ssl.properties",
        &format!("security.protocol=SSL\nssl.ca.location={ca}\n"),
    );
    let scram_config = setup.properties(
        "scram.properties",
        &format!(
            "security.protocol=SASL_SSL\nssl.ca.location={ca}\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=alice\nsasl.password=alice-secret\n"
        ),
    );

    let add = [
        "user",
        "add",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password",
        "alice-secret",
    ];
    stdout_of(&run_cli_with_config(&ssl, &ssl_config, &add));
    let users = stdout_of(&run_cli_with_config(&ssl, &ssl_config, &["user", "list"]));
    assert!(users.contains("alice"), "{users}");

    let create = ["topic", "create", "tls-t", "--partitions", "2"];
    stdout_of(&run_cli_with_config(&ssl, &ssl_config, &create));
    let listed = stdout_of(&run_cli_with_config(
        &sasl_ssl,
        &scram_config,
        &["topic", "list"],
    ));
    assert!(listed.lines().any(|line| line == "tls-t"), "{listed}");
    let described = stdout_of(&run_cli_with_config(
        &ssl,
        &ssl_config,
        &["topic", "describe", "tls-t"],
    ));
    assert!(described.contains("tls-t"), "{described}");

    produce_and_consume(&ssl, &ssl_config, "over-ssl", &["a", "b", "c"]);
    produce_and_consume(&sasl_ssl, &scram_config, "over-sasl-ssl", &["x", "y"]);

    // A group consumer, then the group tools, over SASL_SSL.
    let group_consume = [
        "consume",
        "over-sasl-ssl",
        "--group",
        "tls-group",
        "--from",
        "earliest",
        "--max-messages",
        "2",
        "--timeout-ms",
        "15000",
    ];
    stdout_of(&run_cli_with_config(
        &sasl_ssl,
        &scram_config,
        &group_consume,
    ));
    let groups = stdout_of(&run_cli_with_config(
        &sasl_ssl,
        &scram_config,
        &["group", "list"],
    ));
    assert!(groups.contains("tls-group"), "{groups}");
    let described = stdout_of(&run_cli_with_config(
        &sasl_ssl,
        &scram_config,
        &["group", "describe", "tls-group"],
    ));
    assert!(described.contains("over-sasl-ssl"), "{described}");

    stdout_of(&run_cli_with_config(
        &sasl_ssl,
        &scram_config,
        &["txn", "list"],
    ));
    let cluster = stdout_of(&run_cli_with_config(
        &ssl,
        &ssl_config,
        &["cluster", "describe"],
    ));
    let ssl_port = ssl.rsplit_once(':').map_or("", |(_, port)| port);
    let port_field = format!("Port: {ssl_port}");
    assert!(
        cluster.contains(&port_field),
        "the SSL listener's port: {cluster}"
    );

    let bench = [
        "bench",
        "produce",
        "--topic",
        "tls-bench",
        "--num-records",
        "2000",
    ];
    let produced = stdout_of(&run_cli_with_config(&sasl_ssl, &scram_config, &bench));
    assert!(produced.contains("2000"), "{produced}");
    let bench = [
        "bench",
        "consume",
        "--topic",
        "tls-bench",
        "--num-records",
        "2000",
    ];
    let consumed = stdout_of(&run_cli_with_config(&sasl_ssl, &scram_config, &bench));
    assert!(consumed.contains("2000"), "{consumed}");
}

// Goal: a client certificate is presented under both spellings, and the MTLS listener
// refuses a client without one with an error, not a hang. Method: certificate + key files,
// a one-file keystore, and no certificate.
#[test]
fn client_certificate_mtls() {
    let setup = Setup::start();
    let mtls = setup.server.listener("MTLS").to_owned();
    let ca = setup.ca_location();
    let leaf = setup.ca.leaf("client-bob");
    let (cert, key, keystore) = (
        setup.path("bob.crt"),
        setup.path("bob.key"),
        setup.path("bob-keystore.pem"),
    );
    std::fs::write(&cert, &leaf.cert_pem).expect("write cert");
    std::fs::write(&key, &leaf.key_pem).expect("write key");
    std::fs::write(&keystore, leaf.keystore_pem()).expect("write keystore");

    let librdkafka = setup.properties(
        "mtls-librdkafka.properties",
        &format!(
            "security.protocol=SSL\nssl.ca.location={ca}\nssl.certificate.location={}\n\
             ssl.key.location={}\n",
            cert.display(),
            key.display()
        ),
    );
    let java = setup.properties(
        "mtls-java.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            keystore.display()
        ),
    );
    stdout_of(&run_cli_with_config(
        &mtls,
        &librdkafka,
        &["topic", "create", "mtls-t"],
    ));
    produce_and_consume(&mtls, &java, "mtls-t", &["one", "two"]);

    let anonymous = setup.properties(
        "anonymous.properties",
        &format!("security.protocol=SSL\nssl.ca.location={ca}\n"),
    );
    let stderr = failing(&mtls, &anonymous, &["topic", "list"]);
    assert!(stderr.contains("set ssl.certificate.location"), "{stderr}");
}

// Goal: misconfigurations fail fast and say why: a CA that did not sign the broker, a
// wrong SCRAM password, TLS against a plaintext port, and SSL without ssl.ca.location.
// Method: one command per case, timed, stderr checked.
#[test]
fn tls_misconfigurations_fail_clearly() {
    let setup = Setup::start();
    let ssl = setup.server.listener("SSL").to_owned();
    let sasl_ssl = setup.server.listener("SASL_SSL").to_owned();
    let plaintext = setup.server.address.clone();

    let stranger = TestCa::new("another CA");
    let other_ca = setup.path("other-ca.pem");
    std::fs::write(&other_ca, &stranger.pem).expect("write CA");
    let wrong_ca = setup.properties(
        "wrong-ca.properties",
        &format!(
            "security.protocol=SSL\nssl.ca.location={}\n",
            other_ca.display()
        ),
    );
    let stderr = failing(&ssl, &wrong_ca, &["topic", "list"]);
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    assert!(
        stderr.contains("not signed by a CA in ssl.ca.location"),
        "{stderr}"
    );

    let ca = setup.ca_location();
    let wrong_password = setup.properties(
        "wrong-password.properties",
        &format!(
            "security.protocol=SASL_SSL\nssl.ca.location={ca}\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=alice\nsasl.password=not-her-password\n"
        ),
    );
    let stderr = failing(&sasl_ssl, &wrong_password, &["topic", "list"]);
    assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");
    assert!(!stderr.contains("not-her-password"), "{stderr}");

    let ssl_config = setup.properties(
        "ssl.properties",
        &format!("security.protocol=SSL\nssl.ca.location={ca}\n"),
    );
    let stderr = failing(&plaintext, &ssl_config, &["topic", "list"]);
    assert!(stderr.contains("TLS"), "{stderr}");

    let no_ca = setup.properties("no-ca.properties", "security.protocol=SSL\n");
    let stderr = failing(&ssl, &no_ca, &["topic", "list"]);
    assert!(stderr.contains("ssl.ca.location"), "{stderr}");
}
