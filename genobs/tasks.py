"""Periodic background tasks: the one kind of background work in genobs (DESIGN §2).

A task is a name, an interval and a function of the store. The scheduler runs each task on
its own daemon thread, so a long evaluation run never delays SLO evaluation or the outbox:
- the first run comes after ``initial_delay_s`` (default: one interval, plus up to
  ``jitter`` of it), later runs every
  interval, each wait stretched or shrunk by up to ``jitter`` of it so that tasks started
  together do not stay in lockstep;
- a run that raises is logged with the task's name and counted in
  ``genobs_task_failures_total{task}``; the loop goes on;
- ``stop()`` ends every loop (a run in progress finishes first);
- ``run_now(name)`` runs one tick on the calling thread (tests, the API), never at the same
  time as the scheduled run of the same task.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from genobs.store import Store

log = logging.getLogger("genobs.tasks")


@dataclass
class PeriodicTask:
    """``run(store)`` every ``interval_s`` seconds (± ``jitter`` × interval)."""

    name: str
    interval_s: float
    run: Callable[[Store], Any]
    jitter: float = 0.1
    initial_delay_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"task {self.name}: interval_s must be positive, got {self.interval_s}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"task {self.name}: jitter must be in [0, 1), got {self.jitter}")

    def run_now(self, store: Store) -> Any:
        """One run on this thread, after any run in progress; exceptions propagate."""
        with self._lock:
            return self.run(store)

    def next_wait(self, rng: random.Random) -> float:
        return self.interval_s * (1.0 + rng.uniform(-self.jitter, self.jitter))


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("genobs_task_runs", "Periodic task runs, by task.", ("task",), registry=registry)
        self.failures = Counter("genobs_task_failures", "Periodic task runs that raised, by task.", ("task",),
                                registry=registry)
        self.duration = Histogram("genobs_task_duration_seconds", "Time one run of a periodic task took.",
                                  ("task",), registry=registry,
                                  buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800))
        self.last_success = Gauge("genobs_task_last_success_timestamp_seconds",
                                  "When a periodic task last finished without error.", ("task",), registry=registry)


class TaskScheduler:
    """Runs PeriodicTasks on daemon threads against one store."""

    def __init__(self, store: Store, tasks: Sequence[PeriodicTask], registry: CollectorRegistry | None = None,
                 *, seed: int | None = None) -> None:
        names = [task.name for task in tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"two periodic tasks share a name: {', '.join(duplicates)}")
        self.store = store
        self.tasks = {task.name: task for task in tasks}
        self.metrics = TaskMetrics(registry or CollectorRegistry())
        for name in self.tasks:  # the series exist (at 0) before the first run
            self.metrics.runs.labels(name)
            self.metrics.failures.labels(name)
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {name: threading.Event() for name in self.tasks}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for task in self.tasks.values():
            thread = threading.Thread(target=self._loop, args=(task,), name=f"genobs-task-{task.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        for wake in self._wake.values():
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("periodic tasks still running at stop: %s", ", ".join(stuck))
        self._threads = []

    def trigger(self, name: str) -> None:
        """Ask the task's thread to run it now instead of at its next tick."""
        self._task(name)
        self._wake[name].set()

    def run_now(self, name: str) -> Any:
        """One run of ``name`` on this thread, counted like a scheduled run; exceptions propagate."""
        task = self._task(name)
        return self._run(task, raise_errors=True)

    def _task(self, name: str) -> PeriodicTask:
        try:
            return self.tasks[name]
        except KeyError:
            raise KeyError(f"no periodic task {name!r} (tasks: {', '.join(sorted(self.tasks)) or 'none'})") from None

    def _run(self, task: PeriodicTask, *, raise_errors: bool) -> Any:
        started = time.perf_counter()
        self.metrics.runs.labels(task.name).inc()
        try:
            result = task.run_now(self.store)
        except Exception:
            self.metrics.failures.labels(task.name).inc()
            if raise_errors:
                raise
            log.exception("periodic task %s failed; it runs again in about %.0f s", task.name, task.interval_s)
            return None
        finally:
            self.metrics.duration.labels(task.name).observe(time.perf_counter() - started)
        self.metrics.last_success.labels(task.name).set(time.time())
        return result

    def _wait(self, task: PeriodicTask, seconds: float) -> bool:
        """Sleep until the next run; True when the scheduler is stopping."""
        wake = self._wake[task.name]
        wake.wait(seconds)
        wake.clear()
        return self._stop.is_set()

    def _loop(self, task: PeriodicTask) -> None:
        # Never sooner than one interval unless asked: a just-started server has no new work yet.
        first = (task.initial_delay_s if task.initial_delay_s is not None
                 else task.interval_s * (1.0 + self._rng.uniform(0.0, task.jitter)))
        if self._wait(task, first):
            return
        while not self._stop.is_set():
            self._run(task, raise_errors=False)
            if self._wait(task, task.next_wait(self._rng)):
                return
