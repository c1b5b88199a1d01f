"""TLS listeners with real clients (issue 15 item 1): confluent-kafka (librdkafka) with
security.protocol=SSL and mTLS, kafka-python over SSL, kcat over SSL.

Certificates are generated per test module with `cryptography` (a CA, a broker leaf for
localhost/127.0.0.1 in Kafka's one-file keystore layout, a client leaf), so nothing is
installed or kept between runs.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, TopicPartition

from weirtest import (
    Broker,
    BrokerFactory,
    ck_produce,
    free_port,
    kcat,
    kp_consumer,
    kp_producer,
    kp_read,
    unique,
    wait_until,
)


# --------------------------------------------------------------------------------------
# Certificates


@dataclass
class Pki:
    ca: Path
    broker_keystore: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path
    # Signed by the trusted CA, valid only in 2020.
    expired_keystore: Path
    expired_cert: Path
    expired_key: Path
    # CN=admin and CN=bob, for the principal tests (the mapped subject is the user).
    admin_cert: Path
    admin_key: Path
    bob_cert: Path
    bob_key: Path


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _ca(common_name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert, common_name: str, expired: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        not_before = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        not_after = datetime.datetime(2020, 12, 31, tzinfo=datetime.timezone.utc)
    else:
        not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(key=None, cert=None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    out = b""
    if key is not None:
        out += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if cert is not None:
        out += cert.public_bytes(serialization.Encoding.PEM)
    return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("weir compat CA")
    broker_key, broker_cert = _leaf(ca_key, ca_cert, "broker")
    client_key, client_cert = _leaf(ca_key, ca_cert, "alice")
    other_key, other_cert = _ca("another CA")
    stranger_key, stranger_cert = _leaf(other_key, other_cert, "mallory")
    old_broker_key, old_broker_cert = _leaf(ca_key, ca_cert, "old-broker", expired=True)
    old_client_key, old_client_cert = _leaf(ca_key, ca_cert, "old-alice", expired=True)
    admin_key, admin_cert = _leaf(ca_key, ca_cert, "admin")
    bob_key, bob_cert = _leaf(ca_key, ca_cert, "bob")
    files = {
        "ca.pem": _pem(cert=ca_cert),
        # Kafka's PEM keystore: the private key and the certificate chain in one file.
        "broker.pem": _pem(broker_key, broker_cert),
        "client-cert.pem": _pem(cert=client_cert),
        "client-key.pem": _pem(key=client_key),
        "stranger-cert.pem": _pem(cert=stranger_cert),
        "stranger-key.pem": _pem(key=stranger_key),
        "expired-broker.pem": _pem(old_broker_key, old_broker_cert),
        "expired-cert.pem": _pem(cert=old_client_cert),
        "expired-key.pem": _pem(key=old_client_key),
        "admin-cert.pem": _pem(cert=admin_cert),
        "admin-key.pem": _pem(key=admin_key),
        "bob-cert.pem": _pem(cert=bob_cert),
        "bob-key.pem": _pem(key=bob_key),
    }
    for name, data in files.items():
        (base / name).write_bytes(data)
    return Pki(
        ca=base / "ca.pem",
        broker_keystore=base / "broker.pem",
        client_cert=base / "client-cert.pem",
        client_key=base / "client-key.pem",
        stranger_cert=base / "stranger-cert.pem",
        stranger_key=base / "stranger-key.pem",
        expired_keystore=base / "expired-broker.pem",
        expired_cert=base / "expired-cert.pem",
        expired_key=base / "expired-key.pem",
        admin_cert=base / "admin-cert.pem",
        admin_key=base / "admin-key.pem",
        bob_cert=base / "bob-cert.pem",
        bob_key=base / "bob-key.pem",
    )


def tls_config(pki: Pki, listeners: str, extra: str = "") -> str:
    return f"""
listeners = "{listeners}"
ssl.keystore.type = "PEM"
ssl.keystore.location = "{pki.broker_keystore}"
ssl.truststore.type = "PEM"
ssl.truststore.location = "{pki.ca}"
"weir.gateway.listener" = "off"
{extra}
"""


# --------------------------------------------------------------------------------------
# confluent-kafka helpers that carry the security settings


def ck_conf(bootstrap: str, pki: Pki, identity: str | None = None) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
    }
    if identity == "alice":
        conf["ssl.certificate.location"] = str(pki.client_cert)
        conf["ssl.key.location"] = str(pki.client_key)
    elif identity == "mallory":
        conf["ssl.certificate.location"] = str(pki.stranger_cert)
        conf["ssl.key.location"] = str(pki.stranger_key)
    elif identity == "expired":
        conf["ssl.certificate.location"] = str(pki.expired_cert)
        conf["ssl.key.location"] = str(pki.expired_key)
    elif identity == "admin":
        conf["ssl.certificate.location"] = str(pki.admin_cert)
        conf["ssl.key.location"] = str(pki.admin_key)
    elif identity == "bob":
        conf["ssl.certificate.location"] = str(pki.bob_cert)
        conf["ssl.key.location"] = str(pki.bob_key)
    return conf


def ck_create(conf: dict, topic: str, partitions: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=20)
    wait_until(
        lambda: topic in admin.list_topics(topic=topic, timeout=10).topics
        and admin.list_topics(topic=topic, timeout=10).topics[topic].error is None,
        15,
        f"topic {topic} in metadata",
    )


def ck_round_trip(conf: dict, topic: str, count: int = 20) -> list[bytes]:
    """Produce `count` values with acks=all and read them back from the beginning."""
    from confluent_kafka import Consumer, KafkaError, Producer

    producer = Producer({**conf, "linger.ms": 5, "message.timeout.ms": 20000, "acks": "all"})
    sent = [f"tls-{i}".encode() for i in range(count)]
    deliveries = ck_produce(producer, topic, [{"value": v} for v in sent])
    assert all(d.error is None for d in deliveries), [d.error for d in deliveries if d.error]
    consumer = Consumer(
        {
            **conf,
            "group.id": unique("tls-reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        deadline_polls = 200
        while len(got) < count and deadline_polls > 0:
            deadline_polls -= 1
            m = consumer.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            got.append(m.value())
        return got
    finally:
        consumer.close()


# --------------------------------------------------------------------------------------
# Tests


def test_confluent_ssl_beside_plaintext(broker_factory: BrokerFactory, pki: Pki):
    # Goal: librdkafka with security.protocol=SSL and ssl.ca.location produces and consumes
    # on an SSL listener that sits beside the PLAINTEXT one, and is told the SSL port in
    # Metadata (a client sent to the plaintext port would fail its handshake); plaintext
    # clients keep working. Method: PLAINTEXT (the harness's port) + SSL (a second port).
    ssl_port = free_port()
    broker = broker_factory.new(
        config=tls_config(pki, f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{ssl_port}"),
        name="tls",
    )
    ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    assert f"weir listener SSL (SSL) on {ssl_bootstrap}" in broker.log_text()
    conf = ck_conf(ssl_bootstrap, pki)
    topic = unique("tls-ck")
    ck_create(conf, topic)
    from confluent_kafka.admin import AdminClient

    brokers = AdminClient(conf).list_topics(timeout=10).brokers
    assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", ssl_port)], brokers
    assert ck_round_trip(conf, topic) == [f"tls-{i}".encode() for i in range(20)]
    plain = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert [(b.host, b.port) for b in plain.brokers.values()] == [("127.0.0.1", broker.port)]
    assert topic in plain.topics


def test_confluent_mtls_required(broker_factory: BrokerFactory, pki: Pki):
    # Goal: with ssl.client.auth=required, a librdkafka client presenting a certificate the
    # truststore vouches for (ssl.certificate.location/ssl.key.location) produces and
    # consumes; clients without one, or with one from another CA, get nothing. Method: an
    # SSL-only broker, three clients.
    broker = broker_factory.new(
        config=tls_config(pki, "SSL://127.0.0.1:0", 'ssl.client.auth = "required"'),
        name="mtls",
    )
    alice = ck_conf(broker.bootstrap, pki, identity="alice")
    topic = unique("mtls-ck")
    ck_create(alice, topic)
    assert ck_round_trip(alice, topic, count=10) == [f"tls-{i}".encode() for i in range(10)]
    from confluent_kafka.admin import AdminClient

    for identity in (None, "mallory"):
        admin = AdminClient(ck_conf(broker.bootstrap, pki, identity=identity))
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=3)
    assert broker.alive()


def test_confluent_mtls_subject_is_the_principal(broker_factory: BrokerFactory, pki: Pki):
    # Goal (issue 15 item 2): with ACLs enforced, the client certificate's subject mapped by
    # ssl.principal.mapping.rules is the principal: CN=admin is a super user (creates the
    # topic and an ACL), CN=alice writes through an ACL for User:alice, CN=bob gets
    # TOPIC_AUTHORIZATION_FAILED. Method: an SSL-only broker with the StandardAuthorizer,
    # librdkafka clients presenting the three certificates.
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    extra = '''
ssl.client.auth = "required"
"ssl.principal.mapping.rules" = "RULE:^CN=([^,]*).*$/$1/"
"authorizer.class.name" = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
"super.users" = "User:admin"
"weir.authorizer.audit.log" = "denied"
'''
    broker = broker_factory.new(config=tls_config(pki, "SSL://127.0.0.1:0", extra), name="mtls-acl")
    admin_conf = ck_conf(broker.bootstrap, pki, identity="admin")
    topic = unique("mtls-acl")
    ck_create(admin_conf, topic)
    binding = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.WRITE, AclPermissionType.ALLOW)
    admin = AdminClient(admin_conf)  # kept alive until the futures resolve
    for future in admin.create_acls([binding], request_timeout=15).values():
        future.result()

    def produce_errors(identity: str) -> list:
        conf = {**ck_conf(broker.bootstrap, pki, identity=identity), "message.timeout.ms": 8000, "acks": "all"}
        producer = Producer(conf)
        results: list = []
        for i in range(3):
            producer.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, msg: results.append(err))
        producer.flush(20)
        assert len(results) == 3, results
        return results

    assert produce_errors("alice") == [None, None, None]
    errors = produce_errors("bob")
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
    assert "User:bob" in broker.log_text(), "the audit log names the mapped principal"
    assert broker.alive()


def test_confluent_expired_certificates_are_refused(broker_factory: BrokerFactory, pki: Pki):
    # Goal (issue 15 item 5): librdkafka refuses a broker whose certificate expired, and an
    # ssl.client.auth=required listener refuses librdkafka presenting an expired certificate
    # from the trusted CA; each broker keeps serving valid clients. Method: a broker with an
    # expired keystore beside PLAINTEXT, and an mTLS broker; admin calls that must fail.
    from confluent_kafka.admin import AdminClient

    config = tls_config(pki, "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0")
    config = config.replace(str(pki.broker_keystore), str(pki.expired_keystore))
    stale = broker_factory.new(config=config, name="tls-expired-server")
    ssl_bootstrap = _listener_address(stale, "SSL")
    with pytest.raises(KafkaException):
        AdminClient(ck_conf(ssl_bootstrap, pki)).list_topics(timeout=3)
    assert stale.alive()
    assert AdminClient({"bootstrap.servers": stale.bootstrap}).list_topics(timeout=10).brokers

    mtls = broker_factory.new(
        config=tls_config(pki, "SSL://127.0.0.1:0", 'ssl.client.auth = "required"'),
        name="tls-expired-client",
    )
    with pytest.raises(KafkaException):
        AdminClient(ck_conf(mtls.bootstrap, pki, identity="expired")).list_topics(timeout=3)
    alice = ck_conf(mtls.bootstrap, pki, identity="alice")
    topic = unique("after-expired")
    ck_create(alice, topic)
    assert ck_round_trip(alice, topic, count=3) == [f"tls-{i}".encode() for i in range(3)]
    assert "expired" in mtls.log_text().lower(), "the refusal is logged with its reason"


def _listener_address(broker: Broker, name: str) -> str:
    """The address a broker announced for its listener `name` at start."""
    import re

    found = re.search(rf"weir listener {name} \({name}\) on (\S+)", broker.log_text())
    assert found, broker.log_text()
    return found.group(1)


def test_kafka_python_ssl(broker_factory: BrokerFactory, pki: Pki):
    # Goal: kafka-python with security_protocol=SSL (ssl_cafile, and a client certificate
    # for mTLS) produces and consumes. Method: an SSL-only broker requiring client
    # certificates; one producer and one assigned consumer.
    from kafka import TopicPartition as KpTopicPartition

    broker = broker_factory.new(
        config=tls_config(pki, "SSL://127.0.0.1:0", 'ssl.client.auth = "required"'),
        name="tls-kp",
    )
    ssl = dict(
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
    )
    topic = unique("tls-kp")
    ck_create(ck_conf(broker.bootstrap, pki, identity="alice"), topic)
    producer = kp_producer(broker.bootstrap, acks="all", **ssl)
    try:
        for i in range(15):
            producer.send(topic, value=f"kp-{i}".encode(), partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = kp_consumer(broker.bootstrap, **ssl)
    try:
        tp = KpTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = kp_read(consumer, {tp: 15})
    finally:
        consumer.close()
    assert [r.value for r in records] == [f"kp-{i}".encode() for i in range(15)]


def test_kcat_ssl(broker_factory: BrokerFactory, pki: Pki):
    # Goal: kcat (Debian's librdkafka) produces and consumes over SSL with
    # -X security.protocol=ssl -X ssl.ca.location=CA. Method: -P five lines, -C -e them back.
    broker = broker_factory.new(config=tls_config(pki, "SSL://127.0.0.1:0"), name="tls-kcat")
    topic = unique("tls-kcat")
    ck_create(ck_conf(broker.bootstrap, pki), topic)
    ssl = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki.ca}"]
    lines = b"".join(f"kcat-{i}\n".encode() for i in range(5))
    res = kcat(["-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", *ssl], stdin=lines, timeout=60)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    res = kcat(["-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", *ssl], timeout=60)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout.decode().splitlines() == [f"kcat-{i}" for i in range(5)]


def test_plaintext_client_on_tls_port_is_closed(broker_factory: BrokerFactory, pki: Pki):
    # Goal: a plaintext Kafka client on the SSL port gets a closed connection and the broker
    # keeps serving TLS clients. Method: raw ApiVersions bytes, then a TLS round trip.
    import socket

    from weirtest import frame, i16, i32, kstring

    broker = broker_factory.new(config=tls_config(pki, "SSL://127.0.0.1:0"), name="tls-wrong")
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(frame(i16(18) + i16(0) + i32(1) + kstring("plaintext")))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    # At most a TLS alert record (content type 21), never a Kafka answer.
    assert data == b"" or data[0] == 21, data
    topic = unique("tls-after")
    conf = ck_conf(broker.bootstrap, pki)
    ck_create(conf, topic)
    assert len(ck_round_trip(conf, topic, count=3)) == 3
    assert broker.alive()
