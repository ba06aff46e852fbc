"""The evaluation runner on a real DuckDB file: incremental, resumable after kill -9,
error rows for bad samples, time/limit filters, hallucination wiring.

The CLIP model is a tiny random-initialised open_clip model in a temp dir (no downloads).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from genobs.evaluators.reference_models import ReferenceModelMissing, ReferenceModelSpec
from genobs.evaluators.runner import EvaluationError, clip_weights_available, run_evaluators
from genobs.store import SAMPLE_COLUMNS, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def _sample(request_id: str, minute: int, **fields: Any) -> dict[str, Any]:
    row = {
        "request_id": request_id, "timestamp": T0 + timedelta(minutes=minute), "service": "img-api",
        "model": "sd", "model_version": "1", "variant": "primary", "modality": "image", "status": "ok",
        "ingested_at": T0, "source": "test",
    }
    row.update(fields)
    return row


def _insert(store: Store, rows: list[dict[str, Any]]) -> None:
    names = [name for name, _ in SAMPLE_COLUMNS]
    schema = pa.schema([(n, pa.list_(pa.string()) if n == "context" else
                         pa.timestamp("us", tz="UTC") if n in ("timestamp", "ingested_at") else
                         pa.float64() if n in ("latency_ms", "ttft_ms", "cost_usd") else
                         pa.int64() if n in ("input_tokens", "output_tokens", "feedback") else
                         pa.bool_() if n in ("safety_flagged", "cache_hit") else pa.string()) for n in names])
    store.upsert_samples(pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema))


def _image_samples(root: Path, count: int, start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + count):
        path = root / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 255, (24 + i % 5, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        rows.append(_sample(f"img-{i:04d}", i, prompt=f"a picture number {i} " * (1 + i % 4),
                            image=f"images/{i}.png"))
    return rows


def _scores(store: Store, metric: str = "clip_score") -> dict[str, tuple[Any, ...]]:
    rows = store.fetchall(
        "SELECT request_id, value, error, reference_model, details FROM scores WHERE metric = ?", [metric]
    )
    return {r[0]: r[1:] for r in rows}


def test_scores_only_what_is_missing_and_a_second_run_does_nothing(tmp_path: Path, tiny_open_clip: Path) -> None:
    store = Store.open(tmp_path / "g.duckdb")
    _insert(store, _image_samples(tmp_path, 12) + [
        _sample("broken", 50, prompt="a cat", image="images/does-not-exist.png"),
        _sample("text-only", 51, modality="text", prompt="hi", response="hello"),
    ])
    spec = ReferenceModelSpec("open_clip", str(tiny_open_clip))

    first = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, batch_size=5, num_workers=1)
    run = first.evaluators[0]
    assert (run.candidates, run.scored, run.errors) == (13, 12, 1)
    scores = _scores(store)
    assert set(scores) == {f"img-{i:04d}" for i in range(12)} | {"broken"}
    assert scores["broken"][0] is None and "not found" in scores["broken"][1]
    assert all(v[2] == spec.identifier for v in scores.values())
    assert len(_scores(store, "clip_cosine")) == 13
    assert all(0 <= v[0] <= 100 for k, v in scores.items() if k != "broken")

    second = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, batch_size=5, num_workers=1)
    assert (second.evaluators[0].candidates, second.evaluators[0].scored) == (0, 0)
    assert _scores(store) == scores

    _insert(store, _image_samples(tmp_path, 2, start=100))
    third = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, num_workers=0)
    assert (third.evaluators[0].candidates, third.evaluators[0].scored) == (2, 2)

    # Errors are not retried by default; --retry-errors tries them again.
    (tmp_path / "images" / "does-not-exist.png").write_bytes((tmp_path / "images" / "0.png").read_bytes())
    retry = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, num_workers=0, retry_errors=True)
    assert (retry.evaluators[0].candidates, retry.evaluators[0].scored) == (1, 1)
    assert _scores(store)["broken"][1] is None

    # Another reference model is another score series: everything is scored again for it.
    other = ReferenceModelSpec("open_clip", str(tiny_open_clip), pretrained="none")
    again = run_evaluators(store, ["clip"], device="cpu", clip_spec=other, num_workers=0)
    assert again.evaluators[0].candidates == 15
    models = store.fetchall("SELECT DISTINCT reference_model FROM scores ORDER BY 1")
    assert [m[0] for m in models] == [spec.identifier, spec.identifier + "@random-init"]
    store.close()


def test_since_until_and_limit_select_samples(tmp_path: Path, tiny_open_clip: Path) -> None:
    store = Store.open(tmp_path / "g.duckdb")
    _insert(store, _image_samples(tmp_path, 10))  # minutes 0..9 after T0
    spec = ReferenceModelSpec("open_clip", str(tiny_open_clip))
    window = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, num_workers=0,
                            since=(T0 + timedelta(minutes=3)).isoformat(), until=T0 + timedelta(minutes=6))
    assert set(_scores(store)) == {"img-0003", "img-0004", "img-0005"}
    assert window.evaluators[0].scored == 3
    limited = run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, num_workers=0, limit=4)
    assert limited.evaluators[0].scored == 4 and len(_scores(store)) == 7
    with pytest.raises(EvaluationError, match="--since"):
        run_evaluators(store, ["clip"], device="cpu", clip_spec=spec, since="yesterday-ish")
    with pytest.raises(EvaluationError, match="unknown evaluator"):
        run_evaluators(store, ["bleu"], device="cpu")
    store.close()


def test_missing_weights_raise_or_are_skipped_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    store = Store.open(tmp_path / "g.duckdb")
    _insert(store, _image_samples(tmp_path, 2))
    missing = ReferenceModelSpec("open_clip", "ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path / "empty-cache"))
    assert not clip_weights_available(spec=missing)
    with pytest.raises(ReferenceModelMissing, match="laion2b_s34b_b79k"):
        run_evaluators(store, ["clip"], device="cpu", clip_spec=missing)
    summary = run_evaluators(store, ["clip"], device="cpu", clip_spec=missing, skip_unavailable=True)
    assert "not available offline" in (summary.evaluators[0].skipped or "")
    assert store.fetchone("SELECT count(*) FROM scores")[0] == 0
    store.close()


_KILL_SCRIPT = """
import sys
from genobs.evaluators.reference_models import ReferenceModelSpec
from genobs.evaluators.runner import run_evaluators
from genobs.store import Store
store = Store.open(sys.argv[1])
run_evaluators(store, ["clip"], device="cpu", clip_spec=ReferenceModelSpec("open_clip", sys.argv[2]),
               batch_size=2, num_workers=0, progress=True)
"""


def test_resumes_after_kill_9_without_losing_or_duplicating(tmp_path: Path, tiny_open_clip: Path) -> None:
    db = tmp_path / "g.duckdb"
    store = Store.open(db)
    _insert(store, _image_samples(tmp_path, 120))
    store.close()

    env = {**os.environ, "TQDM_MININTERVAL": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(db), str(tiny_open_clip)], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    # A fresh process imports torch and open_clip before its first batch: over a minute on a
    # loaded 2-core machine, hence the generous deadline.
    progressed, buffer, deadline = False, "", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        buffer += proc.stderr.read(1)
        if "| 10/120" in buffer or "| 12/120" in buffer:  # a few batches of 2 are committed
            progressed = True
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert progressed, buffer[-2000:]

    store = Store.open(db)
    done_before = len(_scores(store))
    assert 10 <= done_before < 120
    resumed = run_evaluators(store, ["clip"], device="cpu", clip_spec=ReferenceModelSpec("open_clip", str(tiny_open_clip)),
                             batch_size=64, num_workers=0)
    assert resumed.evaluators[0].candidates == 120 - done_before
    scores = _scores(store)
    assert len(scores) == 120 and all(v[1] is None for v in scores.values())
    assert store.fetchone("SELECT count(*) FROM scores WHERE metric = 'clip_score'")[0] == 120
    store.close()


def test_hallucination_scores_grounded_text_samples(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.duckdb")
    context = ["The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall."]
    _insert(store, [
        _sample("grounded", 0, modality="text", prompt="When was the Eiffel Tower completed?",
                response="The Eiffel Tower was completed in 1889.", context=context),
        _sample("made-up", 1, modality="text", prompt="When was the Eiffel Tower completed?",
                response="The Eiffel Tower was completed in 1925 by Gustave Rossi in Lyon.", context=context),
        _sample("empty", 2, modality="text", prompt="When?", response="", context=context),
        _sample("ungrounded", 3, modality="text", prompt="Hi", response="Hello there."),
        _sample("failed-call", 4, modality="text", prompt="Hi", response="", status="error", context=context),
    ])
    summary = run_evaluators(store, ["hallucination"], device="cpu",
                             config={"evaluators": {"hallucination": {"use_embeddings": False}}})
    run = summary.evaluators[0]
    assert (run.candidates, run.scored, run.errors) == (3, 2, 1)
    scores = _scores(store, "hallucination_score")
    assert set(scores) == {"grounded", "made-up", "empty"}
    assert scores["made-up"][0] > scores["grounded"][0]
    assert "empty response" in scores["empty"][1]
    assert json.loads(scores["made-up"][3]) is not None
    again = run_evaluators(store, ["hallucination"], device="cpu",
                           config={"evaluators": {"hallucination": {"use_embeddings": False}}})
    assert again.evaluators[0].candidates == 0
    store.close()


def test_cli_evaluate_uses_the_configured_model_and_is_incremental(tmp_path: Path, tiny_open_clip: Path) -> None:
    from typer.testing import CliRunner

    from genobs.cli import app

    db = tmp_path / "g.duckdb"
    store = Store.open(db)
    _insert(store, _image_samples(tmp_path, 6))
    store.close()
    config = tmp_path / "genobs.yaml"
    config.write_text(f"evaluators:\n  clip:\n    backend: open_clip\n    model: {tiny_open_clip}\n")
    runner = CliRunner()
    args = ["evaluate", "--db", str(db), "--config", str(config), "--evaluators", "clip", "--device", "cpu",
            "--workers", "0", "--format", "json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    run = json.loads(first.stdout)["evaluators"][0]
    assert (run["scored"], run["reference_model"]) == (6, f"open_clip:{tiny_open_clip}")
    second = runner.invoke(app, args)
    assert json.loads(second.stdout)["evaluators"][0]["candidates"] == 0

    config.write_text("evaluators:\n  clip:\n    model: ViT-B-32\n    pretrained: laion2b_s34b_b79k\n"
                      f"    cache_dir: {tmp_path / 'empty'}\n")
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2
    message = " ".join(missing.output.split())  # undo the console's line wrapping
    assert "open_clip:ViT-B-32/laion2b_s34b_b79k is not available offline" in message
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message


def test_scheduler_task_scores_new_samples_until_stopped(tmp_path: Path, tiny_open_clip: Path) -> None:
    from genobs.config import GenobsConfig
    from genobs.runtime import ServerSettings, start_platform

    db = tmp_path / "g.duckdb"
    store = Store.open(db)
    _insert(store, _image_samples(tmp_path, 3))
    config = GenobsConfig.model_validate(
        {"server": {"evaluate_interval_s": 0.05},
         "evaluators": {"enabled": ["clip"], "clip": {"backend": "open_clip", "model": str(tiny_open_clip)}}})
    handle = start_platform(db, config=config, settings=ServerSettings(ingest_token=None), record_url=False)
    try:
        deadline = time.monotonic() + 60
        while len(_scores(store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_scores(store)) == 3
        _insert(store, _image_samples(tmp_path, 2, start=10))  # arrives while the server runs
        while len(_scores(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_scores(store)) == 5
    finally:
        handle.stop(timeout=30)
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("genobs-task-"))
    store.close()


_LIGHT_SCRIPT = """
import json, sys
from pathlib import Path
from genobs.evaluators.runner import scheduled_run
from genobs.store import Store

heavy = ("torch", "open_clip", "transformers", "sentence_transformers")
store = Store.open(sys.argv[1])
out = {"after_import": [m for m in heavy if m in sys.modules]}
insert = ("INSERT INTO samples (request_id, timestamp, service, model, model_version, variant, modality, "
          "prompt, response, image, status, ingested_at, source) VALUES "
          "(?, now(), 'svc', 'm', '1', 'primary', ?, 'a prompt', ?, ?, 'ok', now(), 'test')")
store.execute(insert, ["chat-1", "text", "Hello.", None])                 # nothing to score
idle = scheduled_run(store, None)
out["idle_candidates"] = [r.candidates for r in idle.evaluators]
out["after_idle_tick"] = [m for m in heavy if m in sys.modules]
store.execute(insert, ["img-1", "image", "", "images/1.png"])      # work, but the CLIP weights are missing
missing = scheduled_run(store, {"evaluators": {"enabled": ["clip"],
                                               "clip": {"cache_dir": sys.argv[2]}}})
out["skipped"] = missing.evaluators[0].skipped
out["after_missing_tick"] = [m for m in heavy if m in sys.modules]
print(json.dumps(out))
"""


def test_scheduler_imports_no_model_library_without_work(tmp_path: Path) -> None:
    """`genobs serve` stays light: importing the runner, a tick with nothing to score and a
    tick whose default CLIP weights are missing import neither torch nor a model library."""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    proc = subprocess.run([sys.executable, "-c", _LIGHT_SCRIPT, str(tmp_path / "g.duckdb"), str(tmp_path / "empty")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["after_import"] == [] and out["after_idle_tick"] == [] and out["after_missing_tick"] == []
    assert out["idle_candidates"] == [0, 0]
    assert "open_clip:ViT-B-32/laion2b_s34b_b79k is not available offline" in out["skipped"]
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in out["skipped"]


def test_scheduled_runs_build_the_scorer_once_and_only_when_there_is_work(tmp_path: Path, tiny_open_clip: Path) -> None:
    from genobs.evaluators import runner

    store = Store.open(tmp_path / "g.duckdb")
    config = {"evaluators": {"enabled": ["clip"], "clip": {"backend": "open_clip", "model": str(tiny_open_clip)}}}
    jobs = runner._scheduled_jobs.setdefault(str(store.path), {})
    assert runner.scheduled_run(store, config).evaluators[0].candidates == 0
    assert jobs == {}                                     # nothing to score: nothing built
    _insert(store, _image_samples(tmp_path, 3))
    first = runner.scheduled_run(store, config)
    assert (first.evaluators[0].scored, first.device) == (3, "cpu")
    (job,) = jobs.values()
    _insert(store, _image_samples(tmp_path, 2, start=10))
    second = runner.scheduled_run(store, config)
    assert second.evaluators[0].scored == 2
    assert list(jobs.values()) == [job]                   # the same scorer, not built again
    assert runner.scheduled_run(store, config).evaluators[0].candidates == 0
    runner._scheduled_jobs.pop(str(store.path), None)
    store.close()


def test_serve_imports_the_drift_job_at_its_first_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genobs.config import GenobsConfig
    from genobs.evaluators import drift
    from genobs.runtime import ServerSettings, start_platform

    ticks: list[float] = []
    monkeypatch.setattr(drift, "run_drift_all_services", lambda store, **kw: ticks.append(time.monotonic()) or [])
    store = Store.open(tmp_path / "g.duckdb")
    started = time.monotonic()
    handle = start_platform(tmp_path / "g.duckdb", config=GenobsConfig.model_validate({"server": {"drift_interval_s": 0.2}}),
                            settings=ServerSettings(ingest_token=None), record_url=False)
    try:
        deadline = time.monotonic() + 30
        while len(ticks) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        handle.stop()
    assert len(ticks) >= 3
    assert ticks[0] - started >= 0.2                       # one interval after start, then every interval
    assert all(b - a >= 0.15 for a, b in zip(ticks, ticks[1:]))
    store.close()
