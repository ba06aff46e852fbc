"""The platform process (DESIGN §2): one store, one HTTP app composed from routers, one
Prometheus registry, the periodic tasks, and the slot for the Streamlit UI.

`genobs serve`, `genobs demo` and the tests all start the platform here:
- ``start_platform(...)`` runs it in the background of this process (API on a daemon
  thread, tasks on theirs) and returns a handle with ``url``, ``store``, ``scheduler``,
  ``stop()``;
- ``serve(...)`` runs it in the foreground until SIGINT/SIGTERM: uvicorn on the main thread,
  or, when a UI runner is given, uvicorn on a daemon thread and the UI on the main thread
  (Streamlit needs the main thread for its signal handling).

Domain packages take part through ``Contribution``s (routers, periodic tasks, metric
collectors) built from a ``RuntimeContext``; which packages those are is decided in
genobs/wiring.py, not here. The server records ``{"url", "ui_url", "pid"}`` next to the
database file (genobs.store.server_info_path) so that CLI commands can find it.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, Awaitable, Callable, Sequence

import uvicorn
from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from genobs.config import GenobsConfig
from genobs.gc_pauses import GcFreezer
from genobs.http_app import bearer_token_dependency, create_app, platform_router
from genobs.store import Store, resolve_db_path, server_info_path
from genobs.tasks import PeriodicTask, TaskScheduler

log = logging.getLogger("genobs.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class ServerStartError(RuntimeError):
    """The server cannot start (port in use, database locked...); the message says why."""


@dataclass
class ServerSettings:
    """How this process runs the platform: genobs.yaml's ``server:`` section plus command-line
    overrides, resolved (the ingest token only from the environment)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ingest_token: str | None = field(default_factory=lambda: os.environ.get("GENOBS_INGEST_TOKEN") or None)
    # collectors.pipeline.IngestOptions; None: built from the config's ``ingest:`` section.
    ingest_options: Any = None
    max_label_series: int = 2000
    max_concurrent_writes: int = 2
    gpu_poll_interval_s: float = 15.0
    poll_nvml: bool = False
    dcgm_urls: Sequence[str] = ()
    log_level: str = "warning"
    # Periodic tasks (evaluation, drift, SLOs, outbox, GPU polling). Off only for tests and
    # benchmarks that measure the API alone.
    run_scheduler: bool = True
    # `genobs serve` only: freeze long-lived objects out of the garbage collector's full
    # collections, which otherwise pause request handling for up to a second (gc_pauses.py).
    freeze_gc: bool = True
    # `genobs serve` only: DuckDB's worker threads; None: one less than the CPUs, at least 1
    # (see duckdb_threads_for).
    duckdb_threads: int | None = None
    # `genobs serve` only: how long a thread that wants the GIL waits before the holder must
    # hand it over (sys.setswitchinterval; Python's default is 5 ms). The writer thread
    # takes the GIL back after every DuckDB call while a body is checked in another thread;
    # a shorter interval lets a group commit finish sooner. None: leave Python's setting.
    switch_interval_s: float | None = 0.001

    def __repr__(self) -> str:  # never show the token
        token = "set" if self.ingest_token else "unset"
        return (f"ServerSettings(max_body_bytes={self.max_body_bytes}, ingest_token={token}, "
                f"gpu_poll_interval_s={self.gpu_poll_interval_s}, poll_nvml={self.poll_nvml}, "
                f"dcgm_urls={list(self.dcgm_urls)}, run_scheduler={self.run_scheduler})")


def settings_from_config(config: GenobsConfig | None = None, **overrides: Any) -> ServerSettings:
    """ServerSettings from genobs.yaml's ``server:`` section, then command-line overrides
    (None = not given). The ingest token comes from the variable ``server.ingest_token_env`` names."""
    settings = ServerSettings()
    if config is not None:
        server = config.server
        settings.max_body_bytes = server.max_body_bytes
        settings.max_label_series = server.max_label_series
        settings.gpu_poll_interval_s = server.gpu_poll_interval_s
        settings.poll_nvml = server.poll_nvml
        settings.dcgm_urls = list(server.dcgm_urls)
        settings.duckdb_threads = server.duckdb_threads
        settings.ingest_token = os.environ.get(server.ingest_token_env or "GENOBS_INGEST_TOKEN") or None
    for key, value in overrides.items():
        if value is not None and value != () and value != []:
            setattr(settings, key, value)
    return settings


def duckdb_threads_for(setting: int | None, cpus: int | None = None) -> int:
    """DuckDB's thread count in `genobs serve`: ``setting``, else one less than the CPUs (at
    least 1). The server's own work (parsing, checking, the event loop) runs in Python
    threads that take turns on one core (the GIL); DuckDB's default, a thread per CPU,
    competes with them for that core. With one thread left to it on a 2-CPU machine,
    DuckDB runs a small insert and its commit on the calling thread without waking a worker."""
    if setting is not None:
        return max(1, int(setting))
    return max(1, (cpus if cpus is not None else os.cpu_count() or 1) - 1)


# ----------------------------------------------------------------------------- contributions


@dataclass
class RuntimeContext:
    """What a domain package may use to build its contribution."""

    store: Store
    config: GenobsConfig
    settings: ServerSettings
    registry: CollectorRegistry
    require_token: Callable[[Request], Awaitable[None]]
    api_url: str | None = None
    ui_url: str | None = None


@dataclass
class Contribution:
    """What a domain package adds to the platform."""

    routers: list[APIRouter] = field(default_factory=list)
    tasks: list[PeriodicTask] = field(default_factory=list)
    collectors: list[Collector] = field(default_factory=list)
    # Called once when the platform stops (close an NVML handle, flush a buffer...).
    on_stop: list[Callable[[], None]] = field(default_factory=list)


Plugin = Callable[[RuntimeContext], Contribution]
UiRunner = Callable[[RuntimeContext], None]


# ----------------------------------------------------------------------------- sockets and the URL record


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


def write_server_info(db_path: Path, url: str, ui_url: str | None = None) -> Path:
    info = server_info_path(db_path)
    tmp = info.with_name(info.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "ui_url": ui_url, "pid": os.getpid()}))
    os.replace(tmp, info)
    return info


def remove_server_info(db_path: Path) -> None:
    info = server_info_path(db_path)
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return
    if data.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            info.unlink()


# ----------------------------------------------------------------------------- uvicorn


class _ThreadedServer(uvicorn.Server):
    """uvicorn.Server that leaves signal handling to the main thread."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    def capture_signals(self):  # type: ignore[no-untyped-def]  # uvicorn >= 0.29
        return contextlib.nullcontext()


class _ForegroundServer(uvicorn.Server):
    """uvicorn.Server that stops gracefully on SIGINT/SIGTERM and then returns normally
    (uvicorn re-raises the signal after shutdown, which would skip our cleanup)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True   # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True


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


# ----------------------------------------------------------------------------- the platform


class Platform:
    """Store, registry, app and scheduler of one process, built from the plugins."""

    def __init__(self, store: Store, config: GenobsConfig, settings: ServerSettings, plugins: Sequence[Plugin],
                 *, api_url: str | None = None, ui_url: str | None = None) -> None:
        self.store = store
        self.config = config
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=True)
        require_token = bearer_token_dependency(settings.ingest_token)
        self.context = RuntimeContext(store=store, config=config, settings=settings, registry=self.registry,
                                      require_token=require_token, api_url=api_url, ui_url=ui_url)
        contributions = [plugin(self.context) for plugin in plugins]
        for contribution in contributions:
            for collector in contribution.collectors:
                self.registry.register(collector)
        tasks = [task for c in contributions for task in c.tasks] if settings.run_scheduler else []
        self.scheduler = TaskScheduler(store, tasks, self.registry)
        routers = [platform_router(store, self.registry, self.scheduler, require_token)]
        routers += [router for c in contributions for router in c.routers]
        self.app = create_app(
            store, routers, self.registry, title="genobs API",
            description=("Ingest model-call samples, GPU telemetry and OpenTelemetry GenAI traces; read SLOs, "
                         "alerts and canary verdicts. Ingest answers only after the records are committed. "
                         "When GENOBS_INGEST_TOKEN is set on the server, POST endpoints need "
                         "`Authorization: Bearer <token>`."))
        self._on_stop = [hook for c in contributions for hook in c.on_stop]

    def close(self) -> None:
        for hook in self._on_stop:
            try:
                hook()
            except Exception:  # noqa: BLE001 - stopping must go on
                log.exception("error while stopping a platform part")


def _open(db_path: Path, sock: socket.socket) -> Store:
    try:
        return Store.open(db_path)   # DatabaseLockedError names the holder
    except BaseException:
        sock.close()
        raise


@dataclass
class PlatformHandle:
    """A platform running in the background of this process."""

    url: str
    db_path: Path
    store: Store
    platform: Platform
    _server: uvicorn.Server
    _thread: threading.Thread
    _record_url: bool
    _stopped: bool = False

    @property
    def scheduler(self) -> TaskScheduler:
        return self.platform.scheduler

    def stop(self, timeout: float = 15.0) -> None:
        """Finish in-flight requests and task runs, stop, forget the recorded URL. The store stays open."""
        if self._stopped:
            return
        self._stopped = True
        self.platform.scheduler.stop(timeout)
        self._server.should_exit = True
        self._thread.join(timeout=timeout)
        self.platform.close()
        if self._record_url:
            remove_server_info(self.db_path)

    def __enter__(self) -> "PlatformHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_api_thread(platform: Platform, sock: socket.socket, url: str, start_timeout: float) -> tuple[
        uvicorn.Server, threading.Thread]:
    server = _ThreadedServer(_uvicorn_config(platform.app, platform.settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"genobs-api-{url}", daemon=True)
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
    return server, thread


def start_platform(
    db: str | os.PathLike[str] | None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    settings: ServerSettings | None = None,
    config: GenobsConfig | None = None,
    plugins: Sequence[Plugin] | None = None,
    record_url: bool = True,
    start_timeout: float = 15.0,
) -> PlatformHandle:
    """Start the platform in the background of this process on ``host:port`` (0 = a free
    port); returns when the API accepts connections. The store is the process's shared
    instance (``Store.open``) and stays open on stop: the caller owns it."""
    from genobs.wiring import default_plugins

    settings = settings or ServerSettings()
    config = config or GenobsConfig()
    db_path = resolve_db_path(db)
    sock = bind_socket(host, port)   # first: a busy port must not create or lock a database
    url = url_of(sock, host)
    store = _open(db_path, sock)
    platform = Platform(store, config, settings, default_plugins() if plugins is None else plugins, api_url=url)
    server, thread = _start_api_thread(platform, sock, url, start_timeout)
    platform.scheduler.start()
    if record_url:
        write_server_info(db_path, url)
    return PlatformHandle(url=url, db_path=db_path, store=store, platform=platform, _server=server,
                          _thread=thread, _record_url=record_url)


def serve(
    db: str | os.PathLike[str] | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    settings: ServerSettings | None = None,
    config: GenobsConfig | None = None,
    plugins: Sequence[Plugin] | None = None,
    ui: UiRunner | None = None,
    ui_url: str | None = None,
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM. With ``ui``, the API runs on a daemon
    thread and ``ui(context)`` on this (the main) thread; the platform stops when it returns."""
    from genobs.wiring import default_plugins

    settings = settings or ServerSettings()
    config = config or GenobsConfig()
    db_path = resolve_db_path(db)
    sock = bind_socket(host, port)
    url = url_of(sock, host)
    store = _open(db_path, sock)
    try:
        store.execute(f"SET threads = {duckdb_threads_for(settings.duckdb_threads)}")
    except Exception as exc:  # noqa: BLE001 - a tuning knob must not keep the server down
        log.warning("could not set DuckDB's threads: %s", exc)
    platform = Platform(store, config, settings, default_plugins() if plugins is None else plugins,
                        api_url=url, ui_url=ui_url)
    freezer = GcFreezer() if settings.freeze_gc else None
    switch_interval = sys.getswitchinterval()
    write_server_info(db_path, url, ui_url)
    api_thread: threading.Thread | None = None
    server: uvicorn.Server | None = None
    try:
        if settings.switch_interval_s:
            sys.setswitchinterval(settings.switch_interval_s)
        if freezer is not None:
            freezer.start()     # after the imports above, before the first request
        platform.scheduler.start()
        if ui is None:
            if on_started is not None:
                on_started(url)
            server = _ForegroundServer(_uvicorn_config(platform.app, settings))
            server.run(sockets=[sock])
        else:
            server, api_thread = _start_api_thread(platform, sock, url, 15.0)
            if on_started is not None:
                on_started(url)
            ui(platform.context)
    finally:
        platform.scheduler.stop()
        if api_thread is not None and server is not None:
            server.should_exit = True
            api_thread.join(timeout=15)
        sys.setswitchinterval(switch_interval)
        if freezer is not None:
            freezer.stop()
        platform.close()
        remove_server_info(db_path)
        sock.close()
        store.close()
