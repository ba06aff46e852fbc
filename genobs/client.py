"""A small HTTP client the CLI uses to talk to a running ``genobs serve``.

While a server holds the database file, CLI commands send their work to it instead of
opening the file (DESIGN §2). Secrets come from the environment (GENOBS_INGEST_TOKEN).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Sequence

import httpx

from genobs.store import recorded_server_url

USER_AGENT = "genobs-cli/1"
# Bodies are split below the server's default limit (32 MiB), leaving room.
DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
MAX_REPORTED_ERRORS = 100


class ServerRequestError(RuntimeError):
    """The server refused or failed a request; the message says what to do."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def ingest_token() -> str | None:
    return os.environ.get("GENOBS_INGEST_TOKEN") or None


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when a genobs server answers /healthz at ``url``."""
    try:
        response = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        return response.json().get("status") == "ok"
    except ValueError:
        return False


def running_server(db_path: Path) -> str | None:
    """The URL of a healthy server holding ``db_path``, if there is one."""
    url = recorded_server_url(db_path)
    return url if url and healthy(url) else None


def _headers(token: str | None, source: str | None, content_type: str) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Content-Type": content_type, "Content-Encoding": "gzip"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if source:
        headers["X-Genobs-Source"] = source
    return headers


def _explain(url: str, response: httpx.Response) -> ServerRequestError:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text[:500]
    status = response.status_code
    if status == 401:
        hint = " (set GENOBS_INGEST_TOKEN to the server's token)"
    elif status == 413:
        hint = " (raise server.max_body_bytes in genobs.yaml, or send smaller files)"
    else:
        hint = ""
    return ServerRequestError(f"server {url} answered HTTP {status}: {detail}{hint}", status)


def _chunks(lines: Sequence[bytes], max_bytes: int) -> list[tuple[int, list[bytes]]]:
    """Split lines into (first index, lines) chunks of at most ``max_bytes`` each."""
    chunks: list[tuple[int, list[bytes]]] = []
    current: list[bytes] = []
    start = 0
    size = 0
    for index, line in enumerate(lines):
        if current and size + len(line) + 1 > max_bytes:
            chunks.append((start, current))
            current, size, start = [], 0, index
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append((start, current))
    return chunks


def post_sample_lines(
    url: str,
    lines: list[bytes],
    token: str | None = None,
    *,
    source: str | None = None,
    timeout: float = 300.0,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict[str, Any]:
    """POST JSON object texts (one per item) to /v1/samples as gzip NDJSON.

    Large inputs are sent in several requests; the answers are merged into one
    /v1/samples answer whose error ``line`` numbers count from 1 over all of ``lines``.
    A 400 (no valid record) is an answer, not an exception; 401/413/415/5xx and
    connection failures raise ServerRequestError.
    """
    token = token if token is not None else ingest_token()
    endpoint = url.rstrip("/") + "/v1/samples"
    merged: dict[str, Any] = {
        "received": 0, "accepted": 0, "inserted": 0, "updated": 0, "rejected": 0,
        "redactions": {}, "errors": [],
    }
    with httpx.Client(timeout=timeout, headers=_headers(token, source, "application/x-ndjson")) as http:
        for start, chunk in _chunks(lines, chunk_bytes):
            body = gzip.compress(b"\n".join(chunk) + b"\n", compresslevel=3)
            try:
                response = http.post(endpoint, content=body)
            except httpx.HTTPError as exc:
                raise ServerRequestError(f"cannot reach server {url}: {exc}") from None
            if response.status_code not in (200, 400):
                raise _explain(url, response)
            try:
                answer = response.json()
            except ValueError:
                raise ServerRequestError(f"server {url} sent a non-JSON answer: {response.text[:200]}") from None
            if response.status_code == 400 and "received" not in answer:
                raise _explain(url, response)
            for key in ("received", "accepted", "inserted", "updated", "rejected"):
                merged[key] += int(answer.get(key, 0))
            for name, count in (answer.get("redactions") or {}).items():
                merged["redactions"][name] = merged["redactions"].get(name, 0) + int(count)
            for error in answer.get("errors") or []:
                if len(merged["errors"]) >= MAX_REPORTED_ERRORS:
                    break
                if isinstance(error.get("line"), int):
                    error = {**error, "line": error["line"] + start}
                merged["errors"].append(error)
    return merged


def post_gpu_readings(url: str, readings: list[dict[str, Any]], token: str | None = None,
                      *, source: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """POST GPU readings (JSON-able dicts; datetimes as ISO text) to /v1/gpu."""
    import json

    token = token if token is not None else ingest_token()
    body = gzip.compress(json.dumps(readings, default=_iso).encode(), compresslevel=3)
    try:
        response = httpx.post(url.rstrip("/") + "/v1/gpu", content=body, timeout=timeout,
                              headers=_headers(token, source, "application/json"))
    except httpx.HTTPError as exc:
        raise ServerRequestError(f"cannot reach server {url}: {exc}") from None
    if response.status_code not in (200, 400):
        raise _explain(url, response)
    answer = response.json()
    if response.status_code == 400 and "received" not in answer:
        raise _explain(url, response)
    return answer


def _iso(value: Any) -> str:
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def post_json(url: str, path: str, body: dict[str, Any], *, token: str | None = None,
              timeout: float = 3600.0) -> Any:
    """POST a JSON body to a route of the server (e.g. /v1/evaluate) and return its JSON
    answer; raises ServerRequestError with the server's reason."""
    headers = {"User-Agent": USER_AGENT}
    token = token or ingest_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    target = url.rstrip("/") + path
    try:
        response = httpx.post(target, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServerRequestError(f"cannot reach the server at {url}: {exc}") from None
    if response.status_code >= 300:
        raise _explain(url, response)
    return response.json()


def server_health(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The server's /healthz answer, or None when it does not answer."""
    try:
        response = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
