//! SASL mechanisms as pure functions: the messages of PLAIN (RFC 4616) and SCRAM
//! (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka's KIP-84 use them), parsed
//! from bytes into types once, and the SCRAM exchange's two sides as small state machines
//! that take their nonce as an argument (the caller draws it from the runtime's seeded
//! randomness, so simulations stay deterministic).
//!
//! The math is ring's (PBKDF2, HMAC, SHA-2); nothing here is hand-rolled crypto except the
//! constant-time comparison of two digests.
//!
//! Invariants:
//! - Parsing never panics on input bytes (proptest in `tests/it/sasl_parsers.rs`).
//! - No password, salted password, key or proof is ever formatted: the types holding them
//!   implement `Debug` without them, and errors name only what was malformed.
//! - A SCRAM exchange accepts a client only if the proof checks against the stored key,
//!   compared in constant time; the nonce the client echoes must end with the combined
//!   nonce the server sent (Kafka's rule, which old librdkafka needs).

use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// Kafka's (and RFC 7677's) minimum PBKDF2 iteration count for SCRAM credentials.
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;
/// Kafka's maximum iteration count (`ScramMechanism.maxIterations`).
pub const SCRAM_ITERATIONS_MAX: u32 = 16384;
/// Longest user name, password or nonce this module parses: far beyond any real one, and
/// it bounds the work a client can make the broker do per message.
pub const SASL_FIELD_BYTES_MAX: usize = 4096;

/// Why a SASL message was refused. Messages name the problem, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The bytes are not a message of the mechanism.
    #[error("malformed SASL message: {0}")]
    Malformed(&'static str),
    /// A well-formed message the mechanism refuses (channel binding, authzid).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The credentials do not check out (unknown user, wrong password or proof).
    #[error("invalid credentials")]
    BadCredentials,
    /// The server's answer does not prove it knows the credential (client side).
    #[error("the server's SCRAM signature does not verify")]
    BadServerSignature,
}

/// A mechanism Weir speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaslMechanism {
    /// RFC 4616: user name and password in one message.
    Plain,
    /// RFC 5802 with a SHA-2 hash.
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// Every mechanism, in Kafka's listing order.
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Plain,
        SaslMechanism::Scram(ScramMechanism::Sha256),
        SaslMechanism::Scram(ScramMechanism::Sha512),
    ];

    /// The IANA name clients send (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(scram) => scram.name(),
        }
    }

    /// The mechanism called `name` (exact, as Kafka compares them).
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A SCRAM hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (KIP-554 code 1).
    Sha256,
    /// SCRAM-SHA-512 (KIP-554 code 2).
    Sha512,
}

impl ScramMechanism {
    /// Both, in KIP-554 code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism called `name`.
    pub fn parse(name: &str) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// KIP-554's code (`crate::domain::sasl::scram_mechanism`).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => crate::domain::sasl::scram_mechanism::SCRAM_SHA_256,
            ScramMechanism::Sha512 => crate::domain::sasl::scram_mechanism::SCRAM_SHA_512,
        }
    }

    /// The mechanism of a KIP-554 code.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Bytes of the hash (and so of every key and proof).
    pub fn hash_bytes(self) -> usize {
        self.digest().output_len()
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC. Kafka applies
    /// no SASLprep, so neither does Weir (the UTF-8 bytes as given). `iterations` of 0 is
    /// taken as 1 (callers check the bounds first).
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.hash_bytes()];
        let iterations = std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(
            self.pbkdf2(),
            iterations,
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }
}

/// What a broker keeps of a SCRAM credential (RFC 5802 section 3): enough to verify a
/// client and to prove itself, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The stored credential of a salted password (what AlterUserScramCredentials sends).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        iterations: u32,
        salted_password: &[u8],
    ) -> ScramCredential {
        let client_key = mechanism.mac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.mac(salted_password, b"Server Key"),
        }
    }

    /// The stored credential of a password (tests, and Kafka's `kafka-storage --add-scram`).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password, salt, iterations);
        Self::from_salted_password(mechanism, salt, iterations, &salted)
    }
}

/// A PLAIN message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The user name.
    pub username: String,
    /// The password (never printed).
    pub password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl PlainMessage {
    /// Parse a client's PLAIN token. An authorization id other than the user name is
    /// refused, as Kafka's PlainSaslServer does.
    pub fn parse(bytes: &[u8]) -> Result<PlainMessage, SaslError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(username), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::Malformed(
                "PLAIN expects authzid NUL username NUL password",
            ));
        };
        if username.is_empty() {
            return Err(SaslError::Malformed("empty user name"));
        }
        if password.is_empty() {
            return Err(SaslError::Malformed("empty password"));
        }
        if username.len() > SASL_FIELD_BYTES_MAX || password.len() > SASL_FIELD_BYTES_MAX {
            return Err(SaslError::Malformed("user name or password too long"));
        }
        if !authzid.is_empty() && authzid != username {
            return Err(SaslError::Unsupported(
                "an authorization id different from the user name is not supported",
            ));
        }
        Ok(PlainMessage {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The client's token.
    pub fn encode(&self) -> Vec<u8> {
        format!("\0{}\0{}", self.username, self.password).into_bytes()
    }
}

/// Compare two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// SCRAM's client-first message: `gs2-header client-first-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The GS2 header as sent (`n,,` or `y,,`), echoed base64 in the client-final.
    pub gs2_header: String,
    /// The user name, `=2C` and `=3D` decoded.
    pub username: String,
    /// The client's nonce.
    pub nonce: String,
    /// `n=...,r=...[,ext]`: part of the AuthMessage.
    pub bare: String,
}

impl ClientFirst {
    /// Parse a client-first message. Channel binding (`p=`) is refused; Kafka's
    /// extensions after the nonce (`tokenauth=true`) are kept in `bare` and ignored.
    pub fn parse(bytes: &[u8]) -> Result<ClientFirst, SaslError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or(SaslError::Malformed("no GS2 header"))?;
        match flag {
            "n" | "y" => {}
            _ if flag.starts_with("p=") => {
                return Err(SaslError::Unsupported("channel binding is not supported"))
            }
            _ => return Err(SaslError::Malformed("bad GS2 channel binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(SaslError::Malformed("no GS2 authorization id field"))?;
        let mut fields = bare.split(',');
        let username = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .ok_or(SaslError::Malformed("no user name (n=)"))?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(SaslError::Malformed("no nonce (r=)"))?;
        let username = decode_saslname(username)?;
        if username.is_empty() {
            return Err(SaslError::Malformed("empty user name"));
        }
        check_nonce(nonce)?;
        if !authzid.is_empty() {
            let authzid = authzid
                .strip_prefix("a=")
                .ok_or(SaslError::Malformed("bad GS2 authorization id"))?;
            if decode_saslname(authzid)? != username {
                return Err(SaslError::Unsupported(
                    "an authorization id different from the user name is not supported",
                ));
            }
        }
        Ok(ClientFirst {
            gs2_header: format!("{flag},{authzid},"),
            username,
            nonce: nonce.to_owned(),
            bare: bare.to_owned(),
        })
    }
}

/// SCRAM's client-final message.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// `c=`, decoded: the GS2 header the client sent first.
    pub channel_binding: Vec<u8>,
    /// `r=`: the combined nonce.
    pub nonce: String,
    /// Everything before `,p=`: part of the AuthMessage.
    pub without_proof: String,
    /// `p=`, decoded.
    pub proof: Vec<u8>,
}

impl std::fmt::Debug for ClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFinal")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl ClientFinal {
    /// Parse a client-final message: `c=...,r=...[,ext],p=...`.
    pub fn parse(bytes: &[u8]) -> Result<ClientFinal, SaslError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslError::Malformed("no proof (p=)"))?;
        let mut fields = without_proof.split(',');
        let channel_binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or(SaslError::Malformed("no channel binding (c=)"))?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(SaslError::Malformed("no nonce (r=)"))?;
        check_nonce(nonce)?;
        Ok(ClientFinal {
            channel_binding: decode_base64(channel_binding)?,
            nonce: nonce.to_owned(),
            without_proof: without_proof.to_owned(),
            proof: decode_base64(proof)?,
        })
    }
}

/// SCRAM's server-first message: `r=nonce,s=salt,i=iterations`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The combined nonce.
    pub nonce: String,
    /// The salt, decoded.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl std::fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFirst")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ServerFirst {
    /// Parse a server-first message (client side).
    pub fn parse(bytes: &[u8]) -> Result<ServerFirst, SaslError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        if text.starts_with("e=") {
            return Err(SaslError::BadCredentials);
        }
        let mut fields = text.split(',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(SaslError::Malformed("no nonce (r=)"))?;
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .ok_or(SaslError::Malformed("no salt (s=)"))?;
        let iterations = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .ok_or(SaslError::Malformed("no iteration count (i=)"))?;
        check_nonce(nonce)?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| SaslError::Malformed("bad iteration count"))?;
        Ok(ServerFirst {
            nonce: nonce.to_owned(),
            salt: decode_base64(salt)?,
            iterations,
        })
    }

    /// The message text.
    pub fn encode(&self) -> String {
        format!(
            "r={},s={},i={}",
            self.nonce,
            base64_encode(&self.salt),
            self.iterations
        )
    }
}

/// The server side of one SCRAM exchange, after the client-first message.
pub struct ScramServer {
    mechanism: ScramMechanism,
    client_first: ClientFirst,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("username", &self.client_first.username)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Start the exchange for a parsed client-first message and the user's stored
    /// credential; `server_nonce` is fresh randomness (printable, no comma). Returns the
    /// state and the server-first message to send.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: ClientFirst,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> (ScramServer, Vec<u8>) {
        let nonce = format!("{}{server_nonce}", client_first.nonce);
        let server_first = ServerFirst {
            nonce: nonce.clone(),
            salt: credential.salt.clone(),
            iterations: credential.iterations,
        }
        .encode();
        let bytes = server_first.clone().into_bytes();
        let server = ScramServer {
            mechanism,
            client_first,
            server_first,
            nonce,
            credential,
        };
        (server, bytes)
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The user this exchange authenticates.
    pub fn username(&self) -> &str {
        &self.client_first.username
    }

    /// Check the client-final message. On success returns the server-final message
    /// (`v=ServerSignature`), which the client checks to know the server holds the
    /// credential.
    pub fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, SaslError> {
        self.finish_keys(client_final)
            .map(|(server_final, _)| server_final)
    }

    /// [`ScramServer::finish`], also returning what the verified proof revealed: the
    /// user's ClientKey (`ClientProof XOR HMAC(StoredKey, AuthMessage)`, checked against
    /// the StoredKey) with the stored ServerKey. Whoever holds them can authenticate as the
    /// user to any broker with the same credential ([`ScramClient::from_keys`]), without
    /// the password: the WebSocket gateway uses this to act as its session's user upstream.
    pub fn finish_keys(&self, client_final: &[u8]) -> Result<(Vec<u8>, ScramKeys), SaslError> {
        let message = ClientFinal::parse(client_final)?;
        if message.channel_binding != self.client_first.gs2_header.as_bytes() {
            return Err(SaslError::Malformed(
                "channel binding does not match the GS2 header",
            ));
        }
        // Kafka's check is `endsWith`, not equality: librdkafka before 2.1 sends its own
        // nonce again in front of the combined one, and Kafka accepts it. The proof covers
        // the message as sent, so this admits nothing the credential does not.
        if !message.nonce.ends_with(&self.nonce) {
            return Err(SaslError::Malformed("nonce does not match the server's"));
        }
        let mechanism = self.mechanism;
        if message.proof.len() != mechanism.hash_bytes() {
            return Err(SaslError::Malformed("proof of the wrong length"));
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first.bare, self.server_first, message.without_proof
        );
        let signature = mechanism.mac(&self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = (message.proof.iter())
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&mechanism.hash(&client_key), &self.credential.stored_key) {
            return Err(SaslError::BadCredentials);
        }
        let server_signature = mechanism.mac(&self.credential.server_key, auth_message.as_bytes());
        let keys = ScramKeys {
            mechanism,
            username: self.client_first.username.clone(),
            client_key,
            server_key: self.credential.server_key.clone(),
        };
        let server_final = format!("v={}", base64_encode(&server_signature)).into_bytes();
        Ok((server_final, keys))
    }
}

/// A user's SCRAM ClientKey and ServerKey, as a verified exchange reveals them to the
/// server that checked it ([`ScramServer::finish_keys`]). Equivalent to the password for
/// authenticating to brokers with the same credential (until the credential changes), so
/// it is never formatted and its bytes are overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// The mechanism the keys belong to.
    pub mechanism: ScramMechanism,
    /// The user.
    pub username: String,
    /// `HMAC(SaltedPassword, "Client Key")`.
    pub client_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: checks the server's signature.
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// The keys of a password (tests; what a client that knows the password holds).
    pub fn from_password(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> ScramKeys {
        let salted = mechanism.salted_password(password, salt, iterations);
        ScramKeys {
            mechanism,
            username: username.to_owned(),
            client_key: mechanism.mac(&salted, b"Client Key"),
            server_key: mechanism.mac(&salted, b"Server Key"),
        }
    }
}

impl std::fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramKeys")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Drop for ScramKeys {
    fn drop(&mut self) {
        wipe(&mut self.client_key);
        wipe(&mut self.server_key);
    }
}

/// Overwrite a secret's bytes (through `black_box`, so the writes are not elided as dead).
fn wipe(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        *byte = 0;
    }
    std::hint::black_box(bytes);
}

fn wipe_vec(mut bytes: Vec<u8>) {
    wipe(&mut bytes);
}

/// What a SCRAM client proves itself with.
enum ClientSecret {
    /// The password: PBKDF2 over the server's salt and iterations gives the keys.
    Password(String),
    /// The keys themselves (the salt and iterations are then not needed).
    Keys(ScramKeys),
}

/// The client side of one SCRAM exchange.
pub struct ScramClient {
    mechanism: ScramMechanism,
    secret: ClientSecret,
    nonce: String,
    bare: String,
    /// Set by [`ScramClient::server_first`]: the expected server signature.
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Start an exchange; `nonce` is fresh randomness (printable, no comma). Returns the
    /// state and the client-first message.
    pub fn start(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let secret = ClientSecret::Password(password.to_owned());
        Self::start_with(mechanism, username, secret, nonce)
    }

    /// Start an exchange as `keys`' user, proving it with the ClientKey instead of a
    /// password (RFC 5802 needs only ClientKey for the proof and ServerKey to check the
    /// server); the salt and iteration count the server sends are then not used.
    pub fn from_keys(keys: ScramKeys, nonce: &str) -> (ScramClient, Vec<u8>) {
        let (mechanism, username) = (keys.mechanism, keys.username.clone());
        Self::start_with(mechanism, &username, ClientSecret::Keys(keys), nonce)
    }

    fn start_with(
        mechanism: ScramMechanism,
        username: &str,
        secret: ClientSecret,
        nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let bare = format!("n={},r={nonce}", encode_saslname(username));
        let first = format!("n,,{bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            secret,
            nonce: nonce.to_owned(),
            bare,
            server_signature: None,
        };
        (client, first)
    }

    /// Answer the server-first message with the client-final message. Refuses a server
    /// nonce that does not extend the client's and an iteration count below
    /// [`SCRAM_ITERATIONS_MIN`] (a downgrade).
    pub fn server_first(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SaslError> {
        let server_first = ServerFirst::parse(bytes)?;
        if !server_first.nonce.starts_with(&self.nonce) || server_first.nonce == self.nonce {
            return Err(SaslError::Malformed(
                "the server nonce does not extend the client's",
            ));
        }
        if server_first.iterations < SCRAM_ITERATIONS_MIN {
            return Err(SaslError::Unsupported("too few SCRAM iterations"));
        }
        let mechanism = self.mechanism;
        let (client_key, server_key) = match &self.secret {
            ClientSecret::Password(password) => {
                let (salt, iterations) = (&server_first.salt, server_first.iterations);
                let salted = mechanism.salted_password(password, salt, iterations);
                let keys = (
                    mechanism.mac(&salted, b"Client Key"),
                    mechanism.mac(&salted, b"Server Key"),
                );
                wipe_vec(salted);
                keys
            }
            ClientSecret::Keys(keys) => (keys.client_key.clone(), keys.server_key.clone()),
        };
        let stored_key = mechanism.hash(&client_key);
        let without_proof = format!("c={},r={}", base64_encode(b"n,,"), server_first.nonce);
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = mechanism.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.server_signature = Some(mechanism.mac(&server_key, auth_message.as_bytes()));
        wipe_vec(client_key);
        wipe_vec(server_key);
        Ok(format!("{without_proof},p={}", base64_encode(&proof)).into_bytes())
    }

    /// Check the server-final message.
    pub fn server_final(&self, bytes: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        if text.starts_with("e=") {
            return Err(SaslError::BadCredentials);
        }
        let signature = text
            .strip_prefix("v=")
            .ok_or(SaslError::Malformed("no server signature (v=)"))?;
        let signature = decode_base64(signature)?;
        match &self.server_signature {
            Some(expected) if constant_time_eq(expected, &signature) => Ok(()),
            _ => Err(SaslError::BadServerSignature),
        }
    }
}

/// Standard base64 with padding (what SCRAM uses).
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_base64(text: &str) -> Result<Vec<u8>, SaslError> {
    if text.len() > SASL_FIELD_BYTES_MAX {
        return Err(SaslError::Malformed("base64 field too long"));
    }
    (base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|_| SaslError::Malformed("bad base64"))
}

/// RFC 5802's nonce: printable ASCII without a comma, not empty.
fn check_nonce(nonce: &str) -> Result<(), SaslError> {
    let printable = nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if nonce.is_empty() || nonce.len() > SASL_FIELD_BYTES_MAX || !printable {
        return Err(SaslError::Malformed("bad nonce"));
    }
    Ok(())
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, any other `=` is an error.
fn decode_saslname(text: &str) -> Result<String, SaslError> {
    if text.len() > SASL_FIELD_BYTES_MAX {
        return Err(SaslError::Malformed("user name too long"));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Fresh SCRAM nonces (and salts) from a 32-byte secret seed: HMAC-SHA-256 of the seed
/// over a counter, so every draw is unpredictable to whoever does not know the seed and
/// the whole sequence is a function of it (the simulator replays it). Production seeds it
/// from the OS through the runtime seam (`Runtime::secret_seed`).
pub struct NonceSource {
    key: hmac::Key,
    counter: u64,
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSource").finish_non_exhaustive()
    }
}

impl NonceSource {
    /// A source keyed by `seed`.
    pub fn new(seed: [u8; 32]) -> NonceSource {
        NonceSource {
            key: hmac::Key::new(hmac::HMAC_SHA256, &seed),
            counter: 0,
        }
    }

    /// 32 fresh bytes.
    pub fn bytes(&mut self) -> [u8; 32] {
        self.counter += 1;
        let tag = hmac::sign(&self.key, &self.counter.to_be_bytes());
        let mut out = [0; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// A fresh nonce: 144 bits as 36 lower-case hex digits (alphanumeric, like Kafka's).
    pub fn nonce(&mut self) -> String {
        self.bytes()[..18]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the SCRAM math matches RFC 7677's published SCRAM-SHA-256 example, so the
    // broker interoperates with every other implementation. Method: run the client side
    // with the RFC's nonce against its server-first message and compare every message,
    // then the server side against the client's final message.
    #[test]
    fn rfc7677_example() {
        let (mut client, first) = ScramClient::start(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.server_first(server_first).expect("server-first");
        assert_eq!(
            String::from_utf8(client_final.clone()).expect("utf-8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        client.server_final(server_final).expect("server signature");

        let salt = decode_base64("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let parsed = ClientFirst::parse(&first).expect("client-first");
        let (server, sent) = ScramServer::start(
            ScramMechanism::Sha256,
            parsed,
            credential,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        );
        assert_eq!(&sent[..], &server_first[..]);
        assert_eq!(server.finish(&client_final).expect("proof"), server_final);
    }

    // Goal: a wrong password is refused by the server, and a server without the
    // credential is caught by the client. Method: SHA-512 exchanges with mismatched keys.
    #[test]
    fn wrong_password_and_wrong_server_fail() {
        let mechanism = ScramMechanism::Sha512;
        let stored = ScramCredential::from_password(mechanism, "right", b"salt", 4096);
        let (mut client, first) = ScramClient::start(mechanism, "alice", "wrong", "abc");
        let parsed = ClientFirst::parse(&first).expect("client-first");
        let (server, server_first) = ScramServer::start(mechanism, parsed, stored, "xyz");
        let client_final = client.server_first(&server_first).expect("answer");
        assert_eq!(server.finish(&client_final), Err(SaslError::BadCredentials));
        assert_eq!(
            client.server_final(b"v=AAAA"),
            Err(SaslError::BadServerSignature)
        );
    }

    // Goal: a client holding only the keys a verified exchange revealed authenticates as
    // the user to another server with the same credential (the gateway acting upstream),
    // and checks that server's signature; keys of another password are refused. Method:
    // a password exchange through `finish_keys`, then a `from_keys` exchange with a second
    // server, for both hashes.
    #[test]
    fn client_from_revealed_keys() {
        for mechanism in ScramMechanism::ALL {
            let stored = ScramCredential::from_password(mechanism, "pw", b"salty", 4096);
            let (mut client, first) = ScramClient::start(mechanism, "ann", "pw", "c1");
            let parsed = ClientFirst::parse(&first).expect("client-first");
            let (server, server_first) =
                ScramServer::start(mechanism, parsed, stored.clone(), "s1");
            let client_final = client.server_first(&server_first).expect("final");
            let (server_final, keys) = server.finish_keys(&client_final).expect("verified");
            client
                .server_final(&server_final)
                .expect("server proves itself");
            let expected = ScramKeys::from_password(mechanism, "ann", "pw", b"salty", 4096);
            assert!(keys == expected, "revealed keys differ from the password's");
            assert!(!format!("{keys:?}").contains("key:"));

            let (mut upstream, first) = ScramClient::from_keys(keys, "c2");
            assert_eq!(first, b"n,,n=ann,r=c2");
            let parsed = ClientFirst::parse(&first).expect("client-first");
            let (server, server_first) =
                ScramServer::start(mechanism, parsed, stored.clone(), "s2");
            let client_final = upstream.server_first(&server_first).expect("final");
            let server_final = server.finish(&client_final).expect("keys authenticate");
            upstream
                .server_final(&server_final)
                .expect("signature checks");

            let wrong = ScramKeys::from_password(mechanism, "ann", "other", b"salty", 4096);
            let (mut upstream, first) = ScramClient::from_keys(wrong, "c3");
            let parsed = ClientFirst::parse(&first).expect("client-first");
            let (server, server_first) = ScramServer::start(mechanism, parsed, stored, "s3");
            let client_final = upstream.server_first(&server_first).expect("final");
            assert_eq!(server.finish(&client_final), Err(SaslError::BadCredentials));
        }
    }

    #[test]
    fn plain_messages() {
        let parsed = PlainMessage::parse(b"\0alice\0alice-secret").expect("plain");
        assert_eq!(
            (parsed.username.as_str(), parsed.password.as_str()),
            ("alice", "alice-secret")
        );
        assert!(PlainMessage::parse(b"alice\0alice\0pw").is_ok());
        assert!(matches!(
            PlainMessage::parse(b"bob\0alice\0pw"),
            Err(SaslError::Unsupported(_))
        ));
        for bad in [
            &b"alice\0pw"[..],
            b"\0\0pw",
            b"\0a\0",
            b"\0a\0b\0c",
            b"\xff\0a\0b",
        ] {
            assert!(
                matches!(PlainMessage::parse(bad), Err(SaslError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(!format!("{parsed:?}").contains("secret"));
    }

    #[test]
    fn saslnames_and_extensions() {
        let parsed = ClientFirst::parse(b"n,,n=a=2Cb=3Dc,r=xyz,tokenauth=true").expect("parse");
        assert_eq!(parsed.username, "a,b=c");
        assert_eq!(parsed.bare, "n=a=2Cb=3Dc,r=xyz,tokenauth=true");
        assert!(ClientFirst::parse(b"n,,n=a=2,r=x").is_err());
        assert!(matches!(
            ClientFirst::parse(b"p=tls-unique,,n=a,r=x"),
            Err(SaslError::Unsupported(_))
        ));
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    }
}
