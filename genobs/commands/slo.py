"""`genobs slo check|status|validate|rules`, `genobs alerts`, `genobs silence add|list|expire`.

Argument parsing and output only; the work is in genobs.slo. When a `genobs serve` holds
the database (or --server is given), status, alerts and silences go through its HTTP API.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import httpx
import typer
from rich.console import Console
from rich.table import Table

from genobs.config import ConfigError, GenobsConfig, load_config
from genobs.store import DatabaseLockedError, Store, StoreError

EXIT_OK, EXIT_GATE_FAILED, EXIT_INPUT_ERROR = 0, 1, 2

console = Console(stderr=False, width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

slo_app = typer.Typer(help="SLOs: error budgets and burn-rate alerts (DESIGN §6).", no_args_is_help=True,
                      rich_markup_mode="markdown")
silence_app = typer.Typer(help="Silences: mute matching alerts for a while (maintenance windows).",
                          no_args_is_help=True, rich_markup_mode="markdown")

DbOption = typer.Option(None, "--db", help="DuckDB file (default: $GENOBS_DB, then ./genobs.duckdb).", show_default=False)
ServerOption = typer.Option(None, "--server", help="URL of a running `genobs serve` (default: the one holding --db).",
                            show_default=False)
ConfigOption = typer.Option(None, "--config", help="genobs.yaml (default: $GENOBS_CONFIG, then ./genobs.yaml).",
                            show_default=False)
SpecOption = typer.Option(None, "--spec", help="SLO spec YAML (default: slo.file in genobs.yaml, then ./slo.yaml).",
                          show_default=False)
FormatOption = typer.Option("text", "--format", help="text or json.")


def _fail(message: str, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _config(path: Optional[str]) -> GenobsConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _format(value: str) -> str:
    if value not in ("text", "json"):
        raise _fail(f"--format: expected text or json, got {value!r}")
    return value


def _spec(path: Optional[str], cfg: GenobsConfig):
    from genobs.slo.spec import SpecError, default_spec_path, load_spec

    chosen = Path(path) if path else default_spec_path(cfg.slo.file)
    if chosen is None:
        raise _fail("no SLO spec: pass --spec FILE, set slo.file in genobs.yaml, or create ./slo.yaml")
    try:
        return load_spec(chosen)
    except SpecError as exc:
        raise _fail(str(exc)) from None


def _instant(text: Optional[str], option: str) -> Optional[datetime]:
    from genobs.slo.timeutil import TimeParseError, parse_instant

    if text is None:
        return None
    try:
        return parse_instant(text)
    except (TimeParseError, ValueError) as exc:
        raise _fail(f"{option}: {exc}") from None


def _store_or_server(db: Optional[str], server: Optional[str]) -> tuple[Optional[Store], Optional[str]]:
    """(store, None) to work on the file, or (None, url) when a server holds it."""
    if server:
        return None, server.rstrip("/")
    try:
        return Store.open(db), None
    except DatabaseLockedError as exc:
        if exc.server_url:
            return None, exc.server_url.rstrip("/")
        raise _fail(str(exc)) from None
    except StoreError as exc:
        raise _fail(str(exc)) from None


def _http(method: str, url: str, **kwargs: Any) -> Any:
    import os

    headers = {"User-Agent": "genobs-cli/1"}
    token = os.environ.get("GENOBS_INGEST_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the server at {url}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:300]
        raise _fail(f"server answered HTTP {response.status_code}: {detail}")
    return response.json()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


def _slo_table(report: dict[str, Any]) -> None:
    table = Table(title=f"SLOs at {report['at']}")
    for column in ("slo", "service", "sli", "objective", "window", "events", "error ratio", "budget left",
                   "burn 5m", "burn 1h", "burn 6h", "burn 3d", "alerting"):
        table.add_column(column, justify="right" if column.startswith(("burn", "events", "error", "budget", "obj")) else "left")
    for item in report["slos"]:
        burns = item["burn_rates"]
        alerting = ", ".join(item.get("alerting") or []) or "-"
        table.add_row(item["slo"], item["service"], item["sli"], f"{item['objective']:g}%", item["window"],
                      f"{item['total']:,}", _pct(item["error_ratio"]), _pct(item["budget_remaining"]),
                      f"{burns['5m']:.2f}", f"{burns['1h']:.2f}", f"{burns['6h']:.2f}", f"{burns['3d']:.2f}",
                      alerting)
    console.print(table)
    for item in report.get("spend", []):
        console.print(f"spend {item['name']}: today ${item['today_usd']:,.2f}, last 24h ${item['last_24h_usd']:,.2f}, "
                      f"24h before ${item['previous_24h_usd']:,.2f}", highlight=False)


# ----------------------------------------------------------------------------- slo


@slo_app.command("validate")
def validate(spec_file: Path = typer.Argument(..., help="SLO spec YAML to check."),
             output: str = FormatOption) -> None:
    """Check an SLO spec: keys, SLI kinds, windows, alert window catalogs, ratio SQL.

    Errors name the file, line, SLO and key. Prints each SLO's burn-rate alert conditions.

    Example: `genobs slo validate slo.yaml`
    """
    from genobs.slo.rules import check_ratio_sql
    from genobs.slo.spec import SpecError, load_spec
    from genobs.slo.timeutil import format_duration

    output = _format(output)
    try:
        spec = load_spec(spec_file)
        check_ratio_sql(spec)
    except SpecError as exc:
        raise _fail(str(exc)) from None
    summary = [{
        "slo": slo.name, "service": slo.spec.service, "sli": slo.spec.sli.kind, "objective": slo.spec.objective,
        "window": slo.spec.window, "catalog": slo.catalog.source,
        "alerts": [{"severity": w.severity, "speed": w.speed, "long": format_duration(w.long),
                    "short": format_duration(w.short), "factor": round(w.factor, 4)} for w in slo.catalog.windows],
    } for slo in spec.slos]
    if output == "json":
        _print_json({"file": str(spec_file), "valid": True, "slos": summary, "spend": [s.name for s in spec.spend]})
        return
    console.print(f"[green]ok[/] {spec_file}: {len(spec.slos)} SLOs, {len(spec.spend)} spend alerts", highlight=False)
    for item in summary:
        rules = "; ".join(f"{a['severity']} {a['speed']}: >{a['factor']:g}x over {a['long']} & {a['short']}"
                          for a in item["alerts"])
        console.print(f"  {item['slo']} ({item['sli']}, {item['objective']:g}% / {item['window']}): {rules}",
                      highlight=False)


@slo_app.command("check")
def slo_check(
    db: Optional[str] = DbOption, config: Optional[str] = ConfigOption, spec_file: Optional[str] = SpecOption,
    at: Optional[str] = typer.Option(None, "--at", help="Evaluate at this time (default now; RFC 3339, epoch, ...).",
                                     show_default=False),
    notify: bool = typer.Option(False, "--notify", help="Move the alerts (pending/firing/resolved) and deliver "
                                "notifications to the configured receivers."),
    fail_on_breach: bool = typer.Option(False, "--fail-on-breach", help="Exit 1 when an SLO's budget is spent or "
                                        "a page condition holds."),
    output: str = FormatOption,
) -> None:
    """Evaluate every SLO once: SLIs, budgets, burn rates, alert conditions.

    Without --notify nothing but the rollups is written. Exit 1 with --fail-on-breach when
    an SLO's error budget is spent or a page condition holds.

    Example: `genobs slo check --spec slo.yaml --at 2026-11-18T15:00:00Z --fail-on-breach`
    """
    from genobs.slo.engine import check
    from genobs.slo.outbox import drain

    output = _format(output)
    cfg = _config(config)
    spec = _spec(spec_file, cfg)
    when = _instant(at, "--at")
    store, server = _store_or_server(db, None)
    if store is None:
        raise _fail(f"a genobs server at {server} holds the database and evaluates the SLOs every "
                    f"{cfg.slo.evaluate_interval_s:g}s: see `genobs slo status --server {server}`")
    result = check(store, spec, at=when, manage_alerts=notify, notifiers=cfg.notifiers if notify else None,
                   external_url=cfg.slo.external_url)
    data = result.as_dict()
    if notify:
        data["delivery"] = drain(store, cfg.notifiers).as_dict()
    paging = [name for name, sev in result.alerting.items() if "page" in sev]
    breached = sorted(set(result.breached) | set(paging))
    if output == "json":
        _print_json(data)
    else:
        _slo_table(data)
        for transition in data["transitions"]:
            console.print(f"alert {transition['alert']} -> {transition['state']}", highlight=False)
        if notify:
            console.print(f"notifications: {data['notifications_queued']} queued, delivery {data['delivery']}",
                          highlight=False)
        if breached:
            console.print(f"[bold red]breached:[/] {', '.join(breached)}", highlight=False)
    if fail_on_breach and breached:
        raise typer.Exit(EXIT_GATE_FAILED)


@slo_app.command("status")
def slo_status(db: Optional[str] = DbOption, server: Optional[str] = ServerOption, config: Optional[str] = ConfigOption,
               spec_file: Optional[str] = SpecOption,
               at: Optional[str] = typer.Option(None, "--at", help="Evaluate at this time (default now).",
                                                show_default=False),
               output: str = FormatOption) -> None:
    """Each SLO: error ratio, budget left, burn rates over 5m..3d and the window, firing alerts.

    Example: `genobs slo status --format json`
    """
    from genobs.slo.api import slo_report

    output = _format(output)
    cfg = _config(config)
    when = _instant(at, "--at")
    store, url = _store_or_server(db, server)
    if store is None:
        report = _http("GET", f"{url}/v1/slo", params={"at": at} if at else None)
    else:
        report = slo_report(store, _spec(spec_file, cfg), when)
    if output == "json":
        _print_json(report)
    else:
        _slo_table(report)


@slo_app.command("rules")
def slo_rules(config: Optional[str] = ConfigOption, spec_file: Optional[str] = SpecOption,
              out: Optional[Path] = typer.Option(None, "--out", help="Write the rules file here (default: stdout).",
                                                 show_default=False)) -> None:
    """Prometheus recording and alerting rules equivalent to the SLOs, over the request
    metrics genobs exports on /metrics (genobs_requests_total, genobs_request_latency_seconds).

    SLIs Prometheus cannot see (quality, safety, drift, ratio) are listed as comments.

    Example: `genobs slo rules --spec slo.yaml --out slo-rules.yml && promtool check rules slo-rules.yml`
    """
    from genobs.slo.rules import prometheus_rules

    cfg = _config(config)
    text = prometheus_rules(_spec(spec_file, cfg))
    if out:
        out.write_text(text)
        err_console.print(f"wrote {out}", highlight=False)
    else:
        sys.stdout.write(text)


# ----------------------------------------------------------------------------- alerts


def alerts(db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
           state: Optional[str] = typer.Option(None, "--state", help="pending, firing, resolved or inactive.",
                                               show_default=False),
           output: str = FormatOption) -> None:
    """List alerts (SLO burn-rate pages and tickets, spend tickets) and their state.

    Example: `genobs alerts --state firing`
    """
    from genobs.slo.api import ALERT_STATES
    from genobs.slo.alerting import load_alerts

    output = _format(output)
    if state is not None and state not in ALERT_STATES:
        raise _fail(f"--state: expected one of {', '.join(ALERT_STATES)}, got {state!r}")
    store, url = _store_or_server(db, server)
    if store is None:
        items = _http("GET", f"{url}/v1/alerts", params={"state": state} if state else None)["alerts"]
    else:
        items = [a.as_dict() for a in load_alerts(store, state=state)]
    if output == "json":
        _print_json({"alerts": items})
        return
    table = Table(title="alerts")
    for column in ("state", "severity", "slo", "service", "since", "until", "fingerprint", "muted", "summary"):
        table.add_column(column)
    for a in items:
        muted = "silenced" if a["silenced"] else "inhibited" if a["inhibited"] else ""
        table.add_row(a["state"], a["severity"], a["slo"], a["service"] or "", a["starts_at"], a["ends_at"] or "",
                      a["fingerprint"], muted, a["annotations"].get("summary", ""))
    console.print(table)


# ----------------------------------------------------------------------------- silences


@silence_app.command("add")
def silence_add(
    match: list[str] = typer.Option(..., "--match", help="label=value, label!=value, label=~regex or label!~regex "
                                    "(repeatable; all must match)."),
    start: str = typer.Option("now", "--start", help="When the silence starts."),
    end: str = typer.Option(..., "--end", help="When it ends (RFC 3339, epoch, ...)."),
    comment: str = typer.Option(..., "--comment", help="Why (shown in `genobs silence list`)."),
    created_by: Optional[str] = typer.Option(None, "--by", help="Who.", show_default=False),
    db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
) -> None:
    """Silence matching alerts from --start to --end (a maintenance window).

    Example: `genobs silence add --match slo=chat-availability --start 2026-11-18T13:00Z --end 2026-11-18T16:00Z --comment "DB migration"`
    """
    from genobs.slo.silences import SilenceError, add_silence, parse_matcher

    store, url = _store_or_server(db, server)
    if store is None:
        body = {"matchers": match, "starts_at": start, "ends_at": end, "comment": comment, "created_by": created_by}
        silence_id = _http("POST", f"{url}/v1/silences", json=body)["id"]
    else:
        try:
            matchers = [parse_matcher(m) for m in match]
            silence_id = add_silence(store, matchers, _instant(start, "--start"), _instant(end, "--end"),  # type: ignore[arg-type]
                                     comment=comment, created_by=created_by)
        except SilenceError as exc:
            raise _fail(str(exc)) from None
    console.print(f"silence {silence_id} added", highlight=False)


@silence_app.command("list")
def silence_list(db: Optional[str] = DbOption, server: Optional[str] = ServerOption, output: str = FormatOption) -> None:
    """List silences (active, pending and expired).

    Example: `genobs silence list --format json`
    """
    from genobs.slo.silences import list_silences
    from genobs.slo.timeutil import utcnow

    output = _format(output)
    store, url = _store_or_server(db, server)
    if store is None:
        items = _http("GET", f"{url}/v1/silences")["silences"]
    else:
        now = utcnow()
        items = [s.as_dict(now) for s in list_silences(store)]
    if output == "json":
        _print_json({"silences": items})
        return
    table = Table(title="silences")
    for column in ("id", "state", "matchers", "starts", "ends", "by", "comment"):
        table.add_column(column)
    for s in items:
        table.add_row(str(s["id"]), s["state"], ", ".join(s["matchers"]), s["starts_at"], s["ends_at"],
                      s["created_by"] or "", s["comment"] or "")
    console.print(table)


@silence_app.command("expire")
def silence_expire(silence_id: int = typer.Argument(..., help="The silence's id (see `genobs silence list`)."),
                   db: Optional[str] = DbOption, server: Optional[str] = ServerOption) -> None:
    """End a silence now.

    Example: `genobs silence expire 3`
    """
    from genobs.slo.silences import expire_silence

    store, url = _store_or_server(db, server)
    if store is None:
        _http("DELETE", f"{url}/v1/silences/{silence_id}")
    elif not expire_silence(store, silence_id):
        raise _fail(f"no active silence {silence_id}")
    console.print(f"silence {silence_id} expired", highlight=False)
