//! Peer links over mutual TLS (issue 15 item 1): three in-process brokers whose controller
//! listener is `CONTROLLER:SSL` elect a controller, replicate an RF=3 topic and fail over,
//! while a fourth broker with a certificate from another CA, a TLS client without a
//! certificate and a plaintext dialer are all refused at the controller listener.

// Real sockets against real servers: wall-clock deadlines and polling are the point here.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::{client_config, try_tls_connect, Leaf, TestCa};
use common::{batch, free_port, produce_request, Client, InProcess};
use rustls::pki_types::ServerName;
use weir::config::ServerConfig;
use weir::tls::{
    ClientAuth, Keystore, PeerTlsSettings, Reload, ServerTls, TlsSettings, TlsVersions, Truststore,
};
use weir_core::cluster::peer::PeerHello;
use weir_wire::domain::{
    ApiRequest, ApiResponse, CreatableTopic, CreateTopicsRequest, MetadataResponse,
};

/// How long the cluster gets to form, elect or move a leader.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The config of node `node_id` with the controller listener on `controller_port`, its
/// keystore and truststore in `dir` under `prefix`.
fn node_config(
    dir: &Path,
    node_id: i32,
    voters: &str,
    controller_port: u16,
    prefix: &str,
) -> ServerConfig {
    let text = format!(
        r#"
        node.id = {node_id}
        controller.quorum.voters = "{voters}"
        listeners = "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{controller_port}"
        listener.security.protocol.map = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
        controller.listener.names = "CONTROLLER"
        ssl.keystore.type = "PEM"
        ssl.keystore.location = "{}"
        ssl.truststore.type = "PEM"
        ssl.truststore.location = "{}"
        "weir.gateway.listener" = "off"
        weir.ssl.handshake.timeout.ms = 2000
        broker.heartbeat.interval.ms = 250
        broker.session.timeout.ms = 3000
        replica.lag.time.max.ms = 5000
        auto.leader.rebalance.enable = false
        "#,
        dir.join(format!("{prefix}-broker.pem")).display(),
        dir.join(format!("{prefix}-ca.pem")).display(),
    );
    let mut config = ServerConfig::from_toml_str(&text, "test").expect("valid config");
    config.data_dir = dir.join(format!("data-{node_id}"));
    config
}

/// Poll `probe` until it returns Some, or fail naming `what`.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Metadata from `address` on a fresh connection; None when it cannot be had.
fn metadata(address: &str) -> Option<MetadataResponse> {
    std::net::TcpStream::connect(address).ok()?;
    Some(Client::connect(address).metadata())
}

fn create_replicated(address: &str, topic: &str) {
    let request = ApiRequest::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.to_owned(),
            num_partitions: 1,
            replication_factor: 3,
            assignments: vec![],
            configs: vec![],
        }],
        timeout_ms: 10_000,
        validate_only: false,
    });
    match Client::connect(address).request(19, 7, &request) {
        ApiResponse::CreateTopics(created) => {
            assert_eq!(created.topics[0].error.0, 0, "{created:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// (leader, ISR) of partition 0 of `topic` as `address` sees it.
fn partition_state(address: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    let metadata = metadata(address)?;
    let found = (metadata.topics.iter()).find(|t| t.name.as_deref() == Some(topic))?;
    let partition = found.partitions.first()?;
    let mut isr = partition.isr_nodes.clone();
    isr.sort_unstable();
    Some((partition.leader_id, isr))
}

/// Produce `count` records with acks=all to the leader; returns the leader's error code.
fn produce_all(address: &str, topic: &str, prefix: &str, count: usize) -> i16 {
    let request = produce_request(topic, -1, batch(prefix, count));
    match Client::connect(address).request(0, 9, &request) {
        ApiResponse::Produce(response) => response.topics[0].partitions[0].error.0,
        other => panic!("unexpected {other:?}"),
    }
}

// Goal: brokers whose peer links are mutual TLS form a cluster, replicate with acks=all and
// fail over; a broker whose certificate another CA signed never joins, and a TLS client
// without a certificate or a plaintext dialer at the controller listener are closed, while
// the cluster keeps serving. Method: 3 voters on one CA; node 4 (same voters, not one of
// them) on a stranger CA; raw connections to node 1's controller port; then drop the
// partition leader and read everything back from the new one. A silent TCP dialer is
// closed after the handshake bound.
#[test]
fn mutual_tls_cluster_replicates_and_refuses_strangers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir cluster CA");
    ca.write_files(dir.path(), "good");
    let stranger = TestCa::new("stranger CA");
    stranger.write_files(dir.path(), "bad");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let voters = (1..=3)
        .map(|id| format!("{id}@127.0.0.1:{}", ports[id - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Option<InProcess>> = (1..=3)
        .map(|id| {
            let config = node_config(dir.path(), id, &voters, ports[id as usize - 1], "good");
            Some(InProcess::start_with(config))
        })
        .collect();
    let addresses: Vec<String> = (nodes.iter().flatten())
        .map(|node| node.address.clone())
        .collect();
    wait_for("3 brokers and a controller over TLS", || {
        let metadata = metadata(&addresses[0])?;
        (metadata.brokers.len() == 3 && metadata.controller_id > 0).then_some(())
    });

    // The stranger: a fourth broker whose certificate the cluster's CA did not sign.
    let intruder = InProcess::start_with(node_config(dir.path(), 4, &voters, ports[3], "bad"));
    let intruder_started = Instant::now();
    // Peers without any certificate, and plaintext, at node 1's controller listener.
    let controller = format!("127.0.0.1:{}", ports[0]);
    let mut hello = Vec::new();
    let payload = PeerHello::new("whatever", 9).encode();
    hello.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    hello.extend_from_slice(&payload);
    match try_tls_connect(&controller, client_config(&ca.pem, None)) {
        Err(_) => {}
        Ok(mut anonymous) => {
            // TLS 1.3: the client's side finishes before the server checks the certificate.
            let _ = anonymous.stream.write_all(&hello);
            let _ = anonymous.stream.flush();
            assert!(
                anonymous.is_closed_by_server(),
                "a peer without a certificate"
            );
        }
    }
    let mut plaintext = Client::connect(&controller);
    let _ = plaintext.stream.write_all(&hello);
    // The listener answers with at most a TLS alert record (content type 21), then closes.
    let mut answer = Vec::new();
    let read = plaintext.stream.read_to_end(&mut answer);
    let timed_out = read.as_ref().is_err_and(|error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    assert!(!timed_out, "a plaintext peer was not closed");
    assert!(
        answer
            .first()
            .is_none_or(|&content_type| content_type == 21),
        "a plaintext peer got {answer:?}"
    );

    // A dialer that stalls mid-handshake frees its inbound slot after the 2 s bound.
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(&controller).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let read = silent.read(&mut [0u8; 1]);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) && waited < Duration::from_secs(6),
        "a stalled peer handshake was not closed in time: {read:?} after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "closed before the bound: {waited:?}"
    );

    let topic = "replicated-over-tls";
    create_replicated(&addresses[0], topic);
    let (leader, _) = wait_for("an RF=3 partition with all in sync", || {
        let (leader, isr) = partition_state(&addresses[0], topic)?;
        (leader > 0 && isr == [1, 2, 3]).then_some((leader, isr))
    });
    let leader_address = addresses[leader as usize - 1].clone();
    // Every node learns the new partition asynchronously: retry until the leader acks.
    wait_for("acks=all on the leader", || {
        (produce_all(&leader_address, topic, "before", 50) == 0).then_some(())
    });

    // The intruder must have dialed (about once a second) for a while before its absence
    // means anything; the checks above usually took longer than that already.
    let window = Duration::from_secs(3);
    if let Some(rest) = window.checked_sub(intruder_started.elapsed()) {
        std::thread::sleep(rest);
    }
    let seen = metadata(&addresses[0]).expect("metadata");
    let ids: Vec<i32> = seen.brokers.iter().map(|b| b.node_id).collect();
    assert!(!ids.contains(&4), "the stranger joined: {ids:?}");
    let intruder_view = metadata(&intruder.address).expect("the stranger still answers");
    assert!(
        !intruder_view.brokers.iter().any(|b| b.node_id != 4),
        "the stranger learned the cluster: {intruder_view:?}"
    );
    drop(intruder);

    // Fail over: drop the leader; a survivor leads with every acknowledged record.
    nodes[leader as usize - 1] = None;
    let survivor = (1..=3).find(|&id| id != leader).expect("a survivor");
    let survivor_address = addresses[survivor as usize - 1].clone();
    let (new_leader, _) = wait_for("a new leader", || {
        let (new_leader, isr) = partition_state(&survivor_address, topic)?;
        (new_leader > 0 && new_leader != leader).then_some((new_leader, isr))
    });
    let new_address = addresses[new_leader as usize - 1].clone();
    wait_for("acks=all on the new leader", || {
        (produce_all(&new_address, topic, "after", 50) == 0).then_some(())
    });
    let records = Client::connect(&new_address).fetch_all(topic, 100);
    let values: Vec<String> = (records.iter())
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
        .collect();
    // A refused attempt may have left records behind, so the check is that every value of
    // both acknowledged batches is in the new leader's log.
    for prefix in ["before", "after"] {
        for index in 0..50 {
            let value = format!("{prefix}-{index}");
            assert!(values.contains(&value), "{value} lost: {values:?}");
        }
    }
    drop(nodes);
}

/// A client and a server handshake over an in-memory pipe, the client dialing `name`.
fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (near, far) = tokio::io::duplex(1 << 16);
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = ServerName::try_from(name.to_owned()).expect("a server name");
        let (served, dialed) = tokio::join!(acceptor.accept(far), connector.connect(name, near));
        dialed.map_err(|error| format!("client: {error}"))?;
        served.map_err(|error| format!("server: {error}"))?;
        Ok(())
    })
}

// Goal: a peer dial verifies the dialed host against the peer's certificate unless
// ssl.endpoint.identification.algorithm is empty, and verifies the chain either way; the
// acceptor requires a client certificate. Method: handshakes over in-memory pipes between
// the configs ServerTls::load_peer builds.
#[test]
fn peer_dials_verify_the_host_name_unless_turned_off() {
    let ca = TestCa::new("weir cluster CA");
    let peer = |leaf: &Leaf, verify_hostname: bool| {
        let settings = PeerTlsSettings {
            listener: "CONTROLLER".to_owned(),
            tls: TlsSettings {
                keystore: Keystore::Inline {
                    chain: leaf.cert_pem.clone(),
                    key: leaf.key_pem.clone(),
                },
                truststore: Some(Truststore::Inline(ca.pem.clone())),
                client_auth: ClientAuth::Required,
                versions: TlsVersions::default(),
            },
            verify_hostname,
        };
        ServerTls::load_peer(&settings).expect("peer TLS loads")
    };
    let broker = ca.leaf("broker");
    let server = peer(&broker, true).current();
    let verifying = peer(&broker, true).current_client().expect("client side");
    let unverifying = peer(&broker, false).current_client().expect("client side");
    // The leaf names localhost and 127.0.0.1.
    assert_eq!(
        handshake(server.clone(), verifying.clone(), "localhost"),
        Ok(())
    );
    assert_eq!(
        handshake(server.clone(), verifying.clone(), "127.0.0.1"),
        Ok(())
    );
    let error = handshake(server.clone(), verifying.clone(), "broker-9.example")
        .expect_err("a certificate for another host");
    assert!(
        error.starts_with("client: ") && error.contains("not valid for name"),
        "{error}"
    );
    assert_eq!(
        handshake(server.clone(), unverifying.clone(), "broker-9.example"),
        Ok(())
    );
    // Without host names the chain still counts: another CA's broker is refused.
    let stranger = TestCa::new("stranger CA").leaf("broker");
    let stranger_server = plain_server(&stranger);
    let error = handshake(stranger_server, unverifying, "localhost").expect_err("stranger");
    assert!(error.contains("UnknownIssuer"), "{error}");
    // And the acceptor refuses a dialer without a client certificate.
    let anonymous = client_config(&ca.pem, None);
    let error = handshake(server, anonymous, "localhost").expect_err("no certificate");
    assert!(error.contains("server: "), "{error}");
}

/// A server config presenting `leaf`, without client authentication.
fn plain_server(leaf: &Leaf) -> Arc<rustls::ServerConfig> {
    let settings = TlsSettings {
        keystore: Keystore::Inline {
            chain: leaf.cert_pem.clone(),
            key: leaf.key_pem.clone(),
        },
        truststore: None,
        client_auth: ClientAuth::None,
        versions: TlsVersions::default(),
    };
    ServerTls::load("stranger", &settings)
        .expect("loads")
        .current()
}

// Goal: a reload of the peer links' files swaps the client config dials use along with
// the server config, and broken new files keep both. Method: ServerTls::reload on a peer
// ServerTls after replacing its keystore file.
#[test]
fn peer_reload_swaps_the_dial_config_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("weir cluster CA");
    let (keystore, truststore) = ca.write_files(dir.path(), "peer");
    let settings = PeerTlsSettings {
        listener: "CONTROLLER".to_owned(),
        tls: TlsSettings {
            keystore: Keystore::File(keystore.clone()),
            truststore: Some(Truststore::File(truststore)),
            client_auth: ClientAuth::Required,
            versions: TlsVersions::default(),
        },
        verify_hostname: true,
    };
    let tls = ServerTls::load_peer(&settings).expect("loads");
    let (server, client) = (tls.current(), tls.current_client().expect("client side"));
    assert!(matches!(tls.reload(), Reload::Unchanged));
    std::fs::write(&keystore, ca.leaf("renewed").keystore_pem()).expect("write");
    assert!(matches!(tls.reload(), Reload::Reloaded));
    let renewed_client = tls.current_client().expect("client side");
    assert!(!Arc::ptr_eq(&server, &tls.current()), "server config kept");
    assert!(!Arc::ptr_eq(&client, &renewed_client), "dial config kept");
    // The renewed pair still handshakes with itself (mutual TLS, host verified).
    assert_eq!(
        handshake(tls.current(), renewed_client.clone(), "localhost"),
        Ok(())
    );
    std::fs::write(&keystore, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    assert!(matches!(tls.reload(), Reload::Refused(_)));
    let kept = tls.current_client().expect("client side");
    assert!(
        Arc::ptr_eq(&kept, &renewed_client),
        "a broken file replaced the config"
    );
}
