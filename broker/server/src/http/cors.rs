//! CORS for the HTTP services (REST proxy, schema registry), so a page on another origin
//! (the WASM client's schema helpers) can call them. Confluent's keys and defaults:
//!
//! - `access.control.allow.origin`: `*` or a comma-separated list of origins
//!   (`https://app.example.com`); empty (the default) turns CORS off: no header is added
//!   and browsers refuse cross-origin answers, as with Confluent's services.
//! - `access.control.allow.methods`: comma-separated; empty means Jetty's default
//!   (`GET,POST,HEAD`), which Confluent's services fall back to.
//! - `access.control.allow.headers`: comma-separated; empty means Jetty's default
//!   (`X-Requested-With,Content-Type,Accept,Origin`). Browsers send `Authorization`
//!   (Basic) only when it is listed.
//!
//! A request from an allowed origin gets `Access-Control-Allow-Origin` (its origin) and
//! `Vary: Origin`. A preflight (`OPTIONS` with `Access-Control-Request-Method`) whose
//! method and headers are allowed is answered here, 204 with the allowed methods and
//! headers and `Access-Control-Max-Age: 1800`, before routing and authentication (a
//! preflight carries no credentials). Anything else passes through unchanged.
//! `Access-Control-Allow-Credentials` is never sent: the services authenticate with an
//! explicit `Authorization` header, not cookies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Jetty's `allowedMethods` default, which Confluent's services use when the key is empty.
pub const METHODS_DEFAULT: &str = "GET,POST,HEAD";
/// Jetty's `allowedHeaders` default.
pub const HEADERS_DEFAULT: &str = "X-Requested-With,Content-Type,Accept,Origin";
/// How long a browser may cache a preflight's answer (Jetty's default), seconds.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 1800;

/// The CORS policy of the HTTP services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None`: any origin (`*`).
    origins: Option<Vec<String>>,
    methods: Vec<String>,
    headers: Vec<String>,
}

impl Cors {
    /// The policy of the three keys' values; `Ok(None)` when `origin` is empty (off).
    pub fn new(origin: &str, methods: &str, headers: &str) -> Result<Option<Cors>, String> {
        let origins = list(origin);
        if origins.is_empty() {
            return Ok(None);
        }
        let origins = if origins.iter().any(|o| o == "*") {
            None
        } else {
            Some(origins)
        };
        let methods = list(if methods.trim().is_empty() {
            METHODS_DEFAULT
        } else {
            methods
        });
        let headers = list(if headers.trim().is_empty() {
            HEADERS_DEFAULT
        } else {
            headers
        });
        for item in origins.iter().flatten().chain(&methods).chain(&headers) {
            if HeaderValue::from_str(item).is_err() || item.contains(' ') {
                return Err(format!("{item:?} is not a valid header value"));
            }
        }
        Ok(Some(Cors {
            origins,
            methods: methods
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            headers,
        }))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(origins) => origins.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// A preflight's requested method and headers are all allowed.
    fn preflight_allowed(&self, method: &str, headers: &str) -> bool {
        let method_ok = self
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.trim()));
        let headers_ok = list(headers)
            .iter()
            .all(|h| self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
        method_ok && headers_ok
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The middleware (`axum::middleware::from_fn_with_state`) applying `cors`.
pub async fn layer(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| cors.origin_allowed(o))) else {
        return next.run(request).await;
    };
    let requested = request.headers().get(ACCESS_CONTROL_REQUEST_METHOD);
    if request.method() == Method::OPTIONS && requested.is_some() {
        let method = requested.and_then(|m| m.to_str().ok()).unwrap_or_default();
        let headers = (request.headers().get(ACCESS_CONTROL_REQUEST_HEADERS))
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !cors.preflight_allowed(method, headers) {
            return next.run(request).await;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let answer = response.headers_mut();
        answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.insert(VARY, HeaderValue::from_static("Origin"));
        for (name, values) in [
            (ACCESS_CONTROL_ALLOW_METHODS, &cors.methods),
            (ACCESS_CONTROL_ALLOW_HEADERS, &cors.headers),
        ] {
            // Checked by `Cors::new`: every item is a valid header value.
            if let Ok(value) = HeaderValue::from_str(&values.join(",")) {
                answer.insert(name, value);
            }
        }
        answer.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_SECS),
        );
        return response;
    }
    let mut response = next.run(request).await;
    let answer = response.headers_mut();
    answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    answer.append(VARY, HeaderValue::from_static("Origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_origin_is_off_and_defaults_are_jetty_s() {
        assert_eq!(Cors::new("", "PUT", "Authorization"), Ok(None));
        assert_eq!(Cors::new(" , ", "", ""), Ok(None));
        let cors = Cors::new("*", "", "").unwrap().unwrap();
        assert!(cors.origin_allowed("http://anywhere:1234"));
        assert!(cors.preflight_allowed("post", "content-type, accept"));
        assert!(!cors.preflight_allowed("DELETE", ""));
        assert!(!cors.preflight_allowed("POST", "Authorization"));
    }

    #[test]
    fn listed_origins_methods_and_headers() {
        let cors = Cors::new(
            "http://a.example, https://b.example:8443",
            "GET,POST,PUT,DELETE,OPTIONS",
            "Authorization,Content-Type,Accept",
        )
        .unwrap()
        .unwrap();
        assert!(cors.origin_allowed("https://b.example:8443"));
        assert!(!cors.origin_allowed("https://b.example"));
        assert!(!cors.origin_allowed("http://c.example"));
        assert!(cors.preflight_allowed("DELETE", "authorization,content-type"));
        assert!(!cors.preflight_allowed("PATCH", ""));
        assert!(Cors::new("http://a.example\n", "", "").is_ok());
        assert!(Cors::new("http://a\u{7f}", "", "").is_err());
    }
}
