"""How the SLO engine plugs into the runtime (DESIGN §2): its routes, its periodic tasks
(SLO evaluation every ``slo.evaluate_interval_s``, outbox draining every
``notifiers.drain_interval_s``) and its Prometheus collector."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from genobs.config import GenobsConfig
from genobs.slo.api import build_router
from genobs.slo.engine import check
from genobs.slo.metrics import SloCollector
from genobs.slo.notifiers import NotifierError, check_receiver
from genobs.slo.outbox import drain
from genobs.slo.spec import Spec, default_spec_path, load_spec
from genobs.store import Store

log = logging.getLogger("genobs.slo")


class SpecSource:
    """The SLO spec file, re-read when it changes (edits apply without a restart)."""

    def __init__(self, config: GenobsConfig) -> None:
        self._configured = config.slo.file
        self._cached: tuple[Path, float, Spec] | None = None

    def __call__(self) -> Spec | None:
        path = default_spec_path(self._configured)
        if path is None:
            return None
        mtime = path.stat().st_mtime if path.exists() else -1.0
        if self._cached and self._cached[0] == path and self._cached[1] == mtime:
            return self._cached[2]
        spec = load_spec(path)  # a SpecError reaches the task runner, which logs and counts it
        self._cached = (path, mtime, spec)
        return spec


def external_url(config: GenobsConfig, ui_url: str | None) -> str | None:
    return config.slo.external_url or ui_url


def evaluate_task_run(config: GenobsConfig, spec_source: SpecSource, ui_url: str | None = None):
    def run(store: Store) -> Any:
        spec = spec_source()
        if spec is None:
            return None
        return check(store, spec, notifiers=config.notifiers, external_url=external_url(config, ui_url)).as_dict()
    return run


def drain_task_run(config: GenobsConfig):
    def run(store: Store) -> Any:
        return drain(store, config.notifiers).as_dict()
    return run


def contribute(ctx: Any) -> Any:
    """Routes, tasks and collectors of the SLO engine (``genobs.runtime.Contribution``)."""
    from genobs.runtime import Contribution  # the shell's runtime contract
    from genobs.tasks import PeriodicTask

    config: GenobsConfig = ctx.config
    for receiver in config.notifiers.receivers:
        try:
            check_receiver(receiver)
        except NotifierError as exc:  # a bad receiver must not stop the server: say so, keep going
            log.error("%s (its notifications will fail until this is fixed)", exc)
    spec_source = SpecSource(config)
    get_store = lambda: ctx.store  # noqa: E731
    return Contribution(
        routers=[build_router(get_store, spec_source, dependencies=[_depends(ctx.require_token)])],
        tasks=[
            PeriodicTask("slo-evaluate", config.slo.evaluate_interval_s,
                         evaluate_task_run(config, spec_source, getattr(ctx, "ui_url", None))),
            PeriodicTask("notification-outbox", config.notifiers.drain_interval_s, drain_task_run(config)),
        ],
        collectors=[SloCollector(get_store)],
    )


def _depends(dependency: Any) -> Any:
    from fastapi import Depends
    return Depends(dependency)
