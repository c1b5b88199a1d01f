"""Shared helpers of Weir's real-client compatibility suite.

Job: start/stop/SIGKILL/restart a real `weir serve` process, wait for conditions with
bounded poll loops (never fixed sleeps), speak just enough raw Kafka protocol over a
Python socket for the bad-input tests, and wrap the three client stacks (confluent-kafka /
librdkafka, kafka-python, kcat) in small helpers that return plain values to assert on.

Invariants: every wait has a deadline and fails with a message naming what it waited for;
every broker started here is killed at fixture teardown; nothing here sleeps except
between the iterations of a bounded poll loop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
READY_MARK = "weir listening on"
READY_TIMEOUT_S = 30.0
NODE_ID = 1


# --------------------------------------------------------------------------------------
# Bounded waiting


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `pred` until it returns a truthy value or `timeout` seconds pass.

    Returns that value; raises AssertionError naming `what` and the last value/exception
    otherwise. Exceptions from `pred` count as "not yet" (clients fail while a topic is
    being created), but the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------
# The broker process


def weir_bin() -> Path:
    """The binary under test: $WEIR_BIN, else target/release/weir, else target/debug/weir."""
    env = os.environ.get("WEIR_BIN")
    if env:
        path = Path(env)
        if not path.is_absolute():
            path = (REPO / path).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"WEIR_BIN={env} is not an executable file")
        return path
    for candidate in (REPO / "target/release/weir", REPO / "target/debug/weir"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "no weir binary: set WEIR_BIN or build one (cargo build -p weir -> target/debug/weir)"
    )


_ISSUED_PORTS: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now and that this test process has not handed out before.

    The kernel may hand the same ephemeral port to two sockets bound and closed one after
    the other, so two brokers of one cluster could be given the same listener (seen in CI:
    nodes 1 and 3 both got one controller port); remembering what was issued rules that out.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ISSUED_PORTS:
            _ISSUED_PORTS.add(port)
            return port
    raise RuntimeError("no free port that was not already handed out")


def serve_args_from_env() -> list[str]:
    """$WEIR_SERVE_ARGS: flags added to every `weir serve` the suite starts, before the
    test's own (which win): `WEIR_SERVE_ARGS="--num-shards 3"` runs the suite sharded."""
    return os.environ.get("WEIR_SERVE_ARGS", "").split()


@dataclass
class Broker:
    """One `weir serve` process with its own data dir and log file.

    The port and data dir stay the same across restart() so clients and the on-disk state
    carry over, which the persistence tests rely on.
    """

    data_dir: Path
    log_path: Path
    config_path: Optional[Path] = None
    # Extra environment for the process (e.g. the AWS_* variables of an S3 store).
    env: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    # Extra `weir serve` flags (after the config file, so they override its keys).
    args: list = field(default_factory=list)
    proc: Optional[subprocess.Popen] = None
    starts: int = 0
    _log_file: Any = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(weir_bin()),
            "serve",
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            "--node-id",
            str(NODE_ID),
        ]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + serve_args_from_env() + [str(arg) for arg in self.args]

    def start(self, timeout: float = READY_TIMEOUT_S) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        self._log_file.flush()
        offset = self._log_file.tell()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env)
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            text = self._read_log_from(offset)
            if READY_MARK in text:
                return self
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"weir exited with code {code} before printing {READY_MARK!r}; log:\n{self.log_text()}"
                )
            if time.monotonic() >= deadline:
                self.kill9()
                raise RuntimeError(
                    f"weir did not print {READY_MARK!r} within {timeout}s; log:\n{self.log_text()}"
                )
            time.sleep(0.05)

    def _read_log_from(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_text(self, tail_bytes: int = 200_000) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "<no log>"
        return data[-tail_bytes:].decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no chance to flush or clean up, like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._close_log()
        return self.proc.returncode

    def restart(self, hard: bool = False) -> "Broker":
        """Stops (SIGKILL when `hard`, else SIGTERM) and starts again on the same data dir and port."""
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class BrokerFactory:
    """Creates brokers under a per-test temp dir; all are killed at teardown."""

    def __init__(self, base: Path):
        self.base = base
        self.brokers: list[Broker] = []

    def new(self, config: Optional[str] = None, name: str = "weir", start: bool = True, env: Optional[dict] = None,
            args: Optional[list] = None) -> Broker:
        root = self.base / f"{name}-{len(self.brokers)}"
        root.mkdir(parents=True, exist_ok=True)
        config_path = None
        if config is not None:
            config_path = root / "weir.toml"
            config_path.write_text(config)
        broker = Broker(data_dir=root / "data", log_path=root / "weir.log", config_path=config_path, env=env or {},
                        args=list(args or []))
        self.brokers.append(broker)
        if start:
            broker.start()
        return broker

    def close(self) -> None:
        for b in self.brokers:
            b.kill9()


# --------------------------------------------------------------------------------------
# Raw Kafka protocol (just enough for the bad-input tests and batch inspection)


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def kstring(s: Optional[str]) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def kbytes(b: Optional[bytes]) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: Optional[str]) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def karray(items: Iterable[bytes]) -> bytes:
    items = list(items)
    return i32(len(items)) + b"".join(items)


def request_header(api_key: int, version: int, corr: int, client_id: str = "weir-compat", flexible: bool = False) -> bytes:
    """Request header v1 (or v2 with an empty tagged-field section when `flexible`)."""
    hdr = i16(api_key) + i16(version) + i32(corr) + kstring(client_id)
    if flexible:
        hdr += uvarint(0)
    return hdr


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


class Reader:
    """Big-endian cursor over a response body; raises AssertionError on a short read."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), f"response too short: need {n} at {self.pos} of {len(self.data)}"
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self) -> Optional[bytes]:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def remaining(self) -> int:
        return len(self.data) - self.pos


class RawConn:
    """A plain TCP connection to the broker for hand-built frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> Optional[bytes]:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None if not buf else bytes(buf)
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> Optional[bytes]:
        """One response frame without its length prefix, or None if the broker closed the
        connection (EOF or reset). socket.timeout propagates: a broker that neither answers
        nor closes within the timeout is hanging, which the tests treat as a failure."""
        try:
            prefix = self._recv_exact(4)
            if prefix is None or len(prefix) < 4:
                return None
            (n,) = struct.unpack(">i", prefix)
            assert 0 <= n <= 200_000_000, f"absurd response length {n}"
            body = self._recv_exact(n)
            assert body is not None and len(body) == n, "connection closed mid-response"
            return body
        except (ConnectionResetError, BrokenPipeError):
            return None

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True once the broker has closed its side (reads return EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def api_versions(bootstrap: str, version: int = 0, corr: int = 1) -> tuple[int, dict[int, tuple[int, int]], bytes]:
    """Sends ApiVersions at `version` (v0-2 non-flexible; v3+ flexible header and body) and
    returns (error_code, {api_key: (min, max)}, raw body after the correlation id).
    The response header is always v0 for ApiVersions (KIP-511)."""
    flexible = version >= 3
    body = b""
    if flexible:
        body = compact_string("weir-compat") + compact_string("0.1") + uvarint(0)
    with RawConn(bootstrap) as c:
        c.send(frame(request_header(18, version, corr, flexible=flexible) + body))
        resp = c.recv_frame()
    assert resp is not None, f"broker closed the connection on ApiVersions v{version}"
    r = Reader(resp)
    assert r.i32() == corr, "correlation id mismatch"
    rest = resp[4:]
    error = r.i16()
    table: dict[int, tuple[int, int]] = {}
    if flexible and error == 0:
        n = _read_uvarint(r) - 1
        for _ in range(n):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            _read_uvarint(r)  # tagged fields
            table[key] = (lo, hi)
    else:
        n = r.i32()
        for _ in range(n):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            table[key] = (lo, hi)
    return error, table, rest


def find_coordinator(bootstrap: str, key: str, key_type: int, corr: int = 1) -> tuple[int, int]:
    """FindCoordinator v1 for `key` (key_type 0: group, 1: transactional id) at one broker:
    (error_code, node_id). Kafka clients expose no way to ask for a transactional id's
    coordinator, so tests that must place a group and a transaction ask here."""
    body = kstring(key) + i8(key_type)
    with RawConn(bootstrap) as c:
        c.send(frame(request_header(10, 1, corr) + body))
        resp = c.recv_frame()
    assert resp is not None, "broker closed the connection on FindCoordinator"
    r = Reader(resp)
    assert r.i32() == corr, "correlation id mismatch"
    r.i32()  # throttle_time_ms
    error = r.i16()
    r.string()  # error_message
    return error, r.i32()


def _read_uvarint(r: Reader) -> int:
    shift = 0
    out = 0
    while True:
        b = r.take(1)[0]
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out
        shift += 7


# CRC32C (Castagnoli), table-driven: record batches v2 carry it; Python has no builtin.
_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def record_batch_v2(values: list[bytes], timestamp_ms: int = 1_700_000_000_000) -> bytes:
    """An uncompressed magic-2 batch with base offset 0 and no producer id."""
    records = b""
    for i, v in enumerate(values):
        body = i8(0) + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        records += varint(len(body)) + body
    after_crc = (
        i16(0)  # attributes
        + i32(len(values) - 1)  # last offset delta
        + i64(timestamp_ms)
        + i64(timestamp_ms)
        + i64(-1)  # producer id
        + i16(-1)  # producer epoch
        + i32(-1)  # base sequence
        + i32(len(values))
        + records
    )
    crc = crc32c(after_crc)
    after_len = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(after_len)) + after_len


def message_set_v1(values: list[bytes], timestamp_ms: int = 1_700_000_000_000) -> bytes:
    """A legacy magic-1 message set (what Produce v2 carries)."""
    out = b""
    for i, v in enumerate(values):
        msg = i8(1) + i8(0) + i64(timestamp_ms) + kbytes(None) + kbytes(v)
        crc = zlib.crc32(msg) & 0xFFFFFFFF
        m = struct.pack(">I", crc) + msg
        out += i64(i) + i32(len(m)) + m
    return out


@dataclass
class BatchInfo:
    base_offset: int
    attributes: int
    record_count: int
    crc_ok: bool

    @property
    def compression(self) -> int:
        return self.attributes & 0x07


def parse_batches(records: bytes) -> list[BatchInfo]:
    """Walks the record batches of a Fetch partition; a truncated tail is ignored, as
    clients do. Checks each batch's CRC32C."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base_offset, batch_len = struct.unpack(">qi", records[pos : pos + 12])
        end = pos + 12 + batch_len
        if end > len(records):
            break
        magic = records[pos + 16]
        assert magic == 2, f"batch at {base_offset} has magic {magic}"
        (crc,) = struct.unpack(">I", records[pos + 17 : pos + 21])
        (attrs,) = struct.unpack(">h", records[pos + 21 : pos + 23])
        (count,) = struct.unpack(">i", records[pos + 57 : pos + 61])
        out.append(BatchInfo(base_offset, attrs, count, crc32c(records[pos + 21 : end]) == crc))
        pos = end
    return out


def raw_fetch_v4(bootstrap: str, topic: str, partition: int, offset: int, max_bytes: int = 4 << 20) -> tuple[int, int, bytes]:
    """Fetch v4 (non-flexible, still supported by Kafka 4) of one partition.
    Returns (error_code, high_watermark, record bytes)."""
    body = (
        i32(-1)  # replica id
        + i32(500)  # max wait
        + i32(1)  # min bytes
        + i32(max_bytes)
        + i8(0)  # read_uncommitted
        + karray([kstring(topic) + karray([i32(partition) + i64(offset) + i32(max_bytes)])])
    )
    with RawConn(bootstrap) as c:
        c.send(frame(request_header(1, 4, 77) + body))
        resp = c.recv_frame()
    assert resp is not None, "broker closed the connection on Fetch v4"
    r = Reader(resp)
    assert r.i32() == 77
    r.i32()  # throttle
    assert r.i32() == 1, "expected one topic in the Fetch response"
    assert r.string() == topic
    assert r.i32() == 1, "expected one partition in the Fetch response"
    assert r.i32() == partition
    error = r.i16()
    hw = r.i64()
    r.i64()  # last stable offset
    n_aborted = r.i32()
    for _ in range(max(n_aborted, 0)):
        r.i64(), r.i64()
    records = r.bytes_() or b""
    return error, hw, records


# --------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)


def ck_admin(bootstrap: str, **conf: Any):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def ck_create_topic(bootstrap: str, name: str, partitions: int = 1, config: Optional[dict] = None, timeout: float = 15) -> None:
    from confluent_kafka.admin import NewTopic

    admin = ck_admin(bootstrap)
    fut = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=15,
    )[name]
    fut.result(timeout=timeout)
    wait_until(lambda: len(ck_partitions(bootstrap, name)) == partitions, 15, f"topic {name} with {partitions} partitions in metadata")


def ck_partitions(bootstrap: str, topic: str) -> dict[int, Any]:
    md = ck_admin(bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return dict(t.partitions)


def ck_producer(bootstrap: str, **conf: Any):
    from confluent_kafka import Producer

    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 20000}
    base.update(conf)
    return Producer(base)


@dataclass
class Delivery:
    error: Any
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]


def ck_produce(producer, topic: str, messages: list[dict], timeout: float = 30) -> list[Delivery]:
    """Produces each dict (value, key, partition, timestamp, headers) and waits for all
    delivery reports. Returns them in production order."""
    results: list[Optional[Delivery]] = [None] * len(messages)

    def cb_for(i: int):
        def cb(err, msg):
            results[i] = Delivery(err, msg.partition(), msg.offset(), msg.key(), msg.value())

        return cb

    for i, m in enumerate(messages):
        kwargs = {k: v for k, v in m.items() if v is not None}
        while True:
            try:
                producer.produce(topic, on_delivery=cb_for(i), **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    assert all(r is not None for r in results), "missing delivery reports"
    return results  # type: ignore[return-value]


@dataclass
class Rec:
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    timestamp: int
    headers: list


def ck_consumer(bootstrap: str, **conf: Any):
    from confluent_kafka import Consumer

    # librdkafka insists on a group.id even for assign(); nothing here commits or joins.
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": "weir-compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    base.update(conf)
    return Consumer(base)


def ck_read(bootstrap: str, topic: str, partitions: dict[int, int], until: Optional[dict[int, int]] = None, timeout: float = 30, consumer=None) -> list[Rec]:
    """assign() each partition at the given start offset (or OFFSET_BEGINNING/END sentinel)
    and read until every partition reached its `until` offset (default: its current high
    watermark), then return the records in arrival order. With `consumer` given (already
    assigned by the caller), it only reads."""
    from confluent_kafka import TopicPartition, KafkaError

    own = consumer is None
    c = consumer or ck_consumer(bootstrap)
    try:
        if until is None:
            until = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in partitions}
        if own:
            c.assign([TopicPartition(topic, p, off) for p, off in partitions.items()])
        out: list[Rec] = []
        reached = {p: False for p in partitions}
        deadline = time.monotonic() + timeout
        while not all(reached.values()):
            assert time.monotonic() < deadline, f"read of {topic} timed out: reached {reached}, wanted {until}, got {len(out)} records"
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    # EOF at an offset >= the target: done, also for a partition with nothing to read.
                    if m.offset() >= until[m.partition()]:
                        reached[m.partition()] = True
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            out.append(Rec(m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1], m.headers() or []))
            if m.offset() + 1 >= until[m.partition()]:
                reached[m.partition()] = True
        return out
    finally:
        if own:
            c.close()


def ck_watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    from confluent_kafka import TopicPartition

    c = ck_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


# --------------------------------------------------------------------------------------
# kafka-python


def kp_admin(bootstrap: str):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="weir-compat-kp", request_timeout_ms=15000)


def kp_producer(bootstrap: str, **conf: Any):
    """kafka-python producer. kafka-python 3 turns idempotence on by default with acks=all,
    which needs InitProducerId (API 22); Weir does not serve it yet, so these tests switch it
    off explicitly. test_produce_consume.py::test_kafka_python_default_idempotent_producer
    tracks the default."""
    from kafka import KafkaProducer

    base = dict(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=15000, enable_idempotence=False)
    base.update(conf)
    return KafkaProducer(**base)


def kp_consumer(bootstrap: str, **conf: Any):
    from kafka import KafkaConsumer

    base = dict(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    base.update(conf)
    return KafkaConsumer(**base)


def kp_read(consumer, until: dict, timeout: float = 30, min_records: int = 0) -> list[Rec]:
    """Polls an already-assigned kafka-python consumer until each TopicPartition in `until`
    has position >= its target offset and at least `min_records` arrived (the latter for a
    seek past the end, whose position only drops back after the out-of-range reset)."""
    out: list[Rec] = []
    deadline = time.monotonic() + timeout
    while True:
        if len(out) >= min_records and all(consumer.position(tp) >= target for tp, target in until.items()):
            return out
        assert time.monotonic() < deadline, f"kafka-python read timed out: got {len(out)}, positions {[consumer.position(tp) for tp in until]}, wanted {list(until.values())}"
        batch = consumer.poll(timeout_ms=200)
        for tp, msgs in batch.items():
            for m in msgs:
                out.append(Rec(tp.partition, m.offset, m.key, m.value, m.timestamp, list(m.headers or [])))


# --------------------------------------------------------------------------------------
# Keys and Java's partitioner (keyed tests of every client share them)

KEYS = [b"key-alpha", b"key-beta", b"key-gamma"]
PER_KEY = 50


def java_partition(key: bytes, n: int) -> int:
    """Kafka's Java DefaultPartitioner: (murmur2(key) & 0x7fffffff) % n (kafka-python's
    murmur2 is a port of Java's)."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % n


# --------------------------------------------------------------------------------------
# kcat


def kcat_path() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if not path:
        raise RuntimeError("kcat is not installed (tests/compat/run.sh installs it with apt-get)")
    return path


def kcat(args: list[str], stdin: Optional[bytes] = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [kcat_path(), *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------
# Health check used after every bad-input test


def assert_serving(broker: Broker) -> None:
    """The process is alive and a brand-new client gets metadata naming node 1."""
    assert broker.alive(), f"weir process died (exit {broker.proc.returncode if broker.proc else None})"
    md = ck_admin(broker.bootstrap).list_topics(timeout=10)
    assert NODE_ID in md.brokers, f"metadata from a fresh client lacks broker {NODE_ID}: {md.brokers}"
    b = md.brokers[NODE_ID]
    assert (b.host, b.port) == ("127.0.0.1", broker.port), f"advertised {b.host}:{b.port}, listening on {broker.bootstrap}"
    err, table, _ = api_versions(broker.bootstrap, version=0)
    assert err == 0 and 18 in table, f"ApiVersions v0 after the bad input: error {err}, table {table}"
    assert broker.alive(), "weir process died while serving the health check"
