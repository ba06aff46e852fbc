"""GPU readings from a DCGM exporter's Prometheus /metrics text.

Metric and label names differ between exporter versions, so both are normalised here:
- metric names: ``DCGM_FI_DEV_*`` (dcgm-exporter 2.x+) and ``dcgm_*`` (1.x), optionally
  with a Prometheus unit suffix (``_hertz``, ``_bytes``, ``_ratio``, ``_percent``, ``_watts``);
- units: taken from the suffix, else from the HELP text ("(in MHz)", "(in MiB)", "(in %)"),
  else the exporter default; converted to the DESIGN §3 units (MHz, MiB, %, W, °C);
- labels: ``Hostname``/``hostname``, ``UUID``/``uuid``, ``modelName``/``model_name``,
  Kubernetes ``pod``/``namespace``/``container`` (also ``exported_*``) kept as attributes;
- DCGM "blank" sentinels (not found / not supported / no permission, e.g.
  9223372036854775794) and NaN become null. Samples without a ``gpu`` label (exporter
  self-metrics, dummy lines) are skipped and counted.
"""

from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import httpx
from prometheus_client.parser import text_string_to_metric_families

from genobs.collectors.gpu_records import decode_clock_event_reasons

# metric base name (lower case, unit suffix removed) → (reading field, default unit)
_METRICS: dict[str, tuple[str, str]] = {
    "dcgm_fi_dev_gpu_util": ("utilization_pct", "%"),
    "dcgm_gpu_utilization": ("utilization_pct", "%"),
    "dcgm_fi_dev_fb_used": ("memory_used_mib", "MiB"),
    "dcgm_fb_used": ("memory_used_mib", "MiB"),
    "dcgm_fi_dev_fb_free": ("_memory_free_mib", "MiB"),
    "dcgm_fb_free": ("_memory_free_mib", "MiB"),
    "dcgm_fi_dev_fb_reserved": ("_memory_reserved_mib", "MiB"),
    "dcgm_fi_dev_fb_total": ("memory_total_mib", "MiB"),
    "dcgm_fb_total": ("memory_total_mib", "MiB"),
    "dcgm_fi_dev_power_usage": ("power_w", "W"),
    "dcgm_power_usage": ("power_w", "W"),
    "dcgm_fi_dev_gpu_temp": ("temperature_c", "C"),
    "dcgm_gpu_temp": ("temperature_c", "C"),
    "dcgm_fi_dev_sm_clock": ("sm_clock_mhz", "MHz"),
    "dcgm_sm_clock": ("sm_clock_mhz", "MHz"),
    "dcgm_fi_dev_clock_throttle_reasons": ("throttle_reasons", "bitmask"),
    "dcgm_fi_dev_clocks_event_reasons": ("throttle_reasons", "bitmask"),
    "dcgm_fi_dev_ecc_dbe_vol_total": ("ecc_uncorrected", "count"),
    "dcgm_ecc_dbe_volatile_total": ("ecc_uncorrected", "count"),
}
# Used only when the primary metric above is absent.
_FALLBACKS: dict[str, tuple[str, str]] = {
    "dcgm_fi_prof_gr_engine_active": ("utilization_pct", "ratio"),
    "dcgm_fi_dev_power_usage_instant": ("power_w", "W"),
}

_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_hertz", "Hz"),
    ("_hz", "Hz"),
    ("_megahertz", "MHz"),
    ("_mhz", "MHz"),
    ("_bytes", "B"),
    ("_mebibytes", "MiB"),
    ("_mib", "MiB"),
    ("_ratio", "ratio"),
    ("_percent", "%"),
    ("_watts", "W"),
    ("_milliwatts", "mW"),
    ("_celsius", "C"),
)
_HELP_UNIT = re.compile(r"\(in ([^)]+)\)")
_HELP_UNITS = {
    "hz": "Hz", "mhz": "MHz", "b": "B", "bytes": "B", "mib": "MiB", "mb": "MiB",
    "%": "%", "percent": "%", "ratio": "ratio", "w": "W", "mw": "mW", "c": "C",
}
_TARGET_FACTORS: dict[tuple[str, str], float] = {
    ("Hz", "MHz"): 1e-6,
    ("MHz", "MHz"): 1.0,
    ("B", "MiB"): 1.0 / (1024 * 1024),
    ("MiB", "MiB"): 1.0,
    ("ratio", "%"): 100.0,
    ("%", "%"): 1.0,
    ("mW", "W"): 1e-3,
    ("W", "W"): 1.0,
    ("C", "C"): 1.0,
}
_FIELD_UNITS = {
    "utilization_pct": "%",
    "memory_used_mib": "MiB",
    "_memory_free_mib": "MiB",
    "_memory_reserved_mib": "MiB",
    "memory_total_mib": "MiB",
    "power_w": "W",
    "temperature_c": "C",
    "sm_clock_mhz": "MHz",
}

_HOST_LABELS = ("Hostname", "hostname", "host", "exported_hostname")
_UUID_LABELS = ("UUID", "uuid", "gpu_uuid")
_NAME_LABELS = ("modelName", "model_name", "DCGM_FI_DEV_NAME", "gpu_name")
_ATTRIBUTE_LABELS: dict[str, str] = {
    "pod": "pod", "exported_pod": "pod",
    "namespace": "namespace", "exported_namespace": "namespace",
    "container": "container", "exported_container": "container",
    "device": "device", "pci_bus_id": "pci_bus_id",
    "DCGM_FI_DRIVER_VERSION": "driver_version",
    "GPU_I_ID": "mig_instance_id", "GPU_I_PROFILE": "mig_profile",
}


def is_dcgm_blank(value: float) -> bool:
    """DCGM's "blank" sentinels (int32, int64, fp64 families) and NaN mean no value."""
    if math.isnan(value) or math.isinf(value):
        return True
    if 2147483632 <= value <= 2147483647:          # DCGM_INT32_BLANK .. INT32 max
        return True
    if value >= 9.2233720368547758e18 - 2048:       # DCGM_INT64_BLANK (0x7ffffffffffffff0) ..
        return True
    if 140737488355328.0 <= value <= 140737488355331.0:  # DCGM_FP64_BLANK .. NOT_PERMISSIONED
        return True
    return False


def _base_and_unit(name: str, help_text: str, default_unit: str | None = None) -> tuple[str, str | None]:
    lower = name.lower()
    if lower.endswith("_total") and lower not in _METRICS:
        lower = lower[: -len("_total")]
    suffix_unit = None
    known = {**_METRICS, **_FALLBACKS}
    for suffix, unit in _SUFFIX_UNITS:
        stem = lower[: -len(suffix)]
        if lower.endswith(suffix) and stem in known:
            target = _FIELD_UNITS.get(known[stem][0])
            # e.g. DCGM_FI_DEV_FB_USED_PERCENT is another metric, not FB_USED in percent
            if target is not None and (unit, target) in _TARGET_FACTORS:
                lower, suffix_unit = stem, unit
                break
    if suffix_unit:
        return lower, suffix_unit
    match = _HELP_UNIT.search(help_text or "")
    if match:
        unit = _HELP_UNITS.get(match.group(1).strip().lower())
        if unit:
            return lower, unit
    return lower, default_unit


def _convert(field_name: str, value: float, unit: str | None) -> float | int | str | None:
    if field_name == "throttle_reasons":
        return decode_clock_event_reasons(int(value))
    if field_name == "ecc_uncorrected":
        return int(value)
    target = _FIELD_UNITS.get(field_name)
    if target is None or unit is None:
        return float(value)
    factor = _TARGET_FACTORS.get((unit, target))
    if factor is None:
        return None  # a unit we cannot convert: better null than wrong
    return float(value) * factor


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = labels.get(name)
        if value:
            return value
    return None


@dataclass
class DcgmParseResult:
    readings: list[dict[str, Any]] = field(default_factory=list)
    skipped_samples: int = 0      # samples with no gpu label (exporter self-metrics, dummies)
    null_values: int = 0          # sentinel / NaN values turned into null


def parse_dcgm_metrics(
    text: str,
    *,
    scraped_at: datetime | None = None,
    default_host: str | None = None,
) -> DcgmParseResult:
    """Prometheus exposition text from a DCGM exporter → one reading per (host, gpu)."""
    now = scraped_at or datetime.now(timezone.utc)
    host_fallback = default_host or socket.gethostname()
    result = DcgmParseResult()
    by_gpu: dict[tuple[str, int], dict[str, Any]] = {}
    fallback_values: dict[tuple[str, int], dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            gpu_label = labels.get("gpu")
            if gpu_label is None or not gpu_label.strip().isdigit():
                result.skipped_samples += 1
                continue
            host = _first(labels, _HOST_LABELS) or host_fallback
            key = (host, int(gpu_label))
            reading = by_gpu.get(key)
            if reading is None:
                reading = {
                    "timestamp": now,
                    "host": host,
                    "gpu_index": int(gpu_label),
                    "gpu_uuid": None,
                    "gpu_name": None,
                    "attributes": {"collector": "dcgm-exporter"},
                }
                by_gpu[key] = reading
            reading["gpu_uuid"] = reading["gpu_uuid"] or _first(labels, _UUID_LABELS)
            reading["gpu_name"] = reading["gpu_name"] or _first(labels, _NAME_LABELS)
            for label, attribute in _ATTRIBUTE_LABELS.items():
                if labels.get(label) and attribute not in reading["attributes"]:
                    reading["attributes"][attribute] = labels[label]
            if sample.timestamp is not None:
                reading["timestamp"] = datetime.fromtimestamp(float(sample.timestamp), tz=timezone.utc)

            value = float(sample.value)
            blank = is_dcgm_blank(value)
            base, unit = _base_and_unit(sample.name, family.documentation)
            mapped = _METRICS.get(base)
            target = reading
            if mapped is None and base in _FALLBACKS:
                mapped = _FALLBACKS[base]
                target = fallback_values.setdefault(key, {})
            if mapped is None:
                if not blank:
                    reading["attributes"][sample.name] = value
                continue
            field_name, default_unit = mapped
            if blank:
                result.null_values += 1
                target.setdefault(field_name, None)
                continue
            target[field_name] = _convert(field_name, value, unit or default_unit)

    for key, reading in by_gpu.items():
        for field_name, value in fallback_values.get(key, {}).items():
            if reading.get(field_name) is None:
                reading[field_name] = value
        free = reading.pop("_memory_free_mib", None)
        reserved = reading.pop("_memory_reserved_mib", None)
        used = reading.get("memory_used_mib")
        if reading.get("memory_total_mib") is None and used is not None and free is not None:
            reading["memory_total_mib"] = used + free + (reserved or 0.0)
        result.readings.append(reading)
    return result


def host_of_url(url: str) -> str:
    """The host a scrape URL names; loopback means this machine."""
    hostname = urlparse(url).hostname or ""
    if hostname in ("", "localhost", "127.0.0.1", "::1"):
        return socket.gethostname()
    return hostname


class DcgmScrapeError(RuntimeError):
    pass


def scrape_dcgm(url: str, *, timeout: float = 5.0) -> DcgmParseResult:
    """GET a DCGM exporter's /metrics and parse it (host label missing → the URL's host)."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DcgmScrapeError(f"DCGM exporter {url}: {exc.__class__.__name__}: {exc}") from None
    if response.status_code != 200:
        raise DcgmScrapeError(f"DCGM exporter {url}: HTTP {response.status_code}")
    try:
        return parse_dcgm_metrics(response.text, default_host=host_of_url(url))
    except ValueError as exc:
        raise DcgmScrapeError(f"DCGM exporter {url}: not Prometheus text format: {exc}") from None
