"""The schema registry in a secured 3-node cluster (issue 17): SASL_PLAINTEXT (then SASL_SSL)
listeners only, the StandardAuthorizer, and the registry logging in with its own SCRAM user through
Confluent Schema Registry's keys (`kafkastore.security.protocol`, `kafkastore.sasl.mechanism`,
`kafkastore.sasl.jaas.config`).

Goal: a schema registered through broker B, whose `_schemas` leader is broker A, is read by
id through broker C: every connection the registry opens to another broker logs in as
`User:registry` and is authorized as that user. Without the ACLs it needs, the registry
answers at once with Confluent's 50001 naming the refusal and the principal, for writes
and for reads (never a hang, never an empty registry answering "not found").

Method: three `weir serve` processes whose registered listener is SASL_PLAINTEXT, then
SASL_SSL with certificates from test_tls's CA (PLAIN
users `admin`, a super user, from the listener's JAAS config; `registry` a SCRAM-SHA-256
user of the metadata log, created by admin). Register with no ACLs, then with `_schemas`
ACLs but none on the transactional id, then with both; find the leader of `_schemas`-0
from Metadata and write and read through the two other brokers. Both of them write, so
whichever broker coordinates the transactional id, at least one write's transaction
(InitProducerId, AddPartitionsToTxn, EndTxn) went to another broker as well.

A registry that cannot log in at all (no `kafkastore.*`, or a user the cluster does not
know) is refused at once with what to fix.

Marker: `cluster`.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from test_cluster import CLUSTER_CONFIG, Cluster
from test_tls import Pki, pki  # noqa: F401 (pki: fixture)
from weirtest import ck_admin, free_port, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

HEADERS = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\\"admin-secret\\";'
REGISTRY_JAAS = (
    'org.apache.kafka.common.security.scram.ScramLoginModule required '
    'username=\\"registry\\" password=\\"registry-secret\\";'
)
ADMIN = {
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "PLAIN",
    "sasl.username": "admin",
    "sasl.password": "admin-secret",
}


def admin_conf(protocol: str, pki: Pki) -> dict:
    if protocol == "SASL_SSL":
        return {**ADMIN, "security.protocol": "SASL_SSL", "ssl.ca.location": str(pki.ca)}
    return ADMIN
# A refusal must come back well before the registry's own 15 s wait would end.
REFUSAL_SECONDS_MAX = 10.0


def secured_config(registry_port: int, protocol: str = "SASL_PLAINTEXT", pki: Pki | None = None) -> str:
    tls = ""
    if protocol == "SASL_SSL":
        assert pki is not None
        # The registered listener's truststore is what the registry verifies brokers with.
        tls = f"""
"ssl.keystore.type" = "PEM"
"ssl.keystore.location" = "{pki.broker_keystore}"
"ssl.truststore.type" = "PEM"
"ssl.truststore.location" = "{pki.ca}"
"""
    return CLUSTER_CONFIG + tls + f"""
listeners = "{protocol}://127.0.0.1:0"
"listener.name.{protocol.lower()}.plain.sasl.jaas.config" = "{JAAS}"
"authorizer.class.name" = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
"super.users" = "User:admin"
"weir.authorizer.audit.log" = "denied"
"weir.schema.registry.listener" = "127.0.0.1:{registry_port}"
"kafkastore.security.protocol" = "{protocol}"
"kafkastore.sasl.mechanism" = "SCRAM-SHA-256"
"kafkastore.sasl.jaas.config" = "{REGISTRY_JAAS}"
"""


@pytest.fixture(params=["SASL_PLAINTEXT", "SASL_SSL"])
def secured(tmp_path, request, pki):
    protocol = request.param
    admin = admin_conf(protocol, pki)
    cluster = Cluster(tmp_path / "cluster", 3)
    urls = {}
    for node_id, node in cluster.nodes.items():
        port = free_port()
        node.config_path.write_text(secured_config(port, protocol, pki))
        urls[node_id] = f"http://127.0.0.1:{port}"
    cluster.start()
    try:

        def formed():
            for node in cluster.alive():
                md = ck_admin(node.bootstrap, **admin).list_topics(timeout=5)
                if len(md.brokers) != 3 or md.controller_id not in md.brokers:
                    return False
            return True

        wait_until(formed, 60, "the secured cluster to form", interval=0.25)
        yield cluster, urls, admin
    finally:
        cluster.close()


def record(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "a", "type": "int"}]})


def post_schema(url: str, subject: str, schema: str) -> tuple[requests.Response, float]:
    start = time.monotonic()
    response = requests.post(
        f"{url}/subjects/{subject}/versions", json={"schema": schema}, headers=HEADERS, timeout=60
    )
    return response, time.monotonic() - start


def assert_refused(response: requests.Response, seconds: float, *needles: str) -> None:
    assert response.status_code == 500, (response.status_code, response.text)
    body = response.json()
    assert body["error_code"] == 50001, body
    for needle in needles:
        assert needle in body["message"], body
    assert seconds < REFUSAL_SECONDS_MAX, (seconds, body)


def grant(admin, restype: ResourceType, name: str, *operations: AclOperation) -> None:
    bindings = [
        AclBinding(restype, name, ResourcePatternType.LITERAL, "User:registry", "*", op,
                   AclPermissionType.ALLOW)
        for op in operations
    ]
    for future in admin.create_acls(bindings, request_timeout=15).values():
        future.result()


def schemas_leader(bootstrap: str, admin: dict = ADMIN) -> int:
    md = ck_admin(bootstrap, **admin).list_topics(topic="_schemas", timeout=5)
    topic = md.topics.get("_schemas")
    if topic is None or topic.error is not None or 0 not in topic.partitions:
        return -1
    return topic.partitions[0].leader


def test_registry_logs_in_to_other_brokers_and_is_authorized_as_its_user(secured):
    cluster, urls, conf = secured
    admin = ck_admin(cluster.bootstrap(), **conf)
    upsert = UserScramCredentialUpsertion(
        "registry", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"registry-secret"
    )
    admin.alter_user_scram_credentials([upsert])["registry"].result(timeout=20)

    # 1. No ACLs at all: the write is refused naming the principal, and a read through
    #    another broker says why it cannot read `_schemas` instead of "not found".
    response, seconds = post_schema(urls[1], "secured-value", record("First"))
    assert_refused(response, seconds, "TOPIC_AUTHORIZATION_FAILED", "User:registry")
    start = time.monotonic()
    read = requests.get(f"{urls[3]}/schemas/ids/1", timeout=60)
    assert_refused(read, time.monotonic() - start, "AUTHORIZATION_FAILED", "User:registry")

    # 2. `_schemas` allowed, the transactional id not: the topic is created, the
    #    transaction is refused by its coordinator.
    grant(admin, ResourceType.TOPIC, "_schemas",
          AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.CREATE)
    response, seconds = wait_until(
        lambda: (lambda r: r if "TOPIC_AUTHORIZATION" not in r[0].text else None)(
            post_schema(urls[1], "secured-value", record("First"))),
        30,
        "the topic ACLs to reach broker 1",
    )
    assert_refused(response, seconds, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "User:registry")

    # 3. With the transactional id as well: write through B, read by id through C, where
    #    neither leads `_schemas`-0, so both reach A over SASL as User:registry.
    grant(admin, ResourceType.TRANSACTIONAL_ID, "__weir_schema_registry",
          AclOperation.WRITE, AclOperation.DESCRIBE)
    leader = wait_until(lambda: schemas_leader(cluster.bootstrap(), conf) in urls and
                        schemas_leader(cluster.bootstrap(), conf), 30, "_schemas-0 to have a leader")
    b, c = [node_id for node_id in urls if node_id != leader]

    def registered():
        response, _ = post_schema(urls[b], "secured-value", record("First"))
        return response.json()["id"] if response.status_code == 200 else None

    schema_id = wait_until(registered, 30, f"a write through broker {b} (leader {leader})")

    def read_by_id():
        response = requests.get(f"{urls[c]}/schemas/ids/{schema_id}", timeout=30)
        return response.json() if response.status_code == 200 else None

    got = wait_until(read_by_id, 30, f"broker {c} to serve id {schema_id}")
    assert json.loads(got["schema"])["name"] == "First", got
    # A second version through C (writes from there reach A too) and the subject through B.
    response, _ = post_schema(urls[c], "secured-value", record("First").replace('"int"', '"long"'))
    assert response.status_code == 200, response.text
    second = response.json()["id"]
    assert second != schema_id
    versions = wait_until(
        lambda: (lambda v: v if v == [1, 2] else None)(
            requests.get(f"{urls[b]}/subjects/secured-value/versions", timeout=30).json()),
        30,
        f"broker {b} to list both versions",
    )
    assert versions == [1, 2]
    assert schemas_leader(cluster.bootstrap(), conf) == leader


WRONG_LOGIN = """
"kafkastore.sasl.mechanism" = "SCRAM-SHA-256"
"kafkastore.sasl.jaas.config" = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\\"ghost\\" password=\\"nope\\";"
"""


@pytest.mark.parametrize("login", ["none", "unknown-user"])
def test_a_registry_that_cannot_log_in_is_refused_saying_why(tmp_path, login):
    # Goal: a registry that cannot log in to other brokers of a SASL cluster (no
    # `kafkastore.sasl.*` at all, or a SCRAM user the cluster does not know) answers a write
    # that must reach the `_schemas` leader elsewhere at once, saying why, instead of
    # retrying into a timeout. Method: two brokers, no authorizer; create `_schemas` (the
    # write through broker 1 does), then write through the broker that does not lead it.
    cluster = Cluster(tmp_path / "cluster", 2)
    urls = {}
    for node_id, node in cluster.nodes.items():
        port = free_port()
        config = secured_config(port)
        config = "\n".join(
            line for line in config.splitlines()
            if not line.startswith(('"kafkastore.', '"authorizer.', '"super.users'))
        )
        if login == "unknown-user":
            config += WRONG_LOGIN
        node.config_path.write_text(config + "\n")
        urls[node_id] = f"http://127.0.0.1:{port}"
    cluster.start()
    try:
        wait_until(
            lambda: len(ck_admin(cluster.nodes[1].bootstrap, **ADMIN).list_topics(timeout=5).brokers) == 2,
            60,
            "the cluster to form",
        )
        post_schema(urls[1], "plain-value", record("Plain"))
        leader = wait_until(lambda: schemas_leader(cluster.bootstrap()) in urls and
                            schemas_leader(cluster.bootstrap()), 30, "_schemas-0 to have a leader")
        other = 1 if leader == 2 else 2
        response, seconds = post_schema(urls[other], "plain-value", record("Plain"))
        if login == "none":
            assert_refused(
                response, seconds,
                f"cannot reach broker {leader}",
                "requires SASL",
                "kafkastore.sasl.jaas.config",
            )
            assert "has no login" in cluster.nodes[other].log_text()
        else:
            assert_refused(response, seconds, f"broker {leader}", "refused the user")
            assert "nope" not in response.text
    finally:
        cluster.close()
