"""Tiered storage on S3 (issue 14 item 3): a real S3-compatible server (moto), reached
through a proxy that injects `503 SlowDown` answers and latency.

Goal: with a flaky, slow store, uploads still happen (the broker retries with backoff),
every record is read from offset 0 by librdkafka through the store; with the store down,
produce is never blocked and no local data is deleted (nothing the store does not hold
goes), uploads resume once it is back, and nothing acknowledged is lost.

Method: one broker with `weir.remote.storage.url = "s3://BUCKET/weir"` and the AWS_*
environment pointing at the proxy; the topic's segments are one batch each and
`local.retention.bytes = 1`, as in test_tiered.py; objects are counted with boto3.
"""

from __future__ import annotations

import time

import boto3
from botocore.config import Config

from s3 import S3Server
from test_tiered import TIMING, read_all_ck, sizes, tiered, wait_tiered, write
from confluent_kafka import TopicPartition

from weirtest import ck_consumer, ck_create_topic, ck_read, unique, wait_until


def read_from(bootstrap: str, topic: str, offset: int) -> list[tuple[int, bytes]]:
    c = ck_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, offset)])
        recs = ck_read(bootstrap, topic, {0: offset}, consumer=c, timeout=60)
    finally:
        c.close()
    return [(r.offset, r.value) for r in recs]


def s3_objects(endpoint: str, bucket: str) -> list[str]:
    env = S3Server.env(endpoint)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
        config=Config(s3={"addressing_style": "path"}),
    )
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="weir/"):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return [k for k in keys if k.endswith(".seg")]


class S3Store:
    """What wait_tiered needs to see objects: a `.rglob`-like view of the bucket."""

    def __init__(self, endpoint: str, bucket: str):
        self.endpoint, self.bucket = endpoint, bucket

    def rglob(self, _pattern: str):
        return [_Key(k) for k in s3_objects(self.endpoint, self.bucket)]


class _Key:
    def __init__(self, key: str):
        self.key = key

    def is_file(self) -> bool:
        return True

    def __lt__(self, other: "_Key") -> bool:
        return self.key < other.key


def test_s3_with_faults_and_an_outage(broker_factory, s3_server, s3_bucket, s3_proxy):
    # Goal: see the module doc.
    s3_proxy.set(error_fraction=0.2, latency_ms=20)
    config = f'"weir.remote.storage.url" = "s3://{s3_bucket}/weir"\n' + TIMING
    b = broker_factory.new(config=config, name="tiered-s3", env=S3Server.env(s3_proxy.endpoint))
    topic = unique("tiered-s3")
    ck_create_topic(b.bootstrap, topic, config=tiered())
    store = S3Store(s3_server.endpoint, s3_bucket)

    written = write(b.bootstrap, topic, 200, "flaky")
    wait_tiered(b.bootstrap, topic, store, written)
    assert read_all_ck(b.bootstrap, topic) == written, "read from offset 0 through S3"

    # The store goes down: every request fails. Produce is not held up, and the local log
    # keeps everything not uploaded.
    s3_proxy.set(error_fraction=1.0, latency_ms=0)
    before = s3_objects(s3_server.endpoint, s3_bucket)
    started = time.monotonic()
    more = write(b.bootstrap, topic, 100, "outage")
    assert time.monotonic() - started < 20, "produce was held up by the dead store"
    written += more
    # Let the leader try (and fail) a few uploads before looking at what stayed local.
    failed_before = s3_proxy.injected
    wait_until(lambda: s3_proxy.injected >= failed_before + 3, 30, "uploads failing at the dead store", interval=0.1)
    local = {k: v for k, v in sizes(b.bootstrap, topic).items() if k != "remote-storage"}
    held = sum(len(v) for _, v in more)
    assert list(local.values())[0] >= held, f"local data went while the store was down: {local}"
    assert s3_objects(s3_server.endpoint, s3_bucket) == before, "an upload got through a dead store"
    # Records still on the disk are served; those only in the dead store are not (the
    # partition answers KAFKA_STORAGE_ERROR, which clients retry).
    assert read_from(b.bootstrap, topic, more[0][0]) == more, "local records read during the outage"

    # Back up: uploads catch up (after the backoff) and the local copies go.
    s3_proxy.set(error_fraction=0.0, latency_ms=0)
    wait_until(lambda: len(s3_objects(s3_server.endpoint, s3_bucket)) > len(before) + 5, 120,
               "uploads resumed", interval=0.5)
    wait_tiered(b.bootstrap, topic, store, written)
    assert read_all_ck(b.bootstrap, topic) == written, "every record after the outage"
