//! Kafka listeners: a name, a security protocol and an address each, as in Kafka's
//! `listeners = "PLAINTEXT://:9092,SSL://:9093"`, and what a connection needs to know about
//! the listener it arrived on.
//!
//! Invariants:
//! - The first listener ([`ListenerSet::first`]) is the one the broker registers in the
//!   metadata image (Kafka's inter-broker listener): `NodeConfig::advertised_*` is its
//!   advertised endpoint, and Metadata names every broker by it.
//! - A connection on another listener is told this broker's address *on that listener*:
//!   [`Advertised::rewrite`] replaces this node's endpoint in Metadata, DescribeCluster and
//!   FindCoordinator answers, so a TLS client is never sent to a plaintext port (or the
//!   reverse). Other brokers keep their registered endpoint (the image holds one per
//!   broker; see docs/security.md).
//! - A SASL listener ([`SecurityProtocol::uses_sasl`]) always carries its
//!   [`SaslSettings`], and its connections serve nothing but ApiVersions, SaslHandshake
//!   and SaslAuthenticate before they authenticate (`conn.rs`, `sasl.rs`).

use std::time::Duration;

use weir_wire::domain::ApiResponse;

use crate::sasl::SaslSettings;
use crate::ssl_principal::PrincipalMapper;
use crate::tls::{self, PeerTlsSettings, TlsSettings};

/// Kafka's `security.protocol` of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plaintext.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol called `name` (case-insensitive, as Kafka's listener names).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|protocol| protocol.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections must authenticate with SASL before anything is served.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A listener's name, protocol, TLS settings (present exactly when the protocol uses
/// TLS) and SASL settings (present exactly when it uses SASL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerKind {
    /// Its name in `listeners` (`PLAINTEXT`, `SSL`, `CLIENT`, ...).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// `ssl.*` (with `listener.name.<name>.ssl.*` overrides) for a TLS listener.
    pub tls: Option<TlsSettings>,
    /// `sasl.*` (with `listener.name.<name>.*` overrides) for a SASL listener.
    pub sasl: Option<SaslSettings>,
    /// `ssl.principal.mapping.rules` (with the listener's override) for an `SSL` listener:
    /// a client presenting a certificate is the mapped subject ([`crate::ssl_principal`]).
    pub principal_mapping: Option<PrincipalMapper>,
}

impl ListenerKind {
    /// The plaintext listener every broker had before listeners got names.
    pub fn plaintext() -> ListenerKind {
        ListenerKind {
            name: "PLAINTEXT".to_owned(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            principal_mapping: None,
        }
    }
}

/// A listener other than the first: it has its own address and advertised endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraListener {
    /// Name, protocol, TLS.
    pub kind: ListenerKind,
    /// `host:port` to bind; port 0 picks a free port.
    pub addr: String,
    /// From `advertised.listeners`; `None` advertises the bound address (a wildcard host
    /// becomes 127.0.0.1).
    pub advertised: Option<(String, i32)>,
}

/// Every Kafka listener of the broker, plus the TLS of its HTTP endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSet {
    /// The first (registered) listener, bound at `ServerConfig::listen`.
    pub first: ListenerKind,
    /// The others, in `listeners` order.
    pub others: Vec<ExtraListener>,
    /// `weir.gateway.ssl.enable`: the gateway serves wss:// with these settings.
    pub gateway_tls: Option<TlsSettings>,
    /// `weir.metrics.ssl.enable`: `/metrics` is served over https with these settings.
    pub metrics_tls: Option<TlsSettings>,
    /// `weir.http.ssl.enable`: the HTTP services (REST proxy, registry) serve https.
    pub http_tls: Option<TlsSettings>,
    /// The peer links' TLS, when the controller listener (`controller.listener.names`) is
    /// SSL; its handshakes share `handshake_timeout` and `reload_interval`.
    pub peer_tls: Option<PeerTlsSettings>,
    /// `weir.ssl.handshake.timeout.ms`.
    pub handshake_timeout: Duration,
    /// `weir.ssl.reload.interval.ms`.
    pub reload_interval: Duration,
}

impl Default for ListenerSet {
    /// One plaintext listener, no TLS anywhere: Weir's default.
    fn default() -> Self {
        ListenerSet {
            first: ListenerKind::plaintext(),
            others: Vec::new(),
            gateway_tls: None,
            metrics_tls: None,
            http_tls: None,
            peer_tls: None,
            handshake_timeout: tls::HANDSHAKE_TIMEOUT_DEFAULT,
            reload_interval: tls::RELOAD_INTERVAL_DEFAULT,
        }
    }
}

/// This broker's endpoint on the listener a connection arrived on, when that is not the
/// registered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// This broker's node id.
    pub node_id: i32,
    /// Host clients of this listener reach it at.
    pub host: String,
    /// Port clients of this listener reach it at.
    pub port: i32,
}

impl Advertised {
    /// Replace this node's registered endpoint in an answer naming brokers.
    pub fn rewrite(&self, response: &mut ApiResponse) {
        let brokers = match response {
            ApiResponse::Metadata(metadata) => &mut metadata.brokers,
            ApiResponse::DescribeCluster(cluster) => &mut cluster.brokers,
            ApiResponse::FindCoordinator(found) => {
                let own = found.coordinators.iter_mut();
                for coordinator in own.filter(|c| c.node_id == self.node_id) {
                    coordinator.host.clone_from(&self.host);
                    coordinator.port = self.port;
                }
                return;
            }
            _ => return,
        };
        for broker in brokers.iter_mut().filter(|b| b.node_id == self.node_id) {
            broker.host.clone_from(&self.host);
            broker.port = self.port;
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::domain::{BrokerInfo, Coordinator, FindCoordinatorResponse, MetadataResponse};
    use weir_wire::error::ErrorCode;

    use super::*;

    // Goal: a connection on a second listener is told this broker's address on that
    // listener, and other brokers are left alone. Method: rewrite a Metadata and a
    // FindCoordinator answer naming two brokers.
    #[test]
    fn rewrite_replaces_only_this_node() {
        let advertised = Advertised {
            node_id: 1,
            host: "tls.example".to_owned(),
            port: 9093,
        };
        let broker = |node_id: i32| BrokerInfo {
            node_id,
            host: "plain.example".to_owned(),
            port: 9092,
            rack: None,
        };
        let mut metadata = ApiResponse::Metadata(MetadataResponse {
            brokers: vec![broker(1), broker(2)],
            ..MetadataResponse::default()
        });
        advertised.rewrite(&mut metadata);
        let ApiResponse::Metadata(metadata) = metadata else {
            panic!("still Metadata");
        };
        assert_eq!(
            (metadata.brokers[0].host.as_str(), metadata.brokers[0].port),
            ("tls.example", 9093)
        );
        assert_eq!(metadata.brokers[1], broker(2));
        let coordinator = |node_id: i32| Coordinator {
            key: "g".to_owned(),
            node_id,
            host: "plain.example".to_owned(),
            port: 9092,
            error: ErrorCode::NONE,
            error_message: None,
        };
        let mut found = ApiResponse::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![coordinator(1), coordinator(2)],
        });
        advertised.rewrite(&mut found);
        let ApiResponse::FindCoordinator(found) = found else {
            panic!("still FindCoordinator");
        };
        assert_eq!(found.coordinators[0].port, 9093);
        assert_eq!(found.coordinators[1], coordinator(2));
    }

    #[test]
    fn protocol_names_round_trip() {
        for protocol in SecurityProtocol::ALL {
            assert_eq!(SecurityProtocol::parse(protocol.name()), Some(protocol));
        }
        assert_eq!(
            SecurityProtocol::parse("ssl"),
            Some(SecurityProtocol::Ssl),
            "case-insensitive, as Kafka's listener names"
        );
        assert_eq!(SecurityProtocol::parse("TLS"), None);
    }
}
