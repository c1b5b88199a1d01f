"""End-to-end tests of the WASM client against a real `weir` process, under Node and in
headless Chromium (the same scenario code, tests/wasm/scenario.mjs, runs in both).

Goal: what a browser or Node app writes, librdkafka reads back exactly; what librdkafka
writes, the WASM client reads in order per key, in one consumer group whose partitions
are shared by two clients (two Node processes / two browser tabs). Sends whose answers a
dropped connection swallowed are resent after the reconnect and written once; a
read_committed consumer never sees aborted or open transactions of librdkafka's
transactional producer.
Method: start `weir serve --gateway` on free ports (heartbeat interval 500 ms so the group
settles quickly), drive the client through tests/wasm/node_client.mjs or page.html, and
check with confluent-kafka (librdkafka). Every wait is bounded.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests/compat"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from weirtest import Broker, BrokerFactory, free_port, unique, wait_until  # noqa: E402

from webdriver import Chrome  # noqa: E402

RECORDS = 1000
KEYS = 16
PARTITIONS = 4
CONFIG = "group.consumer.heartbeat.interval.ms = 500\n"


class GatewayBroker(Broker):
    """A broker with its gateway on a free port."""

    gateway_port: int = 0

    def command(self) -> list[str]:
        return super().command() + ["--gateway", f"127.0.0.1:{self.gateway_port}"]

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    base = tmp_path_factory.mktemp("weir-wasm")
    config = base / "weir.toml"
    config.write_text(CONFIG)
    broker = GatewayBroker(data_dir=base / "data", log_path=base / "weir.log", config_path=config)
    broker.gateway_port = free_port()
    broker.start()
    yield broker
    broker.stop()
    if broker.proc is not None and broker.proc.returncode not in (0, None, -15, 130):
        print(broker.log_text())


def create_topic(broker: Broker, partitions: int = PARTITIONS) -> str:
    topic = unique("wasm")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)
    return topic


def read_all(broker: Broker, topic: str, count: int) -> list:
    """librdkafka reads `count` records from the start (and checks nothing more arrives)."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + 60
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        records.append(message)
    extra = consumer.poll(1.0)
    consumer.close()
    assert extra is None, f"more records than produced: {extra.value()!r}"
    return records


def write_keyed(broker: Broker, topic: str, count: int, batches: int = 10) -> None:
    """librdkafka writes `count` keyed records, paced over a few seconds so every member
    of the group is assigned partitions while they flow."""
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    per_batch = count // batches
    for batch in range(batches):
        for i in range(batch * per_batch, (batch + 1) * per_batch):
            producer.produce(
                topic, key=f"k-{i % KEYS}", value=f"v-{i}", headers={"seq": str(i)}
            )
        assert producer.flush(30) == 0
        time.sleep(0.3)


# --------------------------------------------------------------------------------------
# Drivers: the same operations through Node processes or Chromium tabs.


class NodeDriver:
    name = "node"

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.consumers: list[subprocess.Popen] = []

    def _command(self, *args: str) -> list[str]:
        return ["node", "--experimental-websocket", str(HERE / "node_client.mjs"), *args]

    def run_produce(self, url: str, topic: str, count: int, keys: int) -> dict:
        out = subprocess.run(
            self._command("produce", url, topic, str(count), str(keys)),
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def run_errors(self, url: str) -> dict:
        out = subprocess.run(
            self._command("errors", url), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def run_reconnect(self, url: str, topic: str, count: int, keys: int) -> dict:
        out = subprocess.run(
            self._command("reconnect", url, topic, str(count), str(keys)),
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def run_oversized(self, url: str, topic: str) -> dict:
        out = subprocess.run(
            self._command("oversized", url, topic), capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start_isolation(self, url: str, topic: str, counts: dict):
        args = [str(counts[k]) for k in ("all", "committed", "released")]
        proc = subprocess.Popen(
            self._command("isolation", url, topic, *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.consumers.append(proc)
        lines: list[dict] = []

        def pump():
            for line in proc.stdout:
                lines.append(json.loads(line))

        threading.Thread(target=pump, daemon=True).start()
        return (proc, lines)

    def proceed(self, handle) -> None:
        proc, _ = handle
        proc.stdin.write("go\n")
        proc.stdin.flush()

    def start_consumer(self, url: str, group: str, topic: str):
        proc = subprocess.Popen(
            self._command("consume", url, group, topic),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.consumers.append(proc)
        lines: list[dict] = []

        def pump():
            for line in proc.stdout:
                lines.append(json.loads(line))

        threading.Thread(target=pump, daemon=True).start()
        return (proc, lines)

    def reports(self, handle) -> list[dict]:
        _, lines = handle
        taken = lines[:]
        del lines[: len(taken)]
        return taken

    def stop_consumer(self, handle) -> None:
        proc, _ = handle
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.stdin.close()
        proc.wait(timeout=30)
        time.sleep(0.2)  # let the pump thread read the last lines

    def close(self) -> None:
        for proc in self.consumers:
            if proc.poll() is None:
                proc.kill()


class ChromiumDriver:
    name = "chromium"

    def __init__(self, tmp: Path):
        handler = functools.partial(_QuietHandler, directory=str(REPO))
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.page = f"http://127.0.0.1:{self.http.server_address[1]}/tests/wasm/page.html"
        self.chrome = Chrome(free_port(), str(tmp / "chromedriver.log"))
        self.first_tab = self.chrome.current_tab()
        self.tabs_used = 0

    def _tab(self) -> str:
        """A fresh tab with the page loaded (the first one is reused once)."""
        self.tabs_used += 1
        handle = self.first_tab if self.tabs_used == 1 else self.chrome.new_tab()
        self.chrome.switch(handle)
        self.chrome.open(self.page)
        wait_until(lambda: self.chrome.run("return window.__ready === true"), 30, "page ready")
        return handle

    def _drain(self, handle: str) -> list[dict]:
        self.chrome.switch(handle)
        return self.chrome.run("return window.__reports.splice(0)")

    def run_produce(self, url: str, topic: str, count: int, keys: int) -> dict:
        handle = self._tab()
        self.chrome.run(f"window.runProduce({json.dumps(url)}, {json.dumps(topic)}, {count}, {keys})")
        found: list[dict] = []

        def done():
            found.extend(self._drain(handle))
            return any("produced" in r or "error" in r for r in found)

        wait_until(done, 120, "the page to produce")
        return next(r for r in found if "produced" in r or "error" in r)

    def run_errors(self, url: str) -> dict:
        handle = self._tab()
        self.chrome.run(f"window.runErrors({json.dumps(url)})")
        found: list[dict] = []

        def done():
            found.extend(self._drain(handle))
            return found

        wait_until(done, 60, "the error scenario")
        return found[0]

    def run_reconnect(self, url: str, topic: str, count: int, keys: int) -> dict:
        handle = self._tab()
        self.chrome.run(
            f"window.runReconnect({json.dumps(url)}, {json.dumps(topic)}, {count}, {keys})"
        )
        found: list[dict] = []

        def done():
            found.extend(self._drain(handle))
            return any("produced" in r or "error" in r for r in found)

        wait_until(done, 120, "the page to produce across a reconnect")
        return next(r for r in found if "produced" in r or "error" in r)

    def run_oversized(self, url: str, topic: str) -> dict:
        handle = self._tab()
        self.chrome.run(f"window.runOversized({json.dumps(url)}, {json.dumps(topic)})")
        found: list[dict] = []

        def done():
            found.extend(self._drain(handle))
            return any("produced" in r or "error" in r for r in found)

        wait_until(done, 120, "the page to produce around an oversized record")
        return next(r for r in found if "produced" in r or "error" in r)

    def start_isolation(self, url: str, topic: str, counts: dict):
        handle = self._tab()
        self.chrome.run(
            f"window.runIsolation({json.dumps(url)}, {json.dumps(topic)}, {json.dumps(counts)})"
        )
        return handle

    def proceed(self, handle) -> None:
        self.chrome.switch(handle)
        self.chrome.run("window.__go = true")

    def start_consumer(self, url: str, group: str, topic: str):
        handle = self._tab()
        self.chrome.run(f"window.runConsume({json.dumps(url)}, {json.dumps(group)}, {json.dumps(topic)})")
        return handle

    def reports(self, handle) -> list[dict]:
        return self._drain(handle)

    def stop_consumer(self, handle) -> None:
        self.chrome.switch(handle)
        self.chrome.run("window.__stop = true")

    def close(self) -> None:
        self.chrome.close()
        self.http.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}

    def log_message(self, *args):
        pass


@pytest.fixture(params=["node", "chromium"])
def driver(request, tmp_path):
    if request.param == "node":
        assert shutil.which("node"), "node is required (cargo xtask install-deps)"
        driver = NodeDriver(tmp_path)
    else:
        driver = ChromiumDriver(tmp_path)
    yield driver
    driver.close()


# --------------------------------------------------------------------------------------


def test_client_produces_what_librdkafka_reads_back_exactly(broker, driver):
    # Goal: 1,000 records sent by the WASM client are read back by librdkafka exactly once,
    # values, keys and headers intact, keyed records on Kafka's murmur2 partition and in
    # send order per key. Method: produce through the driver, read with confluent-kafka,
    # compare with a librdkafka producer using the Java-compatible murmur2 partitioner.
    topic = create_topic(broker)
    report = driver.run_produce(broker.gateway, topic, RECORDS, KEYS)
    assert report.get("produced") == RECORDS, report
    records = read_all(broker, topic, RECORDS)
    values = sorted(int(m.value().decode()[2:]) for m in records)
    assert values == list(range(RECORDS)), "every record exactly once"
    by_key: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, int] = {}
    for m in sorted(records, key=lambda m: (m.partition(), m.offset())):
        key = m.key().decode()
        seq = int(dict(m.headers())["seq"].decode())
        assert m.value().decode() == f"v-{seq}" and key == f"k-{seq % KEYS}"
        by_key[key].append(seq)
        assert partition_of.setdefault(key, m.partition()) == m.partition(), "one key, one partition"
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"{key} out of order"
    # librdkafka's Java-compatible partitioner puts each key on the same partition.
    reference = create_topic(broker)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    placed: dict[str, int] = {}
    for key in partition_of:
        producer.produce(reference, key=key, value=b"x",
                         on_delivery=lambda err, msg: placed.__setitem__(msg.key().decode(), msg.partition()))
    assert producer.flush(30) == 0
    assert placed == partition_of


def test_group_of_two_clients_reads_librdkafka_writes_in_key_order(broker, driver):
    # Goal: 1,000 keyed records written by librdkafka are consumed by two WASM clients in one
    # group (server-side assignment), together exactly once, each in order per key, both
    # sharing the partitions. Method: start two consumers, write paced batches, collect
    # what each yields until the union is complete, stop both (they commit and leave).
    topic = create_topic(broker)
    group = unique("wasm-group")
    first = driver.start_consumer(broker.gateway, group, topic)
    second = driver.start_consumer(broker.gateway, group, topic)
    write_keyed(broker, topic, RECORDS)
    seen: dict[int, list[dict]] = {0: [], 1: []}

    def complete():
        for index, handle in enumerate((first, second)):
            for report in driver.reports(handle):
                assert "error" not in report, report
                seen[index].extend(report.get("records", []))
        return sum(len(v) for v in seen.values()) >= RECORDS

    wait_until(complete, 90, f"{RECORDS} records across both consumers")
    for handle in (first, second):
        driver.stop_consumer(handle)
    time.sleep(0.5)
    complete()
    all_seqs = sorted(int(r["seq"]) for v in seen.values() for r in v)
    assert all_seqs == list(range(RECORDS)), "exactly once across the group"
    assert seen[0] and seen[1], f"partitions not shared: {len(seen[0])} / {len(seen[1])}"
    for records in seen.values():
        by_key: dict[str, list[int]] = defaultdict(list)
        for r in records:
            assert r["value"] == f"v-{r['seq']}"
            by_key[r["key"]].append(int(r["seq"]))
        for key, seqs in by_key.items():
            assert seqs == sorted(seqs), f"{key} out of order"


def test_errors_carry_kafka_names(broker, driver):
    # Goal: rejections carry Kafka's error names. Method: create a topic twice, send to a
    # partition that does not exist.
    report = driver.run_errors(broker.gateway)
    assert report == {
        "duplicate": "TOPIC_ALREADY_EXISTS",
        "missing": "UNKNOWN_TOPIC_OR_PARTITION",
        "listed": True,
    }


RESEND_RECORDS = 200


def test_sends_resent_after_a_lost_connection_are_written_once(broker, driver):
    # Goal: an idempotent send whose acknowledgement a dropped connection swallowed is
    # resent after the reconnect with its original producer id and sequence, and the
    # broker writes it once (edge protocol 2, the broker's own producer state). Method: the
    # client's WebSocket holds back every answer to a burst of sends, the connection is cut
    # once the gateway answered them all (so they are in the log), the client reconnects and
    # resends; librdkafka then reads each record exactly once, at the partition and offset
    # the client reported for it.
    topic = create_topic(broker)
    report = driver.run_reconnect(broker.gateway, topic, RESEND_RECORDS, KEYS)
    assert report.get("produced") == RESEND_RECORDS, report
    assert report["resent"] > 0, "the cut swallowed no answer"
    assert report["sockets"] >= 2, "the client did not reconnect"
    records = read_all(broker, topic, RESEND_RECORDS)
    seqs = sorted(int(dict(m.headers())["seq"].decode()) for m in records)
    assert seqs == list(range(RESEND_RECORDS)), "every record exactly once"
    in_log = {int(dict(m.headers())["seq"].decode()): (m.partition(), m.offset()) for m in records}
    reported = {p["seq"]: (p["partition"], p["offset"]) for p in report["placed"]}
    assert reported == in_log, "the client reports where each record is"


def test_a_send_that_fails_for_good_leaves_the_others_written_once(broker, driver):
    # Goal: an idempotent send the broker refuses for good (MESSAGE_TOO_LARGE) rejects
    # alone; the sends queued behind it, refused as out of order because of the gap it
    # left, are renumbered under a new producer id and written once, in send order.
    # Method: 40 small sends to one partition with a 1.1 MB record among them; librdkafka
    # reads the partition back.
    topic = create_topic(broker, partitions=1)
    report = driver.run_oversized(broker.gateway, topic)
    assert report.get("big") == "MESSAGE_TOO_LARGE", report
    assert report.get("produced") == 40, report
    records = read_all(broker, topic, 40)
    assert [m.value().decode() for m in records] == [f"s-{i}" for i in range(40)]
    in_log = {int(m.value().decode()[2:]): m.offset() for m in records}
    assert {p["seq"]: p["offset"] for p in report["placed"]} == in_log


def test_read_committed_consumer_skips_aborted_and_open_transactions(broker, driver):
    # Goal: a read_committed WASM consumer yields committed transactional records only:
    # never an aborted transaction's, nor an open one's (above the last stable offset) until
    # it commits; a read_uncommitted one yields them all. Method: librdkafka's
    # transactional producer aborts one transaction, commits one and leaves a third open on
    # a 2-partition topic; both consumers (no group) read from the start; then the third
    # commits and the read_committed consumer must yield exactly its records.
    topic = create_topic(broker, partitions=2)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "transactional.id": unique("wasm-txn"),
            "transaction.timeout.ms": 60000,
        }
    )
    producer.init_transactions(30)

    def transaction(prefix: str, count: int) -> list[str]:
        values = [f"{prefix}-{i}" for i in range(count)]
        producer.begin_transaction()
        for i, value in enumerate(values):
            producer.produce(topic, value=value, partition=i % 2)
        assert producer.flush(30) == 0
        return values

    aborted = transaction("aborted", 10)
    producer.abort_transaction(30)
    committed = transaction("committed", 10)
    producer.commit_transaction(30)
    opened = transaction("open", 6)
    counts = {"all": 26, "committed": 10, "released": 6}
    handle = driver.start_isolation(broker.gateway, topic, counts)
    reports: list[dict] = []

    def phase(number: int):
        def arrived():
            for report in driver.reports(handle):
                assert "error" not in report, report
                reports.append(report)
            return any(r.get("phase") == number for r in reports)

        wait_until(arrived, 90, f"isolation phase {number}")
        return next(r for r in reports if r.get("phase") == number)

    first = phase(1)
    assert sorted(first["uncommitted"]) == sorted(aborted + committed + opened)
    assert sorted(first["committed"]) == sorted(committed), "read_committed saw too much"
    producer.commit_transaction(30)
    driver.proceed(handle)
    second = phase(2)
    assert sorted(second["committed"]) == sorted(opened)
