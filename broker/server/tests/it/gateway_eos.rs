//! The WebSocket gateway's exactly-once pieces, end to end over real sockets: an
//! idempotent producer that survives a lost connection (edge protocol version 2), consumers
//! that read committed only, and version negotiation with version-1 clients.
//!
//! Each test starts the broker in process (fjall in a temp dir, Kafka listener and gateway
//! on free ports), speaks the edge protocol over a blocking WebSocket, and checks the log
//! with a Kafka client on the Kafka listener (the raw-frame client of `common`, or
//! weir-client's transactional producer).

use crate::common;

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{InProcess, IO_TIMEOUT};
// The std clock is banned in broker code (clippy.toml); tokio's reads the same clock.
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};
use weir::config::{GatewayListen, ServerConfig};
use weir_edge::{
    Acks, ClientHello, EdgeError, Isolation, NewRecord, Op, Poll, Produce, ProduceBatch,
    ProducerSequence, Reply, Request, Response, ServerHello, StartFrom, Subscribe,
};

/// A broker with its gateway on a free port.
fn start(data_dir: &std::path::Path) -> InProcess {
    let mut config = ServerConfig::from_toml_str("", "test").expect("defaults are valid");
    config.listen = "127.0.0.1:0".to_owned();
    config.data_dir = data_dir.to_owned();
    config.gateway = Some(GatewayListen {
        addr: "127.0.0.1:0".to_owned(),
        required: true,
    });
    InProcess::start_with(config)
}

/// A blocking edge-protocol client.
struct Edge {
    socket: WebSocket<TcpStream>,
    next_id: u32,
    /// Answers read while waiting for another one.
    early: Vec<Response>,
}

impl Edge {
    /// Connect and say hello with a version range; returns the gateway's answer.
    fn open(gateway: &str, version_min: u16, version_max: u16) -> (Edge, ServerHello) {
        let stream = TcpStream::connect(gateway).expect("connect to the gateway");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        let url = format!("ws://{gateway}/");
        let (socket, _) = tungstenite::client::client(url, stream).expect("WebSocket upgrade");
        let mut edge = Edge {
            socket,
            next_id: 1,
            early: Vec::new(),
        };
        let hello = ClientHello {
            version_min,
            version_max,
            ..ClientHello::new("gateway-eos-test")
        };
        edge.write(weir_edge::encode(&hello));
        let answer = weir_edge::decode::<ServerHello>(&edge.read()).expect("a ServerHello");
        (edge, answer)
    }

    /// Connect at version 2 (the exactly-once version), expecting it to be accepted.
    fn open_v2(gateway: &str) -> Edge {
        let (edge, hello) = Edge::open(gateway, 1, 2);
        assert!(
            matches!(hello, ServerHello::Accepted { version: 2, .. }),
            "{hello:?}"
        );
        edge
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.socket
            .send(Message::binary(bytes))
            .expect("send a frame");
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

    /// Send a request without waiting; returns its id.
    fn send(&mut self, op: Op) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.write(weir_edge::encode(&Request { id, op }));
        id
    }

    /// The answer to request `id`.
    fn answer(&mut self, id: u32) -> Result<Reply, EdgeError> {
        if let Some(index) = self.early.iter().position(|response| response.id == id) {
            return self.early.remove(index).result;
        }
        loop {
            let response = weir_edge::decode::<Response>(&self.read()).expect("a Response");
            if response.id == id {
                return response.result;
            }
            self.early.push(response);
        }
    }

    fn call(&mut self, op: Op) -> Result<Reply, EdgeError> {
        let id = self.send(op);
        self.answer(id)
    }

    /// Records of consumer `handle` until `count` arrived or `wait` passed.
    fn poll_values(&mut self, handle: u32, count: usize, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut values = Vec::new();
        while values.len() < count && Instant::now() < deadline {
            let poll = Op::Poll(Poll {
                consumer: handle,
                max_wait_ms: 200,
                max_bytes: 1 << 20,
            });
            let Ok(Reply::Records(records)) = self.call(poll) else {
                panic!("poll failed");
            };
            values.extend(records.into_iter().map(|record| {
                String::from_utf8(record.value.expect("a value")).expect("UTF-8 value")
            }));
        }
        values
    }
}

fn record(value: &str) -> NewRecord {
    NewRecord {
        key: None,
        value: Some(value.as_bytes().to_vec()),
        headers: Vec::new(),
        timestamp: None,
    }
}

fn batch(topic: &str, stamp: ProducerSequence, values: &[&str]) -> Op {
    Op::ProduceBatch(ProduceBatch {
        topic: topic.to_owned(),
        partition: 0,
        acks: Acks::All,
        sequence: Some(stamp),
        records: values.iter().map(|value| record(value)).collect(),
    })
}

/// Every value of partition 0 up to its high watermark, read with a Kafka fetch.
fn values_in_log(server: &InProcess, topic: &str) -> Vec<String> {
    let mut kafka = server.connect();
    let mut values = Vec::new();
    let mut next = 0;
    loop {
        let (error, high_watermark, records) = kafka.fetch(topic, next);
        assert_eq!(error, 0, "fetch error");
        let start = next;
        for record in records.into_iter().filter(|record| record.offset >= start) {
            next = record.offset + 1;
            let value = record.value.expect("value");
            values.push(String::from_utf8_lossy(&value).into_owned());
        }
        if next >= high_watermark {
            return values;
        }
    }
}

// Goal: a batch whose acknowledgement was lost with the connection, resent by the client
// on a new connection with its original producer id, epoch and sequence, is written once:
// the broker's producer state answers with the first write's offset. Method: produce a
// two-record batch, wait until a Kafka fetch sees it, drop the WebSocket without reading
// the ack, reconnect, resend the same batch, then read the partition with a Kafka client.
// A batch with a gap in its sequence is refused by the same broker path.
#[test]
fn batch_resent_after_a_lost_connection_is_written_once() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = start(data_dir.path());
    let gateway = server.gateway.clone().expect("gateway on");
    let topic = "gateway-eos-resend";
    server.connect().create_topic(topic, 1);

    let mut first = Edge::open_v2(&gateway);
    let Ok(Reply::Producer {
        producer_id,
        producer_epoch,
    }) = first.call(Op::InitProducer)
    else {
        panic!("InitProducer failed");
    };
    let described = first.call(Op::DescribeTopic {
        topic: topic.to_owned(),
        create: false,
    });
    assert!(
        matches!(&described, Ok(Reply::Topic(info)) if info.partitions == 1),
        "{described:?}"
    );
    let stamp = |base_sequence| ProducerSequence {
        producer_id,
        producer_epoch,
        base_sequence,
    };
    let acked = first.call(batch(topic, stamp(0), &["r0"]));
    assert_eq!(
        acked,
        Ok(Reply::Produced {
            partition: 0,
            offset: 0
        })
    );
    // Sent, written, but the ack is never read: the connection drops first.
    first.send(batch(topic, stamp(1), &["r1", "r2"]));
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut kafka = server.connect();
    // A fetch from offset 1 long-polls (100 ms) until the batch is there.
    while kafka.fetch(topic, 1).1 < 3 {
        assert!(Instant::now() < deadline, "the batch was never written");
    }
    drop(first);

    let mut second = Edge::open_v2(&gateway);
    let resent = second.call(batch(topic, stamp(1), &["r1", "r2"]));
    assert_eq!(
        resent,
        Ok(Reply::Produced {
            partition: 0,
            offset: 1
        }),
        "the resent batch is answered with its first write's offset"
    );
    let next = second.call(batch(topic, stamp(3), &["r3"]));
    assert_eq!(
        next,
        Ok(Reply::Produced {
            partition: 0,
            offset: 3
        })
    );
    let gap = second.call(batch(topic, stamp(9), &["lost"]));
    assert_eq!(
        gap.map_err(|error| error.name),
        Err("OUT_OF_ORDER_SEQUENCE_NUMBER".to_owned())
    );
    assert_eq!(values_in_log(&server, topic), ["r0", "r1", "r2", "r3"]);
}

// Goal: version negotiation with version-1 clients and beyond: a 1..=1 client is accepted at
// version 1 and still produces, a version-2 operation in its session is answered with
// UNSUPPORTED_VERSION (not executed), and a client speaking only future versions is refused
// with the gateway's range. Method: hellos with hand-set version ranges.
#[test]
fn version_one_clients_keep_working_and_get_clear_answers() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = start(data_dir.path());
    let gateway = server.gateway.clone().expect("gateway on");
    let topic = "gateway-eos-v1";
    server.connect().create_topic(topic, 1);

    let (mut old, hello) = Edge::open(&gateway, 1, 1);
    assert!(
        matches!(hello, ServerHello::Accepted { version: 1, .. }),
        "{hello:?}"
    );
    let produced = old.call(Op::Produce(Produce {
        topic: topic.to_owned(),
        partition: None,
        acks: Acks::All,
        idempotent: true,
        record: record("v1"),
    }));
    assert_eq!(
        produced,
        Ok(Reply::Produced {
            partition: 0,
            offset: 0
        })
    );
    let refused = old
        .call(Op::InitProducer)
        .expect_err("a version-2 operation");
    assert_eq!(
        (refused.code, refused.name.as_str()),
        (35, "UNSUPPORTED_VERSION")
    );
    assert!(refused.message.contains("version 2"), "{}", refused.message);

    let future = weir_edge::VERSION_MAX + 1;
    let (_, hello) = Edge::open(&gateway, future, future + 1);
    let ServerHello::Rejected {
        reason,
        version_min,
        version_max,
    } = hello
    else {
        panic!("a future-only client is refused: {hello:?}");
    };
    assert_eq!((version_min, version_max), (1, weir_edge::VERSION_MAX));
    assert!(reason.contains("unsupported protocol version"), "{reason}");
}

// Goal: a read_committed gateway consumer never delivers an aborted transaction's records
// nor anything of an open transaction (above the last stable offset), and delivers the
// latter once committed; a read_uncommitted one delivers everything. Method: weir-client's
// transactional producer on the Kafka listener aborts one transaction, commits one and
// leaves a third open; group-less gateway consumers of both isolation levels read the
// partition from the start; then the third commits.
#[test]
fn read_committed_consumers_skip_aborted_and_open_transactions() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = start(data_dir.path());
    let gateway = server.gateway.clone().expect("gateway on");
    let topic = "gateway-eos-txn";
    server.connect().create_topic(topic, 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let producer = runtime.block_on(async {
        let mut client = weir_client::ClientConfig::with_bootstrap(server.address.clone());
        client.retry_backoff = Duration::from_millis(20);
        let config = weir_client::ProducerConfig {
            client,
            linger: Duration::from_millis(1),
            transactional_id: Some("gateway-eos".to_owned()),
            transaction_timeout: Duration::from_secs(60),
            ..weir_client::ProducerConfig::default()
        };
        let producer = weir_client::Producer::connect(weir_runtime::TokioRuntime::new(3), config)
            .await
            .expect("transactional producer");
        producer.init_transactions().await.expect("init");
        for (values, commit) in [(["a1", "a2"], false), (["c1", "c2"], true)] {
            producer.begin_transaction().await.expect("begin");
            send_all(&producer, topic, &values).await;
            if commit {
                producer.commit_transaction().await.expect("commit");
            } else {
                producer.abort_transaction().await.expect("abort");
            }
        }
        producer.begin_transaction().await.expect("begin");
        send_all(&producer, topic, &["o1"]).await;
        producer
    });

    let mut edge = Edge::open_v2(&gateway);
    let subscribe = |consumer| Subscribe {
        consumer,
        group: None,
        topics: vec![topic.to_owned()],
        from: StartFrom::Earliest,
        positions: Vec::new(),
    };
    let committed = edge.call(Op::SubscribeIsolated {
        subscribe: subscribe(1),
        isolation: Isolation::ReadCommitted,
    });
    assert_eq!(committed, Ok(Reply::Subscribed));
    // Version 1's Subscribe reads uncommitted, as before.
    assert_eq!(
        edge.call(Op::Subscribe(subscribe(2))),
        Ok(Reply::Subscribed)
    );
    let all = edge.poll_values(2, 5, IO_TIMEOUT);
    assert_eq!(all, ["a1", "a2", "c1", "c2", "o1"]);
    // Ask for more than can come: nothing aborted or open shows up while we wait.
    let stable = edge.poll_values(1, 3, Duration::from_secs(2));
    assert_eq!(stable, ["c1", "c2"]);

    runtime.block_on(async { producer.commit_transaction().await.expect("commit") });
    let after = edge.poll_values(1, 1, IO_TIMEOUT);
    assert_eq!(after, ["o1"]);
}

async fn send_all(
    producer: &weir_client::Producer<weir_runtime::TokioRuntime>,
    topic: &str,
    values: &[&str],
) {
    let mut deliveries = Vec::new();
    for value in values {
        let value = Some(Bytes::from(value.to_string()));
        let delivery = producer
            .send_txn(topic, Some(0), None, value, Vec::new())
            .await
            .expect("send_txn");
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        delivery.await.expect("acknowledged");
    }
}
