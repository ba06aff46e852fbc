"""What the evaluators add to the platform (genobs.runtime): the `evaluate` and `drift`
periodic tasks, and authenticated routes that run them now with options, so that
`genobs evaluate` and `genobs drift` work while a server holds the database (DESIGN §2).

Nothing here imports torch: the scorers and the drift module are imported on the first run
that has work, so a server with nothing to score never loads them.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genobs.config import GenobsConfig
from genobs.http_app import ApiError, ErrorAnswer
from genobs.runtime import Contribution, RuntimeContext
from genobs.store import Store
from genobs.tasks import PeriodicTask

log = logging.getLogger("genobs.evaluators")

# The first evaluation comes after a short delay: when there is something to score, it
# imports the model libraries and loads the models (seconds under the GIL), which should
# not stall a server that has just started.
EVALUATE_STARTUP_DELAY_S = 30.0


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evaluators: list[str] | None = Field(default=None, description="default: evaluators.enabled, else all")
    since: str | None = Field(default=None, description="genobs time grammar, e.g. 24h or 2026-11-20")
    until: str | None = None
    # bounded: a number past them is a 422 naming the field, not a database overflow (a 500)
    limit: int | None = Field(default=None, ge=1, le=2**53 - 1)
    batch_size: int | None = Field(default=None, ge=1, le=65536)
    retry_errors: bool = False


class DriftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str | None = None
    current: str | None = None
    service: str | None = None
    embeddings: bool = True
    embedding_sample: int | None = Field(default=None, ge=20, le=1_000_000)


def evaluate_tick(config: GenobsConfig) -> Any:
    def run(store: Store) -> Any:
        from genobs.evaluators.runner import scheduled_run

        return scheduled_run(store, config)

    return run


def drift_tick(store: Store) -> list[dict[str, Any]]:
    """Each service's last 24 h against the 7 days before it, into drift_results."""
    from genobs.evaluators.drift import run_drift_all_services

    summaries = run_drift_all_services(store)
    for summary in summaries:
        log.info("scheduled drift run %s: %s", summary.run_id, summary.service)
    return [s.to_dict() for s in summaries]


def evaluator_router(ctx: RuntimeContext, evaluate: PeriodicTask, drift: PeriodicTask) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.require_token)], tags=["evaluators"])
    errors = {400: {"model": ErrorAnswer}, 401: {"model": ErrorAnswer}}

    @router.post("/v1/evaluate", summary="Score samples that have no score yet, now", responses=errors)
    async def evaluate_now(request: EvaluateRequest) -> JSONResponse:
        """What `genobs evaluate` does, on the server's store; waits for any scheduled run
        in progress, then answers with the run's summary."""
        from genobs.evaluators.device import DeviceError
        from genobs.evaluators.reference_models import ReferenceModelError
        from genobs.evaluators.runner import EvaluationError, run_evaluators

        def run(store: Store) -> Any:
            return run_evaluators(store, request.evaluators, device="", batch_size=request.batch_size,
                                  since=request.since, until=request.until, limit=request.limit,
                                  config=ctx.config, retry_errors=request.retry_errors,
                                  skip_unavailable=request.evaluators is None)

        try:
            summary = await anyio.to_thread.run_sync(_locked, evaluate, run, ctx.store)
        except (EvaluationError, DeviceError, ReferenceModelError) as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse(summary.to_dict())

    @router.post("/v1/drift", summary="Compare a current window with a reference window, now", responses=errors)
    async def drift_now(request: DriftRequest) -> JSONResponse:
        """What `genobs drift` does, on the server's store (results go to drift_results)."""
        from genobs.evaluators.drift import DriftError, run_drift, services
        from genobs.evaluators.windows import WindowError

        def run(store: Store) -> list[dict[str, Any]]:
            names = [request.service] if request.service else services(store)
            out = []
            for name in names:
                try:
                    out.append(run_drift(store, reference=request.reference, current=request.current, service=name,
                                         embeddings=request.embeddings,
                                         embedding_sample=request.embedding_sample).to_dict())
                except DriftError as exc:
                    if request.service:
                        raise
                    out.append({"service": name, "skipped": str(exc)})
            return out

        try:
            results = await anyio.to_thread.run_sync(_locked, drift, run, ctx.store)
        except (DriftError, WindowError) as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse(results)

    return router


def _locked(task: PeriodicTask, run: Any, store: Store) -> Any:
    """Run ``run(store)`` under ``task``'s lock, so it never overlaps the scheduled run."""
    return PeriodicTask(task.name, task.interval_s, run, _lock=task._lock).run_now(store)


def contribute(ctx: RuntimeContext) -> Contribution:
    server = ctx.config.server
    evaluate = PeriodicTask("evaluate", server.evaluate_interval_s, evaluate_tick(ctx.config),
                            initial_delay_s=min(server.evaluate_interval_s, EVALUATE_STARTUP_DELAY_S))
    # The first drift run waits one interval: a server that has just started has no new window yet.
    drift = PeriodicTask("drift", server.drift_interval_s, drift_tick)
    return Contribution(routers=[evaluator_router(ctx, evaluate, drift)], tasks=[evaluate, drift])
