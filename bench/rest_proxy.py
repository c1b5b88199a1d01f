#!/usr/bin/env python3
"""Records/s produced and consumed over the REST proxy next to the Kafka protocol, in one run
against one `weir serve` (the issue's item 5).

Usage: python3 bench/rest_proxy.py [--weir target/release/weir] [--records N] [--size BYTES]

Each workload writes N records of SIZE bytes to its own 1-partition topic with acks=all:
- kafka: confluent-kafka (librdkafka) producer, linger.ms=5;
- http-single: one v3 POST .../records per record over one keep-alive connection;
- http-stream: one v3 streamed request (chunked body, 1000 records per chunk, one result
  line per record);
- http-stream-curl: the same stream sent by curl from a file built beforehand (the
  broker's side without the Python client's JSON/base64 cost);
- http-v2-batch: v2 POST /topics/{t} with 1000 records per request;
- http-v2-batch-curl: the same batches sent by one curl process over one keep-alive
  connection, the bodies built beforehand (the broker's side without the Python client);
- http-v2-avro: the same with the avro embedded format (a record {key: string, payload:
  bytes} of the same size, value_schema_id of the broker's schema registry);
then reads the kafka workload's topic back with a librdkafka consumer and with a v2 HTTP
consumer instance (binary format, 1 MiB per records request), and the avro topic with an
avro v2 consumer instance (each value decoded by its schema id), timed from the request that
brought the first records (group joins are not counted).
The HTTP client is Python (`requests`), so HTTP numbers include its JSON/base64 cost on the
same 2 cores the broker uses; the ratio to the Kafka protocol is the number to read.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "compat"))

from weirtest import BrokerFactory, ck_create_topic, ck_producer, free_port, unique  # noqa: E402


def kafka_produce(bootstrap: str, topic: str, count: int, value: bytes) -> float:
    producer = ck_producer(bootstrap, **{"linger.ms": 5, "acks": "all", "batch.size": 1_000_000})
    started = time.monotonic()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=value, key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(120) == 0
    return count / (time.monotonic() - started)


def http_single(v3: str, topic: str, count: int, value: bytes) -> float:
    session = requests.Session()
    data = base64.b64encode(value).decode()
    started = time.monotonic()
    for i in range(count):
        answer = session.post(f"{v3}/topics/{topic}/records", timeout=30,
                              json={"key": {"type": "STRING", "data": str(i)},
                                    "value": {"type": "BINARY", "data": data}})
        assert answer.status_code == 200, answer.text
    return count / (time.monotonic() - started)


def http_stream(v3: str, topic: str, count: int, value: bytes) -> float:
    data = base64.b64encode(value).decode()

    def body():
        for start in range(0, count, 1000):
            yield "".join(json.dumps({"key": {"type": "STRING", "data": str(i)},
                                      "value": {"type": "BINARY", "data": data}})
                          for i in range(start, min(count, start + 1000))).encode()

    started = time.monotonic()
    answer = requests.post(f"{v3}/topics/{topic}/records", data=body(), timeout=600,
                           headers={"Content-Type": "application/json"})
    lines = [line for line in answer.text.splitlines() if line.strip()]
    elapsed = time.monotonic() - started
    assert len(lines) == count and all('"error_code":200' in line for line in lines), lines[:3]
    return count / elapsed


def http_stream_curl(v3: str, topic: str, count: int, value: bytes, tmp: Path) -> float:
    """The streamed form sent by curl from a body file built beforehand (not timed): the
    broker's side of HTTP produce without a Python client's JSON/base64 cost."""
    import subprocess

    data = base64.b64encode(value).decode()
    body, answers = tmp / f"{topic}.body", tmp / f"{topic}.answers"
    with open(body, "w") as f:
        for i in range(count):
            f.write(json.dumps({"key": {"type": "STRING", "data": str(i)},
                                "value": {"type": "BINARY", "data": data}}))
    started = time.monotonic()
    subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                    "-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", f"@{body}",
                    "-o", str(answers), f"{v3}/topics/{topic}/records"], check=True, timeout=600)
    elapsed = time.monotonic() - started
    lines = [line for line in answers.read_text().splitlines() if line.strip()]
    assert len(lines) == count and all('"error_code":200' in line for line in lines), lines[:3]
    return count / elapsed


def http_v2_batch(base: str, topic: str, count: int, value: bytes) -> float:
    session = requests.Session()
    data = base64.b64encode(value).decode()
    started = time.monotonic()
    for start in range(0, count, 1000):
        records = [{"key": base64.b64encode(str(i).encode()).decode(), "value": data}
                   for i in range(start, min(count, start + 1000))]
        answer = session.post(f"{base}/topics/{topic}", json={"records": records}, timeout=60,
                              headers={"Content-Type": "application/vnd.kafka.binary.v2+json"})
        assert answer.status_code == 200, answer.text
    return count / (time.monotonic() - started)


def http_v2_batch_curl(base: str, topic: str, count: int, value: bytes, tmp: Path) -> float:
    """v2 batches of 1000 records sent by one curl process over one keep-alive connection,
    the bodies built beforehand (not timed): the broker's side of batched v2 produce."""
    import subprocess

    data = base64.b64encode(value).decode()
    args = ["curl", "-sS"]
    for start in range(0, count, 1000):
        body = tmp / f"{topic}-{start}.json"
        records = [{"key": base64.b64encode(str(i).encode()).decode(), "value": data}
                   for i in range(start, min(count, start + 1000))]
        body.write_text(json.dumps({"records": records}))
        if start:
            args.append("--next")
        args += ["-X", "POST", "-H", "Content-Type: application/vnd.kafka.binary.v2+json",
                 "-H", "Expect:", "--data-binary", f"@{body}", "-o", "/dev/null",
                 "-w", "%{http_code}\n", f"{base}/topics/{topic}"]
    started = time.monotonic()
    done = subprocess.run(args, check=True, timeout=600, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    codes = done.stdout.split()
    assert codes and all(code == "200" for code in codes), codes[:3]
    return count / elapsed


AVRO_SCHEMA = json.dumps({"type": "record", "name": "BenchRecord", "fields": [
    {"name": "key", "type": "string"}, {"name": "payload", "type": "string"}]})


def http_v2_avro_batch(base: str, topic: str, count: int, value: bytes) -> float:
    session = requests.Session()
    text = value.decode("latin-1")
    headers = {"Content-Type": "application/vnd.kafka.avro.v2+json"}
    first = session.post(f"{base}/topics/{topic}", headers=headers, timeout=60,
                         json={"value_schema": AVRO_SCHEMA, "records": []})
    assert first.status_code == 200, first.text
    schema_id = first.json()["value_schema_id"]
    started = time.monotonic()
    for start in range(0, count, 1000):
        records = [{"value": {"key": str(i), "payload": text}}
                   for i in range(start, min(count, start + 1000))]
        answer = session.post(f"{base}/topics/{topic}", headers=headers, timeout=60,
                              json={"value_schema_id": schema_id, "records": records})
        assert answer.status_code == 200, answer.text
    return count / (time.monotonic() - started)


def kafka_consume(bootstrap: str, topic: str, count: int) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("bench"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < count:
        asked = time.monotonic()
        batch = consumer.consume(10_000, 1.0)
        if batch and started is None:
            started = asked
        seen += sum(1 for m in batch if m.error() is None)
    consumer.close()
    return count / (time.monotonic() - (started or time.monotonic()))


def http_consume(base: str, topic: str, count: int, fmt: str = "binary") -> float:
    session = requests.Session()
    headers = {"Content-Type": "application/vnd.kafka.v2+json"}
    group = unique("bench-http")
    instance = session.post(f"{base}/consumers/{group}", headers=headers, timeout=10,
                            json={"format": fmt, "auto.offset.reset": "earliest",
                                  "auto.commit.enable": "false"}).json()["base_uri"]
    session.post(f"{instance}/subscription", headers=headers, json={"topics": [topic]}, timeout=10)
    seen, started = 0, None
    while seen < count:
        asked = time.monotonic()
        answer = session.get(f"{instance}/records?timeout=1000&max_bytes=1048576", timeout=30,
                             headers={"Accept": f"application/vnd.kafka.{fmt}.v2+json"})
        records = answer.json()
        if records and started is None:
            started = asked
        seen += len(records)
    session.delete(instance, timeout=10)
    return count / (time.monotonic() - (started or time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weir", default=None, help="weir binary (default: $WEIR_BIN or target/release/weir)")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=3_000, help="records of the one-request-per-record run")
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    if args.weir:
        import os

        os.environ["WEIR_BIN"] = args.weir
    value = b"x" * args.size
    with tempfile.TemporaryDirectory() as tmp:
        factory = BrokerFactory(Path(tmp))
        rest_port, registry_port = free_port(), free_port()
        broker = factory.new(config=f'"weir.rest.proxy.listener" = "127.0.0.1:{rest_port}"\n'
                                    f'"weir.schema.registry.listener" = "127.0.0.1:{registry_port}"\n'
                                    '"weir.gateway.listener" = "off"\n', name="bench")
        try:
            base = f"http://127.0.0.1:{rest_port}"
            cluster = requests.get(f"{base}/v3/clusters", timeout=10).json()["data"][0]["cluster_id"]
            v3 = f"{base}/v3/clusters/{cluster}"
            topics = {name: unique(f"bench-{name}") for name in ("kafka", "single", "stream", "curl", "v2", "v2curl", "avro")}
            for topic in topics.values():
                ck_create_topic(broker.bootstrap, topic, 1)
            rows = [
                ("produce", "kafka protocol (librdkafka)", args.records,
                 kafka_produce(broker.bootstrap, topics["kafka"], args.records, value)),
                ("produce", "http v3, one request per record", args.single,
                 http_single(v3, topics["single"], args.single, value)),
                ("produce", "http v3, streamed (one request)", args.records,
                 http_stream(v3, topics["stream"], args.records, value)),
                ("produce", "http v3, streamed by curl from a file", args.records,
                 http_stream_curl(v3, topics["curl"], args.records, value, Path(tmp))),
                ("produce", "http v2, 1000 records per request", args.records,
                 http_v2_batch(base, topics["v2"], args.records, value)),
                ("produce", "http v2, 1000 per request, by curl", args.records,
                 http_v2_batch_curl(base, topics["v2curl"], args.records, value, Path(tmp))),
                ("produce", "http v2 avro, 1000 records per request", args.records,
                 http_v2_avro_batch(base, topics["avro"], args.records, value)),
                ("consume", "kafka protocol (librdkafka)", args.records,
                 kafka_consume(broker.bootstrap, topics["kafka"], args.records)),
                ("consume", "http v2 consumer instance", args.records,
                 http_consume(base, topics["kafka"], args.records)),
                ("consume", "http v2 avro consumer instance", args.records,
                 http_consume(base, topics["avro"], args.records, "avro")),
            ]
        finally:
            factory.close()
    kafka = {kind: rate for kind, name, _, rate in rows if name.startswith("kafka")}
    print(f"{'':8} {'workload':36} {'records':>8} {'records/s':>10} {'vs kafka':>9}")
    for kind, name, count, rate in rows:
        print(f"{kind:8} {name:36} {count:>8} {rate:>10.0f} {rate / kafka[kind]:>8.2f}x")


if __name__ == "__main__":
    main()
