"""What the judge reads: each metric of the two arms, aggregated in DuckDB through the store.

A continuous metric comes back as its distinct values with a count per arm (``GROUP BY
value``), which is all the exact rank test needs; a proportion metric as event and trial
counts. Scores (hallucination_score, clip_score, ...) are joined from ``scores`` by
request_id. SQL is parameterised; column names come only from the fixed lists in
canary_config.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from genobs.slo.canary_config import CanaryConfigError, CanarySpec, MetricSpec
from genobs.slo.canary_stats import Tally
from genobs import times
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


def parse_duration(text: str, *, name: str | None = None) -> timedelta:
    """The project's duration grammar (genobs.times): 30s, 10m, 2h, 7d, 1w."""
    return times.parse_duration(str(text), name=name)


def parse_instant(text: str | datetime, *, now: datetime | None = None, end: bool = False,
                  name: str | None = None) -> datetime:
    """The project's instant grammar (genobs.times): RFC 3339, a date, epoch s/ms, now, today,
    or a duration back from now (``--since 2h``)."""
    return times.parse_instant(text, now=now, end=end, name=name)


def resolve_window(spec: CanarySpec, since: str | datetime | None, until: str | datetime | None,
                   *, now: datetime | None = None) -> Window:
    """[since, until): until defaults to now, since to until - the config's window."""
    now = now or datetime.now(timezone.utc)
    end = parse_instant(until, now=now, end=True, name="--until") if until else now
    if since is None:
        start = end - parse_duration(spec.window, name="window")
    else:
        start = parse_instant(since, now=now, name="--since")
    if start >= end:
        raise ValueError(f"window: start {start.isoformat()} is not before end {end.isoformat()}")
    return Window(start.astimezone(timezone.utc), end.astimezone(timezone.utc))


# --------------------------------------------------------------------------- SQL


def _conditions(selector: dict[str, str]) -> tuple[str, list[Any]]:
    # Field names come from SELECTOR_FIELDS only (checked by parse_selector / the spec).
    parts = [f's."{field}" = ?' for field in selector]
    return (" AND ".join(parts) or "TRUE"), list(selector.values())


class ArmReader:
    """Reads every metric of one (arms, window). Use as a context manager.

    The window's samples of both arms are scanned once into a temporary table (only the
    columns the metrics need, with a canary flag), each scores metric is joined once, and
    each metric is then one GROUP BY over those: a 1M-samples-per-arm verdict costs one scan
    of ``samples`` instead of one per metric.
    """

    def __init__(self, store: Store, arms: Arms, window: Window, metrics: list[MetricSpec]) -> None:
        self.store = store
        self.arms = arms
        self.window = window
        self.metrics = metrics
        self._tag = uuid.uuid4().hex[:12]
        self._arms_table = f"_canary_arms_{self._tag}"
        self._score_tables: dict[tuple[str, str | None], str] = {}
        self._temp: list[str] = []
        self._overlap = 0
        self._sizes = (0, 0)

    def __enter__(self) -> "ArmReader":
        self._prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        for table in reversed(self._temp):
            try:
                self.store.execute(f"DROP TABLE IF EXISTS {table}")
            except Exception:  # noqa: BLE001 - a temp table dies with its connection anyway
                pass

    def _prepare(self) -> None:
        canary_sql, canary_params = _conditions(self.arms.canary)
        baseline_sql, baseline_params = _conditions(self.arms.baseline)
        filter_sql, filter_params = _conditions(self.arms.filter)
        columns = sorted({m.column for m in self.metrics if m.column} - {"status"})
        need_ids = any(m.score for m in self.metrics)
        select = [f"coalesce({canary_sql}, FALSE) AS is_c", f"coalesce({baseline_sql}, FALSE) AS is_b", "s.status"]
        select += [f's."{c}"' for c in columns]
        if need_ids:
            select.append("s.request_id")
        self.store.execute(
            f"CREATE TEMP TABLE {self._arms_table} AS SELECT {', '.join(select)} FROM samples s "
            f"WHERE ({filter_sql}) AND s.timestamp >= ? AND s.timestamp < ? "
            f"AND (({canary_sql}) OR ({baseline_sql}))",
            [*canary_params, *baseline_params, *filter_params, self.window.start, self.window.end,
             *canary_params, *baseline_params])
        self._temp.append(self._arms_table)
        row = self.store.fetchone(
            f"SELECT count(*) FILTER (WHERE is_c AND is_b), count(*) FILTER (WHERE is_c), "
            f"count(*) FILTER (WHERE is_b AND NOT is_c) FROM {self._arms_table}")
        assert row is not None
        self._overlap = int(row[0])
        self._sizes = (int(row[1]), int(row[2]))
        for metric in self.metrics:
            if metric.score is not None:
                self._score_table(metric)

    def _score_table(self, metric: MetricSpec) -> str:
        key = (metric.score or "", metric.reference_model)
        if key in self._score_tables:
            return self._score_tables[key]
        table = f"_canary_score_{self._tag}_{len(self._score_tables)}"
        # One reference model per metric: scores of different models are not comparable, and
        # mixing them could differ between the arms. Default: the one that scored last.
        model = metric.reference_model or self._newest_reference_model(metric.score or "")
        # status only when a metric of this score filters on it (a column less to copy)
        status = ", a.status" if any(m.statuses for m in self.metrics if m.score == metric.score) else ""
        self.store.execute(
            f"CREATE TEMP TABLE {table} AS SELECT a.is_c{status}, sc.value, sc.label "
            f"FROM {self._arms_table} a JOIN scores sc ON sc.request_id = a.request_id "
            f"WHERE sc.metric = ? AND sc.reference_model = ? AND sc.error IS NULL", [metric.score, model])
        self._temp.append(table)
        self._score_tables[key] = table
        return table

    def _newest_reference_model(self, score: str) -> str | None:
        row = self.store.fetchone(
            "SELECT reference_model FROM scores WHERE metric = ? ORDER BY evaluated_at DESC LIMIT 1", [score])
        return row[0] if row else None

    def overlap(self) -> int:
        """Samples in the window that match both selectors (an error: arms must be disjoint)."""
        return self._overlap

    def arm_sizes(self) -> tuple[int, int]:
        """Samples of (canary, baseline) in the window, any status."""
        return self._sizes

    def _source(self, metric: MetricSpec) -> tuple[str, str, str, list[Any]]:
        """(table, value column, WHERE, params) of a metric."""
        if metric.score is not None:
            table = self._score_table(metric)
            value = "value" if metric.kind == "continuous" else "label"
        else:
            table = self._arms_table
            value = f'"{metric.column}"'
        if metric.statuses:
            return table, value, _in_list("status", len(metric.statuses)), list(metric.statuses)
        return table, value, "TRUE", []

    def continuous(self, metric: MetricSpec) -> ContinuousData:
        table, value, where, params = self._source(metric)
        # Raw values grouped as they are (NULL and NaN are groups of their own, sorted first
        # and last), split off below: cheaper than cleaning every row in SQL.
        sql = (f"SELECT CAST({value} AS DOUBLE) AS v, count(*) FILTER (WHERE is_c) AS c, "
               f"count(*) FILTER (WHERE NOT is_c) AS b FROM {table} WHERE {where} GROUP BY ALL ORDER BY v NULLS FIRST")
        cols = self.store.execute(sql, params).fetchnumpy()
        raw = cols["v"]
        c = np.asarray(cols["c"], dtype=np.int64)
        b = np.asarray(cols["b"], dtype=np.int64)
        null = np.ma.getmaskarray(raw) if np.ma.isMaskedArray(raw) else np.zeros(len(c), dtype=bool)
        values = np.asarray(np.ma.getdata(raw), dtype=np.float64)
        bad = null | ~np.isfinite(values)
        missing_c, missing_b = int(c[bad].sum()), int(b[bad].sum())
        if metric.nan_strategy == "zero" and bad.any():
            values = np.where(bad, 0.0, values)
            order = np.argsort(values, kind="stable")
            values, c, b = values[order], c[order], b[order]
            values, inverse = np.unique(values, return_inverse=True)
            c = np.bincount(inverse, weights=c).astype(np.int64)
            b = np.bincount(inverse, weights=b).astype(np.int64)
            missing_c = missing_b = 0
        else:
            values, c, b = values[~bad], c[~bad], b[~bad]
        in_c, in_b = c > 0, b > 0
        return ContinuousData(Tally(values[in_c], c[in_c]), Tally(values[in_b], b[in_b]), missing_c, missing_b)

    def counts(self, metric: MetricSpec) -> CountData:
        table, value, where, params = self._source(metric)
        events = _typed_events(metric)
        hit = _in_list(value, len(events))
        row = self.store.fetchone(
            f"SELECT count(*) FILTER (WHERE is_c AND {hit}), count(*) FILTER (WHERE is_c), "
            f"count(*) FILTER (WHERE NOT is_c AND {hit}), count(*) FILTER (WHERE NOT is_c) "
            f"FROM {table} WHERE {where}", [*events, *events, *params])
        assert row is not None
        return CountData(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _in_list(column: str, count: int) -> str:
    return f"{column} IN ({', '.join('?' for _ in range(count))})" if count else "FALSE"


def _typed_events(metric: MetricSpec) -> list[Any]:
    """Event values typed like the column they are compared with (booleans, integers, text)."""
    events = list(metric.events or [])
    if metric.column in ("safety_flagged", "cache_hit"):
        return [e if isinstance(e, bool) else str(e).strip().lower() in ("true", "1", "yes") for e in events]
    if metric.column == "feedback":
        return [int(e) for e in events]
    return [str(e) for e in events]


def arms_from(spec: CanarySpec, baseline: dict[str, str], canary: dict[str, str]) -> Arms:
    if baseline == canary:
        raise CanaryConfigError("baseline and canary select the same samples")
    return Arms(baseline=baseline, canary=canary, filter=dict(spec.filter))
