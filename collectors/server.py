"""Running the collector API: ``genobs serve`` (foreground) and an in-process background
server (``start_background``) for ``genobs demo`` and tests.

The server is the one process that owns the database (DESIGN §2). On start it records
``{"url", "pid"}`` next to the database file (genobs.store.server_info_path) so CLI
commands can find it; a clean stop removes the record. It can also poll GPUs itself:
NVML on this machine and the configured DCGM exporter URLs.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Sequence

import uvicorn

from genobs.collectors.gpu_dcgm import DcgmScrapeError, scrape_dcgm
from genobs.collectors.gpu_nvml import NvmlReader, NvmlUnavailable
from genobs.collectors.gc_pauses import GcFreezer
from genobs.collectors.gpu_records import store_readings, validate_readings
from genobs.collectors.http_api import DEFAULT_MAX_BODY_BYTES, ApiSettings, create_app
from genobs.collectors.metrics import ServerMetrics
from genobs.collectors.pipeline import IngestOptions
from genobs.store import Store, resolve_db_path, server_info_path

log = logging.getLogger("genobs.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@dataclass
class ServerSettings:
    """Server configuration (genobs.yaml ``server:`` keys; the token only from the environment)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ingest_token: str | None = field(default_factory=lambda: os.environ.get("GENOBS_INGEST_TOKEN") or None)
    ingest_options: IngestOptions = field(default_factory=IngestOptions)
    max_label_series: int = 2000
    max_concurrent_writes: int = 2
    gpu_poll_interval_s: float = 15.0
    poll_nvml: bool = False
    dcgm_urls: Sequence[str] = ()
    log_level: str = "warning"
    # `genobs serve` only: freeze long-lived objects out of the garbage collector's full
    # collections, which otherwise pause request handling for up to a second (gc_pauses.py).
    freeze_gc: bool = True
    # `genobs serve` only: DuckDB's worker threads (its `threads` setting); None: one less
    # than the CPUs, at least 1 (see duckdb_threads_for).
    duckdb_threads: int | None = None
    # `genobs serve` only: how long a Python thread that wants the GIL waits before the one
    # holding it must hand it over (sys.setswitchinterval; Python's default is 5 ms). The
    # writer thread takes the GIL back after every DuckDB call while a body is being
    # checked in another thread; at 5 ms a group commit of 11 ms of CPU took 30 ms of wall
    # time (22 ms at 1 ms), holding up the answers it carries. None: leave Python's setting.
    switch_interval_s: float | None = 0.001

    def api_settings(self) -> ApiSettings:
        return ApiSettings(
            max_body_bytes=self.max_body_bytes,
            ingest_token=self.ingest_token,
            ingest_options=self.ingest_options,
            max_label_series=self.max_label_series,
            max_concurrent_writes=self.max_concurrent_writes,
        )

    def __repr__(self) -> str:  # never show the token
        token = "set" if self.ingest_token else "unset"
        return (f"ServerSettings(max_body_bytes={self.max_body_bytes}, ingest_token={token}, "
                f"gpu_poll_interval_s={self.gpu_poll_interval_s}, poll_nvml={self.poll_nvml}, "
                f"dcgm_urls={list(self.dcgm_urls)})")


def duckdb_threads_for(setting: int | None, cpus: int | None = None) -> int:
    """DuckDB's thread count in `genobs serve`: ``setting``, else one less than the CPUs (at
    least 1). The server's own work (parsing, checking, the event loop) runs in Python
    threads that take turns on one core (the GIL); DuckDB's default, a thread per CPU,
    competes with them for that core. On a 2-CPU machine this leaves DuckDB one thread,
    which runs a small insert and its commit on the calling thread without waking a
    worker: 10-30% less CPU per sample write there (1 to 2000 rows; bench_http_ingest)."""
    if setting is not None:
        return max(1, int(setting))
    return max(1, (cpus if cpus is not None else os.cpu_count() or 1) - 1)


class ServerStartError(RuntimeError):
    """The server cannot start (port in use, database locked...); the message says why."""


# ----------------------------------------------------------------------------- GPU polling


class GpuPoller:
    """Background thread: NVML and DCGM exporter readings into the store and the gauges."""

    def __init__(self, store: Store, metrics: ServerMetrics, settings: ServerSettings) -> None:
        self.store = store
        self.metrics = metrics
        self.interval = max(0.5, float(settings.gpu_poll_interval_s))
        self.dcgm_urls = list(settings.dcgm_urls)
        self.poll_nvml = settings.poll_nvml
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: NvmlReader | None = None
        self._warned: set[str] = set()

    @property
    def active(self) -> bool:
        return self.poll_nvml or bool(self.dcgm_urls)

    def start(self) -> None:
        if self.poll_nvml:
            try:
                self._nvml = NvmlReader().open()
                log.info("GPU polling: NVML, every %.0f s", self.interval)
            except NvmlUnavailable as exc:
                log.warning("GPU polling via NVML is off: %s", exc)
                self._nvml = None
        if self._nvml is None and not self.dcgm_urls:
            return
        self._thread = threading.Thread(target=self._run, name="genobs-gpu-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._nvml is not None:
            self._nvml.close()

    def poll_once(self) -> int:
        stored = 0
        if self._nvml is not None:
            try:
                stored += self._store(self._nvml.read(), "nvml")
            except Exception as exc:  # noqa: BLE001 - a poll failure must not stop the server
                self._warn("nvml", f"NVML read failed: {exc}")
        for url in self.dcgm_urls:
            try:
                stored += self._store(scrape_dcgm(url).readings, f"dcgm:{url}")
            except DcgmScrapeError as exc:
                self._warn(url, str(exc))
            except Exception as exc:  # noqa: BLE001
                self._warn(url, f"DCGM exporter {url}: {exc}")
        return stored

    def _store(self, readings: list[dict[str, Any]], source: str) -> int:
        result = store_readings(self.store, readings, source=source)
        self.metrics.observe_gpu(validate_readings(readings)[0])
        self.metrics.observe_ingest("gpu", result.accepted, result.rejected)
        return result.accepted

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:  # once per source until it works again
            self._warned.add(key)
            log.warning("%s (will keep trying every %.0f s)", message, self.interval)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)


# ----------------------------------------------------------------------------- uvicorn


class _ThreadedServer(uvicorn.Server):
    """uvicorn.Server that leaves signal handling to the main thread."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    def capture_signals(self):  # type: ignore[no-untyped-def]  # uvicorn >= 0.29
        import contextlib

        return contextlib.nullcontext()


class _ForegroundServer(uvicorn.Server):
    """uvicorn.Server that stops gracefully on SIGINT/SIGTERM and then returns normally
    (uvicorn re-raises the signal after shutdown, which would skip our cleanup)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True   # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerStartError(
                f"port {port} on {host} is in use (another genobs serve?): pick another with --port"
            ) from None
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host
    if host in ("0.0.0.0", ""):
        shown = "127.0.0.1"
    elif host == "::":
        shown = "[::1]"
    elif ":" in host:
        shown = f"[{host}]"
    return f"http://{shown}:{port}"


def write_server_info(db_path: Path, url: str) -> Path:
    info = server_info_path(db_path)
    tmp = info.with_name(info.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, info)
    return info


def remove_server_info(db_path: Path) -> None:
    info = server_info_path(db_path)
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return
    if data.get("pid") == os.getpid():
        try:
            info.unlink()
        except OSError:
            pass


def _uvicorn_config(app: Any, settings: ServerSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
        backlog=2048,
        server_header=False,
    )


@dataclass
class ServerHandle:
    """A server running in a background thread of this process."""

    url: str
    db_path: Path
    store: Store
    _server: uvicorn.Server
    _thread: threading.Thread
    _poller: GpuPoller | None
    _stopped: bool = False

    def stop(self, timeout: float = 15.0) -> None:
        """Finish in-flight requests, stop, forget the recorded URL. The store stays open."""
        if self._stopped:
            return
        self._stopped = True
        if self._poller is not None:
            self._poller.stop()
        self._server.should_exit = True
        self._thread.join(timeout=timeout)
        remove_server_info(self.db_path)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_background(
    store_path: str | os.PathLike[str] | None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    settings: ServerSettings | None = None,
    record_url: bool = True,
    start_timeout: float = 15.0,
) -> ServerHandle:
    """Start the API in a daemon thread on ``host:port`` (0 = a free port); returns at once
    when it accepts connections. ``handle.url``, ``handle.stop()``.

    The store is opened with ``Store.open`` (the process's shared instance) and is left
    open on stop: the caller owns it.
    """
    settings = settings or ServerSettings(poll_nvml=False)
    db_path = resolve_db_path(store_path)
    sock = bind_socket(host, port)
    url = url_of(sock, host)
    try:
        store = Store.open(db_path)
    except BaseException:
        sock.close()
        raise
    metrics = ServerMetrics(settings.max_label_series)
    app = create_app(store, settings.api_settings(), metrics)
    server = _ThreadedServer(_uvicorn_config(app, settings))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"genobs-api-{url}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise ServerStartError(f"the API server on {url} stopped while starting (see the log)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise ServerStartError(f"the API server on {url} did not start within {start_timeout:.0f} s")
        time.sleep(0.01)
    poller = GpuPoller(store, metrics, settings)
    if poller.active:
        poller.start()
    if record_url:
        write_server_info(db_path, url)
    return ServerHandle(url=url, db_path=db_path, store=store, _server=server, _thread=thread, _poller=poller)


def serve(
    db: str | os.PathLike[str] | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    settings: ServerSettings | None = None,
    background: Sequence[Callable[[threading.Event], None]] = (),
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (uvicorn handles them).

    ``background`` callables run in daemon threads with a stop event (the scheduler of
    evaluators/SLOs can be wired here); they are asked to stop when the server stops.
    """
    settings = settings or ServerSettings()
    db_path = resolve_db_path(db)
    sock = bind_socket(host, port)   # first: a busy port must not create or lock a database
    url = url_of(sock, host)
    try:
        store = Store.open(db_path)   # DatabaseLockedError names the holder
    except BaseException:
        sock.close()
        raise
    try:
        store.execute(f"SET threads = {duckdb_threads_for(settings.duckdb_threads)}")
    except Exception as exc:  # noqa: BLE001 - a tuning knob must not keep the server down
        log.warning("could not set DuckDB's threads: %s", exc)
    metrics = ServerMetrics(settings.max_label_series)
    app = create_app(store, settings.api_settings(), metrics)
    poller = GpuPoller(store, metrics, settings)
    stop = threading.Event()
    threads = [threading.Thread(target=task, args=(stop,), daemon=True, name=f"genobs-{i}")
               for i, task in enumerate(background)]
    freezer = GcFreezer() if settings.freeze_gc else None
    switch_interval = sys.getswitchinterval()
    write_server_info(db_path, url)
    try:
        if settings.switch_interval_s:
            sys.setswitchinterval(settings.switch_interval_s)
        if freezer is not None:
            freezer.start()     # after the imports above, before the first request
        if poller.active:
            poller.start()
        for thread in threads:
            thread.start()
        if on_started is not None:
            on_started(url)
        _ForegroundServer(_uvicorn_config(app, settings)).run(sockets=[sock])
    finally:
        stop.set()
        sys.setswitchinterval(switch_interval)
        if freezer is not None:
            freezer.stop()
        poller.stop()
        for thread in threads:
            thread.join(timeout=10)
        remove_server_info(db_path)
        sock.close()
        store.close()


# ----------------------------------------------------------------------------- CLI entry


def settings_from_config(config: Any = None, **overrides: Any) -> ServerSettings:
    """ServerSettings from a genobs.config.GenobsConfig (``server:`` and ``ingest:``
    sections; None = defaults), then CLI overrides (None = not given). The ingest token
    comes from the environment variable ``server.ingest_token_env`` names."""
    from genobs.collectors.pipeline import ModelPrice

    settings = ServerSettings()
    server = getattr(config, "server", None)
    if server is not None:
        for key in ("max_body_bytes", "max_label_series", "gpu_poll_interval_s", "poll_nvml", "dcgm_urls",
                    "duckdb_threads"):
            value = getattr(server, key, None)
            if value is not None:
                setattr(settings, key, value)
        token_env = getattr(server, "ingest_token_env", None) or "GENOBS_INGEST_TOKEN"
        settings.ingest_token = os.environ.get(token_env) or None
    ingest = getattr(config, "ingest", None)
    if ingest is not None:
        prices = {
            model: ModelPrice(price.input_per_mtok, price.output_per_mtok)
            for model, price in (getattr(ingest, "prices", None) or {}).items()
        }
        settings.ingest_options = IngestOptions(redact=bool(getattr(ingest, "redact", True)), prices=prices)
    for key, value in overrides.items():
        if value is not None and value != () and value != []:
            setattr(settings, key, value)
    return settings


def run_serve_command(
    db: str | os.PathLike[str] | None,
    host: str,
    port: int,
    settings: ServerSettings,
    echo: Callable[[str], None] = print,
    background: Sequence[Callable[[threading.Event], None]] = (),
) -> int:
    """``genobs serve``: returns the exit code (0 after a clean stop, 2 when it cannot start)."""
    from genobs import client as server_client
    from genobs.store import StoreError

    db_path = resolve_db_path(db)
    running = server_client.running_server(db_path)
    if running:
        echo(f"error: a genobs server already serves {db_path} at {running}")
        return 2
    if settings.ingest_token:
        echo("ingest authentication: on (GENOBS_INGEST_TOKEN)")

    def started(url: str) -> None:
        echo(f"genobs collector API on {url} (database {db_path}); docs at {url}/docs; Ctrl-C to stop")

    try:
        serve(db_path, host, port, settings=settings, background=background, on_started=started)
    except (ServerStartError, StoreError) as exc:
        echo(f"error: {exc}")
        return 2
    return 0
