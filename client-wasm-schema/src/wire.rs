//! Confluent's wire format and subject naming: the pure parts, tested natively.
//!
//! A framed value is magic byte 0, the schema id as 4 big-endian bytes, then the payload
//! (Avro binary for Avro schemas, UTF-8 JSON text for JSON schemas).

use crate::SchemaError;

/// The magic byte that opens every framed value.
pub const MAGIC: u8 = 0;
/// Magic byte plus schema id.
pub const HEADER_BYTES: usize = 5;

/// `payload` framed with schema `id`.
pub fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The schema id and payload of a framed value.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), SchemaError> {
    if bytes.len() < HEADER_BYTES {
        return Err(SchemaError::Frame(format!(
            "{} bytes: a framed value has at least {HEADER_BYTES}",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC {
        return Err(SchemaError::Frame(format!(
            "magic byte is {}, not {MAGIC}",
            bytes[0]
        )));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_BYTES..]))
}

/// Confluent's TopicNameStrategy: `<topic>-key` or `<topic>-value`.
pub fn topic_subject(topic: &str, is_key: bool) -> String {
    if is_key {
        format!("{topic}-key")
    } else {
        format!("{topic}-value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_magic_big_endian_id_payload() {
        let framed = frame(0x0102_0304, b"abc");
        assert_eq!(framed, [0, 1, 2, 3, 4, b'a', b'b', b'c']);
        let (id, payload) = unframe(&framed).unwrap();
        assert_eq!(id, 0x0102_0304);
        assert_eq!(payload, b"abc");
        assert_eq!(unframe(&frame(7, b"")).unwrap(), (7, &b""[..]));
    }

    #[test]
    fn short_or_unmagic_bytes_are_refused() {
        assert!(matches!(unframe(&[0, 0, 0, 1]), Err(SchemaError::Frame(_))));
        let error = unframe(&[1, 0, 0, 0, 1, 9]).unwrap_err();
        assert!(error.to_string().contains("magic byte is 1"), "{error}");
    }

    #[test]
    fn topic_name_strategy() {
        assert_eq!(topic_subject("orders", false), "orders-value");
        assert_eq!(topic_subject("orders", true), "orders-key");
    }
}
