"""The `genobs` command line (Typer + Rich).

This is the one place where the shell wires in the domain packages (DESIGN §1). Exit
codes (DESIGN §4): 0 success; 1 a gate failed; 2 usage or input error; 3 partial (some
records rejected: accepted ones are stored, rejected ones are in dead_letter).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from genobs.config import ConfigError, GenobsConfig, load_config
from genobs.store import DatabaseLockedError, Store, StoreError, resolve_db_path

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_INPUT_ERROR = 2
EXIT_PARTIAL = 3

app = typer.Typer(
    name="genobs",
    help=(
        "Observability and evaluation for generative models in production: ingest samples and "
        "GPU telemetry, score them with reference models, watch SLOs, gate canaries.\n\n"
        "Start with `genobs demo`. Data lives in one DuckDB file: --db PATH, else $GENOBS_DB, "
        "else ./genobs.duckdb."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Wide enough for the tables when output goes to a file or a CI log (Rich's default is 80).
console = Console(stderr=False, width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

DbOption = typer.Option(None, "--db", help="DuckDB file (default: $GENOBS_DB, then ./genobs.duckdb).", show_default=False)
ServerOption = typer.Option(
    None, "--server", help="URL of a running `genobs serve` to send the work to (default: the one holding --db, if any).",
    show_default=False,
)
ConfigOption = typer.Option(None, "--config", help="genobs.yaml (default: $GENOBS_CONFIG, then ./genobs.yaml).",
                            show_default=False)


def fail(message: str, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def open_store(db: Optional[str]) -> Store:
    """Open the database, turning DuckDB's lock error into advice (DESIGN §2)."""
    try:
        return Store.open(db)
    except DatabaseLockedError as exc:
        raise fail(str(exc)) from None
    except StoreError as exc:
        raise fail(str(exc)) from None


def get_config(path: Optional[str]) -> GenobsConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- init


@app.command()
def init(db: Optional[str] = DbOption) -> None:
    """Create (or migrate) the database file and show its tables.

    While a server holds the file, it says so and shows the schema version the server
    migrated it to (a server migrates the database when it opens it).

    Example: `genobs init --db ./genobs.duckdb`
    """
    from genobs import client

    db_path = resolve_db_path(db)
    url = client.running_server(db_path)
    if url:
        health = client.server_health(url) or {}
        console.print(f"database [bold]{db_path}[/] is held by the genobs server at {url}, at schema version "
                      f"{health.get('schema_version', '?')}: nothing to do", highlight=False, soft_wrap=True)
        return
    store = open_store(db)
    console.print(f"database [bold]{store.path}[/] at schema version {store.schema_version()}")
    console.print("tables: " + ", ".join(store.table_names()), highlight=False)


# --------------------------------------------------------------------------- config

config_app = typer.Typer(help="Show the effective configuration (genobs.yaml and defaults).", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: Optional[str] = ConfigOption,
    fmt: str = typer.Option("yaml", "--format", help="yaml or json."),
) -> None:
    """Print every section with its effective value (file, then defaults), secrets masked.

    Example: `genobs config show --config genobs.yaml`
    """
    import yaml

    from genobs.config import effective_config

    cfg = get_config(config)
    data = effective_config(cfg)
    if fmt == "json":
        print_json(data)
    elif fmt == "yaml":
        source = f"# from {cfg.source}" if cfg.source else "# no genobs.yaml found: defaults"
        sys.stdout.write(source + "\n" + yaml.safe_dump(data, sort_keys=False))
    else:
        raise fail(f"--format {fmt!r}: expected yaml or json")


# --------------------------------------------------------------------------- ingest


def _parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    from genobs.records import SAMPLE_FIELD_NAMES
    from genobs.collectors.validation import DERIVED_TIME_FIELDS

    allowed = set(SAMPLE_FIELD_NAMES) | set(DERIVED_TIME_FIELDS)
    result: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        field = field.strip()
        if not sep or not field or not value:
            raise fail(f"{option} {pair!r}: expected FIELD=VALUE")
        if field not in allowed:
            raise fail(f"{option} {pair!r}: {field!r} is not a sample field "
                       f"(fields: {', '.join(sorted(allowed))})")
        result[field] = value
    return result


@app.command()
def ingest(
    files: list[str] = typer.Argument(..., help="JSONL / JSON / CSV / Parquet files, plain or gzip; '-' reads stdin."),
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    config: Optional[str] = ConfigOption,
    fmt: Optional[str] = typer.Option(None, "--format", help="Input format: jsonl, json, csv or parquet "
                                      "(default: from the file name, then its first bytes)."),
    map_: list[str] = typer.Option([], "--map", help="FIELD=COLUMN: read a sample field from another column/key. "
                                   "Map start_time and end_time to derive timestamp and latency_ms; "
                                   "request_id=@row_hash makes ids from row content."),
    set_: list[str] = typer.Option([], "--set", help="FIELD=VALUE: a value for rows that lack the field."),
    no_redact: bool = typer.Option(False, "--no-redact", help="Store text as is (default: PII is redacted)."),
    report: str = typer.Option("text", "--report", help="Summary as text or json."),
) -> None:
    """Validate, redact and store samples from files (re-ingesting a request_id updates it).

    Examples:

    `genobs ingest samples.jsonl.gz`

    `genobs ingest export.csv --map prompt=question --map model=model_ID --map start_time=start_time
    --map end_time=end_time --map request_id=@row_hash --set model_version=unknown`

    Exit 0 when every record was stored, 3 when some were rejected (they are in the
    dead_letter table, with the reason), 2 when the input is unusable.
    """
    from genobs.collectors.files import InputError, ingest_file, missing_required_columns
    from genobs.collectors.pipeline import IngestOptions, IngestResult, ModelPrice
    from genobs.collectors.validation import FieldMapping

    cfg = get_config(config)
    mapping = FieldMapping(columns=_parse_pairs(map_, "--map"), constants=_parse_pairs(set_, "--set"))
    options = IngestOptions(
        redact=cfg.ingest.redact and not no_redact,
        mapping=mapping,
        prices={m: ModelPrice(p.input_per_mtok, p.output_per_mtok) for m, p in cfg.ingest.prices.items()},
    )
    if report not in ("text", "json"):
        raise fail("--report must be text or json")

    from genobs import client

    db_path = resolve_db_path(db)
    url = server or client.running_server(db_path)
    if url:
        _ingest_via_server(url, files, fmt, options, report)
        return

    store = open_store(db)
    totals = IngestResult()
    problems: list[str] = []
    per_file: list[dict[str, Any]] = []
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    show_progress = report == "text" and console.is_terminal
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err_console, disable=not show_progress, transient=True,
    ) as progress:
        for path in files:
            size = os.path.getsize(path) if path != "-" and os.path.isfile(path) else None
            task = progress.add_task(f"ingest {Path(path).name}", total=size)
            try:
                file_report = ingest_file(
                    store, path, fmt=fmt, options=options,
                    progress=lambda n, t=task: progress.advance(t, n),
                )
            except InputError as exc:
                problems.append(str(exc))
                per_file.append({"file": path, "error": str(exc)})
                continue
            result = file_report.result
            totals.merge(result)
            entry = {"file": path, **result.as_dict()}
            if file_report.problem:
                problems.append(file_report.problem)
                entry["problem"] = file_report.problem
            if file_report.columns is not None:
                missing = missing_required_columns(file_report.columns, options)
                if missing:
                    hint = (f"{path}: no column for required field(s) {', '.join(missing)} "
                            f"(columns: {', '.join(file_report.columns)}); use --map FIELD=COLUMN or --set FIELD=VALUE")
                    problems.append(hint)
                    entry["problem"] = hint
            per_file.append(entry)

    code = _ingest_exit_code(totals.accepted, totals.rejected, bool(problems))
    if report == "json":
        print_json({"files": per_file, "total": totals.as_dict(), "exit_code": code})
    else:
        for entry in per_file:
            _print_ingest_summary(entry)
        for problem in problems:
            err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _ingest_exit_code(accepted: int, rejected: int, problems: bool) -> int:
    if accepted == 0 and (rejected or problems):
        return EXIT_INPUT_ERROR
    if rejected or problems:
        return EXIT_PARTIAL
    return EXIT_OK


def _print_ingest_summary(entry: dict[str, Any]) -> None:
    if "error" in entry and "accepted" not in entry:
        return
    redactions = entry.get("redactions") or {}
    redacted = ", ".join(f"{name} {count}" for name, count in sorted(redactions.items())) or "none"
    console.print(
        f"[bold]{entry['file']}[/]: {entry['accepted']} accepted "
        f"({entry['inserted']} new, {entry['updated']} updated), "
        f"[{'red' if entry['rejected'] else 'green'}]{entry['rejected']} rejected[/]; "
        f"redacted: {redacted}",
        highlight=False, soft_wrap=True,
    )
    errors = entry.get("errors") or []
    for error in errors[:10]:
        where = f"line {error['line']}" if error.get("line") is not None else "input"
        rid = f" request_id={error['request_id']}" if error.get("request_id") else ""
        console.print(f"  {where}{rid}: {error['error']}", highlight=False, soft_wrap=True)
    if entry["rejected"] > len(errors[:10]):
        console.print(f"  ... {entry['rejected'] - len(errors[:10])} more in the dead_letter table", highlight=False)


def _ingest_via_server(url: str, files: list[str], fmt: Optional[str], options: Any, report: str) -> None:
    """A server holds the database: send the records to its API (same validation there)."""
    from genobs.collectors.files import InputError
    from genobs.collectors.remote_ingest import read_records_as_lines
    from genobs import client

    per_file: list[dict[str, Any]] = []
    problems: list[str] = []
    accepted = rejected = 0
    for path in files:
        try:
            lines = read_records_as_lines(path, fmt, options.mapping)
        except InputError as exc:
            problems.append(str(exc))
            continue
        try:
            answer = client.post_sample_lines(url, lines, source=f"cli:{path}")
        except client.ServerRequestError as exc:
            raise fail(str(exc)) from None
        accepted += answer["accepted"]
        rejected += answer["rejected"]
        per_file.append({"file": path, "server": url, **answer})
    code = _ingest_exit_code(accepted, rejected, bool(problems))
    if report == "json":
        print_json({"files": per_file, "server": url, "exit_code": code})
    else:
        console.print(f"sent to the server at {url} (it holds the database)", highlight=False)
        for entry in per_file:
            _print_ingest_summary(entry)
        for problem in problems:
            err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- serve, collect-gpu


@app.command()
def serve(
    db: Optional[str] = DbOption,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: server.host, 127.0.0.1).",
                                       show_default=False),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default: server.port, 8080).", show_default=False),
    config: Optional[str] = ConfigOption,
    dcgm_url: list[str] = typer.Option([], "--dcgm-url", help="DCGM exporter /metrics URL to scrape (repeatable; "
                                       "default: server.dcgm_urls)."),
    poll_nvml: Optional[bool] = typer.Option(None, "--poll-nvml/--no-poll-nvml",
                                             help="Poll this machine's GPUs through NVML (default: server.poll_nvml).",
                                             show_default=False),
    gpu_interval: Optional[float] = typer.Option(None, "--gpu-interval", help="Seconds between GPU polls "
                                                 "(default: server.gpu_poll_interval_s, 15).", show_default=False),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    ui: Optional[bool] = typer.Option(None, "--ui/--no-ui", help="Serve the dashboards too (default: ui.enabled, on).",
                                      show_default=False),
    ui_host: Optional[str] = typer.Option(None, "--ui-host", help="Address of the dashboards (default: ui.host, "
                                          "127.0.0.1; without GENOBS_UI_TOKEN or OIDC only an explicit --ui-host "
                                          "leaves loopback).", show_default=False),
    ui_port: Optional[int] = typer.Option(None, "--ui-port", help="Port of the dashboards (default: ui.port, 8501).",
                                          show_default=False),
) -> None:
    """Serve the platform: the one process that owns the database.

    The HTTP API (POST /v1/samples, /v1/gpu, /v1/traces; GET /metrics, /healthz, /v1/slo,
    /v1/alerts, /v1/canary/...; OpenAPI at /docs), the Streamlit dashboards (port 8501), and
    the scheduler: evaluators score new samples every server.evaluate_interval_s (60 s),
    SLOs are evaluated every slo.evaluate_interval_s (30 s) and notifications sent, drift
    runs every server.drift_interval_s (3600 s), GPUs are polled when configured. Set
    GENOBS_INGEST_TOKEN to require `Authorization: Bearer <token>` on POSTs and
    GENOBS_UI_TOKEN to protect the dashboards. While it runs, `genobs ingest`, `evaluate`,
    `drift`, `collect-gpu`, `slo`, `canary` send their work to it.

    Example: `genobs serve --db ./genobs.duckdb --port 8080 --dcgm-url http://gpu-node-1:9400/metrics`
    """
    import logging

    from genobs import client as server_client
    from genobs.runtime import ServerStartError, settings_from_config
    from genobs.runtime import serve as serve_platform

    cfg = get_config(config)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_config(cfg, dcgm_urls=dcgm_url, poll_nvml=poll_nvml,
                                    gpu_poll_interval_s=gpu_interval, log_level=log_level.lower())
    db_path = resolve_db_path(db)
    running = server_client.running_server(db_path)
    if running:
        raise fail(f"a genobs server already serves {db_path} at {running}")
    echo = err_console.print
    if settings.ingest_token:
        echo("ingest authentication: on (GENOBS_INGEST_TOKEN)", highlight=False)

    from genobs.wiring import ui_slot

    if ui is not None:
        cfg.ui.enabled = ui
    slot = ui_slot(cfg, ui_host=ui_host, ui_port=ui_port)

    def started(url: str) -> None:
        echo(f"genobs API on {url} (database {db_path}); docs at {url}/docs; Ctrl-C to stop",
             highlight=False, soft_wrap=True)
        if slot is not None:
            echo(f"dashboards on {slot.url} ({slot.note})", highlight=False, soft_wrap=True)

    try:
        serve_platform(db_path, host or cfg.server.host, port if port is not None else cfg.server.port,
                       settings=settings, config=cfg, on_started=started,
                       ui=slot.runner if slot else None, ui_url=slot.url if slot else None)
    except (ServerStartError, StoreError) as exc:
        raise fail(str(exc)) from None


@app.command("collect-gpu")
def collect_gpu(
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    interval: float = typer.Option(5.0, "--interval", help="Seconds between readings."),
    dcgm_url: list[str] = typer.Option([], "--dcgm-url", help="Scrape a DCGM exporter's /metrics instead of NVML "
                                       "(repeatable)."),
    nvidia_smi_csv: Optional[Path] = typer.Option(None, "--nvidia-smi-csv", help="Import a file written by "
                                                  "`nvidia-smi --query-gpu=... --format=csv` (read once).",
                                                  show_default=False),
    host: Optional[str] = typer.Option(None, "--host", help="Host name to record (default: this machine's).",
                                       show_default=False),
    count: int = typer.Option(0, "--count", help="Stop after this many readings (0: until Ctrl-C)."),
    optional: bool = typer.Option(False, "--optional", help="Exit 0 with a message where there is no GPU or driver."),
) -> None:
    """Collect GPU telemetry (NVML, DCGM exporter, or nvidia-smi CSV) into genobs.

    Readings go to the server holding the database (or --server URL), else into the file.

    Examples:

    `genobs collect-gpu --interval 5`

    `genobs collect-gpu --dcgm-url http://gpu-node-1:9400/metrics --server http://genobs:8080`

    `genobs collect-gpu --nvidia-smi-csv gpus.csv --host gpu-node-1`

    Exit 0 on success, 2 when there is nothing to read (no GPU/driver without --optional,
    unreachable exporter, unreadable file), 3 when some readings were rejected.
    """
    from genobs.collectors.gpu_collect import CollectOptions, run_collect_gpu_command

    if nvidia_smi_csv is not None and dcgm_url:
        raise fail("--nvidia-smi-csv and --dcgm-url are different sources: give one of them")
    options = CollectOptions(interval=interval, dcgm_urls=dcgm_url, smi_csv=nvidia_smi_csv, host=host,
                             optional=optional, count=count)
    code = run_collect_gpu_command(db, server, options,
                                   echo=lambda line: console.print(line, highlight=False, soft_wrap=True))
    raise typer.Exit(code)


# --------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    config: Optional[str] = ConfigOption,
    evaluators: Optional[str] = typer.Option(
        None, "--evaluators", help="Comma-separated: clip, hallucination (default: evaluators.enabled, else both).",
        show_default=False),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when present), cpu or cuda[:N] "
                                         "(default: evaluators.device, else auto).", show_default=False),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Samples per batch (default 64).",
                                             show_default=False),
    since: Optional[str] = typer.Option(None, "--since", help="Only samples at or after this time: ISO 8601 or a "
                                        "duration back from now (24h, 7d).", show_default=False),
    until: Optional[str] = typer.Option(None, "--until", help="Only samples before this time (same forms).",
                                        show_default=False),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many samples per evaluator.",
                                        show_default=False),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding workers "
                                          "(default: half the cores, at most 8).", show_default=False),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Also retry samples whose last attempt left "
                                      "an error row."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Score samples that have no score yet: CLIP alignment (image samples) and hallucination
    (text samples with context or a reference).

    Incremental and resumable: only samples lacking a score for the configured reference
    model are scored, each batch is committed, so a second run does nothing and a killed run
    carries on where it stopped. A sample that cannot be scored (unreadable or oversized
    image, empty response) gets an error row with the reason. Reference models are
    configured in genobs.yaml (evaluators.clip: backend, model, pretrained) and loaded
    offline only.

    Examples:

    `genobs evaluate`

    `genobs evaluate --evaluators clip --device cuda --batch-size 128 --since 24h`

    Exit 0 on success, 2 when a reference model is missing or an option is wrong.
    """
    from genobs.evaluators.device import DeviceError
    from genobs.evaluators.reference_models import ReferenceModelError
    from genobs.evaluators.runner import EvaluationError, run_evaluators

    if fmt not in ("table", "json"):
        raise fail(f"--format {fmt!r}: expected table or json")
    names = [n.strip() for n in evaluators.split(",") if n.strip()] if evaluators else None
    url = _server_for(db, server)
    if url:
        from genobs import client

        if device or workers is not None:
            err_console.print(f"note: the server at {url} runs the evaluators on its own device and workers",
                              highlight=False)
        try:
            result = client.post_json(url, "/v1/evaluate", {
                "evaluators": names, "since": since, "until": until, "limit": limit, "batch_size": batch_size,
                "retry_errors": retry_errors})
        except client.ServerRequestError as exc:
            raise fail(str(exc)) from None
        _print_evaluate(result, fmt, via=url)
        return
    cfg = get_config(config)
    store = open_store(db)
    try:
        summary = run_evaluators(
            store, names, device=device or "", batch_size=batch_size, since=since, until=until, limit=limit,
            config=cfg, num_workers=workers, retry_errors=retry_errors,
            skip_unavailable=names is None,  # named evaluators must run; by default say why one cannot
            progress=fmt == "table" and err_console.is_terminal,
        )
    except (EvaluationError, DeviceError, ReferenceModelError) as exc:
        raise fail(str(exc)) from None
    _print_evaluate(summary.to_dict(), fmt)


def _server_for(db: Optional[str], server: Optional[str]) -> Optional[str]:
    """--server, else the healthy server that holds --db, else None (open the file)."""
    from genobs import client

    if server:
        return server
    return client.running_server(resolve_db_path(db))


def _print_evaluate(summary: dict[str, Any], fmt: str, via: Optional[str] = None) -> None:
    runs = summary["evaluators"]
    for run in runs:
        if run.get("skipped"):
            err_console.print(f"[yellow]{run['name']} skipped:[/] {run['skipped']}", highlight=False, soft_wrap=True)
    if fmt == "json":
        print_json(summary)
        return
    where = f" (run by the server at {via})" if via else ""
    table = Table(title=f"evaluate on {summary['device']}{where}", title_justify="left")
    for column in ("evaluator", "reference model", "candidates", "scored", "errors", "not scored", "samples/s"):
        table.add_column(column)
    for run in runs:
        if run.get("skipped"):
            table.add_row(run["name"], run.get("reference_model") or "-", "-", "-", "-", "-", "skipped")
            continue
        table.add_row(run["name"], run.get("reference_model") or "-", str(run["candidates"]), str(run["scored"]),
                      f"[red]{run['errors']}[/]" if run["errors"] else "0", str(run["not_scored"]),
                      f"{run['samples_per_s']:.1f}")
    console.print(table)
    if not any(run.get("candidates") for run in runs):
        console.print("nothing to score: every eligible sample already has a score", highlight=False)


# --------------------------------------------------------------------------- drift


def _fmt_number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_drift_summary(summary: dict[str, Any]) -> None:
    title = (f"drift {summary['service'] or 'all services'}: current {summary['current']} "
             f"({summary['n_current']} samples) vs reference {summary['reference']} ({summary['n_reference']})")
    table = Table(title=title, title_justify="left")
    for column in ("feature", "type", "method", "statistic", "p-value", "threshold", "drifted"):
        table.add_column(column)
    rows = [(f["feature"], f["feature_type"], f["method"], f["statistic"], f["p_value"], f["threshold"], f["drifted"])
            for f in summary["features"]]
    rows += [(e["feature"], "embedding", e["method"], e["statistic"], e["p_value"], e["threshold"], e["drifted"])
             for e in summary["embeddings"]]
    for feature, kind, method, statistic, p_value, threshold, drifted in rows:
        verdict = "-" if drifted is None else ("[bold red]yes[/]" if drifted else "no")
        table.add_row(feature, kind, method, _fmt_number(statistic), _fmt_number(p_value), _fmt_number(threshold),
                      verdict)
    console.print(table)
    console.print(f"drift score (share of drifted features): [bold]{summary['drift_score']:.3f}[/]"
                  f"{' — dataset drift' if summary['dataset_drift'] else ''}; run_id {summary['run_id']}",
                  highlight=False)


@app.command()
def drift(
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    reference: Optional[str] = typer.Option(
        None, "--reference", help="Reference window: 'A..B' (dates/date-times), 'last 7d', '7d before' (the span "
        "before --current), 'version:NAME' or 'all'. Default: '7d before'.", show_default=False),
    current: Optional[str] = typer.Option(
        None, "--current", help="Current window, same forms. Default: 'last 24h' (ending at the newest sample).",
        show_default=False),
    service: Optional[str] = typer.Option(None, "--service", help="Service to check (default: each service in turn).",
                                          show_default=False),
    device: str = typer.Option("auto", "--device", help="Device for embedding drift: auto, cpu or cuda."),
    embeddings: bool = typer.Option(True, "--embeddings/--no-embeddings",
                                    help="Also test prompt and response embedding drift (all-MiniLM-L6-v2)."),
    embedding_sample: Optional[int] = typer.Option(
        None, "--embedding-sample", min=20, help="Texts per window and field for embedding drift "
        "(default 500 on CUDA, 200 on the CPU).", show_default=False),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="Exit 1 when the dataset drifts "
                                       "(drift share >= 0.5)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Compare a current window of samples with a reference window (or model version).

    Per feature (latency, TTFT, tokens, cost, response length, scores; model, status, tenant)
    Evidently's default drift test, computed from DuckDB aggregates; the drift share; and
    embedding drift of prompts and responses (domain-classifier ROC AUC, MMD permutation test).
    Results go to the drift_results table.

    Examples:

    `genobs drift --service chat-api`

    `genobs drift --service chat-api --reference 2026-11-16..2026-11-19 --current 2026-11-20..2026-11-22`

    `genobs drift --reference version:v1.4 --current version:v1.5 --format json`
    """
    if fmt not in ("table", "json"):
        raise fail(f"--format {fmt!r}: expected table or json")
    url = _server_for(db, server)
    if url:
        from genobs import client

        try:
            results = client.post_json(url, "/v1/drift", {
                "reference": reference, "current": current, "service": service, "embeddings": embeddings,
                "embedding_sample": embedding_sample})
        except client.ServerRequestError as exc:
            raise fail(str(exc)) from None
        for skipped in [r for r in results if "skipped" in r]:
            err_console.print(f"[yellow]skipped[/] {skipped['service']}: {skipped['skipped']}", highlight=False)
        summaries = [r for r in results if "skipped" not in r]
    else:
        summaries = _drift_locally(db, reference, current, service, device, embeddings, embedding_sample)
    if fmt == "json":
        print_json(summaries)
    else:
        for summary in summaries:
            _print_drift_summary(summary)
    if fail_on_drift and any(s["dataset_drift"] for s in summaries):
        raise typer.Exit(EXIT_GATE_FAILED)


def _drift_locally(db: Optional[str], reference: Optional[str], current: Optional[str], service: Optional[str],
                   device: str, embeddings: bool, embedding_sample: Optional[int]) -> list[dict[str, Any]]:
    from genobs.evaluators.drift import DriftError, run_drift, services
    from genobs.evaluators.windows import WindowError

    store = open_store(db)
    names = [service] if service else services(store)
    if not names:
        raise fail(f"no samples in {store.path}; ingest some first (genobs ingest FILE)")
    summaries = []
    for name in names:
        try:
            summaries.append(run_drift(store, reference=reference, current=current, service=name, device=device,
                                       embeddings=embeddings, embedding_sample=embedding_sample).to_dict())
        except WindowError as exc:
            raise fail(f"--reference/--current: {exc}") from None
        except DriftError as exc:
            if service:
                raise fail(str(exc)) from None
            err_console.print(f"[yellow]skipped[/] {name}: {exc}", highlight=False)
    return summaries


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    db: Optional[str] = typer.Option("genobs-demo.duckdb", "--db", help="Where to build the demo database (replaced)."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after the report instead of serving the platform."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(8080, "--port", help="Port of the API."),
    ui_port: int = typer.Option(8501, "--ui-port", help="Port of the dashboards."),
    device: str = typer.Option("auto", "--device", help="Evaluator device: auto, cpu or cuda."),
) -> None:
    """Build a fresh demo database from the shipped sample data and run every stage on it.

    Ingests a week of traffic of a RAG chat LLM and an image generator (part of it through
    the HTTP API and the Python SDK), GPU telemetry, scores the samples, looks for drift,
    replays the week through the SLO engine, judges the canary, prints what it found, then
    serves the platform: API, dashboards and scheduler (unless --no-serve).

    Example: `genobs demo --no-serve`
    """
    from genobs.demo import DemoError, run_demo
    from genobs.runtime import ServerStartError, settings_from_config
    from genobs.runtime import serve as serve_platform

    def serve_demo(db_path: Path, host: str, port: int, cfg: GenobsConfig) -> None:
        from genobs.wiring import ui_slot

        cfg.ui.port = ui_port
        slot = ui_slot(cfg)

        def started(url: str) -> None:
            console.print(f"genobs API on [bold]{url}[/] (OpenAPI at {url}/docs, metrics at {url}/metrics); "
                          "the scheduler scores what is posted to it.", highlight=False, soft_wrap=True)
            if slot is not None:
                console.print(f"dashboards on [bold]{slot.url}[/] ({slot.note})", highlight=False, soft_wrap=True)
            console.print("Ctrl-C stops.", highlight=False)

        try:
            serve_platform(db_path, host, port, settings=settings_from_config(cfg), config=cfg, on_started=started,
                           ui=slot.runner if slot else None, ui_url=slot.url if slot else None)
        except ServerStartError as exc:
            raise fail(f"cannot serve on {host}:{port}: {exc} (pick another --port, or --no-serve)") from None

    try:
        run_demo(resolve_db_path(db), serve=not no_serve, host=host, port=port, device=device, console=console,
                 serve_platform=serve_demo)
    except DemoError as exc:
        raise fail(str(exc)) from None


from genobs.commands.dashboard import dashboard as _dashboard_command  # noqa: E402

app.command("dashboard")(_dashboard_command)

# SLOs, alerts and silences (genobs.slo; the commands live in genobs/commands/slo.py).
from genobs.commands import slo as _slo_commands  # noqa: E402

app.add_typer(_slo_commands.slo_app, name="slo")
app.add_typer(_slo_commands.silence_app, name="silence")
app.command("alerts")(_slo_commands.alerts)

from genobs.commands.canary import canary_command  # noqa: E402  (the canary gate, issue 12)

app.command("canary")(canary_command)


if __name__ == "__main__":  # python -m genobs.cli (tests start servers this way)
    app()
