"""`weir serve --config FILE`: unknown keys and invalid values are refused at start (non-zero
exit, stderr names the key); valid Kafka property names take effect; flags beat the file."""

from __future__ import annotations

import subprocess

import pytest
from confluent_kafka.admin import NewTopic

from weirtest import (
    READY_MARK,
    Broker,
    ck_admin,
    ck_partitions,
    free_port,
    unique,
    wait_until,
    weir_bin,
)


def _serve_expect_refusal(tmp_path, config_text: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(config_text)
    cmd = [str(weir_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"), "--config", str(cfg)]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        pytest.fail(f"weir kept running with a bad config instead of refusing it; output:\n{out[-3000:]}")
    return res


@pytest.mark.parametrize(
    "config_text, key",
    [
        ('"no.such.key" = 1\n', "no.such.key"),
        ("no.such.key = 1\n", "no.such.key"),
        ('"num.partitions" = 1\n"log.retention.hourz" = 5\n', "log.retention.hourz"),
    ],
    ids=["quoted-unknown", "dotted-unknown", "typo-among-valid"],
)
def test_unknown_key_refused(tmp_path, config_text, key):
    # Goal: an unknown key is refused at start: non-zero exit, the key named on stderr, never
    # the ready line. Method: run `weir serve --config` as a subprocess with a 30 s bound.
    res = _serve_expect_refusal(tmp_path, config_text)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"exit code 0 for unknown key {key}"
    assert key in err, f"stderr does not name {key!r}:\n{err[-2000:]}"
    assert READY_MARK not in res.stdout.decode(errors="replace") + err


@pytest.mark.parametrize(
    "config_text, key",
    [
        ('"num.partitions" = -3\n', "num.partitions"),
        ('"num.partitions" = "lots"\n', "num.partitions"),
        ('"message.max.bytes" = 0\n', "message.max.bytes"),
        ('"weir.durability" = "sometimes"\n', "weir.durability"),
        ('"auto.create.topics.enable" = "maybe"\n', "auto.create.topics.enable"),
    ],
    ids=["negative-partitions", "string-partitions", "zero-message-max", "bad-durability", "bad-bool"],
)
def test_invalid_value_refused(tmp_path, config_text, key):
    # Goal: a known key with an invalid value is refused at start and named on stderr.
    # Method: as above.
    res = _serve_expect_refusal(tmp_path, config_text)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"exit code 0 for invalid {key}"
    assert key in err, f"stderr does not name {key!r}:\n{err[-2000:]}"


def test_unparsable_toml_refused(tmp_path):
    # Goal: a file that is not TOML at all is refused with a non-zero exit.
    res = _serve_expect_refusal(tmp_path, "this is [not toml\n")
    assert res.returncode != 0 and res.stderr.strip(), res


def test_valid_config_takes_effect(broker_factory):
    # Goal: the refusals above are not "refuse everything": a valid file with Kafka property
    # names (dotted, unquoted TOML as users copy them from server.properties) starts, and
    # num.partitions is applied to topics created without a count. Method: start with the file,
    # create a topic with num_partitions=-1, expect 4 partitions.
    b = broker_factory.new(config="num.partitions = 4\nlog.retention.hours = 24\n", name="valid-cfg")
    name = unique("default-4")
    admin = ck_admin(b.bootstrap)  # must outlive the future
    admin.create_topics([NewTopic(name, num_partitions=-1, replication_factor=-1)])[name].result(timeout=15)
    wait_until(lambda: sorted(ck_partitions(b.bootstrap, name)) == [0, 1, 2, 3], 15, "4 partitions from num.partitions")


def test_flags_override_file(broker_factory, tmp_path):
    # Goal: --listen on the command line wins over `listeners` in the file. Method: a file
    # naming another port; the broker must answer on the flag's port (Broker uses it).
    other = free_port()
    b = broker_factory.new(config=f'"listeners" = "PLAINTEXT://127.0.0.1:{other}"\n', name="flags")
    md = ck_admin(b.bootstrap).list_topics(timeout=10)
    assert md.brokers[1].port == b.port, f"advertised port {md.brokers[1].port}, flag said {b.port}"
