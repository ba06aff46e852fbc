"""A/B of the SLO rollups against an earlier revision's: the first build of the rollups of
bench_slo.py's 10 SLOs over N samples (scores included), then one refresh after one new
minute of samples and scores, with the rollups code of ``--rev`` (read with `git show`)
and of the working tree, interleaved on copies of the same database.

Prints one JSON object: per contender, wall and CPU seconds of each run (CPU: the whole
process, DuckDB's threads included), samples per wall and per CPU second of its best
build, and whether both contenders wrote the same rollups. The database is generated
once (``--db``, kept for later runs); generating 10M samples takes minutes.

    python bench/ab_slo_rollups.py --rows 10000000 --rev 6d01236 --db /tmp/slo-ab.duckdb
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_slo  # noqa: E402  (this folder's benchmark: its data generator and SLO spec)


def _module_from_rev(rev: str, path: str, name: str, replace: dict[str, str]) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
    for old, new in replace.items():
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module  # dataclasses look their module up here
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def _contenders(rev: str) -> dict[str, tuple[Any, Any]]:
    """name -> (rollups module, series of the bench's spec)."""
    from genobs.slo import rollups
    from genobs.slo.engine import all_series
    from genobs.slo.spec import parse_spec

    spec = parse_spec(bench_slo.SPEC, "bench")
    old_sli = _module_from_rev(rev, "slo/sli.py", "_ab_old_sli", {})
    old_rollups = _module_from_rev(rev, "slo/rollups.py", "_ab_old_rollups",
                                   {"from genobs.slo.sli import": "from _ab_old_sli import"})
    old_series = [old_sli.series_for_slo(s.spec) for s in spec.slos] + [old_sli.series_for_spend(s) for s in spec.spend]
    return {f"rev {rev}": (old_rollups, old_series), "working tree": (rollups, all_series(spec))}


def _snapshot(store: Any) -> list[tuple[Any, ...]]:
    return store.fetchall("SELECT series, minute, good, total, round(value, 9) FROM slo_rollups ORDER BY ALL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rev", default="6d01236", help="git revision of the other contender's slo/rollups.py and slo/sli.py")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--db", type=Path, default=None, help="generated database to reuse (created if missing)")
    parser.add_argument("--generate-only", action="store_true", help="create --db and stop (untimed)")
    args = parser.parse_args()

    from genobs.store import Store

    tmp = tempfile.TemporaryDirectory()
    source = args.db or Path(tmp.name) / "source.duckdb"
    if not source.exists():
        store = Store.open(source)
        bench_slo._generate(store, args.rows, bench_slo.END - timedelta(days=bench_slo.DAYS), bench_slo.END, "r",
                            datetime.now(timezone.utc) - timedelta(hours=1))
        # The new minute's samples and scores, generated once and kept aside, so that each
        # contender's refresh sees the same rows.
        (rows,) = store.fetchone("SELECT count(*) FROM samples")
        minute = bench_slo.END
        bench_slo._generate(store, max(1, rows // (bench_slo.DAYS * 1440)), minute, minute + timedelta(minutes=1), "n-",
                            datetime.now(timezone.utc))
        store.execute("CREATE TABLE ab_minute_samples AS SELECT * FROM samples WHERE request_id LIKE 'n-%'")
        store.execute("CREATE TABLE ab_minute_scores AS SELECT * FROM scores WHERE request_id LIKE 'n-%'")
        store.execute("DELETE FROM scores WHERE request_id LIKE 'n-%'")
        store.execute("DELETE FROM samples WHERE request_id LIKE 'n-%'")
        store.execute("CHECKPOINT")
        store.close()
    if args.generate_only:
        return
    with Store.open(source, read_only=True) as ro:
        (rows,) = ro.fetchone("SELECT count(*) FROM samples")
        (per_minute,) = ro.fetchone("SELECT count(*) FROM ab_minute_samples")
        (threads,) = ro.fetchone("SELECT current_setting('threads')")
    contenders = _contenders(args.rev)
    load_start = round(os.getloadavg()[0], 2)
    results: dict[str, dict[str, list[float]]] = {name: {"build_s": [], "build_cpu_s": [], "minute_s": [], "minute_cpu_s": []}
                                                  for name in contenders}
    snapshots: dict[str, list[tuple[Any, ...]]] = {}
    for rep in range(args.reps):
        for name, (module, series) in contenders.items():
            db = Path(tmp.name) / "run.duckdb"
            shutil.copy(source, db)
            store = Store.open(db)
            # The first write after opening a file loads its metadata, and DuckDB's Python
            # client imports pandas at its first statement with parameters: not the rollups'
            # cost, so paid before the clock starts (as when this process generated the data).
            store.execute("INSERT INTO slo_watermarks VALUES (?, now())", ["ab-warm"])
            store.execute("DELETE FROM slo_watermarks WHERE name = ?", ["ab-warm"])
            t0, c0 = time.perf_counter(), time.process_time()
            module.refresh(store, series)
            results[name]["build_s"].append(time.perf_counter() - t0)
            results[name]["build_cpu_s"].append(time.process_time() - c0)
            if rep == 0:
                snapshots[name] = _snapshot(store)
            store.execute("INSERT INTO samples SELECT * REPLACE (now() AS ingested_at) FROM ab_minute_samples")
            store.execute("INSERT INTO scores SELECT * REPLACE (now() AS evaluated_at) FROM ab_minute_scores")
            t0, c0 = time.perf_counter(), time.process_time()
            module.refresh(store, series, overlap=timedelta(0))
            results[name]["minute_s"].append(time.perf_counter() - t0)
            results[name]["minute_cpu_s"].append(time.process_time() - c0)
            if rep == 0:
                snapshots[name + " +minute"] = _snapshot(store)
            store.close()
            db.unlink()
            print(f"rep {rep} {name}: build {results[name]['build_s'][-1]:.2f} s", file=sys.stderr, flush=True)
    report: dict[str, Any] = {"benchmark": "slo rollups A/B", "rows": rows, "samples_per_new_minute": per_minute,
                              "reps": args.reps, "contenders": {}}
    for name, runs in results.items():
        best, best_cpu = min(runs["build_s"]), min(runs["build_cpu_s"])
        report["contenders"][name] = {
            **{key: [round(v, 3) for v in values] for key, values in runs.items()},
            "best_build_samples_per_s": round(rows / best),
            "best_build_samples_per_cpu_s": round(rows / best_cpu),
        }
    names = list(contenders)
    report["same_rollups"] = {"after build": snapshots[names[0]] == snapshots[names[1]],
                              "after the new minute": snapshots[names[0] + " +minute"] == snapshots[names[1] + " +minute"]}
    report["load_avg_1m"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    report["duckdb_threads"] = threads
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
