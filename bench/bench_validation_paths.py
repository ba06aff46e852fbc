"""Benchmark: the two validation paths of the ingest pipeline by input size. Prints JSON.

Small inputs are checked in Python (collectors/fast_validation.py), larger ones by the
vectorised DuckDB query (collectors/validation.py), whose planning costs tens of
milliseconds whatever the size. This measures one ``ingest_lines``-sized call through
each path (validate + redact + upsert + commit, into a fresh DuckDB file) for several
batch sizes, to place collectors.pipeline.FAST_PATH_MAX_RECORDS where they cross.

    python bench/bench_validation_paths.py [--sizes 1,16,64,256,512,1000,2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from genobs.collectors import fast_validation, pipeline
from genobs.collectors.pipeline import IngestOptions
from genobs.store import Store


def sample(request_id: str, i: int) -> dict:
    return {
        "request_id": request_id, "timestamp": "2025-01-15T10:00:00Z", "service": "chat-api",
        "model": "chat-large", "model_version": "2025-01-01", "variant": "canary" if i % 10 == 0 else "baseline",
        "prompt": f"Summarise the quarterly report for account {i} in three sentences.",
        "response": f"Revenue grew {i % 17}% quarter over quarter; costs were flat; outlook is stable."
                    + (" Mail ops@example.com." if i % 25 == 0 else ""),
        "latency_ms": 400.0 + (i % 900), "ttft_ms": 80.0 + (i % 50), "input_tokens": 120 + i % 40,
        "output_tokens": 60 + i % 30, "status": "ok" if i % 50 else "error",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,16,64,256,512,1000,2000")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    options = IngestOptions()
    store = Store.open(Path(tempfile.mkdtemp(prefix="genobs-bench-")) / "paths.duckdb")
    rows = []
    for n in sizes:
        timings: dict[str, list[float]] = {"python": [], "sql": []}
        for r in range(args.repeats):
            for path in ("python", "sql"):
                lines = [json.dumps(sample(f"{path}-{n}-{r}-{i}", i)).encode() for i in range(n)]
                started = time.perf_counter()
                if path == "python":
                    checked = fast_validation.check_lines(lines, 1, redact=True)
                    assert checked is not None
                    result = pipeline._ingest_checked(store, [(checked, "bench")])[0]
                else:
                    result = pipeline._ingest_with_sql(store, lines, source="bench", options=options, first_line=1)
                timings[path].append(time.perf_counter() - started)
                assert result.accepted == n
        py, sql = statistics.median(timings["python"]), statistics.median(timings["sql"])
        rows.append({"records": n, "python_ms": round(py * 1000, 2), "sql_ms": round(sql * 1000, 2),
                     "python_records_per_s": round(n / py), "sql_records_per_s": round(n / sql),
                     "faster": "python" if py < sql else "sql"})
    store.close()
    print(json.dumps({
        "benchmark": "bench_validation_paths",
        "compares": "Python small-batch path vs vectorised SQL path, per ingest call (median)",
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "fast_path_max_records": pipeline.FAST_PATH_MAX_RECORDS, "results": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
