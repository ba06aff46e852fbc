"""What the judge reads: each metric of the two arms, aggregated in DuckDB through the store.

A continuous metric comes back as its distinct values with a count per arm (``GROUP BY
value``), which is all the exact rank test needs; a proportion metric as event and trial
counts. Scores (hallucination_score, clip_score, ...) are joined from ``scores`` by
request_id. SQL is parameterised; column names come only from the fixed lists in
canary_config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from genobs.slo.canary_config import CanaryConfigError, CanarySpec, MetricSpec
from genobs.slo.canary_stats import Tally
from genobs.store import Store


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Arms:
    baseline: dict[str, str]
    canary: dict[str, str]
    filter: dict[str, str]

    def describe(self, which: str) -> str:
        sel = self.baseline if which == "baseline" else self.canary
        return ",".join(f"{k}={v}" for k, v in sel.items())


@dataclass(frozen=True)
class ContinuousData:
    canary: Tally
    baseline: Tally
    missing_canary: int
    missing_baseline: int


@dataclass(frozen=True)
class CountData:
    events_canary: int
    trials_canary: int
    events_baseline: int
    trials_baseline: int


# --------------------------------------------------------------------------- times

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """The project's duration grammar ("30s", "10m", "2h", "7d", "1w")."""
    try:
        from genobs.times import parse_duration as shared  # type: ignore[attr-defined]
    except ImportError:
        shared = None
    if shared is not None:
        return shared(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"duration {text!r}: expected e.g. 30s, 10m, 2h, 7d, 1w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """RFC 3339, epoch seconds/milliseconds, or a duration meaning that long before now."""
    try:
        from genobs.times import parse_instant as shared  # type: ignore[attr-defined]
    except ImportError:
        shared = None
    if shared is not None:
        return shared(text, now=now)
    now = now or datetime.now(timezone.utc)
    raw = str(text).strip()
    if _DURATION.match(raw):
        return now - parse_duration(raw)
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        value = float(raw)
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r}: expected RFC 3339, epoch seconds/ms or a duration like 2h") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def resolve_window(spec: CanarySpec, since: str | datetime | None, until: str | datetime | None,
                   *, now: datetime | None = None) -> Window:
    now = now or datetime.now(timezone.utc)
    end = until if isinstance(until, datetime) else (parse_instant(until, now=now) if until else now)
    if since is None:
        start = end - parse_duration(spec.window)
    else:
        start = since if isinstance(since, datetime) else parse_instant(since, now=now)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    if start >= end:
        raise ValueError(f"window: start {start.isoformat()} is not before end {end.isoformat()}")
    return Window(start.astimezone(timezone.utc), end.astimezone(timezone.utc))


# --------------------------------------------------------------------------- SQL


def _conditions(selector: dict[str, str]) -> tuple[str, list[Any]]:
    # Field names come from SELECTOR_FIELDS only (checked by parse_selector / the spec).
    parts = [f's."{field}" = ?' for field in selector]
    return (" AND ".join(parts) or "TRUE"), list(selector.values())


class ArmReader:
    """Runs the per-metric aggregations for one (arms, window)."""

    def __init__(self, store: Store, arms: Arms, window: Window) -> None:
        self.store = store
        self.arms = arms
        self.window = window
        self._score_models: dict[str, int] = {}

    def _base(self, metric: MetricSpec) -> tuple[str, list[Any]]:
        """FROM/WHERE selecting the samples of both arms, with `arm` = 'c' or 'b'."""
        canary_sql, canary_params = _conditions(self.arms.canary)
        baseline_sql, baseline_params = _conditions(self.arms.baseline)
        filter_sql, filter_params = _conditions(self.arms.filter)
        where = [f"({filter_sql})", "s.timestamp >= ?", "s.timestamp < ?",
                 f"(({canary_sql}) OR ({baseline_sql}))"]
        where_params: list[Any] = [*filter_params, self.window.start, self.window.end,
                                   *canary_params, *baseline_params]
        if metric.statuses:
            where.append("s.status IN (SELECT unnest(?::VARCHAR[]))")
            where_params.append(list(metric.statuses))
        source = "samples s"
        from_params: list[Any] = []
        if metric.score is not None:
            source += " JOIN (" + self._score_subquery(metric) + ") sc ON sc.request_id = s.request_id"
            from_params = self._score_params(metric)
        select_arm = f"CASE WHEN {canary_sql} THEN 'c' ELSE 'b' END AS arm"
        params = [*canary_params, *from_params, *where_params]
        return f"SELECT {select_arm}, {{value}} AS v FROM {source} WHERE {' AND '.join(where)}", params

    def _score_subquery(self, metric: MetricSpec) -> str:
        if metric.reference_model is not None or self._reference_models(metric.score or "") <= 1:
            extra = " AND reference_model = ?" if metric.reference_model is not None else ""
            return ("SELECT request_id, value, label FROM scores WHERE metric = ? AND error IS NULL" + extra)
        # Several reference models scored this metric: the newest score of each sample.
        return ("SELECT request_id, arg_max(value, evaluated_at) AS value, arg_max(label, evaluated_at) AS label "
                "FROM scores WHERE metric = ? AND error IS NULL GROUP BY request_id")

    def _score_params(self, metric: MetricSpec) -> list[Any]:
        params: list[Any] = [metric.score]
        if metric.reference_model is not None:
            params.append(metric.reference_model)
        return params

    def _reference_models(self, score: str) -> int:
        if score not in self._score_models:
            row = self.store.fetchone("SELECT count(DISTINCT reference_model) FROM scores WHERE metric = ?", [score])
            self._score_models[score] = int(row[0]) if row else 0
        return self._score_models[score]

    def overlap(self) -> int:
        """Samples in the window that match both selectors (an error: arms must be disjoint)."""
        canary_sql, canary_params = _conditions(self.arms.canary)
        baseline_sql, baseline_params = _conditions(self.arms.baseline)
        filter_sql, filter_params = _conditions(self.arms.filter)
        row = self.store.fetchone(
            f"SELECT count(*) FROM samples s WHERE ({filter_sql}) AND s.timestamp >= ? AND s.timestamp < ? "
            f"AND ({canary_sql}) AND ({baseline_sql})",
            [*filter_params, self.window.start, self.window.end, *canary_params, *baseline_params])
        return int(row[0]) if row else 0

    def arm_sizes(self) -> tuple[int, int]:
        """Samples of (canary, baseline) in the window, any status."""
        canary_sql, canary_params = _conditions(self.arms.canary)
        baseline_sql, baseline_params = _conditions(self.arms.baseline)
        filter_sql, filter_params = _conditions(self.arms.filter)
        row = self.store.fetchone(
            f"SELECT count(*) FILTER (WHERE {canary_sql}), count(*) FILTER (WHERE {baseline_sql}) "
            f"FROM samples s WHERE ({filter_sql}) AND s.timestamp >= ? AND s.timestamp < ?",
            [*canary_params, *baseline_params, *filter_params, self.window.start, self.window.end])
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def continuous(self, metric: MetricSpec) -> ContinuousData:
        value = f's."{metric.column}"' if metric.column else "sc.value"
        base, params = self._base(metric)
        inner = base.format(value=f"CAST({value} AS DOUBLE)")
        missing = "v IS NULL OR isnan(v) OR isinf(v)"
        zero = metric.nan_strategy == "zero"
        cleaned = f"CASE WHEN {missing} THEN {'0.0' if zero else 'NULL'} ELSE v END"
        sql = (f"SELECT {cleaned} AS v, count(*) FILTER (WHERE arm = 'c') AS c, "
               f"count(*) FILTER (WHERE arm = 'b') AS b FROM ({inner}) GROUP BY ALL ORDER BY v NULLS FIRST")
        cols = self.store.execute(sql, params).fetchnumpy()
        values = cols["v"]
        c = np.asarray(cols["c"], dtype=np.int64)
        b = np.asarray(cols["b"], dtype=np.int64)
        missing_c = missing_b = 0
        if np.ma.isMaskedArray(values) and values.size and np.ma.getmaskarray(values)[0]:
            missing_c, missing_b = int(c[0]), int(b[0])
            values, c, b = values[1:], c[1:], b[1:]
        values = np.asarray(np.ma.getdata(values), dtype=np.float64)
        in_c, in_b = c > 0, b > 0
        return ContinuousData(Tally(values[in_c], c[in_c]), Tally(values[in_b], b[in_b]), missing_c, missing_b)

    def counts(self, metric: MetricSpec) -> CountData:
        base, params = self._base(metric)
        if metric.column:
            value = f's."{metric.column}"'
            events = [str(e).lower() if isinstance(e, bool) else str(e) for e in metric.events or []]
            inner = base.format(value=f"lower(CAST({value} AS VARCHAR))" if metric.column in (
                "safety_flagged", "cache_hit") else f"CAST({value} AS VARCHAR)")
        else:
            events = [str(e) for e in metric.events or []]
            inner = base.format(value="sc.label")
        sql = (f"SELECT count(*) FILTER (WHERE arm = 'c' AND v IN (SELECT unnest(?::VARCHAR[]))), "
               f"count(*) FILTER (WHERE arm = 'c'), "
               f"count(*) FILTER (WHERE arm = 'b' AND v IN (SELECT unnest(?::VARCHAR[]))), "
               f"count(*) FILTER (WHERE arm = 'b') FROM ({inner})")
        row = self.store.fetchone(sql, _count_params(events, params))
        assert row is not None
        return CountData(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _count_params(events: list[str], params: list[Any]) -> list[Any]:
    # Placeholders in order: the two event lists appear in the SELECT before the subquery's.
    return [events, events, *params]


def arms_from(spec: CanarySpec, baseline: dict[str, str], canary: dict[str, str]) -> Arms:
    if baseline == canary:
        raise CanaryConfigError("baseline and canary select the same samples")
    return Arms(baseline=baseline, canary=canary, filter=dict(spec.filter))
