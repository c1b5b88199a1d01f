//! Goal: pin the codec's wire-visible behaviour so refactors of the dispatch (how an API's
//! conversions are wired in) cannot change it: the ApiVersions response bytes (the
//! SUPPORTED_APIS table as clients see it), the error response of every API key at every
//! version, and which outcome `decode_request` gives a header for every key and version.
//! Method: encode/decode for keys -1..=80 and versions -1..=20; ApiVersions bytes are pinned
//! in full, the other two as a CRC32C over all outputs (a change anywhere flips it).
//! Re-pinned once, on purpose: DescribeQuorum (55), AddRaftVoter (80) and RemoveRaftVoter
//! (81) joined the table (three entries appended to ApiVersions; 55 and 80 answer errors).
//! Re-pinned again, on purpose: DescribeLogDirs (35, v1-4) joined the table (one entry
//! appended to ApiVersions; key 35 now decodes, and answers errors, at v1-4).
//! Re-pinned again, on purpose: SaslHandshake (17, v0-1), SaslAuthenticate (36, v0-2),
//! DescribeUserScramCredentials (50, v0) and AlterUserScramCredentials (51, v0) joined the
//! table (four entries appended; 17, 36 and 50 answered errors before as unserved APIs and
//! now do through their rows; 51 now answers an empty result list).
//! Re-pinned again, on purpose: DescribeAcls (29), CreateAcls (30) and DeleteAcls (31),
//! v1-3 each, joined the table (three entries appended; 29 answered errors before as an
//! unserved API and now does through its row; 30 and 31 answer empty result lists).
//! Re-pinned again, on purpose: UpdateFeatures (57, v0-2) joined the table (one entry
//! appended; it answered errors before as an unserved API and now does through its row).

use bytes::{BufMut, Bytes, BytesMut};
use weir_wire::codec::*;
use weir_wire::error::ErrorCode;
use weir_wire::WireError;

fn header(api_key: i16, api_version: i16) -> RequestHeader {
    RequestHeader {
        api_key,
        api_version,
        correlation_id: 7,
        client_id: Some("t".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ApiVersions response frame (length prefix included) at version `v`, as hex.
fn api_versions_hex(v: i16) -> String {
    let mut out = BytesMut::new();
    encode_api_versions(&header(18, v), &mut out).expect("encode");
    hex(&out)
}

const API_VERSIONS_V0: &str = concat!(
    "0000013c0000000700000000003300000000000b00010004001000020001000a00030000000d0012",
    "00000004001300020007001400010006002000010004002500000003003c00000002001600000005",
    "001800000003001900000003001a00000004001b00010001001c00000004003d0000000000410000",
    "0000004200000001000800020009000900010009000a00000006000b00000009000c00000004000d",
    "00000005000e00000005000f00000005001000000005002a00000002002f00000000004400000001",
    "004500000001001700020004002100000002002b00000002002c00000001002d00000001002e0000",
    "00000037000000020050000000000051000000000023000100040011000000010024000000020032",
    "00000000003300000000001d00010003001e00010003001f00010003003900000002001500000002",
);
const API_VERSIONS_V3: &str = concat!(
    "000001710000000700003400000000000b000001000400100000020001000a0000030000000d0000",
    "12000000040000130002000700001400010006000020000100040000250000000300003c00000002",
    "00001600000005000018000000030000190000000300001a0000000400001b0001000100001c0000",
    "000400003d000000000000410000000000004200000001000008000200090000090001000900000a",
    "0000000600000b0000000900000c0000000400000d0000000500000e0000000500000f0000000500",
    "00100000000500002a0000000200002f000000000000440000000100004500000001000017000200",
    "040000210000000200002b0000000200002c0000000100002d0000000100002e0000000000003700",
    "00000200005000000000000051000000000000230001000400001100000001000024000000020000",
    "32000000000000330000000000001d0001000300001e0001000300001f0001000300003900000002",
    "00001500000002000000000000",
);

// The v0 and v3 bodies in full; v1/v2 add the throttle time to v0, v4 equals v3, and an
// unknown version (KIP-511) is v0 with UNSUPPORTED_VERSION: pinned through their relation.
#[test]
fn api_versions_bytes_are_pinned() {
    let v0 = api_versions_hex(0);
    let v3 = api_versions_hex(3);
    assert_eq!(v0, API_VERSIONS_V0);
    assert_eq!(v3, API_VERSIONS_V3);
    assert_eq!(api_versions_hex(4), v3);
    for v in [1, 2] {
        let body = api_versions_hex(v);
        // Same table; the frame is 4 bytes longer (throttle_time_ms = 0 at the end).
        assert_eq!(body.len(), v0.len() + 8, "v{v}");
        assert_eq!(&body[8..v0.len()], &v0[8..], "v{v}");
        assert!(body.ends_with("00000000"), "v{v}");
    }
    let fallback = api_versions_hex(9);
    assert_eq!(&fallback[..16], &v0[..16], "length and correlation id");
    assert_eq!(&fallback[16..20], "0023", "UNSUPPORTED_VERSION");
    assert_eq!(&fallback[20..], &v0[20..]);
}

/// Every key and version's error response (or refusal) folded into one CRC32C.
#[test]
fn error_responses_are_pinned() {
    let mut digest = 0u32;
    for key in -1..=80i16 {
        for v in -1..=20i16 {
            let mut out = BytesMut::new();
            let outcome = encode_error_response(&header(key, v), ErrorCode(58), &mut out);
            let tag: &[u8] = match outcome {
                Ok(true) => b"answered",
                Ok(false) => b"refused",
                Err(_) => b"error",
            };
            digest = crc32c::crc32c_append(digest, &key.to_be_bytes());
            digest = crc32c::crc32c_append(digest, &v.to_be_bytes());
            digest = crc32c::crc32c_append(digest, tag);
            digest = crc32c::crc32c_append(digest, &out);
        }
    }
    assert_eq!(
        digest, 0x4c6a_a469,
        "error responses changed: {digest:#010x}"
    );
}

/// A request frame with a v1 header and `body`; flexible versions get an empty tag section.
fn frame(key: i16, v: i16, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(key);
    b.put_i16(v);
    b.put_i32(7);
    b.put_i16(1);
    b.put_u8(b't');
    b.put_slice(body);
    b.freeze()
}

fn error_kind(error: &WireError) -> &'static str {
    match error {
        WireError::Truncated => "truncated",
        WireError::TooLarge { .. } => "too-large",
        WireError::Malformed(_) => "malformed",
        WireError::Unsupported(_) => "unsupported",
        WireError::Encode(_) => "encode",
    }
}

/// The outcome kind of `decode_request` for every key and version, with an empty body and
/// with a body of zeros (which decodes as empty arrays/strings at most versions).
#[test]
fn decode_outcomes_are_pinned() {
    let mut digest = 0u32;
    for key in -1..=80i16 {
        for v in -1..=20i16 {
            for body in [&[][..], &[0u8; 64][..]] {
                let outcome = match decode_request(frame(key, v, body)) {
                    Ok((_, Decoded::Api(request))) => format!("api {}", api_key_of(&request)),
                    Ok((_, Decoded::ApiVersions)) => "api-versions".to_owned(),
                    Ok((_, Decoded::LegacyProduce(_))) => "legacy".to_owned(),
                    Ok((_, Decoded::Unsupported { .. })) => "unsupported".to_owned(),
                    Ok((_, Decoded::Rejected { .. })) => "rejected".to_owned(),
                    Err(error) => format!("err {}", error_kind(&error)),
                };
                digest = crc32c::crc32c_append(digest, &key.to_be_bytes());
                digest = crc32c::crc32c_append(digest, &v.to_be_bytes());
                digest = crc32c::crc32c_append(digest, outcome.as_bytes());
            }
        }
    }
    assert_eq!(
        digest, 0x0bcf_18f6,
        "decode outcomes changed: {digest:#010x}"
    );
}
