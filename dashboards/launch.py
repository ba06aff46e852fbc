"""Serve the dashboards: Streamlit on the calling (main) thread.

``run_ui`` is the runtime's UI slot (`genobs serve`, in-process with the API and the
scheduler, one shared DuckDB instance) and what `genobs dashboard` calls alone (read-only).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from genobs.dashboards import auth
READ_ONLY_ENV = "GENOBS_UI_READ_ONLY"   # read by dashboards.queries (not imported here: its caches need the runtime)

APP_PATH = Path(__file__).resolve().parent / "app.py"
LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostChoice:
    host: str
    note: str   # what to tell the user about who can reach the UI


def choose_ui_host(configured: str, explicit: str | None, *, token_set: bool, oidc: bool) -> HostChoice:
    """Where the UI listens. With neither a token nor OIDC it stays on loopback unless the
    user asked for another address on the command line (--ui-host), and says so."""
    if token_set or oidc:
        how = "an access token" if token_set else "OIDC login"
        return HostChoice(explicit or configured, f"the UI asks for {how} before showing any page")
    if explicit and not is_loopback(explicit):
        return HostChoice(explicit, f"WARNING: no UI token or OIDC configured and --ui-host {explicit} given: "
                                    "anyone who can reach this address sees prompts and responses. "
                                    "Set GENOBS_UI_TOKEN to require a token.")
    if not is_loopback(configured) and not explicit:
        return HostChoice(LOOPBACK, f"listening on loopback only: no UI token or OIDC configured, so ui.host "
                                    f"{configured!r} is ignored. Set GENOBS_UI_TOKEN, or pass --ui-host "
                                    f"{configured} to expose it anyway.")
    return HostChoice(explicit or configured, "loopback only (no UI token or OIDC configured; set GENOBS_UI_TOKEN "
                                              "and pass --ui-host to serve other machines)")


def streamlit_flags(host: str, port: int) -> dict[str, object]:
    return {
        "server.address": host,
        "server.port": port,
        "server.headless": True,
        "server.fileWatcherType": "none",     # an installed app: no reloads on file changes
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,    # nothing leaves the machine
        "client.toolbarMode": "minimal",
        "client.showErrorDetails": "none",    # no tracebacks (and no data in them) in the browser
        "global.developmentMode": False,
        "theme.base": "light",
    }


def warm_up(db: str | None = None) -> None:
    """Import what every page needs (pandas, Altair and its schema validator, pyarrow, DuckDB
    through the queries module) before the UI listens, so the first visitor's page does not
    wait seconds for imports: on the 2-core bench machine they took 2-3 s of the first render.
    With ``db``: also read the data of Overview's and On-call's default view once
    (queries.prime), then empty the query cache, so the first visitor finds the data in
    memory but still has their page's figures computed fresh."""
    import logging
    import time

    import altair as alt
    import pandas as pd
    import pyarrow  # noqa: F401  (Streamlit serializes every chart's and table's data as Arrow)

    # Decorating the queries' st.cache_data functions before Streamlit's runtime exists logs
    # "No runtime found": harmless, the cache storage is chosen at the first call, inside the
    # runtime (Streamlit's server-asgi notes), so the warning is held back here.
    cache_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = cache_log.level
    cache_log.setLevel(logging.ERROR)
    try:
        from genobs.dashboards import widgets  # noqa: F401  (queries, store, duckdb, timewindow)

        # Altair loads and compiles its Vega-Lite JSON schema on the first validation.
        alt.Chart(pd.DataFrame({"t": [0]})).mark_line().encode(x="t:Q").to_dict()
        if db is not None:
            t0 = time.perf_counter()
            _prime(db)
            logging.getLogger(__name__).info("read the default views' data in %.1f s", time.perf_counter() - t0)
    finally:
        cache_log.setLevel(level)


def _prime(db: str) -> None:
    import logging

    import duckdb
    import streamlit as st

    from genobs.dashboards import queries
    from genobs.dashboards.timewindow import DEFAULT_RANGE, anchor, bucket_seconds, parse_window
    from genobs.store import StoreError

    try:
        if queries.open_problem(db) is None and queries.table_counts(db).get("samples", 0):
            window = parse_window(DEFAULT_RANGE, now=anchor(queries.newest_data(db)))
            queries.prime(db, queries.Scope(window.start, window.end), bucket_seconds(window))
    except (StoreError, duckdb.Error, OSError) as exc:
        # A speed-up only: the pages report a database they cannot read themselves.
        logging.getLogger(__name__).warning("could not read the default views ahead: %s", exc)
    finally:
        # "Cold cache" stays cold: the first visitor's figures are computed, not replayed.
        st.cache_data.clear()


def run_ui(db_path: str | os.PathLike[str], host: str, port: int, *, read_only: bool, token: str | None) -> None:
    """Serve the dashboards on host:port until the process is stopped (blocks; main thread).

    ``read_only``: the pages open the database read-only (no server holds it). In
    `genobs serve` the pages get the process's shared store instead (Store.open returns it).
    ``token``: when set, the UI asks for it before showing any page.
    """
    from streamlit.web import bootstrap

    os.environ["GENOBS_DB"] = str(Path(db_path).expanduser().resolve())
    if read_only:
        os.environ[READ_ONLY_ENV] = "1"
    else:
        os.environ.pop(READ_ONLY_ENV, None)
    auth.set_token(token)
    warm_up(os.environ["GENOBS_DB"])
    flags = streamlit_flags(host, port)
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(APP_PATH), False, [], flags)
