"""ACL authorization with real clients (issue 15 item 3): confluent-kafka's AdminClient
creates, describes and deletes ACLs over SASL_PLAINTEXT; a user allowed on one topic and
not on another sees only the allowed one and gets TOPIC_AUTHORIZATION_FAILED on the other;
a consumer denied on its group gets GROUP_AUTHORIZATION_FAILED; prefixed ACLs; a DENY
overrides an ALLOW; super users; a transactional producer without its TransactionalId
ACL fails; ACLs survive a broker restart; kafka-python's admin describes them too.

The broker runs `authorizer.class.name = StandardAuthorizer` with PLAIN users from Kafka's
JAAS syntax on a SASL_PLAINTEXT listener; `User:admin` is a super user. The harness's
PLAINTEXT port is anonymous and `User:ANONYMOUS` is a super user as well, as an operator
would treat a trusted local listener.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from weirtest import BrokerFactory, free_port, unique, wait_until

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'user_admin=\\"admin-secret\\" user_alice=\\"alice-secret\\" user_bob=\\"bob-secret\\";'
)
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def acl_broker(broker_factory: BrokerFactory):
    port = free_port()
    config = f"""
listeners = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{port}"
"weir.gateway.listener" = "off"
"listener.name.sasl_plaintext.plain.sasl.jaas.config" = "{JAAS}"
"authorizer.class.name" = "{AUTHORIZER}"
"super.users" = "User:admin;User:ANONYMOUS"
"weir.authorizer.audit.log" = "denied"
"""
    broker = broker_factory.new(config=config, name="acl")
    return broker, f"127.0.0.1:{port}"


def conf(bootstrap: str, user: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": f"{user}-secret",
    }


def topic_acl(name: str, principal: str, op: AclOperation, allow: bool = True,
              pattern: ResourcePatternType = ResourcePatternType.LITERAL,
              restype: ResourceType = ResourceType.TOPIC) -> AclBinding:
    permission = AclPermissionType.ALLOW if allow else AclPermissionType.DENY
    return AclBinding(restype, name, pattern, principal, "*", op, permission)


def create_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for future in admin.create_acls(bindings, request_timeout=15).values():
        future.result()


def create_topics(admin: AdminClient, *names: str) -> None:
    futures = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
    for future in futures.values():
        future.result(timeout=20)


def produce_errors(bootstrap: str, user: str, topic: str, count: int = 3) -> list:
    """Produce `count` values as `user`; each delivery's error (None when acknowledged)."""
    producer = Producer({**conf(bootstrap, user), "message.timeout.ms": 8000, "acks": "all"})
    results: list = []
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, msg: results.append(err))
    producer.flush(20)
    assert len(results) == count, results
    return results


def test_admin_acls_topic_and_group_authorization(broker_factory: BrokerFactory):
    # Goal: AdminClient's create/describe/delete_acls work; alice, allowed on one topic,
    # sees only it in Metadata, writes it, and gets TOPIC_AUTHORIZATION_FAILED on the other;
    # her consumer in a group she has no ACL for gets GROUP_AUTHORIZATION_FAILED while
    # the allowed group consumes. Method: one broker, admin (super user) sets ACLs.
    broker, bootstrap = acl_broker(broker_factory)
    admin = AdminClient(conf(bootstrap, "admin"))
    allowed, denied = unique("acl-ok"), unique("acl-no")
    create_topics(admin, allowed, denied)
    group_ok = unique("g-ok")
    create_acls(admin, [
        topic_acl(allowed, "User:alice", AclOperation.WRITE),
        topic_acl(allowed, "User:alice", AclOperation.READ),
        topic_acl(group_ok, "User:alice", AclOperation.READ, restype=ResourceType.GROUP),
    ])
    described = admin.describe_acls(
        AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None,
                         AclOperation.ANY, AclPermissionType.ANY), request_timeout=15).result()
    assert len(described) == 3, described
    assert {(b.name, b.operation) for b in described if b.restype == ResourceType.TOPIC} == {
        (allowed, AclOperation.WRITE), (allowed, AclOperation.READ)}

    alice = AdminClient(conf(bootstrap, "alice"))
    visible = set(alice.list_topics(timeout=10).topics)
    assert allowed in visible and denied not in visible, visible
    requested = alice.list_topics(topic=denied, timeout=10).topics[denied]
    assert requested.error is not None and requested.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_errors(bootstrap, "alice", allowed) == [None, None, None]
    errors = produce_errors(bootstrap, "alice", denied)
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
    # A topic that does not exist answers the same (no existence leak).
    errors = produce_errors(bootstrap, "alice", unique("acl-ghost"), count=1)
    assert errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors

    from confluent_kafka import Consumer

    def consume(group: str):
        consumer = Consumer({**conf(bootstrap, "alice"), "group.id": group,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([allowed])
        try:
            for _ in range(100):
                m = consumer.poll(0.2)
                if m is None:
                    continue
                return m.error().code() if m.error() else m.value()
            return None
        finally:
            consumer.close()

    assert consume(unique("g-denied")) == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert consume(group_ok) == b"v0"
    assert "is Denied operation = READ on resource = GROUP" in broker.log_text()

    # DeleteAcls returns what each filter matched; alice loses her write.
    deleted = admin.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, allowed, ResourcePatternType.LITERAL, "User:alice", "*",
        AclOperation.WRITE, AclPermissionType.ALLOW)], request_timeout=15)
    matched = list(deleted.values())[0].result()
    assert [(b.name, b.operation) for b in matched] == [(allowed, AclOperation.WRITE)]
    errors = produce_errors(bootstrap, "alice", allowed, count=1)
    assert errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_prefixed_deny_super_user_transactions_and_restart(broker_factory: BrokerFactory):
    # Goal: a PREFIXED allow covers the prefix; a literal DENY overrides it; the super user
    # is never denied; a transactional producer without a TransactionalId ACL fails; bob,
    # without any ACL, cannot create ACLs; everything survives a broker restart.
    # Method: one broker; produce as alice, bob and admin; restart; check again.
    broker, bootstrap = acl_broker(broker_factory)
    admin = AdminClient(conf(bootstrap, "admin"))
    prefix = unique("pre") + "-"
    open_topic, secret = prefix + "open", prefix + "secret"
    create_topics(admin, open_topic, secret)
    create_acls(admin, [
        topic_acl(prefix, "User:alice", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        topic_acl(secret, "User:alice", AclOperation.WRITE, allow=False),
    ])
    assert produce_errors(bootstrap, "alice", open_topic) == [None, None, None]
    errors = produce_errors(bootstrap, "alice", secret, count=1)
    assert errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_errors(bootstrap, "admin", secret, count=1) == [None]

    bob = AdminClient(conf(bootstrap, "bob"))
    with pytest.raises(KafkaException) as refused:
        for future in bob.create_acls([topic_acl(secret, "User:bob", AclOperation.ALL)],
                                      request_timeout=15).values():
            future.result()
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    txn = Producer({**conf(bootstrap, "alice"), "transactional.id": unique("tx"),
                    "transaction.timeout.ms": 10000})
    with pytest.raises(KafkaException) as failed:
        txn.init_transactions(15)
    assert failed.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, failed.value

    broker.restart()
    wait_until(lambda: AdminClient(conf(bootstrap, "admin")).list_topics(timeout=5).brokers, 20,
               "broker back")
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    after = AdminClient(conf(bootstrap, "admin")).describe_acls(everything, request_timeout=15).result()
    assert len(after) == 2, after
    errors = produce_errors(bootstrap, "alice", secret, count=1)
    assert errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_errors(bootstrap, "alice", open_topic, count=1) == [None]

    # kafka-python's admin (plaintext, anonymous super user) sees the same ACLs.
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        acls, error = kp.describe_acls(ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KpResourceType.TOPIC, None, ACLResourcePatternType.ANY)))
        assert error is not None and error.errno == 0, error
    finally:
        kp.close()
    assert len(acls) == 2, acls
