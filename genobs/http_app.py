"""The HTTP application of `genobs serve`, composed from the routers the domain packages
contribute (DESIGN §1-2): this module owns what every route shares: error answers, the
bearer-token dependency, body reading (size limit, gzip), the request metrics, and the
platform's own routes (/healthz, /metrics, /v1/tasks)."""

from __future__ import annotations

import hmac
import logging
import time
import zlib
from typing import Any, Awaitable, Callable, Sequence

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genobs.store import Store, StoreError
from genobs.tasks import TaskScheduler

log = logging.getLogger("genobs.server")

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiError(Exception):
    """An answer other than 2xx with a ``detail`` message (never a 5xx for bad input)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class ErrorAnswer(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    database: str
    schema_version: int


# ----------------------------------------------------------------------------- auth


def bearer_token_dependency(token: str | None) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency: with ``token`` set, requests need ``Authorization: Bearer <token>``
    (compared in constant time); with no token, everything passes. It is a coroutine so that
    FastAPI runs it on the event loop: a plain function would cost every request a hop to a
    worker thread and back."""

    async def require_token(request: Request) -> None:
        if not token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "missing bearer token (Authorization: Bearer <GENOBS_INGEST_TOKEN>)",
                           {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "invalid bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    return require_token


# ----------------------------------------------------------------------------- bodies


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress (possibly multi-member) gzip, refusing to grow past ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    data = body
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decompressor.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise ApiError(400, f"body: invalid gzip data: {exc}") from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or decompressor.unconsumed_tail:
            raise ApiError(413, f"body: decompressed size is over the limit of {limit} bytes")
        if not decompressor.eof:
            raise ApiError(400, "body: truncated gzip data")
        data = decompressor.unused_data
    return b"".join(out)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, size-limited, gzip-decoded when Content-Encoding says so."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"body: {length} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body: over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nothing to answer and nothing stored: one line, not an ASGI traceback.
        log.warning("%s %s: client disconnected after %d bytes of the body; nothing stored",
                    request.method, request.url.path, size)
        raise ApiError(400, "body: client disconnected before the body was complete") from None
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    raise ApiError(415, f"Content-Encoding {encoding!r} is not supported (use gzip or none)")


# ----------------------------------------------------------------------------- metrics


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("genobs_http_requests", "HTTP requests served, by endpoint and status code.",
                                ("endpoint", "code"), registry=registry)
        self.duration = Histogram("genobs_http_request_duration_seconds",
                                  "Time to answer an HTTP request (ingest: until commit).",
                                  ("endpoint",), buckets=HTTP_BUCKETS, registry=registry)


class _HttpMetricsMiddleware:
    """Counts requests and times them per route (pure ASGI: cheap, streaming-safe). Paths
    that are not a route are counted as "other", so scanners cannot grow the label set."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, endpoints: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in self.endpoints else "other"
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.duration.labels(endpoint).observe(time.perf_counter() - started)


# ----------------------------------------------------------------------------- the app


class TaskRunAnswer(BaseModel):
    task: str
    result: Any = None


def platform_router(store: Store, registry: CollectorRegistry, scheduler: TaskScheduler | None,
                    require_token: Callable[[Request], Awaitable[None]]) -> APIRouter:
    """/healthz, /metrics and POST /v1/tasks/{name}/run (authenticated)."""
    router = APIRouter()

    @router.get("/healthz", summary="Liveness and database check", response_model=Health,
                responses={503: {"model": ErrorAnswer}}, tags=["platform"])
    def healthz() -> Response:
        version = store.schema_version()
        return JSONResponse({"status": "ok", "database": str(store.path), "schema_version": version})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                responses={200: {"content": {"text/plain": {}}}}, tags=["platform"])
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @router.post("/v1/tasks/{name}/run", summary="Run a periodic task now and wait for it",
                 response_model=TaskRunAnswer, dependencies=[Depends(require_token)], tags=["platform"],
                 responses={401: {"model": ErrorAnswer}, 404: {"model": ErrorAnswer}})
    async def run_task(name: str) -> Response:
        """Runs one tick of a background task (e.g. `evaluate`, `drift`, `slo`) on the
        server's own store, after a scheduled run in progress, and answers with its result."""
        if scheduler is None or name not in scheduler.tasks:
            known = ", ".join(sorted(scheduler.tasks)) if scheduler else "none (the scheduler is off)"
            raise ApiError(404, f"no task {name!r} (tasks: {known})")
        try:
            result = await anyio.to_thread.run_sync(scheduler.run_now, name)
        except Exception as exc:  # noqa: BLE001 - the failure is the task's, say it
            log.exception("task %s failed when run over HTTP", name)
            return JSONResponse({"detail": f"task {name} failed: {exc.__class__.__name__}: {exc}"}, status_code=500)
        payload = result.to_dict() if hasattr(result, "to_dict") else result
        return JSONResponse({"task": name, "result": _jsonable(payload)})

    return router


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def create_app(store: Store, routers: Sequence[APIRouter], registry: CollectorRegistry, *,
               title: str = "genobs API", description: str = "") -> FastAPI:
    """The FastAPI app serving ``routers`` (the platform's own router is one of them)."""
    app = FastAPI(title=title, version="1", description=description)
    app.state.store = store

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # uvicorn logs the traceback (Starlette re-raises after this answer is sent)
        return JSONResponse({"detail": f"internal error: {exc.__class__.__name__}: {exc}"}, status_code=500)

    for router in routers:
        app.include_router(router)
    endpoints = {route.path for route in app.routes if hasattr(route, "path") and "{" not in route.path}
    app.add_middleware(_HttpMetricsMiddleware, metrics=HttpMetrics(registry), endpoints=endpoints)
    return app
