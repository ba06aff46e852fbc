"""`genobs canary`: judge a canary arm against its baseline, as a CI/CD gate.

Part of the shell's wiring (it calls into genobs.slo); the heavy imports happen inside the
command so `genobs --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

EXIT_INPUT_ERROR = 2
_SUFFIX_FORMATS = {".xml": "junit", ".md": "markdown", ".json": "json", ".txt": "text"}


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(EXIT_INPUT_ERROR)


def canary_command(
    baseline: str = typer.Option(..., "--baseline", help="Baseline arm: FIELD=VALUE[,FIELD=VALUE], e.g. "
                                 "variant=baseline or model_version=v1.5 (fields: service, model, model_version, "
                                 "variant, tenant, region, modality)."),
    canary: str = typer.Option(..., "--canary", help="Canary arm, e.g. variant=canary or model_version=v1.6."),
    config: Optional[str] = typer.Option(None, "--config", help="canary.yaml (default: genobs.yaml's canary.file, "
                                         "then ./canary.yaml, then built-in defaults).", show_default=False),
    since: Optional[str] = typer.Option(None, "--since", help="Window start: RFC 3339, epoch, or a duration "
                                        "before now (2h). Default: --until minus canary.yaml's window (1h).",
                                        show_default=False),
    until: Optional[str] = typer.Option(None, "--until", help="Window end (default: now).", show_default=False),
    fmt: str = typer.Option("text", "--format", help="text, json, junit or markdown."),
    output: list[str] = typer.Option([], "--output", help="Write the report to FILE instead of stdout (format from "
                                     ".xml/.md/.json/.txt, else --format); repeat for several files. A text "
                                     "summary still goes to stdout."),
    interval: Optional[str] = typer.Option(None, "--interval", help="Continuous analysis: judge every INTERVAL "
                                           "(e.g. 10m) on the data since the start; needs --lifetime.",
                                           show_default=False),
    lifetime: Optional[str] = typer.Option(None, "--lifetime", help="Continuous analysis: run this long "
                                           "(e.g. 2h); stops early on a critical failure.", show_default=False),
    db: Optional[str] = typer.Option(None, "--db", help="DuckDB file (default: $GENOBS_DB, then ./genobs.duckdb).",
                                     show_default=False),
    server: Optional[str] = typer.Option(None, "--server", help="URL of a running `genobs serve` to ask (default: "
                                         "the one holding --db, if any).", show_default=False),
) -> None:
    """Judge a canary against its baseline: per-metric Mann-Whitney / proportion tests, score, verdict.

    Examples:

    `genobs canary --baseline variant=baseline --canary variant=canary`

    `genobs canary --baseline model_version=v1.5 --canary model_version=v1.6 --since 2026-11-22T00:00:00Z
    --until 2026-11-23T00:00:00Z --format junit --output canary.xml --output canary.md`

    `genobs canary --baseline variant=baseline --canary variant=canary --interval 10m --lifetime 2h`

    Exit codes: 0 pass, 1 fail, 3 marginal or inconclusive (canary.yaml exit_codes can make
    those 0 or 1), 2 usage or data error. Every verdict is stored in canary_verdicts.
    """
    from genobs import client
    from genobs.config import ConfigError, load_config
    from genobs.slo.canary_config import CanaryConfigError, load_spec, parse_selector
    from genobs.slo.canary_data import parse_duration
    from genobs.slo.canary_report import FORMATS, render, render_text
    from genobs.slo.canary_run import CanaryInputError, run_continuous
    from genobs.store import resolve_db_path

    if fmt not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}")
    if (interval is None) != (lifetime is None):
        raise _fail("--interval and --lifetime go together (e.g. --interval 10m --lifetime 2h)")
    try:
        parse_selector(baseline, what="--baseline")
        parse_selector(canary, what="--canary")
        genobs_config = load_config(None)
        spec = load_spec(config or genobs_config.canary.file)
    except (CanaryConfigError, ConfigError) as exc:
        raise _fail(str(exc)) from None

    db_path = resolve_db_path(db)
    url = server or client.running_server(db_path)
    judge_at: Callable[[Any, Any], Any]
    if url:
        def judge_at(start: Any, end: Any) -> Any:
            return _judge_via_server(url, baseline, canary, start, end, spec)
    else:
        from genobs.store import DatabaseLockedError, Store, StoreError

        try:
            store = Store.open(db)
        except (DatabaseLockedError, StoreError) as exc:
            raise _fail(str(exc)) from None

        def judge_at(start: Any, end: Any) -> Any:
            from genobs.slo.canary_run import run_canary

            return run_canary(store, baseline, canary, start, end, spec)

    def emit(verdict: Any, final: bool) -> None:
        if output:
            sys.stdout.write(render_text(verdict))
            if final:
                for target in output:
                    target_fmt = _SUFFIX_FORMATS.get(Path(target).suffix.lower(), fmt)
                    Path(target).write_text(render(verdict, target_fmt))
        elif final or fmt == "text":
            sys.stdout.write(render(verdict, fmt))
        sys.stdout.flush()

    try:
        if interval is None:
            verdict = judge_at(since, until)
            emit(verdict, True)
            raise typer.Exit(verdict.exit_code)
        from datetime import datetime, timezone

        from genobs.slo.canary_data import parse_instant

        start = parse_instant(since) if since else datetime.now(timezone.utc)
        outcome = run_continuous(lambda end: judge_at(start, end), baseline, canary,
                                 interval=parse_duration(interval), lifetime=parse_duration(lifetime or ""),
                                 spec=spec, start=start,
                                 on_verdict=lambda v: sys.stderr.write(
                                     f"interval {v.interval}: {v.verdict} (score {v.score:.1f}) {v.reason}\n"))
        if outcome.stopped_early:
            sys.stderr.write(f"stopped early at interval {outcome.final.interval}: critical failure\n")
        emit(outcome.final, True)
        raise typer.Exit(outcome.final.exit_code)
    except (CanaryInputError, ValueError, OverflowError) as exc:
        raise _fail(str(exc)) from None
    except client.ServerRequestError as exc:
        raise _fail(str(exc)) from None


def _judge_via_server(url: str, baseline: str, canary: str, since: Any, until: Any, spec: Any) -> Any:
    """POST /v1/canary/verdict on the server that holds the database."""
    import httpx

    from genobs import client
    from genobs.slo.canary_report import verdict_from_dict

    body: dict[str, Any] = {"baseline": baseline, "canary": canary,
                            "since": _text(since), "until": _text(until),
                            "config": spec.model_dump(mode="json", by_alias=True)}
    headers = {"User-Agent": client.USER_AGENT}
    token = client.ingest_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.post(url.rstrip("/") + "/v1/canary/verdict", json=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        raise client.ServerRequestError(f"cannot reach server {url}: {exc}") from None
    if response.status_code != 200:
        raise client._explain(url, response)
    return verdict_from_dict(response.json())


def _text(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
