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

from genobs.slo.sli import SCORED_SQL, SERVICE_SQL, Fragment, ScoreJoin, SeriesSql
from genobs.slo.timeutil import utcnow
from genobs.store import Store

OVERLAP = timedelta(minutes=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class RefreshReport:
    built: list[str]          # series built from scratch
    dirty_minutes: int        # minutes recomputed for the existing series
    seconds: float = 0.0


# A sample's UTC minute as an integer (minutes since the epoch, floored also before 1970,
# where integer division alone would round towards zero). Grouping by it costs ~1/10 of
# grouping by date_trunc('minute', timestamp): on a TIMESTAMPTZ, date_trunc goes through
# ICU's calendar for every row (bench/RESULTS.md, SLO engine). The store's sessions run in
# UTC, so this is the minute date_trunc gives, and the one the store's tombstones record.
def minute_key_sql(column: str) -> str:
    return _floor_minute_us(f"epoch_us({column})")


def _floor_minute_us(us: str) -> str:
    return f"(({us} - ({us} < 0)::BIGINT * 59999999) // 60000000)"


def minute_of_key_sql(key: str) -> str:
    return f"make_timestamptz(({key}) * 60000000)"


@dataclass
class _Build:
    """One aggregation query: its SQL, its parameters in textual order, and per series the
    names of its good, total and value columns."""

    sql: str
    params: list[Any]
    columns: list[tuple[SeriesSql, str, str, str | None]]


def _build_select(series: Sequence[SeriesSql], join: ScoreJoin | None, scope_sql: str,
                  scope_params: list[Any], scoped_ids: str | None = None, unique_scores: bool = False) -> _Build:
    """One pass over the samples in scope (joined with one score per sample for quality
    series) that fills every series of ``series``: one row per minute.

    Each distinct atomic predicate (the service filter, a model filter, a latency threshold,
    ...) is evaluated once per sample, as a boolean column; each series' total and good
    counts are count_if of the AND of its atoms, and a count shared by several series (the
    same scope, the same SLI) is computed once."""
    atoms: dict[tuple[str, str], tuple[str, Fragment]] = {}
    # Rows of services no series reads are skipped by the scan itself (a filter on a
    # dictionary-compressed column) when every series names its service; with one service
    # its predicate is then true of every row the pass reads.
    services = [_service_of(item) for item in series]
    hoisted = sorted(set(services)) if None not in services else []

    def names(fragment: Fragment) -> list[str]:
        out: list[str] = []
        for atom in fragment.atoms():
            if atom.sql.strip().upper() == "TRUE" or (len(hoisted) == 1 and atom.sql == SERVICE_SQL):
                continue
            key = atom.atom_key()
            if key not in atoms:
                atoms[key] = (f"a{len(atoms)}", atom)
            out.append(atoms[key][0])
        return out

    counts: dict[tuple[str, ...], str] = {}

    def count(conjunction: Iterable[str]) -> str:
        key = tuple(sorted(set(conjunction)))
        if key not in counts:
            counts[key] = f"c{len(counts)}"
        return counts[key]

    values: list[tuple[str, tuple[str, ...]]] = []
    columns: list[tuple[SeriesSql, str, str, str | None]] = []
    for item in series:
        total = names(item.total)
        good = total + names(item.good)
        value = None
        if item.value:
            value = f"x{len(values)}"
            values.append((item.value, tuple(total)))
        columns.append((item, count(good), count(total), value))

    alias = "q"
    inner_cols = ["epoch_us(s.timestamp) AS us"] + [
        f"({atom.sql.replace('{q}', alias)}) AS {name}" for name, atom in atoms.values()]
    inner_params: list[Any] = [p for _, atom in atoms.values() for p in atom.params]
    for index, (expr, _) in enumerate(values):
        inner_cols.append(f"{expr} AS xv{index}")
    join_sql, join_params = "", []
    if join is not None:
        ref = " AND reference_model = ?" if join.reference_model is not None else ""
        # An incremental pass reads only the scores of the samples in scope (their ids in
        # a temp table: DuckDB then filters the scores scan by them, ~30x cheaper than a
        # semi-join with a subquery over samples).
        semi = "" if scoped_ids is None else f" AND request_id IN (SELECT request_id FROM {scoped_ids})"
        # An inner join where every series' total requires a score (SCORED_SQL, as
        # sli.series_for_slo writes them): unscored samples are then no series' events.
        # Series without scores are filled by a pass of their own, without the join.
        scored_only = all(any(atom.sql == SCORED_SQL for atom in item.total.atoms()) for item in series)
        # The worst score per sample needs a GROUP BY request_id only where a sample can
        # have several scores of this metric (one per reference model; the primary key
        # allows no more). With one reference model the rows are joined as they are: a
        # GROUP BY over a million request_ids is ~15 % of the pass (bench/RESULTS.md).
        if join.reference_model is not None or unique_scores:
            scores = f"SELECT request_id, value AS v FROM scores WHERE metric = ?{ref} AND value IS NOT NULL{semi}"
        else:
            scores = (f"SELECT request_id, {join.worst}(value) AS v FROM scores "
                      f"WHERE metric = ?{ref} AND value IS NOT NULL{semi} GROUP BY request_id")
        join_sql = f"{'' if scored_only else 'LEFT '}JOIN ({scores}) {alias} ON {alias}.request_id = s.request_id"
        join_params = [join.metric] + ([join.reference_model] if join.reference_model is not None else [])
    where, where_params = scope_sql, list(scope_params)
    if hoisted:
        where = f"({scope_sql}) AND s.service IN ({', '.join('?' * len(hoisted))})"
        where_params += hoisted
    inner = f"SELECT {', '.join(inner_cols)} FROM samples s {join_sql} WHERE {where}"

    aggs = [f"count_if({' AND '.join(conj)}) AS {name}" if conj else f"count(*) AS {name}"
            for conj, name in counts.items()]
    for index, (_, conj) in enumerate(values):
        only = f" FILTER (WHERE {' AND '.join(conj)})" if conj else ""
        aggs.append(f"sum(xv{index}){only} AS x{index}")
    sql = f"SELECT {_floor_minute_us('us')} AS m, {', '.join(aggs)} FROM ({inner}) GROUP BY 1"
    return _Build(sql, inner_params + join_params + where_params, columns)


def _service_of(item: SeriesSql) -> str | None:
    """The service a series is limited to, if its total names exactly one."""
    found = [atom.params[0] for atom in item.total.atoms() if atom.sql == SERVICE_SQL]
    return found[0] if len(found) == 1 else None


def _fill_samples_series(cur: duckdb.DuckDBPyConnection, series: Sequence[SeriesSql], scope_sql: str,
                         scope_params: list[Any]) -> None:
    """Recompute the rollups of ``series`` for the samples in scope: one pass over the
    samples for the series without scores, one per score metric for quality series (a join
    that only scored samples survive)."""
    by_join: dict[ScoreJoin | None, list[SeriesSql]] = {}
    for item in series:
        by_join.setdefault(item.score, []).append(item)
    scoped_ids = None
    if scope_sql != "TRUE" and any(join is not None for join in by_join):
        scoped_ids = "_slo_scope_ids"
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {scoped_ids} AS SELECT s.request_id FROM samples s WHERE {scope_sql}",
                    scope_params)
    for join, items in by_join.items():
        # (An incremental pass groups the few scores of its samples: no need to ask.)
        unique = join is not None and join.reference_model is None and scoped_ids is None and cur.execute(
            "SELECT count(DISTINCT reference_model) <= 1 FROM scores WHERE metric = ?", [join.metric]).fetchone()[0]
        build = _build_select(items, join, scope_sql, scope_params, scoped_ids, bool(unique))
        goods = ", ".join(good for _, good, _, _ in build.columns)
        totals = ", ".join(total for _, _, total, _ in build.columns)
        values = ", ".join(value or "NULL" for _, _, _, value in build.columns)
        # Wide (a row per minute) to long (a row per series and minute) with unnest, in
        # minute order (sorted before the unnest: 1/series_count of the rows to sort), so
        # the evaluation's time filter can skip row groups by their min/max.
        cur.execute(
            "INSERT INTO slo_rollups SELECT series, minute, good, total, value FROM ("
            f"SELECT unnest(?::VARCHAR[]) AS series, {minute_of_key_sql('m')} AS minute, "
            f"unnest([{goods}]) AS good, unnest([{totals}]) AS total, unnest([{values}]::DOUBLE[]) AS value "
            f"FROM ({build.sql} ORDER BY m)) WHERE total > 0",
            [[item.key for item, _, _, _ in build.columns], *build.params],
        )
    if scoped_ids is not None:
        cur.execute(f"DROP TABLE {scoped_ids}")


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
        stored_marks = _watermarks(cur)
        last_cycle = stored_marks.get("cycle")
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
        # Nothing ingested, scored or deleted since the last cycle, and no writer can be
        # in flight (overlap 0, a replay): nothing to recompute.
        unchanged = overlap <= timedelta(0) and all(
            mark is None or stored_marks.get(name) == mark
            for name, mark in zip(("samples", "scores", "tombstones"), marks))
        if old_samples and not unchanged:
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
                    f"AND {minute_key_sql('s.timestamp')} IN (SELECT {minute_key_sql('minute')} FROM _slo_dirty)",
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
        if unchanged and not new:
            # The same series as the last cycle, nothing new: its marks still hold.
            return RefreshReport(built=[], dirty_minutes=0, seconds=(utcnow() - started).total_seconds())
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
        f"SELECT DISTINCT {minute_of_key_sql(minute_key_sql('timestamp'))} AS minute FROM samples WHERE ingested_at > ?",
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
                f"SELECT DISTINCT {minute_of_key_sql(minute_key_sql('s.timestamp'))} FROM samples s WHERE s.request_id IN "
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
