"""Benchmark: one SLO evaluation cycle (10 SLOs, 28 days, N samples; default 10,000,000)
from the per-minute rollups, against the same SLIs computed by a plain SQL scan of the
samples (and scores) in the same run.

Prints one JSON object:
- ``rollup_first_build``: the first build of the rollups of all 10 SLOs, scores included:
  wall seconds and samples per wall second, and the process's CPU seconds (DuckDB's
  threads included) with samples per CPU second, which depend less on what else the
  machine runs (``load_avg_1m`` gives its load before and after the run);
- ``cycle``: a full evaluation cycle (`genobs.slo.engine.check`: rollup refresh, burn rates
  over 5m..3d and the window, alert lifecycle, statuses) with nothing new (median of runs);
- ``incremental_minute``: the same cycle after one new minute of samples was written (median
  of runs), without and with scores for 10 % of them (new scores cost a lookup of their
  samples' minutes: a join with the samples' request_id column);
- ``plain_sql_scan``: the same error ratios over the same windows computed straight from
  ``samples`` (joined with ``scores`` for the quality SLO), one query per SLO;
- ``agree``: whether both give the same good/total counts for every SLO and window;
- ``peak_rss_mib`` of the process.

    python bench/bench_slo.py                    # 10M samples
    python bench/bench_slo.py --rows 500000      # quicker
    # generate once, then time the rest alone (the lock keeps other benchmarks off):
    python bench/bench_slo.py --generate-only --db /tmp/slo10m.duckdb
    flock /tmp/genobs-bench.lock python bench/bench_slo.py --source-db /tmp/slo10m.duckdb
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

END = datetime(2026, 2, 1, tzinfo=timezone.utc)
DAYS = 28
SERVICE = "bench-api"

SPEC = f"""
slos:
  - {{name: availability, service: {SERVICE}, objective: 99.9, window: 28d, sli: {{kind: availability}}}}
  - {{name: availability-large, service: {SERVICE}, objective: 99.9, window: 28d, sli: {{kind: availability}}, filter: {{model: chat-large}}}}
  - {{name: availability-acme, service: {SERVICE}, objective: 99.5, window: 28d, sli: {{kind: availability}}, filter: {{tenant: acme}}}}
  - {{name: latency-2s, service: {SERVICE}, objective: 99, window: 28d, sli: {{kind: latency, threshold_ms: 2000}}}}
  - {{name: latency-1s-canary, service: {SERVICE}, objective: 95, window: 28d, sli: {{kind: latency, threshold_ms: 1000}}, filter: {{variant: canary}}}}
  - {{name: ttft, service: {SERVICE}, objective: 99, window: 28d, sli: {{kind: ttft, threshold_ms: 500}}}}
  - {{name: grounded, service: {SERVICE}, objective: 98, window: 28d, sli: {{kind: quality, metric: hallucination_score, good_below: 0.5}}}}
  - {{name: safety, service: {SERVICE}, objective: 99, window: 28d, sli: {{kind: safety}}}}
  - {{name: feedback, service: {SERVICE}, objective: 97, window: 28d, sli: {{kind: ratio, good: "coalesce(feedback, 0) >= 0", total: "status = 'ok'"}}}}
  - {{name: availability-small, service: {SERVICE}, objective: 99, window: 7d, sli: {{kind: availability}}, filter: {{model: chat-small}}}}
"""


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(store, rows: int, start: datetime, end: datetime, prefix: str, ingested_at: datetime,
              scores: bool = True) -> None:
    """rows samples evenly over [start, end), 10 % of them scored (``scores``), generated in SQL."""
    step_us = (end - start).total_seconds() * 1_000_000 / rows
    cur = store.cursor()
    cur.execute(
        f"""
        INSERT INTO samples (request_id, timestamp, service, model, model_version, variant, modality, status,
                             latency_ms, ttft_ms, safety_flagged, feedback, tenant, cost_usd, ingested_at, source)
        SELECT '{prefix}' || i, ?::TIMESTAMPTZ + to_microseconds(CAST(floor(i * {step_us!r}) AS BIGINT)), '{SERVICE}',
               CASE WHEN i % 3 = 0 THEN 'chat-small' ELSE 'chat-large' END, 'v1',
               CASE WHEN i % 10 = 0 THEN 'canary' ELSE 'primary' END, 'text',
               CASE WHEN random() < 0.002 THEN 'error' WHEN random() < 0.0005 THEN 'timeout' ELSE 'ok' END,
               exp(6.5 + 0.4 * random() * 3), 100 + random() * 500, random() < 0.003,
               CASE WHEN random() < 0.05 THEN -1 WHEN random() < 0.1 THEN 1 ELSE NULL END,
               CASE WHEN i % 7 = 0 THEN 'acme' ELSE 'other' END, random() * 0.01, ?, 'bench'
        FROM range({rows}) t(i)
        """,
        [start, ingested_at],
    )
    if not scores:
        return
    cur.execute(
        f"""
        INSERT INTO scores (request_id, metric, value, evaluator, reference_model, evaluated_at)
        SELECT '{prefix}' || i, 'hallucination_score', CASE WHEN random() < 0.03 THEN 0.9 ELSE 0.1 END,
               'hallucination', 'builtin', ?
        FROM range({rows}) t(i) WHERE i % 10 = 0
        """,
        [ingested_at],
    )


def _plain_scan(store, spec, at: datetime) -> dict[str, dict[str, tuple[int, int]]]:
    """Each SLO's good/total over each window, straight from samples (one query per SLO)."""
    from genobs.slo.burn import REPORT_WINDOWS, floor_minute
    from genobs.slo.sli import series_for_slo
    from genobs.slo.timeutil import format_duration

    end = floor_minute(at) + timedelta(minutes=1)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for slo in spec.slos:
        series = series_for_slo(slo.spec)
        windows = list(REPORT_WINDOWS) + [slo.spec.window_span]
        total = series.total.sql.replace("{q}", "q")
        good = series.good.sql.replace("{q}", "q")
        join = ""
        join_params: list = []
        if series.score is not None:
            join = ("LEFT JOIN (SELECT request_id, max(value) AS v FROM scores WHERE metric = ? AND value IS NOT NULL "
                    "GROUP BY request_id) q ON q.request_id = s.request_id")
            join_params = [series.score.metric]
        columns, params = [], []
        for w in windows:
            columns.append(f"count(*) FILTER (WHERE s.timestamp >= ? AND ({total}) AND ({good}))")
            params += [end - w, *series.total.params, *series.good.params]
            columns.append(f"count(*) FILTER (WHERE s.timestamp >= ? AND ({total}))")
            params += [end - w, *series.total.params]
        row = store.fetchone(
            f"SELECT {', '.join(columns)} FROM samples s {join} WHERE s.timestamp >= ? AND s.timestamp < ?",
            [*params, *join_params, end - max(windows), end],
        )
        out[slo.name] = {("window" if w == slo.spec.window_span and w not in REPORT_WINDOWS else format_duration(w)):
                         (int(row[2 * i]), int(row[2 * i + 1])) for i, w in enumerate(windows)}
    return out


def _from_statuses(statuses) -> dict[str, dict[str, tuple[int, int]]]:
    from genobs.slo.burn import REPORT_WINDOWS
    from genobs.slo.timeutil import format_duration

    out = {}
    for status in statuses:
        item = {format_duration(w): (status.windows[w].good, status.windows[w].total) for w in REPORT_WINDOWS}
        if status.slo.spec.window_span not in REPORT_WINDOWS:
            item["window"] = (status.window.good, status.window.total)
        out[status.slo.name] = item
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scan-runs", type=int, default=1, help="runs of the plain SQL scan (slow at 10M)")
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temporary one)")
    parser.add_argument("--generate-only", action="store_true", help="generate the samples into --db and stop")
    parser.add_argument("--source-db", type=Path, default=None,
                        help="start from a copy of this database (from --generate-only, same --rows) instead of "
                             "generating: the timed part alone, e.g. under a lock")
    args = parser.parse_args()
    if args.generate_only and args.db is None:
        parser.error("--generate-only needs --db")

    from genobs.slo import rollups
    from genobs.slo.engine import all_series, check
    from genobs.slo.spec import parse_spec
    from genobs.store import Store

    load_start = round(os.getloadavg()[0], 2)
    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "bench_slo.duckdb"
    if args.source_db:
        shutil.copy(args.source_db, db)
    store = Store.open(db)
    spec = parse_spec(SPEC, "bench")
    now = datetime.now(timezone.utc)
    start = END - timedelta(days=DAYS)
    t0 = time.perf_counter()
    generate_s: float | None = None
    if args.source_db:
        (found,) = store.fetchone("SELECT count(*) FROM samples")
        if found != args.rows:
            raise SystemExit(f"{args.source_db} holds {found} samples, not --rows {args.rows}")
        # The first write after opening a file loads its metadata, and DuckDB's Python client
        # imports pandas at its first statement with parameters (~1.5 s): paid before the clock
        # starts, as when the data was generated by this process.
        store.execute("INSERT INTO slo_watermarks VALUES (?, now())", ["bench-warm"])
        store.execute("DELETE FROM slo_watermarks WHERE name = ?", ["bench-warm"])
    else:
        _generate(store, args.rows, start, END, "r", now - timedelta(hours=1))
        store.execute("CHECKPOINT")
        generate_s = time.perf_counter() - t0
    if args.generate_only:
        store.close()
        return

    t0, c0 = time.perf_counter(), time.process_time()
    build = rollups.refresh(store, all_series(spec))
    build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    (rollup_rows,) = store.fetchone("SELECT count(*) FROM slo_rollups")

    at = END - timedelta(seconds=1)
    check(store, spec, at=at, overlap=timedelta(0))   # warm
    cycles = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = check(store, spec, at=at, overlap=timedelta(0))
        cycles.append(time.perf_counter() - t0)

    per_minute = max(1, args.rows // (DAYS * 1440))
    increments: dict[str, list[float]] = {"samples_only": [], "samples_and_scores": []}
    increments_cpu: dict[str, list[float]] = {"samples_only": [], "samples_and_scores": []}
    dirty = []
    for k in range(2 * args.runs):
        kind = "samples_only" if k < args.runs else "samples_and_scores"
        minute = END + timedelta(minutes=k)
        _generate(store, per_minute, minute, minute + timedelta(minutes=1), f"n{k}-", datetime.now(timezone.utc),
                  scores=kind == "samples_and_scores")
        t0, c0 = time.perf_counter(), time.process_time()
        inc = check(store, spec, at=minute + timedelta(seconds=59), overlap=timedelta(0))
        increments[kind].append(time.perf_counter() - t0)
        increments_cpu[kind].append(time.process_time() - c0)
        dirty.append(inc.refresh.dirty_minutes if inc.refresh else None)

    scans = []
    for _ in range(args.scan_runs):
        t0 = time.perf_counter()
        plain = _plain_scan(store, spec, at)
        scans.append(time.perf_counter() - t0)
    ours = _from_statuses(check(store, spec, at=at, manage_alerts=False, overlap=timedelta(0)).statuses)
    mismatches = [(slo, w, ours[slo].get(w), counts) for slo, windows in plain.items()
                  for w, counts in windows.items() if ours[slo].get(w) != counts]

    cycle_s = statistics.median(cycles)
    scan_s = statistics.median(scans)
    report = {
        "benchmark": "slo",
        "rows": args.rows,
        "slos": len(spec.slos),
        "days": DAYS,
        "scored_rows": args.rows // 10,
        "generate_s": None if generate_s is None else round(generate_s, 2),
        "rollup_first_build": {"seconds": round(build_s, 3), "samples_per_s": round(args.rows / build_s),
                               "cpu_s": round(build_cpu_s, 3), "samples_per_cpu_s": round(args.rows / build_cpu_s),
                               "rollup_rows": int(rollup_rows), "series": len(build.built)},
        "cycle": {"median_s": round(cycle_s, 4), "runs_s": [round(c, 4) for c in cycles]},
        "incremental_minute": {
            "samples_per_minute": per_minute, "dirty_minutes": dirty,
            **{kind: {"median_s": round(statistics.median(runs), 4), "runs_s": [round(c, 4) for c in runs],
                      "median_cpu_s": round(statistics.median(increments_cpu[kind]), 4)}
               for kind, runs in increments.items()},
        },
        "plain_sql_scan": {"median_s": round(scan_s, 3), "runs_s": [round(s, 3) for s in scans]},
        "speedup_cycle_vs_scan": round(scan_s / cycle_s, 1),
        "agree": not mismatches,
        "mismatches": mismatches[:5],
        "peak_rss_mib": round(_peak_rss_mib()),
        "duckdb_threads": store.fetchone("SELECT current_setting('threads')")[0],
        "machine_cpus": os.cpu_count(),
        "load_avg_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
    }
    store.close()
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
