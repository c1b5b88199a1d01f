//! The listener and TLS keys: `listeners`, `advertised.listeners`,
//! `listener.security.protocol.map`, `inter.broker.listener.name`,
//! `controller.listener.names`, `ssl.*`, `listener.name.<name>.ssl.*` and Weir's
//! `weir.gateway.ssl.enable`, `weir.metrics.ssl.enable`, `weir.ssl.*`.
//!
//! Keys are collected first ([`SecurityKeys::apply`]) and checked together at the end
//! ([`SecurityKeys::resolve`]), because they refer to each other by listener name.
//!
//! Invariants:
//! - Every listener has exactly one security protocol: from the map, or its own name when
//!   that is a protocol's name (`SSL://...`); an unnamed `host:port` is PLAINTEXT.
//! - Listener names and bound ports (other than 0) are unique.
//! - A TLS listener without a keystore, a SASL listener, a `listener.name.<name>.ssl.*`
//!   for a listener that does not exist, and a keystore set two ways are refused with the
//!   key that is wrong.
//! - An SSL controller listener (peer links) has a keystore and a truststore and requires
//!   client certificates unless its own `listener.name.<name>.ssl.client.auth` says
//!   otherwise (the broker-wide `ssl.client.auth` never weakens it); a SASL one is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{is_wildcard, parse_host_port, ConfigError, HostPort, Input, Origin};
use crate::listener::{ExtraListener, ListenerKind, ListenerSet, SecurityProtocol};
use crate::ssl_principal::PrincipalMapper;
use crate::tls::{ClientAuth, Keystore, PeerTlsSettings, TlsSettings, TlsVersions, Truststore};

/// Why a SASL controller listener is refused for now.
const SASL_NOT_YET: &str = "SASL between brokers is not supported; map the controller \
                            listener to SSL (mutual TLS) or PLAINTEXT";

/// The listener and TLS keys as read, before they are checked against each other.
#[derive(Debug, Default)]
pub(super) struct SecurityKeys {
    listeners: Option<(Vec<Entry>, Origin)>,
    advertised: Option<(Vec<Entry>, Origin)>,
    protocol_map: Option<(Vec<(String, SecurityProtocol)>, Origin)>,
    inter_broker: Option<(String, Origin)>,
    controller_names: Option<(Vec<String>, Origin)>,
    ssl: SslKeys,
    /// `listener.name.<name>.ssl.*`, by lower-case listener name (Kafka's spelling).
    per_listener: BTreeMap<String, (SslKeys, Origin)>,
    gateway_ssl: Option<(bool, Origin)>,
    http_ssl: Option<(bool, Origin)>,
    metrics_ssl: Option<(bool, Origin)>,
    handshake_timeout_ms: Option<u64>,
    reload_interval_ms: Option<u64>,
    /// `sasl.*`, `connections.max.reauth.ms` and their per-listener forms.
    sasl: super::sasl::SaslKeys,
    /// `kafkastore.*`: the schema registry's login.
    kafkastore: super::kafkastore::KafkaStoreKeys,
}

/// One `NAME://host:port` (or bare `host:port`) of a listener list.
#[derive(Debug, Clone)]
struct Entry {
    name: Option<String>,
    address: HostPort,
}

/// The `ssl.*` keys of one scope (broker-wide, or one listener's).
#[derive(Debug, Default, Clone)]
struct SslKeys {
    keystore_location: Option<(PathBuf, Origin)>,
    keystore_chain: Option<(String, Origin)>,
    keystore_key: Option<(String, Origin)>,
    truststore_location: Option<(PathBuf, Origin)>,
    truststore_certificates: Option<(String, Origin)>,
    client_auth: Option<ClientAuth>,
    versions: Option<TlsVersions>,
    /// `ssl.endpoint.identification.algorithm`: `https` (true) or empty (false).
    endpoint_identification: Option<bool>,
    /// `ssl.principal.mapping.rules`, parsed when read.
    principal_mapping: Option<PrincipalMapper>,
}

/// The checked result.
#[derive(Debug)]
pub(super) struct Resolved {
    /// The first (registered) listener's bind address.
    pub first_address: HostPort,
    /// Its `advertised.listeners` entry.
    pub first_advertised: Option<HostPort>,
    /// Every client listener and the HTTP endpoints' TLS.
    pub set: ListenerSet,
    /// The listener `controller.listener.names` took out of `listeners`.
    pub controller: Option<(HostPort, Origin)>,
    /// The gateway's SASL settings (`weir.gateway.sasl.*`), `None`: no authentication.
    pub gateway_sasl: Option<crate::sasl::SaslSettings>,
    /// The HTTP services' Basic authentication (`weir.http.*`), `None`: none.
    pub http_sasl: Option<crate::sasl::SaslSettings>,
    /// The schema registry's login (`kafkastore.*`), `None`: it does not log in.
    pub registry_login: Option<super::kafkastore::RegistryLogin>,
}

impl SecurityKeys {
    /// Take `input` if it is one of these keys: `Ok(false)` when it is not.
    pub(super) fn apply(&mut self, input: &Input<'_>) -> Result<bool, ConfigError> {
        match input.key {
            "listeners" => self.listeners = Some((entries(input)?, input.origin())),
            "advertised.listeners" => {
                let entries = entries(input)?;
                if let Some(entry) = entries.iter().find(|e| is_wildcard(&e.address.host)) {
                    let address = entry.address.to_address();
                    return Err(
                        input.invalid(format!("cannot advertise a wildcard address ({address})"))
                    );
                }
                self.advertised = Some((entries, input.origin()));
            }
            "listener.security.protocol.map" => {
                let map = protocol_map(input.string()?).map_err(|e| input.invalid(e))?;
                self.protocol_map = Some((map, input.origin()));
            }
            "inter.broker.listener.name" => {
                self.inter_broker = Some((input.non_empty_string()?, input.origin()));
            }
            "controller.listener.names" => {
                let names: Vec<String> = (input.string()?.split(','))
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
                    .collect();
                if names.len() != 1 {
                    return Err(input.invalid("name exactly one controller listener"));
                }
                self.controller_names = Some((names, input.origin()));
            }
            "weir.gateway.ssl.enable" => {
                self.gateway_ssl = Some((input.boolean()?, input.origin()));
            }
            "weir.http.ssl.enable" => {
                self.http_ssl = Some((input.boolean()?, input.origin()));
            }
            "weir.metrics.ssl.enable" => {
                self.metrics_ssl = Some((input.boolean()?, input.origin()));
            }
            "weir.ssl.handshake.timeout.ms" => {
                self.handshake_timeout_ms = Some(input.integer_in(1, 3_600_000)?);
            }
            "weir.ssl.reload.interval.ms" => {
                self.reload_interval_ms = Some(input.integer_in(100, 86_400_000)?);
            }
            key => {
                if self.sasl.apply(input)? || self.kafkastore.apply(input)? {
                    return Ok(true);
                }
                if let Some(rest) = key.strip_prefix("ssl.") {
                    return self.ssl.apply(rest, input).map(|()| true);
                }
                let Some(scoped) = key.strip_prefix("listener.name.") else {
                    return Ok(false);
                };
                let Some((name, rest)) = scoped.split_once('.') else {
                    return Ok(false);
                };
                if self.sasl.apply_scoped(name, rest, input)? {
                    return Ok(true);
                }
                let Some(rest) = rest.strip_prefix("ssl.") else {
                    return Ok(false);
                };
                let scope = self
                    .per_listener
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| (SslKeys::default(), input.origin()));
                scope.0.apply(rest, input)?;
            }
        }
        Ok(true)
    }

    /// Check the keys against each other. `listen_flag` is `--listen`, which replaces the
    /// first listener's address.
    pub(super) fn resolve(
        self,
        listen_flag: Option<HostPort>,
        file: &str,
    ) -> Result<Resolved, ConfigError> {
        let map = self.protocol_map.as_ref();
        let (entries, listeners_origin) = match self.listeners.clone() {
            Some(listeners) => listeners,
            None => (
                vec![Entry {
                    name: None,
                    address: HostPort {
                        host: "127.0.0.1".to_owned(),
                        port: 9092,
                    },
                }],
                Origin {
                    key: "listeners".to_owned(),
                    file: file.to_owned(),
                },
            ),
        };
        let mut named = named_listeners(&entries, map, &listeners_origin)?;
        let (controller, peer_tls) = self.take_controller(&mut named, &listeners_origin)?;
        if named.is_empty() {
            return Err(listeners_origin.invalid("no listener is left for clients"));
        }
        let sasl_names: Vec<String> = (named.iter())
            .filter(|(_, protocol, _)| protocol.uses_sasl())
            .map(|(name, _, _)| name.to_ascii_lowercase())
            .collect();
        if let Some((name, origin)) = self.sasl.stray_listener(&sasl_names) {
            return Err(origin.invalid(format!("there is no SASL listener named {name}")));
        }
        let gateway_sasl = self.sasl.gateway_settings(&sasl_names)?;
        let http_sasl = self.sasl.http_settings(&sasl_names)?;
        if let Some((name, origin)) = &self.inter_broker {
            let Some(index) = named
                .iter()
                .position(|(n, _, _)| n.eq_ignore_ascii_case(name))
            else {
                return Err(origin.invalid(format!("\"{name}\" is not a listener in listeners")));
            };
            let registered = named.remove(index);
            named.insert(0, registered);
        }
        let mut advertised = self.advertised_by_name(&named)?;
        for (lower, (_, origin)) in &self.per_listener {
            let controller_name = peer_tls.as_ref().map(|peer| peer.listener.as_str());
            let is_controller =
                controller_name.is_some_and(|name| name.eq_ignore_ascii_case(lower));
            if !is_controller
                && !named
                    .iter()
                    .any(|(name, _, _)| name.eq_ignore_ascii_case(lower))
            {
                return Err(origin.invalid(format!("there is no client listener named {lower}")));
            }
        }
        let mut kinds = Vec::with_capacity(named.len());
        for (name, protocol, address) in named {
            let (tls, principal_mapping) = if protocol.uses_tls() {
                let scoped = self.per_listener.get(&name.to_ascii_lowercase());
                let keys = match scoped {
                    Some((keys, _)) => keys.over(&self.ssl),
                    None => self.ssl.clone(),
                };
                let settings = keys.settings(&format!("listener {name}"), &listeners_origin)?;
                // On SASL_SSL the SASL principal wins: the certificate does not name it.
                let mapping = (protocol == SecurityProtocol::Ssl)
                    .then(|| keys.principal_mapping.clone().unwrap_or_default());
                (Some(settings), mapping)
            } else {
                (None, None)
            };
            let advertised = advertised.remove(&name.to_ascii_lowercase());
            let sasl = protocol.uses_sasl().then(|| self.sasl.settings(&name));
            kinds.push((
                ListenerKind {
                    name,
                    protocol,
                    tls,
                    sasl,
                    principal_mapping,
                },
                address,
                advertised,
            ));
        }
        let mut kinds = kinds.into_iter();
        let Some((first, mut first_address, first_advertised)) = kinds.next() else {
            return Err(listeners_origin.invalid("no listener is left for clients"));
        };
        let registry_login = self.kafkastore.resolve(first.protocol, &first.name)?;
        if let Some(flag) = listen_flag {
            first_address = flag;
        }
        let others = kinds
            .map(|(kind, address, advertised)| ExtraListener {
                kind,
                addr: address.to_address(),
                advertised: advertised.map(|a| (a.host, i32::from(a.port))),
            })
            .collect();
        let http_tls = |flag: &Option<(bool, Origin)>, whose: &str| match flag {
            Some((true, origin)) => self.ssl.settings(whose, origin).map(Some),
            _ => Ok(None),
        };
        let set = ListenerSet {
            first,
            others,
            gateway_tls: http_tls(&self.gateway_ssl, "the gateway")?,
            metrics_tls: http_tls(&self.metrics_ssl, "/metrics")?,
            http_tls: http_tls(&self.http_ssl, "the HTTP services")?,
            peer_tls,
            handshake_timeout: self
                .handshake_timeout_ms
                .map_or(crate::tls::HANDSHAKE_TIMEOUT_DEFAULT, Duration::from_millis),
            reload_interval: self
                .reload_interval_ms
                .map_or(crate::tls::RELOAD_INTERVAL_DEFAULT, Duration::from_millis),
        };
        Ok(Resolved {
            first_address,
            first_advertised,
            set,
            controller,
            gateway_sasl,
            http_sasl,
            registry_login,
        })
    }

    /// Take the listener `controller.listener.names` names out of the client listeners;
    /// with it, the peer links' TLS when it is SSL.
    #[allow(clippy::type_complexity)]
    fn take_controller(
        &self,
        named: &mut Vec<(String, SecurityProtocol, HostPort)>,
        listeners_origin: &Origin,
    ) -> Result<(Option<(HostPort, Origin)>, Option<PeerTlsSettings>), ConfigError> {
        let Some((names, origin)) = &self.controller_names else {
            return Ok((None, None));
        };
        let mut found = None;
        let mut peer_tls = None;
        for name in names {
            let Some(index) = named
                .iter()
                .position(|(n, _, _)| n.eq_ignore_ascii_case(name))
            else {
                return Err(origin.invalid(format!("\"{name}\" is not a listener in listeners")));
            };
            let (name, protocol, address) = named.remove(index);
            match protocol {
                SecurityProtocol::Plaintext => {}
                SecurityProtocol::Ssl => {
                    peer_tls = Some(self.controller_tls(&name, listeners_origin)?);
                }
                _ => {
                    return Err(listeners_origin
                        .invalid(format!("controller listener {name}: {SASL_NOT_YET}")))
                }
            }
            found = Some((address, origin.clone()));
        }
        Ok((found, peer_tls))
    }

    /// The peer links' TLS of the SSL controller listener `name`: its own
    /// `listener.name.<name>.ssl.*` over the broker-wide `ssl.*`, client certificates
    /// required unless that listener's own `ssl.client.auth` says otherwise, a truststore
    /// always (dials verify the other broker).
    fn controller_tls(&self, name: &str, origin: &Origin) -> Result<PeerTlsSettings, ConfigError> {
        let scoped = self.per_listener.get(&name.to_ascii_lowercase());
        let mut keys = match scoped {
            Some((keys, _)) => keys.over(&self.ssl),
            None => self.ssl.clone(),
        };
        keys.client_auth = Some(
            scoped
                .and_then(|(keys, _)| keys.client_auth)
                .unwrap_or(ClientAuth::Required),
        );
        let whose = format!("controller listener {name}");
        let tls = keys.settings(&whose, origin)?;
        if tls.truststore.is_none() {
            return Err(origin.invalid(format!(
                "{whose} verifies the other brokers' certificates against the truststore: \
                 set ssl.truststore.location"
            )));
        }
        Ok(PeerTlsSettings {
            listener: name.to_owned(),
            tls,
            verify_hostname: keys.endpoint_identification.unwrap_or(true),
        })
    }

    /// `advertised.listeners` by lower-case listener name; an unnamed entry is PLAINTEXT.
    fn advertised_by_name(
        &self,
        named: &[(String, SecurityProtocol, HostPort)],
    ) -> Result<BTreeMap<String, HostPort>, ConfigError> {
        let mut out = BTreeMap::new();
        let Some((entries, origin)) = &self.advertised else {
            return Ok(out);
        };
        for entry in entries {
            let name = entry.name.as_deref().unwrap_or("PLAINTEXT");
            if !named.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
                return Err(origin.invalid(format!("there is no client listener named {name}")));
            }
            if out
                .insert(name.to_ascii_lowercase(), entry.address.clone())
                .is_some()
            {
                return Err(origin.invalid(format!("listener {name} is advertised twice")));
            }
        }
        Ok(out)
    }
}

impl SslKeys {
    /// One `ssl.<rest>` key of this scope.
    fn apply(&mut self, rest: &str, input: &Input<'_>) -> Result<(), ConfigError> {
        match rest {
            "keystore.type" | "truststore.type" => {
                let kind = input.string()?;
                if !kind.eq_ignore_ascii_case("PEM") {
                    return Err(input.invalid(format!(
                        "\"{kind}\" is not supported: only PEM (convert a JKS or PKCS12 store \
                         with keytool and openssl)"
                    )));
                }
            }
            "keystore.location" => {
                self.keystore_location = Some((input.non_empty_string()?.into(), input.origin()));
            }
            "keystore.certificate.chain" => {
                self.keystore_chain = Some((input.non_empty_string()?, input.origin()));
            }
            "keystore.key" => self.keystore_key = Some((input.non_empty_string()?, input.origin())),
            "truststore.location" => {
                let path = input.non_empty_string()?.into();
                self.truststore_location = Some((path, input.origin()));
            }
            "truststore.certificates" => {
                self.truststore_certificates = Some((input.non_empty_string()?, input.origin()));
            }
            "client.auth" => {
                self.client_auth = Some(match input.string()?.to_ascii_lowercase().as_str() {
                    "none" => ClientAuth::None,
                    "requested" => ClientAuth::Requested,
                    "required" => ClientAuth::Required,
                    other => {
                        return Err(input
                            .invalid(format!("\"{other}\" is not none, requested or required")))
                    }
                });
            }
            "enabled.protocols" => self.versions = Some(versions(input)?),
            "principal.mapping.rules" => {
                let rules = PrincipalMapper::parse(input.string()?);
                self.principal_mapping =
                    Some(rules.map_err(|error| input.invalid(error.to_string()))?);
            }
            "endpoint.identification.algorithm" => {
                let algorithm = input.string()?.trim();
                self.endpoint_identification = Some(match algorithm {
                    "" => false,
                    https if https.eq_ignore_ascii_case("https") => true,
                    other => {
                        return Err(input.invalid(format!(
                            "\"{other}\" is not supported: \"https\" (verify the host name) \
                             or \"\" (do not)"
                        )))
                    }
                });
            }
            "key.password" | "keystore.password" => {
                if !input.string()?.is_empty() {
                    return Err(input.invalid(
                        "encrypted private keys are not supported: give an unencrypted PEM \
                         key (openssl pkcs8 -nocrypt) and protect the file instead",
                    ));
                }
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: input.key.to_owned(),
                    file: input.file.to_owned(),
                })
            }
        }
        Ok(())
    }

    /// These keys with `base` filling what this scope leaves unset. A keystore (or
    /// truststore) set here replaces the base's as a whole, never mixes with it.
    fn over(&self, base: &SslKeys) -> SslKeys {
        let own_keystore = self.keystore_location.is_some()
            || self.keystore_chain.is_some()
            || self.keystore_key.is_some();
        let own_truststore =
            self.truststore_location.is_some() || self.truststore_certificates.is_some();
        let keystore = if own_keystore { self } else { base };
        let truststore = if own_truststore { self } else { base };
        SslKeys {
            keystore_location: keystore.keystore_location.clone(),
            keystore_chain: keystore.keystore_chain.clone(),
            keystore_key: keystore.keystore_key.clone(),
            truststore_location: truststore.truststore_location.clone(),
            truststore_certificates: truststore.truststore_certificates.clone(),
            client_auth: self.client_auth.or(base.client_auth),
            versions: self.versions.or(base.versions),
            endpoint_identification: self
                .endpoint_identification
                .or(base.endpoint_identification),
            principal_mapping: (self.principal_mapping.as_ref())
                .or(base.principal_mapping.as_ref())
                .cloned(),
        }
    }

    /// The TLS settings of these keys; `whose` and `origin` name the user in errors.
    fn settings(&self, whose: &str, origin: &Origin) -> Result<TlsSettings, ConfigError> {
        let keystore = match (
            &self.keystore_location,
            &self.keystore_chain,
            &self.keystore_key,
        ) {
            (Some((path, _)), None, None) => Keystore::File(path.clone()),
            (None, Some((chain, _)), Some((key, _))) => Keystore::Inline {
                chain: chain.clone(),
                key: key.clone(),
            },
            (None, None, None) => {
                return Err(origin.invalid(format!(
                    "{whose} uses TLS and needs a keystore: ssl.keystore.location (one PEM \
                     file with the key and the certificate chain), or \
                     ssl.keystore.certificate.chain with ssl.keystore.key"
                )))
            }
            (Some((_, location)), _, _) => {
                return Err(location.invalid(
                    "set either ssl.keystore.location or ssl.keystore.certificate.chain with \
                     ssl.keystore.key, not both",
                ))
            }
            (None, Some((_, chain)), None) => {
                return Err(chain.invalid("needs ssl.keystore.key beside it"))
            }
            (None, None, Some((_, key))) => {
                return Err(key.invalid("needs ssl.keystore.certificate.chain beside it"))
            }
        };
        let truststore = match (&self.truststore_location, &self.truststore_certificates) {
            (Some((path, _)), None) => Some(Truststore::File(path.clone())),
            (None, Some((text, _))) => Some(Truststore::Inline(text.clone())),
            (None, None) => None,
            (Some((_, location)), Some(_)) => {
                return Err(location
                    .invalid("set either ssl.truststore.location or ssl.truststore.certificates"))
            }
        };
        let client_auth = self.client_auth.unwrap_or_default();
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(origin.invalid(format!(
                "{whose} verifies client certificates (ssl.client.auth) against the \
                 truststore: set ssl.truststore.location"
            )));
        }
        Ok(TlsSettings {
            keystore,
            truststore,
            client_auth,
            versions: self.versions.unwrap_or_default(),
        })
    }
}

/// `ssl.enabled.protocols`: `TLSv1.2`, `TLSv1.3` or both, as a list string or an array.
fn versions(input: &Input<'_>) -> Result<TlsVersions, ConfigError> {
    let text = match input.value {
        toml::Value::Array(items) => {
            let words: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
            words
                .ok_or_else(|| input.invalid("expected strings"))?
                .join(",")
        }
        _ => input.string()?.to_owned(),
    };
    let mut versions = TlsVersions {
        tls12: false,
        tls13: false,
    };
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "TLSv1.2" => versions.tls12 = true,
            "TLSv1.3" => versions.tls13 = true,
            other => {
                return Err(input.invalid(format!(
                    "\"{other}\" is not supported: TLSv1.2 and TLSv1.3 only"
                )))
            }
        }
    }
    if !versions.tls12 && !versions.tls13 {
        return Err(input.invalid("name TLSv1.2, TLSv1.3 or both"));
    }
    Ok(versions)
}

/// A listener list: `NAME://host:port` or bare `host:port` entries, comma-separated.
fn entries(input: &Input<'_>) -> Result<Vec<Entry>, ConfigError> {
    let text = input.non_empty_string()?;
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(input.invalid(format!("\"{text}\": empty entry")));
        }
        let (name, address) = match item.split_once("://") {
            None => (None, item),
            Some((name, address)) => {
                let valid = !name.is_empty()
                    && (name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(input.invalid(format!("\"{name}\" is not a listener name")));
                }
                (Some(name.to_owned()), address)
            }
        };
        let address = parse_host_port(address).map_err(|e| input.invalid(e))?;
        out.push(Entry { name, address });
    }
    Ok(out)
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL` pairs.
fn protocol_map(text: &str) -> Result<Vec<(String, SecurityProtocol)>, String> {
    let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) = pair
            .split_once(':')
            .ok_or_else(|| format!("\"{pair}\" is not NAME:PROTOCOL"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            format!(
                "\"{}\" is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                protocol.trim()
            )
        })?;
        let name = name.trim().to_owned();
        if map.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(format!("listener {name} is mapped twice"));
        }
        map.push((name, protocol));
    }
    Ok(map)
}

/// Each listener's name and protocol; checks that names and nonzero ports are unique.
fn named_listeners(
    entries: &[Entry],
    map: Option<&(Vec<(String, SecurityProtocol)>, Origin)>,
    origin: &Origin,
) -> Result<Vec<(String, SecurityProtocol, HostPort)>, ConfigError> {
    let mut named: Vec<(String, SecurityProtocol, HostPort)> = Vec::new();
    for entry in entries {
        let name = entry.name.clone().unwrap_or_else(|| "PLAINTEXT".to_owned());
        let mapped = map.and_then(|(map, _)| {
            (map.iter())
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, protocol)| *protocol)
        });
        let Some(protocol) = mapped.or_else(|| SecurityProtocol::parse(&name)) else {
            return Err(origin.invalid(format!(
                "listener {name} has no security protocol: map it in \
                 listener.security.protocol.map (e.g. \"{name}:SSL\")"
            )));
        };
        if named.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(origin.invalid(format!("listener {name} is listed twice")));
        }
        let port = entry.address.port;
        if port != 0 && named.iter().any(|(_, _, a)| a.port == port) {
            return Err(origin.invalid(format!("port {port} is used by two listeners")));
        }
        named.push((name, protocol, entry.address.clone()));
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    // Goal: the listener and TLS keys map to the ListenerSet Kafka's meaning asks for, and
    // each wrong combination is refused naming its key. Method: parse small TOML texts.
    use std::path::PathBuf;

    use crate::listener::SecurityProtocol;
    use crate::tls::{ClientAuth, Keystore, TlsVersions, Truststore};

    use crate::config::tests::{parse, refusal};

    const KEYSTORE: &str = "ssl.keystore.type = \"PEM\"\nssl.keystore.location = \"/k.pem\"\n";

    #[test]
    fn several_listeners_with_names_map_and_overrides() {
        let config = parse(
            r#"
            listeners = "PLAINTEXT://127.0.0.1:9092,SSL://:9093,INTERNAL://10.0.0.1:9094"
            advertised.listeners = "SSL://kafka.example:19093,PLAINTEXT://kafka.example:19092"
            listener.security.protocol.map = "INTERNAL:SSL,PLAINTEXT:PLAINTEXT,SSL:SSL"
            inter.broker.listener.name = "INTERNAL"
            ssl.keystore.type = "PEM"
            ssl.keystore.location = "/etc/weir/broker.pem"
            ssl.truststore.type = "PEM"
            ssl.truststore.location = "/etc/weir/ca.pem"
            ssl.client.auth = "requested"
            ssl.enabled.protocols = "TLSv1.3"
            listener.name.internal.ssl.client.auth = "required"
            listener.name.internal.ssl.keystore.location = "/etc/weir/internal.pem"
            weir.gateway.ssl.enable = true
            weir.metrics.ssl.enable = "true"
            weir.ssl.reload.interval.ms = 250
            weir.ssl.handshake.timeout.ms = 2000
            "#,
        );
        // The inter-broker listener is registered: first, advertised as bound (no entry).
        let first = &config.listeners.first;
        assert_eq!(first.name, "INTERNAL");
        assert_eq!(first.protocol, SecurityProtocol::Ssl);
        assert_eq!(config.listen, "10.0.0.1:9094");
        assert!(config.advertise_bound_address);
        let internal = first.tls.as_ref().expect("TLS");
        assert_eq!(
            internal.keystore,
            Keystore::File(PathBuf::from("/etc/weir/internal.pem"))
        );
        assert_eq!(internal.client_auth, ClientAuth::Required);
        assert_eq!(
            internal.truststore,
            Some(Truststore::File(PathBuf::from("/etc/weir/ca.pem"))),
            "the truststore falls back to the broker-wide one"
        );
        let names: Vec<&str> = (config.listeners.others.iter())
            .map(|extra| extra.kind.name.as_str())
            .collect();
        assert_eq!(names, ["PLAINTEXT", "SSL"]);
        let plaintext = &config.listeners.others[0];
        assert_eq!(plaintext.addr, "127.0.0.1:9092");
        assert_eq!(plaintext.kind.tls, None);
        assert_eq!(plaintext.advertised, Some(("kafka.example".into(), 19092)));
        let ssl = &config.listeners.others[1];
        assert_eq!(ssl.addr, "0.0.0.0:9093");
        assert_eq!(ssl.advertised, Some(("kafka.example".into(), 19093)));
        let ssl_tls = ssl.kind.tls.as_ref().expect("TLS");
        assert_eq!(
            ssl_tls.keystore,
            Keystore::File(PathBuf::from("/etc/weir/broker.pem"))
        );
        assert_eq!(ssl_tls.client_auth, ClientAuth::Requested);
        let only_13 = TlsVersions {
            tls12: false,
            tls13: true,
        };
        assert_eq!(ssl_tls.versions, only_13);
        assert_eq!(config.listeners.gateway_tls.as_ref(), Some(ssl_tls));
        assert_eq!(config.listeners.metrics_tls.as_ref(), Some(ssl_tls));
        assert_eq!(config.listeners.reload_interval.as_millis(), 250);
        assert_eq!(config.listeners.handshake_timeout.as_millis(), 2000);
    }

    // Goal: the README's default and every pre-listener-name config mean what they meant.
    #[test]
    fn defaults_and_old_forms_are_unchanged() {
        let config = parse("");
        assert_eq!(config.listen, "127.0.0.1:9092");
        assert_eq!(config.listeners.first.protocol, SecurityProtocol::Plaintext);
        assert!(config.listeners.others.is_empty());
        assert_eq!(config.listeners.gateway_tls, None);
        let bare = parse("listeners = \"127.0.0.1:9500\"\nadvertised.listeners = \"h:1\"");
        assert_eq!(bare.listen, "127.0.0.1:9500");
        assert_eq!(
            (
                bare.node.advertised_host.as_str(),
                bare.node.advertised_port
            ),
            ("h", 1)
        );
    }

    #[test]
    fn inline_keystore_and_ssl_listener_alone() {
        let config = parse(
            "listeners = \"SSL://127.0.0.1:0\"\n\
             ssl.keystore.certificate.chain = \"-----BEGIN CERTIFICATE-----\"\n\
             ssl.keystore.key = \"-----BEGIN PRIVATE KEY-----\"\n\
             ssl.enabled.protocols = [\"TLSv1.2\", \"TLSv1.3\"]",
        );
        let tls = config.listeners.first.tls.expect("TLS");
        assert!(matches!(tls.keystore, Keystore::Inline { .. }));
        assert_eq!(tls.versions, TlsVersions::default());
    }

    // Goal: controller.listener.names takes its listener out of the client listeners and
    // serves as controller.listener did. Method: a voter config both ways.
    #[test]
    fn controller_listener_names() {
        let config = parse(
            "node.id = 1\ncontroller.quorum.voters = \"1@127.0.0.1:19094\"\n\
             listeners = \"PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19094\"\n\
             listener.security.protocol.map = \"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\"\n\
             controller.listener.names = \"CONTROLLER\"",
        );
        let cluster = config.node.cluster.expect("cluster mode");
        assert_eq!(cluster.peer_addr, "127.0.0.1:19094");
        assert!(config.listeners.others.is_empty());
        assert_eq!(config.listen, "127.0.0.1:19092");
    }

    // Goal: an SSL controller listener gives the peer links TLS with mutual authentication
    // by default: its own listener.name.controller.ssl.* over the broker-wide keys, client
    // certificates required even when client listeners only request them, host names
    // verified unless ssl.endpoint.identification.algorithm is empty. Method: two configs.
    #[test]
    fn ssl_controller_listener_gives_peer_tls() {
        let base = "node.id = 1\ncontroller.quorum.voters = \"1@127.0.0.1:19094\"\n\
             listeners = \"SSL://127.0.0.1:19093,CONTROLLER://127.0.0.1:19094\"\n\
             listener.security.protocol.map = \"CONTROLLER:SSL,SSL:SSL\"\n\
             controller.listener.names = \"CONTROLLER\"\n\
             ssl.keystore.location = \"/k.pem\"\nssl.truststore.location = \"/ca.pem\"\n\
             ssl.client.auth = \"requested\"\n";
        let config = parse(base);
        let peer = config.listeners.peer_tls.expect("peer TLS");
        assert_eq!(peer.listener, "CONTROLLER");
        assert_eq!(peer.tls.client_auth, ClientAuth::Required);
        assert_eq!(peer.tls.keystore, Keystore::File(PathBuf::from("/k.pem")));
        assert!(peer.verify_hostname);
        let client = config.listeners.first.tls.expect("client TLS");
        assert_eq!(client.client_auth, ClientAuth::Requested);
        let config = parse(&format!(
            "{base}listener.name.controller.ssl.keystore.location = \"/peer.pem\"\n\
             listener.name.controller.ssl.client.auth = \"requested\"\n\
             listener.name.controller.ssl.endpoint.identification.algorithm = \"\"\n"
        ));
        let peer = config.listeners.peer_tls.expect("peer TLS");
        assert_eq!(
            peer.tls.keystore,
            Keystore::File(PathBuf::from("/peer.pem"))
        );
        assert_eq!(
            peer.tls.truststore,
            Some(Truststore::File(PathBuf::from("/ca.pem")))
        );
        assert_eq!(peer.tls.client_auth, ClientAuth::Requested);
        assert!(!peer.verify_hostname);
        assert_eq!(parse("").listeners.peer_tls, None);
    }

    // Goal: SASL listeners carry their mechanisms, JAAS users and re-authentication
    // lifetime, per listener over broker-wide, with Kafka's key names; the settings' Debug
    // never shows a password. Method: a SASL_SSL and a SASL_PLAINTEXT listener.
    #[test]
    fn sasl_listeners_and_keys() {
        let config = parse(&format!(
            "{KEYSTORE}listeners = \"SASL_PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093\"\n\
             sasl.enabled.mechanisms = \"SCRAM-SHA-512\"\n\
             connections.max.reauth.ms = 60000\n\
             listener.name.sasl_plaintext.sasl.enabled.mechanisms = \
             [\"PLAIN\", \"SCRAM-SHA-256\"]\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config = \"org.apache.kafka.common.\
             security.plain.PlainLoginModule required user_alice=\\\"alice-secret\\\";\"\n\
             weir.sasl.authentication.timeout.ms = 3000\n"
        ));
        let first = config.listeners.first.sasl.expect("SASL");
        let names: Vec<&str> = first.mechanisms.iter().map(|m| m.name()).collect();
        assert_eq!(names, ["PLAIN", "SCRAM-SHA-256"]);
        assert_eq!(first.plain_users["alice"], "alice-secret");
        assert_eq!(first.reauth.map(|d| d.as_millis()), Some(60_000));
        assert_eq!(first.authentication_timeout.as_millis(), 3000);
        assert!(!format!("{first:?}").contains("secret"));
        let ssl = &config.listeners.others[0].kind;
        assert_eq!(ssl.protocol, SecurityProtocol::SaslSsl);
        assert!(ssl.tls.is_some());
        let sasl = ssl.sasl.as_ref().expect("SASL");
        assert_eq!(sasl.mechanisms.len(), 1, "the broker-wide list");
        assert!(sasl.plain_users.is_empty());
        assert_eq!(config.listeners.others.len(), 1);
        assert_eq!(parse("").listeners.first.sasl, None);
    }

    // Goal: ssl.principal.mapping.rules gives SSL listeners a mapper (DEFAULT unless set,
    // a listener's own rules over the broker-wide ones); SASL_SSL and PLAINTEXT get none.
    #[test]
    fn principal_mapping_rules_per_listener() {
        let config = parse(&format!(
            "{KEYSTORE}listeners = \"SSL://:9093,CLIENT://:9094,SASL_SSL://:9095,\
             PLAINTEXT://:9092\"\n\
             listener.security.protocol.map = \"SSL:SSL,CLIENT:SSL,SASL_SSL:SASL_SSL,\
             PLAINTEXT:PLAINTEXT\"\n\
             ssl.principal.mapping.rules = \"RULE:^CN=([^,]*).*$/$1/L, DEFAULT\"\n\
             listener.name.client.ssl.principal.mapping.rules = \"RULE:^(.*)$/x$1/\"\n"
        ));
        let mapping = |kind: &crate::listener::ListenerKind| kind.principal_mapping.clone();
        let ssl = mapping(&config.listeners.first).expect("SSL maps");
        assert_eq!(ssl.map("CN=Alice,O=A").expect("mapped"), "alice");
        assert_eq!(ssl.map("O=A").expect("DEFAULT"), "O=A");
        let client = mapping(&config.listeners.others[0].kind).expect("CLIENT maps");
        assert_eq!(client.map("CN=a").expect("mapped"), "xCN=a");
        assert_eq!(mapping(&config.listeners.others[1].kind), None, "SASL_SSL");
        assert_eq!(mapping(&config.listeners.others[2].kind), None, "PLAINTEXT");
        let default = parse(&format!("{KEYSTORE}listeners = \"SSL://:9093\""));
        let default = mapping(&default.listeners.first).expect("SSL maps");
        assert_eq!(default.source(), "DEFAULT");
    }

    #[test]
    fn refusals_name_the_key_and_say_why() {
        let cases = [
            (
                "listeners = \"SASL_SSL://:9093\"",
                "listeners",
                "needs a keystore",
            ),
            (
                "sasl.enabled.mechanisms = \"GSSAPI\"",
                "sasl.enabled.mechanisms",
                "PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512",
            ),
            (
                "listener.name.plaintext.sasl.enabled.mechanisms = \"PLAIN\"",
                "listener.name.plaintext.sasl.enabled.mechanisms",
                "no SASL listener named plaintext",
            ),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config = \"x required;\"\n\
                 listeners = \"SASL_PLAINTEXT://:9093\"",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "PlainLoginModule",
            ),
            (
                "listeners = \"SSL://:9093\"",
                "listeners",
                "needs a keystore",
            ),
            (
                "listeners = \"CLIENT://:9093\"",
                "listeners",
                "no security protocol",
            ),
            (
                "listeners = \"PLAINTEXT://:9092,SSL://:9092\"",
                "listeners",
                "used by two listeners",
            ),
            (
                "listener.security.protocol.map = \"A:TLS\"",
                "listener.security.protocol.map",
                "is not PLAINTEXT",
            ),
            (
                "inter.broker.listener.name = \"SSL\"",
                "inter.broker.listener.name",
                "not a",
            ),
            (
                "advertised.listeners = \"SSL://h:1\"",
                "advertised.listeners",
                "no client",
            ),
            (
                "ssl.keystore.type = \"JKS\"",
                "ssl.keystore.type",
                "only PEM",
            ),
            (
                "ssl.key.password = \"secret\"",
                "ssl.key.password",
                "encrypted",
            ),
            (
                "ssl.client.auth = \"always\"",
                "ssl.client.auth",
                "none, requested",
            ),
            (
                "ssl.enabled.protocols = \"TLSv1.1\"",
                "ssl.enabled.protocols",
                "TLSv1.2",
            ),
            (
                "listener.name.nope.ssl.client.auth = \"none\"",
                "listener.name.nope.ssl.client.auth",
                "no client listener named nope",
            ),
            (
                "weir.gateway.ssl.enable = true",
                "weir.gateway.ssl.enable",
                "needs a keystore",
            ),
            (
                "controller.quorum.voters = \"1@a:1\"\ncontroller.listener = \"a:1\"\n\
                 listeners = \"PLAINTEXT://:9092,CONTROLLER://a:2\"\n\
                 listener.security.protocol.map = \"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\"\n\
                 \"controller.listener.names\" = \"CONTROLLER\"",
                "controller.listener",
                "set one of the two",
            ),
            (
                "controller.quorum.voters = \"1@a:1\"\n\
                 listeners = \"PLAINTEXT://:9092,CONTROLLER://a:1\"\n\
                 listener.security.protocol.map = \"CONTROLLER:SASL_SSL,PLAINTEXT:PLAINTEXT\"\n\
                 ssl.keystore.location = \"/k.pem\"\ncontroller.listener.names = \"CONTROLLER\"",
                "listeners",
                "SASL between brokers is not supported",
            ),
            (
                "controller.quorum.voters = \"1@a:1\"\n\
                 listeners = \"PLAINTEXT://:9092,CONTROLLER://a:1\"\n\
                 listener.security.protocol.map = \"CONTROLLER:SSL,PLAINTEXT:PLAINTEXT\"\n\
                 ssl.keystore.location = \"/k.pem\"\ncontroller.listener.names = \"CONTROLLER\"",
                "listeners",
                "controller listener CONTROLLER verifies client certificates",
            ),
            (
                "controller.quorum.voters = \"1@a:1\"\n\
                 listeners = \"PLAINTEXT://:9092,CONTROLLER://a:1\"\n\
                 listener.security.protocol.map = \"CONTROLLER:SSL,PLAINTEXT:PLAINTEXT\"\n\
                 listener.name.controller.ssl.client.auth = \"none\"\n\
                 ssl.keystore.location = \"/k.pem\"\ncontroller.listener.names = \"CONTROLLER\"",
                "listeners",
                "verifies the other brokers' certificates",
            ),
            (
                "ssl.principal.mapping.rules = \"RULE:^CN=(.*)$/$1\"",
                "ssl.principal.mapping.rules",
                "RULE:<pattern>/<replacement>/",
            ),
            (
                "listener.name.ssl.ssl.principal.mapping.rules = \"RULE:(?<=a)b/x/\"",
                "listener.name.ssl.ssl.principal.mapping.rules",
                "look-around",
            ),
            (
                "ssl.endpoint.identification.algorithm = \"ldap\"",
                "ssl.endpoint.identification.algorithm",
                "\"https\"",
            ),
        ];
        for (text, key, why) in cases {
            let message = refusal(text);
            let expected = format!("invalid value for \"{key}\" in weir.toml");
            assert!(message.starts_with(&expected), "{text:?} gave {message:?}");
            assert!(message.contains(why), "{text:?} gave {message:?}");
        }
        let both = format!("{KEYSTORE}ssl.keystore.key = \"k\"\nlisteners = \"SSL://:1\"");
        let message = refusal(&both);
        assert!(message.contains("not both"), "{message}");
        let auth = format!("{KEYSTORE}ssl.client.auth = \"required\"\nlisteners = \"SSL://:1\"");
        let message = refusal(&auth);
        assert!(message.contains("set ssl.truststore.location"), "{message}");
    }
}
