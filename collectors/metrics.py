"""Prometheus metrics of the genobs server (prometheus-client, base units, ``genobs_`` prefix).

Model-call metrics are derived from the samples the server accepted (after validation and
defaults, read back from the store), GPU gauges from the last reading of each GPU.

Label cardinality is bounded: each metric family keeps at most ``max_series`` distinct
label sets; further new combinations are folded into one series whose labels are all
``"__other__"`` (counted in ``genobs_metrics_series_overflow_total``), and label values
are cut to 128 characters.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Any, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

OTHER = "__other__"
MAX_LABEL_VALUE = 128

# Model calls take tens of milliseconds (cache hits, small models) to minutes (long
# generations, image models): buckets from 25 ms to 10 min.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0,
                   60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0,
                30.0, 60.0)

CALL_LABELS = ("service", "model", "model_version", "variant")
GPU_LABELS = ("host", "gpu", "gpu_name")

# Columns read back for accepted samples, in this order.
SAMPLE_METRIC_COLUMNS = (
    "service", "model", "model_version", "variant", "status",
    "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd",
)


class _CallTotals:
    """What a batch of samples adds to the series of one label set."""

    __slots__ = ("statuses", "latencies", "ttfts", "input_tokens", "output_tokens", "cost")

    def __init__(self) -> None:
        self.statuses: dict[Any, int] = {}
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for each value, with one update per bucket.

    Uses prometheus-client's bucket counters (non-cumulative, one per upper bound); a
    version that stores them differently gets the per-value calls."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    counts: dict[int, int] = {}
    observed = 0.0
    for value in values:
        if value != value:     # NaN: observe() counts it in no bucket
            observed += value
            continue
        index = bisect_left(bounds, value)     # the first bound >= value (the last is +Inf)
        counts[index] = counts.get(index, 0) + 1
        observed += value
    total.inc(observed)
    for index, count in counts.items():
        buckets[index].inc(count)


class LabelLimiter:
    """Caps the number of distinct label sets per metric family."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self.overflowed = 0

    def labels(self, family: str, values: Sequence[Any]) -> tuple[str, ...]:
        key = tuple(("" if v is None else str(v))[:MAX_LABEL_VALUE] for v in values)
        with self._lock:
            seen = self._seen.setdefault(family, set())
            if key in seen:
                return key
            if len(seen) < self.max_series:
                seen.add(key)
                return key
            self.overflowed += 1
            return tuple(OTHER for _ in key)


class ServerMetrics:
    """The collectors' metrics (model calls, ingest, GPUs), in the platform's registry (each
    platform has its own: several may share a process)."""

    def __init__(self, max_series: int = 2000, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.limiter = LabelLimiter(max_series)
        r = self.registry
        self.requests = Counter(
            "genobs_requests", "Model calls received as samples, by outcome status.",
            CALL_LABELS + ("status",), registry=r,
        )
        self.latency = Histogram(
            "genobs_request_latency_seconds", "Model call latency (sample latency_ms).",
            CALL_LABELS, buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "genobs_time_to_first_token_seconds", "Time to first token of streamed model calls.",
            CALL_LABELS, buckets=TTFT_BUCKETS, registry=r,
        )
        self.input_tokens = Counter(
            "genobs_input_tokens", "Input (prompt) tokens of model calls.", CALL_LABELS, registry=r,
        )
        self.output_tokens = Counter(
            "genobs_output_tokens", "Output (completion) tokens of model calls.", CALL_LABELS, registry=r,
        )
        self.cost = Counter(
            "genobs_cost_usd", "Cost of model calls in US dollars.", CALL_LABELS, registry=r,
        )
        self.ingest_accepted = Counter(
            "genobs_ingest_accepted", "Records accepted and stored, by kind (samples, gpu, spans).",
            ("kind",), registry=r,
        )
        self.ingest_rejected = Counter(
            "genobs_ingest_rejected", "Records rejected (sent to dead_letter), by kind.",
            ("kind",), registry=r,
        )
        self.otlp_spans = Counter(
            "genobs_otlp_spans", "OTLP spans received, by outcome (accepted, rejected, ignored).",
            ("outcome",), registry=r,
        )
        self.gpu_utilization = Gauge(
            "genobs_gpu_utilization_ratio", "GPU utilization (0-1).", GPU_LABELS, registry=r,
        )
        self.gpu_memory_used = Gauge(
            "genobs_gpu_memory_used_bytes", "GPU memory in use.", GPU_LABELS, registry=r,
        )
        self.gpu_memory_total = Gauge(
            "genobs_gpu_memory_total_bytes", "GPU memory size.", GPU_LABELS, registry=r,
        )
        self.gpu_power = Gauge("genobs_gpu_power_watts", "GPU power draw.", GPU_LABELS, registry=r)
        self.gpu_temperature = Gauge(
            "genobs_gpu_temperature_celsius", "GPU temperature.", GPU_LABELS, registry=r,
        )
        self.gpu_sm_clock = Gauge("genobs_gpu_sm_clock_hertz", "GPU SM clock.", GPU_LABELS, registry=r)
        self.gpu_last_reading = Gauge(
            "genobs_gpu_last_reading_timestamp_seconds", "Time of the last stored reading of the GPU.",
            GPU_LABELS, registry=r,
        )
        self.series_overflow = Gauge(
            "genobs_metrics_series_overflow", "New label sets folded into __other__ (cardinality cap).",
            registry=r,
        )
        self.series_overflow.set_function(lambda: self.limiter.overflowed)

    # -- model calls -----------------------------------------------------------

    def observe_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows with SAMPLE_METRIC_COLUMNS, one per accepted sample (a batch at a time:
        the series are updated once per label set, not once per row)."""
        calls: dict[tuple[Any, ...], _CallTotals] = {}
        for service, model, version, variant, status, latency_ms, ttft_ms, tin, tout, cost in rows:
            key = (service, model, version, variant)
            totals = calls.get(key)
            if totals is None:
                totals = calls[key] = _CallTotals()
            totals.statuses[status] = totals.statuses.get(status, 0) + 1
            if latency_ms is not None:
                totals.latencies.append(latency_ms / 1000.0)
            if ttft_ms is not None:
                totals.ttfts.append(ttft_ms / 1000.0)
            if tin:
                totals.input_tokens += tin
            if tout:
                totals.output_tokens += tout
            if cost:
                totals.cost += cost
        limit = self.limiter.labels
        for key, totals in calls.items():
            call = limit("call", key)
            for status, count in totals.statuses.items():
                self.requests.labels(*limit("requests", (*key, status))).inc(count)
            if totals.latencies:
                observe_many(self.latency.labels(*call), totals.latencies)
            if totals.ttfts:
                observe_many(self.ttft.labels(*call), totals.ttfts)
            if totals.input_tokens:
                self.input_tokens.labels(*call).inc(totals.input_tokens)
            if totals.output_tokens:
                self.output_tokens.labels(*call).inc(totals.output_tokens)
            if totals.cost:
                self.cost.labels(*call).inc(totals.cost)

    def observe_ingest(self, kind: str, accepted: int, rejected: int) -> None:
        if accepted:
            self.ingest_accepted.labels(kind).inc(accepted)
        if rejected:
            self.ingest_rejected.labels(kind).inc(rejected)

    # -- GPUs ------------------------------------------------------------------

    def observe_gpu(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Set gauges from validated readings (the latest of each GPU wins)."""
        for reading in sorted(readings, key=lambda r: r["timestamp"]):
            labels = self.limiter.labels(
                "gpu", (reading.get("host"), reading.get("gpu_index"), reading.get("gpu_name"))
            )
            self._set(self.gpu_utilization, labels, reading.get("utilization_pct"), 0.01)
            self._set(self.gpu_memory_used, labels, reading.get("memory_used_mib"), 1024.0 * 1024.0)
            self._set(self.gpu_memory_total, labels, reading.get("memory_total_mib"), 1024.0 * 1024.0)
            self._set(self.gpu_power, labels, reading.get("power_w"), 1.0)
            self._set(self.gpu_temperature, labels, reading.get("temperature_c"), 1.0)
            self._set(self.gpu_sm_clock, labels, reading.get("sm_clock_mhz"), 1e6)
            self.gpu_last_reading.labels(*labels).set(reading["timestamp"].timestamp())

    @staticmethod
    def _set(gauge: Gauge, labels: tuple[str, ...], value: Any, factor: float) -> None:
        if value is None:
            # Unknown now: drop the series rather than keep showing a stale value.
            try:
                gauge.remove(*labels)
            except KeyError:
                pass
            return
        gauge.labels(*labels).set(float(value) * factor)

    # -- exposition ------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
