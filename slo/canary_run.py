"""Judging a canary against its baseline on stored data, and keeping every verdict.

``run_canary`` is the one entry point the CLI, the HTTP API, the continuous analyses and
the demo share: read both arms over the window (DuckDB), judge (canary_judge), store the
verdict with its config and window in ``canary_verdicts``.

Continuous analysis (Kayenta's canary lifetime): an analysis judges at every interval on
the data from its start to that moment, keeps each interval's verdict, and stops early on
a critical failure. The CLI runs one in the foreground; the server keeps them in
``canary_analyses`` and a periodic task advances the ones that are due.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from genobs.slo.canary_config import CanaryConfigError, CanarySpec, default_spec, parse_selector
from genobs.slo.canary_data import ArmReader, Window, arms_from, resolve_window
from genobs.slo.canary_judge import (
    MetricResult,
    Verdict,
    classify_continuous,
    classify_proportion,
    decide,
    exit_code,
)
from genobs.store import Store


class CanaryInputError(ValueError):
    """Bad selectors, window or config: the message says which (CLI exit 2, HTTP 400)."""


def judge_window(store: Store, baseline: str | dict[str, str], canary: str | dict[str, str],
                 window: Window, spec: CanarySpec) -> Verdict:
    """Judge without storing (benchmarks, previews)."""
    try:
        base_sel = baseline if isinstance(baseline, dict) else parse_selector(baseline, what="--baseline")
        can_sel = canary if isinstance(canary, dict) else parse_selector(canary, what="--canary")
        arms = arms_from(spec, base_sel, can_sel)
    except CanaryConfigError as exc:
        raise CanaryInputError(str(exc)) from None
    results: list[MetricResult] = []
    with ArmReader(store, arms, window, list(spec.metrics)) as reader:
        overlap = reader.overlap()
        if overlap:
            raise CanaryInputError(f"{overlap} samples match both --baseline {arms.describe('baseline')} and "
                                   f"--canary {arms.describe('canary')}: the arms must not overlap")
        for metric in spec.metrics:
            if metric.kind == "continuous":
                results.append(classify_continuous(metric, reader.continuous(metric), spec))
            else:
                results.append(classify_proportion(metric, reader.counts(metric), spec))
        n_canary, n_baseline = reader.arm_sizes()
    name, score, reason, groups = decide(results, spec)
    more = [r.more_samples_needed for r in results if r.inconclusive and r.more_samples_needed]
    return Verdict(
        verdict=name, score=score, reason=reason, exit_code=exit_code(name, spec), metrics=results,
        groups=groups, baseline=arms.describe("baseline"), canary=arms.describe("canary"),
        window_start=window.start.isoformat(), window_end=window.end.isoformat(),
        samples_canary=n_canary, samples_baseline=n_baseline,
        more_samples_needed=max(more) if more else None,
        config=spec.model_dump(mode="json", by_alias=True),
    )


def run_canary(store: Store, baseline: str | dict[str, str], canary: str | dict[str, str],
               since: str | datetime | None = None, until: str | datetime | None = None,
               config: CanarySpec | None = None, *, save: bool = True, analysis_id: int | None = None,
               interval: int | None = None, now: datetime | None = None) -> Verdict:
    """Judge ``canary`` against ``baseline`` (selectors like ``variant=canary``) over
    [since, until) and store the verdict. ``since`` defaults to ``until - config.window``,
    ``until`` to now. Raises CanaryInputError for bad input."""
    spec = config or default_spec()
    try:
        window = resolve_window(spec, since, until, now=now)
    except (ValueError, OverflowError) as exc:
        raise CanaryInputError(f"window: {exc}") from None
    verdict = judge_window(store, baseline, canary, window, spec)
    verdict.interval = interval
    if save:
        save_verdict(store, verdict, analysis_id=analysis_id)
    return verdict


def save_verdict(store: Store, verdict: Verdict, *, analysis_id: int | None = None) -> int:
    """Insert into canary_verdicts; ``details`` holds the whole verdict JSON, its config, the
    analysis it belongs to and the exit code."""
    service = (verdict.config.get("filter") or {}).get("service")
    details = {**verdict.as_dict(), "analysis_id": analysis_id}
    with store.transaction() as cur:
        row = cur.execute(
            "INSERT INTO canary_verdicts (created_at, service, baseline, canary, window_start, window_end, score, "
            "verdict, details) VALUES (now(), ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, created_at",
            [service, verdict.baseline, verdict.canary, verdict.window_start, verdict.window_end, verdict.score,
             verdict.verdict, json.dumps(details, default=str)],
        ).fetchone()
    verdict.id = int(row[0])
    verdict.created_at = row[1].isoformat() if hasattr(row[1], "isoformat") else str(row[1])
    return verdict.id


def recent_verdicts(store: Store, *, limit: int = 50, analysis_id: int | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE TRY_CAST(json_extract_string(details, '$.analysis_id') AS BIGINT) = ?",
                     [analysis_id]) if analysis_id is not None else ("", [])
    rows = store.fetchall(
        f"SELECT id, created_at, baseline, canary, window_start, window_end, score, verdict, "
        f"json_extract_string(details, '$.reason'), TRY_CAST(json_extract_string(details, '$.exit_code') AS INTEGER), "
        f"TRY_CAST(json_extract_string(details, '$.analysis_id') AS BIGINT), "
        f"TRY_CAST(json_extract_string(details, '$.interval') AS INTEGER) "
        f"FROM canary_verdicts {where} ORDER BY id DESC LIMIT ?", [*params, limit])
    return [{"id": r[0], "created_at": _iso(r[1]), "baseline": r[2], "canary": r[3],
             "window": {"start": _iso(r[4]), "end": _iso(r[5])}, "score": r[6], "verdict": r[7], "reason": r[8],
             "exit_code": r[9], "analysis_id": r[10], "interval": r[11]} for r in rows]


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (None if value is None else str(value))


# --------------------------------------------------------------------------- continuous analysis


@dataclass
class AnalysisOutcome:
    verdicts: list[Verdict]
    stopped_early: bool
    final: Verdict


def stops_early(verdict: Verdict) -> bool:
    """A critical failure ends a canary's analysis at once (Kayenta: the run fails fast)."""
    return any(m.critical_failure for m in verdict.metrics)


def run_continuous(store_or_judge: Store | Callable[[datetime], Verdict], baseline: str, canary: str, *,
                   interval: timedelta, lifetime: timedelta, spec: CanarySpec | None = None,
                   start: datetime | None = None, on_verdict: Callable[[Verdict], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> AnalysisOutcome:
    """Judge every ``interval`` over [start, now) until ``lifetime`` has passed or a critical
    metric fails. ``store_or_judge`` is a Store (judge locally, storing each verdict) or a
    function judging up to a given instant (e.g. through a server's API)."""
    if interval.total_seconds() <= 0 or lifetime.total_seconds() <= 0:
        raise CanaryInputError("--interval and --lifetime must be positive")
    spec = spec or default_spec()
    begin = start or clock()
    rounds = max(1, math.ceil(lifetime.total_seconds() / interval.total_seconds()))
    verdicts: list[Verdict] = []
    for index in range(1, rounds + 1):
        due = begin + interval * index
        wait = (due - clock()).total_seconds()
        if wait > 0:
            sleep(wait)
        until = max(clock(), begin + timedelta(microseconds=1))
        if isinstance(store_or_judge, Store):
            verdict = run_canary(store_or_judge, baseline, canary, since=begin, until=until, config=spec,
                                 interval=index)
        else:
            verdict = store_or_judge(until)
            verdict.interval = index
        verdicts.append(verdict)
        if on_verdict:
            on_verdict(verdict)
        if stops_early(verdict):
            return AnalysisOutcome(verdicts, True, verdict)
    return AnalysisOutcome(verdicts, False, verdicts[-1])


def start_analysis(store: Store, baseline: str, canary: str, *, interval: timedelta, lifetime: timedelta,
                   spec: CanarySpec, start: datetime | None = None) -> int:
    """Register a continuous analysis the server's periodic task will advance."""
    if interval.total_seconds() <= 0 or lifetime.total_seconds() <= 0:
        raise CanaryInputError("interval and lifetime must be positive")
    try:
        parse_selector(baseline, what="baseline")
        parse_selector(canary, what="canary")
    except CanaryConfigError as exc:
        raise CanaryInputError(str(exc)) from None
    begin = start or datetime.now(timezone.utc)
    with store.transaction() as cur:
        row = cur.execute(
            "INSERT INTO canary_analyses (created_at, baseline, canary, started_at, interval_s, lifetime_s, "
            "next_at, state, config) VALUES (now(), ?, ?, ?, ?, ?, ?, 'running', ?) RETURNING id",
            [baseline, canary, begin, interval.total_seconds(), lifetime.total_seconds(), begin + interval,
             json.dumps(spec.model_dump(mode="json", by_alias=True))],
        ).fetchone()
    return int(row[0])


def advance_analyses(store: Store, *, now: datetime | None = None) -> int:
    """Judge every running analysis whose next interval is due; returns how many were judged."""
    now = now or datetime.now(timezone.utc)
    due = store.fetchall(
        "SELECT id, baseline, canary, started_at, interval_s, lifetime_s, next_at, config FROM canary_analyses "
        "WHERE state = 'running' AND next_at <= ? ORDER BY next_at", [now])
    judged = 0
    for aid, baseline, canary, started, interval_s, lifetime_s, next_at, config in due:
        spec = CanarySpec.model_validate(json.loads(config) if isinstance(config, str) else config)
        index = int(round((next_at - started).total_seconds() / interval_s))
        try:
            # The data from the start to this interval's end (due, so not in the future).
            verdict = run_canary(store, baseline, canary, since=started, until=next_at, config=spec,
                                 analysis_id=aid, interval=index)
        except CanaryInputError as exc:
            _finish(store, aid, "error", None, str(exc))
            continue
        judged += 1
        ends = started + timedelta(seconds=lifetime_s)
        if stops_early(verdict):
            _finish(store, aid, "stopped", verdict.verdict, f"critical failure at interval {index}: {verdict.reason}")
        elif next_at >= ends:
            _finish(store, aid, "completed", verdict.verdict, verdict.reason)
        else:
            store.execute("UPDATE canary_analyses SET next_at = ? WHERE id = ?",
                          [next_at + timedelta(seconds=interval_s), aid])
    return judged


def _finish(store: Store, aid: int, state: str, verdict: str | None, reason: str) -> None:
    store.execute("UPDATE canary_analyses SET state = ?, final_verdict = ?, reason = ?, finished_at = now() "
                  "WHERE id = ?", [state, verdict, reason, aid])


def analysis_status(store: Store, aid: int) -> dict[str, Any] | None:
    row = store.fetchone(
        "SELECT id, created_at, baseline, canary, started_at, interval_s, lifetime_s, next_at, state, finished_at, "
        "final_verdict, reason FROM canary_analyses WHERE id = ?", [aid])
    if row is None:
        return None
    keys = ["id", "created_at", "baseline", "canary", "started_at", "interval_s", "lifetime_s", "next_at",
            "state", "finished_at", "final_verdict", "reason"]
    out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in zip(keys, row)}
    out["verdicts"] = list(reversed(recent_verdicts(store, limit=1000, analysis_id=aid)))
    return out
