//! Broker sessions of HTTP callers: a node connection authenticated as the caller, with
//! the gateway's [`Router`] over it, cached per (caller host, `Authorization` value) so a
//! request costs neither a new connection nor a new password check.
//!
//! Invariants:
//! - The cache holds at most [`SESSIONS_MAX`] sessions; a session is used again only
//!   within [`SESSION_IDLE`] of its last use and [`SESSION_LIFETIME`] of its check (a
//!   changed or deleted password takes effect within that bound, as a Kafka connection's
//!   does at re-authentication).
//! - Keys are SHA-256 digests: no credential is kept in the cache's keys.
//! - A session's node connection closes when its last holder drops it (a cached entry,
//!   a request in progress, a REST consumer instance), never under a request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weir_core::Principal;
use weir_runtime::Runtime;

use super::auth::{self, BasicError, HttpAuth};
use super::{Caller, HttpError, Platform, HTTP_CONN_ID_BASE, SESSIONS_MAX, SESSION_IDLE};
use crate::gateway::auth::UpstreamCredential;
use crate::gateway::link::NodeLink;
use crate::gateway::route::Router;
use crate::messages::NodeInput;
use crate::sasl::SaslListener;
use crate::storage::StorageDriver;

/// A cached session is checked again after this long, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(900);

type Key = [u8; 32];

/// One caller's way into the broker.
pub struct BrokerSession<R: Runtime> {
    router: Arc<Router<R>>,
    principal: Principal,
    runtime: R,
}

impl<R: Runtime> BrokerSession<R> {
    /// The router: requests through it act as the session's principal.
    pub fn router(&self) -> &Arc<Router<R>> {
        &self.router
    }

    /// The principal the session acts as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl<R: Runtime> Drop for BrokerSession<R> {
    fn drop(&mut self) {
        let link = self.router.local().clone();
        self.runtime.spawn(async move { link.disconnect().await });
    }
}

struct Entry<R: Runtime> {
    session: Arc<BrokerSession<R>>,
    checked: Duration,
    used: Duration,
}

/// The cache, and the counter of node connection ids.
pub(super) struct Sessions<R: Runtime> {
    entries: Mutex<BTreeMap<Key, Entry<R>>>,
    next_conn: AtomicU64,
}

impl<R: Runtime> Default for Sessions<R> {
    fn default() -> Self {
        Sessions {
            entries: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }
}

impl<R: Runtime> Sessions<R> {
    fn get(&self, key: &Key, now: Duration) -> Option<Arc<BrokerSession<R>>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get_mut(key)?;
        if fresh(entry, now) {
            entry.used = now;
            return Some(Arc::clone(&entry.session));
        }
        entries.remove(key);
        None
    }

    /// Cache `session` under `key`, unless a racing request cached one first: then that
    /// one is returned (and `session` dropped unused). Stale entries go first; when the
    /// cache is full, the least recently used.
    fn insert(
        &self,
        key: Key,
        session: Arc<BrokerSession<R>>,
        now: Duration,
    ) -> Arc<BrokerSession<R>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(&key) {
            if fresh(entry, now) {
                entry.used = now;
                return Arc::clone(&entry.session);
            }
        }
        entries.retain(|_, entry| fresh(entry, now));
        while entries.len() >= SESSIONS_MAX {
            let oldest = (entries.iter())
                .min_by_key(|(_, entry)| entry.used)
                .map(|(key, _)| *key);
            match oldest {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
        let entry = Entry {
            session: Arc::clone(&session),
            checked: now,
            used: now,
        };
        entries.insert(key, entry);
        session
    }

    fn next_conn(&self) -> u64 {
        HTTP_CONN_ID_BASE + self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

fn fresh<R: Runtime>(entry: &Entry<R>, now: Duration) -> bool {
    now.saturating_sub(entry.used) < SESSION_IDLE
        && now.saturating_sub(entry.checked) < SESSION_LIFETIME
        && !entry.session.router.is_closed()
}

fn key(host: &str, authorization: &[u8]) -> Key {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(host.as_bytes());
    context.update(&[0]);
    context.update(authorization);
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// The caller of a request from `host` with this `Authorization` header value.
pub(super) async fn caller<R: Runtime, S: StorageDriver>(
    platform: &Platform<R, S>,
    host: String,
    authorization: Option<&[u8]>,
) -> Result<Caller<R>, HttpError> {
    let now = platform.runtime.now();
    let basic = match &platform.auth {
        HttpAuth::None => None,
        HttpAuth::Basic(listener) => {
            let value = authorization.ok_or_else(|| refused(&BasicError::Missing))?;
            Some((listener, value))
        }
    };
    let key = key(&host, basic.map_or(&[][..], |(_, value)| value));
    if let Some(session) = platform.sessions.get(&key, now) {
        return Ok(Caller {
            principal: session.principal.clone(),
            host,
            session,
        });
    }
    let (principal, login) = match basic {
        None => (Principal::anonymous(), None),
        Some((listener, value)) => {
            let (user, password) = auth::parse_basic(value).map_err(|e| refused(&e))?;
            let verified = auth::verify(listener, &platform.node, now, &user, &password)
                .await
                .map_err(|error| refused(&error))?;
            let login = (platform.upstream_sasl).then(|| (verified.upstream, Arc::clone(listener)));
            (Principal::user(&verified.user), login)
        }
    };
    let session = open(platform, principal.clone(), &host, login).await?;
    let session = platform.sessions.insert(key, Arc::new(session), now);
    Ok(Caller {
        principal,
        host,
        session,
    })
}

fn refused(error: &BasicError) -> HttpError {
    match error {
        BasicError::Stopping => HttpError::unavailable(error.to_string()),
        _ => HttpError::unauthorized(error.to_string()),
    }
}

/// A node connection for `principal` from `host`, and its router.
async fn open<R: Runtime, S: StorageDriver>(
    platform: &Platform<R, S>,
    principal: Principal,
    host: &str,
    login: Option<(Arc<UpstreamCredential>, Arc<SaslListener>)>,
) -> Result<BrokerSession<R>, HttpError> {
    let stopping = || HttpError::unavailable("the broker is stopping");
    let conn = platform.sessions.next_conn();
    let node = &platform.node;
    let link = NodeLink::connect(&platform.runtime, node.clone(), conn)
        .await
        .map_err(|_| stopping())?;
    // The host and the principal reach the node before any request of the connection:
    // the same ordered channel carries the connect, these, and every later request.
    let host_input = NodeInput::ClientHost {
        conn,
        host: host.to_owned(),
    };
    node.send(host_input).await.map_err(|_| stopping())?;
    if principal.name != Principal::ANONYMOUS_NAME {
        let input = NodeInput::Authenticated {
            conn,
            principal: principal.clone(),
        };
        node.send(input).await.map_err(|_| stopping())?;
    }
    let router = Router::new(platform.runtime.clone(), link, platform.node_id)
        .with_login(login)
        .with_tls(platform.upstream_tls.clone());
    Ok(BrokerSession {
        router: Arc::new(router),
        principal,
        runtime: platform.runtime.clone(),
    })
}
