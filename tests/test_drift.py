"""Drift: Evidently's per-column decisions from DuckDB aggregates, windows, embedding drift,
results in drift_results, and the demo data's prompt-topic drift."""

from __future__ import annotations

import gzip
import json
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from genobs.evaluators.drift import DriftError, load_feature_frames, run_drift
from genobs.sample_data import data_dir
from genobs.sample_data.timeline import CHAT_SAMPLES_FILE
from helpers.drift_evidently import duckdb_drift, evidently_drift
from genobs.evaluators.drift_tests import default_test, wasserstein_bounds, Bin
from genobs.evaluators.embedding_drift import embedding_drift
from genobs.evaluators.windows import WindowError, parse_window, resolve_windows
from genobs.store import SAMPLE_COLUMNS, Store

warnings.filterwarnings("ignore", category=RuntimeWarning)

NUM = ["latency", "tokens3", "tokens5", "cost", "score", "flag"]
CAT = ["model", "status", "tenant"]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, missing: float = 0.0) -> pd.DataFrame:
    df = pd.DataFrame({
        "latency": rng.lognormal(6 + shift, 0.5, n),
        "tokens3": rng.integers(0, 3, n).astype(float),
        "tokens5": rng.integers(0, 5, n).astype(float),
        "cost": rng.random(n) * (1 + shift),
        "score": rng.normal(shift * 0.3, 1, n),
        "flag": rng.integers(0, 2, n).astype(float),
        "model": rng.choice(["small", "large", "xl"], n, p=[0.5, 0.3 + shift / 3, 0.2 - shift / 3]),
        "status": rng.choice(["ok", "error"], n, p=[0.95, 0.05]),
        "tenant": rng.choice([f"t{i}" for i in range(12)], n),
    })
    if missing:
        for col in ("latency", "score", "model"):
            df.loc[rng.random(n) < missing, col] = None
        df.loc[rng.random(n) < missing / 5, "score"] = np.inf
    return df


def assert_same_decisions(reference: pd.DataFrame, current: pd.DataFrame, exact_rows: int) -> list:
    expected = evidently_drift(reference, current, NUM, CAT)
    ours = duckdb_drift(reference, current, NUM, CAT, exact_rows=exact_rows)
    for col in ours:
        ev = expected.columns[col.feature]
        assert col.method == ev.method, col.feature
        assert col.drifted == ev.drifted, (col.feature, col.statistic, ev.score)
        if col.details.get("computed") != "bounds":
            assert col.statistic == pytest.approx(ev.score, rel=1e-6, abs=1e-12), col.feature
        else:
            low, high = col.details["bounds"]
            assert low - 1e-9 <= ev.score <= high + 1e-9, col.feature
    assert sum(c.drifted for c in ours) == expected.drifted_count
    return ours


@pytest.mark.parametrize(
    "n_ref, n_cur, shift, missing, exact_rows",
    [
        (300, 400, 0.0, 0.0, 0),            # small: K-S, chi-square, Z
        (300, 400, 0.3, 0.1, 0),            # small, drifted, with NaN / inf
        (800, 20000, 0.05, 0.05, 0),        # small reference, large current: asymptotic K-S
        (5000, 3000, 0.0, 0.0, 0),          # large: Wasserstein from bounds, Jensen-Shannon
        (5000, 3000, 0.0, 0.0, 10**9),      # large: Wasserstein exact
        (5000, 3000, 0.15, 0.1, 0),         # large, drifted, with NaN / inf
        (5000, 3000, 0.15, 0.1, 10**9),
    ],
)
def test_same_decision_and_score_as_evidently(n_ref, n_cur, shift, missing, exact_rows):
    rng = np.random.default_rng(n_ref + n_cur + int(shift * 100))
    ours = assert_same_decisions(frame(rng, n_ref, 0.0, missing), frame(rng, n_cur, shift, missing), exact_rows)
    methods = {c.feature: c.method for c in ours}
    if n_ref <= 1000:
        assert methods["latency"] == "ks" and methods["tokens5"] == "chisquare" and methods["flag"] == "z"
    else:
        assert methods["latency"] == "wasserstein" and methods["tenant"] == "jensenshannon"


def test_wasserstein_near_threshold_is_refined_until_decided():
    # one far outlier in the current window puts almost every row into one first-level bin
    rng = np.random.default_rng(7)
    refined = 0
    for shift in (0.040, 0.044, 0.048, 0.054):
        ref = pd.DataFrame({"x": rng.normal(0, 1, 20000)})
        cur = pd.DataFrame({"x": rng.normal(shift, 1, 20000)})
        cur.loc[0, "x"] = 1e3
        expected = evidently_drift(ref, cur, ["x"], []).columns["x"]
        ours = duckdb_drift(ref, cur, ["x"], [], exact_rows=0)[0]
        assert ours.drifted == expected.drifted
        refined += ours.details.get("refine_levels", 0) > 0 or ours.details.get("computed") == "exact"
    assert refined >= 1


def test_constant_and_empty_columns():
    ref = pd.DataFrame({"c": [1.0] * 50, "e": [np.nan] * 50, "k": ["a"] * 50})
    cur = pd.DataFrame({"c": [1.0] * 60, "e": [np.nan] * 60, "k": ["a"] * 60})
    ours = {c.feature: c for c in duckdb_drift(ref, cur, ["c", "e"], ["k"])}
    assert ours["c"].method == "z" and ours["c"].statistic == 1.0 and ours["c"].drifted is False
    assert ours["k"].drifted is False
    # Evidently refuses an all-NaN column; we report it as untested instead of failing the run
    assert ours["e"].method == "no_data" and ours["e"].drifted is None
    with pytest.raises(ValueError, match="empty column"):
        evidently_drift(ref, cur, ["c", "e"], ["k"])


def test_default_test_table():
    assert default_test("numerical", 1000, 6).name == "ks"
    assert default_test("numerical", 1001, 6).name == "wasserstein"
    assert default_test("numerical", 1001, 5).name == "jensenshannon"
    assert default_test("numerical", 10, 2).name == "z"
    assert default_test("categorical", 10, 3).name == "chisquare"
    assert default_test("categorical", 5000, 2).name == "jensenshannon"


def test_wasserstein_bounds_enclose_scipy():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 500), rng.normal(0.2, 1.3, 700)
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 9)
    bins = []
    for i in range(8):
        last = i == 7
        ina = (a >= edges[i]) & ((a <= edges[i + 1]) if last else (a < edges[i + 1]))
        inb = (b >= edges[i]) & ((b <= edges[i + 1]) if last else (b < edges[i + 1]))
        bins.append(Bin(edges[i], edges[i + 1], int(ina.sum()), float(a[ina].sum()), int(inb.sum()), float(b[inb].sum())))
    bounds = wasserstein_bounds(bins, len(a), len(b))
    assert bounds.low <= wasserstein_distance(a, b) <= bounds.high


# --------------------------------------------------------------------------- windows


def test_window_forms():
    newest = datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc)
    ref, cur = resolve_windows(None, None, newest)
    assert cur.end - cur.start == timedelta(hours=24) and cur.end > newest
    assert ref.end == cur.start and ref.end - ref.start == timedelta(days=7)
    span = parse_window("2026-11-16..2026-11-19", newest=newest)
    assert span.start == datetime(2026, 11, 16, tzinfo=timezone.utc)
    assert span.end == datetime(2026, 11, 20, tzinfo=timezone.utc)  # a date-only end includes that day
    assert parse_window("version:v1.4", newest=newest).where() == ("model_version = ?", ["v1.4"])
    assert parse_window("6h", newest=newest).start == newest + timedelta(microseconds=1) - timedelta(hours=6)
    for bad in ("yesterday", "2026-11-19..2026-11-16", "version:"):
        with pytest.raises(WindowError):
            parse_window(bad, newest=newest)
    with pytest.raises(WindowError, match="explicitly"):
        resolve_windows(None, "version:v1.5", newest)


# --------------------------------------------------------------------------- embeddings


def test_embedding_drift_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    base = rng.normal(size=(120, 16))
    same = rng.normal(size=(120, 16))
    shifted = rng.normal(size=(120, 16))
    shifted[:, 0] += 1.5
    quiet = {r.method: r for r in embedding_drift("x", base, same, cpu, permutations=200)}
    loud = {r.method: r for r in embedding_drift("x", base, shifted, cpu, permutations=200)}
    assert not quiet["mmd"].drifted and quiet["mmd"].p_value > 0.05
    assert not quiet["domain_classifier"].drifted
    assert loud["mmd"].drifted and loud["mmd"].p_value < 0.01
    assert loud["domain_classifier"].drifted and loud["domain_classifier"].statistic > 0.8
    too_few = embedding_drift("x", base[:5], shifted[:5], cpu)
    assert all(r.drifted is None for r in too_few)


# --------------------------------------------------------------------------- store runs


def _arrow_samples(records: list[dict]) -> pa.Table:
    defaults = {"service": "default", "variant": "primary", "modality": "text", "status": "ok"}
    cols = {}
    for name, _ in SAMPLE_COLUMNS:
        if name in ("timestamp", "ingested_at"):
            values = [r.get(name) or datetime.now(timezone.utc) for r in records]
            cols[name] = pa.array(values, type=pa.timestamp("us", tz="UTC"))
        elif name == "context":
            cols[name] = pa.array([r.get(name) for r in records], type=pa.list_(pa.string()))
        elif name in ("input_tokens", "output_tokens"):
            cols[name] = pa.array([r.get(name) for r in records], type=pa.int64())
        elif name in ("latency_ms", "ttft_ms", "cost_usd"):
            cols[name] = pa.array([r.get(name) for r in records], type=pa.float64())
        elif name in ("safety_flagged", "cache_hit"):
            cols[name] = pa.array([r.get(name) for r in records], type=pa.bool_())
        elif name == "feedback":
            cols[name] = pa.array([r.get(name) for r in records], type=pa.int8())
        else:
            cols[name] = pa.array([r.get(name, defaults.get(name)) for r in records], type=pa.string())
    return pa.table(cols)


TOPICS_BEFORE = ["How do I reset my router?", "Why is my invoice higher this month?", "The mesh node light is red.",
                 "Can I change my billing date?", "Firmware update for the X5 router?"]
TOPICS_AFTER = ["What does the 2027 plan migration change?", "Is Brightwave Assist AI included?",
                "How do I claim SLA service credits?"]


def _synthetic_store(path: Path) -> Store:
    rng = np.random.default_rng(11)
    start = datetime(2026, 11, 16, tzinfo=timezone.utc)
    records = []
    for i in range(1200):
        ts = start + timedelta(minutes=10 * i)  # about 8.3 days
        late = ts >= datetime(2026, 11, 21, tzinfo=timezone.utc)
        topics = TOPICS_BEFORE + (TOPICS_AFTER * 2 if late else [])
        records.append({
            "request_id": f"r{i}", "timestamp": ts, "service": "chat-api", "model": "chat-large",
            "model_version": "v1.5" if late else "v1.4", "prompt": f"{topics[rng.integers(len(topics))]} #{i % 7}",
            "response": "Sure. " * int(rng.integers(5, 40)), "latency_ms": float(rng.lognormal(6.5 if late else 6.0, 0.4)),
            "input_tokens": int(rng.integers(20, 400)), "output_tokens": int(rng.integers(20, 300)),
            "cost_usd": float(rng.random() / 100), "tenant": f"t{rng.integers(5)}",
            "status": "error" if rng.random() < 0.02 else "ok",
        })
    store = Store.open(path)
    store.upsert_samples(_arrow_samples(records))
    store.write_scores([{"request_id": f"r{i}", "metric": "hallucination_score",
                         "value": float(rng.random() * (0.3 if i < 700 else 0.9)), "evaluator": "hallucination",
                         "reference_model": "test"} for i in range(0, 1200, 2)])
    return store


def _bag_of_words(texts: list[str]) -> np.ndarray:
    vocab = sorted({w for t in TOPICS_BEFORE + TOPICS_AFTER for w in t.lower().split()})
    out = np.array([[t.lower().split().count(w) for w in vocab] for t in texts], dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def test_run_drift_writes_results_and_matches_evidently(tmp_path):
    store = _synthetic_store(tmp_path / "drift.duckdb")
    try:
        summary = run_drift(store, reference="2026-11-16..2026-11-20", current="2026-11-21..2026-11-24",
                            service="chat-api", embedder=_bag_of_words, permutations=200)
        features = {f.feature: f for f in summary.features}
        assert set(features) >= {"latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd",
                                 "response_length", "hallucination_score", "model", "status", "tenant"}
        assert features["latency_ms"].drifted and features["hallucination_score"].drifted
        assert features["ttft_ms"].method == "no_data"  # never set in these samples
        emb = {(e.feature, e.method): e for e in summary.embeddings}
        assert emb[("prompt_embedding", "mmd")].drifted and emb[("prompt_embedding", "domain_classifier")].drifted
        assert "prompt_embedding" in summary.drifted_features

        ref, cur, numerical, categorical = load_feature_frames(
            store, "2026-11-16..2026-11-20", "2026-11-21..2026-11-24", "chat-api")
        tested_num = [c for c in numerical if features[c].tested]
        expected = evidently_drift(ref, cur, tested_num, categorical)
        for name, ev in expected.columns.items():
            assert (features[name].method, features[name].drifted) == (ev.method, ev.drifted), name
        assert summary.tabular_drift_share == pytest.approx(expected.drift_share)

        rows = store.fetchall(
            "SELECT feature, feature_type, method, drifted, drift_score, details FROM drift_results WHERE run_id = ?",
            [summary.run_id])
        by_feature = {(r[0], r[2]): r for r in rows}
        dataset = by_feature[("dataset", "drift_share")]
        assert dataset[4] == pytest.approx(summary.drift_score)
        assert json.loads(dataset[5])["features_without_data"] == ["ttft_ms"]
        assert by_feature[("prompt_embedding", "mmd")][1] == "embedding"
        assert len(rows) == len(summary.features) + len(summary.embeddings) + 1

        # version windows: v1.4 vs v1.5 select the same two halves here
        by_version = run_drift(store, reference="version:v1.4", current="version:v1.5", service="chat-api",
                               embeddings=False, write=False)
        assert {f.feature: f.drifted for f in by_version.features} == {f.feature: f.drifted for f in summary.features}
        with pytest.raises(DriftError, match="no samples"):
            run_drift(store, reference="2020-01-01..2020-01-02", current="last 24h", service="chat-api", embeddings=False)
    finally:
        store.close()


DEMO = data_dir() / CHAT_SAMPLES_FILE   # shipped inside the package (genobs/sample_data/data)


def test_demo_prompt_topic_drift_shows_up(tmp_path):
    """The demo's chat-api prompts change topic from day 5 (2026-11-20): embedding drift must
    flag days 5-7 against days 1-4, and not days 3-4 against days 1-2; the tabular verdicts
    agree with Evidently on the same rows."""
    records = []
    with gzip.open(DEMO, "rt") as fh:
        for line in fh:
            r = json.loads(line)
            r["timestamp"] = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
            r.pop("attributes", None)
            records.append(r)
    store = Store.open(tmp_path / "demo.duckdb")
    try:
        store.upsert_samples(_arrow_samples(records))
        drifted = run_drift(store, reference="2026-11-16..2026-11-19", current="2026-11-20..2026-11-22",
                            service="chat-api", embedding_sample=100, text_fields=("prompt",), permutations=200)
        prompt = {e.method: e for e in drifted.embeddings if e.feature == "prompt_embedding"}
        assert prompt["mmd"].drifted and prompt["domain_classifier"].drifted
        quiet = run_drift(store, reference="2026-11-16..2026-11-17", current="2026-11-18..2026-11-19",
                          service="chat-api", embedding_sample=100, text_fields=("prompt",), permutations=200)
        prompt_quiet = {e.method: e for e in quiet.embeddings if e.feature == "prompt_embedding"}
        assert not (prompt_quiet["mmd"].drifted and prompt_quiet["domain_classifier"].drifted)

        ref, cur, numerical, categorical = load_feature_frames(
            store, "2026-11-16..2026-11-19", "2026-11-20..2026-11-22", "chat-api")
        tested = {f.feature: f for f in drifted.features if f.tested}
        expected = evidently_drift(ref, cur, [c for c in numerical if c in tested], categorical)
        assert {k: v.drifted for k, v in expected.columns.items()} == {k: tested[k].drifted for k in expected.columns}
    finally:
        store.close()


def test_cli_drift_json_and_gate(tmp_path):
    from typer.testing import CliRunner

    from genobs.cli import app

    db = tmp_path / "cli.duckdb"
    _synthetic_store(db)
    runner = CliRunner()
    args = ["drift", "--db", str(db), "--service", "chat-api", "--reference", "version:v1.4",
            "--current", "version:v1.5", "--no-embeddings", "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert runs[0]["service"] == "chat-api" and "latency_ms" in runs[0]["drifted_features"]
    assert runner.invoke(app, args + ["--fail-on-drift"]).exit_code == (1 if runs[0]["dataset_drift"] else 0)
    bad = runner.invoke(app, ["drift", "--db", str(db), "--current", "yesterday", "--no-embeddings"])
    assert bad.exit_code == 2 and "not a window" in bad.output
    Store.open(db).close()
