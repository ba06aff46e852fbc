"""What the judge reads: each metric of the two arms, aggregated in DuckDB through the store.

A continuous metric comes back as its distinct values with a count per arm (``GROUP BY
value``), which is all the exact rank test needs; a proportion metric as event and trial
counts. Scores (hallucination_score, clip_score, ...) are joined from ``scores`` by
request_id. SQL is parameterised; column names come only from the fixed lists in
canary_config.
"""

from __future__ import annotations

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


# Which arm a sample is in, as one small integer to group by: 1 canary, 2 baseline, 3 both
# (an error the run reports: arms must be disjoint).
CANARY, BASELINE, BOTH = 1, 2, 3


@dataclass(frozen=True)
class _Groups:
    """One aggregate query's rows as numpy columns: the arm, the status (when asked for), the
    value (when grouped by one), the row count and one event count per proportion metric."""

    arm: np.ndarray
    status: np.ndarray | None      # status codes (ArmReader._status_codes)
    value: np.ndarray | None       # float64, NaN where NULL
    null: np.ndarray | None        # True where the value was NULL
    n: np.ndarray
    events: dict[str, np.ndarray]

    def rows(self, codes: list[int] | None) -> np.ndarray:
        keep = np.ones(self.arm.size, dtype=bool)
        if codes is not None:
            assert self.status is not None
            keep &= np.isin(self.status, codes)
        return keep

    @classmethod
    def empty(cls, events: list[str]) -> "_Groups":
        none = np.empty(0, dtype=np.int64)
        return cls(none, none, np.empty(0), np.empty(0, dtype=bool), none, {e: none for e in events})


class ArmReader:
    """Reads every metric of one (arms, window). Use as a context manager.

    A few aggregate queries answer every metric, each one scan (DuckDB, parallel):
    - the samples' row and event counts per (arm, status): arm sizes, overlap, and every
      proportion metric on a samples column;
    - the distinct values with their counts per (arm, status) of every continuous samples
      column, as GROUPING SETS of one scan;
    - per score the metrics read (scores.metric, reference model): one join of the window's
      samples with ``scores`` by request_id, grouped by (arm, [status,] value) with an event
      count per proportion metric on it.
    Metrics are then cut from those rows in numpy (status filter, canary/baseline split),
    which costs as much as the distinct values, not the samples.
    """

    def __init__(self, store: Store, arms: Arms, window: Window, metrics: list[MetricSpec]) -> None:
        self.store = store
        self.arms = arms
        self.window = window
        self.metrics = metrics
        self._counts: _Groups | None = None
        self._columns: dict[str, _Groups] = {}
        self._scores: dict[tuple[str, str | None], _Groups] = {}
        # Statuses the metrics filter on, grouped by as small codes (1, 2, ...; 0 for any
        # other status): cheaper to hash than the text, in every grouping.
        self._status_codes = {st: i + 1 for i, st in enumerate(dict.fromkeys(
            st for m in metrics for st in (m.statuses or [])))}

    def __enter__(self) -> "ArmReader":
        self._prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    # -- queries ---------------------------------------------------------------

    def _scope(self) -> tuple[str, list[Any], str, list[Any]]:
        """(arm expression, its params, WHERE, its params) over ``samples s``."""
        canary_sql, canary_params = _conditions(self.arms.canary)
        baseline_sql, baseline_params = _conditions(self.arms.baseline)
        filter_sql, filter_params = _conditions(self.arms.filter)
        # CASE: a NULL selector column is "not this arm"
        arm = (f"CAST((CASE WHEN {canary_sql} THEN {CANARY} ELSE 0 END) + "
               f"(CASE WHEN {baseline_sql} THEN {BASELINE} ELSE 0 END) AS UTINYINT)")
        where = (f"({filter_sql}) AND s.timestamp >= ? AND s.timestamp < ? "
                 f"AND (({canary_sql}) OR ({baseline_sql}))")
        return (arm, [*canary_params, *baseline_params],
                where, [*filter_params, self.window.start, self.window.end, *canary_params, *baseline_params])

    def _status_sql(self) -> tuple[str, list[Any]]:
        """The status code of ``s.status`` (see _status_codes) and its params."""
        if not self._status_codes:
            return "CAST(0 AS USMALLINT)", []
        whens = " ".join(f"WHEN ? THEN {code}" for code in self._status_codes.values())
        return f"CAST(CASE s.status {whens} ELSE 0 END AS USMALLINT)", list(self._status_codes)

    def _codes(self, metric: MetricSpec) -> list[int] | None:
        return [self._status_codes[st] for st in metric.statuses] if metric.statuses else None

    def _prepare(self) -> None:
        arm, arm_params, where, where_params = self._scope()
        status, status_params = self._status_sql()
        arm_params = [*arm_params, *status_params]   # the status code follows the arm in each SELECT
        arm = f"{arm} AS arm, {status}"
        # 1. row and event counts per (arm, status)
        props = [m for m in self.metrics if m.kind == "proportion" and m.column is not None]
        events_sql, events_params = [], []
        for i, metric in enumerate(props):
            events = _typed_events(metric)
            events_sql.append(f'count(*) FILTER (WHERE {_in_list(f"s.{_quoted(metric.column)}", len(events))}) AS e{i}')
            events_params += events
        cols = self.store.execute(
            f"SELECT {arm} AS st, count(*) AS n{''.join(', ' + e for e in events_sql)} "
            f"FROM samples s WHERE {where} GROUP BY ALL",
            [*arm_params, *events_params, *where_params]).fetchnumpy()
        self._counts = _groups(cols, value=False, events={m.name: f"e{i}" for i, m in enumerate(props)})
        # 2. distinct values per (arm, status) of each continuous samples column, in one scan
        columns = sorted({m.column for m in self.metrics if m.kind == "continuous" and m.column is not None})
        if columns:
            values = [f"CAST(s.{_quoted(c)} AS DOUBLE) AS v{i}" for i, c in enumerate(columns)]
            if len(columns) == 1:
                group = "GROUP BY ALL"
                gid = ""
            else:
                sets = ", ".join(f"(arm, st, v{i})" for i in range(len(columns)))
                group = f"GROUP BY GROUPING SETS ({sets})"
                gid = f", GROUPING_ID({', '.join(f'v{i}' for i in range(len(columns)))}) AS g"
            cols = self.store.execute(
                f"SELECT {arm} AS st, {', '.join(values)}, count(*) AS n{gid} "
                f"FROM samples s WHERE {where} {group}", [*arm_params, *where_params]).fetchnumpy()
            width = len(columns)
            for i, column in enumerate(columns):
                # GROUPING_ID's bit for v_i (most significant first) is 0 in v_i's own set
                mine = np.ones(len(cols["n"]), dtype=bool) if width == 1 else \
                    np.asarray(cols["g"]) == ((1 << width) - 1) ^ (1 << (width - 1 - i))
                self._columns[column] = _groups({k: v[mine] for k, v in cols.items()}, value=f"v{i}", events={})
        # 3. one join with scores per score read
        for key in dict.fromkeys((m.score, m.reference_model) for m in self.metrics if m.score is not None):
            self._scores[key] = self._read_score(*key)

    def _read_score(self, score: str, reference_model: str | None) -> _Groups:
        mine = [m for m in self.metrics if m.score == score and m.reference_model == reference_model]
        props = [m for m in mine if m.kind == "proportion"]
        # One reference model per metric: scores of different models are not comparable, and
        # mixing them could differ between the arms. Default: the one that scored last.
        model = reference_model or self._newest_reference_model(score)
        if model is None:   # nothing scored this metric: no join to run
            return _Groups.empty([m.name for m in props])
        arm, arm_params, where, where_params = self._scope()
        status, status_params = self._status_sql()
        events_sql, events_params = [], []
        for i, metric in enumerate(props):
            events = _typed_events(metric)
            events_sql.append(f"{_in_list('sc.label', len(events))} AS e{i}")
            events_params += events
        # Each side narrowed to what the join carries (id, arm and status code; id, value and
        # event flags) before it: the join of ~2M ids is most of a large verdict's time.
        flags = "".join(", " + e for e in events_sql)
        counts = "".join(f", count(*) FILTER (WHERE sc.e{i}) AS e{i}" for i in range(len(props)))
        cols = self.store.execute(
            f"SELECT a.arm, a.st, sc.v, count(*) AS n{counts} "
            f"FROM (SELECT s.request_id, {arm} AS arm, {status} AS st FROM samples s WHERE {where}) a "
            f"JOIN (SELECT sc.request_id, CAST(sc.value AS DOUBLE) AS v{flags} FROM scores sc "
            f"WHERE sc.metric = ? AND sc.reference_model = ? AND sc.error IS NULL) sc "
            f"ON sc.request_id = a.request_id GROUP BY ALL",
            [*arm_params, *status_params, *where_params, *events_params, score, model]).fetchnumpy()
        return _groups(cols, value="v", events={m.name: f"e{i}" for i, m in enumerate(props)})

    def _newest_reference_model(self, score: str) -> str | None:
        row = self.store.fetchone(
            "SELECT reference_model FROM scores WHERE metric = ? ORDER BY evaluated_at DESC LIMIT 1", [score])
        return row[0] if row else None

    # -- answers ---------------------------------------------------------------

    def overlap(self) -> int:
        """Samples in the window that match both selectors (an error: arms must be disjoint)."""
        counts = self._ready_counts()
        return int(counts.n[counts.arm == BOTH].sum())

    def arm_sizes(self) -> tuple[int, int]:
        """Samples of (canary, baseline) in the window, any status."""
        counts = self._ready_counts()
        return int(counts.n[(counts.arm & CANARY) > 0].sum()), int(counts.n[counts.arm == BASELINE].sum())

    def _ready_counts(self) -> _Groups:
        if self._counts is None:
            raise RuntimeError("ArmReader is used outside its `with` block")
        return self._counts

    def _groups_of(self, metric: MetricSpec) -> _Groups:
        if metric.score is not None:
            return self._scores[(metric.score, metric.reference_model)]
        if metric.kind == "continuous":
            return self._columns[metric.column or ""]
        return self._ready_counts()

    def continuous(self, metric: MetricSpec) -> ContinuousData:
        g = self._groups_of(metric)
        keep = g.rows(self._codes(metric))
        assert g.value is not None and g.null is not None
        raw, null, arm, n = g.value[keep], g.null[keep], g.arm[keep], g.n[keep]
        # A sample with both selectors counts as canary (the run refuses overlap anyway).
        is_c = (arm & CANARY) > 0
        c, b = np.where(is_c, n, 0), np.where(is_c, 0, n)
        bad = null | ~np.isfinite(raw)
        missing_c, missing_b = int(c[bad].sum()), int(b[bad].sum())
        if metric.nan_strategy == "zero":
            raw = np.where(bad, 0.0, raw)
            missing_c = missing_b = 0
        else:
            raw, c, b = raw[~bad], c[~bad], b[~bad]
        # the same value may come in several rows (statuses, arms): one per value
        values, inverse = np.unique(raw, return_inverse=True)
        c = np.bincount(inverse, weights=c, minlength=values.size).astype(np.int64)
        b = np.bincount(inverse, weights=b, minlength=values.size).astype(np.int64)
        in_c, in_b = c > 0, b > 0
        return ContinuousData(Tally(values[in_c], c[in_c]), Tally(values[in_b], b[in_b]), missing_c, missing_b)

    def counts(self, metric: MetricSpec) -> CountData:
        g = self._groups_of(metric)
        keep = g.rows(self._codes(metric))
        is_c = (g.arm[keep] & CANARY) > 0
        n, e = g.n[keep], g.events[metric.name][keep]
        return CountData(int(e[is_c].sum()), int(n[is_c].sum()), int(e[~is_c].sum()), int(n[~is_c].sum()))


def _quoted(column: str | None) -> str:
    # Column names come from canary_config's fixed lists only (checked by MetricSpec).
    return f'"{column}"'


def _groups(cols: dict[str, Any], *, value: str | bool, events: dict[str, str]) -> _Groups:
    def plain(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(np.ma.getdata(cols[name]), dtype=dtype)

    raw = cols.get(value) if isinstance(value, str) else None
    values = null = None
    if raw is not None:
        null = np.ma.getmaskarray(raw) if np.ma.isMaskedArray(raw) else np.zeros(len(raw), dtype=bool)
        values = np.where(null, np.nan, np.asarray(np.ma.getdata(raw), dtype=np.float64))
    return _Groups(plain("arm", np.int64), plain("st", np.int64), values, null, plain("n", np.int64),
                   {name: plain(col, np.int64) for name, col in events.items()})


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
