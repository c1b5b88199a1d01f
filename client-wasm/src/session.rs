//! The client's connection: one WebSocket at a time, the edge handshake, requests matched
//! to responses by id, and reconnection with exponential backoff.
//!
//! Invariants:
//! - A request is sent only on an open (handshaken) socket; while reconnecting, requests
//!   wait for the next open socket; once the client is closed they fail at once.
//! - When a socket drops, every unanswered request fails with `NETWORK_EXCEPTION` (the
//!   gateway's session, and whatever it held, is gone), then the client reconnects after
//!   `min(backoff_ms_max, backoff_ms_min * 2^attempt)` scaled by a random factor in
//!   [0.5, 1.0) so many clients do not reconnect in lockstep.
//! - `generation` counts opened sessions; consumers compare it to re-subscribe, the
//!   producer to resend the batches the last socket took down with it.
//! - [`Session::start`] writes its frame before it returns, so callers that start requests
//!   one after another put them on the socket in that order (the producer relies on it to
//!   keep a partition's batches in sequence order).
//! - A handshake the gateway rejects (unsupported version) is final: no reconnect; so is a
//!   refused authentication (`SASL_AUTHENTICATION_FAILED`: retrying the same password
//!   would only be refused again).
//! - With `sasl` credentials, every (re)connection authenticates again when the gateway asks
//!   (edge protocol version 3, `ServerHello::Authenticate`); requests wait until it
//!   succeeded. SCRAM runs here (weir_edge::sasl), so the password never leaves the client;
//!   the gateway's server-final signature is checked before the session counts as open.
//! - Unanswered requests are bounded by the caller's use (the gateway bounds what it
//!   accepts); the pending map holds one entry per unanswered request.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use weir_edge::sasl::{plain_message, ScramClient, ScramHash};
use weir_edge::{
    ClientHello, EdgeError, Op, Reply, Request, Response, SaslAnswer, SaslFrame, ServerHello,
};

use crate::convert::{edge_error, js_error, NETWORK_EXCEPTION};

#[wasm_bindgen]
extern "C" {
    /// The host's `setTimeout`.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, ms: f64) -> JsValue;
}

/// Reconnect and timeout settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// First reconnect delay.
    pub backoff_ms_min: f64,
    /// Largest reconnect delay.
    pub backoff_ms_max: f64,
    /// Give up reconnecting after this many failed attempts in a row (0 = never).
    pub reconnect_attempts_max: u32,
    /// SASL credentials for a gateway that requires authentication.
    pub sasl: Option<Credentials>,
}

/// `connect`'s `sasl` option.
#[derive(Clone)]
pub struct Credentials {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The user.
    pub username: String,
    /// The password (never formatted).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Kafka's code and name of a refused authentication.
const SASL_AUTHENTICATION_FAILED: (&str, i16) = ("SASL_AUTHENTICATION_FAILED", 58);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backoff_ms_min: 100.0,
            backoff_ms_max: 10_000.0,
            reconnect_attempts_max: 0,
            sasl: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Socket opening or hello sent.
    Connecting,
    /// The gateway asked for authentication; SASL frames are being exchanged.
    Authenticating,
    /// Handshaken.
    Open,
    /// Waiting for the backoff timer.
    Backoff,
    /// Closed by the user or refused by the gateway: final.
    Closed,
}

type Slot = Rc<RefCell<Option<Result<Reply, EdgeError>>>>;

struct Waiter {
    resolve: Function,
    reject: Function,
}

/// A request written to the socket whose answer has not been read yet.
pub struct Pending {
    promise: Promise,
    slot: Slot,
}

impl Pending {
    /// Wait for the answer; a lost connection rejects with `NETWORK_EXCEPTION`.
    pub async fn answer(self) -> Result<Reply, JsValue> {
        JsFuture::from(self.promise).await?;
        let answer = self.slot.borrow_mut().take();
        match answer {
            Some(Ok(reply)) => Ok(reply),
            Some(Err(error)) => Err(edge_error(&error)),
            None => Err(js_error(NETWORK_EXCEPTION, -1, "no answer")),
        }
    }
}

/// Handlers attached to the current socket, kept alive with it.
struct Handlers {
    _open: Closure<dyn FnMut(JsValue)>,
    _message: Closure<dyn FnMut(JsValue)>,
    _close: Closure<dyn FnMut(JsValue)>,
}

/// The connection state shared by a client's objects.
pub struct Session {
    url: String,
    constructor: Function,
    settings: Settings,
    phase: Cell<Phase>,
    socket: RefCell<Option<JsValue>>,
    handlers: RefCell<Option<Handlers>>,
    next_id: Cell<u32>,
    pending: RefCell<BTreeMap<u32, (Slot, Waiter)>>,
    /// Promises waiting for the socket to open.
    openers: RefCell<Vec<Waiter>>,
    generation: Cell<u32>,
    /// The edge protocol version of the open (or last) session.
    version: Cell<u16>,
    attempts: Cell<u32>,
    /// Why the session is closed for good.
    final_error: RefCell<Option<JsValue>>,
    /// Keeps the backoff timer's closure alive until it runs.
    timer: RefCell<Option<Closure<dyn FnMut()>>>,
    /// The SCRAM exchange in progress (`None` for PLAIN, or between sessions).
    scram: RefCell<Option<ScramClient>>,
}

impl Session {
    /// Open the first connection; resolves when the handshake succeeded.
    pub async fn open(
        url: String,
        constructor: Function,
        settings: Settings,
    ) -> Result<Rc<Session>, JsValue> {
        let session = Rc::new(Session {
            url,
            constructor,
            settings,
            phase: Cell::new(Phase::Connecting),
            socket: RefCell::new(None),
            handlers: RefCell::new(None),
            next_id: Cell::new(1),
            pending: RefCell::new(BTreeMap::new()),
            openers: RefCell::new(Vec::new()),
            generation: Cell::new(0),
            version: Cell::new(weir_edge::VERSION_MIN),
            attempts: Cell::new(0),
            final_error: RefCell::new(None),
            timer: RefCell::new(None),
            scram: RefCell::new(None),
        });
        let opened = session.wait_open();
        // The first connection must succeed: a wrong URL should fail `connect`, not retry.
        session.dial()?;
        if let Err(error) = JsFuture::from(opened).await {
            session.shut(error.clone());
            return Err(error);
        }
        Ok(session)
    }

    /// Count of sessions opened so far.
    pub fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// The negotiated edge protocol version (of the current or last session).
    pub fn version(&self) -> u16 {
        self.version.get()
    }

    /// True while a handshaken socket is open.
    pub fn is_open(&self) -> bool {
        self.phase.get() == Phase::Open
    }

    /// True once closed for good.
    pub fn is_closed(&self) -> bool {
        self.phase.get() == Phase::Closed
    }

    /// Why requests fail once the session is closed for good.
    pub fn closed_error(&self) -> JsValue {
        self.final_error
            .borrow()
            .clone()
            .unwrap_or_else(|| js_error(NETWORK_EXCEPTION, -1, "the client is closed"))
    }

    /// Send one request and wait for its answer.
    pub async fn request(&self, op: Op) -> Result<Reply, JsValue> {
        while self.phase.get() != Phase::Open {
            if self.phase.get() == Phase::Closed {
                return Err(self.closed_error());
            }
            JsFuture::from(self.wait_open()).await?;
        }
        self.start(op)?.answer().await
    }

    /// Write a request now, on the open socket (an error if none is open); await its
    /// answer with [`Pending::answer`].
    pub fn start(&self, op: Op) -> Result<Pending, JsValue> {
        if self.phase.get() != Phase::Open {
            return Err(js_error(NETWORK_EXCEPTION, -1, "not connected"));
        }
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1).max(1));
        let frame = weir_edge::encode(&Request { id, op });
        let slot: Slot = Rc::new(RefCell::new(None));
        let mut waiter = None;
        let promise = Promise::new(&mut |resolve, reject| {
            waiter = Some(Waiter { resolve, reject });
        });
        let Some(waiter) = waiter else {
            return Err(js_error(
                NETWORK_EXCEPTION,
                -1,
                "promise executor did not run",
            ));
        };
        self.pending
            .borrow_mut()
            .insert(id, (Rc::clone(&slot), waiter));
        if let Err(error) = self.send_bytes(&frame) {
            self.pending.borrow_mut().remove(&id);
            return Err(error);
        }
        Ok(Pending { promise, slot })
    }

    /// Close for good: no more reconnects; unanswered requests fail.
    pub fn close(&self) {
        self.shut(js_error(NETWORK_EXCEPTION, -1, "the client was closed"));
    }

    /// A promise resolved when a socket is open (or rejected when the client closes).
    pub fn wait_open(&self) -> Promise {
        let mut waiter = None;
        let promise = Promise::new(&mut |resolve, reject| {
            waiter = Some(Waiter { resolve, reject });
        });
        if let Some(waiter) = waiter {
            match self.phase.get() {
                Phase::Open => {
                    let _ = waiter.resolve.call0(&JsValue::UNDEFINED);
                }
                Phase::Closed => {
                    let _ = waiter
                        .reject
                        .call1(&JsValue::UNDEFINED, &self.closed_error());
                }
                Phase::Connecting | Phase::Authenticating | Phase::Backoff => {
                    self.openers.borrow_mut().push(waiter)
                }
            }
        }
        promise
    }

    fn send_bytes(&self, bytes: &[u8]) -> Result<(), JsValue> {
        let socket = self.socket.borrow().clone();
        let Some(socket) = socket else {
            return Err(js_error(NETWORK_EXCEPTION, -1, "not connected"));
        };
        let send: Function = Reflect::get(&socket, &"send".into())?.dyn_into()?;
        send.call1(&socket, &Uint8Array::from(bytes))
            .map(|_| ())
            .map_err(|_| js_error(NETWORK_EXCEPTION, -1, "the WebSocket refused to send"))
    }

    /// Open a socket and attach handlers.
    fn dial(self: &Rc<Self>) -> Result<(), JsValue> {
        self.phase.set(Phase::Connecting);
        let args = js_sys::Array::of1(&JsValue::from_str(&self.url));
        let socket = Reflect::construct(&self.constructor, &args).map_err(|error| {
            let message = js_sys::Error::from(error).message();
            js_error(
                NETWORK_EXCEPTION,
                -1,
                &format!("cannot open {}: {message}", self.url),
            )
        })?;
        Reflect::set(&socket, &"binaryType".into(), &"arraybuffer".into())?;
        let weak = Rc::downgrade(self);
        let open = handler(&weak, |session, _| session.on_open());
        let message = handler(&weak, |session, event| session.on_message(&event));
        let close = handler(&weak, |session, event| session.on_close(&event));
        Reflect::set(&socket, &"onopen".into(), open.as_ref())?;
        Reflect::set(&socket, &"onmessage".into(), message.as_ref())?;
        Reflect::set(&socket, &"onclose".into(), close.as_ref())?;
        // Errors are always followed by a close event; handle them there.
        Reflect::set(&socket, &"onerror".into(), &Function::new_no_args(""))?;
        self.socket.replace(Some(socket));
        self.handlers.replace(Some(Handlers {
            _open: open,
            _message: message,
            _close: close,
        }));
        Ok(())
    }

    fn on_open(&self) {
        let hello = ClientHello::new(concat!("weir-wasm/", env!("CARGO_PKG_VERSION")));
        if self.send_bytes(&weir_edge::encode(&hello)).is_err() {
            self.drop_socket();
        }
    }

    fn on_message(self: &Rc<Self>, event: &JsValue) {
        let data = Reflect::get(event, &"data".into()).unwrap_or(JsValue::UNDEFINED);
        if !data.is_object() {
            return; // Text frames are not part of the protocol.
        }
        let bytes = Uint8Array::new(&data).to_vec();
        match self.phase.get() {
            Phase::Connecting => self.on_hello(&bytes),
            Phase::Authenticating => self.on_sasl(&bytes),
            Phase::Open => self.on_response(&bytes),
            Phase::Backoff | Phase::Closed => {}
        }
    }

    fn on_hello(self: &Rc<Self>, bytes: &[u8]) {
        match weir_edge::decode::<ServerHello>(bytes) {
            Ok(ServerHello::Accepted { version, .. }) => self.opened(version),
            Ok(ServerHello::Authenticate {
                version,
                mechanisms,
            }) => {
                self.version.set(version);
                match self.sasl_start(&mechanisms) {
                    Ok(frame) => {
                        self.phase.set(Phase::Authenticating);
                        if self.send_bytes(&weir_edge::encode(&frame)).is_err() {
                            self.drop_socket();
                        }
                    }
                    Err(message) => self.shut(sasl_failed(&message)),
                }
            }
            Ok(ServerHello::Rejected { reason, .. }) => {
                self.shut(js_error("UNSUPPORTED_VERSION", 35, &reason));
            }
            Err(error) => self.shut(js_error("UNSUPPORTED_VERSION", 35, &error.to_string())),
        }
    }

    /// The handshake (and authentication, if asked for) succeeded at `version`.
    fn opened(&self, version: u16) {
        self.version.set(version);
        self.phase.set(Phase::Open);
        self.attempts.set(0);
        self.generation.set(self.generation.get() + 1);
        for waiter in self.openers.take() {
            let _ = waiter.resolve.call0(&JsValue::UNDEFINED);
        }
    }

    /// The first SASL frame for a gateway that accepts `mechanisms`, or why there is none.
    fn sasl_start(&self, mechanisms: &[String]) -> Result<SaslFrame, String> {
        let Some(credentials) = &self.settings.sasl else {
            return Err(format!(
                "the gateway requires authentication ({}): pass options.sasl \
                 {{ mechanism, username, password }}",
                mechanisms.join(", ")
            ));
        };
        let mechanism = &credentials.mechanism;
        if !mechanisms.contains(mechanism) {
            return Err(format!(
                "the gateway does not accept {mechanism}; it accepts {}",
                mechanisms.join(", ")
            ));
        }
        let (username, password) = (&credentials.username, &credentials.password);
        let message = match ScramHash::of_mechanism(mechanism) {
            Some(hash) => {
                let (client, first) = ScramClient::start(hash, username, password, &nonce());
                self.scram.replace(Some(client));
                first
            }
            None => plain_message(username, password),
        };
        Ok(SaslFrame::Start {
            mechanism: mechanism.clone(),
            message,
        })
    }

    fn on_sasl(&self, bytes: &[u8]) {
        let answer = match weir_edge::decode::<SaslAnswer>(bytes) {
            Ok(answer) => answer,
            Err(error) => return self.shut(sasl_failed(&error.to_string())),
        };
        match answer {
            SaslAnswer::Challenge { message } => {
                let next = match self.scram.borrow_mut().as_mut() {
                    Some(client) => client.server_first(&message),
                    None => return self.shut(sasl_failed("unexpected SASL challenge")),
                };
                match next {
                    Ok(message) => {
                        let frame = SaslFrame::Continue { message };
                        if self.send_bytes(&weir_edge::encode(&frame)).is_err() {
                            self.drop_socket();
                        }
                    }
                    Err(error) => self.shut(sasl_failed(&error.to_string())),
                }
            }
            SaslAnswer::Success { message, .. } => {
                let scram = self.scram.take();
                if let Some(Err(error)) = scram.map(|client| client.server_final(&message)) {
                    return self.shut(sasl_failed(&error.to_string()));
                }
                self.opened(self.version.get());
            }
            SaslAnswer::Failure { reason } => self.shut(sasl_failed(&reason)),
        }
    }

    fn on_response(&self, bytes: &[u8]) {
        let Ok(response) = weir_edge::decode::<Response>(bytes) else {
            self.drop_socket(); // A garbled stream cannot be trusted further.
            return;
        };
        let entry = self.pending.borrow_mut().remove(&response.id);
        if let Some((slot, waiter)) = entry {
            slot.replace(Some(response.result));
            let _ = waiter.resolve.call0(&JsValue::UNDEFINED);
        }
    }

    fn on_close(self: &Rc<Self>, event: &JsValue) {
        let reason = Reflect::get(event, &"reason".into())
            .ok()
            .and_then(|r| r.as_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "connection lost".to_owned());
        self.detach();
        self.fail_pending(&reason);
        match self.phase.get() {
            Phase::Closed => {}
            Phase::Connecting | Phase::Authenticating if self.generation.get() == 0 => {
                // The first connection failed: `connect` rejects, no retries.
                let message = format!("cannot connect to {}: {reason}", self.url);
                self.shut(js_error(NETWORK_EXCEPTION, -1, &message));
            }
            Phase::Connecting | Phase::Authenticating | Phase::Open | Phase::Backoff => {
                self.schedule_reconnect()
            }
        }
    }

    fn schedule_reconnect(self: &Rc<Self>) {
        let attempts = self.attempts.get();
        let limit = self.settings.reconnect_attempts_max;
        if limit > 0 && attempts >= limit {
            let message = format!(
                "gave up reconnecting to {} after {attempts} attempts",
                self.url
            );
            self.shut(js_error(NETWORK_EXCEPTION, -1, &message));
            return;
        }
        self.attempts.set(attempts + 1);
        self.phase.set(Phase::Backoff);
        let exponent = attempts.min(16) as i32;
        let delay = (self.settings.backoff_ms_min * 2f64.powi(exponent))
            .min(self.settings.backoff_ms_max)
            * (0.5 + js_sys::Math::random() / 2.0);
        let weak = Rc::downgrade(self);
        let timer = Closure::<dyn FnMut()>::new(move || {
            let Some(session) = weak.upgrade() else {
                return;
            };
            session.timer.take();
            if session.phase.get() == Phase::Backoff && session.dial().is_err() {
                session.schedule_reconnect();
            }
        });
        set_timeout(timer.as_ref().unchecked_ref(), delay);
        self.timer.replace(Some(timer));
    }

    fn fail_pending(&self, reason: &str) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, (_, waiter)) in pending {
            let error = js_error(NETWORK_EXCEPTION, -1, &format!("connection lost: {reason}"));
            let _ = waiter.reject.call1(&JsValue::UNDEFINED, &error);
        }
    }

    /// Close the current socket; its close event drives what happens next.
    fn drop_socket(&self) {
        if let Some(socket) = self.socket.borrow().as_ref() {
            if let Ok(close) = Reflect::get(socket, &"close".into()) {
                if let Ok(close) = close.dyn_into::<Function>() {
                    let _ = close.call0(socket);
                }
            }
        }
    }

    /// Forget the current socket's handlers (they must not fire into a new socket's state).
    fn detach(&self) {
        if let Some(socket) = self.socket.take() {
            for name in ["onopen", "onmessage", "onclose", "onerror"] {
                let _ = Reflect::set(&socket, &name.into(), &JsValue::NULL);
            }
        }
        // Dropping a closure while it runs is not allowed: defer it to a timer tick.
        if let Some(handlers) = self.handlers.take() {
            let holder = Rc::new(RefCell::new(Some(handlers)));
            let cleanup = Closure::once_into_js(move || {
                holder.borrow_mut().take();
            });
            set_timeout(cleanup.unchecked_ref(), 0.0);
        }
    }

    fn shut(&self, error: JsValue) {
        if self.phase.get() == Phase::Closed {
            return;
        }
        self.phase.set(Phase::Closed);
        self.final_error.replace(Some(error.clone()));
        self.drop_socket();
        self.detach();
        self.fail_pending("the client is closed");
        for waiter in self.openers.take() {
            let _ = waiter.reject.call1(&JsValue::UNDEFINED, &error);
        }
    }
}

/// A refused authentication: Kafka's SASL_AUTHENTICATION_FAILED with the gateway's reason.
fn sasl_failed(reason: &str) -> JsValue {
    let (name, code) = SASL_AUTHENTICATION_FAILED;
    let message = format!("{}: {reason}", weir_edge::SASL_FAILED_REASON);
    js_error(name, code, &message)
}

/// A fresh SCRAM client nonce: 24 random bytes as hex, from `crypto.getRandomValues` where
/// the host has it (browsers, Node 19+, edge runtimes), else from `Math.random`.
fn nonce() -> String {
    let mut bytes = [0u8; 24];
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let filled = crypto.filter(JsValue::is_object).and_then(|crypto| {
        let fill = Reflect::get(&crypto, &"getRandomValues".into()).ok()?;
        let fill: Function = fill.dyn_into().ok()?;
        let array = Uint8Array::new_with_length(bytes.len() as u32);
        fill.call1(&crypto, &array).ok()?;
        array.copy_to(&mut bytes);
        Some(())
    });
    if filled.is_none() {
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn handler(
    weak: &Weak<Session>,
    on_event: impl Fn(&Rc<Session>, JsValue) + 'static,
) -> Closure<dyn FnMut(JsValue)> {
    let weak = weak.clone();
    Closure::new(move |event: JsValue| {
        if let Some(session) = weak.upgrade() {
            on_event(&session, event);
        }
    })
}
