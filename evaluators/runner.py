"""The evaluation runner: score the samples that lack a score, batch by batch.

For each evaluator (``clip``, ``hallucination``) the runner selects the eligible samples
that have no row in ``scores`` for that evaluator's primary metric and reference model
(a second run therefore does nothing), sorts them by length/size so batches pad little,
scores them in batches under ``torch.inference_mode()`` (bf16/fp16 autocast on CUDA),
and commits each batch's rows in one transaction, so a killed run resumes where it
stopped. A sample that cannot be scored (unreadable or oversized image, no prompt, empty
response) gets an error row with the reason and the run goes on.

Entry points: ``run_evaluators`` (CLI ``genobs evaluate``, ``genobs demo``) and
``scheduled_run`` (``genobs serve``'s scheduler; never raises, skips runs already going).

Importing this module loads no model library (torch, open_clip, transformers,
sentence-transformers are imported where a model is built): ``genobs serve`` imports it at
start, and its scheduler looks for samples to score (cheap SQL) before it imports or loads
anything, so a server with nothing to evaluate stays small (DESIGN §2).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

from genobs.evaluators.images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, ImageLimits
from genobs.evaluators.reference_models import (
    DEFAULT_CLIP_MODEL,
    ReferenceModelError,
    ReferenceModelSpec,
    check_available,
    precheck_available,
    spec_from_config,
)
from genobs.times import TimeParseError, parse_optional_instant
from genobs.store import Store

if TYPE_CHECKING:  # pragma: no cover - imported where a model is built
    import torch

log = logging.getLogger(__name__)

EVALUATOR_NAMES: tuple[str, ...] = ("clip", "hallucination")
DEFAULT_BATCH_SIZE = {"clip": 64, "hallucination": 64}
HALLUCINATION_METRIC = "hallucination_score"


class EvaluationError(Exception):
    """A run cannot start (bad evaluator name, bad time, device); message is shown as is."""


# --------------------------------------------------------------------------- config access


def _get(section: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a pydantic model, a dict, or None."""
    if section is None:
        return default
    if isinstance(section, dict):
        value = section.get(key, default)
    else:
        value = getattr(section, key, default)
    return default if value is None else value


def evaluators_section(config: Any) -> Any:
    """The ``evaluators`` section of the genobs config (a config object, a dict, or None)."""
    if config is None:
        return None
    section = _get(config, "evaluators")
    return section if section is not None else None


def clip_spec_from_config(config: Any) -> ReferenceModelSpec:
    """The configured CLIP reference model (default open_clip ViT-B-32 / laion2b_s34b_b79k)."""
    return spec_from_config(_get(evaluators_section(config), "clip"), DEFAULT_CLIP_MODEL)


def clip_weights_available(config: Any = None, spec: ReferenceModelSpec | None = None) -> bool:
    """True when the configured CLIP model's weights are on this machine (nothing is loaded)."""
    try:
        check_available(spec or clip_spec_from_config(config))
    except ReferenceModelError:
        return False
    return True


# --------------------------------------------------------------------------- time window


def parse_time(value: str | datetime | None, option: str = "--since") -> datetime | None:
    """A --since/--until value in the one time grammar (genobs.times)."""
    try:
        return parse_optional_instant(value, name=option)
    except TimeParseError as exc:
        raise EvaluationError(str(exc)) from None


# --------------------------------------------------------------------------- summaries


@dataclass
class EvaluatorRun:
    name: str
    reference_model: str | None = None
    candidates: int = 0
    scored: int = 0
    errors: int = 0
    not_scored: int = 0
    seconds: float = 0.0
    skipped: str | None = None  # why the evaluator did not run (e.g. weights missing)

    @property
    def samples_per_s(self) -> float:
        done = self.scored + self.errors + self.not_scored
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "samples_per_s": round(self.samples_per_s, 2)}


@dataclass
class RunSummary:
    device: str
    evaluators: list[EvaluatorRun] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(e.scored for e in self.evaluators)

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.evaluators)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "evaluators": [e.to_dict() for e in self.evaluators]}


# --------------------------------------------------------------------------- jobs


class _Job(Protocol):
    """One evaluator as the runner drives it."""

    name: str
    evaluator: str
    primary_metric: str
    reference_model: str
    device_name: str  # where the scorer runs ("cpu", "cuda:0")
    eligible_sql: str  # condition on samples ``s``
    sort_key_sql: str  # ORDER BY expression on ``s``
    columns: tuple[str, ...]

    def score_chunk(self, rows: list[dict[str, Any]], run: EvaluatorRun) -> Iterator[list[dict[str, Any]]]:
        """Yield score rows (store.write_scores dicts) per batch; counts go into ``run``."""
        ...


class _ClipJob:
    name = "clip"
    primary_metric = "clip_score"
    eligible_sql = "(s.modality = 'image' OR coalesce(s.image, '') <> '') AND s.status = 'ok'"
    sort_key_sql = "length(coalesce(s.prompt, ''))"
    columns = ("request_id", "prompt", "image")

    def __init__(self, spec: ReferenceModelSpec, device: str | torch.device, batch_size: int,
                 num_workers: int | None, image_root: Path, limits: ImageLimits) -> None:
        from genobs.evaluators.clip import EVALUATOR, ClipScorer

        self.evaluator = EVALUATOR
        self.scorer = ClipScorer(spec, device=device, batch_size=batch_size, num_workers=num_workers,
                                 image_root=image_root, limits=limits)
        self.reference_model = self.scorer.reference_model
        self.device_name = str(self.scorer.device)

    def score_chunk(self, rows: list[dict[str, Any]], run: EvaluatorRun) -> Iterator[list[dict[str, Any]]]:
        from genobs.evaluators.clip import CLIP_COSINE, CLIP_SCORE, ClipItem

        items = [ClipItem(r["request_id"], r["prompt"], r["image"]) for r in rows]
        for batch in self.scorer.score_batches(items):
            out: list[dict[str, Any]] = []
            for result in batch:
                common = {"request_id": result.request_id, "evaluator": self.evaluator,
                          "reference_model": self.reference_model}
                if result.error is not None:
                    run.errors += 1
                    out += [{**common, "metric": m, "value": None, "details": None, "error": result.error}
                            for m in (CLIP_SCORE, CLIP_COSINE)]
                else:
                    run.scored += 1
                    out.append({**common, "metric": CLIP_SCORE, "value": result.clip_score, "details": result.details})
                    out.append({**common, "metric": CLIP_COSINE, "value": result.clip_cosine, "details": None})
            yield out


@dataclass
class _GroundedItem:
    """What the hallucination scorer reads from a sample."""

    request_id: str
    response: str
    context: list[str]
    reference: str | None
    prompt: str | None


class _HallucinationJob:
    name = "hallucination"
    evaluator = "hallucination"
    primary_metric = HALLUCINATION_METRIC
    eligible_sql = (
        "coalesce(s.modality, 'text') = 'text' AND s.status = 'ok' "
        "AND (len(coalesce(s.context, []::VARCHAR[])) > 0 OR coalesce(s.reference, '') <> '')"
    )
    sort_key_sql = "length(coalesce(s.response, '')) + coalesce(length(array_to_string(s.context, ' ')), 0)"
    columns = ("request_id", "prompt", "response", "context", "reference")

    def __init__(self, section: Any, device: str | torch.device, batch_size: int) -> None:
        from genobs.evaluators import hallucination

        self._module = hallucination
        kwargs: dict[str, Any] = {"device": str(device), "batch_size": batch_size}
        accepted = inspect.signature(hallucination.HallucinationScorer).parameters
        for key in ("embedding_model", "use_embeddings", "threshold"):
            value = _get(section, key)
            if value is not None:
                kwargs[key] = value
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        self.scorer = hallucination.HallucinationScorer(**kwargs)
        self.reference_model = str(self.scorer.reference_model)
        self.device_name = str(getattr(self.scorer, "device", device))
        # torch only where a model runs: lexical-only scoring needs none
        self._uses_model = self.reference_model != getattr(hallucination, "LEXICAL_ONLY_MODEL", None)
        self.batch_size = batch_size
        self._item_class = getattr(hallucination, "HallucinationItem", None)

    def _item(self, row: dict[str, Any]) -> Any:
        values = {"request_id": row["request_id"], "response": row["response"] or "",
                  "context": list(row["context"] or []), "reference": row["reference"], "prompt": row["prompt"]}
        if self._item_class is not None:
            accepted = inspect.signature(self._item_class).parameters
            return self._item_class(**{k: v for k, v in values.items() if k in accepted})
        return _GroundedItem(**values)

    def score_chunk(self, rows: list[dict[str, Any]], run: EvaluatorRun) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            common = {"evaluator": self.evaluator, "reference_model": self.reference_model,
                      "metric": self.primary_metric}
            out: list[dict[str, Any]] = []
            scorable: list[dict[str, Any]] = []
            for row in batch:
                if not (row["response"] or "").strip():
                    run.errors += 1
                    out.append({**common, "request_id": row["request_id"], "value": None, "details": None,
                                "error": "empty response: nothing to check against the context"})
                else:
                    scorable.append(row)
            if scorable:
                with _inference_mode(self._uses_model):
                    results = self.scorer.score([self._item(r) for r in scorable])
                for row, result in zip(scorable, results, strict=True):
                    error = getattr(result, "error", None)
                    if error:
                        run.errors += 1
                        out.append({**common, "request_id": row["request_id"], "value": None,
                                    "details": getattr(result, "details", None), "error": str(error)})
                    elif result.score is None:
                        run.not_scored += 1
                    else:
                        run.scored += 1
                        out.append({**common, "request_id": row["request_id"], "value": float(result.score),
                                    "label": result.label, "details": result.details})
            yield out


def _inference_mode(enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.inference_mode()


# --------------------------------------------------------------------------- selection


def select_candidates(store: Store, job: _Job, since: datetime | None, until: datetime | None,
                      limit: int | None, retry_errors: bool = False) -> list[str]:
    """request_ids of eligible samples lacking a score for the job's metric and model, in sort order."""
    done = "c.error IS NULL" if retry_errors else "TRUE"
    sql = (
        f"SELECT s.request_id FROM samples s WHERE {job.eligible_sql} "
        "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR s.timestamp >= CAST(? AS TIMESTAMPTZ)) "
        "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR s.timestamp < CAST(? AS TIMESTAMPTZ)) "
        "AND NOT EXISTS (SELECT 1 FROM scores c WHERE c.request_id = s.request_id "
        f"AND c.metric = ? AND c.reference_model = ? AND {done}) "
        f"ORDER BY {job.sort_key_sql}, s.request_id"
    )
    params: list[Any] = [since, since, until, until, job.primary_metric, job.reference_model]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [row[0] for row in store.fetchall(sql, params)]


def _fetch_rows(store: Store, job: _Job, request_ids: Sequence[str]) -> list[dict[str, Any]]:
    columns = ", ".join(f's."{c}"' for c in job.columns)
    found = store.fetchall(
        f"SELECT {columns} FROM samples s WHERE s.request_id IN (SELECT unnest(CAST(? AS VARCHAR[])))",
        [list(request_ids)],
    )
    by_id = {row[0]: dict(zip(job.columns, row)) for row in found}
    return [by_id[i] for i in request_ids if i in by_id]


# --------------------------------------------------------------------------- running


def _progress_bar(total: int, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"evaluate {name}", unit="sample", disable=not enabled, dynamic_ncols=True,
                leave=True)


def _run_job(store: Store, job: _Job, run: EvaluatorRun, since: datetime | None, until: datetime | None,
             limit: int | None, batch_size: int, retry_errors: bool, progress: bool) -> None:
    started = time.perf_counter()
    candidates = select_candidates(store, job, since, until, limit, retry_errors)
    run.candidates = len(candidates)
    chunk_size = max(batch_size * 16, 1024)
    with _progress_bar(len(candidates), job.name, progress) as bar:
        for start in range(0, len(candidates), chunk_size):
            rows = _fetch_rows(store, job, candidates[start : start + chunk_size])
            for score_rows in job.score_chunk(rows, run):
                store.write_scores(score_rows)  # one transaction per batch
                bar.update(run.scored + run.errors + run.not_scored - bar.n)
    run.seconds = time.perf_counter() - started


def _clip_settings(config: Any, store: Store, image_root: str | Path | None) -> tuple[Path, ImageLimits]:
    """Image root and limits: the argument, then genobs.yaml ``images``, then the defaults.

    The default root is the folder that holds the database file.
    """
    images = _get(config, "images")
    root = image_root or _get(images, "root")
    if root is None:
        root = store.path.parent if str(store.path) != ":memory:" else Path.cwd()
    limits = ImageLimits(
        max_bytes=int(_get(images, "max_bytes", DEFAULT_MAX_IMAGE_BYTES)),
        max_pixels=int(_get(images, "max_pixels", DEFAULT_MAX_IMAGE_PIXELS)),
    )
    return Path(root).expanduser(), limits


def run_evaluators(
    store: Store,
    names: Sequence[str] | None = None,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int | None = None,
    config: Any = None,
    clip_spec: ReferenceModelSpec | None = None,
    image_root: str | Path | None = None,
    num_workers: int | None = None,
    retry_errors: bool = False,
    skip_unavailable: bool = False,
    progress: bool = False,
    lazy: bool = False,
    jobs: dict[tuple[Any, ...], Any] | None = None,
) -> RunSummary:
    """Score every eligible sample lacking a score, evaluator by evaluator.

    ``names``: evaluators to run (default: ``evaluators.enabled`` from config, else all).
    ``skip_unavailable``: when a reference model's weights are missing, record why in the
    summary and go on (the demo, the scheduler) instead of raising ReferenceModelMissing.
    ``retry_errors``: also re-score samples whose previous attempt left an error row.
    ``lazy`` (the scheduler): look for samples to score first, and only when there are
    some check the weights, pick the device and build the scorer (which imports torch and
    the model libraries); ``summary.device`` is the requested device until one is built.
    Otherwise (``genobs evaluate``) the device and the weights are checked up front.
    ``jobs``: a cache of built scorers, kept by the caller between runs (the scheduler).
    """
    section = evaluators_section(config)
    chosen = list(names or _get(section, "enabled", EVALUATOR_NAMES))
    unknown = [n for n in chosen if n not in EVALUATOR_NAMES]
    if unknown:
        raise EvaluationError(
            f"unknown evaluator(s) {', '.join(unknown)}: choose from {', '.join(EVALUATOR_NAMES)}"
        )
    requested = device or _get(section, "device", "auto")
    job_device: Any = requested
    if not lazy:
        from genobs.evaluators.device import resolve_device

        job_device = resolve_device(requested)
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until")
    summary = RunSummary(device=str(job_device))
    for name in dict.fromkeys(chosen):
        sub = _get(section, name)
        size = int(batch_size or _get(sub, "batch_size") or _get(section, "batch_size") or DEFAULT_BATCH_SIZE[name])
        run = EvaluatorRun(name=name)
        summary.evaluators.append(run)
        spec = root = limits = workers = None
        if name == "clip":
            spec = clip_spec or clip_spec_from_config(config)
            run.reference_model = spec.identifier
            root, limits = _clip_settings(config, store, image_root)
            workers = num_workers if num_workers is not None else _get(section, "num_workers")
            key: tuple[Any, ...] = (name, str(job_device), size, spec, workers, root, limits)
        else:
            key = (name, str(job_device), size,
                   *(repr(_get(sub, k)) for k in ("embedding_model", "use_embeddings", "threshold")))
        job: _Job | None = jobs.get(key) if jobs is not None else None
        if job is None and lazy:
            # Nothing imported or loaded yet: is there anything to score? (cheap SQL)
            expected = _expected_reference_model(name, spec, sub)
            if expected is not None and not _has_candidates(store, name, expected, since_at, until_at,
                                                            retry_errors):
                run.reference_model = expected
                continue
        elif job is not None and not _has_candidates(store, name, job.reference_model, since_at, until_at,
                                                      retry_errors):
            run.reference_model = job.reference_model
            continue
        if job is None:
            try:
                if name == "clip":
                    assert spec is not None and root is not None and limits is not None
                    if lazy:
                        precheck_available(spec)    # missing weights: no import of open_clip/torch
                    check_available(spec)
                    job = _ClipJob(spec, job_device, size, workers, root, limits)
                else:
                    job = _HallucinationJob(sub, job_device, size)
            except (ReferenceModelError, ImportError, FileNotFoundError) as exc:
                # FileNotFoundError: the hallucination embedder's EmbeddingModelNotFoundError.
                if not skip_unavailable:
                    raise
                run.skipped = str(exc)
                continue
            if jobs is not None:
                jobs[key] = job
        if lazy:
            summary.device = job.device_name
        run.reference_model = job.reference_model
        _run_job(store, job, run, since_at, until_at, limit, size, retry_errors, progress)
    return summary


def _expected_reference_model(name: str, spec: ReferenceModelSpec | None, section: Any) -> str | None:
    """The reference_model the evaluator's scorer will write, known without building it
    (None: cannot tell; the scorer is built to find out)."""
    if name == "clip":
        return spec.identifier if spec is not None else None   # the runner scores at full precision
    if _get(section, "use_embeddings", True) is False:
        from genobs.evaluators.hallucination import LEXICAL_ONLY_MODEL

        return LEXICAL_ONLY_MODEL
    from genobs.evaluators.embedding_model import default_model_path, model_name_for

    configured = _get(section, "embedding_model")
    path = Path(configured) if configured is not None else default_model_path()
    if path is None or not path.is_dir():
        return None
    return model_name_for(path)


def _has_candidates(store: Store, name: str, reference_model: str, since: datetime | None,
                    until: datetime | None, retry_errors: bool) -> bool:
    probe = _ClipJob if name == "clip" else _HallucinationJob
    return bool(select_candidates(store, _Probe(probe.eligible_sql, probe.sort_key_sql, probe.primary_metric,
                                                reference_model), since, until, 1, retry_errors))


@dataclass(frozen=True)
class _Probe:
    """What select_candidates reads of a job, before any scorer exists."""

    eligible_sql: str
    sort_key_sql: str
    primary_metric: str
    reference_model: str


_reported_skips: set[str] = set()
# Built scorers per database, reused by the following ticks (models load once per process).
_scheduled_jobs: dict[str, dict[tuple[Any, ...], Any]] = {}


def scheduled_run(store: Store, config: Any = None) -> RunSummary:
    """One tick of the `evaluate` periodic task (``genobs serve``): score new samples and log
    the outcome. A failure propagates to the scheduler, which logs and counts it.

    It first looks for samples to score (SQL); only when there are some does it import the
    model libraries and build the scorers, which later ticks reuse. A tick with nothing to
    do costs a few milliseconds and no memory.
    """
    # Decode images on this thread unless workers are configured: forking DataLoader
    # workers out of the multi-threaded server process is avoided by default.
    workers = _get(evaluators_section(config), "num_workers", 0)
    jobs = _scheduled_jobs.setdefault(str(store.path), {})
    summary = run_evaluators(store, config=config, skip_unavailable=True, progress=False, num_workers=workers,
                             lazy=True, jobs=jobs)
    for run in summary.evaluators:
        if run.skipped:
            if run.skipped not in _reported_skips:  # say it once, not every tick
                _reported_skips.add(run.skipped)
                log.warning("scheduled evaluation: %s skipped: %s", run.name, run.skipped)
        elif run.candidates:
            log.info("evaluate %s: %s", run.name, run.to_dict())
    return summary
