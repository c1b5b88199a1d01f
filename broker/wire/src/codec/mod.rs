//! Request/response codec: Kafka frames <-> domain values at every version in
//! [`SUPPORTED_APIS`], both directions (server: decode requests, encode responses; client:
//! encode requests, decode responses).
//!
//! Every API is one row of the table in `apis.rs` (key, versions, guard schemas, Kafka
//! structs, conversions); this module holds what all APIs share: framing, headers,
//! ApiVersions with its KIP-511 fallback, the allocation guard and the Produce v0-2 path.
//!
//! Invariants:
//! - No input makes this module panic, and no length read from the wire is trusted before the
//!   allocation guard (`guard.rs`) has checked it against the bytes actually present.
//! - Request header: v1 layout is read by hand (key, version, correlation id, nullable
//!   client id), which every API shares, so an unknown API or version still yields a header
//!   to answer. Header v2 (flexible APIs) adds a tagged-field section, skipped.
//! - Response header version follows `ApiKey::response_header_version`, except ApiVersions,
//!   whose response header is always v0 (KIP-511: the client may not know our flexibility).
//! - Topic ids: Fetch v13+ and Produce v13+ carry only `TopicRef::Id`, earlier versions only
//!   `TopicRef::Name`; a response must echo the same kind or encoding fails.

mod apis;
mod convert;
mod convert_acl;
mod convert_cluster;
mod convert_consumer_group;
mod convert_features;
mod convert_group;
mod convert_helpers;
mod convert_log_dirs;
mod convert_sasl;
mod convert_txn;
mod guard;
mod legacy;
mod unserved;

pub use apis::{api_key, api_key_of, api_key_of_response, SUPPORTED_APIS};
pub use legacy::{encode_legacy_produce_rejection, LegacyProduce};
#[rustfmt::skip]
mod schema;
#[rustfmt::skip]
mod schema_acl;
#[rustfmt::skip]
mod schema_cluster;
#[rustfmt::skip]
mod schema_consumer_group;
#[rustfmt::skip]
mod schema_features;
#[rustfmt::skip]
mod schema_log_dirs;
#[rustfmt::skip]
mod schema_quorum;
#[rustfmt::skip]
mod schema_sasl;
#[rustfmt::skip]
mod schema_txn;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    api_versions_response::ApiVersion, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::domain::features::FeatureLevels;
use crate::domain::{ApiRequest, ApiResponse};
use crate::error::ErrorCode;
use crate::WireError;

/// The request header fields the driver needs (header v1/v2; v0 has no client id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Correlation id, echoed in the response.
    pub correlation_id: i32,
    /// Client id (nullable).
    pub client_id: Option<String>,
}

/// Outcome of decoding a request frame.
#[derive(Debug)]
pub enum Decoded {
    /// An API the core serves, at a supported version.
    Api(ApiRequest),
    /// Answer with [`encode_api_versions`] (any version, KIP-511 fallback).
    ApiVersions,
    /// Produce v0-2: advertised (KAFKA-18659) but answered UNSUPPORTED_VERSION per
    /// partition with [`encode_legacy_produce_rejection`].
    LegacyProduce(LegacyProduce),
    /// A request Kafka refuses before serving it (Produce with an `acks` other than 0, 1
    /// or -1): answer with `response` ([`encode_response`]); the core never sees it.
    Rejected {
        /// The answer, e.g. INVALID_REQUIRED_ACKS for every partition.
        response: ApiResponse,
        /// Why, for logs.
        reason: String,
    },
    /// Known header, API/version we do not serve.
    Unsupported {
        /// Why, for logs.
        reason: String,
    },
}

/// Lowest Produce version actually served (v0-2 were removed in Kafka 4.0).
pub const PRODUCE_MIN_SERVED: i16 = 3;

/// Highest ApiVersions version we answer in kind; above it, the KIP-511 v0 fallback.
pub const API_VERSIONS_MAX: i16 = 4;

/// The (min, max) of an API key we serve, if any.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|e| e.0 == api_key)
        .map(|e| (e.1, e.2))
}

// ---------------------------------------------------------------------------------------
// Plumbing

fn malformed(what: &str, e: impl std::fmt::Display) -> WireError {
    WireError::Malformed(format!("{what}: {e:#}"))
}

fn kafka_api(api_key: i16) -> Result<ApiKey, WireError> {
    ApiKey::try_from(api_key).map_err(|()| WireError::Unsupported(format!("api key {api_key}")))
}

/// Appends a length-prefixed frame written by `body`; on error `out` is left as it was.
fn write_frame(
    out: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = out.len();
    out.put_i32(0);
    let result = body(out).and_then(|()| {
        let len = out.len() - start - 4;
        i32::try_from(len).map_err(|_| WireError::TooLarge {
            len: len as i64,
            max: i32::MAX as usize,
        })
    });
    match result {
        Ok(len) => {
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn encode<T: Encodable>(message: &T, out: &mut BytesMut, version: i16) -> Result<(), WireError> {
    message
        .encode(out, version)
        .map_err(|e| WireError::Encode(format!("{e:#}")))
}

fn decode<T: Decodable>(mut body: Bytes, version: i16, what: &str) -> Result<T, WireError> {
    T::decode(&mut body, version).map_err(|e| malformed(what, e))
}

/// Runs the allocation guard over a body before kafka_protocol sees it.
fn guard(api_key: i16, request: bool, version: i16, body: &[u8]) -> Result<(), WireError> {
    match apis::schema_of(api_key, request) {
        Some(message) => guard::check(message, version, body),
        None => Err(WireError::Unsupported(format!(
            "no schema for api key {api_key}"
        ))),
    }
}

/// Reads the v1 layout shared by every request header; returns it and the bytes consumed.
fn read_header(frame: &[u8]) -> Result<(RequestHeader, usize), WireError> {
    let mut buf = frame;
    if buf.remaining() < 10 {
        return Err(WireError::Truncated);
    }
    let api_key = buf.get_i16();
    let api_version = buf.get_i16();
    let correlation_id = buf.get_i32();
    let len = buf.get_i16();
    let client_id = if len < 0 {
        None
    } else {
        let len = len as usize;
        if buf.remaining() < len {
            return Err(WireError::Truncated);
        }
        // Kafka requires UTF-8; a lossy copy keeps logging possible for odd clients.
        let id = String::from_utf8_lossy(&buf[..len]).into_owned();
        buf.advance(len);
        Some(id)
    };
    let consumed = frame.len() - buf.remaining();
    Ok((
        RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        },
        consumed,
    ))
}

// ---------------------------------------------------------------------------------------
// Server direction

/// Decodes a request frame (bytes after the length prefix). Err only when even the header is
/// unreadable or the body is malformed (then the driver logs and closes the connection).
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Decoded), WireError> {
    let (header, mut pos) = read_header(&frame)?;
    let (key, v) = (header.api_key, header.api_version);
    if key == api_key::API_VERSIONS {
        // Any version: too new ones get the KIP-511 fallback, so the body is not read.
        return Ok((header, Decoded::ApiVersions));
    }
    let Some((min, max)) = supported_range(key) else {
        let reason = match ApiKey::try_from(key) {
            Ok(api) => format!("{api:?} (key {key}) is not served"),
            Err(()) => format!("unknown api key {key}"),
        };
        return Ok((header, Decoded::Unsupported { reason }));
    };
    if v < min || v > max {
        let reason = format!("api key {key} v{v} outside supported {min}-{max}");
        return Ok((header, Decoded::Unsupported { reason }));
    }
    if key == api_key::PRODUCE && v < PRODUCE_MIN_SERVED {
        // Removed in Kafka 4.0 but advertised (KAFKA-18659); answered per partition.
        let legacy = legacy::decode_body(frame.slice(pos..))?;
        return Ok((header, Decoded::LegacyProduce(legacy)));
    }
    let api = kafka_api(key)?;
    if api.request_header_version(v) >= 2 {
        pos += guard::skip_tagged_fields(&frame[pos..])?;
    }
    let body = frame.slice(pos..);
    guard(key, true, v, &body)?;
    let decoded = apis::decode_request(key, body, v, header.client_id.as_deref())?;
    Ok((header, decoded))
}

/// The response header version: the API's, except ApiVersions, always v0 (KIP-511).
fn response_header_version(header: &RequestHeader) -> Result<i16, WireError> {
    let api = kafka_api(header.api_key)?;
    Ok(if header.api_key == api_key::API_VERSIONS {
        0
    } else {
        api.response_header_version(header.api_version)
    })
}

fn write_response_header(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    let hv = response_header_version(header)?;
    encode(
        &ResponseHeader::default().with_correlation_id(header.correlation_id),
        out,
        hv,
    )
}

/// Writes length prefix + response header (flexible-aware) + body at `header.api_version`.
/// Fetch partitions must carry `FetchRecords::Bytes` or `::Empty` and ListOffsets partitions
/// no pending lookup; otherwise (or on an API/response mismatch) it is an error and `out` is
/// unchanged.
pub fn encode_response(
    header: &RequestHeader,
    response: &ApiResponse,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let key = api_key_of_response(response);
    if key != header.api_key {
        return Err(WireError::Encode(format!(
            "response for api key {key} to a request with api key {}",
            header.api_key
        )));
    }
    let v = header.api_version;
    write_frame(out, |out| {
        write_response_header(header, out)?;
        apis::encode_response(response, out, v)
    })
}

fn api_versions_body(error: ErrorCode, features: &FeatureLevels) -> ApiVersionsResponse {
    use kafka_protocol::messages::api_versions_response::{
        FinalizedFeatureKey, SupportedFeatureKey,
    };
    let supported = (features.supported.iter())
        .map(|(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    // Kafka's FinalizedFeatureKey has a min level too (deprecated, KIP-778): the max.
    let finalized = (features.finalized.iter())
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_max_version_level(*level)
                .with_min_version_level(*level)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_supported_features(supported)
        .with_finalized_features_epoch(features.finalized_epoch)
        .with_finalized_features(finalized)
        .with_error_code(error.0)
        .with_api_keys(
            SUPPORTED_APIS
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

fn encode_api_versions_with(
    header: &RequestHeader,
    error: ErrorCode,
    features: &FeatureLevels,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let requested = header.api_version;
    // KIP-511: a client newer than us gets a v0 body (which every version can parse) with
    // UNSUPPORTED_VERSION and our table, and retries at our max.
    let (version, error) = if (0..=API_VERSIONS_MAX).contains(&requested) {
        (requested, error)
    } else {
        (0, ErrorCode::UNSUPPORTED_VERSION)
    };
    write_frame(out, |out| {
        encode(
            &ResponseHeader::default().with_correlation_id(header.correlation_id),
            out,
            0,
        )?;
        encode(&api_versions_body(error, features), out, version)
    })
}

/// ApiVersions response: error 35 + v0-format body when the requested version is above our
/// max (KIP-511); response header always v0.
pub fn encode_api_versions(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    encode_api_versions_with(header, ErrorCode::NONE, &FeatureLevels::default(), out)
}

/// [`encode_api_versions`] with the broker's supported and finalized feature levels (v3+
/// tagged fields `SupportedFeatures`, `FinalizedFeaturesEpoch`, `FinalizedFeatures`: what
/// `kafka-features.sh describe` prints).
pub fn encode_api_versions_with_features(
    header: &RequestHeader,
    features: &FeatureLevels,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    encode_api_versions_with(header, ErrorCode::NONE, features, out)
}

/// Best-effort error response of `header.api_key`'s type at `header.api_version` with `error`
/// in its top-level error fields (a header-only request has no items to echo). `Ok(false)`
/// when it cannot be encoded (unknown API, a version kafka-protocol lacks, Produce v0-2):
/// the driver then logs and closes.
pub fn encode_error_response(
    header: &RequestHeader,
    error: ErrorCode,
    out: &mut BytesMut,
) -> Result<bool, WireError> {
    let key = header.api_key;
    let v = header.api_version;
    if key == api_key::API_VERSIONS {
        encode_api_versions_with(header, error, &FeatureLevels::default(), out)?;
        return Ok(true);
    }
    let Ok(api) = ApiKey::try_from(key) else {
        return Ok(false);
    };
    let range = api.valid_versions();
    if v < range.min || v > range.max {
        return Ok(false);
    }
    let result = write_frame(out, |out| {
        write_response_header(header, out)?;
        apis::encode_error(key, error, out, v)
    });
    match result {
        Ok(()) => Ok(true),
        Err(WireError::Unsupported(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Client direction

fn write_request_header(header: &RequestHeader, out: &mut BytesMut) -> Result<(), WireError> {
    let api = kafka_api(header.api_key)?;
    let hv = api.request_header_version(header.api_version);
    let h = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(header.api_key)
        .with_request_api_version(header.api_version)
        .with_correlation_id(header.correlation_id)
        .with_client_id(header.client_id.clone().map(StrBytes::from_string));
    encode(&h, out, hv)
}

/// Client direction: encodes `request` with its length prefix and header at
/// `header.api_version` (`header.api_key` must match the request).
pub fn encode_request(
    header: &RequestHeader,
    request: &ApiRequest,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let key = api_key_of(request);
    if key != header.api_key {
        return Err(WireError::Encode(format!(
            "request of api key {key} with a header for api key {}",
            header.api_key
        )));
    }
    let v = header.api_version;
    write_frame(out, |out| {
        write_request_header(header, out)?;
        apis::encode_request(request, out, v)
    })
}

/// Client direction: an ApiVersions request (v3+ carries client software name "weir" and
/// this crate's version) with its length prefix.
pub fn encode_api_versions_request(
    header: &RequestHeader,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    if header.api_key != api_key::API_VERSIONS {
        return Err(WireError::Encode(format!(
            "ApiVersions request with a header for api key {}",
            header.api_key
        )));
    }
    let mut body = ApiVersionsRequest::default();
    if header.api_version >= 3 {
        body.client_software_name = StrBytes::from_static_str("weir");
        body.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    }
    write_frame(out, |out| {
        write_request_header(header, out)?;
        encode(&body, out, header.api_version)
    })
}

/// Checks the response header's correlation id; returns the body.
fn response_body(header: &RequestHeader, frame: Bytes) -> Result<Bytes, WireError> {
    let hv = response_header_version(header)?;
    if frame.len() < 4 {
        return Err(WireError::Truncated);
    }
    let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    if correlation_id != header.correlation_id {
        return Err(WireError::Malformed(format!(
            "correlation id {correlation_id}, expected {}",
            header.correlation_id
        )));
    }
    let mut pos = 4;
    if hv >= 1 {
        pos += guard::skip_tagged_fields(&frame[pos..])?;
    }
    Ok(frame.slice(pos..))
}

/// Client direction: decodes a response frame (without length prefix) to the request
/// described by `header`; checks the correlation id.
pub fn decode_response(header: &RequestHeader, frame: Bytes) -> Result<ApiResponse, WireError> {
    let key = header.api_key;
    let v = header.api_version;
    let body = response_body(header, frame)?;
    guard(key, false, v, &body)?;
    apis::decode_response(key, body, v)
}

/// A decoded ApiVersions response, error included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsAnswer {
    /// NONE, or UNSUPPORTED_VERSION when the broker fell back to a v0 body (KIP-511).
    pub error: ErrorCode,
    /// (api_key, min_version, max_version) per API the broker serves.
    pub api_keys: Vec<(i16, i16, i16)>,
    /// Supported and finalized feature levels (v3+; empty below).
    pub features: FeatureLevels,
}

/// Client direction: decodes an ApiVersions response including its error code. A non-zero
/// error means the body is in v0 format (KIP-511), so it is decoded as v0.
pub fn decode_api_versions_answer(
    header: &RequestHeader,
    frame: Bytes,
) -> Result<ApiVersionsAnswer, WireError> {
    let body = response_body(header, frame)?;
    if body.len() < 2 {
        return Err(WireError::Truncated);
    }
    // error_code is the first field at every version.
    let error = ErrorCode(i16::from_be_bytes([body[0], body[1]]));
    let v = if error.is_ok() { header.api_version } else { 0 };
    guard(api_key::API_VERSIONS, false, v, &body)?;
    let r = decode::<ApiVersionsResponse>(body, v, "ApiVersions response")?;
    Ok(ApiVersionsAnswer {
        error,
        api_keys: r
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect(),
        features: FeatureLevels {
            supported: (r.supported_features.iter())
                .map(|f| (f.name.to_string(), f.min_version, f.max_version))
                .collect(),
            finalized_epoch: r.finalized_features_epoch,
            finalized: (r.finalized_features.iter())
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect(),
        },
    })
}

/// Client direction: decodes an ApiVersions response into (key, min, max); a broker error
/// (e.g. UNSUPPORTED_VERSION: retry at a lower version, see [`decode_api_versions_answer`])
/// is `WireError::Unsupported`.
pub fn decode_api_versions_response(
    header: &RequestHeader,
    frame: Bytes,
) -> Result<Vec<(i16, i16, i16)>, WireError> {
    let answer = decode_api_versions_answer(header, frame)?;
    if !answer.error.is_ok() {
        let max = answer
            .api_keys
            .iter()
            .find(|a| a.0 == api_key::API_VERSIONS)
            .map_or(-1, |a| a.2);
        return Err(WireError::Unsupported(format!(
            "ApiVersions v{} answered {}; broker's ApiVersions max is v{max}",
            header.api_version, answer.error
        )));
    }
    Ok(answer.api_keys)
}
