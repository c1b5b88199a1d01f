"""S3 for tiered-storage tests: moto's S3 server, and a fault-injecting proxy in front of it.

Fixtures (imported by conftest.py, so every test module can ask for them):
- `s3_server` (session): moto's S3 server (`moto[server]`, pinned in requirements.txt) on a
  free 127.0.0.1 port, run in a temp dir, stopped at the end of the session. A missing moto
  fails the test with the install hint; it is never skipped.
- `s3_bucket` (function): a fresh bucket on that server; its name.
- `s3_proxy` (function): an HTTP proxy on a free port that forwards to the server, answering
  a configurable fraction of requests with S3's `503 SlowDown` and adding latency to each
  (`proxy.set(error_fraction=0.2, latency_ms=50)`), from a seeded random stream so a run
  repeats. Point a broker at `proxy.endpoint` to put faults between it and the store.

A broker reaches the store as `weir.remote.storage.url = "s3://BUCKET/PREFIX"` with the
environment from `S3Server.env(endpoint)` (credentials, region and `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import http.client
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest

from weirtest import free_port, unique

INSTALL_HINT = (
    "moto's S3 server is needed: run `cargo xtask install-deps` "
    "(pip install -r tests/compat/requirements.txt)"
)
START_TIMEOUT_S = 30.0
# Headers that belong to one hop, never forwarded.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class S3Server:
    """A moto S3 server process."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "moto.log"
        self._log = open(self.log_path, "wb")
        program = shutil.which("moto_server")
        command = [program] if program else [sys.executable, "-m", "moto.server"]
        command += ["-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=directory, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-4000:]
                code = self.process.returncode
                raise RuntimeError(f"moto exited ({code}): {log}\n{INSTALL_HINT}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"moto did not answer at {self.endpoint} within {START_TIMEOUT_S} s")

    def create_bucket(self, name: str) -> str:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT", data=b"")
        with urllib.request.urlopen(request, timeout=10) as answer:
            if answer.status != 200:
                raise RuntimeError(f"creating bucket {name}: HTTP {answer.status}")
        return name

    @staticmethod
    def env(endpoint: str) -> dict[str, str]:
        """The environment a broker needs to reach the store at `endpoint` (moto or a proxy)."""
        return {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "weir-test",
            "AWS_SECRET_ACCESS_KEY": "weir-test",
            "AWS_REGION": "us-east-1",
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


class FaultProxy:
    """An HTTP/1.1 proxy to `upstream` that fails and delays requests on demand."""

    def __init__(self, upstream_port: int, seed: int = 1):
        self.upstream_port = upstream_port
        self.error_fraction = 0.0
        self.latency_ms = 0
        self.requests = 0
        self.injected = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

            def _relay(self) -> None:
                body = self._read_body()
                fail, latency_ms = proxy._decide()
                if latency_ms:
                    time.sleep(latency_ms / 1000)
                if fail:
                    self._slow_down()
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    headers = {
                        name: value
                        for name, value in self.headers.items()
                        if name.lower() not in HOP_HEADERS and name.lower() != "content-length"
                    }
                    headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_HEADERS and name.lower() != "content-length":
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _slow_down(self) -> None:
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate. (injected)</Message></Error>"
                )
                self.send_response(503, "Slow Down")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def set(self, error_fraction: Optional[float] = None, latency_ms: Optional[int] = None) -> None:
        """Change the faults for requests from now on (fraction in 0..=1, latency per request)."""
        with self._lock:
            if error_fraction is not None:
                if not 0.0 <= error_fraction <= 1.0:
                    raise ValueError(f"error_fraction {error_fraction} is not in 0..=1")
                self.error_fraction = error_fraction
            if latency_ms is not None:
                self.latency_ms = max(0, latency_ms)

    def _decide(self) -> tuple[bool, int]:
        with self._lock:
            self.requests += 1
            fail = self._random.random() < self.error_fraction
            if fail:
                self.injected += 1
            return fail, self.latency_ms

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """moto's S3 server for the session."""
    try:
        server = S3Server(tmp_path_factory.mktemp("moto"))
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot start moto: {exc}\n{INSTALL_HINT}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh bucket on the session's server."""
    return s3_server.create_bucket(unique("weir-tier").lower().replace("_", "-"))


@pytest.fixture
def s3_proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's server; no faults until set()."""
    proxy = FaultProxy(s3_server.port)
    yield proxy
    proxy.stop()


__all__ = ["S3Server", "FaultProxy", "s3_server", "s3_bucket", "s3_proxy"]
