"""The FastAPI app of ``metric-serve``: ``create_app(settings)``.

Endpoints (JSON in and out; images as base64 of their files; OpenAPI at ``/openapi.json``):
``POST /classes/{label}`` enroll, ``DELETE /classes/{label}``, ``GET /classes``,
``POST /classify`` (classifier) or ``POST /detect`` (detector), ``GET /health``, ``GET /metrics``
(Prometheus), ``GET /`` the web page. Every error is ``{"error": "a sentence"}`` with a 4xx
status, or 5xx without a traceback."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from repmet.errors import UserError
from repmet.runtime.few_shot_runtime import check_label, open_runtime
from repmet.serve.batcher import MicroBatcher, QueueFull
from repmet.serve.gallery_file import GalleryFile
from repmet.serve.guard import RequestGuard
from repmet.serve.metrics import Metrics
from repmet.serve.schemas import (ClassesResponse, ClassifyRequest, ClassifyResponse, DetectRequest, DetectResponse,
                                  EnrollRequest, EnrollResponse, ErrorResponse, HealthResponse, RemoveResponse,
                                  decode_images)
from repmet.serve.settings import ServeSettings
from repmet.serve.tasks import SERVE_TASKS

STATIC = Path(__file__).with_name("static")
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422, 503, 504)}


class Counter:
    """``with counter:`` counts the blocks running now, across threads."""

    def __init__(self) -> None:
        self._lock, self._value = threading.Lock(), 0

    def __enter__(self) -> None:
        with self._lock:
            self._value += 1

    def __exit__(self, *_) -> None:
        with self._lock:
            self._value -= 1

    def value(self) -> int:
        return self._value


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def create_app(settings: ServeSettings) -> FastAPI:
    runtime = open_runtime(settings.artifact, settings.backend, settings.device, settings.threads)
    gallery = GalleryFile(runtime, settings.gallery)
    jobs = SERVE_TASKS.get(runtime.task, "artifact task")(runtime)
    metrics = Metrics()
    arriving = Counter()  # query requests decoding their images: the batcher waits for them
    batcher = MicroBatcher(jobs.run_batch, settings.max_batch, settings.max_wait_ms, settings.max_queue,
                           on_batch=metrics.batch, expecting=arriving.value)
    app = FastAPI(title="repmet few-shot service", version="1", docs_url=None, redoc_url=None,
                  description=f"Few-shot {runtime.task} from the artifact {Path(settings.artifact).name}: enroll "
                              f"classes from a few examples, then query. Images are base64 strings of image files.")
    app.state.runtime, app.state.gallery, app.state.batcher, app.state.metrics = runtime, gallery, batcher, metrics
    app.add_middleware(RequestGuard, settings=settings, metrics=metrics)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(UserError)
    async def user_error(_: Request, exc: UserError):
        return JSONResponse({"error": str(exc)}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError):
        return JSONResponse({"error": validation_sentence(exc)}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        message = {404: "no such endpoint; see /openapi.json", 405: "this endpoint does not take that method; see "
                   "/openapi.json"}.get(exc.status_code, str(exc.detail))
        return JSONResponse({"error": message}, exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception):
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server logs say more"}, 500)

    def submit(payload, size: int):
        """Queue a query for the micro-batcher (or 503)."""
        try:
            return batcher.submit(payload, size)
        except QueueFull as exc:
            raise ApiError(503, f"the server is busy ({exc}); retry in a second", {"Retry-After": "1"}) from None

    async def wait_for(future):
        """A queued query's result (or 504)."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), settings.request_timeout_s)
        except asyncio.TimeoutError:
            future.cancel()
            raise ApiError(504, f"no answer within {settings.request_timeout_s:g} s; retry, or send fewer "
                                f"images per request") from None

    def check_count(count: int) -> None:
        if count > settings.max_images:
            raise ApiError(413, f"{count} images in one request, more than the limit of {settings.max_images}; "
                                f"split the request")

    async def queued(endpoint: str, encoded: list[str], jobs_of) -> list:
        """The checks every query passes, its images decoded (off the event loop), and the
        batcher's jobs ``jobs_of(images) -> [(payload, images), ...]`` queued: their futures."""
        if jobs.query_endpoint != endpoint:
            raise ApiError(404, f"this server serves a {runtime.task} artifact: use POST /{jobs.query_endpoint}, "
                                f"not /{endpoint}")
        check_count(len(encoded))
        gallery.refresh()
        if len(runtime.gallery) == 0:
            raise ApiError(409, "the gallery is empty: enroll classes first (POST /classes/{label})")
        with arriving:
            images = await run_in_threadpool(decode_images, encoded, "images")
            return [submit(payload, size) for payload, size in jobs_of(images)]

    @app.post("/classify", response_model=ClassifyResponse, responses=ERRORS)
    async def classify(body: ClassifyRequest):
        """Top-k labels and posteriors of each image."""
        (future,) = await queued("classify", body.images, lambda images: [((images, body.top_k), len(images))])
        return {"predictions": await wait_for(future)}

    @app.post("/detect", response_model=DetectResponse, responses=ERRORS)
    async def detect(body: DetectRequest):
        """Boxes (in each image's own pixels), labels and scores of the enrolled classes."""
        futures = await queued("detect", body.images,  # the detection graph takes one image at a time
                               lambda images: [(([image], body.score_threshold), 1) for image in images])
        found = await asyncio.gather(*(wait_for(f) for f in futures))
        return {"detections": [per_request[0] for per_request in found]}

    @app.post("/classes/{label:path}", response_model=EnrollResponse, status_code=201, responses=ERRORS)
    def enroll(label: str, body: EnrollRequest):
        """Enroll ``label`` (or replace it): saved to the gallery file before the answer."""
        check_label(label)
        check_count(body.count())
        used = gallery.change(lambda _: jobs.enroll(label, body))
        return {"label": label, "used": used, "classes": len(runtime.gallery)}

    @app.delete("/classes/{label:path}", response_model=RemoveResponse, responses=ERRORS)
    def remove(label: str):
        check_label(label)

        def apply(_):
            if label not in runtime.gallery.labels:
                raise ApiError(404, f"{label!r} is not enrolled; GET /classes lists the classes")
            runtime.remove(label)

        gallery.change(apply)
        return {"removed": label, "classes": len(runtime.gallery)}

    @app.get("/classes", response_model=ClassesResponse)
    def classes():
        gallery.refresh()
        current = runtime.gallery
        return {"task": runtime.task, "classes": [{"label": label, "representatives": int(count)}
                                                  for label, count in zip(current.labels, current.counts)]}

    @app.get("/health", response_model=HealthResponse)
    def health():
        gallery.refresh()
        return {"status": "ok", "task": runtime.task, "backend": runtime.backend.name,
                "classes": len(runtime.gallery), "gallery_version": gallery.version}

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        current = runtime.gallery
        return PlainTextResponse(metrics.text(len(current), int(current.counts.sum()) if len(current) else 0,
                                              batcher.waiting), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        files = {p.name: p for p in STATIC.iterdir() if p.name != "index.html"}
        if name not in files:  # only the page's own files: no request path ever names another file
            raise ApiError(404, f"no static file {name!r}")
        return FileResponse(files[name])

    @app.on_event("shutdown")
    def stop() -> None:
        batcher.close()

    return app


def validation_sentence(exc: RequestValidationError) -> str:
    """pydantic's first complaint as a sentence naming the field."""
    errors = exc.errors()
    if not errors:
        return "the request body is not what this endpoint takes; see /openapi.json"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the body"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}; see /openapi.json for the schema"
