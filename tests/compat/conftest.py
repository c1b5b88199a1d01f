"""Fixtures of the real-client compatibility suite.

- `broker` (session): one `weir serve` with default config on a free port and a fresh temp
  data dir, shared by the tests that only need a live broker. Each test that uses it is
  checked afterwards that the process is still alive, so a crash is blamed on the test
  that caused it.
- `broker_factory` (function): starts brokers with a given TOML config; each one supports
  restart()/kill9() on the same data dir (persistence, retention, auto-create tests).
- `fresh_broker` (function): a default broker of its own, for tests that restart it.
- `s3_server`, `s3_bucket`, `s3_proxy`: moto's S3 server and a fault-injecting proxy in
  front of it, for tiered storage (see s3.py).

On a failing test the tail of every involved broker's log is attached to the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from weirtest import Broker, BrokerFactory, weir_bin  # noqa: E402
from s3 import s3_bucket, s3_proxy, s3_server  # noqa: E402,F401 - fixtures for every module


def pytest_sessionstart(session):
    # Fail fast and clearly when there is no binary, instead of 100 fixture errors.
    try:
        path = weir_bin()
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc))
    session.config._weir_bin = path  # type: ignore[attr-defined]


def pytest_report_header(config):
    path = getattr(config, "_weir_bin", None)
    return f"weir binary: {path}"


@pytest.fixture(scope="session")
def _session_broker_holder(tmp_path_factory):
    base = tmp_path_factory.mktemp("weir-session")
    factory = BrokerFactory(base)
    holder = {"factory": factory, "broker": None, "error": None}
    yield holder
    factory.close()


@pytest.fixture
def broker(_session_broker_holder, request) -> Broker:
    """The shared broker (started once, lazily). A test that leaves it dead fails."""
    holder = _session_broker_holder
    if holder["error"] is not None:
        pytest.fail(f"session broker could not start earlier: {holder['error']}")
    if holder["broker"] is None:
        try:
            holder["broker"] = holder["factory"].new(name="session")
        except RuntimeError as exc:
            holder["error"] = str(exc)[:4000]
            raise
    b: Broker = holder["broker"]
    if not b.alive():
        pytest.fail(f"session broker is dead (exit {b.proc.returncode}); log:\n{b.log_text(20000)}")
    request.node._weir_brokers = [b]
    yield b
    if not b.alive():
        pytest.fail(f"weir died during this test (exit {b.proc.returncode})")


@pytest.fixture
def broker_factory(tmp_path, request) -> BrokerFactory:
    factory = BrokerFactory(tmp_path)
    request.node._weir_factory = factory
    yield factory
    factory.close()


@pytest.fixture
def fresh_broker(broker_factory) -> Broker:
    return broker_factory.new(name="fresh")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        brokers = list(getattr(item, "_weir_brokers", []))
        factory = getattr(item, "_weir_factory", None)
        if factory is not None:
            brokers += factory.brokers
        for i, b in enumerate(brokers):
            state = "alive" if b.alive() else f"exited {b.proc.returncode if b.proc else '-'}"
            report.sections.append((f"weir log #{i} ({b.bootstrap}, {state})", b.log_text(30_000)))
