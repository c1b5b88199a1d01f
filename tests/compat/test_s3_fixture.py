"""The S3 fixtures themselves (s3.py): moto answers through the proxy byte for byte, and
the proxy injects 503 SlowDown answers at the fraction asked for and the latency asked for.
Method: boto3 (moto's own dependency) with retries off, so every injected fault shows.
"""

from __future__ import annotations

import os
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from s3 import S3Server


def client(endpoint: str):
    env = S3Server.env(endpoint)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def status_of(call) -> int:
    try:
        return call()["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_objects_pass_through_the_proxy(s3_server, s3_bucket, s3_proxy):
    # Goal: with no faults the proxy is transparent. Method: put an object through it, read
    # it back through it and directly from moto, delete it through it, and see it gone.
    body = os.urandom(300_000)
    proxied = client(s3_proxy.endpoint)
    proxied.put_object(Bucket=s3_bucket, Key="t/0/object.seg", Body=body)
    read = proxied.get_object(Bucket=s3_bucket, Key="t/0/object.seg")["Body"].read()
    assert read == body
    direct = client(s3_server.endpoint)
    assert direct.get_object(Bucket=s3_bucket, Key="t/0/object.seg")["Body"].read() == body
    assert (s3_proxy.requests, s3_proxy.injected) == (2, 0)
    proxied.delete_object(Bucket=s3_bucket, Key="t/0/object.seg")
    with pytest.raises(ClientError):
        direct.head_object(Bucket=s3_bucket, Key="t/0/object.seg")


def test_proxy_injects_errors_and_latency(s3_bucket, s3_proxy):
    # Goal: the fault knobs do what they say. Method: all requests fail at fraction 1 (with
    # S3's SlowDown); about half fail at 0.5 (a seeded stream, so the count is stable);
    # latency delays each request.
    proxied = client(s3_proxy.endpoint)
    proxied.put_object(Bucket=s3_bucket, Key="probe", Body=b"x")
    s3_proxy.set(error_fraction=1.0)
    with pytest.raises(ClientError) as refused:
        proxied.get_object(Bucket=s3_bucket, Key="probe")
    assert refused.value.response["Error"]["Code"] == "SlowDown"
    s3_proxy.set(error_fraction=0.5)
    probe = lambda: proxied.head_object(Bucket=s3_bucket, Key="probe")  # noqa: E731
    statuses = [status_of(probe) for _ in range(40)]
    failed = statuses.count(503)
    assert 8 <= failed <= 32, statuses
    assert statuses.count(200) == 40 - failed, statuses
    s3_proxy.set(error_fraction=0.0, latency_ms=200)
    started = time.monotonic()
    assert proxied.get_object(Bucket=s3_bucket, Key="probe")["Body"].read() == b"x"
    assert time.monotonic() - started >= 0.2
