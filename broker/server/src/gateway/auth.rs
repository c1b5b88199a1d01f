//! Authenticating gateway sessions (edge protocol version 3) and acting as their user on
//! upstream connections.
//!
//! The gateway verifies a session with the very state machine Kafka connections use
//! ([`crate::sasl::Authenticator`]), fed with the messages the client sends in
//! [`SaslFrame`]s as if they came in SaslHandshake/SaslAuthenticate requests: PLAIN users
//! come from the JAAS config of the listener `weir.gateway.sasl.listener` names, SCRAM
//! credentials from the metadata log (`NodeInput::ScramCredential`), exactly as for a
//! Kafka connection. There is one implementation of each check.
//!
//! A verified session keeps what it needs to authenticate *upstream* as the same user
//! ([`UpstreamCredential`]): PLAIN's message (user and password), or for SCRAM the
//! ClientKey the verified proof revealed and the stored ServerKey (the password is never
//! sent to the gateway). Requests routed to another broker then reach it as that user.
//!
//! Invariants:
//! - One exchange per session, at most [`SASL_FRAMES_MAX`] client frames, all before the
//!   authentication deadline (`weir.sasl.authentication.timeout.ms`); any failure closes
//!   the socket with 1008 and [`weir_edge::SASL_FAILED_REASON`].
//! - No password, proof or key reaches a log line, an error or a `Debug`; the upstream
//!   credential lives only in the session's memory and is wiped when the session ends.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;
use weir_edge::SaslFrame;
use weir_wire::domain::sasl::{SaslAuthenticateRequest, SaslHandshakeRequest};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{PlainMessage, SaslMechanism, ScramClient, ScramKeys, ScramMechanism};

use crate::messages::NodeInput;
use crate::sasl::{Authenticator, SaslListener, Step};

/// Client frames one exchange may take (SCRAM needs two; PLAIN one).
pub const SASL_FRAMES_MAX: usize = 4;
/// The SaslAuthenticate version the gateway feeds the authenticator (and sends upstream).
const SASL_AUTHENTICATE_VERSION: i16 = 2;

/// How a session proves itself to other brokers: what its own authentication revealed.
pub enum UpstreamCredential {
    /// PLAIN: the user and password.
    Plain(PlainMessage),
    /// SCRAM: the user's ClientKey and ServerKey (wiped on drop).
    Scram(ScramKeys),
    /// SCRAM with the user's password (the schema registry's configured login,
    /// `kafkastore.sasl.jaas.config`): the keys are derived from the server's salt.
    ScramPassword(ScramMechanism, PlainMessage),
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamCredential::Plain(message) => write!(f, "Plain({:?})", message.username),
            UpstreamCredential::Scram(keys) => write!(f, "Scram({:?})", keys.username),
            UpstreamCredential::ScramPassword(_, message) => {
                write!(f, "ScramPassword({:?})", message.username)
            }
        }
    }
}

impl Drop for UpstreamCredential {
    fn drop(&mut self) {
        if let UpstreamCredential::Plain(message) | UpstreamCredential::ScramPassword(_, message) =
            self
        {
            // Overwrite the password in place with as many NULs (still valid UTF-8); SCRAM
            // keys wipe themselves (`ScramKeys`'s Drop). Copies made on the way (the
            // client's frame, encoded upstream requests) are not tracked: best effort.
            let wiped = "\0".repeat(message.password.len());
            message.password.replace_range(.., &wiped);
            std::hint::black_box(&message.password);
        }
    }
}

/// A session's verified identity.
#[derive(Debug)]
pub struct Identity {
    /// The user (principal `User:<user>`).
    pub user: String,
    /// The mechanism's last server message, for [`weir_edge::SaslAnswer::Success`].
    pub final_message: Vec<u8>,
    /// How to authenticate upstream as this user.
    pub upstream: Arc<UpstreamCredential>,
}

/// Why an exchange failed: the client's message (Kafka's, no secret) and the log's.
#[derive(Debug)]
pub struct Refusal {
    /// Sent to the client in `SaslAnswer::Failure`.
    pub client: String,
    /// For the gateway's log.
    pub log: String,
}

/// What the session does after one client frame.
pub enum Progress {
    /// Send the challenge and read the next frame.
    Challenge(Vec<u8>),
    /// Authenticated.
    Done(Identity),
}

/// One session's exchange: feed it the client's frames in order.
pub struct Exchange {
    auth: Authenticator,
    frames: usize,
    /// PLAIN's parsed message, kept for the upstream credential if it succeeds.
    plain: Option<PlainMessage>,
    started: bool,
}

impl Exchange {
    /// An exchange starting at `now` (the deadline counts from here).
    pub fn new(listener: Arc<SaslListener>, now: std::time::Duration) -> Exchange {
        Exchange {
            auth: Authenticator::new(listener, now),
            frames: 0,
            plain: None,
            started: false,
        }
    }

    /// When the exchange must have succeeded.
    pub fn deadline(&self) -> Option<std::time::Duration> {
        self.auth.deadline()
    }

    /// Take one client frame at `now`; SCRAM credentials are looked up through `node`.
    pub async fn handle(
        &mut self,
        frame: SaslFrame,
        now: std::time::Duration,
        node: &crate::shards::NodeHandle,
    ) -> Result<Progress, Refusal> {
        self.frames += 1;
        if self.frames > SASL_FRAMES_MAX {
            return Err(refusal("too many SASL frames", "too many SASL frames"));
        }
        let mut step = match (frame, self.started) {
            (SaslFrame::Start { mechanism, message }, false) => {
                self.started = true;
                let handshake = SaslHandshakeRequest {
                    mechanism: mechanism.clone(),
                    version: 1,
                };
                match self.auth.handshake(&handshake) {
                    Step::Answer(_) => {}
                    other => return Err(refused(other)),
                }
                if SaslMechanism::parse(&mechanism) == Some(SaslMechanism::Plain) {
                    self.plain = PlainMessage::parse(&message).ok();
                }
                self.token(message, now)
            }
            (SaslFrame::Continue { message }, true) => self.token(message, now),
            (SaslFrame::Start { .. }, true) => {
                return Err(refusal("SASL exchange already started", "a second Start"))
            }
            (SaslFrame::Continue { .. }, false) => {
                return Err(refusal(
                    "SASL exchange not started",
                    "Continue before Start",
                ))
            }
        };
        if let Step::Lookup {
            user,
            mechanism,
            first,
        } = step
        {
            let (reply, credential) = oneshot::channel();
            let lookup = NodeInput::ScramCredential {
                user,
                mechanism,
                reply,
            };
            let stopped = || refusal("the broker is stopping", "node loop gone");
            node.send(lookup).await.map_err(|_| stopped())?;
            let credential = credential.await.map_err(|_| stopped())?;
            step = self.auth.scram_start(mechanism, first, credential);
        }
        match step {
            Step::Answer(ApiResponse::SaslAuthenticate(answer)) => {
                Ok(Progress::Challenge(answer.auth_bytes.to_vec()))
            }
            Step::Authenticated {
                response: ApiResponse::SaslAuthenticate(answer),
                user,
            } => {
                let upstream = match (self.auth.take_scram_keys(), self.plain.take()) {
                    (Some(keys), _) => UpstreamCredential::Scram(keys),
                    (None, Some(plain)) => UpstreamCredential::Plain(plain),
                    (None, None) => {
                        return Err(refusal("internal error", "no credential after success"))
                    }
                };
                Ok(Progress::Done(Identity {
                    user,
                    final_message: answer.auth_bytes.to_vec(),
                    upstream: Arc::new(upstream),
                }))
            }
            other => Err(refused(other)),
        }
    }

    fn token(&mut self, message: Vec<u8>, now: std::time::Duration) -> Step {
        let request = SaslAuthenticateRequest {
            auth_bytes: Bytes::from(message),
        };
        self.auth
            .authenticate(&request, SASL_AUTHENTICATE_VERSION, now)
    }
}

fn refusal(client: &str, log: &str) -> Refusal {
    Refusal {
        client: client.to_owned(),
        log: log.to_owned(),
    }
}

/// The refusal a closing (or unexpected) step carries.
fn refused(step: Step) -> Refusal {
    let (response, log) = match step {
        Step::Close { response, reason } => (response, reason),
        Step::Answer(response) | Step::Authenticated { response, .. } => {
            (response, "unexpected SASL step".to_owned())
        }
        Step::Lookup { .. } => return refusal("internal error", "unexpected credential lookup"),
    };
    let client = match response {
        ApiResponse::SaslHandshake(answer)
            if answer.error == ErrorCode::UNSUPPORTED_SASL_MECHANISM =>
        {
            format!(
                "Unsupported SASL mechanism; the gateway accepts {}",
                answer.mechanisms.join(", ")
            )
        }
        ApiResponse::SaslAuthenticate(answer) => answer
            .error_message
            .unwrap_or_else(|| "Authentication failed".to_owned()),
        _ => "Authentication failed".to_owned(),
    };
    Refusal { client, log }
}

/// The requests that authenticate an upstream connection as the session's user, one at a
/// time: send [`UpstreamLogin::start`], then feed each answer to [`UpstreamLogin::answer`]
/// for the next request until it returns `None`.
pub struct UpstreamLogin {
    credential: Arc<UpstreamCredential>,
    /// SCRAM: the client side of the exchange and its client-first message.
    scram: Option<(ScramClient, Vec<u8>)>,
    state: LoginState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginState {
    /// SaslHandshake sent.
    Handshake,
    /// The first SaslAuthenticate sent (PLAIN's message, SCRAM's client-first).
    First,
    /// SCRAM's client-final sent.
    Final,
}

impl UpstreamLogin {
    /// A login as `credential`'s user; `nonce` is fresh (SCRAM's client nonce).
    pub fn new(credential: Arc<UpstreamCredential>, nonce: &str) -> UpstreamLogin {
        let scram = match &*credential {
            UpstreamCredential::Scram(keys) => Some(ScramClient::from_keys(keys.clone(), nonce)),
            UpstreamCredential::ScramPassword(mechanism, message) => Some(ScramClient::start(
                *mechanism,
                &message.username,
                &message.password,
                nonce,
            )),
            UpstreamCredential::Plain(_) => None,
        };
        UpstreamLogin {
            credential,
            scram,
            state: LoginState::Handshake,
        }
    }

    fn mechanism(&self) -> &'static str {
        match &*self.credential {
            UpstreamCredential::Plain(_) => "PLAIN",
            UpstreamCredential::Scram(keys) => keys.mechanism.name(),
            UpstreamCredential::ScramPassword(mechanism, _) => mechanism.name(),
        }
    }

    /// The first request (SaslHandshake).
    pub fn start(&self) -> ApiRequest {
        ApiRequest::SaslHandshake(SaslHandshakeRequest {
            mechanism: self.mechanism().to_owned(),
            version: 1,
        })
    }

    /// Take the answer to the last request: the next request, `None` once authenticated.
    /// Errors say why (no secret).
    pub fn answer(&mut self, answer: &ApiResponse) -> Result<Option<ApiRequest>, String> {
        let token = |bytes: Vec<u8>| {
            Some(ApiRequest::SaslAuthenticate(SaslAuthenticateRequest {
                auth_bytes: Bytes::from(bytes),
            }))
        };
        match (self.state, answer) {
            (LoginState::Handshake, ApiResponse::SaslHandshake(answer)) => {
                if answer.error != ErrorCode::NONE {
                    return Err(format!(
                        "{} is not enabled on the upstream listener",
                        self.mechanism()
                    ));
                }
                self.state = LoginState::First;
                match (&*self.credential, &self.scram) {
                    (_, Some((_, first))) => Ok(token(first.clone())),
                    (UpstreamCredential::Plain(message), None) => Ok(token(message.encode())),
                    (_, None) => Err("no SCRAM client".to_owned()),
                }
            }
            (LoginState::First | LoginState::Final, ApiResponse::SaslAuthenticate(answer)) => {
                if answer.error != ErrorCode::NONE {
                    let message = answer.error_message.clone().unwrap_or_default();
                    return Err(format!("the upstream broker refused the user: {message}"));
                }
                match (self.state, self.scram.as_mut()) {
                    (LoginState::First, None) => Ok(None),
                    (LoginState::First, Some((client, _))) => {
                        let client_final = (client.server_first(&answer.auth_bytes))
                            .map_err(|error| format!("upstream SCRAM: {error}"))?;
                        self.state = LoginState::Final;
                        Ok(token(client_final))
                    }
                    (_, Some((client, _))) => {
                        (client.server_final(&answer.auth_bytes))
                            .map_err(|error| format!("upstream SCRAM: {error}"))?;
                        Ok(None)
                    }
                    (_, None) => Err("unexpected upstream SASL answer".to_owned()),
                }
            }
            _ => Err("unexpected upstream SASL answer".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::sasl::{ClientFirst, ScramCredential, ScramMechanism, ScramServer};

    use super::*;

    // Goal: the WASM client's SCRAM (weir_edge::sasl, RustCrypto) and the broker's
    // (weir_wire::sasl, ring) agree, for both hashes: the broker accepts the client's proof,
    // the client accepts the broker's signature, and the keys the broker learns log in
    // upstream. Method: run weir-edge's client against weir-wire's server, then an
    // UpstreamLogin against a second server with the same credential.
    #[test]
    fn edge_client_and_broker_server_agree() {
        use weir_edge::sasl::{ScramClient as EdgeClient, ScramHash};
        for (hash, mechanism) in [
            (ScramHash::Sha256, ScramMechanism::Sha256),
            (ScramHash::Sha512, ScramMechanism::Sha512),
        ] {
            let stored = ScramCredential::from_password(mechanism, "pw", b"salt-edge", 4096);
            let (mut client, first) = EdgeClient::start(hash, "eve", "pw", "edge");
            let parsed = ClientFirst::parse(&first).expect("client-first");
            let (server, server_first) =
                ScramServer::start(mechanism, parsed, stored.clone(), "broker");
            let client_final = client.server_first(&server_first).expect("client-final");
            let (server_final, keys) = server.finish_keys(&client_final).expect("verified");
            client.server_final(&server_final).expect("signature");

            let credential = Arc::new(UpstreamCredential::Scram(keys));
            let mut login = UpstreamLogin::new(credential, "gateway");
            let handshake = ApiResponse::SaslHandshake(Default::default());
            let Some(ApiRequest::SaslAuthenticate(first)) =
                login.answer(&handshake).expect("first")
            else {
                panic!("client-first expected");
            };
            let parsed = ClientFirst::parse(&first.auth_bytes).expect("client-first");
            let (upstream, server_first) = ScramServer::start(mechanism, parsed, stored, "up");
            let answer = |auth_bytes: Vec<u8>| {
                ApiResponse::SaslAuthenticate(weir_wire::domain::sasl::SaslAuthenticateResponse {
                    auth_bytes: Bytes::from(auth_bytes),
                    ..Default::default()
                })
            };
            let Some(ApiRequest::SaslAuthenticate(client_final)) =
                login.answer(&answer(server_first)).expect("final")
            else {
                panic!("client-final expected");
            };
            let server_final = upstream.finish(&client_final.auth_bytes).expect("accepted");
            assert!(login.answer(&answer(server_final)).expect("done").is_none());
        }
    }
}
