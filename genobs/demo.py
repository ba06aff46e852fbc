"""`genobs demo`: build a fresh database from the shipped sample data, run every stage on it
through the same code as the commands (collect, evaluate, drift, ...), print what each found,
then serve the platform through the runtime, scheduler included.

This module is part of the shell's wiring (DESIGN §1): it may import the domain packages.
Its queries are the store's read models (genobs.read_models).
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from genobs import read_models
from genobs.config import GenobsConfig
from genobs.store import Store

SDK_SAMPLES = 1000      # the newest chat samples go through the Python SDK
EVALUATE_FROM = "2026-11-22T00:00:00Z"   # the canary day: baseline and canary arms side by side
DRIFT_REFERENCE = "2026-11-16..2026-11-20"
DRIFT_CURRENT = "2026-11-20..2026-11-23"
CANARY_FROM, CANARY_UNTIL = "2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z"
# The served demo scores what is posted to it within seconds rather than a minute.
SERVED_EVALUATE_INTERVAL_S = 10.0


class DemoError(RuntimeError):
    """A stage cannot run (port in use...); the message says what to do."""


def demo_config() -> GenobsConfig:
    return GenobsConfig.model_validate({"server": {"evaluate_interval_s": SERVED_EVALUATE_INTERVAL_S}})


class DemoReport:
    """Prints the stages' findings as Rich tables."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def stage(self, title: str) -> None:
        self.console.rule(f"[bold]{title}", align="left")

    def line(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def table(self, title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*["" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row])
        self.console.print(table)


def run_demo(db_path: Path, *, serve: bool, host: str, port: int, device: str, console: Console,
             serve_platform: Callable[[Path, str, int, GenobsConfig], None] | None = None) -> None:
    """Every stage on a fresh database at ``db_path``; then, with ``serve``,
    ``serve_platform(db_path, host, port, config)`` until it returns (Ctrl-C)."""
    from genobs import sample_data
    from genobs.runtime import ServerSettings, ServerStartError, start_platform

    for stale in (db_path, db_path.with_name(db_path.name + ".wal")):
        stale.unlink(missing_ok=True)
    report = DemoReport(console)
    data = sample_data.data_dir()
    store = Store.open(db_path)
    report.line(f"demo database: [bold]{db_path}[/] (sample data: {data})")

    report.stage("1. collect: start the API, ingest files, post through HTTP and the SDK")
    # The collection stages run without the scheduler: the demo runs each stage itself, in
    # order, and prints it. The platform it serves at the end runs the scheduler.
    try:
        handle = start_platform(db_path, host, 0, settings=ServerSettings(run_scheduler=False, ingest_token=None),
                                record_url=False)
    except (ServerStartError, OSError) as exc:
        raise DemoError(f"cannot start the API on {host}: {exc}") from None
    try:
        _collect(store, handle.url, data, report)
    finally:
        handle.stop()
    report.stage("2. evaluate: hallucination and CLIP scores")
    _evaluate(store, device, report)
    report.stage("3. drift: prompt topics and per-feature drift, before vs after 2026-11-20")
    _drift(store, device, report)
    report.stage("4. incidents found in the data")
    _incidents(store, report)
    report.stage("5. canary: v1.6 (variant canary) against v1.5 (variant baseline) on 2026-11-22")
    _canary(store, report)
    if not serve or serve_platform is None:
        store.close()  # checkpoints the WAL into the file: the demo database is complete on disk
        report.line(f"done (--no-serve). Explore it: `genobs serve --db {db_path}` or open the file with DuckDB.")
        return
    console.rule("[bold]serving")
    serve_platform(db_path, host, port, demo_config())


def _collect(store: Store, url: str, data: Path, report: DemoReport) -> None:
    from genobs import client as http_client
    from genobs import sample_data
    from genobs.collectors.files import ingest_file
    from genobs.collectors.gpu_records import store_readings
    from genobs.collectors.pipeline import IngestOptions
    from genobs.sdk import Client as SdkClient

    chat_lines = gzip.decompress((data / sample_data.CHAT_SAMPLES_FILE).read_bytes()).splitlines()
    file_lines, sdk_lines = chat_lines[:-SDK_SAMPLES], chat_lines[-SDK_SAMPLES:]
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
        tmp.write(b"\n".join(file_lines) + b"\n")
        tmp.flush()
        result = ingest_file(store, tmp.name, options=IngestOptions()).result
    report.line(f"file   chat_samples.jsonl.gz (first {len(file_lines)} lines): {result.accepted} accepted, "
                f"{result.rejected} rejected; PII redacted: "
                + ", ".join(f"{k} {v}" for k, v in sorted(result.redactions.items())))

    answer = http_client.post_sample_lines(
        url, (data / sample_data.IMAGE_SAMPLES_FILE).read_bytes().splitlines(), source="demo-http")
    report.line(f"HTTP   POST {url}/v1/samples image_samples.jsonl: {answer['accepted']} accepted, "
                f"{answer['rejected']} rejected")

    sdk = SdkClient(url, batch_size=250)
    for line in sdk_lines:
        sdk.log(**json.loads(line))
    sdk.close(timeout=60)
    stats = sdk.stats()
    report.line(f"SDK    genobs.sdk.Client({url!r}).log(...) x {len(sdk_lines)}: "
                f"{stats.get('sent')} sent, {stats.get('dropped')} dropped")

    with gzip.open(data / sample_data.GPU_TELEMETRY_FILE, "rt") as fh:
        readings = [json.loads(line) for line in fh if line.strip()]
    gpu = store_readings(store, readings, source="demo-file")
    report.line(f"GPU    gpu_telemetry.jsonl.gz: {gpu.accepted} readings accepted, {gpu.rejected} rejected")

    report.table("samples per service / model / version / arm",
                 ["service", "model", "version", "variant", "samples", "first (UTC)", "last (UTC)"],
                 read_models.samples_inventory(store))
    gpus, gpu_readings = read_models.gpu_reading_counts(store)
    report.line(f"{read_models.dead_letter_count(store)} records in dead_letter; "
                f"{gpu_readings} GPU readings from {gpus} GPUs")


def _evaluate(store: Store, device: str, report: DemoReport) -> None:
    from genobs.evaluators.runner import run_evaluators

    started = time.perf_counter()
    summary = run_evaluators(store, ["hallucination", "clip"], device=device, since=EVALUATE_FROM,
                             skip_unavailable=True, progress=report.console.is_terminal)
    for run in summary.evaluators:
        if run.skipped:
            report.line(f"[yellow]{run.name}: skipped[/] — {run.skipped}")
        else:
            report.line(f"{run.name} ({run.reference_model}, {summary.device}): {run.scored} scored, "
                        f"{run.errors} errors, {run.not_scored} not scored, {run.samples_per_s:.1f} samples/s")
    rows = read_models.hallucination_by_arm(store, EVALUATE_FROM)
    if rows:
        report.table("hallucination by version / arm (canary day, 2026-11-22)",
                     ["version", "variant", "scored", "mean score", "hallucinated share"], rows)
    clip = read_models.clip_by_version(store)
    if clip:
        report.table("CLIP alignment", ["version", "scored", "mean clip_score"], clip)
    report.line(f"evaluation took {time.perf_counter() - started:.0f} s")


def _drift(store: Store, device: str, report: DemoReport) -> None:
    from genobs.evaluators.drift import DriftError, run_drift

    try:
        result = run_drift(store, reference=DRIFT_REFERENCE, current=DRIFT_CURRENT, service="chat-api", device=device)
    except DriftError as exc:
        report.line(f"[yellow]drift: {exc}[/]")
        return
    report.table("drift, chat-api: 2026-11-16..20 vs 2026-11-20..23",
                 ["feature", "method", "statistic", "p-value", "drifted"], read_models.drift_run_rows(store, result.run_id))


def _canary(store: Store, report: DemoReport) -> None:
    from genobs.slo.canary_report import render_text
    from genobs.slo.canary_run import run_canary

    verdict = run_canary(store, "variant=baseline", "variant=canary", CANARY_FROM, CANARY_UNTIL)
    report.console.print(render_text(verdict), markup=False, highlight=False, soft_wrap=True)


def _incidents(store: Store, report: DemoReport) -> None:
    report.table("worst hours by error rate", ["service", "hour (UTC)", "requests", "error rate", "p95 latency ms"],
                 read_models.worst_hours(store))
    report.table("GPU throttling", ["host", "gpu", "from (UTC)", "to", "max °C", "min SM MHz", "readings"],
                 read_models.gpu_throttle_episodes(store))
