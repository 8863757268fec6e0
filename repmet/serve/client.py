"""A small client of metric-serve, standard library only: ``ServiceClient(url, token)`` for
applications and scripts, and ``ServerProcess`` to run a server as a child process (what the
service's tests and benchmarks do)."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def encode_image(source: str | Path | bytes) -> str:
    """An image file (path or its bytes) as the base64 text the service takes."""
    return base64.b64encode(source if isinstance(source, bytes) else Path(source).read_bytes()).decode()


class ServiceClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None,
             timeout: float | None = None) -> tuple[int, dict | str, dict]:
        """``(status, JSON body or text, headers)``; HTTP errors are answers, not exceptions."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                **(headers or {})}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.status, _decoded(response), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, _decoded(error), dict(error.headers)

    def enroll(self, label: str, images=None, examples=None) -> dict:
        """``images``: image files (paths or bytes); ``examples``: ``[(image, boxes), ...]`` for a detector."""
        from urllib.parse import quote

        body = ({"images": [encode_image(i) for i in images]} if images is not None else
                {"examples": [{"image": encode_image(i), "boxes": [list(map(float, b)) for b in boxes]}
                              for i, boxes in examples]})
        return self._ok(self.call("POST", f"/classes/{quote(label, safe='')}", body))

    def classify(self, images, top_k: int = 1) -> list[dict]:
        return self._ok(self.call("POST", "/classify", {"images": [encode_image(i) for i in images],
                                                        "top_k": top_k}))["predictions"]

    def detect(self, images, score_threshold: float = 0.2) -> list[list[dict]]:
        return self._ok(self.call("POST", "/detect", {"images": [encode_image(i) for i in images],
                                                      "score_threshold": score_threshold}))["detections"]

    def remove(self, label: str) -> dict:
        from urllib.parse import quote

        return self._ok(self.call("DELETE", f"/classes/{quote(label, safe='')}"))

    def classes(self) -> list[dict]:
        return self._ok(self.call("GET", "/classes"))["classes"]

    @staticmethod
    def _ok(answer):
        status, body, _ = answer
        if status >= 400:
            raise RuntimeError(f"the service answered {status}: {body.get('error') if isinstance(body, dict) else body}")
        return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``metric-serve ARTIFACT --port P OPTIONS...`` as a child process, on loopback; ``command``
    is the console script (default: this interpreter running the CLI module)."""

    def __init__(self, artifact: str | Path, *options, port: int | None = None, command: list[str] | None = None,
                 token: str | None = None, cwd: str | Path | None = None) -> None:
        self.artifact, self.options = artifact, [str(o) for o in options]
        self.port = port or free_port()
        self.command = command or [sys.executable, "-m", "repmet.serve.cli_serve"]
        self.client = ServiceClient(f"http://127.0.0.1:{self.port}", token)
        self.url, self.cwd = self.client.url, cwd
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        self.process = subprocess.Popen([*self.command, str(self.artifact), "--port", str(self.port), *self.options],
                                        cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"metric-serve exited {self.process.returncode}: {self.process.stderr.read()[-2000:]}")
            try:
                if self.client.call("GET", "/health", timeout=5)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"metric-serve did not answer /health within {timeout:g} s")

    def call(self, *args, **kwargs):
        return self.client.call(*args, **kwargs)

    def rss_kib(self) -> int:
        """The server's resident memory (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *_) -> None:
        self.kill(signal.SIGTERM)


def _decoded(response):
    text = response.read().decode()
    if response.headers.get("content-type", "").startswith("application/json"):
        return json.loads(text)
    return text
