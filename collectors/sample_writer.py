"""Group commit for the sample requests of the HTTP API.

Each request is parsed and checked on its own (collectors/fast_validation.py, in the
request's coroutine or a worker thread), then handed to the writer. The writer runs one
write at a time in a worker thread; the requests that arrive while it runs wait and go
together in the next write (up to ``max_records`` records), so under load each DuckDB
commit carries many requests, and an idle server writes a request at once. Consecutive
requests checked in Python share one transaction; one that takes the vectorised path
(too big, or something the Python check declines) is written on its own, and a failed
write answers only its own requests. Every request gets the answer it would have got
alone (collectors.pipeline.ingest_checked_batches), and only after its records are
committed.

After the answers are out, the model-call metrics are updated from the rows just written
(the Python path hands them back), or, for inputs that took the vectorised path, read
back from the store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Sequence

import anyio

from genobs.collectors.fast_validation import CheckedBatch
from genobs.collectors.metrics import SAMPLE_METRIC_COLUMNS, ServerMetrics
from genobs.collectors.pipeline import IngestOptions, IngestResult, ingest_checked_batches
from genobs.store import Store

log = logging.getLogger("genobs.server")

_metric_columns = itemgetter(*SAMPLE_METRIC_COLUMNS)


@dataclass
class PreparedInput:
    """One request's records: ``lines`` (JSON object texts, numbered from 1), what the Python
    check made of them (None: the vectorised path writes them), where they came from."""

    lines: Sequence[bytes]
    checked: CheckedBatch | None
    source: str


@dataclass
class _Pending:
    item: PreparedInput
    future: "asyncio.Future[IngestResult]"


class SampleWriter:
    """Writes prepared sample requests in groups, one DuckDB transaction per group."""

    def __init__(
        self,
        store: Store,
        options: IngestOptions,
        metrics: ServerMetrics,
        read_back: Callable[[Sequence[Sequence[bytes]]], None],
        max_records: int = 2000,
    ) -> None:
        self.store = store
        self.options = options
        self.metrics = metrics
        self.read_back = read_back       # metrics of inputs the vectorised path wrote (blocking)
        self.max_records = max_records
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._background: set[asyncio.Task[None]] = set()

    async def write(self, item: PreparedInput) -> IngestResult:
        """Answers once ``item``'s records are committed (or raises what the write raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._queue.append(_Pending(item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    def _next_group(self) -> list[_Pending]:
        group = [self._queue.pop(0)]
        size = len(group[0].item.lines)
        while self._queue and size + len(self._queue[0].item.lines) <= self.max_records:
            size += len(self._queue[0].item.lines)
            group.append(self._queue.pop(0))
        return group

    async def _drain(self) -> None:
        while self._queue:
            group = self._next_group()
            try:
                outcomes, rows = await anyio.to_thread.run_sync(self._write_group, group, limiter=self._limiter)
            except Exception as exc:  # noqa: BLE001 - each waiting request answers with it
                outcomes, rows = [exc] * len(group), []
            except BaseException:     # cancelled (the server stops): so are the waiting requests
                for pending in group:
                    pending.future.cancel()
                raise
            self._answer(group, outcomes)
            # after the answers: the metrics of the group
            self._observe(rows)
            by_sql = [p.item.lines for p, r in zip(group, outcomes)
                      if p.item.checked is None and isinstance(r, IngestResult) and r.accepted]
            if by_sql:
                task = asyncio.get_running_loop().create_task(self._read_back(by_sql))
                self._background.add(task)             # keep a reference until it is done
                task.add_done_callback(self._background.discard)

    @staticmethod
    def _answer(group: list[_Pending], outcomes: Sequence[IngestResult | Exception]) -> None:
        for pending, outcome in zip(group, outcomes):
            if pending.future.done():          # the request was cancelled (client gone)
                continue
            if isinstance(outcome, IngestResult):
                pending.future.set_result(outcome)
            else:
                pending.future.set_exception(outcome)

    def _write_group(self, group: list[_Pending]) -> tuple[list[IngestResult | Exception], list[dict[str, Any]]]:
        """Runs of inputs checked in Python are written together; each of the others alone.
        A failure answers the requests of its own write only."""
        outcomes: list[IngestResult | Exception] = []
        rows: list[dict[str, Any]] = []
        start = 0
        while start < len(group):
            end = start + 1
            if group[start].item.checked is not None:
                while end < len(group) and group[end].item.checked is not None:
                    end += 1
            run = group[start:end]
            written: list[dict[str, Any]] = []
            try:
                outcomes.extend(ingest_checked_batches(
                    self.store, [(p.item.lines, p.item.checked, p.item.source) for p in run],
                    options=self.options, stored=written,
                ))
                rows.extend(written)
            except Exception as exc:  # noqa: BLE001 - answered to the requests of this run
                log.exception("writing %d sample request(s) failed", len(run))
                outcomes.extend([exc] * len(run))
            start = end
        return outcomes, rows

    def _observe(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            self.metrics.observe_samples(map(_metric_columns, rows))
        except Exception:  # noqa: BLE001 - metrics must never break ingest
            log.exception("could not update sample metrics")

    async def _read_back(self, inputs: list[Sequence[bytes]]) -> None:
        try:
            await anyio.to_thread.run_sync(self.read_back, inputs)
        except Exception:  # noqa: BLE001 - metrics must never break ingest
            log.exception("could not update sample metrics")
