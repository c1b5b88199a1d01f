//! The gateway's HTTP side: tell a WebSocket upgrade from a plain GET, answer the latter.
//!
//! Invariants:
//! - At most [`REQUEST_HEAD_BYTES_MAX`] bytes are read before deciding; a longer or
//!   malformed head is answered `400` and the connection closed, never a panic.
//! - The bytes read while deciding are replayed to the WebSocket handshake ([`Rewind`]),
//!   so tungstenite sees the request exactly as the client sent it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Longest HTTP request head accepted.
pub const REQUEST_HEAD_BYTES_MAX: usize = 16 * 1024;

/// What the first bytes of a connection asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A WebSocket upgrade: hand the connection (with these bytes) to the handshake.
    Upgrade,
    /// A plain request for `path`.
    Plain {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// Not HTTP, or too long.
    Malformed,
}

/// Read a request head; returns it with every byte read (the head and anything after).
pub async fn read_head<St: AsyncRead + Unpin>(stream: &mut St) -> io::Result<(Head, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = find_head_end(&buffer) {
            let head = parse_head(&buffer[..end]);
            return Ok((head, buffer));
        }
        if buffer.len() >= REQUEST_HEAD_BYTES_MAX {
            return Ok((Head::Malformed, buffer));
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok((Head::Malformed, buffer));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Classify a request head (without the final blank line).
pub fn parse_head(head: &[u8]) -> Head {
    let Ok(text) = std::str::from_utf8(head) else {
        return Head::Malformed;
    };
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Head::Malformed;
    };
    if !version.starts_with("HTTP/1.") {
        return Head::Malformed;
    }
    let upgrade = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    });
    if upgrade {
        Head::Upgrade
    } else {
        Head::Plain {
            method: method.to_owned(),
            path: path.to_owned(),
        }
    }
}

/// The landing page at the gateway's root.
const LANDING_PAGE: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>Weir edge gateway</title></head>
<body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto\">
<h1>Weir edge gateway</h1>
<p>This port speaks Weir's edge protocol over WebSocket (postcard frames).
Connect with the WASM client:</p>
<pre>import { connect } from \"./client-wasm/pkg/index.js\";
const client = await connect(\"ws://HOST:PORT\");</pre>
<p>The demo page (produce from a form, live tail of a topic) is served by
<code>cargo xtask wasm --serve</code>; see docs/wasm.md.</p>
</body></html>
";

/// Answer a plain HTTP request and close.
pub async fn answer_plain<St: AsyncWrite + Unpin>(stream: &mut St, head: &Head) -> io::Result<()> {
    let (status, body) = match head {
        Head::Plain { method, path } if method == "GET" || method == "HEAD" => {
            let route = path.split('?').next().unwrap_or("");
            if route == "/" || route == "/index.html" {
                ("200 OK", LANDING_PAGE)
            } else {
                ("404 Not Found", "not found\n")
            }
        }
        Head::Plain { .. } => ("405 Method Not Allowed", "method not allowed\n"),
        Head::Upgrade | Head::Malformed => ("400 Bad Request", "bad request\n"),
    };
    let content_type = if body.starts_with("<!doctype") {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// A stream that first replays bytes already read from it.
pub struct Rewind<St> {
    prefix: Vec<u8>,
    consumed: usize,
    inner: St,
}

impl<St> Rewind<St> {
    /// Replay `prefix`, then read from `inner`.
    pub fn new(prefix: Vec<u8>, inner: St) -> Rewind<St> {
        Rewind {
            prefix,
            consumed: 0,
            inner,
        }
    }
}

impl<St: AsyncRead + Unpin> AsyncRead for Rewind<St> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.consumed < self.prefix.len() {
            let rest = &self.prefix[self.consumed..];
            let count = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..count]);
            self.consumed += count;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<St: AsyncWrite + Unpin> AsyncWrite for Rewind<St> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: upgrades are told from plain GETs and garbage. Method: classify sample heads.
    #[test]
    fn classifies_heads() {
        let upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade";
        assert_eq!(parse_head(upgrade), Head::Upgrade);
        let plain = b"GET /index.html HTTP/1.1\r\nHost: x";
        assert_eq!(
            parse_head(plain),
            Head::Plain {
                method: "GET".into(),
                path: "/index.html".into()
            }
        );
        assert_eq!(parse_head(b"\x00\x01\x02"), Head::Malformed);
        assert_eq!(parse_head(b"GET /"), Head::Malformed);
    }
}
