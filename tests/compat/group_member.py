"""One consumer-group member in its own process, for test_groups.py.

Job: join GROUP on TOPIC with a real client (confluent-kafka / librdkafka or kafka-python)
and report on stdout, one JSON object per line:
  {"event": "assigned", "partitions": [..]}   whenever the assignment changes
  {"event": "record", "partition": p, "offset": o, "value": "..."}  per consumed record
  {"event": "committed"}                      after a synchronous commit (--commit)
With --protocol consumer (librdkafka only) the member uses KIP-848's ConsumerGroupHeartbeat
and the broker's assignor (--assignor uniform|range). Reads "exit" on stdin to close cleanly (LeaveGroup); the tests SIGKILL it to simulate a
crash. Invariant: it never sleeps outside the client's own poll timeout.
"""

from __future__ import annotations

import argparse
import json
import select
import sys


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def stdin_says_exit() -> bool:
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if not ready:
        return False
    line = sys.stdin.readline()
    return line == "" or line.strip() == "exit"


def run_confluent(args) -> None:
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": 500,
        "auto.offset.reset": args.reset,
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    if args.protocol == "consumer":
        # KIP-848: the broker assigns and times sessions; librdkafka refuses the classic
        # knobs with group.protocol=consumer.
        for key in ("partition.assignment.strategy", "session.timeout.ms",
                    "heartbeat.interval.ms"):
            del conf[key]
        conf["group.protocol"] = "consumer"
        if args.assignor in ("uniform", "range"):
            conf["group.remote.assignor"] = args.assignor
    consumer = Consumer(conf)
    consumer.subscribe([args.topic])
    last = None
    try:
        while not stdin_says_exit():
            msg = consumer.poll(0.2)
            current = sorted(tp.partition for tp in consumer.assignment())
            if current != last:
                last = current
                emit({"event": "assigned", "partitions": current})
            if msg is None:
                continue
            if msg.error():
                emit({"event": "error", "error": str(msg.error())})
                continue
            emit({"event": "record", "partition": msg.partition(), "offset": msg.offset(),
                  "value": (msg.value() or b"").decode()})
            if args.commit:
                consumer.commit(message=msg, asynchronous=False)
                emit({"event": "committed", "partition": msg.partition(), "offset": msg.offset() + 1})
    finally:
        consumer.close()
        emit({"event": "closed"})


def run_kafka_python(args) -> None:
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    assignor = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "sticky": StickyPartitionAssignor,
    }[args.assignor]
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        partition_assignment_strategy=[assignor],
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=500,
        auto_offset_reset=args.reset,
        enable_auto_commit=False,
        metadata_max_age_ms=2000,
        group_instance_id=args.instance_id or None,
    )
    last = None
    try:
        while not stdin_says_exit():
            batches = consumer.poll(timeout_ms=200)
            current = sorted(tp.partition for tp in consumer.assignment())
            if current != last:
                last = current
                emit({"event": "assigned", "partitions": current})
            for _tp, records in batches.items():
                for r in records:
                    emit({"event": "record", "partition": r.partition, "offset": r.offset,
                          "value": (r.value or b"").decode()})
            if args.commit and batches:
                consumer.commit()
                emit({"event": "committed"})
    finally:
        consumer.close()
        emit({"event": "closed"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--client", choices=["ck", "kp"], default="ck")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--assignor", default="range")
    p.add_argument("--session-ms", type=int, default=6000)
    p.add_argument("--instance-id", default="")
    p.add_argument("--reset", default="earliest")
    p.add_argument("--commit", action="store_true")
    p.add_argument("--protocol", choices=["classic", "consumer"], default="classic",
                   help="group.protocol (librdkafka only); consumer = KIP-848")
    args = p.parse_args()
    if args.client == "ck":
        run_confluent(args)
    else:
        run_kafka_python(args)


if __name__ == "__main__":
    main()
