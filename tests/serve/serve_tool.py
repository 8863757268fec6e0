"""A real metric-serve process on loopback for the service's tests, started with the console
script as a user starts it (repmet.serve.client.ServerProcess), talked to over HTTP."""

from __future__ import annotations

from pathlib import Path

from conftest import PROJECT_ROOT, script
from repmet.serve.client import ServerProcess
from repmet.serve.client import encode_image as b64  # noqa: F401 - the tests' name for it


class Server(ServerProcess):
    def __init__(self, artifact: Path, *options, port: int | None = None) -> None:
        super().__init__(artifact, *options, port=port, command=[script("metric-serve")], cwd=PROJECT_ROOT)
