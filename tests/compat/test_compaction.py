"""Log compaction (`cleanup.policy=compact`, issue 14) with real clients.

Goal: a compacted Weir topic behaves like a compacted Kafka topic for unmodified clients:
the latest record of every key survives at the offset its producer was told, superseded
records below the active segment go (offsets never change, consumers skip the gaps),
records in the active segment are never touched, a tombstone stays readable for
`delete.retention.ms` after its first cleaning and then goes with its key, aborted
transactional records are removed and never hide a committed value, a keyless record is
refused with INVALID_RECORD, the compaction settings are described by their Kafka names,
and in a 3-node cluster the new leader after a SIGKILL serves the same latest value per
key at the same offsets.

Method: every test starts its own broker(s) with `log.cleaner.backoff.ms = 200` and
creates topics with `segment.bytes = 100`. A record batch is at least 61 bytes, so every
batch after the first closes the segment before it: each batch is a segment of its own
and the active segment is exactly the last batch (which the tests read back with a raw
Fetch to know where it starts). `min.cleanable.dirty.ratio = 0.01` makes any dirty
segment worth cleaning. The expected log after compaction is computed from the
producers' delivery reports (the model: below the active segment, the last record of
each key; from it on, everything), and the tests poll, with deadlines, until the
cleaner reached it, then assert the exact (offset, key, value) list every client reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Optional

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

# The 3-node harness (the fixture is used by the cluster test at the end).
from test_cluster import CLUSTER_CONFIG, ISR_TIMEOUT_S, LEADER_MOVE_TIMEOUT_S, cluster_factory, partition_state  # noqa: F401
from weirtest import (
    HERE,
    ck_admin,
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    free_port,
    kp_admin,
    kp_consumer,
    kp_producer,
    kp_read,
    parse_batches,
    raw_fetch_v4,
    unique,
    wait_until,
)

# The broker looks for compaction work every 200 ms instead of every 15 s.
CONFIG = '"log.cleaner.backoff.ms" = 200\n'
# Below the size of two batches: every batch closes the segment before it.
SEGMENT_BYTES = 100
COMPACTION_TIMEOUT_S = 15.0

KAFKAJS_DIR = HERE / "kafkajs"


def compacted(**overrides: str) -> dict:
    cfg = {
        "cleanup.policy": "compact",
        "segment.bytes": str(SEGMENT_BYTES),
        "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0",
    }
    cfg.update(overrides)
    return cfg


# A record as a client sees it: (offset, key, value); value None is a tombstone.
Row = tuple[int, Optional[bytes], Optional[bytes]]


@dataclass(frozen=True)
class Written:
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]

    @property
    def row(self) -> Row:
        return (self.offset, self.key, self.value)


def produce_waves(bootstrap: str, topic: str, waves: list[list[tuple[bytes, Optional[bytes]]]], **conf) -> list[Written]:
    """Produces each wave of (key, value) pairs to partition 0 and flushes it before the
    next, so every wave is one or more batches of its own (and so, segments). Returns what
    the delivery reports say, in production order."""
    settings = {"acks": "all", "linger.ms": 20, **conf}
    p = ck_producer(bootstrap, **settings)
    out: list[Written] = []
    for wave in waves:
        ds = ck_produce(p, topic, [{"key": k, "value": v, "partition": 0} for k, v in wave])
        errors = [d.error for d in ds if d.error is not None]
        assert not errors, f"produce failed: {errors[:3]}"
        out += [Written(d.offset, k, v) for d, (k, v) in zip(ds, wave)]
    return out


def active_segment_start(bootstrap: str, topic: str, high: int) -> int:
    """Base offset of the batch holding offset high-1: the last batch, which is the whole
    active segment at SEGMENT_BYTES."""
    err, hw, records = raw_fetch_v4(bootstrap, topic, 0, high - 1)
    assert err == 0 and hw == high, f"raw fetch at {high - 1}: error {err}, high watermark {hw} (expected {high})"
    batches = parse_batches(records)
    assert batches, f"raw fetch at {high - 1} returned no batch"
    return batches[0].base_offset


def model(written: list[Written], active_start: int) -> list[Row]:
    """What a compacted log holds once cleaned up to the active segment: below it, the
    last record of every key (tombstones included: the caller drops them once their
    horizon passed); from it on, every record."""
    latest: dict[Optional[bytes], Written] = {}
    for w in written:
        if w.offset < active_start:
            latest[w.key] = w
    kept = sorted(latest.values(), key=lambda w: w.offset)
    kept += [w for w in written if w.offset >= active_start]
    return [w.row for w in kept]


def read_all(bootstrap: str, topic: str, timeout: float = 15, **conf) -> list[Row]:
    """Every record librdkafka delivers from the log start to the high watermark (checking
    each batch's CRC, so a badly rewritten batch fails here)."""
    c = ck_consumer(bootstrap, **{"check.crcs": True, **conf})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        recs = ck_read(bootstrap, topic, {0: OFFSET_BEGINNING}, until={0: high}, timeout=timeout, consumer=c)
    finally:
        c.close()
    return [(r.offset, r.key, r.value) for r in recs]


def superseded_below(rows: list[Row], active_start: int) -> list[Row]:
    """Rows below the active segment whose key has a later row below it too."""
    last: dict[Optional[bytes], int] = {}
    for off, key, _ in rows:
        if off < active_start:
            last[key] = off
    return [r for r in rows if r[0] < active_start and last[r[1]] != r[0]]


def latest_below(written: list[Written], active: int) -> dict[Optional[bytes], int]:
    out: dict[Optional[bytes], int] = {}
    for w in written:
        if w.offset < active:
            out[w.key] = w.offset
    return out


def wait_compacted(bootstrap: str, topic: str, written: list[Written], active_start: int, **conf) -> list[Row]:
    """Polls (deadline) until compaction is observable and then complete: first fewer
    records read than written, then no superseded record below the active segment. Returns
    that read; the caller asserts its exact contents."""
    wait_until(lambda: len(read_all(bootstrap, topic, **conf)) < len(written), COMPACTION_TIMEOUT_S,
               f"{topic}: fewer records read from the beginning than the {len(written)} written (a compaction)", interval=0.2)
    return wait_until(lambda: (lambda rows: rows if not superseded_below(rows, active_start) else None)(read_all(bootstrap, topic, **conf)),
                      COMPACTION_TIMEOUT_S, f"{topic}: no superseded record left below the active segment at {active_start}", interval=0.2)


def diff(got: list[Row], want: list[Row]) -> str:
    g, w = set(got), set(want)
    return f"missing {sorted(w - g)[:10]}, unexpected {sorted(g - w)[:10]}, got {len(got)} rows, expected {len(want)}"


def keyed_log(bootstrap: str, topic: str, keys: int = 4, rounds: int = 12, leader: Optional[str] = None, once: bool = True) -> tuple[list[Written], int, list[Row]]:
    """The shared shape: with `once`, one key written once first (its batch is the log's
    first, which compaction rewrites down to that record; without it the first batch
    loses every record and is kept empty, never removed), `rounds` waves writing every key
    k0..k{n-1} once, then a last batch [k0 -> k0-active, zz -> last], the active segment.
    `leader`: the partition leader's address for the raw Fetch (default: `bootstrap`).
    Returns (written, active segment start, model)."""
    first = [(b"once", b"once-v0")] if once else []
    waves = [first + [(b"k%d" % i, b"k%d-v0" % i) for i in range(keys)]]
    waves += [[(b"k%d" % i, b"k%d-v%d" % (i, r)) for i in range(keys)] for r in range(1, rounds)]
    written = produce_waves(bootstrap, topic, waves)
    # One batch: the whole active segment. Produced back to back and sent by the flush
    # (librdkafka's flush does not wait out linger.ms); the long linger keeps a loaded
    # machine's pause between the two produce calls from sending the first one alone.
    written += produce_waves(bootstrap, topic, [[(b"k0", b"k0-active"), (b"zz", b"last")]], **{"linger.ms": 5000})
    n = len(written)
    assert [w.offset for w in written] == list(range(n)), f"a fresh topic's offsets are dense: {[w.offset for w in written]}"
    active = active_segment_start(leader or bootstrap, topic, n)
    assert active == n - 2, f"the last produce was not one batch: active segment starts at {active}, expected {n - 2}"
    return written, active, model(written, active)


# --------------------------------------------------------------------------------------
# 1. confluent-kafka: latest value per key, exact offsets, the active segment untouched


def test_latest_value_per_key_at_its_offset(broker_factory):
    # Goal: after compaction a consumer from the beginning reads, for every key, its latest
    # value at the offset of its delivery report; nothing superseded below the active
    # segment; the active segment untouched (there k0 has a newer value, and the older
    # closed one must still be there); log start and end unchanged; batches valid; the
    # cleaner's counters on /metrics (bytes read and removed, seconds its jobs ran) moved.
    import urllib.request

    metrics_port = free_port()
    b = broker_factory.new(config=CONFIG + f'weir.metrics.listener = "127.0.0.1:{metrics_port}"\n', name="compact-latest")
    topic = unique("compact")
    ck_create_topic(b.bootstrap, topic, config=compacted())
    written, active, want = keyed_log(b.bootstrap, topic)
    n = len(written)
    before = read_all(b.bootstrap, topic)
    assert len(before) <= n and all(r in {w.row for w in written} for r in before), "a read before compaction returned records nobody wrote"

    got = wait_compacted(b.bootstrap, topic, written, active)
    assert got == want, diff(got, want)

    offsets = [r[0] for r in got]
    assert offsets == sorted(set(offsets)), f"offsets not strictly increasing: {offsets}"
    latest = {w.key: w for w in written}
    for key, w in latest.items():
        assert w.row in got, f"latest value of {key!r} ({w.value!r} at {w.offset}) is gone"
    gone = [w.row for w in written if w.offset < active and latest_below(written, active)[w.key] != w.offset]
    assert not set(gone) & set(got), f"superseded values still read: {sorted(set(gone) & set(got))[:5]}"
    # The active segment is not cleaned: k0's last closed value survives beside k0-active.
    k0_closed = [w for w in written if w.key == b"k0" and w.offset < active][-1]
    assert [r for r in got if r[1] == b"k0"] == [k0_closed.row, (n - 2, b"k0", b"k0-active")]
    assert len(got) == 4 + 1 + 2, f"4 keys + once below the active segment, 2 in it: {got}"
    assert ck_watermarks(b.bootstrap, topic, 0) == (0, n), "compaction moved the log start or end"
    # A consumer positioned inside a gap gets the next stored record.
    c = ck_consumer(b.bootstrap, **{"check.crcs": True})
    try:
        c.assign([TopicPartition(topic, 0, 10)])
        from_gap = ck_read(b.bootstrap, topic, {0: 10}, until={0: n}, consumer=c)
    finally:
        c.close()
    assert [(r.offset, r.key, r.value) for r in from_gap] == [r for r in want if r[0] >= 10], "read from offset 10 (a gap)"
    # Physically: the first batch (emptied down to `once`) still starts the log, every
    # stored batch has a valid CRC.
    err, _, records = raw_fetch_v4(b.bootstrap, topic, 0, 0)
    batches = parse_batches(records)
    assert err == 0 and batches and batches[0].base_offset == 0, f"first stored batch: {batches[:1]}"
    assert all(x.crc_ok for x in batches), f"bad CRC after compaction: {[x for x in batches if not x.crc_ok]}"
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    samples = dict(line.rsplit(" ", 1) for line in body.splitlines() if line.startswith("weir_log_cleaner_") and "{" not in line)
    for name in ("bytes_read_total", "bytes_cleaned_total", "busy_seconds_total"):
        assert float(samples.get(f"weir_log_cleaner_{name}", "0")) > 0, f"weir_log_cleaner_{name}: {samples}"


def test_compacted_log_survives_sigkill_restart(broker_factory):
    # Goal: a compacted log (gaps, an emptied first batch, rewritten batches, a cleaner
    # checkpoint) is recovered as it was: after SIGKILL and restart the same rows at the
    # same offsets, the same watermarks, the next produce at the old log end, and the
    # cleaner goes on from there (a new round of values supersedes the survivors).
    b = broker_factory.new(config=CONFIG, name="compact-restart")
    topic = unique("crestart")
    ck_create_topic(b.bootstrap, topic, config=compacted())
    written, active, want = keyed_log(b.bootstrap, topic)
    n = len(written)
    got = wait_compacted(b.bootstrap, topic, written, active)
    assert got == want, diff(got, want)
    b.restart(hard=True)
    got = wait_until(lambda: read_all(b.bootstrap, topic), 15, f"{topic} readable after restart")
    assert got == want, f"after SIGKILL + restart: {diff(got, want)}"
    assert ck_watermarks(b.bootstrap, topic, 0) == (0, n)
    more = produce_waves(b.bootstrap, topic, [[(b"k%d" % i, b"k%d-after-restart" % i) for i in range(4)]])
    more += produce_waves(b.bootstrap, topic, [[(b"zz", b"last-after-restart")]])
    assert [w.offset for w in more] == list(range(n, n + 5)), f"offsets after restart: {[w.offset for w in more]}"
    written += more
    active2 = active_segment_start(b.bootstrap, topic, n + 5)
    assert active2 == n + 4
    want2 = model(written, active2)
    got = wait_until(lambda: (lambda r: r if not superseded_below(r, active2) else None)(read_all(b.bootstrap, topic)),
                     COMPACTION_TIMEOUT_S, f"{topic} compacted again after restart", interval=0.2)
    assert got == want2, f"second compaction after restart: {diff(got, want2)}"


def test_switch_to_compact_removes_keyless_and_superseded(broker_factory):
    # Goal: a topic created with cleanup.policy=delete and then altered to compact
    # (IncrementalAlterConfigs) is cleaned: keyless records written before the switch go
    # (they could never be looked up), the latest record of every key survives at its
    # offset, and from then on a keyless produce is refused.
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    b = broker_factory.new(config=CONFIG, name="compact-switch")
    topic = unique("cswitch")
    ck_create_topic(b.bootstrap, topic, config={"cleanup.policy": "delete", "segment.bytes": str(SEGMENT_BYTES)})
    waves = [[(None, b"keyless-%d" % r), (b"a", b"a-v%d" % r), (b"b", b"b-v%d" % r)] for r in range(5)]
    written = produce_waves(b.bootstrap, topic, waves)
    written += produce_waves(b.bootstrap, topic, [[(b"zz", b"last")]])
    n = len(written)
    active = active_segment_start(b.bootstrap, topic, n)
    assert active == n - 1
    assert read_all(b.bootstrap, topic) == [w.row for w in written], "a delete-policy topic is not compacted"

    admin = ck_admin(b.bootstrap)  # must outlive the future
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    want = [r for r in model(written, active) if r[1] is not None]
    assert want == [(13, b"a", b"a-v4"), (14, b"b", b"b-v4"), (15, b"zz", b"last")], want
    got = wait_until(lambda: (lambda r: r if not [x for x in r if x[1] is None] and not superseded_below(r, active) else None)(read_all(b.bootstrap, topic)),
                     COMPACTION_TIMEOUT_S, f"{topic} cleaned after the switch to compact", interval=0.2)
    assert got == want, f"after the switch to compact: {diff(got, want)}"
    [bad] = ck_produce(ck_producer(b.bootstrap, acks="all"), topic, [{"value": b"keyless-after", "partition": 0}])
    assert bad.error is not None and bad.error.code() == KafkaError.INVALID_RECORD, f"keyless produce after the switch: {bad.error}"


# --------------------------------------------------------------------------------------
# 2. Tombstones


def test_tombstone_readable_then_gone_after_delete_retention(broker_factory):
    # Goal: a null value deletes its key: the key's older records go at the next cleaning,
    # the tombstone itself stays readable (at its offset, value None) until
    # delete.retention.ms after that cleaning, then it goes too and the key is absent;
    # the other keys keep their latest values. Method: delete.retention.ms = 2000; write
    # a, b, c; tombstone b; filler writes; poll for the tombstone-only state, then keep
    # writing fillers (dirty data for another cleaning) until b disappears.
    retention_ms = 2000
    b = broker_factory.new(config=CONFIG, name="compact-tomb")
    topic = unique("tomb")
    ck_create_topic(b.bootstrap, topic, config=compacted(**{"delete.retention.ms": str(retention_ms)}))
    waves = [[(k, b"%s-v%d" % (k, r)) for k in (b"a", b"b", b"c")] for r in range(4)]
    written = produce_waves(b.bootstrap, topic, waves)
    tomb_sent = time.monotonic()
    written += produce_waves(b.bootstrap, topic, [[(b"b", None)]])
    tomb = written[-1]
    written += produce_waves(b.bootstrap, topic, [[(b"f", b"f-0")], [(b"f", b"f-1")]])
    high = len(written)
    active = active_segment_start(b.bootstrap, topic, high)
    assert active == high - 1

    got = wait_compacted(b.bootstrap, topic, written, active)
    assert got == model(written, active), diff(got, model(written, active))
    b_rows = [r for r in got if r[1] == b"b"]
    assert b_rows == [(tomb.offset, b"b", None)], f"before delete.retention.ms only the tombstone of b is read: {b_rows}"
    assert time.monotonic() - tomb_sent < retention_ms / 1000 + 5, "test too slow to see the tombstone window"

    # More writes (dirty segments for more cleanings) until the tombstone is gone.
    p = ck_producer(b.bootstrap, acks="all", **{"linger.ms": 0})
    fillers: list[Written] = []
    seen_b: list[list[Row]] = []
    deadline = time.monotonic() + COMPACTION_TIMEOUT_S
    gone_at = None
    while gone_at is None:
        assert time.monotonic() < deadline, f"tombstone of b still read {COMPACTION_TIMEOUT_S}s later: {seen_b[-1:]}"
        d = ck_produce(p, topic, [{"key": b"f", "value": b"f-%d" % (2 + len(fillers)), "partition": 0}])[0]
        assert d.error is None, d.error
        fillers.append(Written(d.offset, b"f", d.value))
        rows = read_all(b.bootstrap, topic)
        mine = [r for r in rows if r[1] == b"b"]
        seen_b.append(mine)
        assert mine in ([], [(tomb.offset, b"b", None)]), f"b came back or lost its tombstone early: {mine}"
        if not mine:
            gone_at = time.monotonic()
        else:
            time.sleep(0.2)
    assert gone_at - tomb_sent >= retention_ms / 1000, (
        f"tombstone removed {gone_at - tomb_sent:.2f}s after it was produced, delete.retention.ms is {retention_ms}"
    )
    rows = read_all(b.bootstrap, topic)
    assert not [r for r in rows if r[1] == b"b"], "key b is back"
    for key in (b"a", b"c"):
        last = [w for w in written if w.key == key][-1]
        assert [r for r in rows if r[1] == key] == [last.row], f"{key!r}: {[r for r in rows if r[1] == key]}"
    assert rows[-1] == fillers[-1].row, f"last record {rows[-1]}, last written {fillers[-1].row}"
    everything = {w.row for w in written + fillers}
    assert all(r in everything for r in rows), f"records nobody wrote: {[r for r in rows if r not in everything][:5]}"


# --------------------------------------------------------------------------------------
# 3. Transactions


def test_transactions_committed_survive_aborted_removed(broker_factory):
    # Goal: committed transactional values survive compaction as their keys' latest
    # values even where an aborted transaction wrote the key later; read_committed never
    # sees an aborted value, before or after compaction; after compaction the aborted
    # records are physically gone (read_uncommitted no longer sees them). Method:
    # min.compaction.lag.ms = 5000 holds the cleaner off while the "before" reads run
    # (and checks that it does), then the tests poll until the aborted values are gone.
    lag_ms = 5000
    b = broker_factory.new(config=CONFIG, name="compact-txn")
    topic = unique("ctxn")
    ck_create_topic(b.bootstrap, topic, config=compacted(**{"min.compaction.lag.ms": str(lag_ms)}))
    started = time.monotonic()
    p = ck_producer(b.bootstrap, **{"transactional.id": unique("tid"), "transaction.timeout.ms": 10000, "message.timeout.ms": 10000, "linger.ms": 5})
    p.init_transactions(15)
    written: list[Written] = []
    aborted: list[Written] = []

    def txn(pairs, commit: bool) -> None:
        p.begin_transaction()
        ds = ck_produce(p, topic, [{"key": k, "value": v, "partition": 0} for k, v in pairs])
        assert all(d.error is None for d in ds), [d.error for d in ds]
        rows = [Written(d.offset, k, v) for d, (k, v) in zip(ds, pairs)]
        if commit:
            p.commit_transaction(15)
            written.extend(rows)
        else:
            p.abort_transaction(15)
            aborted.extend(rows)

    keys = [b"k%d" % i for i in range(4)]
    txn([(k, b"c1-" + k) for k in keys], commit=True)
    txn([(k, b"ab2-" + k) for k in keys], commit=False)
    txn([(k, b"c3-" + k) for k in keys[:2]], commit=True)
    # The producer's last transaction is aborted: its last batch is kept by the cleaner
    # (producer state) but must lose its records; k2's committed value must win.
    txn([(keys[2], b"ab4-" + keys[2])], commit=False)
    written += produce_waves(b.bootstrap, topic, [[(b"zz", b"last")]])
    _, high = ck_watermarks(b.bootstrap, topic, 0)
    active = active_segment_start(b.bootstrap, topic, high)
    assert active == written[-1].offset == high - 1

    committed_before = read_all(b.bootstrap, topic, **{"isolation.level": "read_committed"})
    uncommitted_before = read_all(b.bootstrap, topic, **{"isolation.level": "read_uncommitted"})
    elapsed = time.monotonic() - started
    assert elapsed < lag_ms / 1000, f"setup took {elapsed:.1f}s, longer than min.compaction.lag.ms: the 'before' reads may see compaction"
    assert committed_before == sorted(w.row for w in written), diff(committed_before, [w.row for w in written])
    everything = sorted(w.row for w in written + aborted)
    assert uncommitted_before == everything, f"before min.compaction.lag.ms nothing is cleaned: {diff(uncommitted_before, everything)}"

    want = model(written, active)
    assert [r[2] for r in want] == [b"c1-k2", b"c1-k3", b"c3-k0", b"c3-k1", b"last"], want
    aborted_values = {w.value for w in aborted}
    got = wait_until(
        lambda: (lambda rows: rows if not aborted_values & {r[2] for r in rows} and not superseded_below(rows, active) else None)(
            read_all(b.bootstrap, topic, **{"isolation.level": "read_uncommitted"})
        ),
        lag_ms / 1000 + COMPACTION_TIMEOUT_S,
        f"{topic}: aborted and superseded records physically gone (read_uncommitted)",
        interval=0.2,
    )
    assert got == want, f"read_uncommitted after compaction: {diff(got, want)}"
    committed_after = read_all(b.bootstrap, topic, **{"isolation.level": "read_committed"})
    assert committed_after == want, f"read_committed after compaction: {diff(committed_after, want)}"
    assert ck_watermarks(b.bootstrap, topic, 0) == (0, high)


# --------------------------------------------------------------------------------------
# 4. kafka-python and kafkajs read a compacted topic; keyless records; describe configs


def compacted_topic(bootstrap: str, name: str, once: bool = True) -> tuple[str, list[Written], list[Row]]:
    """A topic written by confluent-kafka and compacted (checked with librdkafka); without
    `once` its first stored batch is an empty one (see keyed_log)."""
    topic = unique(name)
    ck_create_topic(bootstrap, topic, config=compacted())
    written, active, want = keyed_log(bootstrap, topic, once=once)
    got = wait_compacted(bootstrap, topic, written, active)
    assert got == want, diff(got, want)
    return topic, written, want


FIRST_BATCH = pytest.mark.parametrize("once", [True, False], ids=["first-batch-rewritten", "first-batch-emptied"])


@FIRST_BATCH
def test_kafka_python_reads_compacted_topic(broker_factory, once):
    # Goal: kafka-python reads a compacted topic (written by librdkafka) from the beginning
    # and gets exactly the compacted rows: it skips the offset gaps and an emptied first
    # batch, and its position ends at the high watermark; seeking into a gap lands on the
    # next stored record.
    from kafka import TopicPartition as KTP

    b = broker_factory.new(config=CONFIG, name="compact-kp")
    topic, written, want = compacted_topic(b.bootstrap, "ckp", once=once)
    c = kp_consumer(b.bootstrap)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        recs = kp_read(c, {tp: len(written)}, timeout=20)
        assert c.beginning_offsets([tp]) == {tp: 0} and c.end_offsets([tp]) == {tp: len(written)}
    finally:
        c.close()
    got = [(r.offset, r.key, r.value) for r in recs]
    assert got == want, f"kafka-python: {diff(got, want)}"
    # Positioned inside a gap, kafka-python gets the next stored record.
    c = kp_consumer(b.bootstrap)
    try:
        c.assign([tp])
        c.seek(tp, 10)
        recs = kp_read(c, {tp: len(written)}, timeout=20)
    finally:
        c.close()
    got = [(r.offset, r.key, r.value) for r in recs]
    assert got == [r for r in want if r[0] >= 10], f"kafka-python from offset 10 (a gap): {got}"


def kp_read_all(bootstrap: str, topic: str, **conf) -> list[Row]:
    """Every record kafka-python delivers from the log start to the high watermark."""
    from kafka import TopicPartition as KTP

    c = kp_consumer(bootstrap, **conf)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        high = c.end_offsets([tp])[tp]
        recs = kp_read(c, {tp: high}, timeout=20)
    finally:
        c.close()
    return [(r.offset, r.key, r.value) for r in recs]


def test_kafka_python_reads_tombstones_and_compacted_transactions(broker_factory):
    # Goal: kafka-python sees a compacted log's tombstone (value None, at its offset, the
    # only record of its key) before delete.retention.ms, and neither the tombstone nor
    # the key after it; and it reads a compacted transactional topic with read_committed
    # (and read_uncommitted) as exactly the committed latest values: aborted records and
    # the markers' offsets skipped, nothing committed lost. Method: as the librdkafka
    # tombstone and transaction tests (librdkafka decides when the cleaner is done), with
    # kafka-python reading at each stage; delete.retention.ms 4000.
    retention_ms = 4000
    b = broker_factory.new(config=CONFIG, name="compact-kp-tomb")
    topic = unique("kptomb")
    ck_create_topic(b.bootstrap, topic, config=compacted(**{"delete.retention.ms": str(retention_ms)}))
    waves = [[(k, b"%s-v%d" % (k, r)) for k in (b"a", b"b", b"c")] for r in range(4)]
    written = produce_waves(b.bootstrap, topic, waves)
    tomb_sent = time.monotonic()
    written += produce_waves(b.bootstrap, topic, [[(b"b", None)]])
    tomb = written[-1]
    written += produce_waves(b.bootstrap, topic, [[(b"f", b"f-0")], [(b"f", b"f-1")]])
    active = active_segment_start(b.bootstrap, topic, len(written))
    want = model(written, active)
    got = wait_compacted(b.bootstrap, topic, written, active)
    assert got == want, diff(got, want)
    kp_rows = kp_read_all(b.bootstrap, topic)
    assert time.monotonic() - tomb_sent < retention_ms / 1000, "test too slow to see the tombstone window"
    assert kp_rows == want, f"kafka-python before delete.retention.ms: {diff(kp_rows, want)}"
    assert [r for r in kp_rows if r[1] == b"b"] == [(tomb.offset, b"b", None)], kp_rows
    # Fillers (dirty data for more cleanings) until librdkafka no longer reads b.
    p = ck_producer(b.bootstrap, acks="all", **{"linger.ms": 0})
    fillers: list[Written] = []

    def b_gone() -> bool:
        d = ck_produce(p, topic, [{"key": b"f", "value": b"f-%d" % (2 + len(fillers)), "partition": 0}])[0]
        assert d.error is None, d.error
        fillers.append(Written(d.offset, b"f", d.value))
        return not [r for r in read_all(b.bootstrap, topic) if r[1] == b"b"]

    wait_until(b_gone, retention_ms / 1000 + COMPACTION_TIMEOUT_S, "the tombstone of b went", interval=0.2)
    assert time.monotonic() - tomb_sent >= retention_ms / 1000, "tombstone removed before delete.retention.ms"
    kp_rows = kp_read_all(b.bootstrap, topic)
    assert not [r for r in kp_rows if r[1] == b"b"], f"kafka-python still reads b after delete.retention.ms: {kp_rows}"
    for key in (b"a", b"c"):
        last = [w for w in written if w.key == key][-1]
        assert [r for r in kp_rows if r[1] == key] == [last.row], f"{key!r}: {kp_rows}"
    assert kp_rows[-1] == fillers[-1].row, f"kafka-python's last record {kp_rows[-1]}, last written {fillers[-1].row}"

    # A compacted transactional topic: committed, aborted, committed, aborted.
    topic = unique("kptxn")
    ck_create_topic(b.bootstrap, topic, config=compacted())
    tp = ck_producer(b.bootstrap, **{"transactional.id": unique("tid"), "transaction.timeout.ms": 10000, "message.timeout.ms": 10000, "linger.ms": 5})
    tp.init_transactions(15)
    committed: list[Written] = []
    aborted: list[Written] = []
    keys = [b"k%d" % i for i in range(4)]
    for pairs, commit in [
        ([(k, b"c1-" + k) for k in keys], True),
        ([(k, b"ab2-" + k) for k in keys], False),
        ([(k, b"c3-" + k) for k in keys[:2]], True),
        ([(keys[2], b"ab4-" + keys[2])], False),
    ]:
        tp.begin_transaction()
        ds = ck_produce(tp, topic, [{"key": k, "value": v, "partition": 0} for k, v in pairs])
        assert all(d.error is None for d in ds), [d.error for d in ds]
        rows = [Written(d.offset, k, v) for d, (k, v) in zip(ds, pairs)]
        if commit:
            tp.commit_transaction(15)
            committed.extend(rows)
        else:
            tp.abort_transaction(15)
            aborted.extend(rows)
    committed += produce_waves(b.bootstrap, topic, [[(b"zz", b"last")]])
    _, high = ck_watermarks(b.bootstrap, topic, 0)
    active = active_segment_start(b.bootstrap, topic, high)
    want = model(committed, active)
    assert [r[2] for r in want] == [b"c1-k2", b"c1-k3", b"c3-k0", b"c3-k1", b"last"], want
    aborted_values = {w.value for w in aborted}
    wait_until(
        lambda: (lambda rows: rows if not aborted_values & {r[2] for r in rows} and not superseded_below(rows, active) else None)(
            read_all(b.bootstrap, topic, **{"isolation.level": "read_uncommitted"})
        ),
        COMPACTION_TIMEOUT_S,
        f"{topic}: aborted and superseded records physically gone (librdkafka read_uncommitted)",
        interval=0.2,
    )
    for isolation in ("read_committed", "read_uncommitted"):
        kp_rows = kp_read_all(b.bootstrap, topic, isolation_level=isolation)
        assert kp_rows == want, f"kafka-python {isolation} after compaction: {diff(kp_rows, want)}"


def _kafkajs(bootstrap: str, step: str, *args: str, timeout: float = 60) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail("kafkajs is not installed: run `npm ci` in tests/compat/kafkajs (run.sh does)")
    res = subprocess.run([node, str(KAFKAJS_DIR / "compaction.mjs"), bootstrap, step, *args], cwd=KAFKAJS_DIR, capture_output=True, timeout=timeout)
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    assert res.returncode == 0, f"kafkajs {step} failed (exit {res.returncode}):\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.kafkajs
@FIRST_BATCH
def test_kafkajs_reads_compacted_topic(broker_factory, once):
    # Goal: a kafkajs consumer (group, fromBeginning) reads a compacted topic written by
    # librdkafka and gets exactly the compacted rows, skipping the gaps (and an emptied
    # first batch).
    b = broker_factory.new(config=CONFIG, name="compact-kjs")
    topic, written, want = compacted_topic(b.bootstrap, "ckjs", once=once)
    out = _kafkajs(b.bootstrap, "read", topic, unique("kjs-compact-group"), str(len(written)))
    got = [(off, None if k is None else k.encode("latin1"), None if v is None else v.encode("latin1")) for off, k, v in out["records"]]
    assert got == want, f"kafkajs: {diff(got, want)}"


def test_keyless_record_refused(broker_factory):
    # Goal: a record without a key cannot enter a compacted topic: kafka-python raises
    # InvalidRecordError, librdkafka reports INVALID_RECORD (87) in the delivery report
    # (kafkajs: test_kafkajs_keyless_refused_and_describe_configs); nothing keyless is
    # stored, keyed records after the refusals are stored at dense offsets.
    import kafka.errors as kerr

    b = broker_factory.new(config=CONFIG, name="compact-keyless")
    topic = unique("ckeyless")
    ck_create_topic(b.bootstrap, topic, config=compacted())

    kp = kp_producer(b.bootstrap, acks="all", retries=0)
    try:
        with pytest.raises(kerr.InvalidRecordError):
            kp.send(topic, value=b"kp-no-key", partition=0).get(timeout=15)
        md = kp.send(topic, key=b"kp-key", value=b"kp-keyed", partition=0).get(timeout=15)
        assert md.offset == 0, md
    finally:
        kp.close(timeout=5)

    p = ck_producer(b.bootstrap, acks="all")
    [bad] = ck_produce(p, topic, [{"value": b"ck-no-key", "partition": 0}])
    assert bad.error is not None and bad.error.code() == KafkaError.INVALID_RECORD, f"librdkafka delivery: {bad.error}"
    [ok] = ck_produce(p, topic, [{"key": b"ck-key", "value": b"ck-keyed", "partition": 0}])
    assert ok.error is None and ok.offset == 1, (ok.error, ok.offset)

    want = [(0, b"kp-key", b"kp-keyed"), (1, b"ck-key", b"ck-keyed")]
    got = read_all(b.bootstrap, topic)
    assert got == want, f"keyless records stored or keyed ones lost: {diff(got, want)}"


@pytest.mark.kafkajs
def test_kafkajs_keyless_refused_and_describe_configs(broker_factory):
    # Goal: kafkajs's producer gets INVALID_RECORD (not retriable) for a keyless record in
    # a compacted topic and its keyed record after that is stored at offset 0 (nothing
    # keyless stored, read back with librdkafka); kafkajs describeConfigs shows the
    # compaction settings the topic was created with.
    b = broker_factory.new(config=CONFIG, name="compact-kjs-keyless")
    topic = unique("ckjs-keyless")
    settings = compacted(**{"delete.retention.ms": "4321", "segment.ms": "700000", "max.compaction.lag.ms": "9000000"})
    ck_create_topic(b.bootstrap, topic, config=settings)
    out = _kafkajs(b.bootstrap, "keyless", topic)
    assert "INVALID_RECORD" in out["refused"], out
    assert (int(out["keyed"]["partition"]), out["keyed"]["baseOffset"]) == (0, "0"), out
    got = read_all(b.bootstrap, topic)
    assert got == [(0, b"kjs-key", b"kjs-keyed-after-refusal")], got
    configs = _kafkajs(b.bootstrap, "describe", topic)["configs"]
    assert {k: configs.get(k) for k in settings} == settings, configs


def test_describe_configs_shows_compaction_settings(broker_factory):
    # Goal: DescribeConfigs of a compacted topic returns every compaction setting it was
    # created with, by Kafka's names, to librdkafka and kafka-python (kafkajs: above).
    from confluent_kafka.admin import ConfigResource, ResourceType

    b = broker_factory.new(config=CONFIG, name="compact-describe")
    topic = unique("cdesc")
    settings = compacted(**{
        "segment.ms": "600000",
        "delete.retention.ms": "1234",
        "min.compaction.lag.ms": "10",
        "max.compaction.lag.ms": "86400000",
        "min.cleanable.dirty.ratio": "0.25",
    })
    ck_create_topic(b.bootstrap, topic, config=settings)

    res = ConfigResource(ResourceType.TOPIC, topic)
    ck_adm = ck_admin(b.bootstrap)  # must outlive the future
    ck = ck_adm.describe_configs([res], request_timeout=10)[res].result(timeout=15)
    got_ck = {k: ck[k].value for k in settings if k in ck}
    assert got_ck == settings, f"librdkafka describe_configs: {got_ck}"
    assert not ck["cleanup.policy"].is_default

    from kafka.admin import ConfigResource as KCR, ConfigResourceType

    admin = kp_admin(b.bootstrap)
    try:
        resp = admin.describe_configs([KCR(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    entries = _kp_config_entries(resp, topic)
    got_kp = {k: entries.get(k) for k in settings}
    assert got_kp == settings, f"kafka-python describe_configs: {got_kp}"


def _kp_config_entries(resp, topic: str) -> dict[str, str]:
    """{name: value} of `topic` from kafka-python 3's describe_configs answer
    ({"topic": {name: {name: {"value": ...}}}})."""
    return {name: entry["value"] for name, entry in resp["topic"][topic].items()}


# --------------------------------------------------------------------------------------
# 5. A 3-node cluster: the new leader after a SIGKILL serves the same compacted log



def new_leader_of(cluster, topic: str, dead: int) -> int:
    survivors = cluster.bootstrap()
    return wait_until(
        lambda: (lambda p: p.leader if p.leader not in (-1, dead) else None)(partition_state(survivors, topic, 0)),
        LEADER_MOVE_TIMEOUT_S,
        f"a new leader of {topic}[0] after SIGKILL of node {dead}",
    )


def check_serves(bootstrap: str, topic: str, written: list[Written], active: int, want: list[Row], who: str) -> list[Row]:
    """The partition's (new) leader serves what the producers wrote at those offsets, the
    same latest value per key, and (once its own cleaner ran) exactly the compacted log."""
    high = written[-1].offset + 1
    # A new leader's high watermark may trail its log for a moment after the election: it
    # moves up once the other in-sync follower fetches from it (ListOffsets answers
    # OFFSET_NOT_AVAILABLE meanwhile, KIP-207, and clients ask again). Acknowledged records
    # are all in its log; wait for the watermark to say so.
    def caught_up():
        try:
            return ck_watermarks(bootstrap, topic, 0) == (0, high)
        except Exception:  # noqa: BLE001 - librdkafka raises while the leader moves
            return False

    wait_until(caught_up, LEADER_MOVE_TIMEOUT_S, f"{who}: watermarks (0, {high})", interval=0.2)
    rows = read_all(bootstrap, topic)
    everything = {w.row for w in written}
    assert all(r in everything for r in rows), f"{who} serves records nobody wrote at those offsets: {[r for r in rows if r not in everything][:5]}"
    last_read = {key: (off, value) for off, key, value in rows}
    last_written = {w.key: (w.offset, w.value) for w in written}
    assert last_read == last_written, f"{who}: latest value per key differs: read {last_read}, written {last_written}"
    got = wait_until(lambda: (lambda r: r if not superseded_below(r, active) else None)(read_all(bootstrap, topic)),
                     COMPACTION_TIMEOUT_S, f"{who} compacted", interval=0.2)
    assert got == want, f"{who} after its compaction: {diff(got, want)}"
    return got


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_cluster_failover_serves_same_compacted_log(cluster_factory):  # noqa: F811
    # Goal: every replica cleans its own log and none diverges. RF=3: once the leader L
    # compacted the log, SIGKILL it; the new leader N serves the same latest value per key
    # at the same offsets, nothing nobody wrote, and (after its own cleaner ran) exactly
    # the compacted log L served. Then, with L still down, write a second round through
    # N and let N compact it; restart L, which is behind N's compacted point and must
    # catch up by fetching a log with gaps; once L is back in the ISR SIGKILL N: the next
    # leader (L or the third node) serves exactly the compacted log of both rounds.
    from confluent_kafka.admin import NewTopic

    cluster = cluster_factory(3, config=CLUSTER_CONFIG + CONFIG)
    cluster.wait_formed()
    topic = unique("ccluster")
    admin = ck_admin(cluster.bootstrap())
    cfg = compacted(**{"min.insync.replicas": "2"})
    admin.create_topics([NewTopic(topic, 1, 3, config=cfg)], operation_timeout=20, request_timeout=30)[topic].result(timeout=40)
    wait_until(lambda: len(partition_state(cluster.bootstrap(), topic, 0).isrs) == 3, ISR_TIMEOUT_S, f"{topic}[0] with 3 in-sync replicas")

    bootstrap = cluster.bootstrap()
    old_leader = partition_state(bootstrap, topic, 0).leader
    written, active, want = keyed_log(bootstrap, topic, leader=cluster.nodes[old_leader].bootstrap)
    got = wait_compacted(bootstrap, topic, written, active)
    assert got == want, f"leader {old_leader}: {diff(got, want)}"
    # acks=all with the full ISR: every replica holds the whole log before the kill.
    assert sorted(partition_state(bootstrap, topic, 0).isrs) == [1, 2, 3], "ISR shrank before the kill"

    cluster.nodes[old_leader].kill9()
    new_leader = new_leader_of(cluster, topic, old_leader)
    check_serves(cluster.bootstrap(), topic, written, active, want, f"new leader {new_leader} (after SIGKILL of {old_leader})")

    # Round 2 through the new leader while the old one is down.
    round2 = [[(b"k%d" % i, b"k%d-r2-v%d" % (i, r)) for i in range(4)] for r in range(4)]
    written += produce_waves(cluster.bootstrap(), topic, round2)
    written += produce_waves(cluster.bootstrap(), topic, [[(b"k1", b"k1-active2"), (b"zz", b"last2")]], **{"linger.ms": 5000})
    n2 = len(written)
    assert [w.offset for w in written] == list(range(n2)), "round 2 offsets are not dense after round 1"
    active2 = active_segment_start(cluster.nodes[new_leader].bootstrap, topic, n2)
    assert active2 == n2 - 2, f"the last produce was not one batch: active segment at {active2}"
    want2 = model(written, active2)
    got = wait_compacted(cluster.bootstrap(), topic, written, active2)
    assert got == want2, f"leader {new_leader}, round 2: {diff(got, want2)}"

    cluster.nodes[old_leader].start()
    wait_until(lambda: sorted(partition_state(cluster.bootstrap(), topic, 0).isrs) == [1, 2, 3], ISR_TIMEOUT_S,
               f"node {old_leader} caught up from the compacted leader {new_leader} and back in the ISR")
    cluster.nodes[new_leader].kill9()
    third = new_leader_of(cluster, topic, new_leader)
    check_serves(cluster.bootstrap(), topic, written, active2, want2, f"leader {third} (after SIGKILL of {new_leader}; node {old_leader} rejoined)")
    print(f"leaders: {old_leader} -> {new_leader} -> {third}")
