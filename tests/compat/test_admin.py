"""Admin operations through unmodified clients: topics (create/delete/list/describe with N
partitions), describe configs, create partitions, describe cluster, list offsets.
kafkajs admin flows live in test_kafkajs.py, kcat -L in test_kcat.py."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import (
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from weirtest import (
    NODE_ID,
    ck_admin,
    ck_create_topic,
    ck_partitions,
    ck_produce,
    ck_producer,
    ck_read,
    kp_admin,
    unique,
    wait_until,
)


def test_confluent_topic_lifecycle(broker):
    # Goal: librdkafka's AdminClient can create topics with 1, 3 and 8 partitions, see them in
    # list_topics and describe_topics with node 1 leading every partition, delete one, and
    # create it again afterwards. Method: real AdminClient calls, asserting partition ids,
    # leaders and replicas; deletion is observed with a bounded poll of the metadata.
    admin = ck_admin(broker.bootstrap)
    names = {unique("ck-life-1"): 1, unique("ck-life-3"): 3, unique("ck-life-8"): 8}
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in names.items()], operation_timeout=10
    )
    for n, f in futures.items():
        assert f.result(timeout=15) is None, n
    md = wait_until(
        lambda: (m := admin.list_topics(timeout=10)) and all(n in m.topics for n in names) and m,
        15,
        "created topics listed",
    )
    for n, p in names.items():
        t = md.topics[n]
        assert t.error is None, (n, t.error)
        assert sorted(t.partitions) == list(range(p)), (n, sorted(t.partitions))
        for part in t.partitions.values():
            assert part.leader == NODE_ID and part.replicas == [NODE_ID] and part.isrs == [NODE_ID], part

    # describe_topics (librdkafka's DescribeTopics admin op)
    from confluent_kafka import TopicCollection

    described = admin.describe_topics(TopicCollection(list(names)), request_timeout=10)
    for n, f in described.items():
        d = f.result(timeout=15)
        assert d.name == n
        assert len(d.partitions) == names[n]
        assert d.topic_id is not None and str(d.topic_id) != "AAAAAAAAAAAAAAAAAAAAAA", f"{n} has no topic id"
        assert all(p.leader.id == NODE_ID for p in d.partitions)

    victim = next(iter(names))
    admin.delete_topics([victim], operation_timeout=10)[victim].result(timeout=15)
    wait_until(lambda: victim not in admin.list_topics(timeout=10).topics, 15, f"{victim} gone from metadata")
    assert all(n in admin.list_topics(timeout=10).topics for n in list(names)[1:]), "deleting one topic removed others"
    # The name is free again, and the new topic starts empty.
    ck_create_topic(broker.bootstrap, victim, partitions=2)
    assert sorted(ck_partitions(broker.bootstrap, victim)) == [0, 1]


def test_confluent_create_existing_and_default_partitions(broker):
    # Goal: creating an existing topic fails with TOPIC_ALREADY_EXISTS (36), and
    # num_partitions=-1 means "broker default" (num.partitions = 1). Method: AdminClient
    # create_topics twice, then once with -1, checking the error code and metadata.
    admin = ck_admin(broker.bootstrap)
    name = unique("ck-dup")
    ck_create_topic(broker.bootstrap, name, partitions=2)
    f = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name]
    with pytest.raises(Exception) as exc:
        f.result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, exc.value
    assert sorted(ck_partitions(broker.bootstrap, name)) == [0, 1], "failed create changed the topic"

    dflt = unique("ck-default")
    admin.create_topics([NewTopic(dflt, num_partitions=-1, replication_factor=-1)])[dflt].result(timeout=15)
    wait_until(lambda: sorted(ck_partitions(broker.bootstrap, dflt)) == [0], 15, "default-partition topic with 1 partition")


def test_kafka_python_topic_lifecycle(broker):
    # Goal: kafka-python's KafkaAdminClient can create (N partitions), list, describe and delete
    # topics. Method: admin calls with raise_errors=False so the exact error codes are asserted.
    admin = kp_admin(broker.bootstrap)
    try:
        t3, t5 = unique("kp-life-3"), unique("kp-life-5")
        res = admin.create_topics(
            {t3: {"num_partitions": 3, "replication_factor": 1}, t5: {"num_partitions": 5, "replication_factor": 1}},
            raise_errors=False,
        )
        codes = {t["name"]: t["error_code"] for t in res["topics"]}
        assert codes == {t3: 0, t5: 0}, res
        wait_until(lambda: {t3, t5} <= set(admin.list_topics()), 15, "kafka-python list_topics shows both")
        desc = {d["topic"] if "topic" in d else d["name"]: d for d in admin.describe_topics([t3, t5])}
        for name, n in ((t3, 3), (t5, 5)):
            d = desc[name]
            assert d["error_code"] == 0, d
            parts = sorted(d["partitions"], key=lambda p: p["partition_index"])
            assert [p["partition_index"] for p in parts] == list(range(n))
            assert all(p["leader_id"] == NODE_ID for p in parts), parts
        res = admin.delete_topics([t3], raise_errors=False)
        assert [r["error_code"] for r in res["topics"]] == [0], res
        wait_until(lambda: t3 not in admin.list_topics(), 15, "kafka-python sees the topic deleted")
        assert t5 in admin.list_topics()
        # Deleting a topic that does not exist names it unknown.
        res = admin.delete_topics([unique("kp-never")], raise_errors=False)
        assert [r["error_code"] for r in res["topics"]] == [3], res
    finally:
        admin.close()


def test_confluent_describe_configs(broker):
    # Goal: DescribeConfigs on a topic returns retention.ms & co.; an override given at create
    # time is reported with its value and as a dynamic topic config, defaults as defaults.
    # Method: create with retention.ms=123456, describe via AdminClient.describe_configs.
    name = unique("ck-cfg")
    ck_create_topic(broker.bootstrap, name, partitions=1, config={"retention.ms": "123456"})
    admin = ck_admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, name)
    configs = admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)
    for key in ("retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "cleanup.policy"):
        assert key in configs, f"{key} missing from DescribeConfigs: {sorted(configs)}"
    rms = configs["retention.ms"]
    assert rms.value == "123456", rms
    assert not rms.is_default, rms
    source = getattr(rms.source, "value", rms.source)
    assert source == 1, f"retention.ms source {rms.source}, want DYNAMIC_TOPIC_CONFIG (1)"
    rb = configs["retention.bytes"]
    assert rb.value == "-1" and rb.is_default, rb
    assert configs["cleanup.policy"].value == "delete"
    assert int(configs["max.message.bytes"].value) == 1048588

    # An unknown topic is an error, not an empty config list.
    missing = ConfigResource(ResourceType.TOPIC, unique("ck-cfg-missing"))
    with pytest.raises(Exception) as exc:
        admin.describe_configs([missing], request_timeout=10)[missing].result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, exc.value


def test_kafka_python_describe_configs(broker):
    # Goal: kafka-python's describe_configs sees the same topic override. Method: create with
    # retention.ms=654321 via kafka-python, describe it.
    from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType

    name = unique("kp-cfg")
    admin = kp_admin(broker.bootstrap)
    try:
        res = admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "654321"}}},
            raise_errors=False,
        )
        assert [t["error_code"] for t in res["topics"]] == [0], res
        out = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
        text = repr(out)
        assert "retention.ms" in text and "654321" in text, text[:3000]
    finally:
        admin.close()


def test_create_partitions_grow(broker):
    # Goal: CreatePartitions grows a topic 2 -> 5 (confluent) and 5 -> 7 (kafka-python); data
    # can be produced to and read from a new partition; shrinking fails with INVALID_PARTITIONS.
    # Method: admin calls, metadata checks, a produce to partition 6 read back by assign().
    name = unique("grow")
    ck_create_topic(broker.bootstrap, name, partitions=2)
    admin = ck_admin(broker.bootstrap)
    admin.create_partitions([NewPartitions(name, 5)], operation_timeout=10)[name].result(timeout=15)
    wait_until(lambda: sorted(ck_partitions(broker.bootstrap, name)) == list(range(5)), 15, "5 partitions")

    f = admin.create_partitions([NewPartitions(name, 3)])[name]
    with pytest.raises(Exception) as exc:
        f.result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS, exc.value

    kp = kp_admin(broker.bootstrap)
    try:
        res = kp.create_partitions({name: 7}, raise_errors=False)
        assert [(r.name, r.error_code) for r in res.results] == [(name, 0)], res
    finally:
        kp.close()
    wait_until(lambda: sorted(ck_partitions(broker.bootstrap, name)) == list(range(7)), 15, "7 partitions")

    d = ck_produce(ck_producer(broker.bootstrap, acks="all"), name, [{"value": b"in-new-partition", "partition": 6}])
    assert d[0].error is None and (d[0].partition, d[0].offset) == (6, 0), d
    recs = ck_read(broker.bootstrap, name, {6: 0})
    assert [(r.offset, r.value) for r in recs] == [(0, b"in-new-partition")]


def test_describe_cluster(broker):
    # Goal: DescribeCluster (API 60) via kafka-python's describe_cluster and confluent's
    # describe_cluster returns a cluster id, node 1 at the listening address, and node 1 as
    # controller. Method: call both, compare with the broker's address.
    kp = kp_admin(broker.bootstrap)
    try:
        info = kp.describe_cluster()
    finally:
        kp.close()
    assert info.get("cluster_id"), info
    assert info.get("controller_id") == NODE_ID, info
    brokers = info["brokers"]
    assert [(b["broker_id"], b["host"], b["port"]) for b in brokers] == [(NODE_ID, "127.0.0.1", broker.port)], brokers

    ck_adm = ck_admin(broker.bootstrap)  # keep the handle alive until the future resolves
    ck = ck_adm.describe_cluster(request_timeout=10).result(timeout=15)
    assert ck.cluster_id == info["cluster_id"], (ck.cluster_id, info["cluster_id"])
    assert ck.controller is not None and ck.controller.id == NODE_ID
    assert [(n.id, n.host, n.port) for n in ck.nodes] == [(NODE_ID, "127.0.0.1", broker.port)]
    # Metadata agrees on the cluster id.
    md = ck_admin(broker.bootstrap).list_topics(timeout=10)
    assert md.cluster_id == info["cluster_id"] and md.controller_id == NODE_ID


def test_list_offsets_admin(broker):
    # Goal: ListOffsets through the admin clients: earliest, latest, max-timestamp and a
    # timestamp lookup, on a partition holding 10 records with known timestamps.
    # Method: produce 10 records with ts = base + i*1000 (one with the maximum timestamp in the
    # middle), then confluent AdminClient.list_offsets and kafka-python list_partition_offsets.
    name = unique("listoff")
    ck_create_topic(broker.bootstrap, name, partitions=1)
    base = int(time.time() * 1000) - 3_600_000
    ts = [base + i * 1000 for i in range(10)]
    ts[4] = base + 100_000  # the max timestamp lives at offset 4
    ck_produce(ck_producer(broker.bootstrap, acks="all"), name, [{"value": f"v{i}".encode(), "partition": 0, "timestamp": t} for i, t in enumerate(ts)])

    tp = TopicPartition(name, 0)
    admin = ck_admin(broker.bootstrap)

    def lo(spec):
        return admin.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=15)

    assert lo(OffsetSpec.earliest()).offset == 0
    assert lo(OffsetSpec.latest()).offset == 10
    mx = lo(OffsetSpec.max_timestamp())
    assert (mx.offset, mx.timestamp) == (4, base + 100_000), (mx.offset, mx.timestamp)
    at = lo(OffsetSpec.for_timestamp(base + 2000))
    assert (at.offset, at.timestamp) == (2, base + 2000), (at.offset, at.timestamp)
    # Between two timestamps: the first record at or after it (offset 3, ts base+3000).
    between = lo(OffsetSpec.for_timestamp(base + 2500))
    assert between.offset == 3, between.offset
    # After everything: -1 (no such record).
    assert lo(OffsetSpec.for_timestamp(base + 10_000_000)).offset == -1

    from kafka import TopicPartition as KpTP
    from kafka.admin import OffsetSpec as KpOffsetSpec

    kp = kp_admin(broker.bootstrap)
    try:
        ktp = KpTP(name, 0)
        got = kp.list_partition_offsets({ktp: KpOffsetSpec.EARLIEST})
        assert got[ktp].offset == 0, got
        got = kp.list_partition_offsets({ktp: KpOffsetSpec.LATEST})
        assert got[ktp].offset == 10, got
        got = kp.list_partition_offsets({ktp: base + 2000})
        assert got[ktp].offset == 2, got
    finally:
        kp.close()
