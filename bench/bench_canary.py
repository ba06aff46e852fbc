"""Canary judge: statistical behaviour on seeded simulations, and speed. Prints JSON.

Trials (500 per case by default, seeded) judge simulated arms with the same functions the
CLI and API use after their DuckDB aggregation (classify_* on value counts, decide), once
with genobs' default canary.yaml and once with Kayenta's defaults (confidence 0.98, allowed
change 1.1 / 0.9, tolerance 0.25, IQR outlier removal; canary_config.kayenta_spec):

- aa_200: A/A, 200 samples per arm, no change. Traffic like sample_data: TTFT log-normal
  (median ~200 ms), output tokens negative-binomial integers (ties), latency = TTFT + tokens x
  per-token time + network, a 1.5 % queueing tail (x2-x5), recorded at 0.1 ms; cost from
  integer token counts (ties). Metrics: latency, TTFT, output tokens, cost. Bar: pass >= 95 %.
- latency_15pct_200: the same with canary latency x1.15 (TTFT unchanged). Bar: fail or
  marginal >= 95 %.
- hallucination_5_to_10_500: 500 per arm; a sample is hallucinated with p = 5 % (baseline) /
  10 % (canary), its hallucination_score ~ U(0.5, 1) then, else Beta(2, 8). Metrics:
  hallucination_score, hallucination_rate. Bar: not passed >= 90 %.
- hallucination_aa_500 (for reference): the same at 5 % / 5 %.

Speed: one verdict with the full default metric set over 1,000,000 samples per arm in an
in-memory DuckDB store (hallucination scores on every sample; no CLIP scores, as for a text
service), against scipy's mannwhitneyu on the raw latency arrays of the same data (the rank
test alone, no interval) and a plain DuckDB GROUP BY of one column. The reading alone (the
DuckDB part: ArmReader) is timed too; the rest of a verdict is the tests in numpy/scipy.

    python bench/bench_canary.py                 # 500 trials, 1M per arm
    python bench/bench_canary.py --trials 50 --speed-n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import pyarrow as pa
from scipy import stats

from genobs.slo.canary_config import CanarySpec, default_spec, kayenta_spec
from genobs.slo.canary_data import ArmReader, ContinuousData, CountData, Window, arms_from
from genobs.slo.canary_judge import classify_continuous, classify_proportion, decide
from genobs.slo.canary_run import judge_window
from genobs.slo.canary_stats import Tally
from genobs.store import SAMPLE_COLUMNS, Store

PERF = ("latency_ms", "ttft_ms", "output_tokens", "cost_usd")
HALLU = ("hallucination_score", "hallucination_rate")


def traffic(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    ttft = rng.lognormal(np.log(200.0), 0.35, n)
    tokens = rng.negative_binomial(8, 8 / (8 + 46.0), n) + 1
    input_tokens = 412 + rng.negative_binomial(5, 5 / (5 + 600.0), n)
    per_token = rng.lognormal(np.log(10.0), 0.1, n)
    network = rng.lognormal(np.log(40.0), 0.3, n)
    latency = ttft + tokens * per_token + network
    tail = rng.random(n) < 0.015
    latency[tail] *= rng.uniform(2.0, 5.0, tail.sum())
    cost = (input_tokens * 2.5 + tokens * 10.0) / 1e6
    return {"latency_ms": np.round(latency, 1), "ttft_ms": np.round(ttft, 1),
            "output_tokens": tokens.astype(float), "cost_usd": np.round(cost, 9)}


def regression_traffic(rng: np.random.Generator, n: int, factor: float) -> dict[str, np.ndarray]:
    """End-to-end latency x factor with TTFT unchanged: the decode part absorbs it."""
    data = traffic(rng, n)
    data["latency_ms"] = np.round(data["latency_ms"] * factor, 1)
    return data


def hallucinations(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, int]:
    hallucinated = rng.random(n) < rate
    scores = np.where(hallucinated, rng.uniform(0.5, 1.0, n), rng.beta(2, 8, n))
    return np.round(scores, 4), int(hallucinated.sum())


def judge(spec: CanarySpec, names: tuple[str, ...], canary: dict[str, Any], baseline: dict[str, Any]) -> str:
    metrics = [m for m in spec.metrics if m.name in names]
    sub = spec.model_copy(update={"metrics": metrics})
    results = []
    for m in metrics:
        if m.kind == "continuous":
            results.append(classify_continuous(m, ContinuousData(Tally.of(canary[m.name]), Tally.of(baseline[m.name]),
                                                                 0, 0), sub))
        else:
            results.append(classify_proportion(m, CountData(canary[m.name], canary["n"], baseline[m.name],
                                                            baseline["n"]), sub))
    return decide(results, sub)[0]


def run_case(name: str, trials: int, seed: int, make: Callable[[np.random.Generator], tuple[dict, dict]],
             names: tuple[str, ...]) -> dict[str, Any]:
    outcomes: dict[str, dict[str, int]] = {"genobs": {}, "kayenta": {}}
    specs = {"genobs": default_spec(), "kayenta": kayenta_spec()}
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        canary, baseline = make(rng)
        for label, spec in specs.items():
            verdict = judge(spec, names, canary, baseline)
            outcomes[label][verdict] = outcomes[label].get(verdict, 0) + 1
    out: dict[str, Any] = {"case": name, "trials": trials, "seed": seed, "metrics": list(names)}
    for label, counts in outcomes.items():
        out[label] = {
            "verdicts": counts,
            "pass_rate": counts.get("pass", 0) / trials,
            "fail_or_marginal_rate": (counts.get("fail", 0) + counts.get("marginal", 0)) / trials,
            "not_passed_rate": 1 - counts.get("pass", 0) / trials,
        }
    return out


def case_aa(rng: np.random.Generator) -> tuple[dict, dict]:
    return traffic(rng, 200), traffic(rng, 200)


def case_latency(rng: np.random.Generator) -> tuple[dict, dict]:
    return regression_traffic(rng, 200, 1.15), traffic(rng, 200)


def _hallu_arm(rng: np.random.Generator, n: int, rate: float) -> dict[str, Any]:
    scores, events = hallucinations(rng, n, rate)
    return {"hallucination_score": scores, "hallucination_rate": events, "n": n}


def case_hallu(rng: np.random.Generator) -> tuple[dict, dict]:
    return _hallu_arm(rng, 500, 0.10), _hallu_arm(rng, 500, 0.05)


def case_hallu_aa(rng: np.random.Generator) -> tuple[dict, dict]:
    return _hallu_arm(rng, 500, 0.05), _hallu_arm(rng, 500, 0.05)


# --------------------------------------------------------------------------- speed


def build_store(n_per_arm: int, seed: int) -> Store:
    store = Store.memory()
    rng = np.random.default_rng(seed)
    for arm, factor in (("baseline", 1.0), ("canary", 1.03)):
        data = regression_traffic(rng, n_per_arm, factor)
        n = n_per_arm
        ids = pa.array([f"{arm}-{i}" for i in range(n)])
        ts = pa.array(
            (np.datetime64("2026-11-22T00:00:00") + np.arange(n) * np.timedelta64(40, "ms")).astype("datetime64[us]"),
            type=pa.timestamp("us", tz="UTC"))
        status = np.where(rng.random(n) < 0.002, "error", "ok")
        columns: dict[str, Any] = {}
        for name, decl in SAMPLE_COLUMNS:
            columns[name] = None
        columns.update({
            "request_id": ids, "timestamp": ts, "service": pa.array(["chat-api"] * n),
            "model": pa.array(["chat-large"] * n), "model_version": pa.array(["v1.5" if arm == "baseline" else "v1.6"] * n),
            "variant": pa.array([arm] * n), "modality": pa.array(["text"] * n), "status": pa.array(status),
            "latency_ms": pa.array(data["latency_ms"]), "ttft_ms": pa.array(data["ttft_ms"]),
            "output_tokens": pa.array(data["output_tokens"].astype(np.int64)),
            "cost_usd": pa.array(data["cost_usd"]), "safety_flagged": pa.array(rng.random(n) < 0.004),
            "ingested_at": ts,
        })
        types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(), "BOOLEAN": pa.bool_(),
                 "TINYINT": pa.int8(), "JSON": pa.string(), "VARCHAR[]": pa.list_(pa.string()),
                 "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
        arrays = {}
        for name, decl in SAMPLE_COLUMNS:
            kind = decl.replace(" NOT NULL", "")
            arrays[name] = columns[name] if columns[name] is not None else pa.nulls(n, type=types[kind])
        store.upsert_samples(pa.table(arrays))
        scores, _ = hallucinations(rng, n, 0.05)
        store.write_scores(pa.table({
            "request_id": ids, "metric": pa.array(["hallucination_score"] * n), "value": pa.array(scores),
            "label": pa.array(np.where(scores >= 0.5, "hallucinated", "grounded")),
            "details": pa.nulls(n, type=pa.string()), "evaluator": pa.array(["hallucination"] * n),
            "reference_model": pa.array(["builtin"] * n), "error": pa.nulls(n, type=pa.string())}))
    return store


def _timed(store: Store, window: Window, spec: CanarySpec, repeats: int) -> tuple[dict[str, Any], Any]:
    """Wall and CPU seconds (this process, DuckDB's threads included: on a shared machine the
    CPU time is the work done, the wall time also the waiting for a core)."""
    wall, cpu, verdict = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        verdict = judge_window(store, "variant=baseline", "variant=canary", window, spec)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"best_wall": min(wall), "best_cpu": min(cpu), "wall": wall, "cpu": cpu}, verdict


def _timed_read(store: Store, window: Window, spec: CanarySpec, repeats: int) -> dict[str, Any]:
    """The DuckDB part alone: every metric of both arms read as value counts (ArmReader)."""
    wall, cpu = [], []
    arms = arms_from(spec, {"variant": "baseline"}, {"variant": "canary"})
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        with ArmReader(store, arms, window, list(spec.metrics)) as reader:
            for m in spec.metrics:
                reader.continuous(m) if m.kind == "continuous" else reader.counts(m)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"best_wall": min(wall), "best_cpu": min(cpu), "wall": wall, "cpu": cpu}


def speed(n_per_arm: int, seed: int, repeats: int = 3) -> dict[str, Any]:
    store = build_store(n_per_arm, seed)
    window = Window(datetime(2026, 11, 21, tzinfo=timezone.utc), datetime(2026, 11, 24, tzinfo=timezone.utc))
    spec = default_spec()
    load_before = os.getloadavg()[0]
    times, verdict = _timed(store, window, spec, repeats)
    read_only = _timed_read(store, window, spec, repeats)
    samples_only = spec.model_copy(update={"metrics": [m for m in spec.metrics if m.score is None]})
    times_samples_only, _ = _timed(store, window, samples_only, repeats)
    t0, c0 = time.perf_counter(), time.process_time()
    store.fetchall("SELECT variant, latency_ms, count(*) FROM samples GROUP BY ALL")
    plain_group_by = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    lat = store.execute("SELECT variant, latency_ms FROM samples WHERE status = 'ok'").fetchnumpy()
    x = lat["latency_ms"][lat["variant"] == "canary"]
    y = lat["latency_ms"][lat["variant"] == "baseline"]
    t0, c0 = time.perf_counter(), time.process_time()
    ref = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    scipy_s = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    ours = next(m for m in verdict.metrics if m.name == "latency_ms")
    return {
        "samples_per_arm": n_per_arm,
        "metrics": len(spec.metrics),
        "verdict_seconds": times,
        "verdict_seconds_without_score_metrics": {**times_samples_only, "metrics": len(samples_only.metrics)},
        "read_seconds_duckdb_part": read_only,
        "compare_plain_duckdb_group_by_latency_seconds": plain_group_by,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
        "verdict": verdict.verdict,
        "goal_seconds": 1.0,
        "compare_scipy_mannwhitneyu_latency_only_seconds": scipy_s,
        "latency_p_value": {"genobs": ours.p_value, "scipy": float(ref.pvalue)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--speed-n", type=int, default=1_000_000)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--only-speed", action="store_true")
    args = parser.parse_args()
    if args.only_speed:
        print(json.dumps({"bench": "canary", "speed": speed(args.speed_n, args.seed)}, indent=2))
        return
    cases = [
        run_case("aa_200", args.trials, args.seed, case_aa, PERF),
        run_case("latency_15pct_200", args.trials, args.seed + 1, case_latency, PERF),
        run_case("hallucination_5_to_10_500", args.trials, args.seed + 2, case_hallu, HALLU),
        run_case("hallucination_aa_500", args.trials, args.seed + 3, case_hallu_aa, HALLU),
    ]
    bars = {
        "aa_200": ("pass_rate", 0.95),
        "latency_15pct_200": ("fail_or_marginal_rate", 0.95),
        "hallucination_5_to_10_500": ("not_passed_rate", 0.90),
    }
    for case in cases:
        if case["case"] in bars:
            key, bar = bars[case["case"]]
            case["bar"] = {"figure": key, "at_least": bar, "genobs_meets": case["genobs"][key] >= bar,
                           "kayenta_meets": case["kayenta"][key] >= bar}
    out: dict[str, Any] = {"bench": "canary", "cases": cases}
    if not args.no_speed:
        out["speed"] = speed(args.speed_n, args.seed)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
