"""Error ratios, budgets and burn rates from the rollups, at one instant.

A window of length ``w`` at time ``at`` covers the minute buckets in
``(floor(at) - w, floor(at)]``: the current, partial minute counts, so a full outage shows
in the 5-minute burn rate within the minute it starts.

burn rate = error ratio / error budget (1 - objective); a burn rate of 1 spends exactly the
budget over the SLO window. No events in a window: error ratio 0 (nothing was bad).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from genobs.slo.spec import Slo
from genobs.slo.timeutil import as_utc, format_duration
from genobs.store import Store

# The windows every SLO reports (besides its own rolling window, named "window").
REPORT_WINDOWS: tuple[timedelta, ...] = (
    timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2),
    timedelta(hours=6), timedelta(days=1), timedelta(days=3),
)


def floor_minute(at: datetime) -> datetime:
    at = as_utc(at)
    return at.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class WindowStats:
    good: int
    total: int
    error_ratio: float
    burn_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {"good": self.good, "total": self.total, "error_ratio": self.error_ratio, "burn_rate": self.burn_rate}


@dataclass
class SloStatus:
    slo: Slo
    at: datetime
    window: WindowStats
    windows: dict[timedelta, WindowStats] = field(default_factory=dict)

    @property
    def budget_remaining(self) -> float:
        """Share of the window's error budget left (negative when overspent)."""
        return 1.0 - self.window.burn_rate

    def burn(self, span: timedelta) -> WindowStats:
        return self.windows[span]

    def as_dict(self) -> dict[str, Any]:
        spec = self.slo.spec
        return {
            "slo": spec.name,
            "service": spec.service,
            "sli": spec.sli.kind,
            "objective": spec.objective,
            "window": spec.window,
            "at": self.at.isoformat(),
            "good": self.window.good,
            "total": self.window.total,
            "error_ratio": self.window.error_ratio,
            "budget_remaining": self.budget_remaining,
            "burn_rates": {format_duration(w): self.windows[w].burn_rate for w in REPORT_WINDOWS}
            | {"window": self.window.burn_rate},
            "events": {format_duration(w): self.windows[w].total for w in REPORT_WINDOWS},
        }


def _stats(good: Any, total: Any, budget: float) -> WindowStats:
    good_n, total_n = int(good or 0), int(total or 0)
    ratio = (total_n - good_n) / total_n if total_n else 0.0
    return WindowStats(good_n, total_n, ratio, ratio / budget if budget > 0 else 0.0)


def evaluate(store: Store, slos: Sequence[Slo], at: datetime) -> list[SloStatus]:
    """Each SLO's windows at ``at``, from the rollups (one query for all)."""
    if not slos:
        return []
    end = floor_minute(at)
    spans: set[timedelta] = set(REPORT_WINDOWS)
    for slo in slos:
        spans.add(slo.spec.window_span)
        for window in slo.catalog.windows:
            spans.update((window.short, window.long))
    ordered = sorted(spans)
    columns: list[str] = []
    params: list[Any] = []
    for index, span in enumerate(ordered):
        columns.append(f"sum(good) FILTER (WHERE minute > ?) AS g{index}, sum(total) FILTER (WHERE minute > ?) AS t{index}")
        params += [end - span, end - span]
    keys = sorted({slo.series for slo in slos})
    rows = store.fetchall(
        f"SELECT series, {', '.join(columns)} FROM slo_rollups WHERE series IN (SELECT unnest(?::VARCHAR[])) "
        "AND minute > ? AND minute <= ? GROUP BY series",
        [*params, keys, end - ordered[-1], end],
    )
    by_series = {row[0]: row[1:] for row in rows}
    statuses: list[SloStatus] = []
    for slo in slos:
        values = by_series.get(slo.series, (None,) * (2 * len(ordered)))
        budget = slo.spec.error_budget
        stats = {span: _stats(values[2 * i], values[2 * i + 1], budget) for i, span in enumerate(ordered)}
        statuses.append(SloStatus(slo=slo, at=as_utc(at), window=stats[slo.spec.window_span], windows=stats))
    return statuses


@dataclass(frozen=True)
class Condition:
    """Whether one severity's alert condition holds, and why."""

    severity: str
    active: bool
    reasons: tuple[str, ...]
    burn_long: float
    burn_short: float
    factor: float


def conditions(status: SloStatus) -> dict[str, Condition]:
    """page / ticket: active when any of that severity's window pairs burns above its factor
    over both windows, with enough events (min_events in the long window)."""
    alerting = status.slo.alerting
    out: dict[str, Condition] = {}
    for severity in ("page", "ticket"):
        if not getattr(alerting, severity):
            continue
        reasons: list[str] = []
        best: tuple[float, float, float] | None = None
        for window in status.slo.catalog.windows:
            if window.severity != severity:
                continue
            long, short = status.windows[window.long], status.windows[window.short]
            if best is None or long.burn_rate / window.factor > best[0] / best[2]:
                best = (long.burn_rate, short.burn_rate, window.factor)
            if (long.burn_rate > window.factor and short.burn_rate > window.factor
                    and long.total >= alerting.min_events and short.total >= alerting.min_short_events):
                reasons.append(
                    f"burn rate {long.burn_rate:.2f} over {format_duration(window.long)} and "
                    f"{short.burn_rate:.2f} over {format_duration(window.short)} > {window.factor:.4g}"
                )
        assert best is not None
        out[severity] = Condition(severity, bool(reasons), tuple(reasons), best[0], best[1], best[2])
    return out


def statuses_by_name(statuses: Iterable[SloStatus]) -> dict[str, SloStatus]:
    return {s.slo.name: s for s in statuses}
