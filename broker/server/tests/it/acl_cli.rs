//! `weir acl add|list|remove` against a real broker with ACLs enforced, following
//! docs/security.md's walkthrough: one SASL_SSL listener, an operator authenticating with
//! PLAIN as a super user, a SCRAM user made over that listener, and ACLs granted with
//! kafka-acls' `--producer` / `--consumer` conveniences.
//!
//! Method: an in-process server (fjall, real sockets, `authorizer.class.name = "weir"`),
//! certificates from rcgen, the real `weir` binary for every step. What alice may do must
//! follow the ACLs: denied before `acl add`, allowed after, denied again after `acl remove`;
//! `acl list` must print kafka-acls' format.
// Real processes on real sockets.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::process::Output;

use common::certs::TestCa;
use common::{run_cli_with_config, run_cli_with_stdin, stdout_of, InProcess};
use weir::config::ServerConfig;

const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                    user_admin=\\\"admin-secret\\\";";

/// `weir produce TOPIC` with `lines` on stdin.
fn produce(bootstrap: &str, config: &str, topic: &str, lines: &str) -> Output {
    run_cli_with_stdin(bootstrap, config, &["produce", topic], lines)
}

fn consume(bootstrap: &str, config: &str, topic: &str, group: &str) -> Output {
    let args = [
        "consume",
        topic,
        "--group",
        group,
        "--from",
        "earliest",
        "--max-messages",
        "2",
        "--timeout-ms",
        "15000",
    ];
    run_cli_with_config(bootstrap, config, &args)
}

fn stderr_of(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// Goal: the walkthrough works end to end and `weir acl` changes what a user may do.
// Method: see the module docs; each ACL step is checked by what alice can then do.
#[test]
fn acl_cli_grants_and_revokes_a_producer_and_a_consumer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    let (keystore, truststore) = ca.write_files(dir.path(), "b");
    let text = format!(
        r#"
        listeners = "SASL_SSL://127.0.0.1:0"
        "ssl.keystore.type" = "PEM"
        "ssl.keystore.location" = "{}"
        "sasl.enabled.mechanisms" = "PLAIN,SCRAM-SHA-256"
        "listener.name.sasl_ssl.plain.sasl.jaas.config" = "{JAAS}"
        "authorizer.class.name" = "weir"
        "super.users" = "User:admin"
        "group.initial.rebalance.delay.ms" = 0
        "weir.gateway.listener" = "off"
        "#,
        keystore.display()
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.path().join("data");
    let server = InProcess::start_with(config);
    let bootstrap = server.listener("SASL_SSL").to_owned();
    let properties = |name: &str, mechanism: &str, user: &str, password: &str| {
        let path = dir.path().join(name);
        let text = format!(
            "security.protocol=SASL_SSL\nssl.ca.location={}\nsasl.mechanism={mechanism}\n\
             sasl.username={user}\nsasl.password={password}\n",
            truststore.display()
        );
        std::fs::write(&path, text).expect("write properties");
        path.display().to_string()
    };
    let admin = properties("admin.properties", "PLAIN", "admin", "admin-secret");
    let alice = properties("alice.properties", "SCRAM-SHA-256", "alice", "alice-secret");
    let b = bootstrap.as_str();

    let add_user = [
        "user",
        "add",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password",
        "alice-secret",
    ];
    stdout_of(&run_cli_with_config(b, &admin, &add_user));
    stdout_of(&run_cli_with_config(
        b,
        &admin,
        &["topic", "create", "orders"],
    ));

    // No ACL yet: alice may not write.
    let denied = stderr_of(&produce(b, &alice, "orders", "a\nb\n"));
    assert!(denied.contains("TOPIC_AUTHORIZATION_FAILED"), "{denied}");

    let grant = [
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--producer",
    ];
    let added = stdout_of(&run_cli_with_config(
        b,
        &admin,
        &[&grant[..], &["--topic", "orders"]].concat(),
    ));
    let pattern = "`ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`";
    assert!(
        added.contains(&format!("Adding ACLs for resource {pattern}: \n")),
        "{added}"
    );
    assert!(
        added.contains(&format!("Current ACLs for resource {pattern}: \n")),
        "{added}"
    );
    stdout_of(&produce(b, &alice, "orders", "a\nb\n"));

    // Producing is not consuming: the group read needs --consumer.
    let denied = stderr_of(&consume(b, &alice, "orders", "billing"));
    assert!(denied.contains("AUTHORIZATION_FAILED"), "{denied}");
    let grant = [
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--consumer",
        "--topic",
        "orders",
        "--group",
        "billing",
    ];
    stdout_of(&run_cli_with_config(b, &admin, &grant));
    let consumed = stdout_of(&consume(b, &alice, "orders", "billing"));
    assert_eq!(consumed.lines().collect::<Vec<_>>(), ["a", "b"]);

    let listed = stdout_of(&run_cli_with_config(
        b,
        &admin,
        &["acl", "list", "--topic", "orders"],
    ));
    let expected = format!(
        "Current ACLs for resource {pattern}: \n \
         \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n\
         \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n\
         \t(principal=User:alice, host=*, operation=CREATE, permissionType=ALLOW)\n\
         \t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW) \n"
    );
    assert_eq!(listed.trim_end(), expected.trim_end(), "{listed}");
    let by_principal = ["acl", "list", "--principal", "User:alice"];
    let listed = stdout_of(&run_cli_with_config(b, &admin, &by_principal));
    assert!(
        listed.contains("resourceType=GROUP, name=billing"),
        "{listed}"
    );

    // Without --force and without a terminal, remove refuses and removes nothing.
    let remove = [
        "acl",
        "remove",
        "--allow-principal",
        "User:alice",
        "--topic",
        "orders",
    ];
    let refused = stderr_of(&run_cli_with_config(b, &admin, &remove));
    assert!(refused.contains("--force"), "{refused}");
    stdout_of(&produce(b, &alice, "orders", "c\n"));
    let removed = stdout_of(&run_cli_with_config(
        b,
        &admin,
        &[&remove[..], &["--force"]].concat(),
    ));
    assert!(removed.contains("operation=WRITE"), "{removed}");
    let denied = stderr_of(&produce(b, &alice, "orders", "d\n"));
    assert!(denied.contains("TOPIC_AUTHORIZATION_FAILED"), "{denied}");

    // alice is no operator.
    let denied = stderr_of(&run_cli_with_config(b, &alice, &["acl", "list"]));
    assert!(denied.contains("CLUSTER_AUTHORIZATION_FAILED"), "{denied}");
}
