//! Accepting one HTTP service's connections: the runtime seam's listener, an optional TLS
//! handshake (bounded, as on every TLS listener), then HTTP/1.1 with keep-alive by hyper,
//! each request handed to the service's axum router with its [`Peer`] attached.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tower_service::Service as _;
use weir_runtime::{Listener, Runtime};

use super::{Peer, PlatformState, CONNECTIONS_MAX};
use crate::storage::StorageDriver;
use crate::tls::TlsAcceptor;

/// Pause after a failed accept before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// A request's head must arrive within this (and an idle keep-alive connection closes
/// after it): a client cannot hold a connection slot by sending nothing.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `app` on `listener` (as service `name`, for the log) until the node loop stops;
/// with `tls`, every connection starts with a TLS handshake.
pub async fn serve<R: Runtime, S: StorageDriver>(
    platform: PlatformState<R, S>,
    name: &'static str,
    mut listener: R::Listener,
    tls: Option<TlsAcceptor>,
    app: axum::Router<PlatformState<R, S>>,
) {
    let mut app = app.layer(DefaultBodyLimit::max(platform.request_bytes_max()));
    if let Some(cors) = platform.cors() {
        // Outermost: error answers (404, 413, 401) carry the headers too.
        let cors = axum::middleware::from_fn_with_state(Arc::clone(cors), super::cors::layer);
        app = app.layer(cors);
    }
    let app: axum::Router = app.with_state(Arc::clone(&platform));
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let runtime = platform.runtime().clone();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("{name}: accept failed: {error}");
                runtime
                    .sleep_until(runtime.now() + ACCEPT_RETRY_DELAY)
                    .await;
                continue;
            }
        };
        if platform.node().is_closed() {
            return;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!("{name}: {CONNECTIONS_MAX} connections open, closing {peer}");
            continue;
        };
        let app = app.clone();
        let tls = tls.clone();
        let task_runtime = runtime.clone();
        runtime.spawn(async move {
            let _slot = slot;
            let peer_info = Peer {
                host: crate::conn::acl_host(&peer),
                tls: tls.is_some(),
            };
            match tls {
                None => connection(name, stream, app, peer_info).await,
                Some(acceptor) => match acceptor.accept(&task_runtime, stream).await {
                    Ok(stream) => connection(name, stream, app, peer_info).await,
                    Err(error) => tracing::debug!("{name}: closing {peer}: {error}"),
                },
            }
        });
    }
}

async fn connection<St>(name: &str, stream: St, app: axum::Router, peer: Peer)
where
    St: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        let mut app = app.clone();
        async move {
            let response = app.call(request).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!("{name}: connection ended: {error}");
    }
}
