"""A longer run of the ingest fuzzers of tests/test_ingest_fuzz.py (same generators and
oracle, tests/helpers/fuzz_records.py), with a budget per fuzzer and a seed; prints JSON with how
many cases each fuzzer tried and what failed (nothing, when all is well).

    .venv/bin/python bench/fuzz_ingest.py --examples 300 --seed 1

Fuzzers: schemathesis over every OpenAPI operation against a real server on loopback (no
5xx); generated records (valid and mutated) as NDJSON bodies on the small-batch path and,
padded past 512 records, on the vectorised path; and through file ingest (JSONL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import httpx
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.fuzz_records import case, check_stored  # noqa: E402

from genobs.collectors.files import ingest_file  # noqa: E402
from genobs.collectors.pipeline import FAST_PATH_MAX_RECORDS, IngestOptions  # noqa: E402
from genobs.runtime import ServerSettings, start_platform as start_background  # noqa: E402
from genobs.store import Store  # noqa: E402


def run(name: str, examples: int, seed_value: int, body: Callable[[Any], None], strategy: Any,
        report: dict[str, Any]) -> None:
    tried = {"n": 0}

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(value=strategy)
    def fuzz(value: Any) -> None:
        tried["n"] += 1
        body(value)

    started = time.perf_counter()
    try:
        fuzz()
        failure = None
    except Exception as exc:  # noqa: BLE001 - reported, the other fuzzers still run
        failure = f"{type(exc).__name__}: {exc}"[:2000]
        traceback.print_exc(file=sys.stderr)
    report["fuzzers"][name] = {"cases": tried["n"], "seconds": round(time.perf_counter() - started, 1),
                               "failure": failure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="cases per fuzzer (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report: dict[str, Any] = {"examples_per_fuzzer": args.examples, "seed": args.seed, "fuzzers": {}}
    folder = Path(tempfile.mkdtemp(prefix="genobs-fuzz-"))
    server = start_background(folder / "genobs.duckdb", settings=ServerSettings(poll_nvml=False, ingest_token=None))
    counter = {"n": 0}
    statuses: dict[int, int] = {}

    def source() -> str:
        counter["n"] += 1
        return f"fuzz-{counter['n']}"

    try:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            def call(generated: Any, label: str = operation.label) -> None:
                response = generated.call(base_url=server.url, timeout=60)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (label, response.status_code, response.text[:500])

            run(f"schemathesis {operation.label}", args.examples, args.seed, call, operation.as_strategy(), report)

        def http(padded: bool) -> Callable[[Any], None]:
            def body(data: st.DataObject) -> None:
                src = source()
                generated = data.draw(case(src, max_records=8 if padded else 6))
                lines = list(generated.lines)
                padding = FAST_PATH_MAX_RECORDS + 1 - len(lines) if padded else 0
                lines += [json.dumps({"request_id": f"{src}-pad-{i}", "timestamp": 1736935200, "model": "m",
                                      "model_version": "v"}).encode() for i in range(padding)]
                response = httpx.post(server.url + "/v1/samples", content=b"\n".join(lines), timeout=60,
                                      headers={"Content-Type": "application/x-ndjson", "X-Genobs-Source": src})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code in (200, 400), response.text[:500]
                assert response.json()["accepted"] == len(generated.accepted) + padding
                check_stored(server.store, generated, src)
            return body

        run("records over HTTP, small batches", args.examples, args.seed, http(False), st.data(), report)
        run("records over HTTP, >512 records", max(1, args.examples // 10), args.seed, http(True), st.data(), report)

        files = Store.open(folder / "files.duckdb")

        def file_ingest(data: st.DataObject) -> None:
            src = source()
            path = folder / f"{src}.jsonl"
            generated = data.draw(case(src))
            path.write_bytes(b"\n".join(generated.lines) + b"\n")
            ingest_file(files, str(path), options=IngestOptions())
            check_stored(files, generated, f"file:{os.path.abspath(path)}")

        run("records through file ingest", args.examples, args.seed, file_ingest, st.data(), report)
        files.close()
    finally:
        server.stop()
        server.store.close()
    report["http_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    report["total_cases"] = sum(f["cases"] for f in report["fuzzers"].values())
    report["failures"] = {k: v["failure"] for k, v in report["fuzzers"].items() if v["failure"]}
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    main()
