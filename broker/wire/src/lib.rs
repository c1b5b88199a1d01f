//! weir-wire: the only crate that speaks `kafka_protocol`.
//!
//! Everything that turns Kafka bytes into domain values (and back) lives here: framing
//! ([`frame`]), request/response headers and bodies at every supported version ([`codec`]),
//! record-batch header parsing and CRC checks ([`batch`]), client-side record encoding
//! ([`records`]), the broker's rewriting of stored batches for compaction ([`rewrite`]),
//! Kafka's default partitioner hash ([`murmur2`]) and the SASL mechanisms' messages and SCRAM
//! math ([`sasl`]).
//!
//! Invariant: no input bytes can make this crate panic or allocate more than a small
//! multiple of the input size; malformed input is a [`WireError`].
pub mod batch;
pub mod codec;
pub mod domain;
pub mod error;
pub mod frame;
pub mod murmur2;
pub mod records;
pub mod rewrite;
pub mod sasl;

/// Why bytes could not be decoded or a value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The input ended before a complete value.
    #[error("truncated input")]
    Truncated,
    /// A length exceeds the allowed maximum.
    #[error("length {len} exceeds maximum {max}")]
    TooLarge {
        /// The length found.
        len: i64,
        /// The maximum allowed.
        max: usize,
    },
    /// The input is not valid Kafka protocol.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A well-formed value this crate does not support (API, version, feature).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A value could not be encoded (e.g. a field not representable at the version).
    #[error("encode: {0}")]
    Encode(String),
}
