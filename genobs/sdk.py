"""genobs Python SDK: log model calls to a genobs server from your service.

    from genobs.sdk import Client

    genobs = Client("http://genobs:8080", service="chat-api", model="chat-large",
                    model_version="2025-01-01")
    genobs.log(prompt=prompt, response=text, latency_ms=812.0, input_tokens=12, output_tokens=40)

    @genobs.traced()                       # times the call, logs it, errors become status
    def answer(prompt: str) -> str: ...

    with genobs.traced(prompt=prompt) as call:   # or as a context manager
        text = llm(prompt)
        call.update(response=text)

Guarantees:
- ``log`` never blocks and never raises: records go to a bounded in-memory queue; when it
  is full the oldest record is dropped and counted (``client.stats()["dropped"]``).
- A background thread sends batches (gzip NDJSON) and retries failures (connection
  errors, timeouts, 429, 5xx) with exponential backoff and jitter, for as long as the
  records are queued; a record leaves the queue only when the server acknowledged it
  (the server answers after commit). 4xx answers other than 408/429 are not retried:
  those records are counted as rejected and a warning is logged.
- ``flush(timeout)`` waits for the queue to drain; ``close()`` (also run at interpreter
  exit) flushes for up to ``close_timeout`` seconds.

Only the standard library and httpx are used: no server or DuckDB imports.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import functools
import gzip
import inspect
import logging
import os
import random
import threading
import time
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, TypeVar

import httpx

from genobs import jsontext

__all__ = ["Client", "TracedCall", "openai_fields"]

log = logging.getLogger("genobs.sdk")

USER_AGENT = "genobs-sdk/1"
F = TypeVar("F", bound=Callable[..., Any])

_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class Client:
    """A genobs collector client. Thread-safe; create one per process and reuse it.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8080`` (samples go to ``/v1/samples``).
        token: bearer token (default: ``GENOBS_INGEST_TOKEN`` from the environment).
        max_queue: records held while the server is slow or down; beyond it the oldest
            are dropped (counted).
        batch_size: records per POST.
        flush_interval: seconds a partial batch may wait before it is sent.
        timeout: seconds per HTTP request.
        max_backoff: cap of the retry delay in seconds.
        close_timeout: how long ``close()``/interpreter exit waits to send what is queued.
        **defaults: fields added to every record unless given (service, model,
            model_version, variant, tenant, region, ...).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        close_timeout: float = 5.0,
        **defaults: Any,
    ) -> None:
        self.url = url.rstrip("/")
        self._endpoint = self.url + "/v1/samples"
        self._token = token if token is not None else os.environ.get("GENOBS_INGEST_TOKEN") or None
        self.max_queue = max(1, int(max_queue))
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = float(flush_interval)
        self.timeout = float(timeout)
        self.max_backoff = float(max_backoff)
        self.close_timeout = float(close_timeout)
        self.defaults = dict(defaults)

        self._queue: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._closed = False
        self._flush_requested = False
        self._counts = {"logged": 0, "sent": 0, "dropped": 0, "rejected": 0, "retries": 0, "errors": 0}
        self._last_error: str | None = None
        self._http: httpx.Client | None = None
        self._thread = threading.Thread(target=self._run, name="genobs-sdk-sender", daemon=True)
        self._thread.start()
        _clients.add(self)

    # -- logging ---------------------------------------------------------------

    def log(self, **sample: Any) -> None:
        """Queue one sample (DESIGN §3 fields; unknown keys become attributes on the
        server). request_id and timestamp are filled in when absent. Never raises."""
        try:
            record = {**self.defaults, **sample}
            if not record.get("request_id"):
                record["request_id"] = uuid.uuid4().hex
            if record.get("timestamp") is None:
                record["timestamp"] = _now_iso()
            with self._lock:
                if self._closed:
                    self._counts["dropped"] += 1
                    return
                if len(self._queue) >= self.max_queue:
                    self._queue.popleft()
                    self._counts["dropped"] += 1
                self._seq += 1
                self._queue.append((self._seq, record))
                self._counts["logged"] += 1
                if len(self._queue) >= self.batch_size:
                    self._wake.notify()
        except Exception:  # noqa: BLE001 - never raise into the caller
            log.debug("genobs.sdk: could not queue a sample", exc_info=True)

    def traced(self, **fields: Any) -> "TracedCall":
        """Decorator or context manager timing a model call and logging it.

        ``fields`` are sample fields (model, model_version, prompt, ...). As a decorator,
        ``result_fields=callable(result) -> dict`` adds fields from the return value
        (e.g. ``openai_fields``), and ``prompt_arg="name"`` takes the prompt from that
        argument of the decorated function. Exceptions of the call are logged with
        status "error" (or "timeout") and error_type, then re-raised unchanged.
        """
        return TracedCall(self, fields)

    # -- control ---------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record was acknowledged (or dropped). True when empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._wake.notify()
            while self._queue:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._drained.wait(timeout=0.1 if remaining is None else min(remaining, 0.1))
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``, default ``close_timeout``) and stop the sender."""
        if self._closed:
            return not self._queue
        delivered = self.flush(self.close_timeout if timeout is None else timeout)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=2.0)
        if not delivered:
            log.warning("genobs.sdk: %d record(s) not delivered to %s at close (%s)",
                        len(self._queue), self.url, self._last_error or "server not reachable")
        return delivered

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """logged, sent, dropped, rejected, retries, errors, queued, last_error."""
        with self._lock:
            return {**self._counts, "queued": len(self._queue), "last_error": self._last_error}

    # -- sender ----------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                if (len(self._queue) < self.batch_size and not self._flush_requested
                        and attempt == 0):
                    self._wake.wait(timeout=self.flush_interval)
                    if self._closed:
                        return
                batch = [record for _, (_, record) in zip(range(self.batch_size), self._queue)]
                last_seq = self._queue[len(batch) - 1][0] if batch else 0
            if not batch:
                continue
            outcome = self._send(batch)
            with self._lock:
                if outcome in ("sent", "rejected"):
                    while self._queue and self._queue[0][0] <= last_seq:
                        self._queue.popleft()
                    attempt = 0
                    if not self._queue:
                        self._flush_requested = False
                        self._drained.notify_all()
                    continue
                attempt += 1
                self._counts["retries"] += 1
                delay = min(self.max_backoff, 0.1 * (2 ** min(attempt, 16)))
                delay = delay / 2 + random.uniform(0, delay / 2)   # "equal jitter"
                if isinstance(outcome, float):
                    delay = max(delay, min(outcome, self.max_backoff))  # Retry-After
                self._wake.wait(timeout=delay)
                if self._closed:
                    return

    def _client(self) -> httpx.Client:
        if self._http is None:
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-ndjson",
                       "Content-Encoding": "gzip"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            self._http = httpx.Client(timeout=self.timeout, headers=headers)
        return self._http

    def _send(self, batch: list[dict[str, Any]]) -> str | float:
        """POST one batch: "sent", "rejected" (not retryable), "retry" or a Retry-After delay."""
        try:
            body = gzip.compress(
                b"\n".join(jsontext.record_text(r) for r in batch),
                compresslevel=1,
            )
            response = self._client().post(self._endpoint, content=body)
        except httpx.HTTPError as exc:
            self._note_error(f"{exc.__class__.__name__}: {exc}")
            return "retry"
        except Exception as exc:  # noqa: BLE001 - the sender thread must survive anything
            self._note_error(f"{exc.__class__.__name__}: {exc}")
            return "retry"
        status = response.status_code
        if status == 200 or status == 400:
            try:
                answer = response.json()
                accepted, rejected = int(answer.get("accepted", 0)), int(answer.get("rejected", 0))
            except (ValueError, TypeError, AttributeError):
                accepted, rejected = (len(batch), 0) if status == 200 else (0, len(batch))
            with self._lock:
                self._counts["sent"] += accepted
                self._counts["rejected"] += rejected
            if rejected:
                errors = answer.get("errors") if isinstance(answer, dict) else None
                log.warning("genobs.sdk: server rejected %d record(s): %s", rejected,
                            (errors or [{}])[0].get("error", "") if errors else "")
            return "sent" if status == 200 else "rejected"
        if status == 413 and len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            self._note_error("413: batch too large, sending smaller batches")
            return "retry"
        if status in _RETRY_STATUSES:
            self._note_error(f"HTTP {status}")
            retry_after = response.headers.get("retry-after", "")
            return float(retry_after) if retry_after.replace(".", "", 1).isdigit() else "retry"
        with self._lock:
            self._counts["rejected"] += len(batch)
        self._note_error(f"HTTP {status}: {response.text[:200]}")
        log.warning("genobs.sdk: %s answered HTTP %d, %d record(s) dropped: %s",
                    self._endpoint, status, len(batch), response.text[:200])
        return "rejected"

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._counts["errors"] += 1
            self._last_error = message


class TracedCall:
    """What ``Client.traced(...)`` returns: a context manager and a decorator."""

    def __init__(self, client: Client, fields: Mapping[str, Any]) -> None:
        self._client = client
        self._result_fields: Callable[[Any], Mapping[str, Any]] | None = fields.get("result_fields")
        self._prompt_arg: str | None = fields.get("prompt_arg")
        self.fields: dict[str, Any] = {k: v for k, v in fields.items() if k not in ("result_fields", "prompt_arg")}
        self._started = 0.0
        self._first_token: float | None = None

    # context manager -----------------------------------------------------------

    def update(self, **fields: Any) -> None:
        """Add or change fields of the sample being recorded (response, tokens, ...)."""
        self.fields.update(fields)

    def first_token(self) -> None:
        """Mark the first streamed token now (sets ttft_ms)."""
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def __enter__(self) -> "TracedCall":
        self._started = time.perf_counter()
        self.fields.setdefault("timestamp", _now_iso())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    async def __aenter__(self) -> "TracedCall":
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        try:
            ended = time.perf_counter()
            fields = dict(self.fields)
            fields.setdefault("latency_ms", (ended - self._started) * 1000.0)
            if self._first_token is not None:
                fields.setdefault("ttft_ms", (self._first_token - self._started) * 1000.0)
            if exc is not None:
                name = type(exc).__name__
                timeout = isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or "timeout" in name.lower()
                fields.setdefault("status", "timeout" if timeout else "error")
                fields.setdefault("error_type", name)
            self._client.log(**fields)
        except Exception:  # noqa: BLE001 - never raise into the caller
            log.debug("genobs.sdk: could not record a traced call", exc_info=True)

    # decorator -----------------------------------------------------------------

    def _call_fields(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        fields = dict(self.fields)
        if self._prompt_arg:
            try:
                bound = inspect.signature(func).bind_partial(*args, **kwargs)
                if self._prompt_arg in bound.arguments:
                    fields.setdefault("prompt", bound.arguments[self._prompt_arg])
            except (TypeError, ValueError):
                pass
        return fields

    def _result(self, call: "TracedCall", result: Any) -> None:
        if self._result_fields is None:
            return
        try:
            call.update(**dict(self._result_fields(result)))
        except Exception:  # noqa: BLE001
            log.debug("genobs.sdk: result_fields failed", exc_info=True)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = TracedCall(self._client, self._call_fields(func, args, kwargs))
                with call:
                    result = await func(*args, **kwargs)
                    self._result(call, result)
                    return result
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call = TracedCall(self._client, self._call_fields(func, args, kwargs))
            with call:
                result = func(*args, **kwargs)
                self._result(call, result)
                return result
        return wrapper  # type: ignore[return-value]


def openai_fields(response: Any) -> dict[str, Any]:
    """Fields from an OpenAI-style chat completion (object or dict): response text,
    token usage, and the served model snapshot as model_version. Missing parts are skipped."""
    def get(obj: Any, name: str) -> Any:
        if obj is None:
            return None
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    fields: dict[str, Any] = {}
    choices = get(response, "choices") or []
    if choices:
        message = get(choices[0], "message")
        content = get(message, "content") if message is not None else get(choices[0], "text")
        if isinstance(content, str):
            fields["response"] = content
        if get(choices[0], "finish_reason") == "content_filter":
            fields["status"] = "filtered"
    usage = get(response, "usage")
    if usage is not None:
        tin = get(usage, "prompt_tokens") if get(usage, "prompt_tokens") is not None else get(usage, "input_tokens")
        tout = get(usage, "completion_tokens") if get(usage, "completion_tokens") is not None else get(usage, "output_tokens")
        if tin is not None:
            fields["input_tokens"] = tin
        if tout is not None:
            fields["output_tokens"] = tout
    served = get(response, "model")
    if isinstance(served, str):
        fields["model_version"] = served
    return fields


def _close_all() -> None:
    for client in list(_clients):
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass


atexit.register(_close_all)

