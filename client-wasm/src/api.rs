//! The JavaScript API: `connect(url, options)` -> `Client`; `client.producer(options)`,
//! `client.consumer(options)`, `client.admin()`.
//!
//! A consumer yields records one at a time from a buffer refilled by one poll at a time
//! (the gateway allows one outstanding poll per consumer). Its positions are the offsets
//! after the records it yielded; `commit()` commits exactly those. Its `isolation`
//! (read_uncommitted by default, or read_committed) goes to the gateway with the
//! subscription (edge protocol version 2).
//!
//! An idempotent producer (the default) on a version-2 gateway is a [`Pipeline`]: the
//! client owns the producer id and sequence numbers, so sends survive reconnects without
//! duplicates. Against a version-1 gateway, and for `idempotent: false`, each record is one
//! version-1 `Produce` (the gateway's session-scoped idempotence: a send that fails with
//! `NETWORK_EXCEPTION` may or may not have been written).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use weir_edge::{
    Acks, Isolation, NewTopic, Op, Poll, Position, Produce, Record, Reply, StartFrom, Subscribe,
    VERSION_CLIENT_PRODUCER,
};

use crate::convert::{
    error_name, field, invalid_argument, js_error, new_record, number_field, record_object, set,
    string_field, NETWORK_EXCEPTION,
};
use crate::producer::Pipeline;
use crate::session::{Credentials, Session, Settings};

/// How long one poll waits at the gateway for records.
const POLL_WAIT_MS: u32 = 1_000;
/// Soft bound on the record bytes of one poll.
const POLL_BYTES_MAX: u32 = 1024 * 1024;

/// Connect to a gateway: `await connect("ws://127.0.0.1:9093", { WebSocket })`.
///
/// Options: `WebSocket` (a constructor; default: the global one), `backoffMs` (first
/// reconnect delay, default 100), `backoffMaxMs` (default 10000), `reconnectAttempts`
/// (0 = forever, the default), `sasl` (`{ mechanism: "PLAIN" | "SCRAM-SHA-256" |
/// "SCRAM-SHA-512", username, password }`, for a gateway that requires authentication;
/// a refused one rejects with `SASL_AUTHENTICATION_FAILED`).
#[wasm_bindgen]
pub async fn connect(url: String, options: JsValue) -> Result<Client, JsValue> {
    let constructor = match field(&options, "WebSocket") {
        ctor if ctor.is_function() => ctor.unchecked_into::<Function>(),
        _ => {
            let global = Reflect::get(&js_sys::global(), &"WebSocket".into())?;
            global.dyn_into::<Function>().map_err(|_| {
                invalid_argument(
                    "no WebSocket: pass one as options.WebSocket (e.g. the `ws` package) or \
                     run Node with --experimental-websocket (Node 22+ has it built in)",
                )
            })?
        }
    };
    let mut settings = Settings::default();
    if let Some(ms) = number_field(&options, "backoffMs").filter(|ms| *ms > 0.0) {
        settings.backoff_ms_min = ms;
    }
    if let Some(ms) = number_field(&options, "backoffMaxMs").filter(|ms| *ms > 0.0) {
        settings.backoff_ms_max = ms;
    }
    if let Some(count) = number_field(&options, "reconnectAttempts").filter(|c| *c >= 0.0) {
        settings.reconnect_attempts_max = count as u32;
    }
    let sasl = field(&options, "sasl");
    if sasl.is_object() {
        let text = |name: &str| string_field(&sasl, name).unwrap_or_default();
        let (mechanism, username, password) =
            (text("mechanism"), text("username"), text("password"));
        let known = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
        if !known.contains(&mechanism.as_str()) {
            return Err(invalid_argument(
                "sasl.mechanism must be \"PLAIN\", \"SCRAM-SHA-256\" or \"SCRAM-SHA-512\"",
            ));
        }
        if username.is_empty() || password.is_empty() {
            return Err(invalid_argument("sasl needs a username and a password"));
        }
        settings.sasl = Some(Credentials {
            mechanism,
            username,
            password,
        });
    }
    let session = Session::open(url, constructor, settings).await?;
    Ok(Client {
        session,
        next_consumer: Rc::new(Cell::new(1)),
    })
}

/// A connection to a Weir gateway.
#[wasm_bindgen]
pub struct Client {
    session: Rc<Session>,
    next_consumer: Rc<Cell<u32>>,
}

#[wasm_bindgen]
impl Client {
    /// A producer: `{ acks: "all" | 1 | "leader", idempotent: true }`.
    pub fn producer(&self, options: JsValue) -> Result<Producer, JsValue> {
        let acks = match field(&options, "acks") {
            a if a.is_undefined() || a.is_null() => Acks::All,
            a if a.as_string().as_deref() == Some("all") => Acks::All,
            a if a.as_f64() == Some(-1.0) => Acks::All,
            a if a.as_f64() == Some(1.0) || a.as_string().as_deref() == Some("leader") => {
                Acks::Leader
            }
            _ => {
                return Err(invalid_argument(
                    "acks must be \"all\", -1, 1 or \"leader\"",
                ))
            }
        };
        let idempotent = field(&options, "idempotent").as_bool().unwrap_or(true);
        if idempotent && acks != Acks::All {
            return Err(invalid_argument(
                "an idempotent producer needs acks: \"all\"",
            ));
        }
        let pipeline = (idempotent && self.session.version() >= VERSION_CLIENT_PRODUCER)
            .then(|| Pipeline::new(Rc::clone(&self.session)));
        Ok(Producer {
            session: Rc::clone(&self.session),
            acks,
            idempotent,
            pipeline,
        })
    }

    /// A consumer: `{ group: "g", topics: ["t"], from: "earliest" | "latest",
    /// isolation: "read_uncommitted" | "read_committed" }`.
    pub fn consumer(&self, options: JsValue) -> Result<Consumer, JsValue> {
        let group = string_field(&options, "group");
        let topics_value = field(&options, "topics");
        let topics: Vec<String> = if let Some(topic) = string_field(&options, "topic") {
            vec![topic]
        } else if Array::is_array(&topics_value) {
            let array: Array = topics_value.unchecked_into();
            array.iter().filter_map(|t| t.as_string()).collect()
        } else {
            Vec::new()
        };
        if topics.is_empty() {
            return Err(invalid_argument("consumer needs topics: [\"name\", ...]"));
        }
        let from = match string_field(&options, "from").as_deref() {
            None | Some("latest") => StartFrom::Latest,
            Some("earliest") => StartFrom::Earliest,
            Some(_) => return Err(invalid_argument("from must be \"earliest\" or \"latest\"")),
        };
        let isolation = match string_field(&options, "isolation").as_deref() {
            None | Some("read_uncommitted") => Isolation::ReadUncommitted,
            Some("read_committed") => Isolation::ReadCommitted,
            Some(_) => {
                return Err(invalid_argument(
                    "isolation must be \"read_uncommitted\" or \"read_committed\"",
                ))
            }
        };
        let handle = self.next_consumer.get();
        self.next_consumer.set(handle.wrapping_add(1));
        Ok(Consumer {
            session: Rc::clone(&self.session),
            handle,
            group,
            topics,
            from,
            isolation,
            subscribed: Rc::new(Cell::new(0)),
            positions: Rc::new(RefCell::new(BTreeMap::new())),
            buffer: Rc::new(RefCell::new(VecDeque::new())),
            closed: Rc::new(Cell::new(false)),
            busy: Rc::new(Cell::new(false)),
        })
    }

    /// Topic administration.
    pub fn admin(&self) -> Admin {
        Admin {
            session: Rc::clone(&self.session),
        }
    }

    /// Close the connection for good.
    pub fn close(&self) {
        self.session.close();
    }
}

/// Sends records.
#[wasm_bindgen]
pub struct Producer {
    session: Rc<Session>,
    acks: Acks,
    idempotent: bool,
    /// The client-side idempotent producer (version-2 gateways).
    pipeline: Option<Rc<Pipeline>>,
}

#[wasm_bindgen]
impl Producer {
    /// `await producer.send(topic, { key, value, headers, partition, timestamp })` ->
    /// `{ partition, offset }`.
    pub async fn send(&self, topic: String, record: JsValue) -> Result<JsValue, JsValue> {
        let (record, partition) = new_record(&record)?;
        if let Some(pipeline) = &self.pipeline {
            return pipeline.send(topic, record, partition).await;
        }
        let op = Op::Produce(Produce {
            topic,
            partition,
            acks: self.acks,
            idempotent: self.idempotent,
            record,
        });
        match self.session.request(op).await? {
            Reply::Produced { partition, offset } => {
                let object = Object::new();
                set(&object, "partition", JsValue::from(partition));
                set(&object, "offset", JsValue::from(offset as f64));
                Ok(object.into())
            }
            _ => Err(unexpected()),
        }
    }
}

/// Reads records; async-iterable (`for await (const record of consumer)`).
#[wasm_bindgen]
pub struct Consumer {
    session: Rc<Session>,
    handle: u32,
    group: Option<String>,
    topics: Vec<String>,
    from: StartFrom,
    isolation: Isolation,
    /// Session generation the gateway knows this consumer in (0 = never).
    subscribed: Rc<Cell<u32>>,
    /// Offsets after the records yielded so far.
    positions: Rc<RefCell<BTreeMap<(String, i32), i64>>>,
    buffer: Rc<RefCell<VecDeque<Record>>>,
    closed: Rc<Cell<bool>>,
    busy: Rc<Cell<bool>>,
}

#[wasm_bindgen]
impl Consumer {
    /// The next record, or `undefined` once the consumer is closed.
    pub async fn next(&self) -> Result<JsValue, JsValue> {
        if self.busy.replace(true) {
            return Err(invalid_argument(
                "next() called while a previous next() is pending",
            ));
        }
        let result = self.next_inner().await;
        self.busy.set(false);
        result
    }

    /// Commit the positions after every record yielded so far.
    pub async fn commit(&self) -> Result<(), JsValue> {
        if self.group.is_none() {
            return Err(invalid_argument("commit() needs a consumer with a group"));
        }
        if self.subscribed.get() != self.session.generation() {
            return Ok(()); // Nothing is owned in this session yet; positions resume later.
        }
        let offsets = self.position_list();
        let op = Op::Commit {
            consumer: self.handle,
            offsets,
        };
        match self.session.request(op).await? {
            Reply::Committed => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// Leave the group and stop; a pending `next()` resolves to `undefined`.
    pub async fn close(&self) -> Result<(), JsValue> {
        if self.closed.replace(true) {
            return Ok(());
        }
        if self.subscribed.get() == 0 || self.subscribed.get() != self.session.generation() {
            return Ok(());
        }
        match self
            .session
            .request(Op::Unsubscribe {
                consumer: self.handle,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error_name(&error) == NETWORK_EXCEPTION => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Positions as `[{ topic, partition, offset }]` (next offsets to read).
    pub fn positions(&self) -> JsValue {
        let array = Array::new();
        for position in self.position_list() {
            let object = Object::new();
            set(&object, "topic", JsValue::from_str(&position.topic));
            set(&object, "partition", JsValue::from(position.partition));
            set(&object, "offset", JsValue::from(position.offset as f64));
            array.push(&object);
        }
        array.into()
    }
}

impl Consumer {
    async fn next_inner(&self) -> Result<JsValue, JsValue> {
        loop {
            if self.closed.get() {
                return Ok(JsValue::UNDEFINED);
            }
            let record = self.buffer.borrow_mut().pop_front();
            if let Some(record) = record {
                self.positions
                    .borrow_mut()
                    .insert((record.topic.clone(), record.partition), record.offset + 1);
                return Ok(record_object(&record));
            }
            match self.fill().await {
                Ok(()) => {}
                Err(error) if error_name(&error) == NETWORK_EXCEPTION => {
                    // The gateway session is gone; wait for the next one and resume.
                    self.buffer.borrow_mut().clear();
                    wasm_bindgen_futures::JsFuture::from(self.session.wait_open()).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Subscribe if this session does not know the consumer, then poll once.
    async fn fill(&self) -> Result<(), JsValue> {
        let generation = self.session.generation();
        if self.subscribed.get() != generation {
            self.buffer.borrow_mut().clear();
            let subscribe = Subscribe {
                consumer: self.handle,
                group: self.group.clone(),
                topics: self.topics.clone(),
                from: self.from,
                positions: self.position_list(),
            };
            let op = if self.session.version() >= VERSION_CLIENT_PRODUCER {
                Op::SubscribeIsolated {
                    subscribe,
                    isolation: self.isolation,
                }
            } else if self.isolation == Isolation::ReadUncommitted {
                Op::Subscribe(subscribe)
            } else {
                // Never read uncommitted records for a read_committed consumer.
                let message = "read_committed needs a gateway speaking edge protocol version 2";
                return Err(js_error("UNSUPPORTED_VERSION", 35, message));
            };
            self.session.request(op).await?;
            self.subscribed.set(generation);
        }
        let op = Op::Poll(Poll {
            consumer: self.handle,
            max_wait_ms: POLL_WAIT_MS,
            max_bytes: POLL_BYTES_MAX,
        });
        match self.session.request(op).await? {
            Reply::Records(records) => {
                self.buffer.borrow_mut().extend(records);
                Ok(())
            }
            _ => Err(unexpected()),
        }
    }

    fn position_list(&self) -> Vec<Position> {
        self.positions
            .borrow()
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }
}

/// Topic administration.
#[wasm_bindgen]
pub struct Admin {
    session: Rc<Session>,
}

#[wasm_bindgen]
impl Admin {
    /// `[{ name, partitions, internal }]`.
    #[wasm_bindgen(js_name = listTopics)]
    pub async fn list_topics(&self) -> Result<JsValue, JsValue> {
        let Reply::Topics(topics) = self.session.request(Op::ListTopics).await? else {
            return Err(unexpected());
        };
        let array = Array::new();
        for topic in topics {
            let object = Object::new();
            set(&object, "name", JsValue::from_str(&topic.name));
            set(&object, "partitions", JsValue::from(topic.partitions));
            set(&object, "internal", JsValue::from(topic.internal));
            array.push(&object);
        }
        Ok(array.into())
    }

    /// Create topics from `[{ name, partitions, replicationFactor }]` (or one such
    /// object). Rejects with the first topic's error (e.g. `TOPIC_ALREADY_EXISTS`).
    #[wasm_bindgen(js_name = createTopics)]
    pub async fn create_topics(&self, topics: JsValue) -> Result<(), JsValue> {
        let list: Vec<JsValue> = if Array::is_array(&topics) {
            topics.unchecked_into::<Array>().iter().collect()
        } else {
            vec![topics]
        };
        let mut new_topics = Vec::new();
        for topic in list {
            let name = string_field(&topic, "name")
                .or_else(|| topic.as_string())
                .ok_or_else(|| invalid_argument("each topic needs a name"))?;
            let partitions = number_field(&topic, "partitions")
                .or_else(|| number_field(&topic, "numPartitions"))
                .map_or(-1, |p| p as i32);
            let replication_factor =
                number_field(&topic, "replicationFactor").map_or(-1, |r| r as i16);
            new_topics.push(NewTopic {
                name,
                partitions,
                replication_factor,
            });
        }
        let Reply::Created(results) = self.session.request(Op::CreateTopics(new_topics)).await?
        else {
            return Err(unexpected());
        };
        match results.into_iter().find_map(|(_, error)| error) {
            Some(error) => Err(crate::convert::edge_error(&error)),
            None => Ok(()),
        }
    }
}

fn unexpected() -> JsValue {
    js_error(
        "UNKNOWN_SERVER_ERROR",
        -1,
        "unexpected reply from the gateway",
    )
}
