"""`genobs demo --no-serve`, the main job, end to end on the shipped sample data.

Runs the real command in its own process and checks what a user is promised: every stage
runs, the data lands (files, HTTP API, SDK, GPU telemetry), and the planted incidents show
up in the report and the database (sample_data/README.md lists them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from genobs import sample_data
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo")
    db = workdir / "demo.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("GENOBS_DB", "GENOBS_CONFIG", "GENOBS_INGEST_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "genobs.cli", "demo", "--no-serve", "--db", str(db)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )
    return proc, db


def test_demo_runs_every_stage_and_exits_zero(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())
    for stage in ("1. collect", "2. evaluate", "3. drift", "4. incidents"):
        assert stage in out
    assert "done (--no-serve)" in out
    # CLIP weights are not on this machine: the demo says so plainly and goes on.
    assert "clip: skipped" in out and "not available offline" in out


def test_demo_data_arrives_through_file_http_and_sdk(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, db = demo_run
    con = duckdb.connect(str(db), read_only=True)
    try:
        by_source = dict(con.execute(
            "SELECT CASE WHEN source LIKE 'file:%' THEN 'file' ELSE source END, count(*) FROM samples GROUP BY 1"
        ).fetchall())
        assert sum(by_source.values()) == 30_032 + 311
        assert by_source.get("sdk") == 1000                 # the newest chat samples, via genobs.sdk
        assert by_source.get("demo-http") == 311            # the image samples, via POST /v1/samples
        assert con.execute("SELECT count(*) FROM gpu_telemetry").fetchone()[0] == 40_320
        assert con.execute("SELECT count(*) FROM dead_letter").fetchone()[0] == 0
        # PII planted in prompts is redacted before storage.
        leaked = con.execute(
            "SELECT count(*) FROM samples WHERE regexp_matches(prompt, '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\\.[a-z]{2,}')"
        ).fetchone()[0]
        assert leaked == 0
    finally:
        con.close()


def test_canary_hallucination_regression_shows_in_the_scores(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, db = demo_run
    con = duckdb.connect(str(db), read_only=True)
    try:
        shares = dict(con.execute(
            "SELECT s.variant, avg(CASE WHEN sc.label = 'hallucinated' THEN 1.0 ELSE 0.0 END) "
            "FROM scores sc JOIN samples s USING (request_id) "
            "WHERE sc.metric = 'hallucination_score' AND sc.error IS NULL GROUP BY 1"
        ).fetchall())
    finally:
        con.close()
    assert set(shares) == {"baseline", "canary"}
    assert shares["canary"] > 2 * shares["baseline"]


def test_incidents_and_drift_are_reported(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, db = demo_run
    out = proc.stdout
    burst = sample_data.INCIDENTS["error_burst"].start.strftime("%Y-%m-%d %H:00")
    assert burst in out                                      # the worst hour by error rate
    assert "gpu-node-a" in out                               # the thermal-throttling GPU
    con = duckdb.connect(str(db), read_only=True)
    try:
        drifted = {row[0] for row in con.execute(
            "SELECT feature FROM drift_results WHERE drifted AND feature LIKE '%embedding'").fetchall()}
    finally:
        con.close()
    assert "prompt_embedding" in drifted                     # the topic drift from 2026-11-20


def test_canary_gate_fails_on_hallucination_while_latency_passes(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Issue 12 item 6: v1.6 against v1.5 on the canary day fails on answer quality, and the
    latency-type metrics pass (the incident is a quality regression, not a speed one)."""
    proc, _ = demo_run
    report = proc.stdout[proc.stdout.index("6. canary"):]
    assert "canary verdict: FAIL" in report
    assert "critical metric failed: hallucination_score High" in report
    rows = {line.split()[0]: line.split()[1] for line in report.splitlines()
            if line.split() and line.split()[0] in ("latency_ms", "ttft_ms", "output_tokens", "cost_usd",
                                                     "hallucination_score", "hallucination_rate")}
    assert rows == {"latency_ms": "PASS", "ttft_ms": "PASS", "output_tokens": "PASS", "cost_usd": "PASS",
                    "hallucination_score": "HIGH", "hallucination_rate": "HIGH"}
