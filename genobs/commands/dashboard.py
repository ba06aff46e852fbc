"""`genobs dashboard`: the Streamlit dashboards alone, read-only, on a file no server holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from genobs.config import ConfigError, load_config
from genobs.store import DatabaseLockedError, Store, StoreError, resolve_db_path, server_info_path

console = Console()
err_console = Console(stderr=True)


def recorded_ui_url(db_path: Path) -> str | None:
    """The UI URL a running `genobs serve` recorded next to the database ("ui_url"), if any."""
    try:
        data = json.loads(server_info_path(db_path).read_text())
    except (OSError, ValueError):
        return None
    url = data.get("ui_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def dashboard(
    db: Optional[str] = typer.Option(None, "--db", help="DuckDB file (default: $GENOBS_DB, then ./genobs.duckdb).",
                                     show_default=False),
    ui_host: Optional[str] = typer.Option(None, "--ui-host", help="Address to listen on (default: ui.host, "
                                          "127.0.0.1). Without a UI token or OIDC only an explicit --ui-host "
                                          "leaves loopback.", show_default=False),
    ui_port: Optional[int] = typer.Option(None, "--ui-port", help="Port (default: ui.port, 8501).",
                                          show_default=False),
    config: Optional[str] = typer.Option(None, "--config", help="genobs.yaml (default: $GENOBS_CONFIG, then "
                                         "./genobs.yaml).", show_default=False),
) -> None:
    """Serve the dashboards (Overview, On-call, Quality, Drift, GPUs, SLOs, Canary, Samples) on a
    database file, read-only. When a `genobs serve` holds the file, its UI already shows it:
    this command says where and exits.

    Access: set GENOBS_UI_TOKEN (or the variable named by ui.token_env) to require a token, or
    configure OIDC in .streamlit/secrets.toml ([auth], Streamlit's st.login).

    Example: `genobs dashboard --db genobs-demo.duckdb --ui-port 8501`
    """
    import os

    from genobs.dashboards import auth
    from genobs.dashboards.launch import choose_ui_host, run_ui

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    db_path = resolve_db_path(db)
    try:
        Store.open(db_path, read_only=True)   # kept open: the pages reuse this instance
    except DatabaseLockedError as exc:
        ui = recorded_ui_url(db_path)
        if ui:
            console.print(f"A genobs server holds {db_path}; its dashboards are at [bold]{ui}[/]", highlight=False)
        elif exc.server_url:
            console.print(f"A genobs server at {exc.server_url} holds {db_path} but recorded no UI address "
                          "(its UI may be off: ui.enabled). Open its UI, or stop it and run this again.",
                          highlight=False)
        else:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        raise typer.Exit(0)
    except StoreError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if config:
        os.environ["GENOBS_CONFIG"] = str(Path(config).resolve())   # the pages read the same config
    token = os.environ.get(cfg.ui.token_env) or None
    choice = choose_ui_host(cfg.ui.host, ui_host, token_set=token is not None, oidc=auth.oidc_configured())
    port = ui_port or cfg.ui.port
    console.print(f"genobs dashboards on [bold]http://{choice.host}:{port}[/] (read-only: {db_path}); "
                  f"{choice.note}. Ctrl-C stops.", highlight=False)
    run_ui(db_path, choice.host, port, read_only=True, token=token)
