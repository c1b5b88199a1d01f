"""Bad input: hostile or broken frames over raw sockets, unsupported APIs/versions, and
client-level errors (unknown topic without auto-create, oversized records, invalid topic
names and partition counts). After each one the broker process must be alive and serve a
brand-new client (assert_serving)."""

from __future__ import annotations

import random
import struct

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

from weirtest import (
    BrokerFactory,
    RawConn,
    Reader,
    api_versions,
    assert_serving,
    ck_admin,
    ck_create_topic,
    ck_partitions,
    ck_produce,
    ck_producer,
    ck_watermarks,
    compact_string,
    frame,
    i8,
    i16,
    i32,
    i64,
    karray,
    kbytes,
    kp_admin,
    kp_producer,
    kstring,
    message_set_v1,
    record_batch_v2,
    request_header,
    unique,
    uvarint,
)

BROKER_MAX_MESSAGE_BYTES = 100_000
# Quoted keys: the Kafka property names are flat strings, not TOML tables.
CONFIG = f"""
"auto.create.topics.enable" = false
"message.max.bytes" = {BROKER_MAX_MESSAGE_BYTES}
"""


@pytest.fixture(scope="module")
def bad_broker(tmp_path_factory):
    """A broker of its own (a crash here must not take the shared one down), with
    auto-create off and a 100 kB message.max.bytes."""
    factory = BrokerFactory(tmp_path_factory.mktemp("weir-bad-input"))
    b = factory.new(config=CONFIG, name="bad")
    yield b
    factory.close()


@pytest.fixture
def bb(bad_broker, request):
    request.node._weir_brokers = [bad_broker]
    assert bad_broker.alive(), "bad-input broker died in an earlier test"
    yield bad_broker
    assert_serving(bad_broker)


# ---------------------------------------------------------------------------------------
# Framing


@pytest.mark.parametrize("length", [0x7FFFFFFF, -0x80000000, 104_857_601], ids=["2GiB-1", "negative-2GiB", "over-socket.request.max.bytes"])
def test_huge_or_negative_length_prefix(bb, length):
    # Goal: a frame length of ~2 GiB, a negative one, or one above socket.request.max.bytes
    # makes the broker close that connection without trying to allocate it or waiting for
    # the body. Method: send only the prefix plus a few bytes, expect EOF within 10 s.
    with RawConn(bb.bootstrap) as c:
        c.send(struct.pack(">i", length) + b"\x00\x03\x00\x01")
        assert c.wait_closed(10), f"broker kept a connection with frame length {length} open"


def test_truncated_frame_then_close(bb):
    # Goal: a client that announces 100 bytes, sends 10 and disconnects does not disturb the
    # broker. Method: raw socket, then assert_serving (fixture teardown) and a second,
    # well-formed request on a new connection.
    with RawConn(bb.bootstrap) as c:
        c.send(i32(100) + b"\x00\x12\x00\x00\x00\x00\x00\x07ab")
    err, table, _ = api_versions(bb.bootstrap)
    assert err == 0 and 0 in table


def test_random_garbage(bb):
    # Goal: random bytes (seeded, reproducible) on one connection, and a garbage frame with
    # a valid length on another, never crash or hang the broker: each connection is either
    # answered or closed within 10 s. Method: raw sockets.
    rng = random.Random(0xBAD)
    with RawConn(bb.bootstrap) as c:
        c.send(rng.randbytes(4096))
    with RawConn(bb.bootstrap) as c:
        c.send(frame(rng.randbytes(300)))
        c.sock.settimeout(10)
        try:
            c.recv_frame()  # answered or closed is fine; a timeout (hang) raises
        except OSError as exc:
            pytest.fail(f"broker neither answered nor closed a garbage frame: {exc!r}")


def test_malformed_body_of_known_api_closes(bb):
    # Goal: a Metadata v1 request whose topic array claims 1000 entries but ends after the
    # count is malformed; the broker closes the connection (Kafka's behaviour) rather than
    # answering nonsense or hanging. Method: raw socket, expect EOF.
    with RawConn(bb.bootstrap) as c:
        c.send(frame(request_header(3, 1, 5) + i32(1000)))
        assert c.wait_closed(10), "broker kept the connection after a malformed Metadata body"


# ---------------------------------------------------------------------------------------
# Unknown / unsupported APIs and versions


def test_unknown_api_key(bb):
    # Goal: API key 9999 (no such API) framed properly is not fatal: the broker closes the
    # connection (as Kafka does) or answers with the right correlation id. Method: raw socket.
    with RawConn(bb.bootstrap) as c:
        c.send(frame(request_header(9999, 0, 4242) + b"\x00" * 8))
        resp = c.recv_frame()
        if resp is not None:
            assert Reader(resp).i32() == 4242, "response to an unknown API carries a wrong correlation id"


def test_joingroup_v5_raw_member_id_required(bb):
    # Goal: a hand-built JoinGroup v5 (non-flexible) is decoded and answered in kind: the
    # right correlation id and, for a first join without member id (KIP-394), error
    # MEMBER_ID_REQUIRED (79) with the member id to rejoin with. Method: raw socket.
    body = (
        kstring("weir-compat-group")
        + i32(10_000)  # session timeout
        + i32(30_000)  # rebalance timeout
        + kstring("")  # member id
        + kstring(None)  # group instance id
        + kstring("consumer")
        + karray([kstring("range") + kbytes(b"\x00\x01")])
    )
    with RawConn(bb.bootstrap) as c:
        c.send(frame(request_header(11, 5, 808) + body))
        resp = c.recv_frame()
    assert resp is not None, "JoinGroup v5 closed the connection"
    r = Reader(resp)
    assert r.i32() == 808
    r.i32()  # throttle_time_ms (v2+)
    assert r.i16() == 79, "a first JoinGroup v5 must get MEMBER_ID_REQUIRED"


def test_api_versions_v99_falls_back_to_v0(bb):
    # Goal: KIP-511: ApiVersions at an unknown version (99) is answered with error 35 and a
    # v0-format body (error_code, api_keys[key,min,max]; no throttle, no tagged fields) so any
    # client can parse it and retry. Method: v99 request with a v2 header; check every byte.
    with RawConn(bb.bootstrap) as c:
        req = request_header(18, 99, 31337, flexible=True) + compact_string("weir-compat") + compact_string("9.9") + uvarint(0)
        c.send(frame(req))
        resp = c.recv_frame()
    assert resp is not None, "broker closed the connection on ApiVersions v99"
    r = Reader(resp)
    assert r.i32() == 31337, "correlation id"
    assert r.i16() == 35, "error code must be UNSUPPORTED_VERSION"
    n = r.i32()
    assert n >= 1, "the v0 body must list at least ApiVersions itself"
    entries = [(r.i16(), r.i16(), r.i16()) for _ in range(n)]
    assert r.remaining() == 0, f"{r.remaining()} trailing bytes: not a v0 body"
    assert len(resp) == 4 + 2 + 4 + 6 * n
    api_versions_entry = [e for e in entries if e[0] == 18]
    assert api_versions_entry and api_versions_entry[0][1] == 0 and api_versions_entry[0][2] >= 3, entries


def test_api_versions_table(bb):
    # Goal: ApiVersions v0 and v3 agree and advertise what clients need: Produce from v0
    # (v0-2 are refused at use), Fetch, ListOffsets, Metadata, CreateTopics, DeleteTopics,
    # DescribeConfigs, CreatePartitions, DescribeCluster, ApiVersions; and nothing the notes
    # say must stay hidden until implemented (Telemetry 71/72). ConsumerGroupHeartbeat 68 and
    # ConsumerGroupDescribe 69 (KIP-848) are served, v0-1 (test_groups_848.py).
    e0, t0, _ = api_versions(bb.bootstrap, 0)
    e3, t3, _ = api_versions(bb.bootstrap, 3)
    assert e0 == 0 and e3 == 0
    assert t0 == t3, "v0 and v3 tables differ"
    for key in (0, 1, 2, 3, 18, 19, 20, 32, 37, 60):
        assert key in t3, f"API {key} not advertised: {t3}"
    assert t3[0][0] == 0, "Produce must be advertised from v0 (kcat keeps compression)"
    assert t3[18][1] >= 3
    for hidden in (71, 72):
        assert hidden not in t3, f"API {hidden} advertised but not implemented"
    assert t3[68] == (0, 1) and t3[69] == (0, 1), "KIP-848 APIs"


def test_produce_v2_unsupported(bb):
    # Goal: Produce v2 (magic-1 message sets) is answered per partition with
    # UNSUPPORTED_VERSION (35) and nothing is appended. Method: create a topic, send a
    # well-formed Produce v2 with a valid magic-1 message set, parse the v2 response, then
    # check the high watermark is still 0.
    topic = unique("produce-v2")
    ck_create_topic(bb.bootstrap, topic)
    body = i16(1) + i32(5000) + karray([kstring(topic) + karray([i32(0) + kbytes(message_set_v1([b"legacy"]))])])
    with RawConn(bb.bootstrap) as c:
        c.send(frame(request_header(0, 2, 99) + body))
        resp = c.recv_frame()
    assert resp is not None, "broker closed the connection instead of answering Produce v2"
    r = Reader(resp)
    assert r.i32() == 99
    n_topics = r.i32()
    assert n_topics == 1, f"Produce v2 response has {n_topics} topics: the client cannot see an error"
    assert r.string() == topic
    assert r.i32() == 1
    assert r.i32() == 0  # partition
    assert r.i16() == 35, "Produce v2 partition error is not UNSUPPORTED_VERSION"
    assert ck_watermarks(bb.bootstrap, topic, 0) == (0, 0), "Produce v2 appended data"


# ---------------------------------------------------------------------------------------
# Client-level errors


def test_produce_unknown_topic_no_autocreate(bb):
    # Goal: with auto.create.topics.enable=false, producing to a missing topic fails with
    # UNKNOWN_TOPIC_OR_PARTITION and does not create it. Method: librdkafka producer (delivery
    # report error), a raw Produce v3 with a valid v2 batch (exact error code 3), and
    # metadata afterwards.
    topic = unique("no-such-topic")
    p = ck_producer(bb.bootstrap, acks="all", **{"message.timeout.ms": 8000, "topic.metadata.propagation.max.ms": 1000})
    ds = ck_produce(p, topic, [{"value": b"x"}], timeout=20)
    assert ds[0].error is not None, "produce to a missing topic succeeded"
    assert ds[0].error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), ds[0].error

    body = kstring(None) + i16(1) + i32(5000) + karray([kstring(topic) + karray([i32(0) + kbytes(record_batch_v2([b"x"]))])])
    with RawConn(bb.bootstrap) as c:
        c.send(frame(request_header(0, 3, 123) + body))
        resp = c.recv_frame()
    assert resp is not None
    r = Reader(resp)
    assert r.i32() == 123
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1 and r.i32() == 0
    assert r.i16() == 3, "raw Produce v3 to a missing topic: error is not UNKNOWN_TOPIC_OR_PARTITION"

    md = ck_admin(bb.bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    assert t is None or t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic was auto-created: {t}"


def test_record_over_message_max_bytes(bb):
    # Goal: a record larger than the broker's message.max.bytes (100 kB here) is refused with
    # MESSAGE_TOO_LARGE (10) and not stored; a smaller one still goes through. Method: the
    # producers' own limits are raised (librdkafka message.max.bytes, kafka-python
    # max_request_size) so the clients really send it; compression off so size is size.
    topic = unique("too-large")
    ck_create_topic(bb.bootstrap, topic)
    big = b"x" * (BROKER_MAX_MESSAGE_BYTES + 20_000)
    p = ck_producer(bb.bootstrap, acks="all", **{"message.max.bytes": 1_000_000, "compression.type": "none", "message.send.max.retries": 0})
    ds = ck_produce(p, topic, [{"value": big, "partition": 0}], timeout=20)
    assert ds[0].error is not None and ds[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE, ds[0].error

    from kafka.errors import MessageSizeTooLargeError

    kp = kp_producer(bb.bootstrap, acks="all", max_request_size=1_000_000, retries=0)
    try:
        fut = kp.send(topic, value=big, partition=0)
        with pytest.raises(MessageSizeTooLargeError):
            fut.get(timeout=20)
    finally:
        kp.close(timeout=10)

    assert ck_watermarks(bb.bootstrap, topic, 0) == (0, 0), "an oversized record was stored"
    ds = ck_produce(p, topic, [{"value": b"y" * 50_000, "partition": 0}])
    assert ds[0].error is None and ds[0].offset == 0, ds[0]


@pytest.mark.parametrize("name", ["bad topic!", "..", "a" * 250, "slash/ed"])
def test_invalid_topic_names(bb, name):
    # Goal: CreateTopics with an illegal name is refused with INVALID_TOPIC_EXCEPTION (17) by
    # both admin clients, and nothing is created. Method: confluent AdminClient and
    # kafka-python KafkaAdminClient (raise_errors=False, exact code), then list topics.
    admin = ck_admin(bb.bootstrap)  # must outlive the future
    f = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name]
    with pytest.raises(Exception) as exc:
        f.result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, exc.value
    kp = kp_admin(bb.bootstrap)
    try:
        res = kp.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [17], res
        assert name not in kp.list_topics()
    finally:
        kp.close()


@pytest.mark.parametrize("partitions", [0, -3])
def test_invalid_partition_counts(bb, partitions):
    # Goal: CreateTopics with 0 or a negative partition count (other than -1 = default) is
    # refused with INVALID_PARTITIONS (37). Method: kafka-python (sends any value), and
    # confluent for 0 (librdkafka itself rejects < -1 before sending).
    name = unique("bad-parts")
    kp = kp_admin(bb.bootstrap)
    try:
        res = kp.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}}, raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [37], res
    finally:
        kp.close()
    if partitions == 0:
        admin = ck_admin(bb.bootstrap)  # must outlive the future
        f = admin.create_topics([NewTopic(name, num_partitions=0, replication_factor=1)])[name]
        with pytest.raises(Exception) as exc:
            f.result(timeout=15)
        assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS, exc.value
    assert ck_partitions(bb.bootstrap, name) == {}, "topic was created anyway"


def test_invalid_replication_factor(bb):
    # Goal: a single node cannot host 3 replicas: INVALID_REPLICATION_FACTOR (38).
    # Method: confluent AdminClient create_topics with replication_factor=3.
    name = unique("rf3")
    admin = ck_admin(bb.bootstrap)  # must outlive the future
    f = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=3)])[name]
    with pytest.raises(Exception) as exc:
        f.result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, exc.value
