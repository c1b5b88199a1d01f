//! SASL authentication of one connection (SASL_PLAINTEXT and SASL_SSL listeners): a
//! state machine the connection's reader drives with the SaslHandshake and
//! SaslAuthenticate requests it receives, answering with what to send and whether to
//! close. It reads no socket and no clock: `now` is passed in, the SCRAM credential is
//! looked up by the reader (in the node's metadata image) when the machine asks for it.
//!
//! Mechanisms: PLAIN checks the listener's JAAS users
//! (`listener.name.<l>.plain.sasl.jaas.config`; the SCRAM credentials are not consulted
//! for PLAIN), SCRAM-SHA-256/512 check the credentials of the metadata log (KIP-554).
//!
//! Invariants:
//! - Before authentication succeeds, the connection serves nothing but ApiVersions,
//!   SaslHandshake and SaslAuthenticate (enforced by `conn.rs` with
//!   [`Authenticator::is_authenticated`]).
//! - Every failure answers with its error (UNSUPPORTED_SASL_MECHANISM with the enabled
//!   list, SASL_AUTHENTICATION_FAILED with a message, ILLEGAL_SASL_STATE) and then closes
//!   the connection, as Kafka does: one failed attempt per connection.
//! - A connection that has not authenticated by its deadline
//!   (`weir.sasl.authentication.timeout.ms` after accept), or whose session ran out
//!   (`connections.max.reauth.ms`, KIP-368) without re-authenticating, is closed: the
//!   reader waits on [`Authenticator::deadline`].
//! - A re-authentication must keep the principal; it never changes a connection's user.
//! - No password, proof or key appears in a log line, an error message or a `Debug`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use weir_wire::domain::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use weir_wire::domain::ApiResponse;
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{
    constant_time_eq, ClientFirst, NonceSource, PlainMessage, SaslError, SaslMechanism,
    ScramCredential, ScramKeys, ScramMechanism, ScramServer,
};

/// `weir.sasl.authentication.timeout.ms` by default: time from accept to authenticated.
pub const AUTHENTICATION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// A SASL listener's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms` (per listener or broker-wide), in the order listed.
    pub mechanisms: Vec<SaslMechanism>,
    /// PLAIN users and passwords from the listener's PlainLoginModule JAAS config.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms`: a session's lifetime (KIP-368); `None` = no limit.
    pub reauth: Option<Duration>,
    /// `weir.sasl.authentication.timeout.ms`.
    pub authentication_timeout: Duration,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("reauth", &self.reauth)
            .field("authentication_timeout", &self.authentication_timeout)
            .finish()
    }
}

/// What every connection of one SASL listener shares: its settings and the nonce source.
#[derive(Debug)]
pub struct SaslListener {
    settings: SaslSettings,
    nonces: Mutex<NonceSource>,
}

impl SaslListener {
    /// A listener's shared state; `seed` keys its nonces (`Runtime::secret_seed`, salted
    /// per listener by the caller).
    pub fn new(settings: SaslSettings, seed: [u8; 32]) -> SaslListener {
        SaslListener {
            settings,
            nonces: Mutex::new(NonceSource::new(seed)),
        }
    }

    /// The listener's settings.
    pub fn settings(&self) -> &SaslSettings {
        &self.settings
    }

    /// A fresh SCRAM nonce.
    pub fn nonce(&self) -> String {
        // A poisoned lock only means another connection panicked mid-draw; the source's
        // state is a counter, still valid.
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.nonce()
    }
}

/// What the connection does next.
#[derive(Debug)]
pub enum Step {
    /// Send the answer; the exchange goes on.
    Answer(ApiResponse),
    /// Send the answer, then close the connection; `reason` is for the log (no secret).
    Close {
        /// The answer.
        response: ApiResponse,
        /// Why, for the log.
        reason: String,
    },
    /// Look up `user`'s credential for `mechanism` and hand it to
    /// [`Authenticator::scram_start`].
    Lookup {
        /// The user the client names.
        user: String,
        /// The SCRAM mechanism of the handshake.
        mechanism: ScramMechanism,
        /// The parsed client-first message.
        first: ClientFirst,
    },
    /// Authenticated (or re-authenticated): send the answer and tell the node.
    Authenticated {
        /// The answer.
        response: ApiResponse,
        /// The user, `User:<user>`'s name.
        user: String,
    },
}

/// Where one exchange is.
enum State {
    /// Waiting for a SaslHandshake.
    Start,
    /// Handshake done: the first SaslAuthenticate comes next.
    Handshaken(SaslMechanism),
    /// SCRAM server-first sent: the client-final comes next.
    Scram(Box<ScramServer>),
}

/// One connection's authentication.
pub struct Authenticator {
    listener: Arc<SaslListener>,
    state: State,
    /// The authenticated user, once there is one.
    user: Option<String>,
    /// Before authentication: when the connection must have authenticated.
    /// After: when the session ends (`None`: never).
    deadline: Option<Duration>,
    /// The keys the last verified SCRAM exchange revealed, until taken (the gateway acts
    /// as its session's user upstream with them; Kafka connections never take them).
    scram_keys: Option<ScramKeys>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

const INVALID_PLAIN: &str = "Authentication failed: Invalid username or password";

impl Authenticator {
    /// A connection accepted at `now`.
    pub fn new(listener: Arc<SaslListener>, now: Duration) -> Authenticator {
        let deadline = Some(now + listener.settings.authentication_timeout);
        Authenticator {
            listener,
            state: State::Start,
            user: None,
            deadline,
            scram_keys: None,
        }
    }

    /// The shared listener state (the gateway draws its upstream SCRAM nonces from it).
    pub fn listener(&self) -> &Arc<SaslListener> {
        &self.listener
    }

    /// Take the ClientKey and ServerKey of the SCRAM exchange that just authenticated
    /// (`None` after PLAIN, or once taken).
    pub fn take_scram_keys(&mut self) -> Option<ScramKeys> {
        self.scram_keys.take()
    }

    /// Whether the connection may send anything but the SASL APIs.
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// When the connection must be closed unless something changes: the authentication
    /// deadline, then the session's end. `None`: no limit.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// A SaslHandshake request (v0 or v1).
    pub fn handshake(&mut self, request: &SaslHandshakeRequest) -> Step {
        let settings = &self.listener.settings;
        let mechanisms: Vec<String> = (settings.mechanisms.iter())
            .map(|m| m.name().to_owned())
            .collect();
        let answer = |error| {
            ApiResponse::SaslHandshake(SaslHandshakeResponse {
                error,
                mechanisms: mechanisms.clone(),
            })
        };
        if !matches!(self.state, State::Start) {
            return close(
                answer(ErrorCode::ILLEGAL_SASL_STATE),
                "SaslHandshake mid-exchange",
            );
        }
        if self.user.is_some() && settings.reauth.is_none() {
            let reason = "SaslHandshake after authentication (connections.max.reauth.ms is off)";
            return close(answer(ErrorCode::ILLEGAL_SASL_STATE), reason);
        }
        if request.version < 1 {
            // v0 sends the tokens as bare frames; every maintained client uses v1, and
            // Kafka 4.0 dropped v0 (KIP-896).
            return close(
                answer(ErrorCode::UNSUPPORTED_VERSION),
                "SaslHandshake v0 (bare SASL frames) is not supported",
            );
        }
        let wanted = SaslMechanism::parse(&request.mechanism);
        match wanted.filter(|m| settings.mechanisms.contains(m)) {
            Some(mechanism) => {
                self.state = State::Handshaken(mechanism);
                Step::Answer(answer(ErrorCode::NONE))
            }
            None => {
                let mechanism = printable(&request.mechanism);
                let reason = format!("mechanism {mechanism} is not enabled on this listener");
                close(answer(ErrorCode::UNSUPPORTED_SASL_MECHANISM), &reason)
            }
        }
    }

    /// A SaslAuthenticate request at version `version`, at `now`.
    pub fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
        version: i16,
        now: Duration,
    ) -> Step {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => close(
                failure(
                    ErrorCode::ILLEGAL_SASL_STATE,
                    "SaslAuthenticate before SaslHandshake",
                ),
                "SaslAuthenticate before SaslHandshake",
            ),
            State::Handshaken(SaslMechanism::Plain) => {
                self.plain(&request.auth_bytes, version, now)
            }
            State::Handshaken(SaslMechanism::Scram(mechanism)) => {
                match ClientFirst::parse(&request.auth_bytes) {
                    Ok(first) => Step::Lookup {
                        user: first.username.clone(),
                        mechanism,
                        first,
                    },
                    Err(error) => self.failed(mechanism_name(mechanism), &error),
                }
            }
            State::Scram(server) => match server.finish_keys(&request.auth_bytes) {
                Ok((server_final, keys)) => {
                    let user = server.username().to_owned();
                    self.scram_keys = Some(keys);
                    self.succeed(user, Bytes::from(server_final), version, now)
                }
                Err(error) => self.failed(mechanism_name_of(&server), &error),
            },
        }
    }

    /// The credential of the user a SCRAM client-first named (`None`: no such user).
    pub fn scram_start(
        &mut self,
        mechanism: ScramMechanism,
        first: ClientFirst,
        credential: Option<ScramCredential>,
    ) -> Step {
        let Some(credential) = credential else {
            return self.failed(mechanism.name(), &SaslError::BadCredentials);
        };
        let nonce = self.listener.nonce();
        let (server, server_first) = ScramServer::start(mechanism, first, credential, &nonce);
        self.state = State::Scram(Box::new(server));
        Step::Answer(ApiResponse::SaslAuthenticate(SaslAuthenticateResponse {
            auth_bytes: Bytes::from(server_first),
            ..SaslAuthenticateResponse::default()
        }))
    }

    fn plain(&mut self, token: &[u8], version: i16, now: Duration) -> Step {
        let message = match PlainMessage::parse(token) {
            Ok(message) => message,
            Err(error) => return self.failed("PLAIN", &error),
        };
        let known = self.listener.settings.plain_users.get(&message.username);
        // Compare against something even for an unknown user, so both take the same path.
        let expected = known.map_or("", String::as_str);
        let matches = constant_time_eq(expected.as_bytes(), message.password.as_bytes());
        if known.is_none() || !matches {
            let reason = format!(
                "PLAIN authentication of {} failed",
                printable(&message.username)
            );
            return close(
                failure(ErrorCode::SASL_AUTHENTICATION_FAILED, INVALID_PLAIN),
                &reason,
            );
        }
        self.succeed(message.username, Bytes::new(), version, now)
    }

    fn succeed(&mut self, user: String, auth_bytes: Bytes, version: i16, now: Duration) -> Step {
        if let Some(current) = &self.user {
            if *current != user {
                let message = "Re-authentication must keep the principal of the connection";
                let reason = format!(
                    "re-authentication as {} on a connection of {}",
                    printable(&user),
                    printable(current)
                );
                return close(
                    failure(ErrorCode::SASL_AUTHENTICATION_FAILED, message),
                    &reason,
                );
            }
        }
        let lifetime = self.listener.settings.reauth;
        self.deadline = lifetime.map(|lifetime| now + lifetime);
        self.user = Some(user.clone());
        let session_lifetime_ms = match lifetime {
            Some(lifetime) if version >= 1 => {
                i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)
            }
            _ => 0,
        };
        let response = ApiResponse::SaslAuthenticate(SaslAuthenticateResponse {
            error: ErrorCode::NONE,
            error_message: None,
            auth_bytes,
            session_lifetime_ms,
        });
        Step::Authenticated { response, user }
    }

    fn failed(&mut self, mechanism: &str, error: &SaslError) -> Step {
        let message = match error {
            SaslError::BadCredentials | SaslError::BadServerSignature => format!(
                "Authentication failed during authentication due to invalid credentials with \
                 SASL mechanism {mechanism}"
            ),
            SaslError::Malformed(_) | SaslError::Unsupported(_) => {
                format!("Authentication failed: {error}")
            }
        };
        let reason = format!("{mechanism} authentication failed: {error}");
        close(
            failure(ErrorCode::SASL_AUTHENTICATION_FAILED, &message),
            &reason,
        )
    }
}

fn close(response: ApiResponse, reason: &str) -> Step {
    Step::Close {
        response,
        reason: reason.to_owned(),
    }
}

fn failure(error: ErrorCode, message: &str) -> ApiResponse {
    ApiResponse::SaslAuthenticate(SaslAuthenticateResponse {
        error,
        error_message: Some(message.to_owned()),
        ..SaslAuthenticateResponse::default()
    })
}

fn mechanism_name(mechanism: ScramMechanism) -> &'static str {
    mechanism.name()
}

fn mechanism_name_of(server: &ScramServer) -> &'static str {
    server.mechanism().name()
}

/// A client-chosen name for a log line: at most 64 characters, control characters
/// escaped, so a hostile name cannot forge log lines.
fn printable(name: &str) -> String {
    let shown: String = name.chars().take(64).collect();
    format!("{:?}", shown)
}

#[cfg(test)]
mod tests {
    use weir_wire::sasl::ScramClient;

    use super::*;

    fn listener(reauth: Option<Duration>) -> Arc<SaslListener> {
        let settings = SaslSettings {
            mechanisms: SaslMechanism::ALL.to_vec(),
            plain_users: [("alice".to_owned(), "alice-secret".to_owned())].into(),
            reauth,
            authentication_timeout: Duration::from_secs(10),
        };
        Arc::new(SaslListener::new(settings, [7; 32]))
    }

    fn handshake(auth: &mut Authenticator, mechanism: &str) -> Step {
        auth.handshake(&SaslHandshakeRequest {
            mechanism: mechanism.into(),
            version: 1,
        })
    }

    fn token(auth: &mut Authenticator, bytes: &[u8], now: Duration) -> Step {
        let request = SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(bytes),
        };
        auth.authenticate(&request, 2, now)
    }

    fn error_of(step: &Step) -> ErrorCode {
        match step {
            Step::Answer(response)
            | Step::Close { response, .. }
            | Step::Authenticated { response, .. } => match response {
                ApiResponse::SaslHandshake(r) => r.error,
                ApiResponse::SaslAuthenticate(r) => r.error,
                other => panic!("not a SASL answer: {other:?}"),
            },
            Step::Lookup { .. } => ErrorCode::NONE,
        }
    }

    // Goal: PLAIN succeeds with the JAAS password and sets the session deadline; a wrong
    // password closes with SASL_AUTHENTICATION_FAILED and a message without the password.
    #[test]
    fn plain_success_and_failure() {
        let now = Duration::from_secs(100);
        let mut auth = Authenticator::new(listener(Some(Duration::from_secs(60))), now);
        assert_eq!(auth.deadline(), Some(now + Duration::from_secs(10)));
        assert!(matches!(handshake(&mut auth, "PLAIN"), Step::Answer(_)));
        let step = token(&mut auth, b"\0alice\0alice-secret", now);
        let Step::Authenticated { user, response } = step else {
            panic!("authenticated expected: {step:?}");
        };
        assert_eq!(user, "alice");
        let ApiResponse::SaslAuthenticate(response) = response else {
            panic!("SaslAuthenticate answer");
        };
        assert_eq!(response.session_lifetime_ms, 60_000);
        assert_eq!(auth.deadline(), Some(now + Duration::from_secs(60)));

        let mut auth = Authenticator::new(listener(None), now);
        handshake(&mut auth, "PLAIN");
        let step = token(&mut auth, b"\0alice\0wrong-secret", now);
        assert_eq!(error_of(&step), ErrorCode::SASL_AUTHENTICATION_FAILED);
        let Step::Close { response, reason } = step else {
            panic!("closes");
        };
        assert!(!format!("{response:?}{reason}").contains("secret"));
    }

    // Goal: an unknown mechanism answers the enabled list and closes; a token before the
    // handshake is ILLEGAL_SASL_STATE.
    #[test]
    fn unknown_mechanism_and_illegal_order() {
        let mut auth = Authenticator::new(listener(None), Duration::ZERO);
        let step = handshake(&mut auth, "GSSAPI");
        let Step::Close {
            response: ApiResponse::SaslHandshake(response),
            ..
        } = step
        else {
            panic!("closes with a handshake answer");
        };
        assert_eq!(response.error, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
        assert_eq!(
            response.mechanisms,
            ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        );
        let mut auth = Authenticator::new(listener(None), Duration::ZERO);
        assert_eq!(
            error_of(&token(&mut auth, b"x", Duration::ZERO)),
            ErrorCode::ILLEGAL_SASL_STATE
        );
    }

    // Goal: a SCRAM exchange through the machine succeeds and re-authenticates as the same
    // user; re-authentication as another user is refused.
    #[test]
    fn scram_and_reauthentication() {
        let mechanism = ScramMechanism::Sha256;
        let stored = |password: &str| {
            Some(ScramCredential::from_password(
                mechanism, password, b"salt", 4096,
            ))
        };
        let mut auth = Authenticator::new(listener(Some(Duration::from_secs(1))), Duration::ZERO);
        for (round, user) in [(1u64, "bob"), (2, "bob"), (3, "carol")] {
            let now = Duration::from_secs(round);
            assert!(matches!(
                handshake(&mut auth, "SCRAM-SHA-256"),
                Step::Answer(_)
            ));
            let (mut client, first) = ScramClient::start(mechanism, user, "pw", "nonce");
            let Step::Lookup {
                user: named,
                mechanism: m,
                first,
            } = token(&mut auth, &first, now)
            else {
                panic!("lookup expected");
            };
            assert_eq!(named, user);
            let Step::Answer(ApiResponse::SaslAuthenticate(server_first)) =
                auth.scram_start(m, first, stored("pw"))
            else {
                panic!("server-first expected");
            };
            let client_final = client
                .server_first(&server_first.auth_bytes)
                .expect("final");
            let step = token(&mut auth, &client_final, now);
            if round < 3 {
                let Step::Authenticated {
                    response: ApiResponse::SaslAuthenticate(done),
                    ..
                } = step
                else {
                    panic!("authenticated expected: {step:?}");
                };
                client
                    .server_final(&done.auth_bytes)
                    .expect("server proves itself");
                assert_eq!(auth.deadline(), Some(now + Duration::from_secs(1)));
            } else {
                assert_eq!(error_of(&step), ErrorCode::SASL_AUTHENTICATION_FAILED);
            }
        }
    }
}
