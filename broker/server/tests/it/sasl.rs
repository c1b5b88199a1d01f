//! SASL on a real server (in process, fjall, real sockets): PLAIN against the listener's
//! JAAS users, SCRAM-SHA-256/512 against credentials created with
//! AlterUserScramCredentials, a wrong password, an unknown mechanism, a request before
//! authentication, a stalled exchange, and KIP-368 re-authentication.
//!
//! Method: two listeners, PLAINTEXT (where the test creates SCRAM users, as an admin
//! would over a trusted listener) and SASL_PLAINTEXT; raw frames through the tests'
//! blocking client, SCRAM computed by `weir_wire::sasl`'s client side. Each failure must be
//! answered with its error and then close the connection, and the server must keep
//! serving the next client.
// A real server on real sockets: the tests measure and wait in wall-clock time.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Client, InProcess};
use weir::config::ServerConfig;
use weir_wire::domain::sasl::*;
use weir_wire::domain::*;
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{PlainMessage, ScramClient, ScramMechanism};

const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                    user_alice=\\\"alice-secret\\\";";

fn server(dir: &Path, extra: &str) -> InProcess {
    let text = format!(
        "listeners = \"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\"\n\
         \"listener.name.sasl_plaintext.plain.sasl.jaas.config\" = \"{JAAS}\"\n{extra}"
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.to_owned();
    InProcess::start_with(config)
}

fn sasl_client(server: &InProcess) -> Client {
    Client::connect(server.listener("SASL_PLAINTEXT"))
}

fn handshake(client: &mut Client, mechanism: &str) -> SaslHandshakeResponse {
    let request = ApiRequest::SaslHandshake(SaslHandshakeRequest {
        mechanism: mechanism.into(),
        version: 1,
    });
    match client.request(17, 1, &request) {
        ApiResponse::SaslHandshake(response) => response,
        other => panic!("SaslHandshake answer expected: {other:?}"),
    }
}

fn token(client: &mut Client, bytes: &[u8]) -> SaslAuthenticateResponse {
    let request = ApiRequest::SaslAuthenticate(SaslAuthenticateRequest {
        auth_bytes: Bytes::copy_from_slice(bytes),
    });
    match client.request(36, 2, &request) {
        ApiResponse::SaslAuthenticate(response) => response,
        other => panic!("SaslAuthenticate answer expected: {other:?}"),
    }
}

fn plain(client: &mut Client, user: &str, password: &str) -> SaslAuthenticateResponse {
    assert_eq!(handshake(client, "PLAIN").error, ErrorCode::NONE);
    let message = PlainMessage {
        username: user.into(),
        password: password.into(),
    };
    token(client, &message.encode())
}

/// A SCRAM exchange; the final answer (success or failure).
fn scram(
    client: &mut Client,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> SaslAuthenticateResponse {
    assert_eq!(handshake(client, mechanism.name()).error, ErrorCode::NONE);
    let (mut scram, first) = ScramClient::start(mechanism, user, password, "test-nonce");
    let server_first = token(client, &first);
    if !server_first.error.is_ok() {
        return server_first;
    }
    let client_final = scram
        .server_first(&server_first.auth_bytes)
        .expect("client-final");
    let done = token(client, &client_final);
    if done.error.is_ok() {
        scram
            .server_final(&done.auth_bytes)
            .expect("the server proves it knows the credential");
    }
    done
}

fn add_user(server: &InProcess, user: &str, mechanism: ScramMechanism, password: &str) {
    let salt = format!("salt-{user}").into_bytes();
    let request = ApiRequest::AlterUserScramCredentials(AlterUserScramCredentialsRequest {
        deletions: Vec::new(),
        upsertions: vec![ScramCredentialUpsertion {
            name: user.into(),
            mechanism: mechanism.code(),
            iterations: 4096,
            salted_password: Bytes::from(mechanism.salted_password(password, &salt, 4096)),
            salt: Bytes::from(salt),
        }],
    });
    let mut admin = server.connect();
    let ApiResponse::AlterUserScramCredentials(response) = admin.request(51, 0, &request) else {
        panic!("AlterUserScramCredentials answer expected");
    };
    assert_eq!(response.results[0].error, ErrorCode::NONE, "{response:?}");
}

fn works(client: &mut Client) {
    assert_eq!(
        client.metadata().brokers.len(),
        1,
        "authenticated requests are served"
    );
}

// Goal: PLAIN with the JAAS password authenticates and the connection is then served; a
// wrong password gets SASL_AUTHENTICATION_FAILED with a message (without the password)
// and a closed connection; the server keeps serving.
#[test]
fn plain_success_and_wrong_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "");
    let mut client = sasl_client(&server);
    assert!(
        !client.api_versions(3).is_empty(),
        "ApiVersions before authentication"
    );
    let done = plain(&mut client, "alice", "alice-secret");
    assert_eq!(done.error, ErrorCode::NONE, "{done:?}");
    assert_eq!(
        done.session_lifetime_ms, 0,
        "no re-authentication configured"
    );
    works(&mut client);

    let mut wrong = sasl_client(&server);
    let failed = plain(&mut wrong, "alice", "not-alices");
    assert_eq!(failed.error, ErrorCode::SASL_AUTHENTICATION_FAILED);
    let message = failed.error_message.expect("a message");
    assert!(
        message.contains("Invalid username or password"),
        "{message}"
    );
    assert!(!message.contains("not-alices"));
    assert!(wrong.is_closed_by_server());
    let mut unknown = sasl_client(&server);
    assert_eq!(
        plain(&mut unknown, "mallory", "x").error,
        ErrorCode::SASL_AUTHENTICATION_FAILED
    );
    assert!(unknown.is_closed_by_server());
    works(&mut server.connect());
}

// Goal: SCRAM-SHA-256 and SCRAM-SHA-512 users created through AlterUserScramCredentials
// authenticate (and the broker proves itself with its signature); a wrong password and an
// unknown user fail and close; a user created for one mechanism cannot use the other.
#[test]
fn scram_success_and_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "");
    add_user(&server, "bob", ScramMechanism::Sha256, "bob-secret");
    add_user(&server, "carol", ScramMechanism::Sha512, "carol-secret");
    for (mechanism, user, password) in [
        (ScramMechanism::Sha256, "bob", "bob-secret"),
        (ScramMechanism::Sha512, "carol", "carol-secret"),
    ] {
        let mut client = sasl_client(&server);
        let done = scram(&mut client, mechanism, user, password);
        assert_eq!(done.error, ErrorCode::NONE, "{user}: {done:?}");
        works(&mut client);
    }
    for (mechanism, user, password) in [
        (ScramMechanism::Sha256, "bob", "wrong"),
        (ScramMechanism::Sha256, "nobody", "x"),
        (ScramMechanism::Sha512, "bob", "bob-secret"),
    ] {
        let mut client = sasl_client(&server);
        let failed = scram(&mut client, mechanism, user, password);
        assert_eq!(
            failed.error,
            ErrorCode::SASL_AUTHENTICATION_FAILED,
            "{user}"
        );
        let message = failed.error_message.expect("a message");
        assert!(message.contains(mechanism.name()), "{message}");
        assert!(client.is_closed_by_server(), "{user}");
    }
}

// Goal: an unknown or disabled mechanism answers UNSUPPORTED_SASL_MECHANISM with the
// listener's enabled list, then closes.
#[test]
fn unknown_mechanism() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra =
        "\"listener.name.sasl_plaintext.sasl.enabled.mechanisms\" = \"PLAIN,SCRAM-SHA-512\"";
    let server = server(dir.path(), extra);
    for mechanism in ["GSSAPI", "SCRAM-SHA-256"] {
        let mut client = sasl_client(&server);
        let response = handshake(&mut client, mechanism);
        assert_eq!(response.error, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
        assert_eq!(response.mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
        assert!(client.is_closed_by_server());
    }
}

// Goal: nothing but ApiVersions and the SASL APIs is served before authentication: a
// DescribeCluster (which has a top-level error) is answered ILLEGAL_SASL_STATE and the
// connection closed; a Produce (no top-level error) gets an empty answer and a close; a
// SaslAuthenticate before SaslHandshake is ILLEGAL_SASL_STATE.
#[test]
fn requests_before_authentication_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "");
    let mut client = sasl_client(&server);
    let describe = ApiRequest::DescribeCluster(DescribeClusterRequest {
        include_cluster_authorized_operations: false,
        endpoint_type: 1,
    });
    let ApiResponse::DescribeCluster(response) = client.request(60, 0, &describe) else {
        panic!("DescribeCluster answer expected");
    };
    assert_eq!(response.error, ErrorCode::ILLEGAL_SASL_STATE);
    assert!(
        response.brokers.is_empty(),
        "nothing leaks before authentication"
    );
    assert!(client.is_closed_by_server());

    let mut producer = sasl_client(&server);
    let header = producer.header(0, 9);
    producer.send(
        &header,
        &common::produce_request("t", 1, common::batch("x", 1)),
    );
    // Produce has no top-level error: its error form is an empty answer, then the close.
    if let Some(frame) = producer.read_frame() {
        let response = weir_wire::codec::decode_response(&header, frame).expect("decodes");
        let ApiResponse::Produce(response) = response else {
            panic!("Produce answer expected");
        };
        assert!(
            response.topics.is_empty(),
            "nothing was accepted: {response:?}"
        );
    }
    assert!(producer.is_closed_by_server());

    let mut early = sasl_client(&server);
    assert_eq!(
        token(&mut early, b"\0alice\0alice-secret").error,
        ErrorCode::ILLEGAL_SASL_STATE
    );
    assert!(early.is_closed_by_server());
}

// Goal: a client that stops mid-exchange does not hold its connection past
// weir.sasl.authentication.timeout.ms: after the handshake, and after a SCRAM
// client-first, the server closes it; an authenticated connection is not affected.
#[test]
fn stalled_exchanges_are_closed_at_the_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "\"weir.sasl.authentication.timeout.ms\" = 700");
    add_user(&server, "bob", ScramMechanism::Sha256, "bob-secret");
    let started = Instant::now();
    let mut silent = sasl_client(&server);
    let mut handshaken = sasl_client(&server);
    assert_eq!(handshake(&mut handshaken, "PLAIN").error, ErrorCode::NONE);
    let mut mid_scram = sasl_client(&server);
    assert_eq!(
        handshake(&mut mid_scram, "SCRAM-SHA-256").error,
        ErrorCode::NONE
    );
    let (_, first) = ScramClient::start(ScramMechanism::Sha256, "bob", "bob-secret", "n");
    assert!(token(&mut mid_scram, &first).error.is_ok());
    let mut fine = sasl_client(&server);
    assert_eq!(
        plain(&mut fine, "alice", "alice-secret").error,
        ErrorCode::NONE
    );
    for client in [&mut silent, &mut handshaken, &mut mid_scram] {
        assert!(client.is_closed_by_server());
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed too late: {waited:?}"
    );
    works(&mut fine);
}

// Goal: KIP-368. With connections.max.reauth.ms the answer carries the session lifetime;
// re-authenticating as the same user before it ends keeps the connection, one that does
// not re-authenticate is closed when its session ends, and re-authenticating as another
// user fails and closes.
#[test]
fn reauthentication() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "\"connections.max.reauth.ms\" = 3000");
    add_user(&server, "bob", ScramMechanism::Sha512, "bob-secret");
    let mut keeper = sasl_client(&server);
    let done = scram(&mut keeper, ScramMechanism::Sha512, "bob", "bob-secret");
    assert_eq!(done.session_lifetime_ms, 3000);
    let mut lapser = sasl_client(&server);
    assert_eq!(
        plain(&mut lapser, "alice", "alice-secret").session_lifetime_ms,
        3000
    );
    // A third of the lifetime between re-authentications: a SCRAM exchange in a debug
    // build on a loaded machine took long enough to let a 1500 ms session lapse.
    for _ in 0..3 {
        sleep(Duration::from_millis(1000));
        let again = scram(&mut keeper, ScramMechanism::Sha512, "bob", "bob-secret");
        assert_eq!(again.error, ErrorCode::NONE, "{again:?}");
        works(&mut keeper);
    }
    assert!(
        lapser.is_closed_by_server(),
        "the session ended without re-authentication"
    );

    let mut switcher = sasl_client(&server);
    assert_eq!(
        plain(&mut switcher, "alice", "alice-secret").error,
        ErrorCode::NONE
    );
    let switched = scram(&mut switcher, ScramMechanism::Sha512, "bob", "bob-secret");
    assert_eq!(switched.error, ErrorCode::SASL_AUTHENTICATION_FAILED);
    assert!(switcher.is_closed_by_server());
}

// Goal: `weir user add|list|remove` manage SCRAM users, and every client command takes
// `--command-config` to authenticate: a user added over the trusted listener logs in over
// SASL_PLAINTEXT with SCRAM (listing users, creating a topic), a wrong password fails the
// command with SASL_AUTHENTICATION_FAILED, and a removed credential no longer works.
// Method: the real `weir` binary against the in-process server.
#[test]
fn user_cli_and_command_config() {
    use common::{run_cli_at, stdout_of};
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "");
    let plain = server.listener("PLAINTEXT").to_owned();
    let sasl = server.listener("SASL_PLAINTEXT").to_owned();
    let added = run_cli_at(
        &plain,
        &[
            "user",
            "add",
            "dora",
            "--mechanism",
            "SCRAM-SHA-256",
            "--password",
            "dora-secret",
        ],
    );
    assert!(stdout_of(&added).contains("user=dora mechanism=SCRAM-SHA-256"));
    let properties = |password: &str| {
        let path = dir.path().join(format!("client-{password}.properties"));
        let text = format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=dora\nsasl.password={password}\n"
        );
        std::fs::write(&path, text).expect("write properties");
        path.display().to_string()
    };
    let good = properties("dora-secret");
    let listed = run_cli_at(&sasl, &["user", "list", "--command-config", &good]);
    assert!(stdout_of(&listed).contains("user=dora mechanism=SCRAM-SHA-256 iterations=4096"));
    let created = run_cli_at(
        &sasl,
        &["topic", "create", "sasl-topic", "--command-config", &good],
    );
    stdout_of(&created);
    let bad = properties("wrong");
    let refused = run_cli_at(&sasl, &["topic", "list", "--command-config", &bad]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password is not echoed: {stderr}"
    );
    let removed = run_cli_at(
        &plain,
        &["user", "remove", "dora", "--mechanism", "SCRAM-SHA-256"],
    );
    stdout_of(&removed);
    let gone = run_cli_at(&sasl, &["topic", "list", "--command-config", &good]);
    assert!(
        !gone.status.success(),
        "a removed credential no longer authenticates"
    );
}
