//! Confluent's wire format of a schema-registry record key or value: magic byte 0, the
//! schema id as 4 big-endian bytes, for Protobuf the message-index path (a zigzag varint
//! count, then each index as a zigzag varint; the common path `[0]` is the single byte 0),
//! then the payload in the schema's binary encoding.

use crate::format::DataError;

/// The first byte of every framed value.
pub const MAGIC: u8 = 0;
/// Message indexes read from one record at most (a bound for any input).
pub const MESSAGE_INDEXES_MAX: usize = 32;

/// A framed value's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    pub id: u32,
    /// Protobuf's message-index path (`[0]` when the record wrote the short form).
    pub message_indexes: Vec<i32>,
    pub payload: &'a [u8],
}

/// Frames `payload` written with schema `id`; `message_indexes` is `Some` for Protobuf.
pub fn frame(id: u32, message_indexes: Option<&[i32]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    if let Some(indexes) = message_indexes {
        if indexes == [0] {
            out.push(0);
        } else {
            put_zigzag(&mut out, i64::try_from(indexes.len()).unwrap_or(i64::MAX));
            for &index in indexes {
                put_zigzag(&mut out, i64::from(index));
            }
        }
    }
    out.extend_from_slice(payload);
    out
}

/// The schema id of a framed value, or why `bytes` is not one.
pub fn schema_id(bytes: &[u8]) -> Result<u32, DataError> {
    match bytes {
        [MAGIC, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [MAGIC, ..] => Err(DataError(format!(
            "{} bytes: too short for the schema registry's wire format",
            bytes.len()
        ))),
        _ => Err(DataError(
            "not in the schema registry's wire format (the first byte is not 0)".to_owned(),
        )),
    }
}

/// Splits a framed value; `protobuf` says whether a message-index path follows the id.
pub fn unframe(bytes: &[u8], protobuf: bool) -> Result<Framed<'_>, DataError> {
    let id = schema_id(bytes)?;
    let mut rest = &bytes[5..];
    let mut message_indexes = Vec::new();
    if protobuf {
        let count = take_zigzag(&mut rest)?;
        if count == 0 {
            message_indexes.push(0);
        } else {
            let count = usize::try_from(count)
                .ok()
                .filter(|&n| n <= MESSAGE_INDEXES_MAX)
                .ok_or_else(|| DataError(format!("message-index count {count} out of range")))?;
            for _ in 0..count {
                let index = take_zigzag(&mut rest)?;
                let index = i32::try_from(index)
                    .map_err(|_| DataError(format!("message index {index} out of range")))?;
                message_indexes.push(index);
            }
        }
    }
    Ok(Framed {
        id,
        message_indexes,
        payload: rest,
    })
}

fn put_zigzag(out: &mut Vec<u8>, value: i64) {
    #[allow(clippy::cast_sign_loss)]
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_zigzag(rest: &mut &[u8]) -> Result<i64, DataError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some((&byte, tail)) = rest.split_first() else {
            return Err(DataError(
                "the message-index varint is cut short".to_owned(),
            ));
        };
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            #[allow(clippy::cast_possible_wrap)]
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(DataError(
        "the message-index varint is longer than 10 bytes".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: framing matches Confluent's bytes (magic, big-endian id, zigzag indexes with the
    // [0] short form) and unframing inverts it; broken input is an error. Method: known
    // byte strings from Confluent's serializers' layout.
    #[test]
    fn frames_round_trip() {
        assert_eq!(frame(7, None, b"x"), vec![0, 0, 0, 0, 7, b'x']);
        assert_eq!(frame(7, Some(&[0]), b"x"), vec![0, 0, 0, 0, 7, 0, b'x']);
        assert_eq!(frame(258, Some(&[1, 0]), b""), vec![0, 0, 0, 1, 2, 4, 2, 0]);
        let framed = frame(258, Some(&[1, 0]), b"p");
        let parts = unframe(&framed, true).expect("framed");
        assert_eq!(
            (parts.id, parts.message_indexes, parts.payload),
            (258, vec![1, 0], &b"p"[..])
        );
        let short = frame(9, Some(&[0]), b"q");
        let parts = unframe(&short, true).expect("short form");
        assert_eq!(parts.message_indexes, vec![0]);
        let avro = frame(9, None, b"avro");
        let parts = unframe(&avro, false).expect("no indexes");
        assert_eq!((parts.id, parts.payload), (9, &b"avro"[..]));
        assert!(unframe(b"\x01\0\0\0\x01", false).is_err());
        assert!(unframe(b"\0\0", false).is_err());
        assert!(unframe(b"\0\0\0\0\x01\x80", true).is_err());
        assert!(unframe(b"\0\0\0\0\x01\x7f", true).is_err());
    }
}
