//! The SASL keys: `sasl.enabled.mechanisms`, `connections.max.reauth.ms`,
//! `weir.sasl.authentication.timeout.ms` and their per-listener forms
//! `listener.name.<name>.sasl.enabled.mechanisms`,
//! `listener.name.<name>.connections.max.reauth.ms` and
//! `listener.name.<name>.<mechanism>.sasl.jaas.config` (PLAIN users in Kafka's
//! PlainLoginModule syntax; SCRAM users live in the metadata log, so a ScramLoginModule
//! entry is accepted and carries nothing); and the WebSocket gateway's
//! `weir.gateway.sasl.enabled.mechanisms` (empty: sessions do not authenticate) and
//! `weir.gateway.sasl.listener` (the SASL listener whose PLAIN users the gateway accepts;
//! by default the first SASL listener in `listeners`).
//!
//! Invariants:
//! - Only mechanisms Weir speaks are accepted (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); any
//!   other (GSSAPI, OAUTHBEARER) is refused naming the key.
//! - Per-listener keys must name a SASL listener that exists (checked in `resolve`).
//! - Passwords read from a JAAS config are never printed: [`SaslSettings`]'s `Debug`
//!   lists user names only, and errors name the key, not the value.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_wire::sasl::{SaslMechanism, ScramMechanism};

use super::{ConfigError, Input, Origin};
use crate::sasl::{SaslSettings, AUTHENTICATION_TIMEOUT_DEFAULT};

/// The SASL keys as read.
#[derive(Debug, Default)]
pub(super) struct SaslKeys {
    enabled: Option<Vec<SaslMechanism>>,
    reauth_ms: Option<u64>,
    timeout_ms: Option<u64>,
    /// Per-listener keys by lower-case listener name.
    per_listener: BTreeMap<String, (ListenerSaslKeys, Origin)>,
    /// `weir.gateway.sasl.enabled.mechanisms` (empty: off).
    gateway_enabled: Option<(Vec<SaslMechanism>, Origin)>,
    /// `weir.gateway.sasl.listener`.
    gateway_listener: Option<(String, Origin)>,
    /// `weir.http.authentication.method` is `BASIC` (true) or `NONE`.
    http_basic: Option<(bool, Origin)>,
    /// `weir.http.sasl.listener`.
    http_listener: Option<(String, Origin)>,
}

#[derive(Debug, Default)]
struct ListenerSaslKeys {
    enabled: Option<Vec<SaslMechanism>>,
    reauth_ms: Option<u64>,
    plain_users: Option<PlainUsers>,
}

/// `user_<name>="<password>"` entries, by user name.
#[derive(Default, Clone, PartialEq, Eq)]
struct PlainUsers(BTreeMap<String, String>);

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Longest `connections.max.reauth.ms` (a day); 0 turns re-authentication off.
const REAUTH_MS_MAX: i64 = 86_400_000;

impl SaslKeys {
    /// Take a broker-wide SASL key: `Ok(false)` when `input` is not one.
    pub(super) fn apply(&mut self, input: &Input<'_>) -> Result<bool, ConfigError> {
        match input.key {
            "sasl.enabled.mechanisms" => self.enabled = Some(mechanisms(input)?),
            "connections.max.reauth.ms" => {
                self.reauth_ms = Some(input.integer_in(0, REAUTH_MS_MAX)?);
            }
            "weir.sasl.authentication.timeout.ms" => {
                self.timeout_ms = Some(input.integer_in(1, 3_600_000)?);
            }
            "weir.gateway.sasl.enabled.mechanisms" => {
                let empty = match input.value {
                    toml::Value::Array(items) => items.is_empty(),
                    toml::Value::String(text) => text.trim().is_empty(),
                    _ => false,
                };
                let enabled = if empty {
                    Vec::new()
                } else {
                    mechanisms(input)?
                };
                self.gateway_enabled = Some((enabled, input.origin()));
            }
            "weir.gateway.sasl.listener" => {
                self.gateway_listener = Some((input.non_empty_string()?, input.origin()));
            }
            "weir.http.authentication.method" => {
                let basic = match input.string()?.trim().to_ascii_uppercase().as_str() {
                    "BASIC" => true,
                    "NONE" => false,
                    _ => return Err(input.invalid("expected NONE or BASIC")),
                };
                self.http_basic = Some((basic, input.origin()));
            }
            "weir.http.sasl.listener" => {
                self.http_listener = Some((input.non_empty_string()?, input.origin()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Take `listener.name.<listener>.<rest>`: `Ok(false)` when `rest` is not a SASL key.
    pub(super) fn apply_scoped(
        &mut self,
        listener: &str,
        rest: &str,
        input: &Input<'_>,
    ) -> Result<bool, ConfigError> {
        fn scope<'a>(
            keys: &'a mut SaslKeys,
            listener: &str,
            input: &Input<'_>,
        ) -> &'a mut ListenerSaslKeys {
            &mut (keys.per_listener)
                .entry(listener.to_ascii_lowercase())
                .or_insert_with(|| (ListenerSaslKeys::default(), input.origin()))
                .0
        }
        match rest {
            "sasl.enabled.mechanisms" => {
                scope(self, listener, input).enabled = Some(mechanisms(input)?)
            }
            "connections.max.reauth.ms" => {
                scope(self, listener, input).reauth_ms = Some(input.integer_in(0, REAUTH_MS_MAX)?);
            }
            "plain.sasl.jaas.config" => {
                let users = plain_users(input.string()?).map_err(|e| input.invalid(e))?;
                scope(self, listener, input).plain_users = Some(PlainUsers(users));
            }
            "scram-sha-256.sasl.jaas.config" | "scram-sha-512.sasl.jaas.config" => {
                // SCRAM users are records of the metadata log (`weir user add`); the
                // module line is accepted so Kafka configs load unchanged.
                let text = input.string()?;
                if !text.contains("ScramLoginModule") {
                    return Err(input.invalid(
                        "expected org.apache.kafka.common.security.scram.ScramLoginModule",
                    ));
                }
                scope(self, listener, input);
            }
            _ if rest.contains("sasl.") => {
                return Err(ConfigError::UnknownKey {
                    key: input.key.to_owned(),
                    file: input.file.to_owned(),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Per-listener keys naming none of `sasl_listeners` (lower-case names).
    pub(super) fn stray_listener(&self, sasl_listeners: &[String]) -> Option<(&str, &Origin)> {
        (self.per_listener.iter())
            .find(|(name, _)| !sasl_listeners.contains(name))
            .map(|(name, (_, origin))| (name.as_str(), origin))
    }

    /// The gateway's SASL settings, `None` when its sessions do not authenticate.
    /// `sasl_listeners` are the SASL listeners' lower-case names in `listeners` order: the
    /// gateway takes its PLAIN users from `weir.gateway.sasl.listener` or the first of them.
    pub(super) fn gateway_settings(
        &self,
        sasl_listeners: &[String],
    ) -> Result<Option<SaslSettings>, ConfigError> {
        let Some((mechanisms, origin)) = &self.gateway_enabled else {
            return Ok(None);
        };
        if mechanisms.is_empty() {
            return Ok(None);
        }
        let plain_users = self.plain_users_of(self.gateway_listener.as_ref(), sasl_listeners)?;
        if mechanisms.contains(&SaslMechanism::Plain) && plain_users.is_empty() {
            return Err(origin.invalid(
                "PLAIN needs users: name a SASL listener with a PlainLoginModule JAAS config \
                 in weir.gateway.sasl.listener",
            ));
        }
        Ok(Some(SaslSettings {
            mechanisms: mechanisms.clone(),
            plain_users,
            // Gateway sessions do not re-authenticate (the edge protocol has no
            // re-authentication): a session lives until its socket closes.
            reauth: None,
            authentication_timeout: self
                .timeout_ms
                .map_or(AUTHENTICATION_TIMEOUT_DEFAULT, Duration::from_millis),
        }))
    }

    /// The PLAIN users of the SASL listener `named` names (which must be one of
    /// `sasl_listeners`), or of the first SASL listener when none is named.
    fn plain_users_of(
        &self,
        named: Option<&(String, Origin)>,
        sasl_listeners: &[String],
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let listener = match named {
            Some((name, origin)) => {
                let lower = name.to_ascii_lowercase();
                if !sasl_listeners.contains(&lower) {
                    return Err(origin.invalid(format!("there is no SASL listener named {name}")));
                }
                Some(lower)
            }
            None => sasl_listeners.first().cloned(),
        };
        Ok(match &listener {
            Some(name) => self.settings(name).plain_users,
            None => BTreeMap::new(),
        })
    }

    /// How the HTTP services check Basic credentials, `None` when they take none
    /// (`weir.http.authentication.method = NONE`, the default): SCRAM-SHA-256/512 against
    /// the metadata log's credentials, and PLAIN against the users of the SASL listener
    /// `weir.http.sasl.listener` names (by default the first of `sasl_listeners`).
    pub(super) fn http_settings(
        &self,
        sasl_listeners: &[String],
    ) -> Result<Option<SaslSettings>, ConfigError> {
        if !matches!(self.http_basic, Some((true, _))) {
            return Ok(None);
        }
        let plain_users = self.plain_users_of(self.http_listener.as_ref(), sasl_listeners)?;
        let mut mechanisms = Vec::new();
        if !plain_users.is_empty() {
            mechanisms.push(SaslMechanism::Plain);
        }
        mechanisms
            .extend([ScramMechanism::Sha256, ScramMechanism::Sha512].map(SaslMechanism::Scram));
        Ok(Some(SaslSettings {
            mechanisms,
            plain_users,
            reauth: None,
            authentication_timeout: self
                .timeout_ms
                .map_or(AUTHENTICATION_TIMEOUT_DEFAULT, Duration::from_millis),
        }))
    }

    /// The settings of the SASL listener `name`.
    pub(super) fn settings(&self, name: &str) -> SaslSettings {
        let scoped = self.per_listener.get(&name.to_ascii_lowercase());
        let scoped = scoped.map(|(keys, _)| keys);
        let mechanisms = (scoped.and_then(|k| k.enabled.clone()))
            .or_else(|| self.enabled.clone())
            .unwrap_or_else(|| SaslMechanism::ALL.to_vec());
        let reauth_ms = (scoped.and_then(|k| k.reauth_ms))
            .or(self.reauth_ms)
            .unwrap_or(0);
        let plain_users = (scoped.and_then(|k| k.plain_users.clone()))
            .map(|users| users.0)
            .unwrap_or_default();
        SaslSettings {
            mechanisms,
            plain_users,
            reauth: (reauth_ms > 0).then(|| Duration::from_millis(reauth_ms)),
            authentication_timeout: self
                .timeout_ms
                .map_or(AUTHENTICATION_TIMEOUT_DEFAULT, Duration::from_millis),
        }
    }
}

/// A mechanism list: comma-separated names (or a TOML array), each one Weir speaks.
fn mechanisms(input: &Input<'_>) -> Result<Vec<SaslMechanism>, ConfigError> {
    let text = match input.value {
        toml::Value::Array(items) => {
            let words: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
            (words.ok_or_else(|| input.invalid("expected strings"))?).join(",")
        }
        _ => input.string()?.to_owned(),
    };
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let Some(mechanism) = SaslMechanism::parse(word) else {
            return Err(input.invalid(format!(
                "\"{word}\" is not supported: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are"
            )));
        };
        if !out.contains(&mechanism) {
            out.push(mechanism);
        }
    }
    if out.is_empty() {
        return Err(input.invalid("name at least one mechanism"));
    }
    Ok(out)
}

/// The users of a PlainLoginModule JAAS entry: `user_<name>="<password>"` options.
/// Other options (`username`, `password`: the broker's own client login) are ignored.
/// Errors never quote the text (it holds passwords).
fn plain_users(text: &str) -> Result<BTreeMap<String, String>, String> {
    let (module, options) = jaas_entry(text)?;
    if module != PLAIN_LOGIN_MODULE {
        return Err(format!(
            "the login module is {module}; PLAIN users need {PLAIN_LOGIN_MODULE}"
        ));
    }
    let mut users = BTreeMap::new();
    for (key, value) in options {
        if let Some(user) = key.strip_prefix("user_") {
            if user.is_empty() {
                return Err("user_ needs a user name after it".into());
            }
            if users.insert(user.to_owned(), value).is_some() {
                return Err(format!("user {user} is listed twice"));
            }
        }
    }
    Ok(users)
}

/// Kafka's PLAIN login module.
pub(super) const PLAIN_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Kafka's SCRAM login module.
pub(super) const SCRAM_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule";

/// One JAAS entry, `MODULE FLAG key="value" ...;`: the module and its options in order.
/// Errors never quote the text (it holds passwords).
pub(super) fn jaas_entry(text: &str) -> Result<(String, Vec<(String, String)>), String> {
    let text = text.trim();
    let body = text
        .strip_suffix(';')
        .ok_or("a JAAS entry ends with ';'")?
        .trim();
    let (module, rest) = body
        .split_once(char::is_whitespace)
        .ok_or("expected MODULE FLAG options")?;
    let rest = rest.trim_start();
    let (flag, mut rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !["required", "requisite", "sufficient", "optional"].contains(&flag) {
        return Err("the control flag must be required, requisite, sufficient or optional".into());
    }
    let mut options = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=').ok_or("expected key=value options")?;
        let key = key.trim();
        let after = after.trim_start();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or("an option's quoted value is not closed")?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        options.push((key.to_owned(), value.to_owned()));
        rest = after;
    }
    Ok((module.to_owned(), options))
}

#[cfg(test)]
mod tests {
    use weir_wire::sasl::ScramMechanism;

    use super::*;

    // Goal: Kafka's PlainLoginModule syntax gives the users, and nothing in an error
    // repeats a password. Method: parse accepted and refused entries.
    #[test]
    fn jaas_plain_users() {
        let users = plain_users(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"admin\" password=\"admin-secret\"\n user_admin=\"admin-secret\" \
             user_alice=\"alice secret\";",
        )
        .expect("parses");
        let names: Vec<&str> = users.keys().map(String::as_str).collect();
        assert_eq!(names, ["admin", "alice"]);
        assert_eq!(users["alice"], "alice secret");
        for bad in [
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"pw\"",
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "org.apache.kafka.common.security.plain.PlainLoginModule always user_a=\"pw\";",
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"pw;",
        ] {
            let error = plain_users(bad).expect_err(bad);
            assert!(!error.contains("pw"), "{error}");
        }
    }

    // Goal: the gateway's SASL keys: empty or absent is off; a list takes the PLAIN users of
    // the named (or first) SASL listener; PLAIN without users and a listener that is not a
    // SASL listener are refused naming the key. Method: parse small configs.
    #[test]
    fn gateway_sasl_keys() {
        use crate::config::tests::{parse, refusal};
        let listeners = "listeners = \"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,\
                         B://127.0.0.1:0\"\n\
                         \"listener.security.protocol.map\" = \"PLAINTEXT:PLAINTEXT,\
                         SASL_PLAINTEXT:SASL_PLAINTEXT,B:SASL_PLAINTEXT\"\n\
                         \"listener.name.sasl_plaintext.plain.sasl.jaas.config\" = \"org.\
                         apache.kafka.common.security.plain.PlainLoginModule required \
                         user_a=\\\"x\\\";\"\n\
                         \"listener.name.b.plain.sasl.jaas.config\" = \"org.apache.kafka.\
                         common.security.plain.PlainLoginModule required user_b=\\\"y\\\";\"\n";
        assert_eq!(parse(listeners).gateway_sasl, None);
        let off = format!("{listeners}\"weir.gateway.sasl.enabled.mechanisms\" = \"\"\n");
        assert_eq!(parse(&off).gateway_sasl, None);
        let on = format!(
            "{listeners}\"weir.gateway.sasl.enabled.mechanisms\" = \"PLAIN,SCRAM-SHA-256\"\n"
        );
        let settings = parse(&on).gateway_sasl.expect("on");
        assert_eq!(
            settings.mechanisms,
            [
                SaslMechanism::Plain,
                SaslMechanism::Scram(ScramMechanism::Sha256)
            ]
        );
        assert!(settings.plain_users.contains_key("a"), "{settings:?}");
        assert_eq!(settings.reauth, None);
        let named = format!("{on}\"weir.gateway.sasl.listener\" = \"B\"\n");
        let settings = parse(&named).gateway_sasl.expect("on");
        assert!(settings.plain_users.contains_key("b"), "{settings:?}");
        let stray = format!("{on}\"weir.gateway.sasl.listener\" = \"PLAINTEXT\"\n");
        assert!(refusal(&stray).contains("weir.gateway.sasl.listener"));
        let no_users = "\"weir.gateway.sasl.enabled.mechanisms\" = \"PLAIN\"\n";
        assert!(refusal(no_users).contains("weir.gateway.sasl.enabled.mechanisms"));
        let scram_only = "\"weir.gateway.sasl.enabled.mechanisms\" = [\"SCRAM-SHA-512\"]\n";
        assert!(parse(scram_only).gateway_sasl.is_some());
        let bad = "\"weir.gateway.sasl.enabled.mechanisms\" = \"GSSAPI\"\n";
        assert!(refusal(bad).contains("GSSAPI"));
    }

    // Goal: the HTTP services' Basic authentication: off by default and with NONE; BASIC
    // checks SCRAM users always and PLAIN users of the named (or first) SASL listener when
    // it has any; a listener that is not a SASL listener and an unknown method are refused
    // naming the key. Method: parse small configs.
    #[test]
    fn http_authentication_keys() {
        use crate::config::tests::{parse, refusal};
        let listeners = "listeners = \"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,\
                         B://127.0.0.1:0\"\n\
                         \"listener.security.protocol.map\" = \"PLAINTEXT:PLAINTEXT,\
                         SASL_PLAINTEXT:SASL_PLAINTEXT,B:SASL_PLAINTEXT\"\n\
                         \"listener.name.b.plain.sasl.jaas.config\" = \"org.apache.kafka.\
                         common.security.plain.PlainLoginModule required user_b=\\\"y\\\";\"\n";
        assert_eq!(parse(listeners).http_sasl, None);
        let none = format!("{listeners}\"weir.http.authentication.method\" = \"NONE\"\n");
        assert_eq!(parse(&none).http_sasl, None);
        let scram = [ScramMechanism::Sha256, ScramMechanism::Sha512].map(SaslMechanism::Scram);
        // The first SASL listener has no PLAIN users: SCRAM only.
        let basic = format!("{listeners}\"weir.http.authentication.method\" = \"basic\"\n");
        let settings = parse(&basic).http_sasl.expect("on");
        assert_eq!(settings.mechanisms, scram);
        let named = format!("{basic}\"weir.http.sasl.listener\" = \"B\"\n");
        let settings = parse(&named).http_sasl.expect("on");
        assert_eq!(settings.mechanisms[0], SaslMechanism::Plain);
        assert_eq!(&settings.mechanisms[1..], scram);
        assert!(settings.plain_users.contains_key("b"), "{settings:?}");
        let stray = format!("{basic}\"weir.http.sasl.listener\" = \"PLAINTEXT\"\n");
        assert!(refusal(&stray).contains("weir.http.sasl.listener"));
        let bad = "\"weir.http.authentication.method\" = \"DIGEST\"\n";
        assert!(refusal(bad).contains("weir.http.authentication.method"));
    }
}
