//! `--command-config FILE`: the client properties Kafka's tools take (librdkafka's and
//! the Java client's names), applied to weir-client's settings.
//!
//! Understood: `security.protocol` (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL),
//! `sasl.mechanism` (or librdkafka's `sasl.mechanisms`: PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), `sasl.username`, `sasl.password`, `client.id`, and for TLS:
//! `ssl.ca.location` (or Java's `ssl.truststore.location` with `ssl.truststore.type=PEM`),
//! `ssl.certificate.location` + `ssl.key.location` (or Java's `ssl.keystore.location`, one
//! PEM file with the key and the chain) for a client certificate, and
//! `ssl.endpoint.identification.algorithm` (`https`, the default, checks the broker's host
//! name; `none` or empty skips only that check). Other keys are ignored with a warning, as
//! librdkafka warns about unknown properties. A password is never echoed.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use weir_client::{ClientConfig, ClientTls, SaslCredentials, TlsIdentity};
use weir_wire::sasl::SaslMechanism;

/// Bound on a PEM file read for TLS; real ones are a few KiB.
const PEM_FILE_BYTES_MAX: u64 = 1 << 20;

/// The TLS properties of a file, as written (no file read yet).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsProperties {
    ca: Option<PathBuf>,
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    /// Java's PEM keystore: the key and the chain in one file.
    keystore: Option<PathBuf>,
    verify_hostname: bool,
    /// Any `ssl.*` key was set.
    any: bool,
}

/// Apply the properties in `text` to `config`, reading the TLS files they name.
pub fn apply(text: &str, config: &mut ClientConfig) -> anyhow::Result<()> {
    let mut protocol = "PLAINTEXT".to_owned();
    let mut mechanism = None;
    let (mut username, mut password) = (None, None);
    let mut tls = TlsProperties {
        verify_hostname: true,
        ..TlsProperties::default()
    };
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
                tls.any = true;
                ssl_property(key, value, &mut tls)?;
            }
            other => eprintln!("warning: --command-config property {other} is ignored"),
        }
    }
    let sasl = match protocol.as_str() {
        "PLAINTEXT" | "SSL" => {
            if mechanism.is_some() || username.is_some() {
                bail!("sasl.* properties need security.protocol=SASL_PLAINTEXT or SASL_SSL");
            }
            None
        }
        "SASL_PLAINTEXT" | "SASL_SSL" => {
            let (Some(username), Some(password)) = (username, password) else {
                bail!("{protocol} needs sasl.username and sasl.password");
            };
            Some(SaslCredentials {
                mechanism: mechanism.unwrap_or(SaslMechanism::Plain),
                username,
                password,
            })
        }
        other => bail!("security.protocol {other}: PLAINTEXT, SASL_PLAINTEXT, SSL or SASL_SSL"),
    };
    let uses_tls = matches!(protocol.as_str(), "SSL" | "SASL_SSL");
    if tls.any && !uses_tls {
        bail!("ssl.* properties need security.protocol=SSL or SASL_SSL");
    }
    config.sasl = sasl;
    if uses_tls {
        config.tls = Some(load_tls(&protocol, &tls)?);
    }
    Ok(())
}

/// One `ssl.*` property into `tls`.
fn ssl_property(key: &str, value: &str, tls: &mut TlsProperties) -> anyhow::Result<()> {
    match key {
        "ssl.ca.location" | "ssl.truststore.location" => tls.ca = Some(value.into()),
        "ssl.certificate.location" => tls.certificate = Some(value.into()),
        "ssl.key.location" => tls.key = Some(value.into()),
        "ssl.keystore.location" => tls.keystore = Some(value.into()),
        "ssl.keystore.type" | "ssl.truststore.type" => {
            if !value.eq_ignore_ascii_case("PEM") {
                bail!(
                    "{key}={value}: only PEM files are supported (convert JKS/PKCS12 with \
                       keytool/openssl)"
                );
            }
        }
        "ssl.endpoint.identification.algorithm" => {
            tls.verify_hostname = match value.to_ascii_lowercase().as_str() {
                "https" => true,
                "none" | "" => false,
                _ => bail!("{key}={value}: https or none"),
            };
        }
        "ssl.key.password" | "ssl.keystore.password" if !value.is_empty() => {
            bail!("{key}: encrypted private keys are not supported; use an unencrypted PEM key")
        }
        other => eprintln!("warning: --command-config property {other} is ignored"),
    }
    Ok(())
}

/// Read the files `tls` names and build the client's TLS config.
fn load_tls(protocol: &str, tls: &TlsProperties) -> anyhow::Result<ClientTls> {
    let Some(ca) = &tls.ca else {
        bail!(
            "security.protocol={protocol} needs ssl.ca.location (a PEM file with the CA that \
             signed the brokers' certificates); weir has no built-in root certificates"
        );
    };
    let ca_pem = read_pem("ssl.ca.location", ca)?;
    let identity = match (&tls.certificate, &tls.key, &tls.keystore) {
        (None, None, None) => None,
        (Some(certificate), Some(key), None) => Some((
            read_pem("ssl.certificate.location", certificate)?,
            read_pem("ssl.key.location", key)?,
        )),
        (None, None, Some(keystore)) => {
            let both = read_pem("ssl.keystore.location", keystore)?;
            Some((both.clone(), both))
        }
        (_, _, Some(_)) => {
            bail!("set ssl.keystore.location or ssl.certificate.location, not both")
        }
        _ => bail!("ssl.certificate.location and ssl.key.location go together"),
    };
    let identity = identity.as_ref().map(|(chain, key)| TlsIdentity {
        chain_pem: chain,
        key_pem: key,
    });
    Ok(ClientTls::new(&ca_pem, identity, tls.verify_hostname)?)
}

fn read_pem(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells "too large" from "exactly at the bound".
    file.take(PEM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        bail!(
            "{what} {} is larger than {PEM_FILE_BYTES_MAX} bytes",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: librdkafka-style files set SASL; half-set SASL, ssl.* without TLS, TLS without a
    // CA and encrypted keys are refused, and no error repeats the password. Method: apply
    // small files.
    #[test]
    fn properties() {
        let mut config = ClientConfig::default();
        let text = "# admin\nsecurity.protocol=sasl_plaintext\nsasl.mechanisms=SCRAM-SHA-512\n\
                    sasl.username=admin\nsasl.password=admin-secret\n";
        apply(text, &mut config).expect("valid");
        let sasl = config.sasl.expect("SASL");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!(sasl.username, "admin");
        assert!(config.tls.is_none());
        for bad in [
            "security.protocol=SASL_SSL\nsasl.username=a\nsasl.password=pw-secret",
            "security.protocol=SSL",
            "security.protocol=SSL\nssl.ca.location=/nonexistent/ca.pem",
            "security.protocol=SSL\nssl.ca.location=/ca.pem\nssl.key.location=/k.pem",
            "security.protocol=SSL\nssl.ca.location=/ca.pem\nssl.key.password=pw-secret",
            "security.protocol=SSL\nssl.ca.location=/ca.pem\nssl.keystore.type=JKS",
            "security.protocol=SASL_PLAINTEXT\nsasl.username=a",
            "sasl.username=a\nsasl.password=pw-secret",
            "ssl.ca.location=/ca.pem",
            "security.protocol=TLS",
        ] {
            let error = apply(bad, &mut ClientConfig::default()).expect_err(bad);
            assert!(!format!("{error:#}").contains("pw-secret"), "{error:#}");
        }
    }

    // Goal: the TLS keys map to their meaning (Java and librdkafka names alike). Method:
    // feed each key to the parser and compare the collected properties.
    #[test]
    fn ssl_keys() {
        let mut tls = TlsProperties::default();
        for (key, value) in [
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.truststore.type", "pem"),
            ("ssl.keystore.location", "/client.pem"),
            ("ssl.endpoint.identification.algorithm", "none"),
            ("ssl.key.password", ""),
        ] {
            ssl_property(key, value, &mut tls).expect(key);
        }
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(tls.keystore.as_deref(), Some(Path::new("/client.pem")));
        assert!(!tls.verify_hostname);
        ssl_property("ssl.endpoint.identification.algorithm", "HTTPS", &mut tls).expect("https");
        assert!(tls.verify_hostname);
        assert!(ssl_property("ssl.endpoint.identification.algorithm", "x", &mut tls).is_err());
    }
}
