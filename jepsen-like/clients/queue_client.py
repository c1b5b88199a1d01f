#!/usr/bin/env python3
"""librdkafka (confluent-kafka) client for the weir-jepsen `queue` workload.

Runs one producer and one consumer (by assign, from the beginning) against the cluster
for --seconds and prints every operation as one JSON line on stdout, in weir-jepsen's
history format (invoke / ok / fail / info; see jepsen-like/src/history.rs). Times are
time.monotonic_ns() (CLOCK_MONOTONIC, the clock the Rust harness stamps with), so the
harness can merge both into one real-time order.

Rules kept here (shared/notes/jepsen-checker.md section 6.8): values are unique per key
(this client counts from --value-base); a value is never resent by the harness; an
unknown outcome is `info` and the process retires (a new process id, a new client).
"""

import argparse
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

OUT_LOCK = threading.Lock()


def emit(process, kind, f, value, error=None):
    event = {"process": process, "type": kind, "f": f, "value": value,
             "time": time.monotonic_ns()}
    if error is not None:
        event["error"] = str(error)
    with OUT_LOCK:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Processes:
    def __init__(self, base, stride):
        self.next = base
        self.stride = stride

    def take(self):
        process = self.next
        self.next += self.stride
        return process


def producer_loop(args, deadline, processes):
    config = {"bootstrap.servers": args.bootstrap, "acks": "all",
              "enable.idempotence": args.idempotent, "linger.ms": 1,
              "message.timeout.ms": 10000, "request.timeout.ms": 5000,
              "socket.timeout.ms": 5000}
    producer = Producer(config)
    process = processes.take()
    value = args.value_base
    keys = [int(k) for k in args.keys.split(",")]
    index = 0
    while time.monotonic() < deadline:
        key = keys[index % len(keys)]
        index += 1
        value += 1
        emit(process, "invoke", "send", [["send", key, value]])
        result = {}

        def delivered(err, msg, result=result):
            result["err"] = err
            result["offset"] = None if msg is None else msg.offset()

        try:
            producer.produce(args.topic, str(value).encode(), partition=key,
                             on_delivery=delivered)
        except BufferError as error:
            emit(process, "fail", "send", [["send", key, value]], error)
            continue
        waited = time.monotonic() + 15
        while "err" not in result and time.monotonic() < waited:
            producer.poll(0.05)
        err = result.get("err")
        if "err" in result and err is None:
            emit(process, "ok", "send", [["send", key, [result["offset"], value]]])
        else:
            emit(process, "info", "send", [["send", key, value]], err or "no delivery report")
            process = processes.take()
            producer = Producer(config)
        time.sleep(0.01)
    producer.flush(5)


def consumer_loop(args, deadline, processes):
    keys = [int(k) for k in args.all_keys.split(",")]
    while time.monotonic() < deadline:
        process = processes.take()
        emit(process, "invoke", "assign", keys)
        try:
            consumer = Consumer({"bootstrap.servers": args.bootstrap,
                                 "group.id": "jepsen-rdkafka-assign",
                                 "enable.auto.commit": False,
                                 "auto.offset.reset": "earliest"})
            consumer.assign([TopicPartition(args.topic, k, -2) for k in keys])
        except Exception as error:  # noqa: BLE001 - any failure ends this process
            emit(process, "fail", "assign", keys, error)
            time.sleep(0.3)
            continue
        emit(process, "ok", "assign", keys)
        while time.monotonic() < deadline:
            emit(process, "invoke", "poll", [["poll"]])
            try:
                messages = consumer.consume(num_messages=200, timeout=0.5)
            except Exception as error:  # noqa: BLE001
                emit(process, "info", "poll", [["poll"]], error)
                break
            reads = {}
            failed = None
            for message in messages:
                if message.error() is not None:
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    failed = message.error()
                    continue
                try:
                    value = int(message.value().decode())
                except (ValueError, AttributeError):
                    value = 18446744073709551615
                reads.setdefault(str(message.partition()), []).append(
                    [message.offset(), value])
            if failed is not None:
                # Records already returned are kept in the completion (Jepsen's partial
                # results); the consumer is recreated so the next op starts afresh.
                emit(process, "info", "poll", [["poll", reads]], failed)
                break
            emit(process, "ok", "poll", [["poll", reads]])
        consumer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--keys", required=True, help="keys this producer writes, a,b,c")
    parser.add_argument("--all-keys", required=True, help="keys the consumer reads")
    parser.add_argument("--process-base", type=int, required=True)
    parser.add_argument("--value-base", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--idempotent", action="store_true")
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    # Two interleaved process-id sequences, so the threads never share an id.
    producers = Processes(args.process_base, 2)
    consumers = Processes(args.process_base + 1, 2)
    threads = [threading.Thread(target=producer_loop, args=(args, deadline, producers)),
               threading.Thread(target=consumer_loop, args=(args, deadline, consumers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
