"""Broker-side schema validation (issue 17 item 4): a topic with
`confluent.value.schema.validation=true` (or the key's) takes only records framed in
Confluent's wire format with a schema id registered under the subject its strategy names.
Real `weir serve` with its registry, librdkafka through confluent-kafka and its
AvroSerializer against Weir's registry.

- Valid records (AvroSerializer) are accepted; a record without the magic byte, with an
  unknown id, or with an id registered under another subject is refused with INVALID_RECORD
  and a message naming the record; nothing refused is stored; the broker keeps serving. An
  id above every id handed out is retried for the broker's grace, then refused.
- The configs are altered on a live topic (IncrementalAlterConfigs), described, and a bad
  value is refused with INVALID_CONFIG.
- RecordNameStrategy (Confluent's class name) and key validation.
- Registry off + validation on: refused with a message saying so.
- The REST proxy's produce goes through the same check.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid

import pytest
import requests
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry import record_subject_name_strategy
from confluent_kafka.serialization import MessageField, SerializationContext

from weirtest import ck_admin, ck_create_topic, ck_read, free_port, kp_producer

USER = json.dumps(
    {
        "type": "record",
        "name": "User",
        "namespace": "weir.test",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
    }
)
ORDER = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "weir.test",
        "fields": [{"name": "id", "type": "long"}],
    }
)
VALIDATE_VALUES = {"confluent.value.schema.validation": "true"}


@pytest.fixture
def registry(broker_factory):
    """A broker with the registry on a free port; yields (broker, base URL)."""
    port = free_port()
    config = (
        f'"weir.schema.registry.listener" = "127.0.0.1:{port}"\n'
        '"weir.rest.proxy.listener" = "off"\n'
        '"weir.gateway.listener" = "off"\n'
    )
    broker = broker_factory.new(config=config, name="validation")
    yield broker, f"http://127.0.0.1:{port}"


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def framed(schema_id: int, payload: bytes = b"\x02x\x02") -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + payload


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]):
    """Produce each (key, value) as its own batch (one per flush); return each delivery's
    error (None when delivered)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 0,
            "message.timeout.ms": 20000,
            "enable.idempotence": False,
        }
    )
    errors = []
    for key, value in records:
        result = []
        producer.produce(topic, key=key, value=value, on_delivery=lambda e, m: result.append(e))
        assert producer.flush(30) == 0, "delivery report missing"
        errors.append(result[0])
    return errors


def kp_refusals(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]):
    """Produce each (key, value) alone with kafka-python, which surfaces the broker's
    error_message and record_errors (librdkafka 2.16 shows only the code's text); return
    each record's exception (None when delivered)."""
    # Retries: an id above every id the broker's registry has read is answered
    # NOT_ENOUGH_REPLICAS (retriable) for a grace of 3 s, then INVALID_RECORD.
    producer = kp_producer(bootstrap, retries=20, retry_backoff_ms=500, linger_ms=0)
    refusals = []
    try:
        for key, value in records:
            future = producer.send(topic, key=key, value=value)
            producer.flush(30)
            try:
                future.get(timeout=30)
                refusals.append(None)
            except Exception as error:  # noqa: BLE001 - the refusal is what is checked
                refusals.append(error)
    finally:
        producer.close(5)
    return refusals


def assert_invalid_record(error, *reasons: str):
    """`error` is a librdkafka delivery error (INVALID_RECORD) or kafka-python's exception
    (InvalidRecordError carrying the broker's message, which must hold every reason)."""
    assert error is not None, "the record was accepted"
    if isinstance(error, KafkaError):
        assert error.code() == KafkaError.INVALID_RECORD, f"{error.name()}: {error.str()}"
        return
    assert type(error).__name__ == "InvalidRecordError", repr(error)
    text = str(error)
    for reason in reasons:
        assert reason in text, f"{reason!r} not in {text!r}"


def assert_refused(bootstrap, topic, records, *reasons_per_record):
    """Both clients get INVALID_RECORD for each record; kafka-python's message holds the
    reasons given for that record."""
    for error in produce(bootstrap, topic, records):
        assert_invalid_record(error)
    for error, reasons in zip(kp_refusals(bootstrap, topic, records), reasons_per_record):
        assert_invalid_record(error, *reasons)


def stored_values(bootstrap: str, topic: str) -> list[bytes]:
    return [rec.value for rec in ck_read(bootstrap, topic, {0: 0})]


def test_valid_records_pass_and_bad_ones_are_refused(registry):
    # Goal: with value validation on, AvroSerializer's records are stored; a value without
    # the magic byte, with an id the registry never handed out, or with an id registered
    # only under another subject, is refused with INVALID_RECORD and a message naming the
    # record and why; none of them is stored, and the broker keeps serving.
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = topic_name("validated")
    ck_create_topic(broker.bootstrap, topic, config=VALIDATE_VALUES)
    serializer = AvroSerializer(client, USER)
    ctx = SerializationContext(topic, MessageField.VALUE)
    good = [serializer({"name": f"u{i}", "age": i}, ctx) for i in range(3)]
    assert produce(broker.bootstrap, topic, [(None, v) for v in good]) == [None] * 3
    other_id = client.register_schema(f"other-{topic}-value", Schema(ORDER, "AVRO"))
    user_id = client.get_latest_version(f"{topic}-value").schema_id
    assert other_id != user_id
    # An id above every id the registry handed out may be one registered a moment ago on
    # another broker: it is retried (NOT_ENOUGH_REPLICAS) for the 3 s grace, then refused.
    started = time.monotonic()
    assert_invalid_record(produce(broker.bootstrap, topic, [(None, framed(other_id + 1))])[0])
    assert time.monotonic() - started >= 2.5
    assert_refused(
        broker.bootstrap,
        topic,
        [
            (None, b'{"name": "plain json"}'),
            (None, framed(987654)),
            (None, framed(other_id)),
        ],
        ("record 0: value", "magic byte 0x7b"),
        ("record 0: value", "schema id 987654 does not exist"),
        ("record 0", f"schema id {other_id} is not registered under subject {topic}-value"),
    )
    # The broker keeps serving: a good record after the refusals is stored.
    assert produce(broker.bootstrap, topic, [(None, good[0])]) == [None]
    assert stored_values(broker.bootstrap, topic) == good + [good[0]]
    deserializer = AvroDeserializer(client)
    assert deserializer(good[2], ctx) == {"name": "u2", "age": 2}


def test_one_bad_record_refuses_its_whole_batch(registry):
    # Goal: a batch with one bad record among good ones is refused whole, the message
    # naming the bad record's index in the batch. Method: three records in one batch
    # (metadata fetched first, then a 2 s linger), the third unframed.
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = topic_name("batch")
    ck_create_topic(broker.bootstrap, topic, config=VALIDATE_VALUES)
    serializer = AvroSerializer(client, USER)
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "linger.ms": 2000, "enable.idempotence": False}
    )
    # Metadata first, so the three records queue on the partition within one linger.
    producer.list_topics(topic, timeout=10)
    errors = []
    values = [serializer({"name": "a", "age": 1}, ctx), serializer({"name": "b", "age": 2}, ctx)]
    for value in values + [b"unframed"]:
        producer.produce(topic, value=value, on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(30) == 0
    assert len(errors) == 3
    for error in errors:
        assert_invalid_record(error)
    # kafka-python: the record_errors entry reaches the bad record (index 2) only.
    kp = kp_producer(broker.bootstrap, retries=0, linger_ms=2000)
    kp.partitions_for(topic)
    futures = [kp.send(topic, value=value) for value in values + [b"unframed"]]
    kp.flush(30)
    kp.close(5)
    refusals = []
    for future in futures:
        with pytest.raises(Exception) as refused:
            future.get(timeout=30)
        refusals.append(str(refused.value))
    assert "record 2: value has no schema id: magic byte 0x75" in refusals[2], refusals
    assert all("record 2" not in text for text in refusals[:2]), refusals
    assert stored_values(broker.bootstrap, topic) == []


def describe(admin, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=10)[resource].result(timeout=15)
    return {name: entry.value for name, entry in entries.items()}


def alter(admin, topic: str, name: str, value: str):
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource], request_timeout=10)[resource].result(timeout=15)


def test_validation_is_altered_on_a_live_topic(registry):
    # Goal: the configs are described with their defaults, switched on and off on a live
    # topic with IncrementalAlterConfigs (taking effect on the next produce), and a bad
    # value is refused with INVALID_CONFIG naming it.
    broker, _url = registry
    admin = ck_admin(broker.bootstrap)
    topic = topic_name("live")
    ck_create_topic(broker.bootstrap, topic)
    described = describe(admin, topic)
    assert described["confluent.value.schema.validation"] == "false"
    assert described["confluent.key.schema.validation"] == "false"
    assert described["confluent.value.subject.name.strategy"] == "TopicNameStrategy"
    assert produce(broker.bootstrap, topic, [(None, b"free text")]) == [None]

    alter(admin, topic, "confluent.value.schema.validation", "true")
    assert describe(admin, topic)["confluent.value.schema.validation"] == "true"
    assert_refused(broker.bootstrap, topic, [(None, b"free text")], ("magic byte 0x66",))

    with pytest.raises(KafkaException) as refused:
        alter(admin, topic, "confluent.value.subject.name.strategy", "NoSuchStrategy")
    error = refused.value.args[0]
    assert error.code() == KafkaError.INVALID_CONFIG, error
    assert "confluent.value.subject.name.strategy" in error.str()

    alter(admin, topic, "confluent.value.schema.validation", "false")
    assert produce(broker.bootstrap, topic, [(None, b"free again")]) == [None]
    assert stored_values(broker.bootstrap, topic) == [b"free text", b"free again"]


def test_record_name_strategy_and_key_validation(registry):
    # Goal: with RecordNameStrategy (given as Confluent's class name) the subject is the
    # record's full name, for keys as for values: AvroSerializer configured with the
    # record strategy passes; an id registered only under `<topic>-value` is refused.
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = topic_name("records")
    strategy = "io.confluent.kafka.serializers.subject.RecordNameStrategy"
    config = {
        "confluent.key.schema.validation": "true",
        "confluent.key.subject.name.strategy": strategy,
        "confluent.value.schema.validation": "true",
        "confluent.value.subject.name.strategy": "RecordNameStrategy",
    }
    ck_create_topic(broker.bootstrap, topic, config=config)
    by_record = {"subject.name.strategy": record_subject_name_strategy}
    key_serializer = AvroSerializer(client, ORDER, conf=by_record)
    value_serializer = AvroSerializer(client, USER, conf=by_record)
    key = key_serializer({"id": 7}, SerializationContext(topic, MessageField.KEY))
    value = value_serializer({"name": "r", "age": 3}, SerializationContext(topic, MessageField.VALUE))
    assert client.get_latest_version("weir.test.User").schema_id == struct.unpack(">I", value[1:5])[0]
    assert produce(broker.bootstrap, topic, [(key, value)]) == [None]
    # An Order schema registered only under the topic subject: its record name's subject
    # (weir.test.Order2) does not carry it.
    order2 = ORDER.replace('"Order"', '"Order2"')
    topic_only = client.register_schema(f"{topic}-value", Schema(order2, "AVRO"))
    assert_refused(
        broker.bootstrap,
        topic,
        [(key, framed(topic_only)), (b"raw key", value)],
        (f"schema id {topic_only} is not registered under subject weir.test.Order2",),
        ("record 0: key", "magic byte 0x72"),
    )
    assert stored_values(broker.bootstrap, topic) == [value]


def test_registry_off_refuses_validated_topics(broker_factory):
    # Goal: a broker whose registry is off cannot check ids: a validated topic's records
    # are refused with a message saying why, never stored, and the broker keeps serving
    # other topics.
    config = '"weir.schema.registry.listener" = "off"\n'
    broker = broker_factory.new(config=config, name="no-registry")
    topic = topic_name("unchecked")
    ck_create_topic(broker.bootstrap, topic, config=VALIDATE_VALUES)
    assert_refused(broker.bootstrap, topic, [(None, framed(1))], ("registry is off",))
    plain = topic_name("plain")
    ck_create_topic(broker.bootstrap, plain)
    assert produce(broker.bootstrap, plain, [(None, b"fine")]) == [None]
    assert stored_values(broker.bootstrap, topic) == []


def test_rest_proxy_produce_passes_the_same_check(broker_factory):
    # Goal: the REST proxy's produce reaches the same check as the Kafka listener (one
    # path): a BINARY value framed with a registered id is stored, an unframed one is
    # refused with the broker's message in the error body, and nothing refused is stored.
    registry_port, rest_port = free_port(), free_port()
    config = (
        f'"weir.schema.registry.listener" = "127.0.0.1:{registry_port}"\n'
        f'"weir.rest.proxy.listener" = "127.0.0.1:{rest_port}"\n'
        '"weir.gateway.listener" = "off"\n'
    )
    broker = broker_factory.new(config=config, name="rest-validation")
    client = SchemaRegistryClient({"url": f"http://127.0.0.1:{registry_port}"})
    topic = topic_name("rest")
    ck_create_topic(broker.bootstrap, topic, config=VALIDATE_VALUES)
    user_id = client.register_schema(f"{topic}-value", Schema(USER, "AVRO"))
    base = f"http://127.0.0.1:{rest_port}"
    cluster = requests.get(f"{base}/v3/clusters", timeout=10).json()["data"][0]["cluster_id"]
    url = f"{base}/v3/clusters/{cluster}/topics/{topic}/records"

    def post(value: bytes) -> requests.Response:
        record = {"value": {"type": "BINARY", "data": base64.b64encode(value).decode()}}
        return requests.post(url, json=record, timeout=30)

    good = framed(user_id)
    accepted = post(good)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json().get("error_code", 200) == 200, accepted.text
    refused = post(b"not framed")
    body = refused.text
    assert refused.status_code == 400, body
    message = refused.json()["message"]
    assert message.startswith("INVALID_RECORD: record 0: value has no schema id"), body
    assert "magic byte 0x6e" in message, body
    assert stored_values(broker.bootstrap, topic) == [good]
