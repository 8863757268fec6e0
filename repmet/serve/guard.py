"""What every request passes before the app sees it (a plain ASGI middleware): the bearer token
(compared in constant time), the body read whole within a size limit and a time limit (a slow
or endless client gets 408, an oversized body 413, before any of it is parsed), and the
request's latency and status counted for ``/metrics``."""

from __future__ import annotations

import asyncio
import hmac
import json
import time

from repmet.serve.metrics import Metrics
from repmet.serve.settings import ServeSettings

OPEN_PATHS = ("/", "/health", "/openapi.json")  # the page asks for the token itself; probes need none
ROUTES = {"/", "/classes", "/classify", "/detect", "/health", "/metrics", "/openapi.json"}


class BodyProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def endpoint_name(method: str, path: str) -> str:
    """The route, not the path (``/classes/{label}``), so labels do not become metric series."""
    if path.startswith("/classes/"):
        return f"{method} /classes/{{label}}"
    if path.startswith("/static/"):
        return f"{method} /static"
    return f"{method} {path if path in ROUTES else 'other'}"


class RequestGuard:
    def __init__(self, app, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self._token = settings.token.encode() if settings.token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status_seen = {"status": 500}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        try:
            problem = self._refused(scope)
            if problem:
                await _json(counting_send, *problem)
                return
            try:
                body = await asyncio.wait_for(self._read_body(scope, receive), self.settings.body_timeout_s)
            except asyncio.TimeoutError:
                await _json(counting_send, 408, f"the request body did not arrive within "
                                                f"{self.settings.body_timeout_s:g} s; send it at once")
                return
            except BodyProblem as exc:
                await _json(counting_send, exc.status, exc.message)
                return
            await self.app(scope, _replay(body, receive), counting_send)
        finally:
            self.metrics.request(endpoint_name(scope["method"], scope["path"]), status_seen["status"],
                                 time.perf_counter() - start)

    def _refused(self, scope) -> tuple[int, str, dict] | None:
        if self._token is None or scope["path"] in OPEN_PATHS or scope["path"].startswith("/static/"):
            return None
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._token):
            return 401, "missing or wrong token: send the header 'Authorization: Bearer <token>'", {
                "WWW-Authenticate": "Bearer"}
        return None

    async def _read_body(self, scope, receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                raise BodyProblem(400, "the Content-Length header is not a number") from None
            if declared_size > limit:
                await _drain(receive, DRAIN_FACTOR * limit)
                raise BodyProblem(413, f"the body is {declared_size} bytes, more than the limit of {limit}; send "
                                       f"fewer or smaller images")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyProblem(400, "the client went away before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_FACTOR * limit)
                raise BodyProblem(413, f"the body is more than the limit of {limit} bytes; send fewer or smaller "
                                       f"images")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


# An oversized body is read and dropped (up to this many times the limit, within the body time
# limit) before the 413, so that a client still sending gets the answer instead of a broken pipe.
DRAIN_FACTOR = 8


async def _drain(receive, most: int) -> None:
    dropped = 0
    while dropped <= most:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: only a disconnect can come

    return replay


async def _json(send, status: int, message: str, headers: dict | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
