"""Which domain packages make up the platform (DESIGN §1): the one module of the runtime
that imports them. Each contributes routers, periodic tasks and metric collectors through
its ``plugin.contribute``."""

from __future__ import annotations

from genobs.runtime import Plugin


def default_plugins() -> list[Plugin]:
    from genobs.collectors import plugin as collectors_plugin
    from genobs.evaluators import plugin as evaluators_plugin
    from genobs.slo import canary_plugin

    return [collectors_plugin.contribute, evaluators_plugin.contribute, canary_plugin.contribute]
