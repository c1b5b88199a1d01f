"""KIP-848 consumer groups (`group.protocol=consumer`) with librdkafka, each member in its own
process (group_member.py --protocol consumer): the broker assigns (uniform, range), members
reconcile with epochs via ConsumerGroupHeartbeat.

Goal: the same guarantees as the classic suite (two members split six partitions with no
overlap, a third gets a share, a SIGKILLed member's partitions move within the session
timeout, extra members stay idle, committed offsets resume after a broker restart), plus
mixing: a classic member and a consumer-protocol member in one group are refused as Kafka
4.0 refuses them with group.consumer.migration.policy=disabled (the first protocol to hold
members keeps the group; the other side gets INCONSISTENT_GROUP_PROTOCOL on JoinGroup or
GROUP_ID_NOT_FOUND on ConsumerGroupHeartbeat and never gets partitions).
Method: watch each member's reported assignment with bounded waits (no bare sleeps); the
broker runs with short KIP-848 heartbeat/session settings so moves are quick."""

from __future__ import annotations

import json
import time

from test_groups import Member, members, split  # noqa: F401  (fixture re-export)
from weirtest import ck_create_topic, ck_produce, ck_producer, unique, wait_until

SESSION_848_MS = 6000
CONFIG_848 = (
    "group.initial.rebalance.delay.ms = 100\n"
    "group.consumer.heartbeat.interval.ms = 500\n"
    f"group.consumer.session.timeout.ms = {SESSION_848_MS}\n"
)
MOVE_TIMEOUT_S = 45


def consumer_member(broker, topic, group, assignor="uniform", extra=()):
    return Member(broker.bootstrap, topic, group, "ck", assignor,
                  extra=("--protocol", "consumer", *extra))


def scenario_848(broker, members, assignor: str) -> None:
    topic, group = unique("k848"), unique("g848")
    ck_create_topic(broker.bootstrap, topic, 6)
    a = consumer_member(broker, topic, group, assignor)
    b = consumer_member(broker, topic, group, assignor)
    members += [a, b]
    wait_until(lambda: split([a, b], 6, busy=2), MOVE_TIMEOUT_S, "two members split 6 partitions")
    c = consumer_member(broker, topic, group, assignor)
    members.append(c)
    wait_until(lambda: split([a, b, c], 6, busy=3), MOVE_TIMEOUT_S, "a third member gets a share")
    started = time.monotonic()
    b.kill9()  # no leave heartbeat: only the session timeout tells the coordinator
    wait_until(lambda: split([a, c], 6, busy=2), MOVE_TIMEOUT_S, "the dead member's partitions move")
    # Within the session timeout plus a few heartbeats of reconciliation.
    assert time.monotonic() - started < SESSION_848_MS / 1000 + 15


def test_848_librdkafka_uniform(broker_factory, members):
    scenario_848(broker_factory.new(config=CONFIG_848), members, "uniform")


def test_848_librdkafka_range(broker_factory, members):
    scenario_848(broker_factory.new(config=CONFIG_848), members, "range")


def test_848_more_members_than_partitions(broker_factory, members):
    broker = broker_factory.new(config=CONFIG_848)
    topic, group = unique("k848"), unique("g848")
    ck_create_topic(broker.bootstrap, topic, 2)
    trio = [consumer_member(broker, topic, group) for _ in range(3)]
    members += trio
    wait_until(lambda: split(trio, 2, busy=2), MOVE_TIMEOUT_S, "two busy, one idle member")


def test_848_committed_offsets_resume_after_restart(broker_factory, members):
    broker = broker_factory.new(config=CONFIG_848)
    topic, group = unique("k848"), unique("g848")
    ck_create_topic(broker.bootstrap, topic, 1)
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"value": f"a{i}".encode(), "partition": 0} for i in range(5)])
    first = consumer_member(broker, topic, group, extra=("--commit",))
    members.append(first)
    wait_until(lambda: len(first.records) >= 5, MOVE_TIMEOUT_S, "first 5 records")
    wait_until(lambda: any(e.get("offset") == 5 for e in _committed(first)), 30, "commit of 5")
    first.close()
    broker.restart()
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"value": f"b{i}".encode(), "partition": 0} for i in range(3)])
    second = consumer_member(broker, topic, group, extra=("--commit",))
    members.append(second)
    wait_until(lambda: len(second.records) >= 3, MOVE_TIMEOUT_S, "the 3 new records")
    assert [r["offset"] for r in second.records[:3]] == [5, 6, 7]
    assert [r["value"] for r in second.records[:3]] == ["b0", "b1", "b2"]


def _committed(member: Member) -> list[dict]:
    return [json.loads(l) for l in member.output if '"committed"' in l]


def _held(member: Member) -> bool:
    return bool(member.assignment)


def test_848_mixing_consumer_into_classic_group_is_refused(broker_factory, members):
    broker = broker_factory.new(config=CONFIG_848)
    topic, group = unique("k848"), unique("g848")
    ck_create_topic(broker.bootstrap, topic, 4)
    classic = Member(broker.bootstrap, topic, group)
    members.append(classic)
    wait_until(lambda: split([classic], 4, busy=1), MOVE_TIMEOUT_S, "classic member owns all")
    newcomer = consumer_member(broker, topic, group)
    members.append(newcomer)
    # The consumer-protocol member is refused (GROUP_ID_NOT_FOUND); the classic member keeps
    # every partition, so no partition is ever owned twice.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert not _held(newcomer), newcomer.output[-5:]
        assert classic.assignment == [0, 1, 2, 3]
        time.sleep(0.2)
    # librdkafka treats GROUP_ID_NOT_FOUND on ConsumerGroupHeartbeat as fatal.
    wait_until(lambda: any("group id does not exist" in l for l in newcomer.output), 20,
               "the consumer-protocol member saw GROUP_ID_NOT_FOUND")


def test_848_mixing_classic_into_consumer_group_is_refused(broker_factory, members):
    broker = broker_factory.new(config=CONFIG_848)
    topic, group = unique("k848"), unique("g848")
    ck_create_topic(broker.bootstrap, topic, 4)
    modern = consumer_member(broker, topic, group)
    members.append(modern)
    wait_until(lambda: split([modern], 4, busy=1), MOVE_TIMEOUT_S, "consumer member owns all")
    classic = Member(broker.bootstrap, topic, group)
    members.append(classic)
    # JoinGroup answers INCONSISTENT_GROUP_PROTOCOL: the classic member never gets partitions.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert not _held(classic), classic.output[-5:]
        assert modern.assignment == [0, 1, 2, 3]
        time.sleep(0.2)
    wait_until(lambda: any("INCONSISTENT_GROUP_PROTOCOL" in l for l in classic.output), 20,
               "the classic member saw INCONSISTENT_GROUP_PROTOCOL")
