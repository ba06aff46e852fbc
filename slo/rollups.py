"""Per-minute rollups of every SLI series, kept up to date without rescanning samples.

``slo_rollups(series, minute, good, total, value)`` holds one row per series and minute
with events. A cycle (``refresh``) recomputes only the *dirty* minutes:

- minutes of samples ingested since the last cycle (``samples.ingested_at`` above the
  watermark): new samples, late samples with old timestamps, and the new version of a
  re-ingested request_id;
- minutes in ``sample_tombstones``: the store records the minute of every sample it
  deletes or replaces (a re-ingested request_id's *old* minute, retention deletes);
- minutes of samples whose scores were written since the last cycle (``scores.evaluated_at``),
  for quality SLIs: a sample scored late moves its minute's SLI.

Recomputing a minute is idempotent, so each watermark is read back with an overlap
(``OVERLAP``, 2 minutes): a writer that stamped its rows just before the last cycle but committed just
after it is still seen. A series that has no rollups yet (a new SLO) is built from all
samples once. Drift series (a handful of rows per day) are rebuilt each cycle.

``rebuild`` recomputes everything from scratch; tests compare it with ``refresh``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import duckdb

from genobs.slo.sli import ScoreJoin, SeriesSql
from genobs.slo.timeutil import utcnow
from genobs.store import Store

OVERLAP = timedelta(minutes=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class RefreshReport:
    built: list[str]          # series built from scratch
    dirty_minutes: int        # minutes recomputed for the existing series
    seconds: float = 0.0


def _combined_select(series: Sequence[SeriesSql]) -> tuple[str, list[Any], list[tuple[SeriesSql, int]]]:
    """One pass over the samples that fills every series: a SELECT with one pair of
    FILTERed counts per series (and one LEFT JOIN per distinct score metric)."""
    joins: dict[ScoreJoin, str] = {}
    for item in series:
        if item.score is not None and item.score not in joins:
            joins[item.score] = f"q{len(joins)}"
    columns: list[str] = ["date_trunc('minute', s.timestamp) AS minute"]
    column_params: list[Any] = []
    slots: list[tuple[SeriesSql, int]] = []
    for index, item in enumerate(series):
        alias = joins.get(item.score) if item.score else None
        total = item.total.sql.replace("{q}", alias or "")
        good = item.good.sql.replace("{q}", alias or "")
        columns.append(f"count(*) FILTER (WHERE {total}) AS t{index}")
        column_params += item.total.params
        columns.append(f"count(*) FILTER (WHERE ({total}) AND ({good})) AS g{index}")
        column_params += item.total.params + item.good.params
        if item.value:
            columns.append(f"sum({item.value}) FILTER (WHERE {total}) AS v{index}")
            column_params += item.total.params
        else:
            columns.append(f"NULL::DOUBLE AS v{index}")
        slots.append((item, index))
    join_sql: list[str] = []
    join_params: list[Any] = []
    for join, alias in joins.items():
        ref = " AND reference_model = ?" if join.reference_model is not None else ""
        join_sql.append(
            f"LEFT JOIN (SELECT request_id, {join.worst}(value) AS v FROM scores "
            f"WHERE metric = ?{ref} AND value IS NOT NULL AND request_id IN (SELECT request_id FROM _slo_scope) "
            f"GROUP BY request_id) {alias} ON {alias}.request_id = s.request_id"
        )
        join_params += [join.metric] + ([join.reference_model] if join.reference_model is not None else [])
    sql = (f"SELECT {', '.join(columns)} FROM _slo_scope s {' '.join(join_sql)} GROUP BY 1")
    return sql, column_params + join_params, slots


def _fill_samples_series(cur: duckdb.DuckDBPyConnection, series: Sequence[SeriesSql], scope_sql: str,
                         scope_params: list[Any]) -> None:
    if not series:
        return
    # The samples in scope, read once (only the columns SLIs use).
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _slo_scope AS SELECT request_id, timestamp, service, model, model_version, "
        "variant, tenant, region, status, latency_ms, ttft_ms, safety_flagged, cost_usd, error_type, modality, "
        "cache_hit, feedback, input_tokens, output_tokens, attributes "
        f"FROM samples s WHERE {scope_sql}", scope_params,
    )
    select, params, slots = _combined_select(series)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _slo_agg AS {select}", params)
    for item, index in slots:
        cur.execute(
            f"INSERT INTO slo_rollups SELECT ?, minute, g{index}, t{index}, v{index} FROM _slo_agg WHERE t{index} > 0",
            [item.key],
        )
    cur.execute("DROP TABLE _slo_agg")
    cur.execute("DROP TABLE _slo_scope")


def _fill_drift_series(cur: duckdb.DuckDBPyConnection, item: SeriesSql) -> None:
    cur.execute("DELETE FROM slo_rollups WHERE series = ?", [item.key])
    cur.execute(
        "INSERT INTO slo_rollups SELECT ?, date_trunc('minute', d.computed_at) AS minute, "
        f"count(*) FILTER (WHERE {item.good.sql}), count(*), NULL FROM drift_results d "
        f"WHERE {item.total.sql} GROUP BY 2",
        [item.key, *item.good.params, *item.total.params],
    )


def _watermarks(cur: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    return dict(cur.execute("SELECT name, value FROM slo_watermarks").fetchall())


def _set_watermarks(cur: duckdb.DuckDBPyConnection, marks: dict[str, datetime | None]) -> None:
    known = {k: v for k, v in marks.items() if v is not None}
    if not known:
        return
    values = ", ".join(["(?, ?)"] * len(known))
    cur.execute(
        f"INSERT INTO slo_watermarks VALUES {values} ON CONFLICT (name) DO UPDATE SET value = "
        "greatest(slo_watermarks.value, excluded.value)", [x for kv in known.items() for x in kv],
    )


def _register(cur: duckdb.DuckDBPyConnection, item: SeriesSql) -> None:
    cur.execute(
        "INSERT INTO slo_series VALUES (?, ?, now()) ON CONFLICT (series) DO UPDATE SET built_at = now()",
        [item.key, json.dumps(item.definition, sort_keys=True, default=str)],
    )


def _dedupe(series: Iterable[SeriesSql]) -> list[SeriesSql]:
    seen: dict[str, SeriesSql] = {}
    for item in series:
        seen.setdefault(item.key, item)
    return list(seen.values())


def refresh(store: Store, series: Iterable[SeriesSql], *, overlap: timedelta = OVERLAP) -> RefreshReport:
    """Bring the rollups of ``series`` up to date (incrementally; new series built once).

    ``overlap``: how long a concurrent writer may take from stamping ``ingested_at`` to
    committing; 0 when nothing else writes (a replay)."""
    started = utcnow()
    wanted = _dedupe(series)
    with store.transaction() as cur:
        # A series that missed the last cycle (its SLO was out of the spec for a while, or
        # another spec is evaluated against this database) may have missed changes whose
        # watermarks have moved on: it is rebuilt, like a new one.
        last_cycle = _watermarks(cur).get("cycle")
        known = {key for key, refreshed in cur.execute("SELECT series, built_at FROM slo_series").fetchall()
                 if last_cycle is None or refreshed >= last_cycle}
        new = [s for s in wanted if s.key not in known]
        old = [s for s in wanted if s.key in known]
        # Read the new watermarks first: rows committed after these reads are left to the
        # next cycle (they are above the watermark written now, or inside its overlap).
        marks = cur.execute(
            "SELECT (SELECT max(ingested_at) FROM samples), (SELECT max(evaluated_at) FROM scores), "
            "(SELECT max(deleted_at) FROM sample_tombstones)"
        ).fetchone()
        dirty = 0
        old_samples = [s for s in old if s.source == "samples"]
        if old_samples:
            dirty = _mark_dirty(cur, old_samples, overlap)
            if dirty:
                keys = [s.key for s in old_samples]
                cur.execute(
                    "DELETE FROM slo_rollups WHERE series IN (SELECT unnest(?::VARCHAR[])) "
                    "AND minute IN (SELECT minute FROM _slo_dirty)", [keys],
                )
                lo, hi = cur.execute("SELECT min(minute), max(minute) FROM _slo_dirty").fetchone()
                _fill_samples_series(
                    cur, old_samples,
                    "s.timestamp >= ? AND s.timestamp < ? + INTERVAL 1 MINUTE "
                    "AND date_trunc('minute', s.timestamp) IN (SELECT minute FROM _slo_dirty)",
                    [lo, hi],
                )
            cur.execute("DROP TABLE IF EXISTS _slo_dirty")
        new_samples = [s for s in new if s.source == "samples"]
        if new_samples:
            cur.execute("DELETE FROM slo_rollups WHERE series IN (SELECT unnest(?::VARCHAR[]))",
                        [[s.key for s in new_samples]])
            _fill_samples_series(cur, new_samples, "TRUE", [])
        for item in wanted:
            if item.source == "drift":
                _fill_drift_series(cur, item)
        for item in new:
            _register(cur, item)
        cur.execute("UPDATE slo_series SET built_at = ? WHERE series IN (SELECT unnest(?::VARCHAR[]))",
                    [started, [s.key for s in wanted]])
        _set_watermarks(cur, {"samples": marks[0], "scores": marks[1], "tombstones": marks[2], "cycle": started})
        # Tombstones well below the watermark have been applied by every series.
        if marks[2] is not None:
            cur.execute("DELETE FROM sample_tombstones WHERE deleted_at < ?", [marks[2] - 2 * max(overlap, OVERLAP)])
    return RefreshReport(built=[s.key for s in new], dirty_minutes=dirty,
                         seconds=(utcnow() - started).total_seconds())


def _mark_dirty(cur: duckdb.DuckDBPyConnection, series: Sequence[SeriesSql], overlap: timedelta) -> int:
    """Fill _slo_dirty(minute) with the minutes to recompute; returns how many."""
    marks = _watermarks(cur)
    samples_mark, scores_mark, tomb_mark = marks.get("samples"), marks.get("scores"), marks.get("tombstones")
    cycle = marks.get("cycle")

    def since(mark: datetime | None) -> datetime:
        # Rows above the mark are new. Rows at or below it may still be new: stamped
        # before the last cycle, committed after it. Those were stamped at most OVERLAP
        # before the last cycle began.
        if mark is None:
            return _EPOCH
        return min(mark, cycle - overlap) if cycle is not None else mark - overlap

    parts = [
        "SELECT DISTINCT date_trunc('minute', timestamp) AS minute FROM samples WHERE ingested_at > ?",
        "SELECT minute FROM sample_tombstones WHERE deleted_at > ?",
    ]
    params: list[Any] = [since(samples_mark), since(tomb_mark)]
    metrics = sorted({s.score.metric for s in series if s.score is not None})
    if metrics:
        fresh = cur.execute(
            "SELECT count(*) FROM scores WHERE evaluated_at > ? AND metric IN (SELECT unnest(?::VARCHAR[]))",
            [since(scores_mark), metrics],
        ).fetchone()[0]
        if fresh:
            # Scored samples' minutes: a join on request_id (only when there are new scores).
            parts.append(
                "SELECT DISTINCT date_trunc('minute', s.timestamp) FROM samples s WHERE s.request_id IN "
                "(SELECT request_id FROM scores WHERE evaluated_at > ? AND metric IN (SELECT unnest(?::VARCHAR[])))"
            )
            params += [since(scores_mark), metrics]
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _slo_dirty AS {' UNION '.join(parts)}", params)
    return int(cur.execute("SELECT count(*) FROM _slo_dirty").fetchone()[0])


def rebuild(store: Store, series: Iterable[SeriesSql]) -> None:
    """Recompute every series from all samples (the reference the incremental path must match)."""
    wanted = _dedupe(series)
    with store.transaction() as cur:
        cur.execute("DELETE FROM slo_rollups WHERE series IN (SELECT unnest(?::VARCHAR[]))", [[s.key for s in wanted]])
        cur.execute("DELETE FROM slo_series WHERE series IN (SELECT unnest(?::VARCHAR[]))", [[s.key for s in wanted]])
    refresh(store, wanted)


def rollup_rows(store: Store, key: str) -> list[tuple[Any, ...]]:
    """(minute, good, total, value) of one series, in time order (tests, dashboards)."""
    return store.fetchall(
        "SELECT minute, good, total, round(value, 9) FROM slo_rollups WHERE series = ? ORDER BY minute", [key]
    )
