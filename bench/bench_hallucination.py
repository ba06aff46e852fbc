"""Benchmark the hallucination evaluator: quality per labelled set beside the content-token
baseline, speed of the built-in scorer, and the throughput of each pluggable reference-model kind.
Prints JSON.

    python bench/bench_hallucination.py [--device auto|cpu|cuda] [--skip quality,speed,models]

Quality (threshold DEFAULT_THRESHOLD for every set): ROC AUC, balanced accuracy, F1, precision and
recall, with all-MiniLM-L6-v2 and lexical-only, on HaluEval QA (all 1,000 and the held-out odd
half), the demo support-chat held-out half (balanced, bench/hallucination_data.py), each BEGIN dev
split and the three pooled. `seen_in_fit` says whether the weights were fitted on the set
(bench/fit_hallucination.py, protocol "dialogue-wow"). Beside each: the content-token baseline
(share of the response's non-stopword words absent from the grounding) computed in the same run:
its AUC, and its balanced accuracy / F1 at the threshold that is best for *that set*, chosen after
the fact (the baseline has no threshold of its own: this flatters it).

Speed on this CPU: samples/s of `scorer.score(all HaluEval items)` in one call, with the model
(targets >= 50/s) and lexical-only (>= 2,000/s); the demo held-out half and the pooled BEGIN
dialogue too. Wall-clock and per CPU-second of this process (the machine is shared: the load
average at start and end is printed). Model loading is timed apart.

Reference-model kinds (nli, hhem, minicheck roberta/deberta/flan-t5, token): claim-grounding pairs
per second of a tiny random-initialised model of that kind (tests/helpers/checker_fixtures.py) through
the real loading and batching code, on this CPU; and a FLOP-based projection for the real model:
2 x (non-embedding parameters) x tokens per pair, divided by this CPU's measured fp32 GEMM rate
times an efficiency factor, and by one GPU's dense bf16 peak times a utilisation factor (both
stated in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from genobs.evaluators.hallucination import DEFAULT_THRESHOLD, HallucinationScorer  # noqa: E402
from hallucination_data import (  # noqa: E402
    BEGIN_SPLITS,
    balanced_subset,
    content_token_baseline,
    load_begin,
    load_demo_chat,
    load_halueval,
)

FIT_PROTOCOL_TRAINING = {"halueval_train", "demo_train", "begin_wow"}


def figures(y: np.ndarray, p: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    pred = p >= threshold
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, pred)), 4),
        "f1": round(float(f1_score(y, pred)), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y, pred)), 4),
    }


def baseline_figures(y: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """AUC, and balanced accuracy / F1 at the threshold best for this set (after the fact)."""
    best = max(np.unique(b), key=lambda t: balanced_accuracy_score(y, b >= t))
    return {
        "roc_auc": round(float(roc_auc_score(y, b)), 4),
        "best_balanced_accuracy": round(float(balanced_accuracy_score(y, b >= best)), 4),
        "f1_at_that_threshold": round(float(f1_score(y, b >= best)), 4),
        "threshold_chosen_after_the_fact": round(float(best), 4),
    }


def labelled_sets() -> dict[str, tuple[list[dict], np.ndarray, bool]]:
    """name -> (items, labels, seen in the fit)."""
    sets: dict[str, tuple[list[dict], np.ndarray, bool]] = {}
    items, y, record = load_halueval()
    sets["halueval_all"] = (items, y, True)
    held = np.flatnonzero(record % 2 == 1)
    sets["halueval_held_out"] = ([items[i] for i in held], y[held], False)
    demo = load_demo_chat()
    idx = balanced_subset(demo.labels, demo.held_out, demo.request_ids)
    sets["demo_held_out"] = ([demo.items[i] for i in idx], demo.labels[idx], False)
    for split in BEGIN_SPLITS:
        items, y = load_begin(split)
        sets[f"begin_{split}"] = (items, y, f"begin_{split}" in FIT_PROTOCOL_TRAINING)
    return sets


def quality(scorers: dict[str, HallucinationScorer]) -> dict:
    sets = labelled_sets()
    out: dict = {"threshold": DEFAULT_THRESHOLD, "sets": {}}
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in scorers}
    pooled_y: list[np.ndarray] = []
    pooled_b: list[np.ndarray] = []
    for set_name, (items, y, seen) in sets.items():
        b = np.array([content_token_baseline(i) for i in items])
        row: dict = {"n": len(y), "hallucinated_share": round(float(np.mean(y)), 3), "seen_in_fit": seen,
                     "content_token_baseline": baseline_figures(y, b)}
        for name, scorer in scorers.items():
            p = np.array([r.score for r in scorer.score(items)])
            row[name] = figures(y, p)
            if set_name.startswith("begin_"):
                pooled[name].append(p)
        if set_name.startswith("begin_"):
            pooled_y.append(y)
            pooled_b.append(b)
        out["sets"][set_name] = row
    y, b = np.concatenate(pooled_y), np.concatenate(pooled_b)
    row = {"n": len(y), "hallucinated_share": round(float(np.mean(y)), 3), "seen_in_fit": "wow only",
           "content_token_baseline": baseline_figures(y, b)}
    for name in scorers:
        row[name] = figures(y, np.concatenate(pooled[name]))
    out["sets"]["begin_pooled"] = row
    return out


def speed(scorer: HallucinationScorer, items: list[dict], repeat: int = 1) -> dict:
    """Best of `repeat` runs: wall-clock samples/s, and the same per second of this process's CPU
    time (all threads): on a machine shared with other jobs the wall clock also measures them,
    the CPU time much less so."""
    scorer.score(items[:8])  # warm-up: first forward pass, lazy imports
    best = best_cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        scorer.score(items)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {"reference_model": scorer.reference_model, "device": scorer.device, "samples": len(items),
            "seconds": round(best, 3), "samples_per_s": round(len(items) / best, 1),
            "cpu_seconds": round(best_cpu, 3), "samples_per_cpu_s": round(len(items) / best_cpu, 1)}


# --------------------------------------------------------------------------- reference-model kinds

# The real models' sizes (parameters outside the embedding tables: the part that costs FLOPs per
# token) and a typical pair length: a claim (~25 tokens) beside a grounding chunk that fills the window.
REAL_MODELS = {
    "nli": {"model": "DeBERTa-v3-base MNLI cross-encoder", "non_embedding_params": 86e6, "tokens_per_pair": 512},
    "hhem": {"model": "HHEM-2.1-open (flan-t5-base)", "non_embedding_params": 200e6, "tokens_per_pair": 512},
    "minicheck_roberta": {"model": "MiniCheck-RoBERTa-large", "non_embedding_params": 303e6, "tokens_per_pair": 512},
    "minicheck_deberta": {"model": "MiniCheck-DeBERTa-v3-large", "non_embedding_params": 303e6, "tokens_per_pair": 512},
    "minicheck_flan_t5": {"model": "MiniCheck-Flan-T5-Large (encoder + 1 decoder step)", "non_embedding_params": 340e6, "tokens_per_pair": 512},
    "token": {"model": "LettuceDetect-large (ModernBERT-large)", "non_embedding_params": 343e6, "tokens_per_pair": 4096},
}
# Efficiency of transformer inference relative to a large fp32 GEMM on the CPU (attention, layer
# norms and small batches waste some), and model-FLOPs utilisation on a GPU in bf16.
CPU_EFFICIENCY = 0.5
GPU = {"name": "NVIDIA H100/H200 SXM", "dense_bf16_tflops": 989.0, "utilisation": 0.4}


def cpu_gemm_flops() -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - t0)


def model_kinds(device: str) -> dict:
    from helpers import checker_fixtures as F

    from genobs.evaluators.claim_checkers import CheckerSpec, load_checker

    items, _, _ = load_halueval()
    jobs = [(it["context"], it["response"]) for it in items[:128]]
    texts = [t for it in items[:128] for t in (*it["context"], it["response"], it["prompt"])]
    gemm = cpu_gemm_flops()
    out: dict = {"cpu_fp32_gemm_gflops": round(gemm / 1e9, 1), "cpu_efficiency_assumed": CPU_EFFICIENCY,
                 "gpu_assumed": GPU, "kinds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        builders = {
            "nli": (lambda d: F.build_nli(d, texts, {0: "entailment", 1: "neutral", 2: "contradiction"}), "nli"),
            "hhem": (lambda d: F.build_hhem(d, texts), "hhem"),
            "minicheck_roberta": (lambda d: F.build_minicheck_encoder(d, texts, "roberta"), "minicheck"),
            "minicheck_deberta": (lambda d: F.build_minicheck_encoder(d, texts, "deberta"), "minicheck"),
            "minicheck_flan_t5": (lambda d: F.build_minicheck_t5(d, texts), "minicheck"),
            "token": (lambda d: F.build_token_detector(d, texts, set()), "token"),
        }
        for name, (build, kind) in builders.items():
            directory = build(base / name)
            checker = load_checker(CheckerSpec(kind, str(directory), max_length=128, batch_size=32), device)
            t0 = time.perf_counter()
            if kind == "token":
                checker.detect([(g, r, None) for g, r in jobs])
                pairs = len(jobs)
            else:
                checker.support(jobs)
                pairs = sum(len(c) for c in checker.last_chunks)
            elapsed = time.perf_counter() - t0
            real = REAL_MODELS[name]
            flops = 2 * real["non_embedding_params"] * real["tokens_per_pair"]
            out["kinds"][name] = {
                "tiny_random_model": {"device": str(checker.device), "pairs": pairs,
                                      "pairs_per_s": round(pairs / elapsed, 1),
                                      "params": sum(p.numel() for p in checker.model.parameters())},
                "real_model": real["model"],
                "projected_pairs_per_s": {
                    "cpu": float(f"{gemm * CPU_EFFICIENCY / flops:.3g}"),
                    "one_gpu": float(f"{GPU['dense_bf16_tflops'] * 1e12 * GPU['utilisation'] / flops:.3g}"),
                },
                "gflops_per_pair": round(flops / 1e9, 1),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: quality, speed, models")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    with_model = HallucinationScorer(device=args.device)
    # shared machine: the load average beside the figures says how noisy the timings are
    out: dict = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                 "model_load_seconds": round(time.perf_counter() - t0, 2)}
    lexical = HallucinationScorer(use_embeddings=False)
    if "quality" not in skip:
        out["quality"] = quality({"with_embeddings": with_model, "lexical_only": lexical})
    if "speed" not in skip:
        items, _, _ = load_halueval()
        demo = load_demo_chat()
        idx = balanced_subset(demo.labels, demo.held_out, demo.request_ids)
        demo_items = [demo.items[i] for i in idx]
        begin_items = [item for split in BEGIN_SPLITS for item in load_begin(split)[0]]
        out["speed"] = {
            "halueval_with_embeddings": {**speed(with_model, items), "target_samples_per_s": 50},
            "halueval_lexical_only": {**speed(lexical, items, repeat=3), "target_samples_per_s": 2000},
            "demo_with_embeddings": speed(with_model, demo_items),
            "demo_lexical_only": speed(lexical, demo_items, repeat=3),
            "begin_with_embeddings": speed(with_model, begin_items),
            "begin_lexical_only": speed(lexical, begin_items, repeat=3),
        }
    if "models" not in skip:
        out["reference_model_kinds"] = model_kinds(args.device)
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
