"""The schema registry served by `weir serve` (issue 17), through confluent-kafka's own
SchemaRegistryClient and serializers, end to end against a real broker.

- Avro, JSON Schema and Protobuf records produced with AvroSerializer/JSONSerializer/
  ProtobufSerializer (auto-register; the Protobuf class generated at test time from a .proto
  with grpcio-tools' protoc) and consumed back with the matching deserializers.
- The client's registry API: versions, lookups, compatibility checks and levels, soft and
  permanent deletes, with Confluent's error codes.
- Bad input over plain HTTP (requests): wrong content type, malformed JSON, invalid schemas,
  unknown ids, a body over the HTTP stack's limit; the broker keeps serving.
- A restart: `_schemas` replays into the same registry (same ids and versions).
- @kafkajs/confluent-schema-registry from Node (kafkajs/schema_registry.mjs): it registers,
  encodes, decodes through the registry and produces; confluent-kafka decodes its records.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from weirtest import HERE, ck_create_topic, ck_read, free_port

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

USER_V1 = json.dumps(
    {
        "type": "record",
        "name": "User",
        "namespace": "weir.test",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
    }
)
USER_V2 = json.dumps(
    {
        "type": "record",
        "name": "User",
        "namespace": "weir.test",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": "int"},
            {"name": "email", "type": ["null", "string"], "default": None},
        ],
    }
)
# Adds a field without a default: BACKWARD (the default level) refuses it.
USER_BAD = json.dumps(
    {
        "type": "record",
        "name": "User",
        "namespace": "weir.test",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": "int"},
            {"name": "country", "type": "string"},
        ],
    }
)
ORDER_JSON = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
        "required": ["id"],
    }
)


@pytest.fixture
def registry(broker_factory):
    """A broker with the registry on a free port; yields (broker, base URL)."""
    port = free_port()
    config = (
        f'"weir.schema.registry.listener" = "127.0.0.1:{port}"\n'
        '"weir.rest.proxy.listener" = "off"\n'
        '"weir.gateway.listener" = "off"\n'
    )
    broker = broker_factory.new(config=config, name="registry")
    yield broker, f"http://127.0.0.1:{port}"


def produce_and_consume(bootstrap, topic, serializer, deserializer, values):
    """Produce `values` serialized, consume them back deserialized; return (raw, decoded)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer.produce(topic, value=serializer(value, ctx))
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sr-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    raw, decoded = [], []
    try:
        for _ in range(200):
            if len(decoded) == len(values):
                break
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            raw.append(msg.value())
            ctx = SerializationContext(topic, MessageField.VALUE)
            decoded.append(deserializer(msg.value(), ctx))
    finally:
        consumer.close()
    return raw, decoded


def test_avro_serializer_round_trip(registry):
    # Goal: AvroSerializer registers its schema and frames records with its id; the
    # AvroDeserializer fetches the schema by id and decodes them.
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = f"users-{uuid.uuid4().hex[:8]}"
    serializer = AvroSerializer(client, USER_V1)
    deserializer = AvroDeserializer(client)
    values = [{"name": f"user-{i}", "age": 20 + i} for i in range(3)]
    raw, decoded = produce_and_consume(broker.bootstrap, topic, serializer, deserializer, values)
    assert decoded == values
    latest = client.get_latest_version(f"{topic}-value")
    for record in raw:
        magic, schema_id = struct.unpack(">bI", record[:5])
        assert (magic, schema_id) == (0, latest.schema_id)


def test_json_serializer_round_trip(registry):
    # Goal: the same with JSON Schema (schemaType JSON).
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    serializer = JSONSerializer(ORDER_JSON, client)
    deserializer = JSONDeserializer(ORDER_JSON)
    values = [{"id": i, "item": f"thing-{i}"} for i in range(3)]
    _, decoded = produce_and_consume(broker.bootstrap, topic, serializer, deserializer, values)
    assert decoded == values
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "JSON"


ORDER_PROTO = """syntax = "proto3";
package weir.test;
message Order {
  int64 id = 1;
  string item = 2;
  repeated string tags = 3;
}
"""


def test_protobuf_serializer_round_trip(registry, tmp_path):
    # Goal: ProtobufSerializer registers its file (a base64 descriptor) and frames records
    # with the id and message indexes; the deserializer decodes them. Method: generate the
    # class with protoc (grpcio-tools), produce and consume; then evolve the schema as text.
    from grpc_tools import protoc

    (tmp_path / "order.proto").write_text(ORDER_PROTO)
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", "order.proto"]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        import order_pb2
    finally:
        sys.path.remove(str(tmp_path))
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    topic = f"orders-pb-{uuid.uuid4().hex[:8]}"
    config = {"use.deprecated.format": False}
    serializer = ProtobufSerializer(order_pb2.Order, client, config)
    deserializer = ProtobufDeserializer(order_pb2.Order, config)
    values = [order_pb2.Order(id=i, item=f"thing-{i}", tags=["a", "b"]) for i in range(3)]
    raw, decoded = produce_and_consume(broker.bootstrap, topic, serializer, deserializer, values)
    assert decoded == values
    subject = f"{topic}-value"
    registered = client.get_latest_version(subject)
    assert registered.schema.schema_type == "PROTOBUF"
    assert struct.unpack(">bI", raw[0][:5]) == (0, registered.schema_id)
    # Text schemas of the same file evolve under Confluent's Protobuf rules.
    text_subject = f"{topic}-text"
    client.register_schema(text_subject, Schema(ORDER_PROTO, "PROTOBUF"))
    added = ORDER_PROTO.replace("}\n", "  string note = 4;\n}\n")
    assert client.test_compatibility(text_subject, Schema(added, "PROTOBUF"))
    retyped = ORDER_PROTO.replace("string item = 2;", "int32 item = 2;")
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(text_subject, Schema(retyped, "PROTOBUF"))
    assert refused.value.http_status_code == 409
    assert "item" in refused.value.error_message


def test_client_api_versions_compatibility_and_deletes(registry):
    # Goal: the client's registry calls behave as against Confluent's registry.
    _, url = registry
    client = SchemaRegistryClient({"url": url})
    subject = f"people-{uuid.uuid4().hex[:8]}"
    first = client.register_schema(subject, Schema(USER_V1, "AVRO"))
    assert client.register_schema(subject, Schema(USER_V1, "AVRO")) == first
    assert client.test_compatibility(subject, Schema(USER_V2, "AVRO"))
    assert not client.test_compatibility(subject, Schema(USER_BAD, "AVRO"))
    second = client.register_schema(subject, Schema(USER_V2, "AVRO"))
    assert second != first
    assert client.get_versions(subject) == [1, 2]
    found = client.lookup_schema(subject, Schema(USER_V1, "AVRO"))
    assert (found.schema_id, found.version) == (first, 1)
    assert subject in client.get_subjects()
    assert json.loads(client.get_schema(second).schema_str)["fields"][2]["name"] == "email"

    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(USER_BAD, "AVRO"))
    assert refused.value.http_status_code == 409
    assert "country" in refused.value.error_message

    client.set_compatibility(subject, "NONE")
    assert client.get_compatibility(subject) == "NONE"
    third = client.register_schema(subject, Schema(USER_BAD, "AVRO"))
    assert third not in (first, second)

    assert client.delete_subject(subject) == [1, 2, 3]
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_latest_version(subject)
    assert gone.value.error_code == 40401
    assert client.delete_subject(subject, permanent=True) == [1, 2, 3]
    with pytest.raises(SchemaRegistryError) as unknown:
        client.get_schema(999_999)
    assert unknown.value.error_code == 40403


def test_bad_input_gets_confluent_errors(registry):
    # Goal: malformed requests get Confluent's status and error body; the broker lives.
    broker, url = registry
    headers = {"Content-Type": CONTENT_TYPE}
    register = f"{url}/subjects/bad/versions"
    cases = [
        (requests.post(register, data="{not json", headers=headers), 400, 400),
        (requests.post(register, data="x", headers={"Content-Type": "text/plain"}), 415, 415),
        (requests.post(register, json={"schema": '{"type": "nope"}'}, headers=headers), 422, 42201),
        (
            requests.post(
                register,
                json={"schema": "syntax = \"proto3\"; message {", "schemaType": "PROTOBUF"},
                headers=headers,
            ),
            422,
            42201,
        ),
        (
            requests.post(
                register,
                json={
                    "schema": USER_V1,
                    "references": [{"name": "x.Y", "subject": "missing", "version": 1}],
                },
                headers=headers,
            ),
            422,
            42201,
        ),
        (requests.get(f"{url}/schemas/ids/424242"), 404, 40403),
        (requests.get(f"{url}/subjects/bad/versions/abc"), 422, 42202),
        (requests.put(f"{url}/config", json={"compatibility": "SIDEWAYS"}, headers=headers), 422, 42203),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error_code"] == code, response.text
        assert response.headers["Content-Type"].startswith(CONTENT_TYPE)
    # A body over the HTTP stack's limit (weir.http.max.request.bytes, 16 MiB) is refused.
    huge = requests.post(register, data=b"{" + b" " * (17 << 20) + b"}", headers=headers)
    assert huge.status_code == 413
    assert requests.get(f"{url}/schemas/types").json() == ["JSON", "PROTOBUF", "AVRO"]
    assert broker.alive()


def test_registry_survives_restart(registry):
    # Goal: `_schemas` is the registry's only state: after a restart (SIGKILL) the same
    # subjects, versions and ids come back, and new ids continue after them.
    broker, url = registry
    client = SchemaRegistryClient({"url": url})
    subject = f"durable-{uuid.uuid4().hex[:8]}"
    first = client.register_schema(subject, Schema(USER_V1, "AVRO"))
    second = client.register_schema(subject, Schema(USER_V2, "AVRO"))
    broker.restart(hard=True)
    client = SchemaRegistryClient({"url": url})
    versions = None
    for _ in range(100):
        try:
            versions = client.get_versions(subject)
            break
        except Exception:  # noqa: BLE001 - the listener may not be serving yet
            time.sleep(0.2)
    assert versions == [1, 2]
    assert client.get_latest_version(subject).schema_id == second
    assert client.lookup_schema(subject, Schema(USER_V1, "AVRO")).schema_id == first
    other = client.register_schema(f"{subject}-other", Schema(ORDER_JSON, "JSON"))
    assert other > second


@pytest.mark.kafkajs
def test_node_client_interoperates(registry):
    # Goal: Node's @kafkajs/confluent-schema-registry registers (Avro and JSON), encodes,
    # decodes by id and sees the 409 of an incompatible evolution; the records it produced
    # decode with confluent-kafka's AvroDeserializer. Method: run the Node flow, then read.
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    kafkajs_dir = HERE / "kafkajs"
    if not (kafkajs_dir / "node_modules" / "@kafkajs" / "confluent-schema-registry").is_dir():
        pytest.fail("run `npm ci` in tests/compat/kafkajs (run.sh does)")
    broker, url = registry
    topic = f"readings-{uuid.uuid4().hex[:8]}"
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    res = subprocess.run(
        [node, str(kafkajs_dir / "schema_registry.mjs"), broker.bootstrap, url, topic],
        cwd=kafkajs_dir,
        capture_output=True,
        timeout=120,
    )
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, f"node flow failed (exit {res.returncode}):\n{err[-4000:]}"
    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert "incompatible" in out["refused"] and "unit" in out["refused"], out
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = ck_read(broker.bootstrap, topic, {0: 0})
    decoded = [deserializer(rec.value, ctx) for rec in records]
    assert decoded == [{"sensor": f"s{i}", "value": i + 0.5} for i in range(3)]
    assert all(struct.unpack(">bI", rec.value[:5]) == (0, out["avroId"]) for rec in records)


def test_listener_contract(broker_factory):
    # Goal: issue 17 item 7: an explicitly configured registry address that cannot be bound
    # fails the start; `off` serves nothing. Method: hold a port, configure it, expect the
    # start to fail; then start with the registry off.
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        with pytest.raises(RuntimeError, match="exited with code"):
            broker_factory.new(config=f'"weir.schema.registry.listener" = "127.0.0.1:{taken}"\n', name="taken")
    finally:
        holder.close()
    broker = broker_factory.new(config='"weir.schema.registry.listener" = "off"\n', name="off")
    assert "schema registry on" not in broker.log_text()
    assert broker.alive()
