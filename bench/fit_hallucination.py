"""Fit the hallucination evaluator's claim weights on HaluEval QA and the demo chat data; report
held-out figures.

Data (bench/hallucination_data.py):
* tests/data/halueval_qa.jsonl (RUCAIBox/HaluEval, generation/qa/qa_one-turn_data.json):
  each record's right_answer is label 0 and hallucinated_answer label 1, grounded on `knowledge`,
  with `question` as the prompt. Even-indexed records are the training half, odd-indexed held out.
* the demo data's support-chat samples (sample_data/data/chat_samples.jsonl.gz, labels in
  meta/labels.json): multi-sentence dialogue responses. Split by CRC-32 of the request id: the even
  half trains, the odd half is held out; each half is used as every hallucinated sample plus as
  many faithful ones (deterministic pick).
A response scores as its worst claim, claim score = sigmoid(bias + weights . features).

The fit is a multiple-instance logistic regression on both training halves plus every
hand-labelled dialogue-style case of tests/helpers/hallucination_cases.py (weight CASE_WEIGHT each, so
faithful paraphrases stay grounded); the demo training half weighs DEMO_SHARE times as much in total as
the HaluEval one. Prints JSON: the committed constants (BIAS/WEIGHTS, or LEXICAL_* with --lexical-only) with
their train / held-out figures on both data sets and any labelled case they get wrong, and the
refit from scratch (the committed constants are this refit, rounded).

    python bench/fit_hallucination.py [--data PATH] [--lexical-only] [--case-weight 10] [--no-demo]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))   # the hand-labelled cases (tests/helpers)
sys.path.insert(0, str(ROOT / "bench"))   # hallucination_data

from genobs.evaluators import hallucination as h  # noqa: E402
from hallucination_data import DEFAULT_HALUEVAL, balanced_subset, load_demo_chat, load_halueval  # noqa: E402

DEFAULT_DATA = DEFAULT_HALUEVAL
# Each hand-labelled case counts as this many HaluEval responses in the fit: enough that the fit
# keeps faithful paraphrases grounded (a HaluEval-only fit flags them).
CASE_WEIGHT = 10.0
# The demo training half weighs this much in total relative to the HaluEval training half.
DEMO_SHARE = 0.5


def claim_feature_sets(scorer: h.HallucinationScorer, items: list[dict]) -> list[list[list[float]]]:
    """Per item, the feature vectors of its scored claims (all-zero vector when none is)."""
    results = scorer.score(items)
    out = []
    for r in results:
        rows = [[c["features"][f] for f in h.FEATURES] for c in r.details["claims"] if c["features"] is not None]
        out.append(rows or [[0.0] * len(h.FEATURES)])
    return out


def response_scores(feats: list[list[list[float]]], bias: float, w: np.ndarray) -> np.ndarray:
    return np.array([max(1.0 / (1.0 + np.exp(-(bias + float(np.dot(w, x))))) for x in rows) for rows in feats])


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = p >= h.DEFAULT_THRESHOLD
    return {
        "f1": round(f1_score(y, pred), 4),
        "precision": round(precision_score(y, pred, zero_division=0), 4),
        "recall": round(recall_score(y, pred), 4),
        "roc_auc": round(roc_auc_score(y, p), 4),
    }


def fit_logistic(
    feats: list[list[list[float]]], y: np.ndarray, sample_weight: np.ndarray, rounds: int = 6,
) -> tuple[float, np.ndarray]:
    """Multiple-instance logistic regression: a response scores as its worst claim, so each round
    refits on every response's worst claim under the current weights. Deterministic (lbfgs, fixed
    start)."""
    bias, w = -2.0, np.full(len(h.FEATURES), 3.0)
    for _ in range(rounds):
        X = np.array([max(rows, key=lambda x: bias + float(np.dot(w, x))) for rows in feats])
        model = LogisticRegression(C=10.0, max_iter=5000)
        model.fit(X, y, sample_weight=sample_weight)
        bias, w = float(model.intercept_[0]), model.coef_[0]
    return bias, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--lexical-only", action="store_true", help="without the embedding model")
    ap.add_argument("--case-weight", type=float, default=CASE_WEIGHT)
    ap.add_argument("--no-demo", action="store_true", help="fit on HaluEval and the labelled cases only")
    ap.add_argument("--demo-share", type=float, default=DEMO_SHARE,
                    help="total weight of the demo training half relative to the HaluEval one")
    args = ap.parse_args()
    from helpers.hallucination_cases import LABELLED_CASES

    items, y, record = load_halueval(args.data)
    scorer = h.HallucinationScorer(use_embeddings=not args.lexical_only)
    scorer.refine_all = True  # exact features for every claim, not only where the model could change a label
    feats = claim_feature_sets(scorer, items)
    case_items = [{"response": c.response, "context": [c.context], "prompt": c.prompt} for c in LABELLED_CASES]
    case_y = np.array([c.label for c in LABELLED_CASES])
    case_feats = claim_feature_sets(scorer, case_items)
    train, test = record % 2 == 0, record % 2 == 1
    demo = load_demo_chat()
    demo_train = balanced_subset(demo.labels, ~demo.held_out, demo.request_ids)
    demo_test = balanced_subset(demo.labels, demo.held_out, demo.request_ids)
    demo_feats = claim_feature_sets(scorer, [demo.items[i] for i in np.concatenate([demo_train, demo_test])])
    demo_train_feats, demo_test_feats = demo_feats[: len(demo_train)], demo_feats[len(demo_train):]
    demo_y_train, demo_y_test = demo.labels[demo_train], demo.labels[demo_test]

    def evaluate(bias: float, w: np.ndarray) -> dict:
        p = response_scores(feats, bias, w)
        return {
            "halueval_train": figures(y[train], p[train]),
            "halueval_held_out": figures(y[test], p[test]),
            "demo_train": figures(demo_y_train, response_scores(demo_train_feats, bias, w)),
            "demo_held_out": figures(demo_y_test, response_scores(demo_test_feats, bias, w)),
            "labelled_cases_wrong": [
                c.name for c, s in zip(LABELLED_CASES, response_scores(case_feats, bias, w)) if (s >= 0.5) != c.label
            ],
        }

    committed = (h.LEXICAL_BIAS, h.LEXICAL_WEIGHTS) if args.lexical_only else (h.BIAS, h.WEIGHTS)
    w_committed = np.array([committed[1][f] for f in h.FEATURES])

    train_feats = [feats[i] for i in np.flatnonzero(train)] + case_feats
    train_y = [y[train], case_y]
    train_w = [np.ones(int(train.sum())), np.full(len(case_y), args.case_weight)]
    demo_weight = 0.0 if args.no_demo else args.demo_share * float(train.sum()) / len(demo_train)
    if demo_weight:
        train_feats += demo_train_feats
        train_y.append(demo_y_train)
        train_w.append(np.full(len(demo_train), demo_weight))
    bias, w = fit_logistic(train_feats, np.concatenate(train_y), np.concatenate(train_w))
    report = {
        "data": str(args.data),
        "mode": "lexical-only" if args.lexical_only else scorer.reference_model,
        "halueval_train_samples": int(train.sum()),
        "halueval_held_out_samples": int(test.sum()),
        "demo_train_samples": len(demo_train),
        "demo_held_out_samples": len(demo_test),
        "demo_weight_each": round(demo_weight, 4),
        "committed": {"bias": committed[0], "weights": committed[1], **evaluate(committed[0], w_committed)},
        "refit": {
            "case_weight": args.case_weight,
            "bias": round(bias, 2),
            "weights": {f: round(float(v), 2) for f, v in zip(h.FEATURES, w)},
            **evaluate(round(bias, 2), np.round(w, 2)),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
