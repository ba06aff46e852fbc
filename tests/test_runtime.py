"""The platform runtime (genobs.runtime, genobs.tasks): periodic tasks that survive their
own failures, plugins that contribute routes and tasks, the demo served through the same
runtime as `genobs serve`, and CLI commands that work through a running server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genobs.runtime import Contribution, RuntimeContext, ServerSettings, start_platform
from genobs.store import Store
from genobs.tasks import PeriodicTask, TaskScheduler


def _metric(url: str, name: str, **labels: str) -> float | None:
    text = httpx.get(url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_a_failing_task_does_not_stop_the_server_or_the_other_tasks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ticks: list[float] = []

    def broken(store: Store) -> None:
        raise RuntimeError("the exporter is down")

    def healthy(store: Store) -> int:
        ticks.append(time.monotonic())
        return store.schema_version()

    def plugin(ctx: RuntimeContext) -> Contribution:
        return Contribution(tasks=[PeriodicTask("broken", 0.05, broken, initial_delay_s=0),
                                   PeriodicTask("healthy", 0.05, healthy, initial_delay_s=0)])

    from genobs.wiring import default_plugins

    caplog.set_level(logging.ERROR, logger="genobs.tasks")
    handle = start_platform(tmp_path / "g.duckdb", settings=ServerSettings(ingest_token=None), record_url=False,
                            plugins=[*default_plugins(), plugin])
    try:
        deadline = time.monotonic() + 20
        while len(ticks) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(ticks) >= 5                                   # the other task keeps its rhythm
        assert httpx.get(handle.url + "/healthz").json()["status"] == "ok"   # the server answers
        post = httpx.post(handle.url + "/v1/samples", json={"request_id": "r1", "timestamp": "2026-11-20T10:00:00Z",
                                                            "model": "m", "model_version": "1"})
        assert post.status_code == 200 and post.json()["accepted"] == 1
        failures = _metric(handle.url, "genobs_task_failures_total", task="broken")
        assert failures is not None and failures >= 3
        assert _metric(handle.url, "genobs_task_failures_total", task="healthy") == 0
        assert (_metric(handle.url, "genobs_task_runs_total", task="healthy") or 0) >= 5
    finally:
        handle.stop()
    failed = [r for r in caplog.records if "broken" in r.getMessage()]
    assert failed and "the exporter is down" in (failed[0].exc_text or "")


def test_run_now_and_the_task_route(tmp_path: Path) -> None:
    calls: list[str] = []

    def count(store: Store) -> dict[str, int]:
        calls.append(threading.current_thread().name)
        return {"runs": len(calls)}

    def plugin(ctx: RuntimeContext) -> Contribution:
        return Contribution(tasks=[PeriodicTask("count", 3600, count)])

    handle = start_platform(tmp_path / "g.duckdb", settings=ServerSettings(ingest_token="s3cret"), record_url=False,
                            plugins=[plugin])
    try:
        assert handle.scheduler.run_now("count") == {"runs": 1}
        assert httpx.post(handle.url + "/v1/tasks/count/run").status_code == 401     # the token guards it
        answer = httpx.post(handle.url + "/v1/tasks/count/run", headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 200 and answer.json() == {"task": "count", "result": {"runs": 2}}
        missing = httpx.post(handle.url + "/v1/tasks/nope/run", headers={"Authorization": "Bearer s3cret"})
        assert missing.status_code == 404 and "count" in missing.json()["detail"]
    finally:
        handle.stop()


def test_scheduler_rejects_bad_tasks_and_stops_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        PeriodicTask("x", 0, lambda store: None)
    store = Store.open(tmp_path / "g.duckdb")
    with pytest.raises(ValueError, match="share a name: twin"):
        TaskScheduler(store, [PeriodicTask("twin", 1, lambda s: None), PeriodicTask("twin", 1, lambda s: None)])
    started = threading.Event()
    scheduler = TaskScheduler(store, [PeriodicTask("slow", 3600, lambda s: started.set(), initial_delay_s=0)])
    scheduler.start()
    assert started.wait(5)
    before = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - before < 2       # a task waiting for its next tick stops at once
    assert not [t for t in threading.enumerate() if t.name == "genobs-task-slow"]
    store.close()


def test_demo_server_scores_a_posted_sample_without_evaluate(tmp_path: Path) -> None:
    """The demo serves through the runtime with the scheduler: a grounded answer posted to it
    gets a hallucination score by the `evaluate` task alone."""
    from genobs.demo import demo_config
    from genobs.runtime import settings_from_config

    config = demo_config()
    config.server.evaluate_interval_s = 0.5   # the demo's 10 s, shortened for the test
    config.evaluators.enabled = ["hallucination"]
    db = tmp_path / "demo.duckdb"
    handle = start_platform(db, config=config, settings=settings_from_config(config), record_url=False)
    try:
        sample = {"request_id": "posted-1", "timestamp": "2026-11-22T10:00:00Z", "service": "chat-api",
                  "model": "chat-large", "model_version": "v1.6", "prompt": "Where is the Eiffel Tower?",
                  "context": ["The Eiffel Tower is a wrought-iron lattice tower in Paris, France."],
                  "response": "The Eiffel Tower is in Berlin, Germany."}
        assert httpx.post(handle.url + "/v1/samples", json=sample).json()["accepted"] == 1
        deadline = time.monotonic() + 120
        row = None
        while row is None and time.monotonic() < deadline:
            row = handle.store.fetchone(
                "SELECT value, label FROM scores WHERE request_id = 'posted-1' AND metric = 'hallucination_score'")
            time.sleep(0.2)
        assert row is not None, "the scheduler did not score the posted sample"
        assert row[1] == "hallucinated"
    finally:
        handle.stop()


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genobs.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_init_evaluate_and_drift_work_while_a_server_holds_the_database(tmp_path: Path) -> None:
    """DuckDB's lock error never reaches the user (DESIGN §2): the commands go through the server."""
    db = tmp_path / "held.duckdb"
    handle = start_platform(db, settings=ServerSettings(ingest_token=None, run_scheduler=False))
    try:
        init = _cli("init", "--db", str(db))
        assert init.returncode == 0 and f"held by the genobs server at {handle.url}" in init.stdout
        assert "lock" not in (init.stdout + init.stderr).lower()
        evaluate = _cli("evaluate", "--db", str(db), "--evaluators", "hallucination", "--format", "json")
        assert evaluate.returncode == 0, evaluate.stderr
        assert json.loads(evaluate.stdout)["evaluators"][0]["name"] == "hallucination"
        drift = _cli("drift", "--db", str(db), "--service", "none", "--format", "json")
        assert drift.returncode == 2 and "lock" not in drift.stderr.lower()
        assert "error:" in drift.stderr and handle.url in drift.stderr
    finally:
        handle.stop()
