"""Reading input files as JSON object lines to send to a running server.

While `genobs serve` holds the database, `genobs ingest` posts records to its API, which
validates, redacts and dead-letters them exactly as a local ingest would. ``--map`` and
``--set`` are applied here, record by record, before sending (the API takes records in the
sample contract's own field names).
"""

from __future__ import annotations

import gzip
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from genobs.collectors.files import GZIP_MAGIC, InputError, detect_format
from genobs.collectors.validation import DERIVED_TIME_FIELDS, ROW_HASH, FieldMapping
from genobs.collectors.pipeline import json_array_lines


def _read_bytes(path: str) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file")
        data = p.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError) as exc:
            raise InputError(f"{path}: truncated or corrupt gzip stream ({exc})") from None
    if not data.strip():
        raise InputError(f"{path}: empty file, nothing to ingest")
    return data


def _tabular_lines(path: str, data: bytes, kind: str) -> list[bytes]:
    import tempfile

    from genobs.store import Store

    with tempfile.NamedTemporaryFile(suffix="." + kind) as tmp:
        tmp.write(data)
        tmp.flush()
        reader = ("read_csv(?, header = true, all_varchar = true, quote = '\"', escape = '\"', "
                  "null_padding = true, strict_mode = false)") if kind == "csv" else "read_parquet(?)"
        scratch = Store.memory()
        try:
            rows = scratch.fetchall(f"SELECT CAST(to_json(t) AS VARCHAR) FROM {reader} t", [tmp.name])
        except Exception as exc:
            raise InputError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
        finally:
            scratch.close()
    return [row[0].encode() for row in rows]


def _epoch_or_iso(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
            x = float(value)
            return datetime.fromtimestamp(x / 1000.0 if abs(x) >= 1e11 else x, tz=timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None
    return None


def apply_mapping(line: bytes, mapping: FieldMapping) -> bytes:
    """One record with --map / --set applied (left as is when it is not a JSON object,
    so the server rejects it with the reason)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):   # the server says what is wrong with it
        return line
    if not isinstance(record, dict):
        return line
    out = dict(record)
    for field, column in mapping.columns.items():
        if field in DERIVED_TIME_FIELDS:
            continue
        if field == "request_id" and column == ROW_HASH:
            import hashlib

            out["request_id"] = hashlib.md5(line).hexdigest()
            continue
        if column in record:
            out.pop(column, None)
            out[field] = record[column]
    if all(d in mapping.columns for d in DERIVED_TIME_FIELDS):
        start = _epoch_or_iso(record.get(mapping.columns["start_time"]))
        end = _epoch_or_iso(record.get(mapping.columns["end_time"]))
        for d in DERIVED_TIME_FIELDS:
            out.pop(mapping.columns[d], None)
        if start is not None and "timestamp" not in out:
            out["timestamp"] = start.isoformat()
        if start is not None and end is not None and "latency_ms" not in out:
            out["latency_ms"] = (end - start).total_seconds() * 1000.0
    for field, value in mapping.constants.items():
        out.setdefault(field, value)
    return json.dumps(out, ensure_ascii=False).encode()


def read_records_as_lines(path: str, fmt: str | None, mapping: FieldMapping) -> list[bytes]:
    """The records of a file as JSON object texts, mapped, ready for POST /v1/samples."""
    data = _read_bytes(path)
    kind = detect_format(path, data[:8], fmt)
    if kind in ("csv", "parquet"):
        lines = _tabular_lines(path, data, kind)
    elif kind == "json" and data.lstrip().startswith(b"["):
        try:
            lines = json_array_lines(data) or []
        except ValueError as exc:
            raise InputError(f"{path}: invalid JSON array: {exc}") from None
    else:
        lines = [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
    if mapping.columns or mapping.constants:
        lines = [apply_mapping(line, mapping) for line in lines]
    return lines
