"""kafkajs 2.2.4 (unmodified, node 20) over TLS and SASL (issue 15): SSL with a CA, SASL_SSL
with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, mutual TLS, and a wrong password answered with
kafkajs's SASL authentication error. The node side is kafkajs/security.mjs; each round trip
creates a topic, produces with acks=-1 and reads back through a consumer group, all through
the secured listener. Certificates come from test_tls's `pki`, the SASL broker layout and
`weir user add` from test_sasl.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from test_sasl import sasl_broker, weir_user_add
from test_tls import Pki, pki, tls_config  # noqa: F401 (pki: fixture)
from weirtest import HERE, BrokerFactory, free_port, unique

KAFKAJS_DIR = HERE / "kafkajs"

pytestmark = pytest.mark.kafkajs


def _security(bootstrap: str, security: dict, step: str, topic: str, timeout: float = 120) -> tuple[int, dict, str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail("kafkajs is not installed: run `npm ci` in tests/compat/kafkajs (run.sh does)")
    res = subprocess.run(
        [node, str(KAFKAJS_DIR / "security.mjs"), bootstrap, json.dumps(security), step, topic],
        cwd=KAFKAJS_DIR,
        capture_output=True,
        timeout=timeout,
    )
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    lines = out.strip().splitlines()
    return res.returncode, (json.loads(lines[-1]) if lines else {}), err


def _round_trip(bootstrap: str, security: dict, topic: str) -> None:
    code, out, err = _security(bootstrap, security, "round-trip", topic)
    assert code == 0, f"kafkajs round trip failed (exit {code}):\n{err[-4000:]}"
    assert out["read"] == [f"{topic}/{i}" for i in range(20)], out


def test_kafkajs_ssl_and_mtls(broker_factory: BrokerFactory, pki: Pki):
    # Goal: kafkajs trusts the broker through `ssl.ca` and presents a client certificate
    # (`ssl.cert`/`ssl.key`) where the listener requires one; without one it cannot work
    # there. Method: an SSL listener and an MTLS listener (ssl.client.auth=required), a
    # round trip on each, then an anonymous client on MTLS.
    mtls_port = free_port()
    broker = broker_factory.new(
        config=tls_config(
            pki,
            f"SSL://127.0.0.1:0,MTLS://127.0.0.1:{mtls_port}",
            '"listener.security.protocol.map" = "SSL:SSL,MTLS:SSL"\n'
            '"listener.name.mtls.ssl.client.auth" = "required"\n'
            '"group.initial.rebalance.delay.ms" = 0',
        ),
        name="kjs-tls",
    )
    ssl = broker.bootstrap
    mtls = f"127.0.0.1:{mtls_port}"
    _round_trip(ssl, {"ca": str(pki.ca)}, unique("kjs-ssl"))
    identity = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
    _round_trip(mtls, identity, unique("kjs-mtls"))
    code, out, err = _security(mtls, {"ca": str(pki.ca)}, "auth-fails", unique("kjs-anon"))
    assert code == 0, f"a client without a certificate got in:\n{err[-4000:]}"


@pytest.mark.parametrize("mechanism", ["plain", "scram-sha-256", "scram-sha-512"])
def test_kafkajs_sasl_ssl(broker_factory: BrokerFactory, pki: Pki, mechanism: str):
    # Goal: kafkajs authenticates over SASL_SSL with each mechanism (PLAIN against the
    # listener's JAAS users, SCRAM against users made with `weir user add`) and then
    # produces and consumes; a wrong password fails with KafkaJSSASLAuthenticationError.
    # Method: test_sasl's three-listener broker, one mechanism per case.
    broker, _, ssl_bootstrap = sasl_broker(broker_factory, pki, '"group.initial.rebalance.delay.ms" = 0')
    if mechanism == "plain":
        user, password = "alice", "alice-secret"
    else:
        user, password = "bob", "bob-secret-7x"
        weir_user_add(broker.bootstrap, user, mechanism.upper(), password)
    security = {"ca": str(pki.ca), "sasl": {"mechanism": mechanism, "username": user, "password": password}}
    _round_trip(ssl_bootstrap, security, unique(f"kjs-{mechanism}"))

    wrong = {**security, "sasl": {**security["sasl"], "password": "not-the-password-9q"}}
    code, out, err = _security(ssl_bootstrap, wrong, "auth-fails", unique("kjs-wrong"))
    assert code == 0, f"kafkajs connected with a wrong password:\n{err[-4000:]}"
    assert out["name"] == "KafkaJSSASLAuthenticationError", out
    assert "not-the-password-9q" not in broker.log_text(), "no password is logged"

