"""The schema-aware helpers (weir-wasm-schema, issue 17 item 4: "encode/decode Avro or JSON
Schema by subject so a browser produces validated records") in headless Chromium against a
real `weir serve` with its schema registry, gateway and CORS on.

Goal: a page on another origin registers an Avro schema (a CORS preflighted POST), encodes
a record with `encodeAvro`, decodes it back, and produces it with the weir-wasm client to a
topic with `confluent.value.schema.validation=true`, which the broker accepts; a value that
does not fit is rejected by `encodeAvro` naming the field; a hand-framed value with an id
the registry never handed out is refused by the broker (INVALID_RECORD); confluent-kafka's
AvroDeserializer reads the browser's record as the same value and its AvroSerializer makes
the same bytes (the wire format is Confluent's). JSON Schema subjects: `encodeJson` frames,
`decode` parses, the cheap checks refuse a missing required property. The CORS layer:
preflights answered for an allowed origin, nothing added for another origin or when the
keys are not set (Confluent's default). Under Node the package loads from disk and makes
the same bytes.
Method: `weir serve --gateway` with `weir.schema.registry.listener` and
`access.control.allow.origin` set to the page server's origin; tests/wasm/schema_page.html
driven through chromedriver; checks with requests and confluent-kafka. Every wait is bounded.
"""

from __future__ import annotations

import functools
import http.server
import json
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests/compat"))

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from weirtest import free_port, unique, wait_until  # noqa: E402

from test_wasm_e2e import GatewayBroker, _QuietHandler  # noqa: E402
from webdriver import Chrome  # noqa: E402

AVRO_SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "weir.wasm",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "total", "type": "double"},
        {"name": "paid", "type": "boolean"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "int"}},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": "int"}],
            },
        },
    ],
}
VALUE = {
    "id": 9007199254740991,
    "customer": "c-7 ✓",
    "total": 12.5,
    "paid": True,
    "note": "leave at the door",
    "status": "PAID",
    "tags": ["a", "b"],
    "attrs": {"x": 1, "y": -2},
    "address": {"city": "Oslo", "zip": 150},
}
BAD_VALUE = {**VALUE, "address": {"city": "Oslo", "zip": "0150"}}
JSON_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
}
JSON_VALUE = {"sku": "A-1", "qty": 3}
UNKNOWN_ID = 987654


class PageServer:
    """Serves the repository on its own port: the page's origin, not the registry's."""

    def __init__(self):
        self.port = free_port()
        handler = functools.partial(_QuietHandler, directory=str(REPO))
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def pages():
    server = PageServer()
    yield server
    server.close()


def start_broker(base: Path, registry_port: int, extra: str, rest: str = "off") -> GatewayBroker:
    config = base / "weir.toml"
    config.write_text(
        f'"weir.schema.registry.listener" = "127.0.0.1:{registry_port}"\n'
        f'"weir.rest.proxy.listener" = "{rest}"\n' + extra
    )
    broker = GatewayBroker(data_dir=base / "data", log_path=base / "weir.log", config_path=config)
    broker.gateway_port = free_port()
    broker.start()
    return broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pages):
    base = tmp_path_factory.mktemp("weir-wasm-schema")
    port = free_port()
    extra = (
        f'"access.control.allow.origin" = "{pages.origin}"\n'
        '"access.control.allow.methods" = "GET,POST,PUT,DELETE"\n'
        '"access.control.allow.headers" = "Content-Type,Accept,Authorization"\n'
    )
    rest_port = free_port()
    broker = start_broker(base, port, extra, rest=f"127.0.0.1:{rest_port}")
    broker.registry = f"http://127.0.0.1:{port}"
    broker.rest = f"http://127.0.0.1:{rest_port}"
    yield broker
    broker.stop()


def create_validated_topic(broker) -> str:
    topic = unique("wasm-schema")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    new = NewTopic(topic, 1, 1, config={"confluent.value.schema.validation": "true"})
    for future in admin.create_topics([new]).values():
        future.result(30)
    return topic


def read_values(broker, topic: str, count: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique("schema-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 60
    while len(values) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        values.append(message.value())
    extra = consumer.poll(1.0)
    consumer.close()
    assert extra is None, f"a refused record was stored: {extra.value()!r}"
    return values


def test_browser_encodes_validates_and_produces_avro_and_json(broker, pages, tmp_path):
    avro_topic = create_validated_topic(broker)
    json_topic = create_validated_topic(broker)
    chrome = Chrome(free_port(), str(tmp_path / "chromedriver.log"))
    try:
        chrome.open(f"{pages.origin}/tests/wasm/schema_page.html")
        wait_until(lambda: chrome.run("return window.__ready === true"), 30, "page ready")
        args = {
            "gateway": broker.gateway,
            "registry": broker.registry,
            "avroTopic": avro_topic,
            "jsonTopic": json_topic,
            "avroSchema": json.dumps(AVRO_SCHEMA),
            "jsonSchema": json.dumps(JSON_SCHEMA),
            "value": VALUE,
            "badValue": BAD_VALUE,
            "jsonValue": JSON_VALUE,
            "jsonBadValue": {"sku": "A-2"},
            "unknownId": UNKNOWN_ID,
        }
        chrome.run("window.runSchema(arguments[0])", args)
        report = wait_until(lambda: chrome.run("return window.__report"), 90, "the page's report")
    finally:
        chrome.close()
    assert "error" not in report, report
    assert report["subject"] == f"{avro_topic}-value"
    assert report["keySubject"] == f"{avro_topic}-key"

    # The registry holds what the page registered (through CORS) under the subject.
    latest = requests.get(f"{broker.registry}/subjects/{avro_topic}-value/versions/latest",
                          timeout=10).json()
    assert latest["id"] == report["avroId"]

    # Confluent's framing: magic 0, big-endian id; decode gives the value back.
    framed = bytes(report["framed"])
    assert framed[0] == 0 and struct.unpack(">I", framed[1:5])[0] == report["avroId"]
    assert report["decoded"] == VALUE

    # confluent-kafka's serializer (fastavro) makes the same bytes for the same value.
    client = SchemaRegistryClient({"url": broker.registry})
    context = SerializationContext(avro_topic, MessageField.VALUE)
    serializer = AvroSerializer(
        client, json.dumps(AVRO_SCHEMA), conf={"auto.register.schemas": False,
                                                "use.latest.version": True},
    )
    assert serializer(VALUE, context) == framed

    # A value that does not fit: rejected by encodeAvro, naming the field.
    rejected = report["rejected"]["error"]
    assert rejected["name"] == "SERIALIZATION_ERROR", rejected
    assert rejected["message"].startswith("$.address.zip: expected an int"), rejected

    # The broker took the browser's record; an unknown id was refused.
    assert "value" in report["sent"], report["sent"]
    assert report["sent"]["value"]["offset"] == 0
    assert report["unknownSent"]["error"]["name"] == "INVALID_RECORD", report["unknownSent"]

    # confluent-kafka's AvroDeserializer reads the browser's record as the same value.
    stored = read_values(broker, avro_topic, 1)
    assert stored == [framed]
    deserializer = AvroDeserializer(client)
    assert deserializer(stored[0], context) == VALUE

    # JSON Schema: framed JSON, parsed back; the cheap checks; the broker takes it.
    assert report["jsonLatest"]["schemaType"] == "JSON"
    assert report["jsonLatest"]["id"] == report["jsonId"]
    json_framed = bytes(report["jsonFramed"])
    assert struct.unpack(">I", json_framed[1:5])[0] == report["jsonId"]
    assert json.loads(json_framed[5:]) == JSON_VALUE
    assert report["jsonDecoded"] == JSON_VALUE
    json_rejected = report["jsonRejected"]["error"]
    assert json_rejected["name"] == "SERIALIZATION_ERROR", json_rejected
    assert json_rejected["message"] == "$.qty: missing (required by the schema)"
    assert "not JSON" in report["avroAsJson"]["error"]["message"], report["avroAsJson"]
    assert "value" in report["jsonSent"], report["jsonSent"]
    assert read_values(broker, json_topic, 1) == [json_framed]

    # A registry error keeps the registry's code.
    missing = report["missing"]["error"]
    assert missing["name"] == "SCHEMA_REGISTRY_ERROR" and missing["code"] == 40401, missing


def test_cors_preflight_and_origins(broker, pages):
    url = f"{broker.registry}/subjects/any-value/versions"
    preflight = requests.options(
        url,
        headers={
            "Origin": pages.origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == pages.origin
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET,POST,PUT,DELETE"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type,Accept,Authorization"
    assert preflight.headers["Access-Control-Max-Age"] == "1800"

    # Simple requests (errors too) carry the origin back.
    answer = requests.get(f"{broker.registry}/subjects/nope/versions/latest",
                          headers={"Origin": pages.origin}, timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Access-Control-Allow-Origin"] == pages.origin
    assert "Origin" in answer.headers["Vary"]

    # Another origin, or a method not allowed: nothing is added.
    other = requests.get(f"{broker.registry}/subjects",
                         headers={"Origin": "http://evil.example"}, timeout=10)
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    patch = requests.options(url, headers={"Origin": pages.origin,
                                           "Access-Control-Request-Method": "PATCH"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in patch.headers

    # The REST proxy shares the HTTP stack, so the same layer.
    clusters = requests.get(f"{broker.rest}/v3/clusters", headers={"Origin": pages.origin},
                          timeout=10)
    assert clusters.status_code == 200
    assert clusters.headers["Access-Control-Allow-Origin"] == pages.origin


def test_cors_is_off_by_default(tmp_path, pages):
    port = free_port()
    broker = start_broker(tmp_path, port, "")
    try:
        preflight = requests.options(
            f"http://127.0.0.1:{port}/subjects",
            headers={"Origin": pages.origin, "Access-Control-Request-Method": "GET"},
            timeout=10,
        )
        assert "Access-Control-Allow-Origin" not in preflight.headers
        answer = requests.get(f"http://127.0.0.1:{port}/subjects",
                              headers={"Origin": pages.origin}, timeout=10)
        assert answer.status_code == 200
        assert "Access-Control-Allow-Origin" not in answer.headers
    finally:
        broker.stop()


def test_node_loads_the_module_from_disk_and_encodes(broker):
    # Goal: the package works outside browsers (index.js reads the .wasm from disk, Node's
    # global fetch reaches the registry). Method: Python registers the schema; Node encodes
    # and decodes; the bytes equal confluent-kafka's AvroSerializer's.
    topic = unique("wasm-schema-node")
    client = SchemaRegistryClient({"url": broker.registry})
    schema_id = client.register_schema(f"{topic}-value", Schema(json.dumps(AVRO_SCHEMA), "AVRO"))
    out = subprocess.run(
        ["node", str(HERE / "schema_node.mjs"), broker.registry, topic, json.dumps(VALUE),
         json.dumps({**VALUE, "status": "LOST"})],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    assert report["latest"]["id"] == schema_id and report["latest"]["schemaType"] == "AVRO"
    framed = bytes(report["framed"])
    serializer = AvroSerializer(client, json.dumps(AVRO_SCHEMA),
                                conf={"auto.register.schemas": False, "use.latest.version": True})
    assert framed == serializer(VALUE, SerializationContext(topic, MessageField.VALUE))
    assert report["decoded"] == VALUE
    assert report["rejected"]["name"] == "SERIALIZATION_ERROR"
    assert report["rejected"]["message"].startswith("$.status: expected one of the symbols")
    assert report["badUrl"]["name"] == "INVALID_ARGUMENT"
