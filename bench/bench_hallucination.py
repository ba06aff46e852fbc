"""Benchmark the hallucination evaluator on HaluEval QA and the demo chat data: throughput and
quality. Prints JSON.

    python bench/bench_hallucination.py [--data PATH] [--device auto|cpu|cuda] [--no-demo]

Demo data (bench/hallucination_data.py): the held-out half (odd CRC-32 of the request id) of the
support-chat samples, every hallucinated one plus as many faithful ones; targets AUC >= 0.95 and
F1 >= 0.85 at the default threshold. "canary_vs_baseline" is the share of the 2026-11-22 chat-large
samples labelled hallucinated for the v1.6 canary and the v1.5 baseline, next to the planted
share (labels: ~30% vs ~2%), over all that day's scored samples of both halves.

Data: halueval_qa.jsonl (RUCAIBox/HaluEval QA; right_answer = label 0, hallucinated_answer =
label 1, grounded on `knowledge`, question as prompt). Targets on a 2-core CPU: >= 50 samples/s
with the embedding model, >= 2,000 samples/s lexical-only. Compared with LLM judges on the same
data (Arize Phoenix docs, per the data README): GPT-4 P 0.93 / R 0.72 / F1 0.82 and Claude v2
P 0.80 / R 0.95 / F1 0.87, at about one sample per second and an API call per sample.
Model loading is timed separately; samples/s is for `scorer.score(all items)` in one call.
By default the model only refines claims whose label it could change; with_embeddings_refine_all
times the model on every claim that has an unsupported word (the worst case).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))   # hallucination_data beside this script

from genobs.evaluators.hallucination import DEFAULT_THRESHOLD, HallucinationScorer  # noqa: E402
from hallucination_data import DEFAULT_HALUEVAL, balanced_subset, load_demo_chat  # noqa: E402

DEFAULT_DATA = DEFAULT_HALUEVAL
CANARY_DAY, CANARY_VERSION, BASELINE_VERSION = "2026-11-22", "v1.6", "v1.5"
LLM_JUDGES = {
    "source": "Arize Phoenix docs, HaluEval QA (LLM-as-judge)",
    "gpt-4": {"precision": 0.93, "recall": 0.72, "f1": 0.82, "samples_per_s": 1.0},
    "claude-v2": {"precision": 0.80, "recall": 0.95, "f1": 0.87, "samples_per_s": 1.0},
}


def load(path: Path) -> tuple[list[dict], list[int]]:
    items, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            for key, label in (("right_answer", 0), ("hallucinated_answer", 1)):
                items.append({"response": r[key], "context": [r["knowledge"]], "prompt": r["question"]})
                labels.append(label)
        except (json.JSONDecodeError, KeyError) as exc:
            raise SystemExit(f"{path}:{n}: bad HaluEval record: {exc}") from exc
    return items, labels


def run(scorer: HallucinationScorer, items: list[dict], labels: list[int]) -> dict:
    scorer.score(items[:8])  # warm-up (first forward pass, lazy imports)
    t0 = time.perf_counter()
    results = scorer.score(items)
    elapsed = time.perf_counter() - t0
    scores = [r.score for r in results]
    pred = [int(s >= DEFAULT_THRESHOLD) for s in scores]
    return {
        "reference_model": scorer.reference_model,
        "device": scorer.device,
        "samples": len(items),
        "seconds": round(elapsed, 3),
        "samples_per_s": round(len(items) / elapsed, 1),
        "f1": round(f1_score(labels, pred), 4),
        "precision": round(precision_score(labels, pred), 4),
        "recall": round(recall_score(labels, pred), 4),
        "roc_auc": round(roc_auc_score(labels, scores), 4),
    }


def demo_figures(scorer: HallucinationScorer) -> dict:
    demo = load_demo_chat()
    held = balanced_subset(demo.labels, demo.held_out, demo.request_ids)
    out = run(scorer, [demo.items[i] for i in held], [int(v) for v in demo.labels[held]])
    day = [i for i, d in enumerate(demo.day) if d == CANARY_DAY and demo.model_version[i] in (CANARY_VERSION, BASELINE_VERSION)]
    results = scorer.score([demo.items[i] for i in day])
    shares = {}
    for version in (CANARY_VERSION, BASELINE_VERSION):
        rows = [(r, demo.labels[i]) for r, i in zip(results, day) if demo.model_version[i] == version]
        shares[version] = {
            "samples": len(rows),
            "flagged_share": round(sum(r.label == "hallucinated" for r, _ in rows) / max(1, len(rows)), 4),
            "planted_share": round(sum(int(y) for _, y in rows) / max(1, len(rows)), 4),
        }
    return {**out, "split": "held-out half (odd crc32(request_id)), balanced", "target": {"roc_auc": 0.95, "f1": 0.85},
            "canary_vs_baseline": {"day": CANARY_DAY, **shares}}


def _refine_all(scorer: HallucinationScorer, items: list[dict], labels: list[int]) -> dict:
    scorer.refine_all = True
    try:
        return run(scorer, items, labels)
    finally:
        scorer.refine_all = False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-demo", action="store_true", help="HaluEval only")
    args = ap.parse_args()
    items, labels = load(args.data)
    t0 = time.perf_counter()
    with_model = HallucinationScorer(device=args.device)
    load_s = time.perf_counter() - t0
    out = {
        "data": str(args.data),
        "threshold": DEFAULT_THRESHOLD,
        "model_load_seconds": round(load_s, 2),
        "with_embeddings": {**run(with_model, items, labels), "target_samples_per_s": 50},
        "lexical_only": {**run(HallucinationScorer(use_embeddings=False), items, labels), "target_samples_per_s": 2000},
        # worst case for speed: the model refines every claim with an unsupported word, not only
        # those whose label it could change (what fit_hallucination.py uses)
        "with_embeddings_refine_all": _refine_all(with_model, items, labels),
        "compared_with": LLM_JUDGES,
    }
    if not args.no_demo:
        out["demo_chat_with_embeddings"] = {**demo_figures(with_model), "target_samples_per_s": 50}
        out["demo_chat_lexical_only"] = demo_figures(HallucinationScorer(use_embeddings=False))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
