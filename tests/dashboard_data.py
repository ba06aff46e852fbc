"""The demo database the dashboard tests look at: the shipped sample data ingested through
the real collectors, GPU readings, hallucination scores for the canary day, one drift run
the demo SLOs (sample_data/slo.yaml) replayed over the week by the SLO engine and the
canary judge's verdict on the canary day (DESIGN §8; sample_data/README.md lists the planted incidents)."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from genobs import sample_data
from genobs.store import Store

CANARY_DAY = "2026-11-22T00:00:00Z"
# Hallucination scores for the first 14 hours of the canary day: ~1,300 answers of both arms
# (about a minute on a CPU), enough for the regression to show; the rest stays unscored.
SCORED_UNTIL = "2026-11-22T14:00:00Z"
WHOLE_DEMO = "2026-11-16T00:00:00Z..2026-11-23T00:00:00Z"


def build_demo_db(path: Path, *, evaluate: bool = True, drift: bool = True, slo: bool = True,
                  canary: bool = True) -> dict[str, float]:
    """Build the demo database at ``path``; returns seconds per stage."""
    from genobs.collectors.files import ingest_file
    from genobs.collectors.gpu_records import store_readings
    from genobs.collectors.pipeline import IngestOptions

    data = sample_data.data_dir()
    timings: dict[str, float] = {}
    store = Store.open(path)
    try:
        t = time.perf_counter()
        for name in sample_data.SAMPLE_FILES:
            source = data / name
            if name.endswith(".gz"):
                plain = path.with_name(name[:-3])
                plain.write_bytes(gzip.decompress(source.read_bytes()))
                source = plain
            report = ingest_file(store, str(source), options=IngestOptions())
            assert report.result.rejected == 0, report
        with gzip.open(data / sample_data.GPU_TELEMETRY_FILE, "rt") as fh:
            store_readings(store, [json.loads(line) for line in fh if line.strip()], source="test")
        timings["ingest_s"] = time.perf_counter() - t
        if evaluate:
            from genobs.evaluators.runner import run_evaluators

            t = time.perf_counter()
            run_evaluators(store, ["hallucination"], device="cpu", since=CANARY_DAY, until=SCORED_UNTIL,
                           skip_unavailable=True)
            timings["evaluate_s"] = time.perf_counter() - t
        if drift:
            from genobs.evaluators.drift import run_drift

            t = time.perf_counter()
            run_drift(store, reference="2026-11-16..2026-11-20", current="2026-11-20..2026-11-23",
                      service="chat-api", device="cpu", embedding_sample=60, permutations=100)
            timings["drift_s"] = time.perf_counter() - t
        if slo:
            from datetime import timedelta

            from genobs.slo.replay import replay_week
            from genobs.slo.spec import load_spec

            # The demo's SLOs evaluated hour by hour over the week, as a server would have.
            t = time.perf_counter()
            spec = load_spec(Path(sample_data.__file__).resolve().parent / "slo.yaml")
            replay_week(store, spec, None, step=timedelta(hours=1))
            timings["slo_s"] = time.perf_counter() - t
        if canary:
            from genobs.slo.canary_run import run_canary

            t = time.perf_counter()
            run_canary(store, "variant=baseline", "variant=canary", since=CANARY_DAY, until="2026-11-23T00:00:00Z")
            timings["canary_s"] = time.perf_counter() - t
    finally:
        store.close()
    return timings


def write_ui_config(folder: Path) -> Path:
    """genobs.yaml pointing images.root at the shipped demo images."""
    config = folder / "genobs.yaml"
    config.write_text(f"images:\n  root: {json.dumps(str(sample_data.data_dir()))}\n")
    return config


_shared: dict[str, Path] = {}


def shared_demo_db(tmp_path_factory) -> Path:
    """One demo database per test process for every dashboard test module (it takes a couple
    of minutes to build: ingest, scoring, drift, the SLO replay, the canary verdict)."""
    if "db" not in _shared:
        folder = tmp_path_factory.mktemp("dash_demo")
        path = folder / "demo.duckdb"
        build_demo_db(path)
        write_ui_config(folder)
        _shared["db"] = path
    return _shared["db"]
