"""GPU readings from ``nvidia-smi --query-gpu=... --format=csv`` output.

Example that fills every genobs field::

    nvidia-smi --query-gpu=timestamp,index,uuid,name,utilization.gpu,memory.used,memory.total,\
power.draw,temperature.gpu,clocks.sm,clocks_event_reasons.active,\
ecc.errors.uncorrected.volatile.total --format=csv -l 5 >> gpus.csv

The header row is required (``noheader`` output cannot be mapped). Units may be present
(``45 %``, ``1234 MiB``, ``70.5 W``) or not (``nounits``); values such as ``[N/A]`` and
``[Not Supported]`` become null. nvidia-smi writes its timestamp in the machine's local
time without a zone: it is read as local time of this machine unless ``tz`` is given.
Columns genobs has no field for are kept in ``attributes``. A repeated header row (from
``-l`` runs appended to one file) is skipped.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from genobs.collectors.gpu_records import decode_clock_event_reasons

# query field name (either spelling) → reading field
_FIELDS: dict[str, str] = {
    "timestamp": "timestamp",
    "index": "gpu_index",
    "uuid": "gpu_uuid",
    "gpu_uuid": "gpu_uuid",
    "name": "gpu_name",
    "gpu_name": "gpu_name",
    "utilization.gpu": "utilization_pct",
    "memory.used": "memory_used_mib",
    "memory.total": "memory_total_mib",
    "power.draw": "power_w",
    "power.draw.instant": "power_w",
    "power.draw.average": "_power_average_w",
    "temperature.gpu": "temperature_c",
    "clocks.sm": "sm_clock_mhz",
    "clocks.current.sm": "sm_clock_mhz",
    "clocks_throttle_reasons.active": "throttle_reasons",
    "clocks_event_reasons.active": "throttle_reasons",
    "clocks_throttle_reasons.active_mask": "throttle_reasons",
    "ecc.errors.uncorrected.volatile.total": "ecc_uncorrected",
}
_NUMERIC = {
    "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w", "_power_average_w",
    "temperature_c", "sm_clock_mhz",
}
_UNIT_FACTORS = {"%": 1.0, "mib": 1.0, "w": 1.0, "mhz": 1.0, "c": 1.0, "gib": 1024.0, "mw": 1e-3, "ghz": 1e3}
_HEADER_UNIT = re.compile(r"^(?P<name>[^\[]+?)\s*(\[(?P<unit>[^\]]*)\])?$")
_MISSING = re.compile(r"^\[?(n/a|not supported|unknown error|insufficient permissions|gpu requires reset|gpu is lost)\]?$", re.I)


class SmiCsvError(ValueError):
    """The CSV cannot be read; the message names the file and line."""


@dataclass
class SmiParseResult:
    readings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)   # (line, message)


def _number(text: str, header_unit: str | None) -> float:
    parts = text.split()
    unit = (parts[1] if len(parts) > 1 else header_unit or "").strip().lower()
    value = float(parts[0])
    return value * _UNIT_FACTORS.get(unit, 1.0)


def _timestamp(text: str, tz: tzinfo | None) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        local = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
        return local.astimezone(timezone.utc)
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def parse_smi_csv(
    text: str,
    *,
    host: str | None = None,
    tz: tzinfo | None = None,
    name: str = "<csv>",
) -> SmiParseResult:
    """nvidia-smi CSV text → readings; bad rows are reported as (line, message)."""
    result = SmiParseResult()
    try:
        # newline="" semantics: a lone \r inside a field is data, as the csv module wants
        rows = list(csv.reader(io.StringIO(text, newline=""), skipinitialspace=True))
    except csv.Error as exc:
        raise SmiCsvError(f"{name}: not CSV: {exc}") from None
    if not rows:
        return result
    header_cells = [cell.strip() for cell in rows[0]]
    columns: list[tuple[str, str | None]] = []
    for cell in header_cells:
        match = _HEADER_UNIT.match(cell)
        columns.append((match.group("name").strip(), match.group("unit")) if match else (cell, None))
    if not any(column in _FIELDS for column, _ in columns):
        raise SmiCsvError(
            f"{name}: line 1: no header row with nvidia-smi query fields (got {header_cells[:4]}); "
            "run nvidia-smi with --format=csv (not noheader)"
        )
    if "index" not in {c for c, _ in columns}:
        raise SmiCsvError(f"{name}: line 1: the query must include 'index' (the GPU index)")
    the_host = host or socket.gethostname()
    now = datetime.now(timezone.utc)
    for line_number, cells in enumerate(rows[1:], start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if [c.strip() for c in cells] == header_cells:
            continue  # header repeated by appended runs
        if len(cells) != len(columns):
            result.errors.append((line_number, f"expected {len(columns)} columns, got {len(cells)}"))
            continue
        reading: dict[str, Any] = {"host": the_host, "timestamp": now}
        attributes: dict[str, Any] = {"collector": "nvidia-smi"}
        try:
            for (column, unit), raw in zip(columns, cells):
                value = raw.strip()
                target = _FIELDS.get(column)
                missing = value == "" or bool(_MISSING.match(value))
                if target is None:
                    if not missing:
                        attributes[column] = value
                    continue
                if missing:
                    reading.setdefault(target, None)
                    continue
                try:
                    if target == "timestamp":
                        reading[target] = _timestamp(value, tz)
                    elif target == "gpu_index":
                        reading[target] = int(value)
                    elif target == "throttle_reasons":
                        reading[target] = decode_clock_event_reasons(int(value, 16 if value.lower().startswith("0x") else 10))
                    elif target == "ecc_uncorrected":
                        reading[target] = int(float(value))
                    elif target in _NUMERIC:
                        reading[target] = _number(value, unit)
                    else:
                        reading[target] = value
                except ValueError:
                    raise SmiCsvError(f"{column}: cannot read {value!r}") from None
        except SmiCsvError as exc:
            result.errors.append((line_number, str(exc)))
            continue
        average = reading.pop("_power_average_w", None)
        if reading.get("power_w") is None and average is not None:
            reading["power_w"] = average
        reading["attributes"] = attributes
        result.readings.append(reading)
    return result


def read_smi_csv(path: str | Path, *, host: str | None = None, tz: tzinfo | None = None) -> SmiParseResult:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SmiCsvError(f"{file}: cannot read: {exc.strerror or exc}") from None
    return parse_smi_csv(text, host=host, tz=tz, name=str(file))
