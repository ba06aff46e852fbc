"""Fit the hallucination evaluator's claim weights on HaluEval QA; report held-out figures.

Data: /work/shared/data/halueval_qa.jsonl (RUCAIBox/HaluEval, generation/qa/qa_one-turn_data.json):
each record's right_answer is label 0 and hallucinated_answer label 1, grounded on `knowledge`,
with `question` as the prompt. Even-indexed records are the training half, odd-indexed the held-out
half. A response scores as its worst claim, claim score = sigmoid(bias + weights . features).

The fit is a multiple-instance logistic regression on the training half plus every hand-labelled
dialogue-style case of tests/test_hallucination.py (weight CASE_WEIGHT each, so faithful
paraphrases stay grounded). Prints JSON: the committed constants (BIAS/WEIGHTS, or LEXICAL_* with
--lexical-only) with their train / held-out / all figures and any labelled case they get wrong,
and the refit from scratch (the committed constants are this refit, rounded).

    python bench/fit_hallucination.py [--data PATH] [--lexical-only] [--case-weight 10]
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from evaluators import hallucination as h  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/halueval_qa.jsonl")
# Each hand-labelled case counts as this many HaluEval responses in the fit: enough that the fit
# keeps faithful paraphrases grounded (a HaluEval-only fit flags them).
CASE_WEIGHT = 10.0


def load_items(path: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    items, labels, record = [], [], []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            r = json.loads(line)
            for key, label in (("right_answer", 0), ("hallucinated_answer", 1)):
                items.append({"response": r[key], "context": [r["knowledge"]], "prompt": r["question"]})
                labels.append(label)
                record.append(n)
    return items, np.array(labels), np.array(record)


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
    feats: list[list[list[float]]], y: np.ndarray, case_feats: list[list[list[float]]], case_y: np.ndarray,
    case_weight: float, rounds: int = 6,
) -> tuple[float, np.ndarray]:
    """Multiple-instance logistic regression: a response scores as its worst claim, so each round
    refits on every response's worst claim under the current weights. The labelled cases join the
    training rows with `case_weight` each. Deterministic (lbfgs, fixed start)."""
    bias, w = -2.0, np.full(len(h.FEATURES), 3.0)
    for _ in range(rounds):
        X = np.array([max(rows, key=lambda x: bias + float(np.dot(w, x))) for rows in feats])
        CX = np.array([max(rows, key=lambda x: bias + float(np.dot(w, x))) for rows in case_feats])
        weights = np.concatenate([np.ones(len(y)), np.full(len(case_y), case_weight)])
        model = LogisticRegression(C=10.0, max_iter=5000)
        model.fit(np.vstack([X, CX]), np.concatenate([y, case_y]), sample_weight=weights)
        bias, w = float(model.intercept_[0]), model.coef_[0]
    return bias, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--lexical-only", action="store_true", help="without the embedding model")
    ap.add_argument("--case-weight", type=float, default=CASE_WEIGHT)
    args = ap.parse_args()
    from test_hallucination import LABELLED_CASES  # the hand-labelled cases (tests/)

    items, y, record = load_items(args.data)
    scorer = h.HallucinationScorer(use_embeddings=not args.lexical_only)
    scorer.refine_all = True  # exact features for every claim, not only where the model could change a label
    feats = claim_feature_sets(scorer, items)
    case_items = [{"response": c.response, "context": [c.context], "prompt": c.prompt} for c in LABELLED_CASES]
    case_y = np.array([c.label for c in LABELLED_CASES])
    case_feats = claim_feature_sets(scorer, case_items)
    train, test = record % 2 == 0, record % 2 == 1

    committed = (h.LEXICAL_BIAS, h.LEXICAL_WEIGHTS) if args.lexical_only else (h.BIAS, h.WEIGHTS)
    w_committed = np.array([committed[1][f] for f in h.FEATURES])
    p = response_scores(feats, committed[0], w_committed)
    case_wrong = [c.name for c, s in zip(LABELLED_CASES, response_scores(case_feats, committed[0], w_committed)) if (s >= 0.5) != c.label]

    bias, w = fit_logistic([feats[i] for i in np.flatnonzero(train)], y[train], case_feats, case_y, args.case_weight)
    p_fit = response_scores(feats, bias, w)
    fit_case_wrong = [c.name for c, s in zip(LABELLED_CASES, response_scores(case_feats, bias, w)) if (s >= 0.5) != c.label]
    report = {
        "data": str(args.data),
        "mode": "lexical-only" if args.lexical_only else scorer.reference_model,
        "train_samples": int(train.sum()),
        "held_out_samples": int(test.sum()),
        "committed": {
            "bias": committed[0],
            "weights": committed[1],
            "train": figures(y[train], p[train]),
            "held_out": figures(y[test], p[test]),
            "all": figures(y, p),
            "labelled_cases_wrong": case_wrong,
        },
        "refit": {
            "case_weight": args.case_weight,
            "bias": round(bias, 2),
            "weights": {f: round(float(v), 2) for f, v in zip(h.FEATURES, w)},
            "train": figures(y[train], p_fit[train]),
            "held_out": figures(y[test], p_fit[test]),
            "labelled_cases_wrong": fit_case_wrong,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
