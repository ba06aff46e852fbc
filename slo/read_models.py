"""What the dashboards read about SLOs: one parameterized query each over the rollups and
the alert tables, returning plain rows (DESIGN §8: SLOs page — budget burn-down, burn-rate
charts, alert history)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from genobs.slo.alerting import alert_history, load_alerts
from genobs.slo.burn import floor_minute
from genobs.slo.spec import Slo
from genobs.store import Store

Rows = list[tuple[Any, ...]]


def error_ratio_timeline(store: Store, slo: Slo, start: datetime, end: datetime, bucket: timedelta = timedelta(hours=1)) -> Rows:
    """(bucket start, good, total, error ratio, burn rate) per bucket in [start, end)."""
    seconds = int(bucket.total_seconds())
    return store.fetchall(
        "SELECT time_bucket(to_seconds(?), minute) AS b, sum(good), sum(total), "
        "1 - sum(good) / nullif(sum(total), 0), (1 - sum(good) / nullif(sum(total), 0)) / ? "
        "FROM slo_rollups WHERE series = ? AND minute >= ? AND minute < ? GROUP BY b ORDER BY b",
        [seconds, slo.spec.error_budget, slo.series, start, end],
    )


def budget_burndown(store: Store, slo: Slo, at: datetime, bucket: timedelta = timedelta(hours=1)) -> Rows:
    """(bucket end, share of the window's error budget left) through the SLO window ending at ``at``:
    the budget is the objective's allowance of all events in the window up to ``at``."""
    end = floor_minute(at) + timedelta(minutes=1)
    start = end - slo.spec.window_span
    seconds = int(bucket.total_seconds())
    return store.fetchall(
        "WITH b AS (SELECT time_bucket(to_seconds(?), minute) AS b, sum(total - good) AS bad, sum(total) AS n "
        "  FROM slo_rollups WHERE series = ? AND minute >= ? AND minute < ? GROUP BY 1), "
        "all_n AS (SELECT sum(n) AS n FROM b) "
        "SELECT b.b + to_seconds(?), 1 - sum(bad) OVER (ORDER BY b.b) / nullif(? * all_n.n, 0) "
        "FROM b, all_n ORDER BY b.b",
        [seconds, slo.series, start, end, seconds, slo.spec.error_budget],
    )


def firing_alerts(store: Store) -> list[dict[str, Any]]:
    return [a.as_dict() for a in load_alerts(store, state="firing")]


def alert_events(store: Store, slo: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    return alert_history(store, slo=slo, limit=limit)
