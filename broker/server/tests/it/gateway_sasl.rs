//! Gateway authentication (edge protocol version 3) on a real server: sessions of a gateway
//! with `weir.gateway.sasl.enabled.mechanisms` authenticate with PLAIN (the JAAS users of
//! the SASL listener) or SCRAM (credentials of the metadata log) before anything else, a
//! wrong password is refused with `SaslAnswer::Failure` and close code 1008 "SASL
//! authentication failed", clients too old to authenticate are refused, and a gateway
//! without SASL opens version-3 sessions as before.
//!
//! Method: the broker in process (fjall in a temp dir) with a PLAINTEXT listener (where
//! the test creates SCRAM users, as an admin would), a SASL_PLAINTEXT listener holding the
//! JAAS users, and the gateway; a blocking WebSocket client speaks the edge protocol, with
//! SCRAM computed by `weir_wire::sasl`'s client.

// Real servers on real sockets: the cluster test waits in wall-clock time.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::net::TcpStream;
use std::path::Path;

use bytes::Bytes;
use common::certs::TestCa;
use common::{InProcess, IO_TIMEOUT};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};
use weir::config::{GatewayListen, ServerConfig};
use weir_edge::{
    Acks, ClientHello, NewRecord, Op, Poll, Produce, Reply, Request, Response, SaslAnswer,
    SaslFrame, ServerHello, StartFrom, Subscribe,
};
use weir_wire::domain::sasl::{AlterUserScramCredentialsRequest, ScramCredentialUpsertion};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{PlainMessage, ScramClient, ScramMechanism};

const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                    user_alice=\\\"alice-secret\\\";";

/// A broker whose gateway requires `mechanisms` (empty: no authentication).
fn server(dir: &Path, mechanisms: &str) -> InProcess {
    let text = format!(
        "listeners = \"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\"\n\
         \"listener.name.sasl_plaintext.plain.sasl.jaas.config\" = \"{JAAS}\"\n\
         \"weir.gateway.sasl.enabled.mechanisms\" = \"{mechanisms}\"\n"
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.to_owned();
    config.gateway = Some(GatewayListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    InProcess::start_with(config)
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
    let mut admin = common::Client::connect(server.listener("PLAINTEXT"));
    let ApiResponse::AlterUserScramCredentials(response) = admin.request(51, 0, &request) else {
        panic!("AlterUserScramCredentials answer expected");
    };
    assert_eq!(response.results[0].error, ErrorCode::NONE, "{response:?}");
}

/// A blocking edge-protocol client.
struct Edge {
    socket: WebSocket<TcpStream>,
    next_id: u32,
}

impl Edge {
    /// Connect and say hello speaking `version_min..=version_max`.
    fn open(gateway: &str, version_min: u16, version_max: u16) -> (Edge, ServerHello) {
        let stream = TcpStream::connect(gateway).expect("connect to the gateway");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        let (socket, _) =
            tungstenite::client::client(format!("ws://{gateway}/"), stream).expect("upgrade");
        let mut edge = Edge { socket, next_id: 1 };
        let hello = ClientHello {
            version_min,
            version_max,
            ..ClientHello::new("gateway-sasl-test")
        };
        edge.write(weir_edge::encode(&hello));
        let answer = weir_edge::decode::<ServerHello>(&edge.read()).expect("a ServerHello");
        (edge, answer)
    }

    /// Connect at the newest version to a gateway that requires authentication.
    fn open_authenticating(gateway: &str) -> Edge {
        let (edge, hello) = Edge::open(gateway, 1, weir_edge::VERSION_MAX);
        let ServerHello::Authenticate { version, .. } = hello else {
            panic!("the gateway asks for authentication: {hello:?}");
        };
        assert_eq!(version, weir_edge::VERSION_SASL);
        edge
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).expect("send");
    }

    fn read(&mut self) -> Vec<u8> {
        loop {
            match self.socket.read().expect("read a frame") {
                Message::Binary(bytes) => return bytes.to_vec(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    fn sasl(&mut self, frame: SaslFrame) -> SaslAnswer {
        self.write(weir_edge::encode(&frame));
        weir_edge::decode::<SaslAnswer>(&self.read()).expect("a SaslAnswer")
    }

    /// PLAIN: the gateway's answer.
    fn plain(&mut self, user: &str, password: &str) -> SaslAnswer {
        let message = PlainMessage {
            username: user.into(),
            password: password.into(),
        };
        self.sasl(SaslFrame::Start {
            mechanism: "PLAIN".into(),
            message: message.encode(),
        })
    }

    /// A SCRAM exchange: the gateway's last answer (its server-final checked on success).
    fn scram(&mut self, mechanism: ScramMechanism, user: &str, password: &str) -> SaslAnswer {
        let (mut client, first) = ScramClient::start(mechanism, user, password, "edge-nonce");
        let answer = self.sasl(SaslFrame::Start {
            mechanism: mechanism.name().into(),
            message: first,
        });
        let SaslAnswer::Challenge { message } = answer else {
            return answer;
        };
        let client_final = client.server_first(&message).expect("client-final");
        let answer = self.sasl(SaslFrame::Continue {
            message: client_final,
        });
        if let SaslAnswer::Success { message, .. } = &answer {
            client
                .server_final(message)
                .expect("the gateway proves the credential");
        }
        answer
    }

    /// The close frame the gateway ends the session with.
    fn close_frame(&mut self) -> (u16, String) {
        loop {
            match self.socket.read() {
                Ok(Message::Close(Some(frame))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("a close frame expected: {other:?}"),
            }
        }
    }

    fn call(&mut self, op: Op) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.write(weir_edge::encode(&Request { id, op }));
        let response = weir_edge::decode::<Response>(&self.read()).expect("a Response");
        assert_eq!(response.id, id);
        response.result.expect("the request succeeds")
    }

    /// Produce `value` to partition 0 of `topic` and read it back with a consumer.
    fn produce_and_consume(&mut self, topic: &str, value: &str) {
        self.produce_and_consume_at(topic, 0, value);
    }

    /// Produce `value` to `partition` of `topic` and read it back with a consumer.
    fn produce_and_consume_at(&mut self, topic: &str, partition: i32, value: &str) {
        let produce = Op::Produce(Produce {
            topic: topic.into(),
            partition: Some(partition),
            acks: Acks::All,
            idempotent: false,
            record: NewRecord {
                key: None,
                value: Some(value.as_bytes().to_vec()),
                headers: Vec::new(),
                timestamp: None,
            },
        });
        assert!(matches!(self.call(produce), Reply::Produced { .. }));
        let subscribe = Subscribe {
            consumer: 1,
            group: None,
            topics: vec![topic.into()],
            from: StartFrom::Earliest,
            positions: Vec::new(),
        };
        assert_eq!(self.call(Op::Subscribe(subscribe)), Reply::Subscribed);
        let poll = Op::Poll(Poll {
            consumer: 1,
            max_wait_ms: 2_000,
            max_bytes: 1 << 20,
        });
        let mut values = Vec::new();
        for _ in 0..10 {
            let Reply::Records(records) = self.call(poll.clone()) else {
                panic!("records expected");
            };
            values.extend(records.into_iter().filter_map(|r| r.value));
            if values.contains(&value.as_bytes().to_vec()) {
                return;
            }
        }
        panic!("{value} not read back: {values:?}");
    }
}

// Goal: PLAIN (JAAS user of the SASL listener) and SCRAM-SHA-256 (metadata-log credential)
// sessions authenticate and are then served, produce and consume alike; SCRAM's
// server-final proves the gateway holds the credential. Method: one session per mechanism.
#[test]
fn plain_and_scram_sessions_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "PLAIN,SCRAM-SHA-256");
    let gateway = server.gateway.clone().expect("gateway on");
    add_user(&server, "bob", ScramMechanism::Sha256, "bob-secret");
    server.connect().create_topic("sasl-edge", 1);

    let mut alice = Edge::open_authenticating(&gateway);
    let answer = alice.plain("alice", "alice-secret");
    assert!(matches!(answer, SaslAnswer::Success { .. }), "{answer:?}");
    alice.produce_and_consume("sasl-edge", "from-alice");

    let (mut bob, hello) = Edge::open(&gateway, 1, weir_edge::VERSION_MAX);
    assert_eq!(
        hello,
        ServerHello::Authenticate {
            version: 3,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        }
    );
    let answer = bob.scram(ScramMechanism::Sha256, "bob", "bob-secret");
    assert!(matches!(answer, SaslAnswer::Success { .. }), "{answer:?}");
    bob.produce_and_consume("sasl-edge", "from-bob");
}

// Goal: every failed authentication is answered with `Failure` (a reason without the
// password) and closes with 1008 "SASL authentication failed": a wrong PLAIN password, a
// wrong SCRAM password, an unknown SCRAM user, a mechanism the gateway does not accept.
// The gateway keeps serving afterwards. Method: one session per case, then a good one.
#[test]
fn failed_authentication_closes_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "PLAIN,SCRAM-SHA-256");
    let gateway = server.gateway.clone().expect("gateway on");
    add_user(&server, "bob", ScramMechanism::Sha256, "bob-secret");
    type Attempt = fn(&mut Edge) -> SaslAnswer;
    let attempts: [(&str, Attempt); 4] = [
        ("wrong PLAIN password", |e| e.plain("alice", "wrong-secret")),
        ("wrong SCRAM password", |e| {
            e.scram(ScramMechanism::Sha256, "bob", "wrong-secret")
        }),
        ("unknown SCRAM user", |e| {
            e.scram(ScramMechanism::Sha256, "nobody", "x")
        }),
        ("mechanism not accepted", |e| {
            e.scram(ScramMechanism::Sha512, "bob", "bob-secret")
        }),
    ];
    for (case, attempt) in attempts {
        let mut edge = Edge::open_authenticating(&gateway);
        let answer = attempt(&mut edge);
        let SaslAnswer::Failure { reason } = answer else {
            panic!("{case}: a failure expected, got {answer:?}");
        };
        assert!(!reason.contains("secret"), "{case}: {reason}");
        if case == "mechanism not accepted" {
            assert!(reason.contains("PLAIN, SCRAM-SHA-256"), "{case}: {reason}");
        }
        let close = edge.close_frame();
        assert_eq!(
            close,
            (1008, "SASL authentication failed".to_owned()),
            "{case}"
        );
    }
    let mut alice = Edge::open_authenticating(&gateway);
    assert!(matches!(
        alice.plain("alice", "alice-secret"),
        SaslAnswer::Success { .. }
    ));
}

// Goal: nothing but SASL is read before authentication, and clients that cannot
// authenticate (versions 1 and 2) are refused with a reason. Method: a request frame in
// place of the SASL start; a version-2 hello.
#[test]
fn unauthenticated_requests_and_old_clients_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "PLAIN");
    let gateway = server.gateway.clone().expect("gateway on");

    let mut early = Edge::open_authenticating(&gateway);
    early.write(weir_edge::encode(&Request {
        id: 1,
        op: Op::ListTopics,
    }));
    assert_eq!(early.close_frame().0, weir_edge::CLOSE_PROTOCOL_ERROR);

    let (mut old, hello) = Edge::open(&gateway, 1, 2);
    let ServerHello::Rejected { reason, .. } = hello else {
        panic!("a version-2 client is refused: {hello:?}");
    };
    assert!(reason.contains("requires SASL"), "{reason}");
    assert_eq!(old.close_frame().0, weir_edge::CLOSE_POLICY_VIOLATION);
}

// Goal: without `weir.gateway.sasl.enabled.mechanisms` (empty) nothing changes: a version-3
// client is accepted at once and served. Method: open, produce and consume.
#[test]
fn gateway_without_sasl_accepts_version_three() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(dir.path(), "");
    let gateway = server.gateway.clone().expect("gateway on");
    server.connect().create_topic("open-edge", 1);
    let (mut edge, hello) = Edge::open(&gateway, 1, weir_edge::VERSION_MAX);
    assert!(
        matches!(hello, ServerHello::Accepted { version: 3, .. }),
        "{hello:?}"
    );
    edge.produce_and_consume("open-edge", "anonymous");
}

/// Node `id` of a two-node cluster whose registered (first) listener is SASL_PLAINTEXT, or
/// SASL_SSL with `ca`'s certificates; the gateway (node 1 only) requires PLAIN or
/// SCRAM-SHA-256. A PLAINTEXT listener serves the test's admin requests and a
/// SASL_PLAINTEXT one its login probes.
fn cluster_node(dir: &Path, id: i32, controller_ports: [u16; 2], ca: Option<&TestCa>) -> InProcess {
    let [one, two] = controller_ports;
    let own = controller_ports[usize::try_from(id - 1).expect("node id 1 or 2")];
    let (registered, ssl) = match ca {
        None => ("", String::new()),
        Some(ca) => {
            let (keystore, truststore) = ca.write_files(dir, "node");
            let ssl = format!(
                "\"ssl.keystore.type\" = \"PEM\"\n\"ssl.keystore.location\" = \"{}\"\n\
                 \"ssl.truststore.type\" = \"PEM\"\n\"ssl.truststore.location\" = \"{}\"\n\
                 \"listener.name.sasl_ssl.plain.sasl.jaas.config\" = \"{JAAS}\"\n",
                keystore.display(),
                truststore.display()
            );
            ("SASL_SSL://127.0.0.1:0,", ssl)
        }
    };
    let text = format!(
        "\"node.id\" = {id}\n\
         \"controller.quorum.voters\" = \"1@127.0.0.1:{one},2@127.0.0.1:{two}\"\n\
         \"controller.listener\" = \"127.0.0.1:{own}\"\n\
         \"broker.heartbeat.interval.ms\" = 250\n\
         \"broker.session.timeout.ms\" = 3000\n\
         listeners = \"{registered}SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0\"\n\
         \"listener.name.sasl_plaintext.plain.sasl.jaas.config\" = \"{JAAS}\"\n\
         \"weir.gateway.sasl.enabled.mechanisms\" = \"PLAIN,SCRAM-SHA-256\"\n{ssl}"
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.join("data");
    config.gateway = (id == 1).then(|| GatewayListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    InProcess::start_with(config)
}

/// Whether `user` can log in with SCRAM-SHA-256 on `address` (a SASL listener).
fn scram_login_works(address: &str, user: &str, password: &str) -> bool {
    let mut client = common::Client::connect(address);
    let handshake = ApiRequest::SaslHandshake(weir_wire::domain::sasl::SaslHandshakeRequest {
        mechanism: "SCRAM-SHA-256".into(),
        version: 1,
    });
    let ApiResponse::SaslHandshake(answer) = client.request(17, 1, &handshake) else {
        return false;
    };
    if answer.error != ErrorCode::NONE {
        return false;
    }
    let (mut scram, first) = ScramClient::start(ScramMechanism::Sha256, user, password, "probe");
    let mut token = |bytes: Vec<u8>| {
        let request =
            ApiRequest::SaslAuthenticate(weir_wire::domain::sasl::SaslAuthenticateRequest {
                auth_bytes: Bytes::from(bytes),
            });
        match client.request(36, 2, &request) {
            ApiResponse::SaslAuthenticate(answer) if answer.error == ErrorCode::NONE => {
                Some(answer.auth_bytes)
            }
            _ => None,
        }
    };
    let Some(server_first) = token(first) else {
        return false;
    };
    let Ok(client_final) = scram.server_first(&server_first) else {
        return false;
    };
    token(client_final).is_some()
}

// Goal: a session's requests routed to another broker reach it as the session's user: the
// serving broker's registered listener is SASL_PLAINTEXT (it serves nothing before
// authentication), so a produce and a read of a partition led by node 2, through node 1's
// gateway, succeed only if the gateway's upstream connection logged in as that user —
// with PLAIN (the password the session sent) and with SCRAM-SHA-256 (the ClientKey the
// session's proof revealed; the gateway never sees bob's password). Method: a two-node
// cluster in process, a topic with partitions on both nodes, one session per mechanism
// producing to and consuming from a partition node 2 leads.
#[test]
fn routed_requests_log_in_upstream_as_the_session_user() {
    routed_login(None);
}

// Goal: as above, with the registered listener SASL_SSL: the gateway's upstream connections
// verify the other broker's certificate with the listener's truststore, then log in.
// Method: the same cluster with TLS material from one test CA on both nodes.
#[test]
fn routed_requests_reach_a_sasl_ssl_listener() {
    routed_login(Some(&TestCa::new("gateway upstream CA")));
}

fn routed_login(ca: Option<&TestCa>) {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let ports = [common::free_port(), common::free_port()];
    let one = cluster_node(dirs[0].path(), 1, ports, ca);
    let two = cluster_node(dirs[1].path(), 2, ports, ca);
    let gateway = one.gateway.clone().expect("gateway on node 1");
    let topic = "sasl-routed";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let remote_partition = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no partition led by node 2"
        );
        let mut admin = common::Client::connect(one.listener("PLAINTEXT"));
        let metadata = admin.metadata();
        if metadata.brokers.len() < 2 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        let Some(described) = (metadata.topics.iter()).find(|t| t.name.as_deref() == Some(topic))
        else {
            admin.create_topic(topic, 4);
            continue;
        };
        if let Some(led) = described.partitions.iter().find(|p| p.leader_id == 2) {
            break led.partition;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    add_user(&one, "bob", ScramMechanism::Sha256, "bob-secret");
    while !scram_login_works(two.listener("SASL_PLAINTEXT"), "bob", "bob-secret") {
        assert!(
            std::time::Instant::now() < deadline,
            "node 2 never learned bob"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let mut alice = Edge::open_authenticating(&gateway);
    let answer = alice.plain("alice", "alice-secret");
    assert!(matches!(answer, SaslAnswer::Success { .. }), "{answer:?}");
    alice.produce_and_consume_at(topic, remote_partition, "routed-alice");
    let mut bob = Edge::open_authenticating(&gateway);
    let answer = bob.scram(ScramMechanism::Sha256, "bob", "bob-secret");
    assert!(matches!(answer, SaslAnswer::Success { .. }), "{answer:?}");
    bob.produce_and_consume_at(topic, remote_partition, "routed-bob");
}
