"""Which domain packages make up the platform (DESIGN §1): the one module of the runtime
that imports them. Each contributes routers, periodic tasks and metric collectors through
its ``plugin.contribute``; the dashboards fill the UI slot."""

from __future__ import annotations

import os
from dataclasses import dataclass

from genobs.config import GenobsConfig
from genobs.runtime import Plugin, RuntimeContext, UiRunner


def default_plugins() -> list[Plugin]:
    from genobs.collectors import plugin as collectors_plugin
    from genobs.evaluators import plugin as evaluators_plugin
    from genobs.slo import canary_plugin
    from genobs.slo import plugin as slo_plugin

    return [collectors_plugin.contribute, evaluators_plugin.contribute, slo_plugin.contribute,
            canary_plugin.contribute]


@dataclass
class UiSlot:
    """The Streamlit UI for the runtime's UI slot: what runs on the main thread, where, and
    what to tell the user about who can reach it."""

    runner: UiRunner
    url: str
    note: str


def ui_slot(config: GenobsConfig, *, ui_host: str | None = None, ui_port: int | None = None) -> UiSlot | None:
    """The dashboards, unless ``ui.enabled`` is off. Without a UI token or OIDC they stay on
    loopback unless ``ui_host`` (the command line's --ui-host) says otherwise."""
    if not config.ui.enabled:
        return None
    from genobs.dashboards import auth
    from genobs.dashboards.launch import choose_ui_host, run_ui

    token = os.environ.get(config.ui.token_env) or None
    choice = choose_ui_host(config.ui.host, ui_host, token_set=token is not None, oidc=auth.oidc_configured())
    port = ui_port if ui_port is not None else config.ui.port

    def run(ctx: RuntimeContext) -> None:
        run_ui(ctx.store.path, choice.host, port, read_only=False, token=token)

    shown = "127.0.0.1" if choice.host in ("0.0.0.0", "") else choice.host
    return UiSlot(run, f"http://{shown}:{port}", choice.note)
