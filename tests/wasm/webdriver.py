"""A minimal W3C WebDriver client (urllib only) for headless Chromium via chromedriver.

Invariant: every chromedriver started here is killed by close(); every wait is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Two tabs consume at once: background tabs must not have their timers throttled.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


class WebDriverError(RuntimeError):
    pass


class Chrome:
    def __init__(self, port: int, log_path: str):
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=self._log, stderr=subprocess.STDOUT
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not become ready")
            time.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": CHROME_ARGS},
                }
            }
        }
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise WebDriverError(f"{method} {path}: {error.read()[:2000]!r}") from None

    def _session(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def new_tab(self) -> str:
        return self._session("POST", "/window/new", {"type": "tab"})["handle"]

    def current_tab(self) -> str:
        return self._session("GET", "/window")

    def switch(self, handle: str) -> None:
        self._session("POST", "/window", {"handle": handle})

    def run(self, script: str, *args: Any) -> Any:
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}")
        except (OSError, WebDriverError):
            pass
        self.proc.kill()
        self.proc.wait()
        self._log.close()
