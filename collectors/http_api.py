"""The collector routes (FastAPI): samples, GPU readings, OTLP traces.

Every ingest endpoint answers only after its records are committed to DuckDB, so an
acknowledged record survives a crash of the server (DESIGN §10). Bodies may be gzip
(``Content-Encoding: gzip``); the size limit applies to the body as sent and as
decompressed. When ``GENOBS_INGEST_TOKEN`` is set, POST endpoints need
``Authorization: Bearer <token>``. Samples (and OTLP spans mapped to samples) are
checked as they arrive and written by one group-committing writer
(collectors/sample_writer.py).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from genobs.collectors import otlp
from genobs.collectors.gpu_dcgm import parse_dcgm_metrics
from genobs.collectors.gpu_records import store_readings, validate_readings
from genobs.collectors.gpu_smi import SmiCsvError, parse_smi_csv
from genobs.collectors.metrics import SAMPLE_METRIC_COLUMNS, ServerMetrics
from genobs import jsontext
from genobs.collectors.pipeline import (
    IngestOptions, add_dead_letters, check_small_input, json_array_lines, record_lines,
)
from genobs.collectors.sample_writer import PreparedInput, SampleWriter
from genobs.http_app import ApiError, ErrorAnswer, media_type, read_body
from genobs.store import Store

log = logging.getLogger("genobs.server")

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
NDJSON_TYPES = {
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
    "application/jsonlines", "application/x-jsonlines", "application/json-lines", "text/jsonl",
    "text/x-ndjson",
}
JSON_TYPES = {"application/json", "text/json"}
_SOURCE_OK = re.compile(r"^[\w.:/@+=,\- ]{1,200}$")


@dataclass
class ApiSettings:
    """What the ingest routes need to know; built from the runtime's settings by collectors.plugin."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ingest_options: IngestOptions = field(default_factory=IngestOptions)
    max_label_series: int = 2000
    # Blocking store calls other than sample writes (GPU readings, dead letters) run in
    # worker threads, at most this many at once; sample writes go through one writer
    # (collectors/sample_writer.py).
    max_concurrent_writes: int = 2


# ----------------------------------------------------------------------------- docs models


class RecordErrorModel(BaseModel):
    line: int | None = None
    request_id: str | None = None
    error: str


class SampleIngestAnswer(BaseModel):
    received: int
    accepted: int
    inserted: int
    updated: int
    rejected: int
    redactions: dict[str, int]
    dead_letter_redactions: dict[str, int] = {}
    errors: list[RecordErrorModel]


class GpuErrorModel(BaseModel):
    line: int | None = None
    message: str


class GpuIngestAnswer(BaseModel):
    received: int
    accepted: int
    rejected: int
    errors: list[GpuErrorModel]


_ERRORS = {
    401: {"model": ErrorAnswer, "description": "GENOBS_INGEST_TOKEN is set and the bearer token is missing or wrong"},
    413: {"model": ErrorAnswer, "description": "body (or decompressed body) over the configured limit"},
    415: {"model": ErrorAnswer, "description": "unsupported Content-Type or Content-Encoding"},
}

_SAMPLE_EXAMPLE = {
    "request_id": "req-0001",
    "timestamp": "2025-01-15T10:00:00Z",
    "service": "chat-api",
    "model": "chat-large",
    "model_version": "2025-01-01",
    "prompt": "What is the capital of France?",
    "response": "Paris.",
    "latency_ms": 812.5,
    "input_tokens": 12,
    "output_tokens": 3,
}


# ----------------------------------------------------------------------------- body handling


def _split_lines(body: bytes) -> list[bytes]:
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


class _TooDeepForPython(Exception):
    """The body nests deeper than Python's JSON parser can go (it would recurse)."""


def _json_document(body: bytes) -> Any:
    """Parse a whole-body JSON document; ``None`` when it is several documents (NDJSON);
    _TooDeepForPython when it nests too deep to parse (the caller cuts it without parsing)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise _TooDeepForPython() from None
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"body: not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return None
        raise ApiError(400, f"body: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


# ----------------------------------------------------------------------------- sample bodies

# Bodies up to this size are parsed and checked on the event loop (a thread hand-off costs
# more); bigger ones in a worker thread, so the loop keeps serving other requests.
INLINE_BODY_BYTES = 16 * 1024
# ... and at most this many of the bigger ones at once (see create_app's prepare_limiter).
PREPARE_THREADS = 1


class BadBody(Exception):
    """The body as a whole is unusable; ``dead_letter``: store it as a dead letter."""

    def __init__(self, status: int, detail: str, dead_letter: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.dead_letter = dead_letter


def prepare_samples(body: bytes, ndjson: bool, source: str, options: IngestOptions) -> PreparedInput:
    """A sample body as numbered JSON object texts, checked in Python when it is small
    (collectors.pipeline.check_small_input); raises BadBody."""
    if ndjson:
        lines = _split_lines(body)
        if not any(line.strip() for line in lines):
            raise BadBody(400, "body: no records")
    else:
        cut: list[bytes] | None = None
        try:
            document = _json_document(body)
        except ApiError as exc:
            raise BadBody(exc.status, exc.detail, dead_letter=True) from None
        except _TooDeepForPython:
            # the records cut as written (no parse), so that the deep ones are rejected as
            # such and the others stored; one deep object is one record
            document, cut = None, json_array_lines(body) or [body]
        if cut is not None:
            lines = cut
        elif document is None:
            lines = _split_lines(body)     # several documents: NDJSON sent as JSON
        elif isinstance(document, dict):
            lines = [body]
        elif isinstance(document, list):
            if not document:
                raise BadBody(400, "body: empty array, no records")
            lines = record_lines(document)
        else:
            raise BadBody(400, f"body: expected a JSON object or an array of objects, got {type(document).__name__}",
                          dead_letter=True)
    return PreparedInput(lines, check_small_input(lines, options), source)


def prepare_records(records: Sequence[dict[str, Any]], source: str, options: IngestOptions) -> PreparedInput:
    """Decoded records (OTLP spans mapped to samples) as a prepared input."""
    lines = record_lines(records)
    return PreparedInput(lines, check_small_input(lines, options), source)


# ----------------------------------------------------------------------------- app


def ingest_router(store: Store, settings: ApiSettings, metrics: ServerMetrics,
                  require_token: Callable[[Request], Awaitable[None]]) -> APIRouter:
    """The collector routes (POST /v1/samples, /v1/gpu, /v1/traces) on ``store``; every one
    needs the bearer token when the server has one (``require_token``)."""
    router = APIRouter(dependencies=[Depends(require_token)], tags=["ingest"])

    limiter: list[anyio.CapacityLimiter] = []

    async def run_in_threadpool(func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread, at most max_concurrent_writes at once."""
        if not limiter:
            limiter.append(anyio.CapacityLimiter(max(1, settings.max_concurrent_writes)))
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=limiter[0])

    def source_of(request: Request, default: str) -> str:
        given = request.headers.get("x-genobs-source")
        if given and _SOURCE_OK.match(given):
            return given
        agent = request.headers.get("user-agent", "")
        if agent.startswith("genobs-sdk/"):
            return "sdk"
        return default

    def dead_letter_body(source: str, body: bytes, message: str) -> None:
        raw = body.decode("utf-8", errors="replace")
        try:
            add_dead_letters(store, [(source, None, raw, message)], redact=settings.ingest_options.redact)
        except Exception:  # noqa: BLE001 - the answer already says what was wrong
            log.exception("could not write a dead letter")

    def read_back(inputs: Sequence[Sequence[bytes]]) -> None:
        """Model-call metrics of records the vectorised path wrote (it hands back no rows):
        their stored rows, read by request_id (runs after the answers are sent)."""
        ids = [str(r) for lines in inputs for r in _ids_of_lines(lines)
               if isinstance(r, (str, int, float)) and not isinstance(r, bool)]
        if not ids:
            return
        columns = ", ".join(f'"{c}"' for c in SAMPLE_METRIC_COLUMNS)
        rows = store.fetchall(
            # Rows ingested moments ago: the ingested_at bound lets DuckDB skip every older
            # row group by its min/max, instead of scanning all request_ids.
            f"SELECT {columns} FROM samples WHERE ingested_at >= now() - INTERVAL 10 MINUTE "
            "AND request_id IN (SELECT unnest(?::VARCHAR[]))", [ids]
        )
        metrics.observe_samples(rows)

    writer = SampleWriter(store, settings.ingest_options, metrics, read_back)
    prepare_limiters: list[anyio.CapacityLimiter] = []

    def prepare_limiter() -> anyio.CapacityLimiter:
        """Big sample bodies are checked in one worker thread at a time: the checks are pure
        Python, so more threads would not run them faster (the GIL), only hand the GIL back
        and forth every few milliseconds, and keep the writer thread and the event loop
        waiting for it longer. One at a time, each body is ready as early as it can be."""
        if not prepare_limiters:
            prepare_limiters.append(anyio.CapacityLimiter(PREPARE_THREADS))
        return prepare_limiters[0]

    # -- samples ---------------------------------------------------------------

    @router.post(
        "/v1/samples",
        summary="Ingest samples (one object, an array, or NDJSON)",
        response_model=SampleIngestAnswer,
        responses={400: {"model": SampleIngestAnswer, "description": "no valid record in the body"}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
                        "example": _SAMPLE_EXAMPLE,
                    },
                    "application/x-ndjson": {"schema": {"type": "string"},
                                             "example": json.dumps(_SAMPLE_EXAMPLE) + "\n"},
                },
            }
        },
    )
    async def post_samples(request: Request) -> Response:
        """Validates and redacts like `genobs ingest`; answers after commit with accepted/rejected
        counts and per-record errors (line = 1-based position in the array or NDJSON body)."""
        media = media_type(request)
        if media not in JSON_TYPES and media not in NDJSON_TYPES and not media.endswith("+json"):
            raise ApiError(415, f"Content-Type {media or '(none)'!r} is not supported: "
                                "use application/json (object or array) or application/x-ndjson")
        body = await read_body(request, settings.max_body_bytes)
        source = source_of(request, "http")
        ndjson = media in NDJSON_TYPES
        try:
            if len(body) <= INLINE_BODY_BYTES:
                prepared = prepare_samples(body, ndjson, source, settings.ingest_options)
            else:
                prepared = await anyio.to_thread.run_sync(
                    prepare_samples, body, ndjson, source, settings.ingest_options, limiter=prepare_limiter())
        except BadBody as exc:
            if exc.dead_letter:
                await run_in_threadpool(dead_letter_body, source, body, exc.detail)
            raise ApiError(exc.status, exc.detail) from None
        result = await writer.write(prepared)
        metrics.observe_ingest("samples", result.accepted, result.rejected)
        return JSONResponse(result.as_dict(), status_code=200 if result.accepted else 400)

    # -- GPU -------------------------------------------------------------------

    @router.post(
        "/v1/gpu",
        summary="Ingest GPU telemetry readings",
        response_model=GpuIngestAnswer,
        responses={400: {"model": GpuIngestAnswer, "description": "no valid reading in the body"}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]},
                                         "example": {"timestamp": "2025-01-15T10:00:00Z", "host": "gpu-node-1",
                                                     "gpu_index": 0, "utilization_pct": 87.0, "power_w": 301.5}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"},
                                 "description": "nvidia-smi --query-gpu=... --format=csv output (?host=NAME)"},
                    "text/plain": {"schema": {"type": "string"},
                                   "description": "a DCGM exporter /metrics scrape (?host=NAME when it has no Hostname label)"},
                },
            }
        },
    )
    async def post_gpu(request: Request) -> Response:
        """JSON readings with the DESIGN §3 GPU fields (one object, an array or NDJSON), an
        nvidia-smi CSV (`text/csv`) or a DCGM exporter scrape (`text/plain`)."""
        media = media_type(request)
        host = request.query_params.get("host") or None
        body = await read_body(request, settings.max_body_bytes)
        source = source_of(request, "http-gpu")
        if media == "text/csv":
            try:
                parsed = parse_smi_csv(body.decode("utf-8", errors="replace"), host=host, name="body")
            except SmiCsvError as exc:
                raise ApiError(400, str(exc)) from None
            readings: list[Any] = parsed.readings
            problems = [(f"line {line}: {message}", line) for line, message in parsed.errors]
        elif media == "text/plain":
            try:
                readings = parse_dcgm_metrics(body.decode("utf-8", errors="replace"), default_host=host).readings
            except ValueError as exc:
                raise ApiError(400, f"body: not Prometheus text format: {exc}") from None
            problems = []
        elif media in JSON_TYPES or media in NDJSON_TYPES or media.endswith("+json"):
            pieces: list[bytes] | None = None
            try:
                document = None if media in NDJSON_TYPES else _json_document(body)
            except _TooDeepForPython:
                document, pieces = None, jsontext.split_array(body) or [body]
            if document is None:
                readings = []
                problems = []
                for number, line in enumerate(pieces if pieces is not None else _split_lines(body), start=1):
                    if not line.strip():
                        continue
                    try:
                        readings.append(jsontext.loads(line))
                    except ValueError as exc:
                        problems.append((f"line {number}: invalid JSON: {exc}", number))
            else:
                readings = document if isinstance(document, list) else [document]
                problems = []
        else:
            raise ApiError(415, f"Content-Type {media or '(none)'!r} is not supported: use application/json, "
                                "application/x-ndjson, text/csv (nvidia-smi) or text/plain (DCGM exporter)")
        result = await run_in_threadpool(store_readings, store, readings, source=source)
        if problems:
            await run_in_threadpool(
                add_dead_letters, store, [(source, line, None, message) for message, line in problems],
                redact=settings.ingest_options.redact,
            )
            result.received += len(problems)
            result.rejected += len(problems)
            result.errors = [{"line": line, "message": message} for message, line in problems] + result.errors
        if result.accepted:
            metrics.observe_gpu(validate_readings(readings)[0])
        metrics.observe_ingest("gpu", result.accepted, result.rejected)
        if result.received == 0:
            raise ApiError(400, "body: no readings")
        return JSONResponse(result.as_dict(), status_code=200 if result.accepted else 400)

    # -- OTLP ------------------------------------------------------------------

    @router.post(
        "/v1/traces",
        summary="OTLP/HTTP trace export (protobuf or JSON); GenAI spans become samples",
        responses={200: {"description": "ExportTraceServiceResponse (partial_success names rejected spans)"},
                   400: {"model": ErrorAnswer}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        },
    )
    async def post_traces(request: Request) -> Response:
        """Point an OpenTelemetry OTLP/HTTP exporter at `http://HOST:PORT/v1/traces`. Spans with
        `gen_ai.*` attributes that name a model become samples (see docs/http-api.md for the
        mapping); other spans are ignored and counted (header X-Genobs-Spans-Ignored)."""
        media = media_type(request)
        if media not in (otlp.PROTOBUF, otlp.JSON):
            raise ApiError(415, f"Content-Type {media or '(none)'!r} is not supported: "
                                "OTLP/HTTP uses application/x-protobuf or application/json")
        body = await read_body(request, settings.max_body_bytes)
        try:
            export = otlp.decode_request(body, media)
        except otlp.OtlpDecodeError as exc:
            raise ApiError(400, str(exc)) from None
        mapping = otlp.map_request(export)
        rejected = len(mapping.invalid)
        message = "; ".join(problem for problem, _ in mapping.invalid[:5])
        if mapping.invalid:
            await run_in_threadpool(
                add_dead_letters, store, [(source_of(request, "otlp"), None, raw, problem)
                                          for problem, raw in mapping.invalid],
                redact=settings.ingest_options.redact)
        if mapping.samples:
            prepared = await anyio.to_thread.run_sync(
                prepare_records, mapping.samples, source_of(request, "otlp"), settings.ingest_options,
                limiter=prepare_limiter())
            result = await writer.write(prepared)
            rejected += result.rejected
            message = "; ".join([m for m in (message, *(str(e) for e in result.errors[:5])) if m])
            metrics.observe_ingest("spans", result.accepted, result.rejected)
        accepted = len(mapping.samples) + len(mapping.invalid) - rejected
        metrics.otlp_spans.labels("accepted").inc(accepted)
        metrics.otlp_spans.labels("rejected").inc(rejected)
        metrics.otlp_spans.labels("ignored").inc(mapping.ignored)
        response = Response(
            otlp.encode_response(media, rejected, message),
            media_type=media,
            headers={
                "X-Genobs-Spans-Accepted": str(accepted),
                "X-Genobs-Spans-Rejected": str(rejected),
                "X-Genobs-Spans-Ignored": str(mapping.ignored),
            },
        )
        return response

    return router


def _ids_of_lines(lines: Sequence[bytes]) -> list[Any]:
    ids: list[Any] = []
    for line in lines:
        try:
            value = jsontext.loads(line)
        except ValueError:      # not JSON, or too deep: a rejected line, no metrics
            continue
        if isinstance(value, dict):
            ids.append(value.get("request_id"))
    return ids

