//! Produce v0-2: advertised but refused, the way Apache Kafka 4.0 does it (KAFKA-18659).
//!
//! Kafka 4 removed Produce v0-2, yet keeps advertising Produce from v0 because older
//! librdkafka builds (Debian's kcat) otherwise silently stop compressing. A client that
//! does send v0-2 must get UNSUPPORTED_VERSION for each partition it wrote to, not a
//! closed connection. kafka-protocol cannot encode these versions, so this module reads
//! and writes their (small, non-flexible) layout by hand.
//!
//! Invariant: every length read from the wire is checked against the bytes left before
//! anything is allocated from it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{write_frame, RequestHeader};
use crate::error::ErrorCode;
use crate::WireError;

/// The parts of a Produce v0-2 request needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProduce {
    /// 0, 1 or -1; an acks=0 request gets no answer (the driver closes instead).
    pub acks: i16,
    /// Topics and the partitions written to, in request order.
    pub topics: Vec<(String, Vec<i32>)>,
}

/// Reads a Produce v0-2 request body (after the request header).
pub(super) fn decode_body(mut body: Bytes) -> Result<LegacyProduce, WireError> {
    let acks = read_i16(&mut body)?;
    let _timeout_ms = read_i32(&mut body)?;
    let topic_count = read_count(&mut body, 6)?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = read_string(&mut body)?;
        let partition_count = read_count(&mut body, 8)?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            partitions.push(read_i32(&mut body)?);
            let records_len = read_i32(&mut body)?;
            if records_len > 0 {
                let len = usize::try_from(records_len).unwrap_or(usize::MAX);
                if len > body.remaining() {
                    return Err(WireError::Truncated);
                }
                body.advance(len);
            }
        }
        topics.push((name, partitions));
    }
    Ok(LegacyProduce { acks, topics })
}

/// Writes a Produce v0-2 response carrying `error` for every partition of `request`.
pub fn encode_legacy_produce_rejection(
    header: &RequestHeader,
    request: &LegacyProduce,
    error: ErrorCode,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    let version = header.api_version;
    write_frame(out, |out| {
        out.put_i32(header.correlation_id); // Response header v0.
        put_count(out, request.topics.len())?;
        for (name, partitions) in &request.topics {
            let name_len = i16::try_from(name.len())
                .map_err(|_| WireError::Encode(format!("topic name of {} bytes", name.len())))?;
            out.put_i16(name_len);
            out.put_slice(name.as_bytes());
            put_count(out, partitions.len())?;
            for partition in partitions {
                out.put_i32(*partition);
                out.put_i16(error.0);
                out.put_i64(-1); // base_offset
                if version >= 2 {
                    out.put_i64(-1); // log_append_time_ms
                }
            }
        }
        if version >= 1 {
            out.put_i32(0); // throttle_time_ms
        }
        Ok(())
    })
}

fn put_count(out: &mut BytesMut, count: usize) -> Result<(), WireError> {
    let count = i32::try_from(count).map_err(|_| WireError::Encode("array too long".into()))?;
    out.put_i32(count);
    Ok(())
}

fn read_i16(body: &mut Bytes) -> Result<i16, WireError> {
    if body.remaining() < 2 {
        return Err(WireError::Truncated);
    }
    Ok(body.get_i16())
}

fn read_i32(body: &mut Bytes) -> Result<i32, WireError> {
    if body.remaining() < 4 {
        return Err(WireError::Truncated);
    }
    Ok(body.get_i32())
}

/// An array length, refused when the remaining bytes cannot hold that many entries of at
/// least `entry_bytes_min` each (so a hostile length never drives an allocation).
fn read_count(body: &mut Bytes, entry_bytes_min: usize) -> Result<usize, WireError> {
    let count = read_i32(body)?;
    if count < 0 {
        return Ok(0);
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count.saturating_mul(entry_bytes_min) > body.remaining() {
        return Err(WireError::Malformed(format!(
            "array of {count} entries exceeds the frame"
        )));
    }
    Ok(count)
}

fn read_string(body: &mut Bytes) -> Result<String, WireError> {
    let len = read_i16(body)?;
    let len = usize::try_from(len).map_err(|_| WireError::Malformed("null topic name".into()))?;
    if len > body.remaining() {
        return Err(WireError::Truncated);
    }
    let bytes = body.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Malformed("topic name utf-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_body(acks: i16, topics: &[(&str, &[i32])]) -> Bytes {
        let mut body = BytesMut::new();
        body.put_i16(acks);
        body.put_i32(30_000);
        body.put_i32(topics.len() as i32);
        for (name, partitions) in topics {
            body.put_i16(name.len() as i16);
            body.put_slice(name.as_bytes());
            body.put_i32(partitions.len() as i32);
            for partition in *partitions {
                body.put_i32(*partition);
                body.put_i32(3);
                body.put_slice(&[1, 2, 3]);
            }
        }
        body.freeze()
    }

    // Goal: a v2 request is answered per partition with the error. Method: decode a
    // hand-built body, encode the rejection, and read the response bytes back.
    #[test]
    fn rejection_echoes_every_partition() {
        let request = decode_body(request_body(1, &[("t", &[0, 2])])).expect("decodes");
        assert_eq!(request.topics, vec![("t".to_string(), vec![0, 2])]);
        let header = RequestHeader {
            api_key: 0,
            api_version: 2,
            correlation_id: 7,
            client_id: None,
        };
        let mut out = BytesMut::new();
        encode_legacy_produce_rejection(
            &header,
            &request,
            ErrorCode::UNSUPPORTED_VERSION,
            &mut out,
        )
        .expect("encodes");
        let mut frame = out.freeze();
        assert_eq!(frame.get_i32() as usize, frame.remaining());
        assert_eq!(frame.get_i32(), 7);
        assert_eq!(frame.get_i32(), 1);
        assert_eq!(frame.get_i16(), 1);
        assert_eq!(frame.get_u8(), b't');
        assert_eq!(frame.get_i32(), 2);
        for partition in [0, 2] {
            assert_eq!(frame.get_i32(), partition);
            assert_eq!(frame.get_i16(), 35);
            assert_eq!(frame.get_i64(), -1);
            assert_eq!(frame.get_i64(), -1);
        }
        assert_eq!(frame.get_i32(), 0);
        assert_eq!(frame.remaining(), 0);
    }

    // Goal: hostile lengths fail cleanly. Method: a topic count of i32::MAX in a tiny body.
    #[test]
    fn hostile_counts_are_refused() {
        let mut body = BytesMut::new();
        body.put_i16(1);
        body.put_i32(0);
        body.put_i32(i32::MAX);
        assert!(decode_body(body.freeze()).is_err());
        assert!(decode_body(Bytes::from_static(&[0])).is_err());
    }
}
