"""Drift: a current window of samples against a reference window (or model version).

Per feature, Evidently's DataDriftPreset decision (its default test per column type and size,
see ``drift_tests``), computed from DuckDB-side aggregates (``drift_aggregates``) so that a
million rows a side take seconds; the dataset drift share; and embedding drift of prompts and
responses (``embedding_drift``). Every run writes one row per feature, one per embedding method
and one dataset row to ``drift_results``; the dataset row's ``drift_score`` (the share of
drifted features) is the number an SLO or an alert can watch.

    from genobs.evaluators.drift import run_drift
    summary = run_drift(store, reference="7d before", current="last 24h", service="chat-api")
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from typing import Any, Callable, Sequence

import numpy as np

from genobs.evaluators.drift_aggregates import CUR, DEFAULT_EXACT_ROWS, REF, columns_drift, quote
from genobs.evaluators.drift_tests import DEFAULT_DRIFT_SHARE, ColumnDrift, dataset_drift_share
from genobs.evaluators.embedding_drift import (
    DEFAULT_FOLDS,
    DEFAULT_PERMUTATIONS,
    EmbeddingDrift,
    embedding_drift,
)
from genobs.evaluators.windows import Window, resolve_windows
from genobs.store import Store

log = logging.getLogger(__name__)

NUMERICAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("latency_ms", "CAST(s.latency_ms AS DOUBLE)"),
    ("ttft_ms", "CAST(s.ttft_ms AS DOUBLE)"),
    ("input_tokens", "CAST(s.input_tokens AS DOUBLE)"),
    ("output_tokens", "CAST(s.output_tokens AS DOUBLE)"),
    ("cost_usd", "CAST(s.cost_usd AS DOUBLE)"),
    ("response_length", "CAST(CASE WHEN s.modality = 'image' THEN NULL ELSE length(s.response) END AS DOUBLE)"),
)
SCORE_FEATURES: tuple[str, ...] = ("hallucination_score", "clip_score")
CATEGORICAL_FEATURES: tuple[str, ...] = ("model", "status", "tenant")
TEXT_FIELDS: tuple[str, ...] = ("prompt", "response")
DEFAULT_EMBEDDING_SAMPLE = {"cuda": 500, "cpu": 200}  # texts per window and field
DATASET_FEATURE = "dataset"


class DriftError(Exception):
    """A drift run cannot be done as asked (message says why and what to change)."""


@dataclass
class DriftSummary:
    run_id: str
    computed_at: datetime
    service: str | None
    reference: str
    current: str
    n_reference: int
    n_current: int
    features: list[ColumnDrift]
    embeddings: list[EmbeddingDrift] = field(default_factory=list)
    drift_share: float = 0.0
    tabular_drift_share: float = 0.0
    dataset_drift: bool = False
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE

    @property
    def drift_score(self) -> float:
        """The SLO-usable score: share of drifted features (tabular and embedding)."""
        return self.drift_share

    @property
    def drifted_features(self) -> list[str]:
        out = [f.feature for f in self.features if f.drifted]
        out += sorted({e.feature for e in self.embeddings if _embedding_feature_drifted(self.embeddings, e.feature)})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "computed_at": self.computed_at.isoformat(),
            "service": self.service,
            "reference": self.reference,
            "current": self.current,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_score": self.drift_share,
            "drift_share": self.drift_share,
            "tabular_drift_share": self.tabular_drift_share,
            "dataset_drift": self.dataset_drift,
            "drifted_features": self.drifted_features,
            "features": [
                {"feature": f.feature, "feature_type": f.feature_type, "method": f.method, "statistic": f.statistic,
                 "p_value": f.p_value, "threshold": f.threshold, "drifted": f.drifted, "details": f.details}
                for f in self.features
            ],
            "embeddings": [
                {"feature": e.feature, "method": e.method, "statistic": e.statistic, "p_value": e.p_value,
                 "threshold": e.threshold, "drifted": e.drifted, "details": e.details}
                for e in self.embeddings
            ],
        }


def _embedding_feature_drifted(rows: Sequence[EmbeddingDrift], feature: str) -> bool | None:
    """An embedding feature counts as drifted in the share when both the domain classifier and
    the MMD test say so (either alone is reported in its own row)."""
    verdicts = [r.drifted for r in rows if r.feature == feature]
    if not verdicts or any(v is None for v in verdicts):
        return None
    return all(verdicts)


# --------------------------------------------------------------------------- selecting samples


def _newest_timestamp(store: Store, service: str | None) -> datetime | None:
    where, params = ("WHERE service = ?", [service]) if service else ("", [])
    row = store.cursor().execute(f"SELECT max(timestamp) FROM samples {where}", params).fetchone()
    return row[0] if row else None


def services(store: Store) -> list[str]:
    return [r[0] for r in store.cursor().execute("SELECT DISTINCT service FROM samples ORDER BY 1").fetchall()]


def _side_filter(window: Window, service: str | None) -> tuple[str, list[Any]]:
    where, params = window.where("s")
    if service:
        where = f"s.service = ? AND {where}"
        params = [service, *params]
    return where, params


def _score_features_present(store: Store) -> list[str]:
    rows = store.cursor().execute(
        "SELECT DISTINCT metric FROM scores WHERE metric IN (SELECT unnest(?)) AND value IS NOT NULL",
        [list(SCORE_FEATURES)],
    ).fetchall()
    present = {r[0] for r in rows}
    return [m for m in SCORE_FEATURES if m in present]


def materialize_features(store: Store, table: str, reference: Window, current: Window, service: str | None,
                         score_features: Sequence[str]) -> tuple[int, int]:
    """Create temp table ``table`` (_side + one column per feature) on this thread's cursor."""
    cols = [f"{expr} AS {quote(name)}" for name, expr in NUMERICAL_FEATURES]
    cols += [f"sc.{quote(m)} AS {quote(m)}" for m in score_features]
    cols += [f"CAST(s.{quote(c)} AS VARCHAR) AS {quote(c)}" for c in CATEGORICAL_FEATURES]
    join = ""
    if score_features:
        pivots = ", ".join(f"avg(value) FILTER (WHERE metric = ?) AS {quote(m)}" for m in score_features)
        join = (f"LEFT JOIN (SELECT request_id, {pivots} FROM scores WHERE value IS NOT NULL AND error IS NULL "
                f"GROUP BY request_id) sc ON sc.request_id = s.request_id")
    selects: list[str] = []
    ordered: list[Any] = []  # per SELECT: the score pivots' parameters, then the window filter's
    for side, window in ((REF, reference), (CUR, current)):
        where, side_params = _side_filter(window, service)
        selects.append(f"SELECT '{side}' AS _side, {', '.join(cols)} FROM samples s {join} WHERE {where}")
        ordered += list(score_features) + side_params
    cur = store.cursor()
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {' UNION ALL '.join(selects)}", ordered)
    counts = dict(cur.execute(f"SELECT _side, count(*) FROM {table} GROUP BY _side").fetchall())
    return int(counts.get(REF, 0)), int(counts.get(CUR, 0))


def load_feature_frames(store: Store, reference: str | None, current: str | None,
                        service: str | None) -> tuple[Any, Any, list[str], list[str]]:
    """(reference DataFrame, current DataFrame, numerical columns, categorical columns) — the
    rows drift is computed on, for comparisons with Evidently run on the raw rows."""
    ref_window, cur_window = resolve_windows(reference, current, _newest_timestamp(store, service))
    table = f"_genobs_drift_frames_{uuid.uuid4().hex[:12]}"
    score_features = _score_features_present(store)
    materialize_features(store, table, ref_window, cur_window, service, score_features)
    try:
        df = store.cursor().execute(f"SELECT * FROM {table}").df()
    finally:
        store.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    numerical = [name for name, _ in NUMERICAL_FEATURES] + list(score_features)
    ref = df[df["_side"] == REF].drop(columns="_side").reset_index(drop=True)
    cur = df[df["_side"] == CUR].drop(columns="_side").reset_index(drop=True)
    return ref, cur, numerical, list(CATEGORICAL_FEATURES)


def sample_texts(store: Store, field_name: str, window: Window, service: str | None, limit: int) -> list[str]:
    """Up to ``limit`` non-empty texts of a window, the same ones on every run (by request_id hash)."""
    where, params = _side_filter(window, service)
    sql = (f"SELECT s.{quote(field_name)} FROM samples s WHERE {where} AND s.{quote(field_name)} IS NOT NULL "
           f"AND length(trim(s.{quote(field_name)})) > 0 ORDER BY hash(s.request_id), s.request_id LIMIT ?")
    return [r[0] for r in store.cursor().execute(sql, [*params, limit]).fetchall()]


# --------------------------------------------------------------------------- run


Embedder = Callable[[list[str]], np.ndarray]


def _default_embedder(model_path: str | PathLike[str] | None, device: str) -> Embedder:
    """all-MiniLM-L6-v2 (or the model at ``model_path``), loaded once per process and device."""
    from genobs.evaluators.embedding_model import EmbeddingModelNotFoundError, SentenceEmbedder
    from genobs.evaluators.reference_models import load_once

    try:
        model = load_once(
            ("drift-embedder", str(model_path) if model_path else None, device),
            lambda: SentenceEmbedder(model_path, device=device),
        )
    except EmbeddingModelNotFoundError as exc:
        raise DriftError(
            "drift: the sentence-embedding model for embedding drift is missing. "
            + str(exc).replace("hallucination evaluator: ", "")
            + " Or run without embedding drift (--no-embeddings)."
        ) from None
    return model.encode


def run_drift(
    store: Store,
    reference: str | None = None,
    current: str | None = None,
    service: str | None = None,
    device: str = "auto",
    embeddings: bool = True,
    embedding_sample: int | None = None,
    embedding_model: str | PathLike[str] | None = None,
    embedder: Embedder | None = None,
    text_fields: Sequence[str] = TEXT_FIELDS,
    permutations: int = DEFAULT_PERMUTATIONS,
    folds: int = DEFAULT_FOLDS,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    exact_rows: int = DEFAULT_EXACT_ROWS,
    write: bool = True,
) -> DriftSummary:
    """Compare ``current`` with ``reference`` (window specs, see ``evaluators.windows``) for one
    service (None: all samples), write the results to drift_results and return them.

    ``embedder`` (texts -> unit vectors) replaces the default all-MiniLM-L6-v2 model, e.g. in tests.
    ``embedding_sample``: texts per window and field (default 500 on CUDA, 200 on the CPU).
    """
    from genobs.evaluators.device import resolve_device

    newest = _newest_timestamp(store, service)
    if newest is None:
        where = f" for service {service!r}" if service else ""
        raise DriftError(f"drift: no samples{where} in {store.path}; ingest some first")
    ref_window, cur_window = resolve_windows(reference, current, newest)
    run_id = uuid.uuid4().hex
    table = f"_genobs_drift_{run_id[:12]}"
    score_features = _score_features_present(store)
    n_ref, n_cur = materialize_features(store, table, ref_window, cur_window, service, score_features)
    if n_ref == 0 or n_cur == 0:
        store.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        empty = [name for name, n in (("reference", n_ref), ("current", n_cur)) if n == 0]
        raise DriftError(
            f"drift: the {' and '.join(empty)} window has no samples"
            f"{f' for service {service!r}' if service else ''} "
            f"(reference {ref_window.describe()}: {n_ref} samples, current {cur_window.describe()}: {n_cur}); "
            "choose other windows with --reference / --current"
        )
    try:
        numerical = [name for name, _ in NUMERICAL_FEATURES] + list(score_features)
        features = columns_drift(store.cursor(), table, numerical, list(CATEGORICAL_FEATURES), exact_rows=exact_rows)
    finally:
        store.cursor().execute(f"DROP TABLE IF EXISTS {table}")

    embedding_rows: list[EmbeddingDrift] = []
    if embeddings:
        torch_device = resolve_device(device)
        limit = embedding_sample or DEFAULT_EMBEDDING_SAMPLE["cuda" if torch_device.type == "cuda" else "cpu"]
        encode = embedder
        for field_name in text_fields:
            if field_name not in TEXT_FIELDS:
                raise DriftError(f"drift: embedding drift is for {', '.join(TEXT_FIELDS)}, not {field_name!r}")
            ref_texts = sample_texts(store, field_name, ref_window, service, limit)
            cur_texts = sample_texts(store, field_name, cur_window, service, limit)
            if encode is None and min(len(ref_texts), len(cur_texts)) > 0:
                encode = _default_embedder(embedding_model, str(torch_device))
            if encode is None:
                ref_emb = cur_emb = np.zeros((0, 1), dtype=np.float32)
            else:
                ref_emb = np.asarray(encode(ref_texts)) if ref_texts else np.zeros((0, 1), dtype=np.float32)
                cur_emb = np.asarray(encode(cur_texts)) if cur_texts else np.zeros((0, 1), dtype=np.float32)
            embedding_rows += embedding_drift(
                f"{field_name}_embedding", ref_emb, cur_emb, torch_device, permutations=permutations, folds=folds,
            )

    tested, drifted, tabular_share, _ = dataset_drift_share(features, drift_share)
    emb_verdicts = [
        v for v in (_embedding_feature_drifted(embedding_rows, f"{t}_embedding") for t in text_fields if embeddings)
        if v is not None
    ]
    all_tested = tested + len(emb_verdicts)
    all_drifted = drifted + sum(emb_verdicts)
    share = all_drifted / all_tested if all_tested else 0.0
    summary = DriftSummary(
        run_id=run_id, computed_at=datetime.now(timezone.utc), service=service,
        reference=ref_window.describe(), current=cur_window.describe(), n_reference=n_ref, n_current=n_cur,
        features=features, embeddings=embedding_rows, drift_share=share, tabular_drift_share=tabular_share,
        dataset_drift=bool(all_tested) and share >= drift_share, drift_share_threshold=drift_share,
    )
    if write:
        write_results(store, summary)
    return summary


def run_drift_all_services(store: Store, **kwargs: Any) -> list[DriftSummary]:
    """One run per service that has samples in both windows (what the scheduler calls)."""
    out = []
    for name in services(store):
        try:
            out.append(run_drift(store, service=name, **kwargs))
        except DriftError:
            continue
    return out


# --------------------------------------------------------------------------- storing


def _json(details: dict[str, Any]) -> str:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, (np.floating, np.integer)):
            return clean(value.item())
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(details), default=str)


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def result_rows(summary: DriftSummary) -> list[tuple[Any, ...]]:
    head = (summary.run_id, summary.computed_at, summary.service, summary.reference, summary.current)
    rows: list[tuple[Any, ...]] = []
    for f in summary.features:
        rows.append((*head, f.feature, f.feature_type, f.method, _num(f.statistic), _num(f.p_value), f.threshold,
                     f.drifted, _num(f.statistic), _json(f.details)))
    for e in summary.embeddings:
        rows.append((*head, e.feature, "embedding", e.method, _num(e.statistic), _num(e.p_value), e.threshold,
                     e.drifted, _num(e.statistic), _json(e.details)))
    tested = [f for f in summary.features if f.tested]
    rows.append((
        *head, DATASET_FEATURE, "dataset", "drift_share", summary.drift_share, None, summary.drift_share_threshold,
        summary.dataset_drift, summary.drift_share,
        _json({
            "drifted_features": summary.drifted_features,
            "tabular_drift_share": summary.tabular_drift_share,
            "tabular_features_tested": len(tested),
            "tabular_features_drifted": sum(1 for f in tested if f.drifted),
            "features_without_data": [f.feature for f in summary.features if not f.tested],
            "n_reference": summary.n_reference, "n_current": summary.n_current,
        }),
    ))
    return rows


def write_results(store: Store, summary: DriftSummary) -> int:
    rows = result_rows(summary)
    with store.transaction() as cur:
        cur.executemany(
            'INSERT INTO drift_results (run_id, computed_at, service, reference, "current", feature, feature_type, '
            "method, statistic, p_value, threshold, drifted, drift_score, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)
