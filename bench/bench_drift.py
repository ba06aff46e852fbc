"""Benchmark: genobs drift (Evidently's decisions from DuckDB aggregates) vs Evidently's own
DataDriftPreset, on N reference vs N current samples (default 1,000,000 vs 1,000,000).

Compared against: ``evidently.Report([DataDriftPreset()])`` (evidently 0.7) run in this same
benchmark on the same rows (loaded from the same DuckDB file into pandas).

Prints one JSON object: our time (``run_drift`` on the store, tabular features, results written),
Evidently's time (the report run alone, and the time to load its DataFrames), the ratio, the
per-feature decision agreement and drift share, and the peak RSS of each side (each side runs in
its own child process, so the peaks are separate).

    python bench/bench_drift.py                 # 1M vs 1M
    python bench/bench_drift.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REFERENCE = "2026-01-01..2026-01-10"
CURRENT = "2026-01-11..2026-01-20"
SERVICE = "bench-api"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(db: Path, rows: int) -> dict:
    """rows reference samples (Jan 1-10) and rows current samples (Jan 11-20), generated in SQL.
    Current: latency and hallucination_score drift, cost drifts slightly, the rest does not."""
    from genobs.store import Store

    t0 = time.perf_counter()
    store = Store.open(db)
    cur = store.cursor()
    cur.execute("SELECT setseed(0.42)")
    normal = "(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"
    for side, day0, shift in (("r", "2026-01-01", 0.0), ("c", "2026-01-11", 1.0)):
        cur.execute(
            f"""
            INSERT INTO samples (request_id, timestamp, service, model, model_version, variant, modality,
                                 prompt, response, status, latency_ms, ttft_ms, input_tokens, output_tokens,
                                 cost_usd, tenant, ingested_at, source)
            SELECT '{side}' || i,
                   TIMESTAMPTZ '{day0} 00:00:00+00' + to_microseconds(CAST(i AS BIGINT) * 777600000000 // $n),
                   '{SERVICE}',
                   CASE WHEN random() < 0.6 + 0.02 * {shift} THEN 'chat-large' WHEN random() < 0.7 THEN 'chat-small'
                        ELSE 'chat-xl' END,
                   'v1', 'primary', 'text', 'p', repeat('a', CAST(random() * 200 AS INTEGER)),
                   CASE WHEN random() < 0.01 THEN 'error' ELSE 'ok' END,
                   exp(6 + 0.3 * {shift} + 0.5 * {normal}),
                   exp(5 + 0.5 * {normal}),
                   CAST(random() * 500 AS BIGINT),
                   CAST(random() * (800 + 20 * {shift}) AS BIGINT),
                   random() * 0.01 * (1 + 0.05 * {shift}),
                   't' || CAST(floor(random() * 50) AS INTEGER),
                   now(), 'bench'
            FROM range($n) t(i)
            """,
            {"n": rows},
        )
        cur.execute(
            f"""
            INSERT INTO scores (request_id, metric, value, evaluator, reference_model, evaluated_at)
            SELECT '{side}' || i, 'hallucination_score', least(1, greatest(0, 0.2 + 0.1 * {shift} + 0.15 * {normal})),
                   'hallucination', 'bench', now()
            FROM range($n) t(i)
            """,
            {"n": rows},
        )
    store.close()
    return {"build_s": round(time.perf_counter() - t0, 2)}


def phase_ours(db: Path) -> dict:
    from genobs.evaluators.drift import run_drift
    from genobs.store import Store

    store = Store.open(db)
    t0 = time.perf_counter()
    summary = run_drift(store, reference=REFERENCE, current=CURRENT, service=SERVICE, embeddings=False)
    elapsed = time.perf_counter() - t0
    store.close()
    return {
        "seconds": elapsed,
        "peak_rss_mib": _peak_rss_mib(),
        "n_reference": summary.n_reference,
        "n_current": summary.n_current,
        "drift_share": summary.tabular_drift_share,
        "features": {
            f.feature: {"method": f.method, "statistic": f.statistic, "drifted": f.drifted,
                        "computed": f.details.get("computed"), "bounds": f.details.get("bounds")}
            for f in summary.features
        },
    }


def phase_evidently(db: Path) -> dict:
    warnings.filterwarnings("ignore")
    from genobs.evaluators.drift import load_feature_frames
    from helpers.drift_evidently import evidently_drift
    from genobs.store import Store

    store = Store.open(db)
    t0 = time.perf_counter()
    ref, cur, numerical, categorical = load_feature_frames(store, REFERENCE, CURRENT, SERVICE)
    load_s = time.perf_counter() - t0
    store.close()
    numerical = [c for c in numerical if ref[c].notna().any() and cur[c].notna().any()]
    t0 = time.perf_counter()
    result = evidently_drift(ref, cur, numerical, categorical)
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "load_frames_seconds": load_s,
        "peak_rss_mib": _peak_rss_mib(),
        "drift_share": result.drift_share,
        "features": {k: {"method": v.method, "score": v.score, "drifted": v.drifted} for k, v in result.columns.items()},
    }


def _child(phase: str, db: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--db", str(db)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="samples per window")
    parser.add_argument("--phase", choices=["ours", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # Evidently's side: a test oracle
    if args.phase:
        print(json.dumps(phase_ours(args.db) if args.phase == "ours" else phase_evidently(args.db), default=str))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        built = build(db, args.rows)
        ours = _child("ours", db)
        evidently = _child("evidently", db)
    compared = [k for k in evidently["features"]]
    agree = [k for k in compared if ours["features"][k]["drifted"] == evidently["features"][k]["drifted"]
             and ours["features"][k]["method"] == evidently["features"][k]["method"]]
    report = {
        "benchmark": "drift: genobs run_drift (DuckDB aggregates) vs evidently DataDriftPreset",
        "compared_against": "evidently 0.7 Report([DataDriftPreset()]) on the same rows, same run",
        "rows_reference": ours["n_reference"],
        "rows_current": ours["n_current"],
        "features": len(compared),
        "ours_seconds": round(ours["seconds"], 3),
        "evidently_seconds": round(evidently["seconds"], 3),
        "evidently_load_frames_seconds": round(evidently["load_frames_seconds"], 3),
        "ours_over_evidently": round(ours["seconds"] / evidently["seconds"], 4),
        "goal_ours_over_evidently_at_most": round(1 / 3, 4),
        "decisions_agree": len(agree),
        "decisions_total": len(compared),
        "all_decisions_agree": len(agree) == len(compared),
        "drift_share_ours": ours["drift_share"],
        "drift_share_evidently": evidently["drift_share"],
        "ours_peak_rss_mib": round(ours["peak_rss_mib"], 1),
        "evidently_peak_rss_mib": round(evidently["peak_rss_mib"], 1),
        "per_feature": {
            k: {"method": evidently["features"][k]["method"],
                "evidently_score": evidently["features"][k]["score"],
                "ours_statistic": ours["features"][k]["statistic"],
                "ours_computed": ours["features"][k]["computed"],
                "evidently_drifted": evidently["features"][k]["drifted"],
                "ours_drifted": ours["features"][k]["drifted"]}
            for k in compared
        },
        "build_seconds": built["build_s"],
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
