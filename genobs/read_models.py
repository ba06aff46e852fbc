"""Read-only summaries of the store that the demo report (and the dashboards) show: each
function is one parameterized query over the store, returning plain rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from genobs.store import Store

Rows = list[tuple[Any, ...]]


def samples_inventory(store: Store) -> Rows:
    """(service, model, version, variant, samples, first, last) per deployment arm."""
    return store.fetchall(
        "SELECT service, model, model_version, variant, count(*), "
        "strftime(min(timestamp), '%Y-%m-%d %H:%M'), strftime(max(timestamp), '%Y-%m-%d %H:%M') "
        "FROM samples GROUP BY ALL ORDER BY service, min(timestamp)")


def dead_letter_count(store: Store) -> int:
    row = store.fetchone("SELECT count(*) FROM dead_letter")
    return int(row[0]) if row else 0


def gpu_reading_counts(store: Store) -> tuple[int, int]:
    """(GPUs, readings) in gpu_telemetry."""
    row = store.fetchone("SELECT count(DISTINCT host || gpu_index), count(*) FROM gpu_telemetry")
    return (int(row[0]), int(row[1])) if row else (0, 0)


def hallucination_by_arm(store: Store, since: datetime | str) -> Rows:
    """(version, variant, scored, mean score, hallucinated share) for samples at or after ``since``."""
    return store.fetchall(
        "SELECT s.model_version, s.variant, count(*), avg(sc.value), "
        "avg(CASE WHEN sc.label = 'hallucinated' THEN 1.0 ELSE 0.0 END) "
        "FROM scores sc JOIN samples s USING (request_id) "
        "WHERE sc.metric = 'hallucination_score' AND sc.error IS NULL AND s.timestamp >= ? "
        "GROUP BY ALL ORDER BY 1, 2", [since])


def clip_by_version(store: Store) -> Rows:
    """(version, scored, mean clip_score)."""
    return store.fetchall(
        "SELECT s.model_version, count(*), avg(sc.value) FROM scores sc JOIN samples s USING (request_id) "
        "WHERE sc.metric = 'clip_score' AND sc.error IS NULL GROUP BY ALL ORDER BY 1")


def drift_run_rows(store: Store, run_id: str) -> Rows:
    """(feature, method, statistic, p-value, drifted) of one drift run, drifted first."""
    return store.fetchall(
        "SELECT feature, method, statistic, p_value, drifted FROM drift_results WHERE run_id = ? "
        "ORDER BY drifted DESC, feature", [run_id])


def worst_hours(store: Store, limit: int = 3, min_requests: int = 20) -> Rows:
    """(service, hour, requests, error rate, p95 latency ms): the hours with the most errors."""
    return store.fetchall(
        "SELECT service, strftime(time_bucket(INTERVAL 1 HOUR, timestamp), '%Y-%m-%d %H:00') AS hour, count(*), "
        "avg(CASE WHEN status IN ('error', 'timeout') THEN 1.0 ELSE 0.0 END) AS error_rate, "
        "quantile_cont(latency_ms, 0.95) AS p95_ms "
        "FROM samples GROUP BY ALL HAVING count(*) >= ? ORDER BY error_rate DESC, p95_ms DESC LIMIT ?",
        [min_requests, limit])


def gpu_throttle_episodes(store: Store) -> Rows:
    """(host, gpu, from, to, max °C, min SM MHz, readings) per GPU that reported throttling."""
    return store.fetchall(
        "SELECT host, gpu_index, strftime(min(timestamp), '%Y-%m-%d %H:%M'), strftime(max(timestamp), '%H:%M'), "
        "max(temperature_c), min(sm_clock_mhz), count(*) FROM gpu_telemetry "
        "WHERE throttle_reasons IS NOT NULL AND throttle_reasons NOT IN ('none', '') GROUP BY ALL ORDER BY 1, 2")
