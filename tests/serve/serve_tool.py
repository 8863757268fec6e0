"""A real metric-serve process on loopback, for the service's tests: started with the CLI as a
user starts it, talked to over HTTP with the standard library only."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import PROJECT_ROOT, script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(path: Path | bytes) -> str:
    return base64.b64encode(path if isinstance(path, bytes) else Path(path).read_bytes()).decode()


class Server:
    def __init__(self, artifact: Path, *options: str, port: int | None = None) -> None:
        self.artifact, self.options = artifact, [str(o) for o in options]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Server":
        self.log = open(os.devnull, "w")
        self.process = subprocess.Popen([script("metric-serve"), str(self.artifact), "--port", str(self.port),
                                         *self.options], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"metric-serve exited {self.process.returncode}: {self.process.stderr.read()}")
            try:
                if self.call("GET", "/health")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("metric-serve did not answer /health in time")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def call(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None,
             timeout: float = 60.0) -> tuple[int, dict | str, dict]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _decoded(response), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, _decoded(error), dict(error.headers)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *_) -> None:
        self.kill(signal.SIGTERM)


def _decoded(response):
    text = response.read().decode()
    if response.headers.get("content-type", "").startswith("application/json"):
        return json.loads(text)
    return text
