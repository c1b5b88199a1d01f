"""The HTTP platform of `weir serve` (the stack the REST proxy and the schema registry share):
its listener flags and defaults, HTTP Basic authentication against the broker's own users
(PLAIN users of a SASL listener, SCRAM users of the metadata log), https with the
listeners' certificates, and bad requests answered without harming the broker.

Checked through the REST proxy's GET /v3/clusters, which asks the broker for its metadata
as the authenticated caller.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request

from test_sasl import JAAS, weir_user_add
from test_tls import Pki, pki, tls_config  # noqa: F401 (pki: fixture)
from weirtest import BrokerFactory, ck_admin, free_port


def call(url: str, auth: tuple[str, str] | None = None, headers: dict | None = None,
         context: ssl.SSLContext | None = None, method: str = "GET", body: bytes | None = None):
    """(status, headers, parsed JSON body or raw text) of one request."""
    request = urllib.request.Request(url, method=method, data=body)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=20, context=context) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    try:
        return status, got, json.loads(raw)
    except ValueError:
        return status, got, raw.decode(errors="replace")


def cluster_id(bootstrap: str) -> str:
    return ck_admin(bootstrap).list_topics(timeout=15).cluster_id


def test_rest_proxy_listener_serves_the_cluster_the_kafka_listener_serves(broker_factory: BrokerFactory):
    # Goal: `--rest-proxy` / `weir.rest.proxy.listener` puts the service on the given port,
    # the cluster it reports is the one librdkafka sees, and an unknown cluster id is
    # Confluent's 404. Method: one broker, the key in its config file.
    port = free_port()
    broker = broker_factory.new(config=f'"weir.rest.proxy.listener" = "127.0.0.1:{port}"\n')
    assert f"weir REST proxy on http://127.0.0.1:{port}" in broker.log_text()
    status, _, body = call(f"http://127.0.0.1:{port}/v3/clusters")
    assert status == 200, body
    assert body["kind"] == "KafkaClusterList"
    [cluster] = body["data"]
    assert cluster["cluster_id"] == cluster_id(broker.bootstrap)
    assert cluster["metadata"]["self"] == f"http://127.0.0.1:{port}/v3/clusters/{cluster['cluster_id']}"
    status, _, body = call(f"http://127.0.0.1:{port}/v3/clusters/no-such-cluster")
    assert status == 404 and body["error_code"] == 404, body
    status, _, body = call(f"http://127.0.0.1:{port}/v3/no/such/path")
    assert status == 404


def grab_port(port: int):
    """A listening socket on 127.0.0.1:`port`, or None when another process holds it."""
    import socket

    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        return holder
    except OSError:
        holder.close()
        return None


def test_default_rest_port_taken_is_skipped_but_an_explicit_one_fails_the_start(broker_factory: BrokerFactory):
    # Goal: several local brokers start with defaults (a taken default port is logged and
    # skipped), while an explicitly given address that cannot be bound is a start-up error,
    # by flag as by config key. Method: 8082 is made taken (the test holds it, or another
    # process, e.g. the session's shared broker started with defaults, already does), then a
    # broker that does not name the proxy's address must serve Kafka without the proxy and
    # say why. (Held by another process, 8082 might be let go just before the broker binds
    # it: the broker then says it serves there, and the test stops it and tries again, now
    # holding the port itself.) Then a port the test holds is given explicitly, by key and
    # by `--rest-proxy`, and the start fails; `off` starts without the proxy.
    holder, default = None, None
    for _ in range(5):
        holder = grab_port(8082)
        default = broker_factory.new(config='"weir.schema.registry.listener" = "off"\n', name="rest-default")
        log = default.log_text()
        if "REST proxy off: cannot listen on 127.0.0.1:8082" in log:
            break
        assert holder is None and "weir REST proxy on http://127.0.0.1:8082" in log, log
        default.stop()
    try:
        log = default.log_text()
        assert "REST proxy off: cannot listen on 127.0.0.1:8082" in log, log
        assert "set --rest-proxy" in log, log
        assert "REST proxy on" not in log, log
        assert cluster_id(default.bootstrap), "the broker serves Kafka without the proxy"
        default.stop()
        explicit = grab_port(0)
        taken = explicit.getsockname()[1]

        for how in ("config", "flag"):
            if how == "config":
                broker = broker_factory.new(config=f'"weir.rest.proxy.listener" = "127.0.0.1:{taken}"\n', start=False)
            else:
                broker = broker_factory.new(args=["--rest-proxy", f"127.0.0.1:{taken}"], start=False)
            try:
                broker.start(timeout=20)
                started = True
            except RuntimeError as error:
                started = False
                assert f"127.0.0.1:{taken}" in str(error), str(error)
            assert not started, f"a broker with an explicit ({how}), taken REST proxy address must not start"
        off = broker_factory.new(config='"weir.rest.proxy.listener" = "off"\n')
        assert "REST proxy on" not in off.log_text()
        explicit.close()
    finally:
        if holder is not None:
            holder.close()


def test_rest_proxy_flag_overrides_the_config_key(broker_factory: BrokerFactory):
    # Goal: `--rest-proxy HOST:PORT` moves the proxy (over the config file's key) and
    # `--rest-proxy off` turns it off. Method: one broker whose file says off and whose flag
    # gives a port; another whose file gives a port and whose flag says off.
    port, unused = free_port(), free_port()
    moved = broker_factory.new(config='"weir.rest.proxy.listener" = "off"\n',
                               args=["--rest-proxy", f"127.0.0.1:{port}"], name="rest-flag")
    assert f"weir REST proxy on http://127.0.0.1:{port}" in moved.log_text()
    status, _, body = call(f"http://127.0.0.1:{port}/v3/clusters")
    assert status == 200, body
    assert body["data"][0]["cluster_id"] == cluster_id(moved.bootstrap)
    off = broker_factory.new(config=f'"weir.rest.proxy.listener" = "127.0.0.1:{unused}"\n',
                             args=["--rest-proxy", "off"], name="rest-flag-off")
    assert "REST proxy on" not in off.log_text()
    import socket

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", unused)) != 0, "nothing listens on the file's address"


def basic_broker(broker_factory: BrokerFactory, pki: Pki, extra: str = ""):
    sasl_port, rest_port = free_port(), free_port()
    config = tls_config(
        pki,
        f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        f'"listener.name.sasl_plaintext.plain.sasl.jaas.config" = "{JAAS}"\n'
        f'"weir.rest.proxy.listener" = "127.0.0.1:{rest_port}"\n'
        f'"weir.http.authentication.method" = "BASIC"\n{extra}',
    )
    broker = broker_factory.new(config=config, name="http-basic")
    return broker, rest_port


def test_basic_auth_accepts_plain_and_scram_users_and_refuses_the_rest(broker_factory: BrokerFactory, pki: Pki):
    # Goal: with weir.http.authentication.method = BASIC, a request needs the credentials of
    # a broker user: a PLAIN user of the SASL listener's JAAS config, or a SCRAM user made
    # with `weir user add` (SHA-256 or SHA-512); no header, a wrong password, an unknown
    # user and a malformed header are 401 with a Basic challenge; the broker keeps serving.
    broker, port = basic_broker(broker_factory, pki)
    weir_user_add(broker.bootstrap, "carol", "SCRAM-SHA-256", "carol-secret")
    weir_user_add(broker.bootstrap, "dave", "SCRAM-SHA-512", "dave-secret")
    url = f"http://127.0.0.1:{port}/v3/clusters"
    for user, password in [("alice", "alice-secret"), ("carol", "carol-secret"), ("dave", "dave-secret")]:
        status, _, body = call(url, auth=(user, password))
        assert status == 200, (user, body)
        # Twice: the second request is served from the session cache.
        assert call(url, auth=(user, password))[0] == 200
    refusals = [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"carol:alice-secret").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:x").decode()},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
    ]
    for headers in refusals:
        status, got, body = call(url, headers=headers)
        assert status == 401, (headers, body)
        assert body["error_code"] == 40101, body
        assert got.get("WWW-Authenticate", got.get("www-authenticate")) == 'Basic realm="weir"'
    assert broker.alive()
    assert call(url, auth=("alice", "alice-secret"))[0] == 200


def test_https_with_the_listeners_certificates(broker_factory: BrokerFactory, pki: Pki):
    # Goal: weir.http.ssl.enable serves the HTTP services over https with the ssl.* material
    # of the Kafka listeners; a client trusting the CA gets through, plain http does not.
    port = free_port()
    config = tls_config(
        pki,
        "PLAINTEXT://127.0.0.1:0",
        f'"weir.rest.proxy.listener" = "127.0.0.1:{port}"\n"weir.http.ssl.enable" = true\n',
    )
    broker = broker_factory.new(config=config, name="https")
    assert f"weir REST proxy on https://127.0.0.1:{port}" in broker.log_text()
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.check_hostname = False
    status, _, body = call(f"https://127.0.0.1:{port}/v3/clusters", context=context)
    assert status == 200, body
    assert body["data"][0]["metadata"]["self"].startswith("https://")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v3/clusters", timeout=10)
        raise AssertionError("plain http must not be served on an https listener")
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        pass
    assert broker.alive()


def test_garbage_on_the_socket_does_not_hurt_the_broker(broker_factory: BrokerFactory):
    # Goal: bytes that are not HTTP are answered 400 or dropped, and the broker keeps
    # answering on the same port. (Oversized bodies are the services' tests: 413.)
    import socket

    port = free_port()
    broker = broker_factory.new(config=f'"weir.rest.proxy.listener" = "127.0.0.1:{port}"\n')
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"\x00\x01\x02 not http at all\r\n\r\n")
        answer = raw.recv(1024)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer
    status, _, _ = call(f"http://127.0.0.1:{port}/v3/clusters")
    assert status == 200
    assert broker.alive()
