//! Kafka framing: every request and response is a big-endian i32 length followed by that
//! many bytes. Invariant: a length is accepted only when `0 <= len <= max`.

use crate::WireError;

/// Kafka's default `socket.request.max.bytes`.
pub const FRAME_BYTES_MAX: usize = 104_857_600;

/// Length of the frame announced by a 4-byte prefix; negative or above `max` is an error
/// (the connection must then be closed: the stream cannot be resynchronised).
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, WireError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(WireError::Malformed(format!("negative frame length {len}")));
    }
    // i32 -> usize is lossless on every platform we build for (usize >= 32 bits).
    let len = len as usize;
    if len > max {
        return Err(WireError::TooLarge {
            len: len as i64,
            max,
        });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    // Goal: the prefix parser accepts exactly 0..=max. Method: boundary values.
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(frame_len(0i32.to_be_bytes(), 10).ok(), Some(0));
        assert_eq!(frame_len(10i32.to_be_bytes(), 10).ok(), Some(10));
        assert!(matches!(
            frame_len(11i32.to_be_bytes(), 10),
            Err(WireError::TooLarge { len: 11, max: 10 })
        ));
        assert!(frame_len((-1i32).to_be_bytes(), 10).is_err());
        assert!(frame_len(i32::MIN.to_be_bytes(), FRAME_BYTES_MAX).is_err());
        assert!(frame_len(i32::MAX.to_be_bytes(), FRAME_BYTES_MAX).is_err());
    }
}
