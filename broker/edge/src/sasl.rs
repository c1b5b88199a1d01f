//! The client side of the SASL mechanisms the gateway accepts (edge protocol version 3):
//! PLAIN's message and SCRAM-SHA-256/512's exchange (RFC 5802, RFC 7677), as the WASM
//! client sends them in [`crate::SaslFrame`]s.
//!
//! This mirrors the client half of `weir_wire::sasl` (which the broker verifies with),
//! because weir-edge may not depend on weir-wire and ring needs a C toolchain for wasm32:
//! the math here is RustCrypto's (sha2, hmac, pbkdf2), pure Rust. A test in the broker
//! runs this client against weir-wire's server for both hashes.
//!
//! Invariants:
//! - Parsing the server's messages never panics; errors name what was wrong, never a
//!   secret, and no type here formats a password or key.
//! - The client refuses a server nonce that does not extend its own, fewer than
//!   [`SCRAM_ITERATIONS_MIN`] iterations, and a server signature that does not verify.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

/// RFC 7677's (and Kafka's) minimum PBKDF2 iteration count.
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;
/// Kafka's maximum iteration count: bounds the work a hostile gateway can ask for.
pub const SCRAM_ITERATIONS_MAX: u32 = 16384;

/// Why the client gave up an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslClientError(pub &'static str);

impl std::fmt::Display for SaslClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SaslClientError {}

/// A SCRAM hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The hash of a mechanism name (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn of_mechanism(name: &str) -> Option<ScramHash> {
        match name {
            "SCRAM-SHA-256" => Some(ScramHash::Sha256),
            "SCRAM-SHA-512" => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match self {
            ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramHash::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// PLAIN's message (RFC 4616) without an authorization id: `NUL user NUL password`.
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

/// The client side of one SCRAM exchange.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    bare: String,
    /// Set by [`ScramClient::server_first`]: the signature the server must send.
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Start an exchange; `nonce` is fresh randomness (printable ASCII, no comma).
    /// Returns the state and the client-first message.
    pub fn start(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={name},r={nonce}");
        let first = format!("n,,{bare}").into_bytes();
        let client = ScramClient {
            hash,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            bare,
            server_signature: None,
        };
        (client, first)
    }

    /// Answer the server-first message (`r=...,s=...,i=...`) with the client-final one.
    pub fn server_first(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SaslClientError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslClientError("not UTF-8"))?;
        let mut fields = text.split(',');
        let mut field = |prefix: &str, what: &'static str| {
            (fields.next())
                .and_then(|f| f.strip_prefix(prefix))
                .ok_or(SaslClientError(what))
        };
        let nonce = field("r=", "no server nonce (r=)")?;
        let salt = field("s=", "no salt (s=)")?;
        let iterations = field("i=", "no iteration count (i=)")?;
        if !nonce.starts_with(&self.nonce) || nonce == self.nonce {
            return Err(SaslClientError(
                "the server nonce does not extend the client's",
            ));
        }
        let iterations: u32 =
            (iterations.parse()).map_err(|_| SaslClientError("bad iteration count"))?;
        if iterations < SCRAM_ITERATIONS_MIN {
            return Err(SaslClientError("too few SCRAM iterations"));
        }
        if iterations > SCRAM_ITERATIONS_MAX {
            return Err(SaslClientError("too many SCRAM iterations"));
        }
        let salt = decode_base64(salt)?;
        let hash = self.hash;
        let salted = hash.salted_password(&self.password, &salt, iterations);
        let client_key = hash.mac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", encode_base64(b"n,,"));
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = hash.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = (client_key.iter().zip(&signature))
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.mac(&salted, b"Server Key");
        self.server_signature = Some(hash.mac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", encode_base64(&proof)).into_bytes())
    }

    /// Check the server-final message (`v=ServerSignature`).
    pub fn server_final(&self, bytes: &[u8]) -> Result<(), SaslClientError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslClientError("not UTF-8"))?;
        let signature =
            (text.strip_prefix("v=")).ok_or(SaslClientError("no server signature (v=)"))?;
        let signature = decode_base64(signature)?;
        let expected = (self.server_signature.as_ref())
            .ok_or(SaslClientError("server-final before server-first"))?;
        let differ = (expected.len() != signature.len())
            || expected
                .iter()
                .zip(&signature)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                != 0;
        if differ {
            return Err(SaslClientError(
                "the gateway's SCRAM signature does not verify",
            ));
        }
        Ok(())
    }
}

fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_base64(text: &str) -> Result<Vec<u8>, SaslClientError> {
    (base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|_| SaslClientError("bad base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the math matches RFC 7677's published SCRAM-SHA-256 example (so the client
    // interoperates with any server), and a wrong server signature is refused. Method: the
    // RFC's nonce and server messages.
    #[test]
    fn rfc7677_example() {
        let (mut client, first) =
            ScramClient::start(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.server_first(server_first).expect("server-first");
        assert_eq!(
            String::from_utf8(client_final).expect("utf-8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        client.server_final(server_final).expect("server signature");
        assert!(client.server_final(b"v=AAAA").is_err());
    }

    // Goal: hostile or malformed server-first messages are refused without panicking.
    // Method: a nonce that does not extend the client's, too few and too many iterations,
    // missing fields, bad base64, non-UTF-8.
    #[test]
    fn refuses_bad_server_first() {
        for bad in [
            &b"r=other,s=AAAA,i=4096"[..],
            b"r=abc,s=AAAA,i=4096",
            b"r=abcd,s=AAAA,i=10",
            b"r=abcd,s=AAAA,i=99999999",
            b"r=abcd,s=AAAA",
            b"r=abcd,s=!!,i=4096",
            b"\xff",
            b"",
        ] {
            let (mut client, _) = ScramClient::start(ScramHash::Sha512, "u", "p", "abc");
            assert!(client.server_first(bad).is_err(), "{bad:?}");
        }
        assert_eq!(plain_message("a", "b"), b"\0a\0b");
        assert_eq!(
            ScramHash::of_mechanism("SCRAM-SHA-512"),
            Some(ScramHash::Sha512)
        );
        assert_eq!(ScramHash::of_mechanism("PLAIN"), None);
    }
}
