"""Embedding drift between two sets of sentence embeddings, in torch on the chosen device.

Two views of the same question ("do these texts come from the same distribution?"):

* domain classifier: a logistic regression told to separate reference from current, scored by
  the ROC AUC of its out-of-fold predictions (k-fold cross-validation). 0.5 = indistinguishable;
  drift when AUC > 0.55 (Evidently's default for its ``model`` embedding-drift method).
* MMD: the unbiased squared maximum mean discrepancy with an RBF kernel whose bandwidth is the
  median pairwise distance (median heuristic), with a permutation p-value; drift when p < 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

CLASSIFIER_AUC_THRESHOLD = 0.55
MMD_P_VALUE_THRESHOLD = 0.05
DEFAULT_FOLDS = 5
DEFAULT_PERMUTATIONS = 500
MIN_TEXTS_PER_SIDE = 20


@dataclass
class EmbeddingDrift:
    feature: str  # e.g. "prompt_embedding"
    method: str  # "domain_classifier" | "mmd"
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool | None
    details: dict[str, Any] = field(default_factory=dict)


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.to(device=device, dtype=torch.float32)


def binary_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties given their average rank."""
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(scores) + 1, device=scores.device, dtype=torch.float64)
    # average ranks over ties
    unique, inverse = torch.unique(sorted_scores, return_inverse=True)
    if len(unique) < len(scores):
        sums = torch.zeros(len(unique), device=scores.device, dtype=torch.float64).index_add_(
            0, inverse, torch.arange(1, len(scores) + 1, device=scores.device, dtype=torch.float64))
        counts = torch.bincount(inverse, minlength=len(unique)).to(torch.float64)
        ranks[order] = (sums / counts)[inverse]
    n_pos = float(labels.sum().item())
    n_neg = float(len(labels) - n_pos)
    rank_sum = float(ranks[labels.bool()].sum().item())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, weight_decay: float, steps: int) -> torch.nn.Linear:
    model = torch.nn.Linear(x.shape[1], 1).to(x.device)
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x).squeeze(1), y) + weight_decay * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def domain_classifier_auc(
    reference: np.ndarray | torch.Tensor, current: np.ndarray | torch.Tensor, device: torch.device,
    folds: int = DEFAULT_FOLDS, seed: int = 0, weight_decay: float = 1e-3, steps: int = 25,
) -> float:
    """Out-of-fold ROC AUC of a logistic regression separating current (1) from reference (0)."""
    x = torch.cat([_as_tensor(reference, device), _as_tensor(current, device)])
    y = torch.cat([torch.zeros(len(reference), device=device), torch.ones(len(current), device=device)])
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-6)
    x = (x - mean) / std
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(y), dtype=torch.long)
    for label in (0, 1):  # stratified: deal each class round-robin over shuffled folds
        idx = torch.nonzero(y.cpu() == label).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        fold_of[idx] = torch.arange(len(idx)) % folds
    fold_of = fold_of.to(device)
    out = torch.empty(len(y), device=device)
    with torch.enable_grad():
        for k in range(folds):
            test = fold_of == k
            model = _fit_logistic(x[~test], y[~test], weight_decay, steps)
            with torch.no_grad():
                out[test] = model(x[test]).squeeze(1)
    return binary_auc(out.detach(), y)


def mmd_permutation_test(
    reference: np.ndarray | torch.Tensor, current: np.ndarray | torch.Tensor, device: torch.device,
    permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0, chunk: int = 100,
) -> tuple[float, float, float]:
    """(unbiased MMD^2, permutation p-value, RBF bandwidth sigma)."""
    x, y = _as_tensor(reference, device), _as_tensor(current, device)
    n, m = len(x), len(y)
    z = torch.cat([x, y]).to(torch.float64)
    d2 = torch.cdist(z, z).pow(2)
    off_diagonal = d2[~torch.eye(n + m, dtype=torch.bool, device=device)]
    sigma2 = float(off_diagonal.median().item())
    sigma2 = sigma2 if sigma2 > 0 else 1.0
    kernel = torch.exp(-d2 / (2 * sigma2))

    def mmd2(a: torch.Tensor) -> torch.Tensor:  # a: (P, n+m) indicator of the "reference" side
        b = 1 - a
        ka = a @ kernel
        kb = b @ kernel
        xx = ((ka * a).sum(1) - n) / (n * (n - 1))
        yy = ((kb * b).sum(1) - m) / (m * (m - 1))
        xy = (ka * b).sum(1) / (n * m)
        return xx + yy - 2 * xy

    labels = torch.cat([torch.ones(n), torch.zeros(m)]).to(device=device, dtype=torch.float64)
    observed = float(mmd2(labels.unsqueeze(0))[0].item())
    generator = torch.Generator().manual_seed(seed)
    exceed = 0
    done = 0
    while done < permutations:
        size = min(chunk, permutations - done)
        perms = torch.stack([labels.cpu()[torch.randperm(n + m, generator=generator)] for _ in range(size)]).to(device)
        exceed += int((mmd2(perms) >= observed).sum().item())
        done += size
    p_value = (1 + exceed) / (1 + permutations)
    return observed, p_value, float(sigma2 ** 0.5)


def embedding_drift(
    feature: str, reference: np.ndarray, current: np.ndarray, device: torch.device,
    permutations: int = DEFAULT_PERMUTATIONS, folds: int = DEFAULT_FOLDS, seed: int = 0,
) -> list[EmbeddingDrift]:
    """The domain-classifier and MMD rows for one text field."""
    sizes = {"n_reference": int(len(reference)), "n_current": int(len(current)), "device": str(device)}
    if min(len(reference), len(current)) < max(MIN_TEXTS_PER_SIDE, folds):
        reason = {"reason": f"fewer than {MIN_TEXTS_PER_SIDE} texts in a window", **sizes}
        return [
            EmbeddingDrift(feature, "domain_classifier", None, None, None, None, dict(reason)),
            EmbeddingDrift(feature, "mmd", None, None, None, None, dict(reason)),
        ]
    with torch.inference_mode(False):
        auc = domain_classifier_auc(reference, current, device, folds=folds, seed=seed)
    with torch.no_grad():
        mmd2, p_value, sigma = mmd_permutation_test(reference, current, device, permutations=permutations, seed=seed)
    return [
        EmbeddingDrift(feature, "domain_classifier", auc, None, CLASSIFIER_AUC_THRESHOLD,
                       auc > CLASSIFIER_AUC_THRESHOLD, {"roc_auc": auc, "folds": folds, **sizes}),
        EmbeddingDrift(feature, "mmd", mmd2, p_value, MMD_P_VALUE_THRESHOLD, p_value < MMD_P_VALUE_THRESHOLD,
                       {"kernel": "rbf", "bandwidth": sigma, "permutations": permutations, **sizes}),
    ]
