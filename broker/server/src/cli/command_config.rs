//! `--command-config FILE`: the client properties Kafka's tools take (librdkafka's and
//! the Java client's names), applied to weir-client's settings.
//!
//! Understood: `security.protocol` (PLAINTEXT, SASL_PLAINTEXT), `sasl.mechanism` (or
//! librdkafka's `sasl.mechanisms`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `sasl.username`,
//! `sasl.password`, `client.id`. TLS (`SSL`, `SASL_SSL`, `ssl.*`) is refused with a clear
//! message: weir's client commands do not speak TLS yet. Other keys are ignored with a
//! warning, as librdkafka warns about unknown properties. A password is never echoed.

use anyhow::{bail, Context};
use weir_client::{ClientConfig, SaslCredentials};
use weir_wire::sasl::SaslMechanism;

/// Apply the properties in `text` to `config`.
pub fn apply(text: &str, config: &mut ClientConfig) -> anyhow::Result<()> {
    let mut protocol = "PLAINTEXT".to_owned();
    let mut mechanism = None;
    let (mut username, mut password) = (None, None);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .with_context(|| format!("line {}: expected key=value", number + 1))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "security.protocol" => protocol = value.to_ascii_uppercase(),
            "sasl.mechanism" | "sasl.mechanisms" => {
                let parsed = SaslMechanism::parse(&value.to_ascii_uppercase());
                mechanism = Some(parsed.with_context(|| {
                    format!("sasl.mechanism {value}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                })?);
            }
            "sasl.username" => username = Some(value.to_owned()),
            "sasl.password" => password = Some(value.to_owned()),
            "client.id" => config.client_id = value.to_owned(),
            key if key.starts_with("ssl.") => {
                bail!("{key}: weir's client commands do not speak TLS yet")
            }
            other => eprintln!("warning: --command-config property {other} is ignored"),
        }
    }
    match protocol.as_str() {
        "PLAINTEXT" => {
            if mechanism.is_some() || username.is_some() {
                bail!("sasl.* properties need security.protocol=SASL_PLAINTEXT");
            }
        }
        "SASL_PLAINTEXT" => {
            let (Some(username), Some(password)) = (username, password) else {
                bail!("SASL_PLAINTEXT needs sasl.username and sasl.password");
            };
            config.sasl = Some(SaslCredentials {
                mechanism: mechanism.unwrap_or(SaslMechanism::Plain),
                username,
                password,
            });
        }
        "SSL" | "SASL_SSL" => {
            bail!("security.protocol={protocol}: weir's client commands do not speak TLS yet")
        }
        other => bail!("security.protocol {other}: PLAINTEXT or SASL_PLAINTEXT"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: librdkafka-style files set SASL; TLS and half-set SASL are refused, and no
    // error repeats the password. Method: apply small files.
    #[test]
    fn properties() {
        let mut config = ClientConfig::default();
        let text = "# admin\nsecurity.protocol=sasl_plaintext\nsasl.mechanisms=SCRAM-SHA-512\n\
                    sasl.username=admin\nsasl.password=admin-secret\n";
        apply(text, &mut config).expect("valid");
        let sasl = config.sasl.expect("SASL");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!(sasl.username, "admin");
        for bad in [
            "security.protocol=SASL_SSL\nsasl.username=a\nsasl.password=pw-secret",
            "security.protocol=SASL_PLAINTEXT\nsasl.username=a",
            "sasl.username=a\nsasl.password=pw-secret",
            "ssl.ca.location=/ca.pem",
        ] {
            let error = apply(bad, &mut ClientConfig::default()).expect_err(bad);
            assert!(!format!("{error:#}").contains("pw-secret"), "{error:#}");
        }
    }
}
