//! The schema registry's client settings for `_schemas`, under Confluent Schema
//! Registry's names: `kafkastore.security.protocol`, `kafkastore.sasl.mechanism` and
//! `kafkastore.sasl.jaas.config` (a PlainLoginModule or ScramLoginModule entry with
//! `username` and `password`).
//!
//! The registry reaches the `_schemas` leader and the transaction coordinator on other
//! brokers at the endpoints the cluster's metadata names: the registered (inter-broker)
//! listener. So the protocol must be that listener's (it defaults to it), and a SASL
//! credential is only meaningful when that listener is SASL.
//!
//! Invariants: a password is never printed ([`RegistryLogin`]'s `Debug` shows the user;
//! errors name the key, never the value).

use weir_wire::sasl::SaslMechanism;

use super::sasl::{jaas_entry, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE};
use super::{ConfigError, Input, Origin};
use crate::listener::SecurityProtocol;

/// The `kafkastore.*` keys as read.
#[derive(Debug, Default)]
pub(super) struct KafkaStoreKeys {
    protocol: Option<(SecurityProtocol, Origin)>,
    mechanism: Option<(SaslMechanism, Origin)>,
    /// The module and the `username` / `password` options.
    jaas: Option<(Jaas, Origin)>,
}

struct Jaas {
    module: String,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Jaas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jaas")
            .field("module", &self.module)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How the schema registry logs in to brokers: `User:<username>` with `mechanism`.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    /// The user (the registry's principal is `User:<username>`).
    pub username: String,
    /// The password (never printed).
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl KafkaStoreKeys {
    /// Take a `kafkastore.*` key: `Ok(false)` when `input` is not one.
    pub(super) fn apply(&mut self, input: &Input<'_>) -> Result<bool, ConfigError> {
        match input.key {
            "kafkastore.security.protocol" => {
                let text = input.string()?;
                let protocol = SecurityProtocol::parse(text).ok_or_else(|| {
                    input.invalid("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
                })?;
                self.protocol = Some((protocol, input.origin()));
            }
            "kafkastore.sasl.mechanism" => {
                let text = input.string()?.to_ascii_uppercase();
                let mechanism = SaslMechanism::parse(&text).ok_or_else(|| {
                    input.invalid("expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                })?;
                self.mechanism = Some((mechanism, input.origin()));
            }
            "kafkastore.sasl.jaas.config" => {
                let (module, options) =
                    jaas_entry(input.string()?).map_err(|e| input.invalid(e))?;
                let option = |name: &str| {
                    (options.iter())
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.clone())
                };
                let jaas = Jaas {
                    username: option("username"),
                    password: option("password"),
                    module,
                };
                self.jaas = Some((jaas, input.origin()));
            }
            key if key.starts_with("kafkastore.") => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                    file: input.file.to_owned(),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The registry's login, checked against the registered listener's `registered`
    /// protocol: `None` when it does not log in.
    pub(super) fn resolve(
        self,
        registered: SecurityProtocol,
        listener: &str,
    ) -> Result<Option<RegistryLogin>, ConfigError> {
        if let Some((protocol, origin)) = &self.protocol {
            if *protocol != registered {
                return Err(origin.invalid(format!(
                    "{} is not the protocol of the registered listener {listener} ({}): the \
                     schema registry reaches other brokers there",
                    protocol.name(),
                    registered.name()
                )));
            }
        }
        let Some((jaas, origin)) = self.jaas else {
            if let Some((_, origin)) = &self.mechanism {
                return Err(origin.invalid("needs kafkastore.sasl.jaas.config"));
            }
            return Ok(None);
        };
        if !registered.uses_sasl() {
            return Err(origin.invalid(format!(
                "the registered listener {listener} is {}, not SASL: the schema registry \
                 has nothing to log in to",
                registered.name()
            )));
        }
        let mechanism = match (&self.mechanism, jaas.module.as_str()) {
            (None | Some((SaslMechanism::Plain, _)), PLAIN_LOGIN_MODULE) => SaslMechanism::Plain,
            (Some((SaslMechanism::Scram(scram), _)), SCRAM_LOGIN_MODULE) => {
                SaslMechanism::Scram(*scram)
            }
            (None, SCRAM_LOGIN_MODULE) => {
                return Err(origin.invalid(
                    "a ScramLoginModule needs kafkastore.sasl.mechanism = SCRAM-SHA-256 or \
                     SCRAM-SHA-512",
                ))
            }
            (_, module) => {
                let mechanism = self.mechanism.as_ref().map_or("PLAIN", |(m, _)| m.name());
                let wanted = if mechanism == "PLAIN" {
                    PLAIN_LOGIN_MODULE
                } else {
                    SCRAM_LOGIN_MODULE
                };
                return Err(origin.invalid(format!(
                    "the login module is {module}; kafkastore.sasl.mechanism {mechanism} needs \
                     {wanted}"
                )));
            }
        };
        let (Some(username), Some(password)) = (jaas.username, jaas.password) else {
            return Err(origin.invalid("expected username=\"...\" password=\"...\" options"));
        };
        if username.is_empty() {
            return Err(origin.invalid("username must not be empty"));
        }
        Ok(Some(RegistryLogin {
            mechanism,
            username,
            password,
        }))
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::sasl::ScramMechanism;

    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Result<KafkaStoreKeys, ConfigError> {
        let mut keys = KafkaStoreKeys::default();
        for (key, value) in pairs {
            let value = toml::Value::String((*value).to_owned());
            let input = Input {
                key,
                value: &value,
                file: "weir.toml",
            };
            assert!(keys.apply(&input)?, "{key} is a kafkastore key");
        }
        Ok(keys)
    }

    /// Keys and values given together.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                         username=\"registry\" password=\"s3cret\";";
    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                         username=\"registry\" password=\"s3cret\";";

    // Goal: Confluent's kafkastore.* keys give the registry's login, checked against the
    // registered listener, and no error or Debug repeats the password. Method: resolve
    // accepted and refused combinations.
    #[test]
    fn kafkastore_keys_give_the_login() {
        let sasl = SecurityProtocol::SaslPlaintext;
        let login = keys(&[
            ("kafkastore.security.protocol", "SASL_PLAINTEXT"),
            ("kafkastore.sasl.mechanism", "SCRAM-SHA-256"),
            ("kafkastore.sasl.jaas.config", SCRAM),
        ])
        .and_then(|k| k.resolve(sasl, "SASL_PLAINTEXT"))
        .expect("accepted")
        .expect("a login");
        assert_eq!(
            login.mechanism,
            SaslMechanism::Scram(ScramMechanism::Sha256)
        );
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("registry", "s3cret")
        );
        assert!(!format!("{login:?}").contains("s3cret"));

        let plain = keys(&[("kafkastore.sasl.jaas.config", PLAIN)])
            .and_then(|k| k.resolve(SecurityProtocol::SaslSsl, "SASL_SSL"))
            .expect("accepted")
            .expect("a login");
        assert_eq!(plain.mechanism, SaslMechanism::Plain);
        let none = keys(&[]).and_then(|k| k.resolve(sasl, "SASL_PLAINTEXT"));
        assert_eq!(none.expect("accepted"), None);

        let refused: [(Pairs, SecurityProtocol, &str); 6] = [
            (
                &[("kafkastore.security.protocol", "SSL")],
                sasl,
                "registered listener",
            ),
            (
                &[("kafkastore.sasl.jaas.config", PLAIN)],
                SecurityProtocol::Plaintext,
                "not SASL",
            ),
            (
                &[("kafkastore.sasl.jaas.config", SCRAM)],
                sasl,
                "needs kafkastore.sasl.mechanism",
            ),
            (
                &[
                    ("kafkastore.sasl.mechanism", "SCRAM-SHA-512"),
                    ("kafkastore.sasl.jaas.config", PLAIN),
                ],
                sasl,
                "needs org.apache.kafka.common.security.scram.ScramLoginModule",
            ),
            (
                &[("kafkastore.sasl.mechanism", "PLAIN")],
                sasl,
                "needs kafkastore.sasl.jaas.config",
            ),
            (
                &[(
                    "kafkastore.sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     password=\"s3cret\";",
                )],
                sasl,
                "username",
            ),
        ];
        for (pairs, registered, expected) in refused {
            let error = keys(pairs)
                .and_then(|k| k.resolve(registered, "L"))
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
        for (key, value) in [
            ("kafkastore.sasl.mechanism", "GSSAPI"),
            ("kafkastore.security.protocol", "TLS"),
            (
                "kafkastore.sasl.jaas.config",
                "no semicolon password=\"s3cret\"",
            ),
        ] {
            let error = keys(&[(key, value)]).expect_err("refused").to_string();
            assert!(error.contains(key) && !error.contains("s3cret"), "{error}");
        }
        let unknown = keys(&[("kafkastore.bootstrap.servers", "x:1")]).expect_err("unknown");
        assert!(
            matches!(unknown, ConfigError::UnknownKey { .. }),
            "{unknown}"
        );
    }
}
