//! HTTP Basic authentication against the broker's own users.
//!
//! A Basic user and password are checked by running the very SASL exchange a Kafka
//! connection runs ([`crate::gateway::auth::Exchange`], over [`crate::sasl::Authenticator`]),
//! in process: PLAIN when the user is one of the PLAIN users of the listener
//! `weir.http.sasl.listener` names (by default the first SASL listener), otherwise SCRAM
//! against the user's SCRAM-SHA-512 or SCRAM-SHA-256 credential of the metadata log
//! (`weir user add`). There is one implementation of each check; a successful exchange also
//! yields the credential that logs the caller's routed requests in at other brokers.
//!
//! Invariants:
//! - No password appears in a log line, an error or a `Debug`.
//! - A failed check takes the same path for an unknown user and a wrong password (the
//!   exchange compares against something either way), and answers the same 401.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use weir_edge::SaslFrame;
use weir_wire::sasl::{PlainMessage, SaslMechanism, ScramClient, ScramMechanism};

use crate::gateway::auth::{Exchange, Progress, UpstreamCredential};
use crate::messages::NodeInput;
use crate::sasl::SaslListener;

/// How the HTTP services authenticate callers (`weir.http.authentication.method`).
#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// `NONE`: every caller is `User:ANONYMOUS`.
    None,
    /// `BASIC`: `Authorization: Basic` with a broker user's name and password.
    Basic(Arc<SaslListener>),
}

/// A verified caller.
pub struct Verified {
    /// The user (principal `User:<user>`).
    pub user: String,
    /// How the caller's requests log in at other brokers.
    pub upstream: Arc<UpstreamCredential>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("user", &self.user)
            .finish()
    }
}

/// Why a Basic header was refused (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    /// No `Authorization` header.
    #[error("authentication required: send HTTP Basic credentials of a broker user")]
    Missing,
    /// Not `Basic <base64 of user:password>`.
    #[error("malformed Authorization header: expected Basic <base64 of user:password>")]
    Malformed,
    /// The broker refused the user and password.
    #[error("invalid username or password")]
    Refused,
    /// The node loop is gone.
    #[error("the broker is stopping")]
    Stopping,
}

/// The user and password of an `Authorization: Basic ...` value.
pub fn parse_basic(value: &[u8]) -> Result<(String, String), BasicError> {
    let text = std::str::from_utf8(value).map_err(|_| BasicError::Malformed)?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or(BasicError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| BasicError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicError::Malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(BasicError::Malformed)?;
    if user.is_empty() {
        return Err(BasicError::Malformed);
    }
    Ok((user.to_owned(), password.to_owned()))
}

/// Check `user`/`password` with `listener`'s exchange at `now`; SCRAM credentials are
/// looked up through `node`.
pub async fn verify(
    listener: &Arc<SaslListener>,
    node: &crate::shards::NodeHandle,
    now: Duration,
    user: &str,
    password: &str,
) -> Result<Verified, BasicError> {
    let mechanisms = &listener.settings().mechanisms;
    if mechanisms.contains(&SaslMechanism::Plain)
        && listener.settings().plain_users.contains_key(user)
    {
        let message = PlainMessage {
            username: user.to_owned(),
            password: password.to_owned(),
        };
        let mut exchange = Exchange::new(Arc::clone(listener), now);
        let start = SaslFrame::Start {
            mechanism: "PLAIN".to_owned(),
            message: message.encode(),
        };
        return match exchange.handle(start, now, node).await {
            Ok(Progress::Done(identity)) => Ok(Verified {
                user: identity.user,
                upstream: identity.upstream,
            }),
            Ok(Progress::Challenge(_)) | Err(_) => Err(BasicError::Refused),
        };
    }
    // SCRAM: the strongest mechanism the listener enables that the user has a credential
    // for. A user without any credential is refused like a wrong password.
    let scram = [ScramMechanism::Sha512, ScramMechanism::Sha256];
    for mechanism in scram {
        if mechanisms.contains(&SaslMechanism::Scram(mechanism))
            && has_credential(node, user, mechanism).await?
        {
            return scram_exchange(listener, node, now, mechanism, user, password).await;
        }
    }
    Err(BasicError::Refused)
}

async fn has_credential(
    node: &crate::shards::NodeHandle,
    user: &str,
    mechanism: ScramMechanism,
) -> Result<bool, BasicError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let lookup = NodeInput::ScramCredential {
        user: user.to_owned(),
        mechanism,
        reply,
    };
    node.send(lookup).await.map_err(|_| BasicError::Stopping)?;
    let credential = answer.await.map_err(|_| BasicError::Stopping)?;
    Ok(credential.is_some())
}

async fn scram_exchange(
    listener: &Arc<SaslListener>,
    node: &crate::shards::NodeHandle,
    now: Duration,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<Verified, BasicError> {
    let (mut client, first) = ScramClient::start(mechanism, user, password, &listener.nonce());
    let mut exchange = Exchange::new(Arc::clone(listener), now);
    let start = SaslFrame::Start {
        mechanism: mechanism.name().to_owned(),
        message: first,
    };
    let challenge = match exchange.handle(start, now, node).await {
        Ok(Progress::Challenge(challenge)) => challenge,
        Ok(Progress::Done(_)) | Err(_) => return Err(BasicError::Refused),
    };
    let last = client
        .server_first(&challenge)
        .map_err(|_| BasicError::Refused)?;
    match exchange
        .handle(SaslFrame::Continue { message: last }, now, node)
        .await
    {
        Ok(Progress::Done(identity)) => {
            client
                .server_final(&identity.final_message)
                .map_err(|_| BasicError::Refused)?;
            Ok(Verified {
                user: identity.user,
                upstream: identity.upstream,
            })
        }
        Ok(Progress::Challenge(_)) | Err(_) => Err(BasicError::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn basic_headers_parse_into_user_and_password() {
        // Goal: Basic credentials are read as RFC 7617 says; a password may hold colons.
        let parsed = parse_basic(header("alice:s3:cret").as_bytes());
        assert_eq!(parsed, Ok(("alice".to_owned(), "s3:cret".to_owned())));
        let lower = format!("basic {}", &header("bob:pw")[6..]);
        assert_eq!(
            parse_basic(lower.as_bytes()),
            Ok(("bob".to_owned(), "pw".to_owned()))
        );
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        // Goal: anything but `Basic base64(user:password)` is a clear refusal, no panic.
        for bad in [
            "Bearer abc".to_owned(),
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            header("no-colon"),
            header(":password-only"),
        ] {
            assert_eq!(
                parse_basic(bad.as_bytes()),
                Err(BasicError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(parse_basic(&[0xff, 0xfe]), Err(BasicError::Malformed));
    }
}
