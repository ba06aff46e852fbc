"""Helpers for the SLO engine tests: samples written through the store, as ingest does."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import pyarrow as pa

from genobs.store import SAMPLE_COLUMNS, Store

T0 = datetime(2026, 11, 16, tzinfo=timezone.utc)
_ids = itertools.count()

_ARROW_TYPES = {
    "VARCHAR": pa.string(), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(), "BOOLEAN": pa.bool_(), "TINYINT": pa.int8(), "JSON": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()),
}


def sample(at: datetime, *, status: str = "ok", latency_ms: float | None = 500.0, service: str = "chat-api",
           request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": request_id or f"r{next(_ids)}", "timestamp": at, "service": service,
        "model": "chat-large", "model_version": "v1", "variant": "primary", "modality": "text",
        "status": status, "latency_ms": latency_ms, "ttft_ms": 100.0, "cost_usd": 0.01,
        "ingested_at": datetime.now(timezone.utc),
    }
    row.update(extra)
    return row


def write_samples(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        return
    arrays = []
    names = []
    for name, decl in SAMPLE_COLUMNS:
        kind = decl.split(" ")[0]
        arrays.append(pa.array([r.get(name) for r in rows], type=_ARROW_TYPES[kind]))
        names.append(name)
    store.upsert_samples(pa.Table.from_arrays(arrays, names=names))


def steady(start: datetime, end: datetime, per_minute: int, *, error_every: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """per_minute samples each minute in [start, end); every error_every-th one fails."""
    rows = []
    n = 0
    at = start
    while at < end:
        for k in range(per_minute):
            n += 1
            failed = error_every and n % error_every == 0
            rows.append(sample(at + timedelta(seconds=k * 60 / per_minute), status="error" if failed else "ok", **extra))
        at += timedelta(minutes=1)
    return rows


# --------------------------------------------------------------------------- a real receiver

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP receiver on 127.0.0.1 (port 0) that records what it is sent and answers with
    the status codes queued in ``responses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.responses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code = receiver.responses.pop(0) if receiver.responses else 200
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "json": json.loads(body or b"null"), "answered": code})
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.received if 200 <= r["answered"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
