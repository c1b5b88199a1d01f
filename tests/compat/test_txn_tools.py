"""`weir txn list|describe|producers` against librdkafka's transactional producer.

Goal: the operator views of transactions (kafka-transactions.sh's list, describe and
describe-producers) report what a real client is doing: an open transaction is listed as
Ongoing with its producer id, described with its partitions, epoch, timeout and start time,
and its producer shows on each partition with the transaction's first offset; after the
commit the id is CompleteCommit with no partitions and no open transaction anywhere.
Filters (--state, --partition) and errors (unknown id, unknown state) behave.
Method: a confluent-kafka producer with a transactional.id leaves a transaction open on two
partitions (flushed, so the data is in the log); the real `weir` binary is run for each
view and its tables are parsed; then the transaction is committed and the views re-read.
"""

from __future__ import annotations

import subprocess

from weirtest import ck_create_topic, ck_producer, unique, wait_until, weir_bin


def weir_txn(bootstrap: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(weir_bin()), "txn", *args, "--bootstrap-server", bootstrap],
        capture_output=True, text=True, timeout=60,
    )
    if ok:
        assert out.returncode == 0, f"weir txn {' '.join(args)} failed:\n{out.stderr}"
    return out


def table(text: str) -> list[dict[str, str]]:
    """Rows of a `weir txn` table as dicts keyed by the header (cells have no spaces)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "empty output"
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = line.split()
        assert len(cells) == len(header), f"ragged row {line!r} under {header}"
        rows.append(dict(zip(header, cells)))
    return rows


def listed(bootstrap: str, *args: str) -> dict[str, dict[str, str]]:
    return {r["TRANSACTIONAL-ID"]: r for r in table(weir_txn(bootstrap, "list", *args).stdout)}


def test_txn_list_describe_producers_follow_a_confluent_transaction(broker):
    bs = broker.bootstrap
    topic, tid = unique("txn-tools"), unique("tools-tid")
    ck_create_topic(bs, topic, partitions=2)
    p = ck_producer(bs, **{"transactional.id": tid, "transaction.timeout.ms": 60000, "message.timeout.ms": 60000})
    p.init_transactions(15)

    # Initialized, nothing open yet.
    row = listed(bs)[tid]
    assert row["STATE"] == "Empty" and row["COORDINATOR"] == "1", row
    producer_id = row["PRODUCER-ID"]

    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=b"open-%d" % i, partition=0)
    p.produce(topic, value=b"open-p1", partition=1)
    assert p.flush(15) == 0

    rows = listed(bs)
    assert rows[tid]["STATE"] == "Ongoing" and rows[tid]["PRODUCER-ID"] == producer_id, rows[tid]
    assert tid in listed(bs, "--state", "Ongoing")
    assert tid not in listed(bs, "--state", "CompleteCommit")
    assert tid in listed(bs, "--producer-id", producer_id)
    assert tid not in listed(bs, "--producer-id", str(int(producer_id) + 1000))

    (d,) = table(weir_txn(bs, "describe", tid).stdout)
    assert d["STATE"] == "Ongoing" and d["PRODUCER-ID"] == producer_id, d
    assert d["EPOCH"] == "0" and d["TIMEOUT-MS"] == "60000", d
    assert d["PARTITIONS"] == f"{topic}-0,{topic}-1", d
    assert d["START-TIME"].endswith("Z") and int(d["DURATION-MS"]) >= 0, d

    producers = table(weir_txn(bs, "producers", "--topic", topic).stdout)
    by_partition = {r["PARTITION"]: r for r in producers if r["PRODUCER-ID"] == producer_id}
    assert set(by_partition) == {"0", "1"}, producers
    assert by_partition["0"]["LAST-SEQUENCE"] == "2" and by_partition["1"]["LAST-SEQUENCE"] == "0", producers
    assert by_partition["0"]["TXN-START-OFFSET"] == "0" and by_partition["1"]["TXN-START-OFFSET"] == "0"
    only_1 = table(weir_txn(bs, "producers", "--topic", topic, "--partition", "1").stdout)
    assert {r["PARTITION"] for r in only_1} == {"1"}, only_1

    p.commit_transaction(15)

    assert listed(bs)[tid]["STATE"] == "CompleteCommit"
    assert tid in listed(bs, "--state", "CompleteCommit")
    (d,) = table(weir_txn(bs, "describe", tid).stdout)
    assert d["STATE"] == "CompleteCommit" and d["PARTITIONS"] == "-" and d["START-TIME"] == "-", d
    after = table(weir_txn(bs, "producers", "--topic", topic).stdout)
    mine = [r for r in after if r["PRODUCER-ID"] == producer_id]
    assert len(mine) == 2 and all(r["TXN-START-OFFSET"] == "-" for r in mine), after


def test_txn_tool_errors(broker):
    bs = broker.bootstrap
    missing = weir_txn(bs, "describe", unique("no-such-tid"), ok=False)
    assert missing.returncode != 0 and "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr, missing.stderr
    bad_state = weir_txn(bs, "list", "--state", "Sleeping", ok=False)
    assert bad_state.returncode != 0 and "Sleeping" in bad_state.stderr, bad_state.stderr
    no_topic = weir_txn(bs, "producers", "--topic", unique("no-such-topic"), ok=False)
    assert no_topic.returncode != 0, no_topic.stdout


def test_txn_list_shows_abort_by_the_producer(broker):
    # Goal: an aborted transaction is listed CompleteAbort. Method: abort one and list.
    bs = broker.bootstrap
    topic, tid = unique("txn-tools-abort"), unique("tools-abort")
    ck_create_topic(bs, topic)
    p = ck_producer(bs, **{"transactional.id": tid, "transaction.timeout.ms": 60000, "message.timeout.ms": 60000})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, value=b"x", partition=0)
    assert p.flush(15) == 0
    p.abort_transaction(15)
    wait_until(lambda: listed(bs).get(tid, {}).get("STATE") == "CompleteAbort", 15, f"{tid} CompleteAbort")
