"""Keeping Python's cyclic garbage collector from pausing the server for long.

A full (generation 2) collection walks every tracked object while holding the GIL. The
server holds over half a million of them once torch, transformers and open_clip are
imported (at start, and by the scheduler's first evaluation run), so each full collection
stops request handling for a large fraction of a second or more: the worst latency
outliers a server would have. ``gc.freeze()`` moves every object alive at that moment to a permanent
generation that collections skip.

``GcFreezer`` freezes once when the server starts (after its imports), then from a
watcher thread: right after any full collection that took longer than ``slow_ms`` (it has
just removed the garbage; what survived is long-lived), and whenever the oldest
generation holds more than ``max_unfrozen`` objects (checked every ``interval_s``). The
second rule catches a bulk import (the scheduler's first run imports hundreds of
thousands of objects) before the collector's next full pass, which would otherwise walk all of them
while requests wait.

The cost: an object frozen while alive that later becomes part of an unreachable cycle,
or a cycle frozen before the collector found it, is never collected. Freezes follow bulk
imports and model loads, a few per process, not requests: the oldest generation of a
serving process stays far below ``max_unfrozen`` between them, because full collections
run whenever it grows by a quarter.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

log = logging.getLogger("genobs.server")

DEFAULT_SLOW_MS = 50.0
DEFAULT_MAX_UNFROZEN = 50_000
DEFAULT_INTERVAL_S = 2.0


class GcFreezer:
    """Freezes long-lived objects so that full collections stay short (see module doc)."""

    def __init__(self, slow_ms: float = DEFAULT_SLOW_MS, max_unfrozen: int = DEFAULT_MAX_UNFROZEN,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.slow_ms = slow_ms
        self.max_unfrozen = max_unfrozen
        self.interval_s = interval_s
        self.freezes = 0
        self._started_at = 0.0
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Freeze what is alive now and watch from a daemon thread."""
        gc.collect()
        self._freeze()
        gc.callbacks.append(self._on_gc)
        self._thread = threading.Thread(target=self._run, name="genobs-gc-freezer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collector: only note what happened, freeze on the watcher thread.
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started_at = time.perf_counter()
        elif (time.perf_counter() - self._started_at) * 1000.0 > self.slow_ms:
            self._wanted.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            slow = self._wanted.wait(self.interval_s)
            if self._stop.is_set():
                return
            self._wanted.clear()
            if slow or len(gc.get_objects(generation=2)) > self.max_unfrozen:
                self._freeze()

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1
        log.debug("gc: froze the long-lived objects (freeze %d)", self.freezes)
