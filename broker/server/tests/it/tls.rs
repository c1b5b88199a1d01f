//! TLS listeners through the real server (issue 15 item 1): certificates are generated here
//! with rcgen, the server runs in-process over fjall, clients are rustls streams carrying
//! raw Kafka frames (weir-wire's client codec).

// Real sockets against a real server: wall-clock deadlines and polling are the point here.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::certs::{client_config, tls_connect, try_tls_connect, TestCa, TlsClient};
use common::{batch, produce_request, Client, InProcess};
use weir::config::ServerConfig;
use weir::tls::{ClientAuth, Keystore, ServerTls, TlsSettings, TlsVersions, Truststore};
use weir_wire::domain::ApiResponse;

/// A config with a PLAINTEXT listener first and an SSL one, both on free ports.
fn two_listeners(dir: &Path, extra: &str) -> ServerConfig {
    let keystore = dir.join("a-broker.pem");
    let truststore = dir.join("a-ca.pem");
    let text = format!(
        r#"
        listeners = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"
        ssl.keystore.type = "PEM"
        ssl.keystore.location = "{}"
        ssl.truststore.type = "PEM"
        ssl.truststore.location = "{}"
        "weir.gateway.listener" = "off"
        {extra}
        "#,
        keystore.display(),
        truststore.display()
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.join("data");
    config
}

/// Produce three records and read them back over `client`.
fn round_trip<S: Read + Write>(client: &mut Client<S>, topic: &str) {
    let created = client.create_topic(topic, 1);
    assert_eq!(created.topics[0].error.0, 0, "{created:?}");
    let (error, base_offset) = client.produce(topic, -1, batch("tls", 3));
    assert_eq!((error, base_offset), (0, 0));
    let records = client.fetch_all(topic, 3);
    let values: Vec<String> = (records.iter())
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
        .collect();
    assert_eq!(values, ["tls-0", "tls-1", "tls-2"]);
}

/// Send an ApiVersions request without waiting for the answer; write errors are ignored
/// (the server may already have closed).
fn send_api_versions<S: Read + Write>(client: &mut Client<S>) {
    let header = client.header(18, 3);
    let mut out = bytes::BytesMut::new();
    weir_wire::codec::encode_api_versions_request(&header, &mut out).expect("encode");
    let _ = client.stream.write_all(&out);
    let _ = client.stream.flush();
}

/// True when the server ends `client`'s connection (alert, EOF or reset) instead of
/// answering a request.
fn refused(client: &mut TlsClient) -> bool {
    send_api_versions(client);
    client.is_closed_by_server()
}

// Goal: a TLS client produces and fetches through the SSL listener, and Metadata on each
// listener names this broker at that listener's address (so a TLS client is never sent to
// the plaintext port). Method: PLAINTEXT + SSL listeners, one client on each.
#[test]
fn tls_produce_fetch_round_trip_and_per_listener_metadata() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let server = InProcess::start_with(two_listeners(dir.path(), ""));
    let ssl = server.listener("SSL").to_owned();
    let mut client = tls_connect(&ssl, client_config(&ca.pem, None));
    let apis = client.api_versions(3);
    assert!(apis.iter().any(|&(key, _, _)| key == 0), "{apis:?}");
    let metadata = client.metadata();
    let broker = &metadata.brokers[0];
    assert_eq!(format!("{}:{}", broker.host, broker.port), ssl);
    round_trip(&mut client, "over-tls");

    let mut plain = server.connect();
    let metadata = plain.metadata();
    let broker = &metadata.brokers[0];
    assert_eq!(format!("{}:{}", broker.host, broker.port), server.address);
    assert_eq!(plain.fetch_all("over-tls", 3).len(), 3, "same log on both");
}

// Goal: produce frames far larger than a TLS record, pipelined, arrive whole and in order
// through the SSL listener's buffered reads (`tls::buffered_reads`): a frame spans many TLS
// records and many refills of the read buffer, and a refill can end inside a record or a
// length prefix. Method: twelve produces of 20 000 records each written back to back before
// any answer is read; each answer's base offset follows the one before, and the last record
// reads back.
#[test]
fn large_pipelined_produces_over_tls() {
    const REQUESTS: usize = 12;
    const RECORDS: usize = 20_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let server = InProcess::start_with(two_listeners(dir.path(), ""));
    let ssl = server.listener("SSL").to_owned();
    let mut client = tls_connect(&ssl, client_config(&ca.pem, None));
    let created = client.create_topic("large", 1);
    assert_eq!(created.topics[0].error.0, 0, "{created:?}");
    let batch = batch("large", RECORDS);
    assert!(
        batch.len() > 8 * 16 * 1024,
        "spans many TLS records: {}",
        batch.len()
    );
    let headers: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let header = client.header(0, 9);
            client.send(&header, &produce_request("large", 1, batch.clone()));
            header
        })
        .collect();
    for (index, header) in headers.iter().enumerate() {
        let frame = client.read_frame().expect("produce answer");
        let response = weir_wire::codec::decode_response(header, frame).expect("decode");
        let ApiResponse::Produce(response) = response else {
            panic!("not a Produce answer: {response:?}");
        };
        let partition = &response.topics[0].partitions[0];
        let expected = i64::try_from(index * RECORDS).expect("small");
        assert_eq!((partition.error.0, partition.base_offset), (0, expected));
    }
    let last = i64::try_from(REQUESTS * RECORDS - 1).expect("small");
    let (error, high_watermark, records) = client.fetch("large", last);
    assert_eq!((error, high_watermark), (0, last + 1));
    let value = records.iter().find(|record| record.offset == last);
    let value = value.and_then(|record| record.value.as_deref());
    assert_eq!(value, Some(format!("large-{}", RECORDS - 1).as_bytes()));
}

// Goal: ssl.client.auth=required refuses a client without a certificate or with one from
// another CA, and accepts one the truststore vouches for. Method: three clients.
#[test]
fn client_auth_required() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let config = two_listeners(dir.path(), "ssl.client.auth = \"required\"");
    let server = InProcess::start_with(config);
    let ssl = server.listener("SSL").to_owned();

    // TLS 1.3 finishes the client's side before the server checks its certificate: the
    // refusal arrives as an alert on the first read.
    match try_tls_connect(&ssl, client_config(&ca.pem, None)) {
        Err(_) => {}
        Ok(mut anonymous) => assert!(refused(&mut anonymous), "no certificate accepted"),
    }
    let stranger = TestCa::new("another CA").leaf("mallory");
    match try_tls_connect(&ssl, client_config(&ca.pem, Some(&stranger))) {
        Err(_) => {}
        Ok(mut untrusted) => assert!(refused(&mut untrusted), "untrusted certificate accepted"),
    }
    let alice = ca.leaf("alice");
    let mut trusted = tls_connect(&ssl, client_config(&ca.pem, Some(&alice)));
    round_trip(&mut trusted, "mtls");
}

// Goal (issue 15 item 5): expired certificates are refused on both sides: a client
// refuses a server whose certificate expired, and an `ssl.client.auth=required` listener
// refuses a client whose certificate expired (though its CA is trusted), then keeps
// serving a valid client. Method: rcgen leaves valid only in 2020.
#[test]
fn expired_certificates_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let config = two_listeners(dir.path(), "ssl.client.auth = \"required\"");
    let server = InProcess::start_with(config);
    let ssl = server.listener("SSL").to_owned();
    let expired = ca.expired_leaf("old-alice");
    match try_tls_connect(&ssl, client_config(&ca.pem, Some(&expired))) {
        Err(_) => {}
        Ok(mut stale) => assert!(refused(&mut stale), "an expired client certificate"),
    }
    let alice = ca.leaf("alice");
    let mut trusted = tls_connect(&ssl, client_config(&ca.pem, Some(&alice)));
    round_trip(&mut trusted, "after-expired-client");

    // A server whose certificate expired: the client's handshake fails with a reason.
    let old_dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        old_dir.path().join("a-broker.pem"),
        ca.expired_leaf("broker").keystore_pem(),
    )
    .expect("write keystore");
    std::fs::write(old_dir.path().join("a-ca.pem"), &ca.pem).expect("write truststore");
    let old_server = InProcess::start_with(two_listeners(old_dir.path(), ""));
    let old_ssl = old_server.listener("SSL").to_owned();
    let error = try_tls_connect(&old_ssl, client_config(&ca.pem, None))
        .err()
        .expect("an expired server certificate was accepted");
    assert!(error.to_string().contains("expired"), "{error}");
    // The broker keeps serving its plaintext listener.
    assert!(!old_server.connect().api_versions(3).is_empty());
}

// Goal: a plaintext client on the TLS port and a TLS client on the plaintext port get a
// closed connection, and the broker keeps serving everyone else on both ports. Method: the
// wrong client first, then a right one on each port.
#[test]
fn wrong_protocol_on_a_port_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let server = InProcess::start_with(two_listeners(dir.path(), ""));
    let ssl = server.listener("SSL").to_owned();

    let mut plaintext_on_tls = Client::connect(&ssl);
    send_api_versions(&mut plaintext_on_tls);
    // The server answers with at most a TLS alert record (content type 21), then closes.
    let mut answer = Vec::new();
    let read = plaintext_on_tls.stream.read_to_end(&mut answer);
    let timed_out = read.as_ref().is_err_and(|error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    assert!(!timed_out, "plaintext on the TLS port was not closed");
    assert!(
        answer
            .first()
            .is_none_or(|&content_type| content_type == 21),
        "plaintext on the TLS port got {answer:?}"
    );

    let tls_on_plaintext = try_tls_connect(&server.address, client_config(&ca.pem, None));
    assert!(
        tls_on_plaintext.is_err(),
        "a TLS handshake with the plaintext port"
    );

    let mut tls = tls_connect(&ssl, client_config(&ca.pem, None));
    round_trip(&mut tls, "still-serving");
    assert_eq!(server.connect().fetch_all("still-serving", 3).len(), 3);
}

// Goal: a client that stops mid-handshake is closed after the handshake timeout instead of
// holding its connection forever, and others are served meanwhile. Method: 300 ms timeout;
// one socket sends nothing, one sends half a ClientHello; both must see EOF in time.
#[test]
fn stalled_handshake_is_closed_after_the_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let config = two_listeners(dir.path(), "weir.ssl.handshake.timeout.ms = 300");
    let server = InProcess::start_with(config);
    let ssl = server.listener("SSL").to_owned();
    let silent = TcpStream::connect(&ssl).expect("connect");
    let mut partial = TcpStream::connect(&ssl).expect("connect");
    // A TLS record header announcing a 512-byte handshake message, then only 3 bytes of it.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .expect("write");
    let mut tls = tls_connect(&ssl, client_config(&ca.pem, None));
    round_trip(&mut tls, "meanwhile");
    for mut stalled in [silent, partial] {
        let started = Instant::now();
        stalled
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let read = stalled.read(&mut byte);
        assert!(
            matches!(read, Ok(0) | Err(_)) && started.elapsed() < Duration::from_secs(4),
            "a stalled handshake was not closed in time: {read:?} after {:?}",
            started.elapsed()
        );
    }
}

// Goal: certificates are reloaded without a restart: new connections get the new one, an
// established connection keeps working, and a broken new file keeps the previous
// certificate. Method: 100 ms reload interval; swap the keystore from CA a's to CA b's,
// then to garbage.
#[test]
fn certificate_reload_without_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first_ca = TestCa::new("first CA");
    let (keystore, _) = first_ca.write_files(dir.path(), "a");
    let config = two_listeners(dir.path(), "weir.ssl.reload.interval.ms = 100");
    let server = InProcess::start_with(config);
    let ssl = server.listener("SSL").to_owned();
    let mut established = tls_connect(&ssl, client_config(&first_ca.pem, None));
    assert!(!established.api_versions(3).is_empty());

    let second_ca = TestCa::new("second CA");
    replace_file(&keystore, &second_ca.leaf("broker").keystore_pem());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reloaded = loop {
        if let Ok(client) = try_tls_connect(&ssl, client_config(&second_ca.pem, None)) {
            break client;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    round_trip(&mut reloaded, "reloaded");
    assert!(
        try_tls_connect(&ssl, client_config(&first_ca.pem, None)).is_err(),
        "new connections still get the old certificate"
    );
    assert_eq!(
        established.fetch_all("reloaded", 3).len(),
        3,
        "old connection"
    );

    replace_file(&keystore, "-----BEGIN CERTIFICATE-----\nnot base64\n");
    std::thread::sleep(Duration::from_millis(500));
    let mut after_broken = tls_connect(&ssl, client_config(&second_ca.pem, None));
    assert_eq!(after_broken.fetch_all("reloaded", 3).len(), 3);
}

/// Replace a file in one step (write beside it, rename over it), as deployment tools do.
fn replace_file(path: &Path, contents: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, contents).expect("write");
    std::fs::rename(&temporary, path).expect("rename");
}

// Goal: bad TLS material is refused at start with a message naming the problem: a missing
// file, a file without a key, garbage, a key that does not match its certificate, client
// auth without a truststore. Method: ServerTls::load on each, and one server start.
#[test]
fn bad_material_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    let leaf = ca.leaf("broker");
    let other = ca.leaf("other");
    let write = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    };
    let settings = |keystore: Keystore| TlsSettings {
        keystore,
        truststore: None,
        client_auth: ClientAuth::None,
        versions: TlsVersions::default(),
    };
    let refusal = |settings: TlsSettings| match ServerTls::load("SSL", &settings) {
        Ok(_) => panic!("accepted {settings:?}"),
        Err(error) => error.to_string(),
    };
    let missing = refusal(settings(Keystore::File(dir.path().join("nope.pem"))));
    assert!(
        missing.starts_with("cannot read ssl.keystore.location"),
        "{missing}"
    );
    let cert_only = write("cert-only.pem", &leaf.cert_pem);
    let message = refusal(settings(Keystore::File(cert_only)));
    assert!(message.contains("holds no PRIVATE KEY"), "{message}");
    let garbage = write("garbage.pem", "hello\n");
    let message = refusal(settings(Keystore::File(garbage)));
    assert!(message.contains("holds no CERTIFICATE"), "{message}");
    let mismatched = write(
        "mismatch.pem",
        &format!("{}{}", other.key_pem, leaf.cert_pem),
    );
    let message = refusal(settings(Keystore::File(mismatched.clone())));
    assert!(
        message.contains("the private key does not match the certificate"),
        "{message}"
    );
    let inline = Keystore::Inline {
        chain: leaf.cert_pem.clone(),
        key: other.key_pem.clone(),
    };
    assert!(refusal(settings(inline)).contains("does not match"));
    let good = write("good.pem", &leaf.keystore_pem());
    let mut required = settings(Keystore::File(good.clone()));
    required.client_auth = ClientAuth::Required;
    assert!(refusal(required).contains("set ssl.truststore.location"));
    let mut trusting = settings(Keystore::File(good));
    trusting.truststore = Some(Truststore::Inline(ca.pem.clone()));
    trusting.client_auth = ClientAuth::Required;
    assert!(ServerTls::load("SSL", &trusting).is_ok());

    // The server refuses to start, naming the listener.
    let text = format!(
        "listeners = \"SSL://127.0.0.1:0\"\nssl.keystore.location = \"{}\"\n\
         \"weir.gateway.listener\" = \"off\"",
        mismatched.display()
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = runtime.block_on(weir::server::start_fjall(
        weir_runtime::TokioRuntime::new(1),
        config,
    ));
    let error = started.expect_err("refused").to_string();
    assert!(
        error.starts_with("TLS of SSL: ") && error.contains("does not match"),
        "{error}"
    );
}

// Goal: the gateway serves wss:// and /metrics https with the same certificates. Method:
// TLS-connect to each and send a plain HTTP GET (the gateway answers its landing page).
#[test]
fn gateway_and_metrics_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    ca.write_files(dir.path(), "a");
    let mut config = two_listeners(
        dir.path(),
        "weir.gateway.ssl.enable = true\nweir.metrics.ssl.enable = true\n\
         weir.metrics.listener = \"127.0.0.1:0\"",
    );
    config.gateway = Some(weir::config::GatewayListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    let server = InProcess::start_with(config);
    let config = client_config(&ca.pem, None);
    let gateway = server.gateway.clone().expect("gateway on");
    let page = http_get(&mut tls_connect(&gateway, config.clone()), "/");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("Weir edge gateway"),
        "{page}"
    );
    let metrics = server.metrics.clone().expect("metrics on");
    // The node registers itself shortly after start: scrape until it counts itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let scrape = http_get(&mut tls_connect(&metrics, config.clone()), "/metrics");
        if scrape.contains("kafka_brokers 1") || Instant::now() > deadline {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        scrape.starts_with("HTTP/1.1 200") && scrape.contains("kafka_brokers 1"),
        "{scrape}"
    );
    // Plain HTTP to the https port gets no answer.
    let mut plain = TcpStream::connect(&metrics).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "served over plaintext"
    );
}

fn http_get(client: &mut TlsClient, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    client.stream.write_all(request.as_bytes()).expect("write");
    client.stream.flush().expect("flush");
    let mut answer = Vec::new();
    // The server closes after answering; a missing close_notify is not an error here.
    let _ = client.stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `User:<name>` may WRITE topic `topic` (CreateAcls over `admin`'s connection).
fn allow_write(admin: &mut TlsClient, name: &str, topic: &str) {
    use weir_wire::domain::acl::{
        AclBinding, AclOperation, AclPermissionType, CreateAclsRequest, PatternType, ResourceType,
    };
    use weir_wire::domain::{ApiRequest, ApiResponse};
    let binding = AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: topic.to_owned(),
        pattern_type: PatternType::Literal,
        principal: format!("User:{name}"),
        host: "*".to_owned(),
        operation: AclOperation::Write,
        permission_type: AclPermissionType::Allow,
    };
    let request = ApiRequest::CreateAcls(CreateAclsRequest {
        creations: vec![binding],
    });
    match admin.request(30, 3, &request) {
        ApiResponse::CreateAcls(response) => {
            assert_eq!(response.results.len(), 1, "{response:?}");
            assert_eq!(response.results[0].error.0, 0, "{response:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

// Goal (issue 15 item 2): on an SSL listener the client certificate's subject, mapped by
// ssl.principal.mapping.rules, is the principal ACLs see: CN=alice is allowed by an ACL
// for User:alice, CN=bob is denied with TOPIC_AUTHORIZATION_FAILED, CN=admin is a super
// user; on a listener whose rules match no DN of a client, that client is closed.
// Method: authorizer on, two SSL listeners (the second with its own rules), rcgen leaves.
#[test]
fn mtls_subject_is_the_principal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    let (keystore, truststore) = ca.write_files(dir.path(), "m");
    let text = format!(
        r#"
        listeners = "SSL://127.0.0.1:0,STRICT://127.0.0.1:0"
        listener.security.protocol.map = "SSL:SSL,STRICT:SSL"
        ssl.keystore.type = "PEM"
        ssl.keystore.location = "{}"
        ssl.truststore.type = "PEM"
        ssl.truststore.location = "{}"
        ssl.client.auth = "required"
        ssl.principal.mapping.rules = "RULE:^CN=([^,]*).*$/$1/"
        listener.name.strict.ssl.principal.mapping.rules = "RULE:^CN=(admin)$/$1/"
        authorizer.class.name = "weir"
        super.users = "User:admin"
        "weir.gateway.listener" = "off"
        "#,
        keystore.display(),
        truststore.display()
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.path().join("data");
    let server = InProcess::start_with(config);
    let ssl = server.listener("SSL").to_owned();
    let connect = |name: &str| tls_connect(&ssl, client_config(&ca.pem, Some(&ca.leaf(name))));

    let mut admin = connect("admin");
    let created = admin.create_topic("orders", 1);
    assert_eq!(
        created.topics[0].error.0, 0,
        "a super user creates: {created:?}"
    );
    allow_write(&mut admin, "alice", "orders");

    let mut alice = connect("alice");
    assert_eq!(alice.produce("orders", -1, batch("a", 2)), (0, 0));
    let mut bob = connect("bob");
    let (error, _) = bob.produce("orders", -1, batch("b", 1));
    assert_eq!(error, 29, "TOPIC_AUTHORIZATION_FAILED for User:bob");

    let strict = server.listener("STRICT").to_owned();
    let mut admin = tls_connect(&strict, client_config(&ca.pem, Some(&ca.leaf("admin"))));
    assert_eq!(admin.produce("orders", -1, batch("c", 1)), (0, 2));
    let mut alice = tls_connect(&strict, client_config(&ca.pem, Some(&ca.leaf("alice"))));
    assert!(refused(&mut alice), "no rule maps CN=alice on STRICT");
}
