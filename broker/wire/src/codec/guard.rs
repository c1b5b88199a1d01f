//! Allocation guard: walks a message body against its schema (schema.rs) before
//! `kafka_protocol` decodes it.
//!
//! Why: `kafka_protocol` 0.18 decodes an array by calling `Vec::with_capacity(n)` with the
//! length read from the wire, so a 100-byte frame announcing 2^31 elements makes it request
//! hundreds of GiB and abort the process. This walker reads exactly the bytes the decoder
//! will read and rejects any array (or tagged-field count) longer than the bytes left, since
//! every element occupies at least one byte. After it passes, the decoder's allocations are
//! bounded by a small multiple of the frame size.
//!
//! Invariant: it never allocates and never rejects a message the decoder would accept.
//! Nulls are accepted everywhere (the decoder itself rejects a null where one is invalid).

use crate::WireError;

/// A version range, inclusive; `(1, 0)` is empty.
pub(crate) type Versions = (i16, i16);

/// A message schema: when it is flexible and its top-level fields.
#[derive(Debug)]
pub(crate) struct Message {
    pub flexible: Versions,
    pub fields: &'static [F],
}

/// One field.
#[derive(Debug)]
pub(crate) struct F {
    #[allow(dead_code)] // kept for debugging the generated tables
    pub name: &'static str,
    pub ty: T,
    pub versions: Versions,
    pub tag: Option<i32>,
    pub tagged: Versions,
    /// The field is never encoded compactly (the request header's client id).
    pub flex_none: bool,
}

/// A field type.
#[derive(Debug)]
#[allow(dead_code)] // the generator emits every Kafka type; not all occur in our messages
pub(crate) enum T {
    Bool,
    I8,
    I16,
    U16,
    I32,
    I64,
    U32,
    F64,
    Uuid,
    Str,
    Bytes,
    PrimArray(&'static T),
    StructArray(&'static [F]),
    Struct(&'static [F]),
    /// A nullable struct: an int8 marker (-1 = null) then the struct.
    NullableStruct(&'static [F]),
}

fn contains(range: Versions, v: i16) -> bool {
    range.0 <= v && v <= range.1
}

/// Checks `body` (the bytes after the header) against `message` at `version`.
pub(crate) fn check(message: &Message, version: i16, body: &[u8]) -> Result<(), WireError> {
    let mut cursor = Cursor {
        bytes: body,
        pos: 0,
        depth: 0,
    };
    let flexible = contains(message.flexible, version);
    cursor.walk_struct(message.fields, version, flexible)
}

/// Skips a request header's tagged-field section (header v2 / response header v1).
pub(crate) fn skip_tagged_fields(bytes: &[u8]) -> Result<usize, WireError> {
    let mut cursor = Cursor {
        bytes,
        pos: 0,
        depth: 0,
    };
    cursor.walk_tags(&[], 0)?;
    Ok(cursor.pos)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

/// Kafka messages nest a few levels; a deeper walk means a corrupt tagged field.
const DEPTH_MAX: u32 = 16;

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Truncated);
        }
        let bytes: &'a [u8] = self.bytes;
        let slice = &bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Same arithmetic as kafka_protocol's UnsignedVarInt (at most 5 bytes, wrapping), so
    /// both read the same number of bytes.
    fn uvarint(&mut self) -> Result<u32, WireError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0] as u32;
            value |= (b & 0x7f).wrapping_shl(i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A length of something whose elements take at least one byte each.
    fn bounded(&self, n: u64) -> Result<usize, WireError> {
        if n > self.remaining() as u64 {
            return Err(WireError::TooLarge {
                len: n as i64,
                max: self.remaining(),
            });
        }
        Ok(n as usize)
    }

    /// Length of a string/bytes/array; `None` for null.
    fn length(&mut self, compact: bool, i16_len: bool) -> Result<Option<usize>, WireError> {
        let n: i64 = if compact {
            i64::from(self.uvarint()?) - 1
        } else if i16_len {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        if n < 0 {
            // -1 is null; other negatives the decoder rejects, but consumes nothing more.
            return Ok(None);
        }
        self.bounded(n as u64).map(Some)
    }

    fn walk_struct(&mut self, fields: &[F], v: i16, flexible: bool) -> Result<(), WireError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(WireError::Malformed("nesting too deep".into()));
        }
        for field in fields {
            if !contains(field.versions, v) || (flexible && contains(field.tagged, v)) {
                continue;
            }
            self.walk_type(&field.ty, v, flexible && !field.flex_none)?;
        }
        if flexible {
            self.walk_tags(fields, v)?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn walk_type(&mut self, ty: &T, v: i16, flexible: bool) -> Result<(), WireError> {
        match ty {
            T::Bool | T::I8 => self.take(1).map(drop),
            T::I16 | T::U16 => self.take(2).map(drop),
            T::I32 | T::U32 => self.take(4).map(drop),
            T::I64 | T::F64 => self.take(8).map(drop),
            T::Uuid => self.take(16).map(drop),
            T::Str => {
                if let Some(n) = self.length(flexible, true)? {
                    self.take(n)?;
                }
                Ok(())
            }
            T::Bytes => {
                if let Some(n) = self.length(flexible, false)? {
                    self.take(n)?;
                }
                Ok(())
            }
            T::PrimArray(inner) => {
                if let Some(n) = self.length(flexible, false)? {
                    for _ in 0..n {
                        self.walk_type(inner, v, flexible)?;
                    }
                }
                Ok(())
            }
            T::StructArray(fields) => {
                if let Some(n) = self.length(flexible, false)? {
                    for _ in 0..n {
                        self.walk_struct(fields, v, flexible)?;
                    }
                }
                Ok(())
            }
            T::Struct(fields) => self.walk_struct(fields, v, flexible),
            T::NullableStruct(fields) => {
                let marker = self.take(1)?[0] as i8;
                if marker < 0 {
                    return Ok(());
                }
                self.walk_struct(fields, v, flexible)
            }
        }
    }

    /// A tagged-field section: count, then (tag, size, data) each. Known tags are walked
    /// inside their own `size` bytes (stricter than the decoder, never looser).
    fn walk_tags(&mut self, fields: &[F], v: i16) -> Result<(), WireError> {
        let count = self.uvarint()?;
        // Each entry takes at least two bytes (tag and size).
        self.bounded(u64::from(count))?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let data = self.take(size)?;
            let known = fields.iter().find(|f| {
                f.tag.is_some_and(|t| t as u32 == tag)
                    && contains(f.versions, v)
                    && contains(f.tagged, v)
            });
            if let Some(field) = known {
                let mut inner = Cursor {
                    bytes: data,
                    pos: 0,
                    depth: self.depth,
                };
                inner.walk_type(&field.ty, v, true)?;
            }
        }
        Ok(())
    }
}
