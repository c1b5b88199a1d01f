"""The broker-wide client bounds (`max.connections`, `queued.max.requests`,
`queued.max.request.bytes`) against a real `weir` process.

Goal: a connection over `max.connections` is closed before it is served and the place comes
back when a client leaves; with the request budgets at their smallest, pipelined clients
still get every answer (readers pause, nothing is refused); /metrics shows each bound and
its use. Method: raw Kafka frames (ApiVersions v0) over sockets, a librdkafka producer, and
a scrape of /metrics; waits are bounded polls.
"""

from __future__ import annotations

import socket
import struct
import urllib.request

import pytest

from weirtest import ck_create_topic, ck_produce, ck_producer, free_port, unique, wait_until


def api_versions_frame(correlation: int) -> bytes:
    # ApiVersions v0: api_key 18, version 0, correlation id, client id "limits".
    body = struct.pack(">hhih", 18, 0, correlation, 6) + b"limits"
    return struct.pack(">i", len(body)) + body


def served(sock: socket.socket, correlation: int) -> bool:
    """Whether the broker answers an ApiVersions on `sock` (False: it closed it)."""
    try:
        sock.sendall(api_versions_frame(correlation))
        head = sock.recv(4)
        if len(head) < 4:
            return False
        (size,) = struct.unpack(">i", head)
        got = b""
        while len(got) < size:
            chunk = sock.recv(size - len(got))
            if not chunk:
                return False
            got += chunk
        return struct.unpack(">i", got[:4])[0] == correlation
    except OSError:
        return False


def recv_exact(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = sock.recv(size - len(got))
        if not chunk:
            raise AssertionError(f"connection closed after {len(got)} of {size} bytes")
        got += chunk
    return got


def connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(10)
    return sock


def metrics(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in body.splitlines():
        if line.startswith("weir_client_") or line.startswith("weir_queued_"):
            name, value = line.split()
            values[name] = float(value)
    return values


def test_max_connections_closes_the_extra_connection_and_frees_places(broker_factory):
    metrics_port = free_port()
    broker = broker_factory.new(
        config=f'max.connections = 3\nweir.metrics.listener = "127.0.0.1:{metrics_port}"\n',
        name="limits",
    )
    kept = [connect(broker.bootstrap) for _ in range(3)]
    for index, sock in enumerate(kept):
        assert served(sock, index), f"connection {index} within max.connections"
    wait_until(lambda: metrics(metrics_port).get("weir_client_connections") == 3, 10, "3 connections in /metrics")
    extra = connect(broker.bootstrap)
    assert not served(extra, 99), "the connection over max.connections was served"
    extra.close()
    kept.pop().close()

    def a_place_again() -> bool:
        sock = connect(broker.bootstrap)
        try:
            return served(sock, 7)
        finally:
            sock.close()

    wait_until(a_place_again, 10, "a new connection served after one closed")
    values = metrics(metrics_port)
    assert values["weir_client_connections_max"] == 3, values
    for sock in kept:
        sock.close()


def test_smallest_request_budgets_still_answer_every_request(broker_factory):
    metrics_port = free_port()
    # One request in flight broker-wide and a byte budget of one maximum-size frame.
    broker = broker_factory.new(
        config=(
            "queued.max.requests = 1\n"
            "socket.request.max.bytes = 1048576\n"
            "queued.max.request.bytes = 1048576\n"
            f'weir.metrics.listener = "127.0.0.1:{metrics_port}"\n'
        ),
        name="budgets",
    )
    # Pipelined raw requests on one connection: each is answered in order.
    sock = connect(broker.bootstrap)
    sock.sendall(b"".join(api_versions_frame(c) for c in range(20)))
    for correlation in range(20):
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        body = recv_exact(sock, size)
        assert struct.unpack(">i", body[:4])[0] == correlation
    sock.close()
    # Two producers at once, with batches in flight: every record is acknowledged.
    topic = unique("budget")
    ck_create_topic(broker.bootstrap, topic, 2)
    producers = [ck_producer(broker.bootstrap, **{"linger.ms": 0, "acks": "all"}) for _ in range(2)]
    for producer in producers:
        deliveries = ck_produce(producer, topic, [{"value": b"x" * 2000, "partition": i % 2} for i in range(500)])
        assert all(d.error is None for d in deliveries), [d.error for d in deliveries if d.error][:3]
    values = metrics(metrics_port)
    assert values["weir_queued_requests_max"] == 1, values
    assert values["weir_queued_request_bytes_max"] == 1048576, values
    assert values["weir_queued_requests"] <= 1, values


RSS_BOUND_MIB = 1024


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.soak
def test_ten_thousand_partitions_and_a_thousand_connections_stay_under_the_rss_bound(broker_factory):
    # Goal (issue 19, item 4): with 10 k partitions, one record in each, and 1,000 client
    # connections each holding a full-cluster Metadata answer's worth of traffic, the
    # broker's peak RSS (VmHWM) stays under RSS_BOUND_MIB. Method: one topic of 10,000
    # partitions, a librdkafka producer writing one record per partition, then 1,000 raw
    # connections that each ask ApiVersions and a full Metadata, all kept open.
    broker = broker_factory.new(config="num.partitions = 1\n", name="rss")
    topic = unique("rss")
    ck_create_topic(broker.bootstrap, topic, 10_000, timeout=120)
    producer = ck_producer(broker.bootstrap, **{"linger.ms": 50, "acks": "all", "message.timeout.ms": 120000})
    deliveries = ck_produce(producer, topic, [{"value": b"v" * 100, "partition": p} for p in range(10_000)],
                            timeout=300)
    assert all(d.error is None for d in deliveries)
    metadata_v1 = struct.pack(">hhih", 3, 1, 1, 6) + b"limits" + struct.pack(">i", -1)
    frame = struct.pack(">i", len(metadata_v1)) + metadata_v1
    sockets = []
    for index in range(1000):
        sock = connect(broker.bootstrap)
        assert served(sock, index)
        sock.sendall(frame)
        sockets.append(sock)
    for sock in sockets:
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        recv_exact(sock, size)
    peak = rss_mib(broker.proc.pid)
    now = rss_mib(broker.proc.pid, "VmRSS")
    print(f"broker RSS with 10k partitions and 1000 connections: peak {peak:.0f} MiB, now {now:.0f} MiB")
    assert peak < RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB over the bound of {RSS_BOUND_MIB} MiB"
    for sock in sockets:
        sock.close()
