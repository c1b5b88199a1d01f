"""DescribeLogDirs (key 35) through an unmodified client: kafka-python's
KafkaAdminClient.describe_log_dirs() (the kafka-log-dirs.sh view; confluent-kafka has no
such call), and `weir topic describe`'s Size and CleanupPolicy fields, which come from it
and from DescribeConfigs (issue 14)."""

from __future__ import annotations

import subprocess

from weirtest import NODE_ID, ck_create_topic, ck_produce, ck_producer, kp_admin, unique, weir_bin


def weir_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(weir_bin()), *args], capture_output=True, text=True, timeout=60)


def fields(line: str) -> dict[str, str]:
    """The `Key: value` fields of one tab-separated line of weir's describe output."""
    out = {}
    for part in line.strip().split("\t"):
        key, sep, value = part.partition(": ")
        if sep:
            out[key] = value
    return out


def sizes_from(result: list[dict], topic: str) -> dict[int, int]:
    """partition -> partition_size of `topic` in kafka-python's describe_log_dirs() result."""
    out = {}
    for broker in result:
        for log_dir in broker["log_dirs"]:
            for t in log_dir["topics"]:
                if t["name"] == topic:
                    for p in t["partitions"]:
                        out[p["partition_index"]] = p["partition_size"]
    return out


def test_kafka_python_describe_log_dirs_reports_sizes(broker):
    # Goal: kafka-python's describe_log_dirs() (it negotiates v4, the highest both speak)
    # decodes Weir's answer: one broker, one log directory named by the data directory's
    # absolute path, every partition of a new topic, sizes 0 before any write and growing
    # with the bytes written, no offset lag on the leader; the topic filter narrows the
    # answer to that topic. Method: create a 2-partition topic with librdkafka, write to
    # partition 0 only, ask for all topics and then for the one topic.
    topic = unique("logdirs")
    ck_create_topic(broker.bootstrap, topic, partitions=2)
    admin = kp_admin(broker.bootstrap)
    try:
        before = admin.describe_log_dirs()
        assert [b["broker"] for b in before] == [NODE_ID], before
        dirs = before[0]["log_dirs"]
        assert len(dirs) == 1, dirs
        assert dirs[0]["error_code"] == 0, dirs
        assert dirs[0]["log_dir"] == str(broker.data_dir.absolute()), dirs
        assert sizes_from(before, topic) == {0: 0, 1: 0}, before

        producer = ck_producer(broker.bootstrap)
        ck_produce(producer, topic, [{"value": b"x" * 200, "partition": 0} for _ in range(20)])
        after = admin.describe_log_dirs([topic])
        sizes = sizes_from(after, topic)
        assert sizes[1] == 0, after
        assert sizes[0] >= 20 * 200, after
        named = {t["name"] for b in after for d in b["log_dirs"] for t in d["topics"]}
        assert named == {topic}, after
        for t in after[0]["log_dirs"][0]["topics"]:
            for p in t["partitions"]:
                assert p["offset_lag"] == 0 and p["is_future_key"] is False, p
    finally:
        admin.close()


def test_topic_describe_shows_cleanup_policy_and_sizes(broker):
    # Goal: `weir topic describe` appends CleanupPolicy and DirtyRatio to the topic line and Size to each
    # partition line, and the sizes agree with what kafka-python reads from DescribeLogDirs.
    # Method: a compacted topic with keyed records on partition 0, then both views.
    topic = unique("logdirs-cli")
    ck_create_topic(broker.bootstrap, topic, partitions=2, config={"cleanup.policy": "compact"})
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"key": b"k%d" % i, "value": b"v" * 100, "partition": 0} for i in range(10)])
    out = weir_cli("topic", "describe", topic, "--bootstrap", broker.bootstrap)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3, out.stdout
    assert fields(lines[0])["CleanupPolicy"] == "compact", out.stdout
    # The dirty ratio (Weir's read-only key, asked for by name): nothing cleaned yet.
    assert 0.0 <= float(fields(lines[0])["DirtyRatio"]) <= 1.0, out.stdout
    shown = {int(fields(line)["Partition"]): int(fields(line)["Size"]) for line in lines[1:]}
    admin = kp_admin(broker.bootstrap)
    try:
        assert shown == sizes_from(admin.describe_log_dirs([topic]), topic), out.stdout
    finally:
        admin.close()
    assert shown[0] > 0 and shown[1] == 0, out.stdout
