"""The WASM client against a gateway that requires SASL authentication (issue 15 item 2:
"The gateway authenticates its WebSocket sessions with the same users").

Goal: under Node (and, for SCRAM, once in headless Chromium), `connect(url, { sasl })` with the right password produces and consumes,
with PLAIN (a JAAS user of the broker's SASL listener) and SCRAM-SHA-256 (a user made with
`weir user add`, the exchange computed in the client); a wrong password, an unknown user
and missing credentials are refused with `SASL_AUTHENTICATION_FAILED` and the gateway's
close reason "SASL authentication failed".
Method: `weir serve --gateway` with a PLAINTEXT listener (the harness's, where the user is
added as an operator would), a SASL_PLAINTEXT listener holding the JAAS users, and
`weir.gateway.sasl.enabled.mechanisms = "PLAIN,SCRAM-SHA-256"`; tests/wasm/node_client.mjs
runs the `sasl` scenario of scenario.mjs. Every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests/compat"))

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from weirtest import free_port, unique, weir_bin  # noqa: E402

from test_wasm_e2e import ChromiumDriver, GatewayBroker  # noqa: E402
from weirtest import wait_until  # noqa: E402

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'user_alice=\\"alice-secret\\";'
)
RECORDS = 20


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    base = tmp_path_factory.mktemp("weir-wasm-sasl")
    config = base / "weir.toml"
    config.write_text(
        f'listeners = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{free_port()}"\n'
        f'"listener.name.sasl_plaintext.plain.sasl.jaas.config" = "{JAAS}"\n'
        '"weir.gateway.sasl.enabled.mechanisms" = "PLAIN,SCRAM-SHA-256"\n'
    )
    broker = GatewayBroker(data_dir=base / "data", log_path=base / "weir.log", config_path=config)
    broker.gateway_port = free_port()
    broker.start()
    added = subprocess.run(
        [str(weir_bin()), "user", "add", "bob", "--mechanism", "SCRAM-SHA-256",
         "--password", "bob-secret", "--bootstrap-server", broker.bootstrap],
        capture_output=True, text=True, timeout=60,
    )
    assert added.returncode == 0, added.stderr
    yield broker
    broker.stop()


def create_topic(broker) -> str:
    topic = unique("wasm-sasl")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    return topic


def run_sasl(broker, topic: str, mechanism: str, user: str, password: str) -> dict:
    out = subprocess.run(
        ["node", "--experimental-websocket", str(HERE / "node_client.mjs"), "sasl",
         broker.gateway, topic, str(RECORDS), mechanism, user, password],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, out.stdout + out.stderr
    return lines[-1]


@pytest.mark.parametrize(
    "mechanism,user,password",
    [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "bob", "bob-secret")],
)
def test_authenticated_client_produces_and_consumes(broker, mechanism, user, password):
    # Goal: the right password opens a session that is served. Method: produce RECORDS
    # values and read them all back through the same authenticated client.
    topic = create_topic(broker)
    report = run_sasl(broker, topic, mechanism, user, password)
    assert "error" not in report, report
    assert report["produced"] == RECORDS
    assert sorted(report["read"]) == sorted(f"{user}-{i}" for i in range(RECORDS))


@pytest.mark.parametrize(
    "mechanism,user,password",
    [
        ("PLAIN", "alice", "wrong-secret"),
        ("SCRAM-SHA-256", "bob", "wrong-secret"),
        ("SCRAM-SHA-256", "nobody", "x-secret"),
        ("SCRAM-SHA-512", "bob", "bob-secret"),
    ],
)
def test_refused_authentication_names_the_reason(broker, mechanism, user, password):
    # Goal: a refused authentication rejects `connect` with SASL_AUTHENTICATION_FAILED and
    # the gateway's reason, never the password. Method: wrong password (both mechanisms),
    # unknown user, a mechanism the gateway does not accept.
    topic = create_topic(broker)
    report = run_sasl(broker, topic, mechanism, user, password)
    error = report.get("error")
    assert error is not None, report
    assert error["name"] == "SASL_AUTHENTICATION_FAILED", error
    assert "SASL authentication failed" in error["message"], error
    assert "secret" not in error["message"], error
    assert "secret" not in broker.log_text()


def test_chromium_scram_and_a_wrong_password(broker, tmp_path):
    # Goal: the browser build authenticates the same way (SCRAM computed in the page, the
    # nonce from crypto.getRandomValues) and gets the same refusal. Method: page.html's
    # `runSasl` in one headless Chromium tab, twice.
    driver = ChromiumDriver(tmp_path)
    try:
        handle = driver._tab()
        for password, expect_error in [("bob-secret", False), ("wrong-secret", True)]:
            topic = create_topic(broker)
            sasl = {"mechanism": "SCRAM-SHA-256", "username": "bob", "password": password}
            driver.chrome.run(
                f"window.runSasl({json.dumps(broker.gateway)}, {json.dumps(topic)}, "
                f"{RECORDS}, {json.dumps(sasl)})"
            )
            found: list[dict] = []

            def done():
                found.extend(driver._drain(handle))
                return any("read" in r or "error" in r for r in found)

            wait_until(done, 60, "the page's SASL scenario")
            report = next(r for r in found if "read" in r or "error" in r)
            if expect_error:
                assert report["error"]["name"] == "SASL_AUTHENTICATION_FAILED", report
            else:
                assert "error" not in report, report
                assert len(report["read"]) == RECORDS, report
    finally:
        driver.close()
