"""SASL with real clients (issue 15 item 2): confluent-kafka (librdkafka) over
SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; SCRAM users made
with `weir user add` and with librdkafka's KIP-554 admin calls; kafka-python and kcat over
SASL; wrong passwords and disabled mechanisms refused.

Each broker has three listeners: PLAINTEXT (the harness's port, where users are created as
an operator would over a trusted listener), SASL_PLAINTEXT and SASL_SSL, with PLAIN users
from Kafka's PlainLoginModule JAAS syntax. Certificates come from test_tls's `pki`.
"""

from __future__ import annotations

import subprocess

import pytest
from confluent_kafka import KafkaException

from test_tls import Pki, ck_create, ck_round_trip, pki, tls_config  # noqa: F401 (pki: fixture)
from weirtest import (
    BrokerFactory,
    free_port,
    kcat,
    kp_consumer,
    kp_producer,
    kp_read,
    unique,
    weir_bin,
)

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'user_alice=\\"alice-secret\\";'
)


def sasl_broker(broker_factory: BrokerFactory, pki: Pki, extra: str = ""):
    plain_port, ssl_port = free_port(), free_port()
    listeners = (
        f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{plain_port},"
        f"SASL_SSL://127.0.0.1:{ssl_port}"
    )
    config = tls_config(
        pki,
        listeners,
        f'"listener.name.sasl_plaintext.plain.sasl.jaas.config" = "{JAAS}"\n'
        f'"listener.name.sasl_ssl.plain.sasl.jaas.config" = "{JAAS}"\n{extra}',
    )
    broker = broker_factory.new(config=config, name="sasl")
    return broker, f"127.0.0.1:{plain_port}", f"127.0.0.1:{ssl_port}"


def weir_user_add(bootstrap: str, name: str, mechanism: str, password: str) -> None:
    out = subprocess.run(
        [str(weir_bin()), "user", "add", name, "--mechanism", mechanism, "--password", password,
         "--bootstrap-server", bootstrap],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"user={name} mechanism={mechanism}" in out.stdout


def sasl_conf(bootstrap: str, protocol: str, mechanism: str, user: str, password: str, pki: Pki) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(pki.ca)
    return conf


def test_confluent_every_mechanism_over_sasl_plaintext_and_sasl_ssl(broker_factory: BrokerFactory, pki: Pki):
    # Goal: librdkafka authenticates with PLAIN (JAAS users), SCRAM-SHA-256 and
    # SCRAM-SHA-512 (users added by `weir user add`) over both SASL_PLAINTEXT and SASL_SSL,
    # then creates a topic, produces with acks=all and consumes it back; Metadata sends it
    # to the port of the listener it came on. Method: one broker, six client configs.
    broker, plain_bootstrap, ssl_bootstrap = sasl_broker(broker_factory, pki)
    weir_user_add(broker.bootstrap, "bob", "SCRAM-SHA-256", "bob-secret")
    weir_user_add(broker.bootstrap, "carol", "SCRAM-SHA-512", "carol-secret")
    users = [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "bob", "bob-secret"),
             ("SCRAM-SHA-512", "carol", "carol-secret")]
    from confluent_kafka.admin import AdminClient

    for protocol, bootstrap in (("SASL_PLAINTEXT", plain_bootstrap), ("SASL_SSL", ssl_bootstrap)):
        for mechanism, user, password in users:
            conf = sasl_conf(bootstrap, protocol, mechanism, user, password, pki)
            topic = unique(f"sasl-{mechanism.lower()}")
            ck_create(conf, topic)
            assert ck_round_trip(conf, topic, count=5) == [f"tls-{i}".encode() for i in range(5)]
            brokers = AdminClient(conf).list_topics(timeout=10).brokers
            port = int(bootstrap.rsplit(":", 1)[1])
            assert [b.port for b in brokers.values()] == [port], (protocol, brokers)


def test_confluent_wrong_password_unknown_user_and_disabled_mechanism(broker_factory: BrokerFactory, pki: Pki):
    # Goal: a wrong password, an unknown user and a mechanism the listener does not enable
    # all fail to connect (librdkafka reports the authentication failure), while a good
    # client keeps working. Method: SCRAM-SHA-256 only on SASL_PLAINTEXT.
    broker, plain_bootstrap, _ = sasl_broker(
        broker_factory, pki,
        '"listener.name.sasl_plaintext.sasl.enabled.mechanisms" = "SCRAM-SHA-256"',
    )
    weir_user_add(broker.bootstrap, "bob", "SCRAM-SHA-256", "bob-secret")
    from confluent_kafka.admin import AdminClient

    for mechanism, user, password in (("SCRAM-SHA-256", "bob", "not-bobs-pw-7q"),
                                      ("SCRAM-SHA-256", "nobody", "x"),
                                      ("PLAIN", "alice", "alice-secret")):
        admin = AdminClient(sasl_conf(plain_bootstrap, "SASL_PLAINTEXT", mechanism, user, password, pki))
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=3)
    good = AdminClient(sasl_conf(plain_bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-secret", pki))
    assert good.list_topics(timeout=10).brokers
    log = broker.log_text()
    assert "not-bobs-pw-7q" not in log and "bob-secret" not in log, "no password is logged"


def test_confluent_kip554_admin_calls(broker_factory: BrokerFactory, pki: Pki):
    # Goal: librdkafka's own AlterUserScramCredentials / DescribeUserScramCredentials work
    # against Weir: a user created by them logs in with SCRAM-SHA-512, is described with
    # its mechanism and iterations, and is gone after deletion. Method: AdminClient calls
    # over the PLAINTEXT listener, then a SASL_SSL login.
    from confluent_kafka.admin import (
        AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    broker, _, ssl_bootstrap = sasl_broker(broker_factory, pki)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    upsert = UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"dave-secret"
    )
    admin.alter_user_scram_credentials([upsert])["dave"].result(timeout=20)
    described = admin.describe_user_scram_credentials(["dave"])["dave"].result(timeout=20)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    conf = sasl_conf(ssl_bootstrap, "SASL_SSL", "SCRAM-SHA-512", "dave", "dave-secret", pki)
    assert AdminClient(conf).list_topics(timeout=10).brokers
    deletion = UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion])["dave"].result(timeout=20)
    with pytest.raises(KafkaException):
        AdminClient(conf).list_topics(timeout=3)


def test_kafka_python_sasl(broker_factory: BrokerFactory, pki: Pki):
    # Goal: kafka-python authenticates with SCRAM-SHA-256 over SASL_PLAINTEXT and PLAIN
    # over SASL_SSL, produces and consumes. Method: one producer and one assigned consumer
    # per listener.
    from kafka import TopicPartition as KpTopicPartition

    broker, plain_bootstrap, ssl_bootstrap = sasl_broker(broker_factory, pki)
    weir_user_add(broker.bootstrap, "bob", "SCRAM-SHA-256", "bob-secret")
    cases = [
        (plain_bootstrap, dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                               sasl_plain_username="bob", sasl_plain_password="bob-secret")),
        (ssl_bootstrap, dict(security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                             sasl_plain_username="alice", sasl_plain_password="alice-secret",
                             ssl_cafile=str(pki.ca))),
    ]
    for bootstrap, security in cases:
        topic = unique("sasl-kp")
        producer = kp_producer(bootstrap, acks="all", **security)
        for i in range(5):
            producer.send(topic, value=f"kp-{i}".encode()).get(timeout=30)
        producer.close()
        consumer = kp_consumer(bootstrap, **security)
        tp = KpTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = kp_read(consumer, {tp: 5})
        consumer.close()
        assert [r.value for r in records] == [f"kp-{i}".encode() for i in range(5)]


def test_kcat_sasl_scram(broker_factory: BrokerFactory, pki: Pki):
    # Goal: kcat (Debian's librdkafka 2.0) lists metadata and produces over SASL_PLAINTEXT
    # with SCRAM-SHA-512, and fails with a wrong password. Method: `kcat -L` and `-P`.
    broker, plain_bootstrap, _ = sasl_broker(broker_factory, pki)
    weir_user_add(broker.bootstrap, "carol", "SCRAM-SHA-512", "carol-secret")

    def sasl(password: str) -> list[str]:
        return ["-b", plain_bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=carol",
                "-X", f"sasl.password={password}"]

    listed = kcat([*sasl("carol-secret"), "-L", "-m", "10"])
    assert listed.returncode == 0, listed.stderr
    assert f"127.0.0.1:{plain_bootstrap.rsplit(':', 1)[1]}" in listed.stdout.decode()
    topic = unique("sasl-kcat")
    produced = kcat([*sasl("carol-secret"), "-P", "-t", topic], stdin=b"a\nb\nc\n")
    assert produced.returncode == 0, produced.stderr
    refused = kcat([*sasl("wrong"), "-L", "-m", "5"], timeout=30)
    assert refused.returncode != 0
