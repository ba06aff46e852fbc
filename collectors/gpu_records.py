"""GPU telemetry readings: validation against genobs.records.GPU_FIELDS, and storage.

Every GPU source (NVML, DCGM exporter scrape, nvidia-smi CSV, JSON posted to /v1/gpu)
produces plain dicts with the DESIGN §3 field names; this module checks them, turns the
valid ones into an Arrow table for ``Store.upsert_gpu_telemetry`` and sends the rejected
ones, with a reason naming the field, to ``dead_letter``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa

from genobs.collectors.pipeline import add_dead_letters
import re

from genobs.records import (
    EPOCH_MS_FROM, GPU_FIELDS, IDENTIFIER_BAD_CHARS_PY, MAX_EPOCH_US, MAX_EXACT_INTEGER, MAX_TIMESTAMP_TEXT,
    MIN_TIMESTAMP_TEXT, FieldSpec, Kind,
)

GPU_FIELD_SPECS: dict[str, FieldSpec] = {f.name: f for f in GPU_FIELDS}

# The sample rules (docs/ingest.md): a number is epoch seconds below EPOCH_MS_FROM, else
# milliseconds; 1970-01-01 <= t < 10000-01-01; integers within ±(2^53-1) (gpu_index: an
# INTEGER column); host, gpu_uuid and gpu_name without control or bidi characters.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RANGE = f"{MIN_TIMESTAMP_TEXT} to {MAX_TIMESTAMP_TEXT}"
_INT_LIMITS = {"gpu_index": 2**31 - 1}
_BAD_CHARS = re.compile(IDENTIFIER_BAD_CHARS_PY)
MAX_ERRORS_REPORTED = 100

# NVML clock-event ("throttle") reason bits (nvml.h nvmlClocksEventReason*), shared by
# NVML, DCGM (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS / ..._CLOCKS_EVENT_REASONS) and
# nvidia-smi (clocks_event_reasons.active).
CLOCK_EVENT_REASONS: tuple[tuple[int, str], ...] = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)


def decode_clock_event_reasons(mask: int | None) -> str | None:
    """A bitmask as comma-separated reason names; 0 → "none", None → None (unknown)."""
    if mask is None:
        return None
    mask = int(mask)
    if mask == 0:
        return "none"
    names = [name for bit, name in CLOCK_EVENT_REASONS if mask & bit]
    known = 0
    for bit, _ in CLOCK_EVENT_REASONS:
        known |= bit
    if mask & ~known:
        names.append(hex(mask & ~known))
    return ",".join(names)


class GpuRecordError(ValueError):
    """One reading is invalid; the message names the field."""


@dataclass
class GpuIngestResult:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def parse_timestamp(value: Any) -> datetime:
    """RFC 3339 text or epoch seconds/milliseconds → aware UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, bool):
        raise GpuRecordError(f"timestamp: expected RFC 3339 text or epoch seconds/ms, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise GpuRecordError(f"timestamp: not a finite number: {value!r}")
        if not 0 <= value < EPOCH_MS_FROM * 1000:
            raise GpuRecordError(f"timestamp: {value!r} is outside the accepted range {_RANGE}")
        if value == math.floor(value):    # whole: exact integer microseconds
            micros = int(value) * (1_000_000 if value < EPOCH_MS_FROM else 1000)
        else:
            micros = round((value if value < EPOCH_MS_FROM else value / 1000.0) * 1_000_000)
        return _EPOCH + timedelta(microseconds=micros)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return parse_timestamp(number)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise GpuRecordError(f"timestamp: not RFC 3339 or epoch seconds/ms: {value!r}") from None
        try:
            moment = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except OverflowError:
            moment = None
        if moment is None or not 0 <= (moment - _EPOCH) // timedelta(microseconds=1) < MAX_EPOCH_US:
            raise GpuRecordError(f"timestamp: {value!r} is outside the accepted range {_RANGE}")
        return moment
    raise GpuRecordError(f"timestamp: expected RFC 3339 text or epoch seconds/ms, got {type(value).__name__}")


def _check_number(spec: FieldSpec, value: Any, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value) if not integer else int(value, 0)
            except ValueError:
                raise GpuRecordError(f"{spec.name}: expected a number, got {value!r}") from None
        else:
            raise GpuRecordError(f"{spec.name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise GpuRecordError(f"{spec.name}: expected a finite number, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise GpuRecordError(f"{spec.name}: expected an integer, got {value!r}")
        value = int(value)
        limit = _INT_LIMITS.get(spec.name, MAX_EXACT_INTEGER)
        if abs(value) > limit:
            raise GpuRecordError(f"{spec.name}: {value} is outside the integer range -{limit}..{limit}")
    if spec.minimum is not None and value < spec.minimum:
        raise GpuRecordError(f"{spec.name}: must be >= {spec.minimum:g}, got {value!r}")
    return value if integer else float(value)


def validate_reading(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One reading → a row with every GPU column; unknown keys go into attributes."""
    if not isinstance(raw, Mapping):
        raise GpuRecordError(f"reading: expected a JSON object, got {type(raw).__name__}")
    row: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in GPU_FIELD_SPECS and key != "source":
            attributes[str(key)] = value
    given_attributes = raw.get("attributes")
    if given_attributes is not None:
        if not isinstance(given_attributes, Mapping):
            raise GpuRecordError("attributes: expected an object of scalars")
        attributes = {**attributes, **given_attributes}
    for key, value in attributes.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise GpuRecordError(f"attributes.{key}: expected a scalar, got {type(value).__name__}")
    for spec in GPU_FIELDS:
        if spec.name == "attributes":
            continue
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                raise GpuRecordError(f"{spec.name}: required")
            row[spec.name] = None
            continue
        if spec.kind is Kind.TIMESTAMP:
            row[spec.name] = parse_timestamp(value)
        elif spec.kind is Kind.STRING:
            if not isinstance(value, str):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(value)
                else:
                    raise GpuRecordError(f"{spec.name}: expected text, got {type(value).__name__}")
            if spec.required and not value.strip():
                raise GpuRecordError(f"{spec.name}: required (empty)")
            if spec.max_length is not None and len(value) > spec.max_length:
                raise GpuRecordError(f"{spec.name}: longer than {spec.max_length} characters")
            if _BAD_CHARS.search(value) and spec.name != "throttle_reasons":
                raise GpuRecordError(f"{spec.name}: contains a control or bidirectional-formatting character")
            row[spec.name] = value
        elif spec.kind is Kind.INTEGER:
            row[spec.name] = _check_number(spec, value, integer=True)
        elif spec.kind is Kind.NUMBER:
            row[spec.name] = _check_number(spec, value, integer=False)
        else:  # pragma: no cover - GPU_FIELDS uses only the kinds above
            row[spec.name] = value
    row["attributes"] = attributes or None
    return row


def validate_readings(
    readings: Iterable[Any],
) -> tuple[list[dict[str, Any]], list[tuple[int, Any, str]]]:
    """Split readings into valid rows and (index 1-based, raw, message) rejections."""
    valid: list[dict[str, Any]] = []
    rejected: list[tuple[int, Any, str]] = []
    for index, raw in enumerate(readings, start=1):
        try:
            valid.append(validate_reading(raw))
        except GpuRecordError as exc:
            rejected.append((index, raw, str(exc)))
    return valid, rejected


def readings_table(rows: Sequence[Mapping[str, Any]], source: str) -> pa.Table:
    """Validated rows → the Arrow table ``Store.upsert_gpu_telemetry`` takes."""
    def column(name: str) -> list[Any]:
        return [r.get(name) for r in rows]

    return pa.table(
        {
            "timestamp": pa.array(column("timestamp"), type=pa.timestamp("us", tz="UTC")),
            "host": pa.array(column("host"), type=pa.string()),
            "gpu_index": pa.array(column("gpu_index"), type=pa.int32()),
            "gpu_uuid": pa.array(column("gpu_uuid"), type=pa.string()),
            "gpu_name": pa.array(column("gpu_name"), type=pa.string()),
            "utilization_pct": pa.array(column("utilization_pct"), type=pa.float64()),
            "memory_used_mib": pa.array(column("memory_used_mib"), type=pa.float64()),
            "memory_total_mib": pa.array(column("memory_total_mib"), type=pa.float64()),
            "power_w": pa.array(column("power_w"), type=pa.float64()),
            "temperature_c": pa.array(column("temperature_c"), type=pa.float64()),
            "sm_clock_mhz": pa.array(column("sm_clock_mhz"), type=pa.float64()),
            "throttle_reasons": pa.array(column("throttle_reasons"), type=pa.string()),
            "ecc_uncorrected": pa.array(column("ecc_uncorrected"), type=pa.int64()),
            "source": pa.array([source] * len(rows), type=pa.string()),
            "attributes": pa.array(
                [None if r.get("attributes") is None else json.dumps(r["attributes"], default=str) for r in rows],
                type=pa.string(),
            ),
        }
    )


def _raw_text(raw: Any) -> str:
    try:
        return json.dumps(raw, default=str)
    except (TypeError, ValueError, RecursionError):
        return "<a reading that cannot be written as JSON>"


def store_readings(store: Any, readings: Iterable[Any], *, source: str) -> GpuIngestResult:
    """Validate and store readings; rejected ones go to dead_letter. Returns counts."""
    items = list(readings)
    valid, rejected = validate_readings(items)
    result = GpuIngestResult(received=len(items), accepted=len(valid), rejected=len(rejected))
    if valid:
        store.upsert_gpu_telemetry(readings_table(valid, source))
    if rejected:
        add_dead_letters(store, [(source, index, _raw_text(raw), message) for index, raw, message in rejected])
        result.errors = [
            {"line": index, "message": message} for index, _, message in rejected[:MAX_ERRORS_REPORTED]
        ]
    return result
