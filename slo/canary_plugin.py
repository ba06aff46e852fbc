"""The canary judge's part of the runtime: its HTTP routes and the periodic task that
advances continuous analyses. The shell's wiring calls ``contribute(ctx)``."""

from __future__ import annotations

from typing import Any

from genobs.slo.canary_api import build_router
from genobs.slo.canary_config import CanarySpec, load_spec
from genobs.slo.canary_run import advance_analyses

ANALYSIS_TASK = "canary-analyses"


def spec_provider(config: Any) -> "Any":
    """canary.yaml named by genobs.yaml's canary.file, else ./canary.yaml, else the defaults;
    read on each request so an edited file takes effect without a restart."""
    path = getattr(getattr(config, "canary", None), "file", None)

    def get() -> CanarySpec:
        return load_spec(path)

    return get


def contribute(ctx: Any) -> Any:
    from fastapi import Depends

    from genobs.runtime import Contribution  # type: ignore[import-not-found]
    from genobs.tasks import PeriodicTask  # type: ignore[import-not-found]

    router = build_router(lambda: ctx.store, spec_provider(ctx.config), [Depends(ctx.require_token)])
    interval = float(getattr(ctx.config.canary, "analysis_poll_s", 30.0))
    task = PeriodicTask(ANALYSIS_TASK, interval, advance_analyses)
    return Contribution(routers=[router], tasks=[task])
