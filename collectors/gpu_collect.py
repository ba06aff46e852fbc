"""``genobs collect-gpu``: read GPU telemetry and store it, once or every N seconds.

Sources: NVML on this machine (the default), DCGM exporter URLs (``--dcgm-url``, any
number), or an ``nvidia-smi --format=csv`` file (``--nvidia-smi-csv``, read once).
Destination: the genobs server (``--server URL``, or the server recorded next to the
database), else the database file itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from genobs.collectors.gpu_dcgm import DcgmScrapeError, scrape_dcgm
from genobs.collectors.gpu_nvml import NvmlReader, NvmlUnavailable
from genobs.collectors.gpu_records import store_readings
from genobs.collectors.gpu_smi import SmiCsvError, read_smi_csv
from genobs import client as server_client
from genobs.store import Store

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_PARTIAL = 3


class GpuSink(Protocol):
    def write(self, readings: list[dict[str, Any]], source: str) -> dict[str, Any]: ...


@dataclass
class StoreSink:
    store: Store

    def write(self, readings: list[dict[str, Any]], source: str) -> dict[str, Any]:
        return store_readings(self.store, readings, source=source).as_dict()


@dataclass
class ServerSink:
    url: str
    token: str | None = None

    def write(self, readings: list[dict[str, Any]], source: str) -> dict[str, Any]:
        return server_client.post_gpu_readings(self.url, readings, self.token, source=source)


@dataclass
class CollectOptions:
    interval: float = 5.0
    dcgm_urls: Sequence[str] = ()
    smi_csv: Path | None = None
    host: str | None = None
    optional: bool = False
    count: int = 0                      # polls to do; 0 = until stopped
    stop: threading.Event = field(default_factory=threading.Event)


def collect(sink: GpuSink, options: CollectOptions, echo: Callable[[str], None] = print) -> int:
    """Run the collection; returns the exit code (0 ok, 2 no source, 3 some rejected)."""
    if options.smi_csv is not None:
        try:
            parsed = read_smi_csv(options.smi_csv, host=options.host)
        except SmiCsvError as exc:
            echo(f"error: {exc}")
            return EXIT_INPUT
        for line, message in parsed.errors:
            echo(f"{options.smi_csv}: line {line}: {message}")
        answer = sink.write(parsed.readings, f"nvidia-smi:{options.smi_csv.name}") if parsed.readings else {
            "accepted": 0, "rejected": 0, "errors": []}
        _report(echo, str(options.smi_csv), answer)
        if not parsed.readings and not parsed.errors:
            echo(f"{options.smi_csv}: no readings")
            return EXIT_INPUT
        bad = answer.get("rejected", 0) + len(parsed.errors)
        if bad and not answer.get("accepted"):
            return EXIT_INPUT
        return EXIT_PARTIAL if bad else EXIT_OK

    nvml: NvmlReader | None = None
    if not options.dcgm_urls:
        try:
            nvml = NvmlReader(host=options.host).open()
        except NvmlUnavailable as exc:
            echo(_no_gpu_message(exc, options.optional))
            return EXIT_OK if options.optional else EXIT_INPUT
    polls = 0
    failures = 0
    try:
        while not options.stop.is_set():
            started = time.monotonic()
            if nvml is not None:
                try:
                    _report(echo, "nvml", sink.write(nvml.read(), "nvml"))
                except Exception as exc:  # noqa: BLE001 - keep polling
                    failures += 1
                    echo(f"nvml: {exc}")
            for url in options.dcgm_urls:
                try:
                    readings = scrape_dcgm(url).readings
                    _report(echo, url, sink.write(readings, f"dcgm:{url}"))
                except (DcgmScrapeError, server_client.ServerRequestError) as exc:
                    failures += 1
                    echo(f"error: {exc}")
            polls += 1
            if options.count and polls >= options.count:
                break
            options.stop.wait(max(0.0, options.interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        if nvml is not None:
            nvml.close()
    if failures and options.count and failures >= polls * max(1, len(options.dcgm_urls) + (nvml is not None)):
        return EXIT_INPUT
    return EXIT_OK


def _no_gpu_message(exc: Exception, optional: bool) -> str:
    hint = ("; nothing to collect here (--optional)" if optional
            else "; use --dcgm-url or --nvidia-smi-csv, or --optional to exit 0 on machines without GPUs")
    return f"{exc}{hint}"


def _report(echo: Callable[[str], None], source: str, answer: dict[str, Any]) -> None:
    rejected = answer.get("rejected", 0)
    line = f"{source}: stored {answer.get('accepted', 0)} GPU reading(s)"
    if rejected:
        line += f", rejected {rejected} (see dead_letter)"
        for error in (answer.get("errors") or [])[:5]:
            line += f"\n  reading {error.get('line')}: {error.get('message')}"
    echo(line)


def run_collect_gpu_command(
    db: str | Path | None,
    server: str | None,
    options: CollectOptions,
    echo: Callable[[str], None] = print,
) -> int:
    """``genobs collect-gpu``: pick the destination (server or file) and collect."""
    from genobs.store import StoreError, resolve_db_path

    if options.smi_csv is None and not options.dcgm_urls:
        try:  # no GPU here: say so before touching the database
            NvmlReader(host=options.host).open().close()
        except NvmlUnavailable as exc:
            echo(_no_gpu_message(exc, options.optional))
            return EXIT_OK if options.optional else EXIT_INPUT
    token = server_client.ingest_token()
    url = server or server_client.running_server(resolve_db_path(db))
    if url:
        if server and not server_client.healthy(server):
            echo(f"error: no genobs server answers at {server}")
            return EXIT_INPUT
        return collect(ServerSink(url, token), options, echo)
    try:
        store = Store.open(db)
    except StoreError as exc:
        echo(f"error: {exc}")
        return EXIT_INPUT
    try:
        return collect(StoreSink(store), options, echo)
    finally:
        store.close()
