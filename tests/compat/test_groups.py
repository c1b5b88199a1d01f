"""Consumer groups (classic protocol) with real clients, each member in its own process
(group_member.py): librdkafka with range and cooperative-sticky, kafka-python, kafkajs.

Goal: the broker relays protocols and assignments so client-side assignors split partitions
without overlap; a joining member gets a share; a SIGKILLed member's partitions move within
the session timeout; extra members stay idle; committed offsets survive a broker restart.
Method: watch each member's reported assignment with bounded waits (no bare sleeps)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading

import pytest

from weirtest import HERE, ck_create_topic, ck_produce, ck_producer, unique, wait_until

GROUP_CONFIG = "group.initial.rebalance.delay.ms = 100\n"
SESSION_MS = 6000
# Session timeout + a rebalance + client backoffs, with headroom for a loaded machine.
MOVE_TIMEOUT_S = 45


class Member:
    """A group_member.py process and the latest assignment it reported."""

    def __init__(self, bootstrap: str, topic: str, group: str, client: str = "ck",
                 assignor: str = "range", extra: tuple[str, ...] = ()):
        if client == "js":
            # kafkajs has its own member script (same line protocol); it offers its
            # default RoundRobinAssigner, so `assignor` does not apply.
            node = shutil.which("node")
            if node is None or not (HERE / "kafkajs" / "node_modules" / "kafkajs").is_dir():
                pytest.fail("node/kafkajs not installed (run.sh installs them)")
            command = [node, str(HERE / "kafkajs" / "group_member.mjs"), bootstrap, topic,
                       group, str(SESSION_MS)]
        else:
            command = [sys.executable, str(HERE / "group_member.py"), "--client", client,
                       "--bootstrap", bootstrap, "--topic", topic, "--group", group,
                       "--assignor", assignor, "--session-ms", str(SESSION_MS), *extra]
        self.proc = subprocess.Popen(
            command, cwd=HERE / "kafkajs" if client == "js" else None,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.assignment: list[int] | None = None
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.records: list[dict] = []
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "assigned":
                self.assignment = event["partitions"]
            if event.get("event") == "record":
                self.records.append(event)
            self.events.put(event)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("exit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def members():
    started: list[Member] = []
    yield started
    for m in started:
        m.kill9() if m.proc.poll() is None else None


def split(members: list[Member], partitions: int, busy: int | None = None):
    """Truthy when the members' assignments cover every partition exactly once (and, with
    `busy`, exactly that many members hold partitions)."""
    seen: list[int] = []
    holders = 0
    for m in members:
        if m.assignment is None:
            return False
        seen += m.assignment
        holders += bool(m.assignment)
    if sorted(seen) != list(range(partitions)):
        return False
    if busy is not None and holders != busy:
        return False
    return [m.assignment for m in members]


def scenario(broker, members, client: str, assignor: str) -> None:
    topic, group = unique("grp"), unique("g")
    ck_create_topic(broker.bootstrap, topic, 6)
    a = Member(broker.bootstrap, topic, group, client, assignor)
    b = Member(broker.bootstrap, topic, group, client, assignor)
    members += [a, b]
    wait_until(lambda: split([a, b], 6, busy=2), MOVE_TIMEOUT_S, "two members split 6 partitions")
    c = Member(broker.bootstrap, topic, group, client, assignor)
    members.append(c)
    wait_until(lambda: split([a, b, c], 6, busy=3), MOVE_TIMEOUT_S, "a third member gets a share")
    b.kill9()  # no LeaveGroup: only the session timeout tells the coordinator
    wait_until(lambda: split([a, c], 6, busy=2), MOVE_TIMEOUT_S, "the dead member's partitions move")


def test_groups_librdkafka_range(broker_factory, members):
    scenario(broker_factory.new(config=GROUP_CONFIG), members, "ck", "range")


def test_groups_librdkafka_cooperative_sticky(broker_factory, members):
    scenario(broker_factory.new(config=GROUP_CONFIG), members, "ck", "cooperative-sticky")


def test_groups_kafkajs_join_and_kill(broker_factory, members):
    # Goal: kafkajs members go through the whole scenario too (split, a third joins, one
    # is SIGKILLed and its partitions move). Method: scenario() with kafkajs members.
    scenario(broker_factory.new(config=GROUP_CONFIG), members, "js", "roundrobin")


def test_groups_kafka_python(broker_factory, members):
    scenario(broker_factory.new(config=GROUP_CONFIG), members, "kp", "roundrobin")


def test_groups_heterogeneous_assignors(broker_factory, members):
    # librdkafka prefers roundrobin then range; kafka-python offers only range: the broker
    # must pick the protocol both support.
    broker = broker_factory.new(config=GROUP_CONFIG)
    topic, group = unique("grp"), unique("g")
    ck_create_topic(broker.bootstrap, topic, 6)
    a = Member(broker.bootstrap, topic, group, "ck", "roundrobin,range")
    b = Member(broker.bootstrap, topic, group, "kp", "range")
    members += [a, b]
    wait_until(lambda: split([a, b], 6, busy=2), MOVE_TIMEOUT_S, "mixed clients split")


def test_groups_more_members_than_partitions(broker_factory, members):
    broker = broker_factory.new(config=GROUP_CONFIG)
    topic, group = unique("grp"), unique("g")
    ck_create_topic(broker.bootstrap, topic, 2)
    trio = [Member(broker.bootstrap, topic, group) for _ in range(3)]
    members += trio
    wait_until(lambda: split(trio, 2, busy=2), MOVE_TIMEOUT_S, "two busy, one idle member")


def test_groups_static_member_rejoins_without_rebalance(broker_factory, members):
    broker = broker_factory.new(config=GROUP_CONFIG)
    topic, group = unique("grp"), unique("g")
    ck_create_topic(broker.bootstrap, topic, 4)
    a = Member(broker.bootstrap, topic, group, extra=("--instance-id", "a"))
    b = Member(broker.bootstrap, topic, group, extra=("--instance-id", "b"))
    members += [a, b]
    before = wait_until(lambda: split([a, b], 4, busy=2), MOVE_TIMEOUT_S, "static members split")
    b.kill9()
    b2 = Member(broker.bootstrap, topic, group, extra=("--instance-id", "b"))
    members.append(b2)
    # The restarted instance takes its old partitions back; the other keeps its own.
    wait_until(lambda: split([a, b2], 4, busy=2), MOVE_TIMEOUT_S, "static member back")
    assert a.assignment == before[0]


def test_groups_committed_offsets_resume_after_restart(broker_factory, members):
    broker = broker_factory.new(config=GROUP_CONFIG)
    topic, group = unique("grp"), unique("g")
    ck_create_topic(broker.bootstrap, topic, 1)
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"value": f"a{i}".encode(), "partition": 0} for i in range(5)])
    first = Member(broker.bootstrap, topic, group, extra=("--commit",))
    members.append(first)
    wait_until(lambda: len(first.records) >= 5, MOVE_TIMEOUT_S, "first 5 records")
    wait_until(lambda: any(e.get("offset") == 5 for e in _committed(first)), 30, "commit of 5")
    first.close()
    broker.restart()
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"value": f"b{i}".encode(), "partition": 0} for i in range(3)])
    second = Member(broker.bootstrap, topic, group, extra=("--commit",))
    members.append(second)
    wait_until(lambda: len(second.records) >= 3, MOVE_TIMEOUT_S, "the 3 new records")
    assert [r["offset"] for r in second.records[:3]] == [5, 6, 7]
    assert [r["value"] for r in second.records[:3]] == ["b0", "b1", "b2"]


def _committed(member: Member) -> list[dict]:
    return [json.loads(l) for l in member.output if '"committed"' in l]


def test_groups_kafkajs(broker_factory):
    node = shutil.which("node")
    if node is None or not (HERE / "kafkajs" / "node_modules" / "kafkajs").is_dir():
        pytest.fail("node/kafkajs not installed (run.sh installs them)")
    broker = broker_factory.new(config=GROUP_CONFIG)
    topic = unique("grp")
    ck_create_topic(broker.bootstrap, topic, 6)
    res = subprocess.run([node, str(HERE / "kafkajs" / "groups.mjs"), broker.bootstrap, topic,
                          unique("g")], cwd=HERE / "kafkajs", capture_output=True, timeout=120)
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, f"kafkajs groups failed:\n{res.stderr.decode()[-4000:]}\n{out[-2000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    a, b = result["assignments"]
    assert a and b and sorted(a + b) == list(range(6)), result
