"""The canary judge's part of the runtime: its HTTP routes (/v1/canary/*) and the periodic
task that advances continuous analyses. genobs/wiring.py adds ``contribute``."""

from __future__ import annotations

from typing import Callable

from fastapi import Depends

from genobs.config import GenobsConfig
from genobs.runtime import Contribution, RuntimeContext
from genobs.slo.canary_api import build_router
from genobs.slo.canary_config import CanarySpec, load_spec
from genobs.slo.canary_run import advance_analyses
from genobs.tasks import PeriodicTask

ANALYSIS_TASK = "canary-analyses"


def spec_provider(config: GenobsConfig) -> Callable[[], CanarySpec]:
    """canary.yaml named by genobs.yaml's canary.file, else ./canary.yaml, else the defaults;
    read on each request so that an edited file takes effect without a restart."""
    path = config.canary.file

    def get() -> CanarySpec:
        return load_spec(path)

    return get


def contribute(ctx: RuntimeContext) -> Contribution:
    router = build_router(lambda: ctx.store, spec_provider(ctx.config), [Depends(ctx.require_token)])
    task = PeriodicTask(ANALYSIS_TASK, ctx.config.canary.analysis_poll_s, advance_analyses)
    return Contribution(routers=[router], tasks=[task])
