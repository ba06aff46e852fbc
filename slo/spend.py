"""Spend alerts (tickets): over a daily budget, or a day-over-day increase.

Spend comes from the same per-minute rollups as the SLIs (``value`` = sum of cost_usd).

- budget: spend of the current UTC day up to now above ``daily_budget_usd``;
- anomaly: spend of the last 24 hours more than ``day_over_day_pct`` above the 24 hours
  before (and at least ``min_spend_usd``, so pennies do not raise tickets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from genobs.slo.alerting import SPEND_ANOMALY_ALERTNAME, SPEND_BUDGET_ALERTNAME, Candidate
from genobs.slo.burn import floor_minute
from genobs.slo.sli import series_for_spend
from genobs.slo.spec import SpendSpec
from genobs.store import Store


@dataclass
class SpendStatus:
    spec: SpendSpec
    today_usd: float
    last_24h_usd: float
    previous_24h_usd: float

    @property
    def day_over_day(self) -> float | None:
        if self.previous_24h_usd <= 0:
            return None
        return self.last_24h_usd / self.previous_24h_usd - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.spec.name, "service": self.spec.service, "tenant": self.spec.tenant,
                "today_usd": self.today_usd, "last_24h_usd": self.last_24h_usd,
                "previous_24h_usd": self.previous_24h_usd, "day_over_day": self.day_over_day,
                "daily_budget_usd": self.spec.daily_budget_usd}


def spend_statuses(store: Store, specs: Sequence[SpendSpec], at: datetime) -> list[SpendStatus]:
    end = floor_minute(at)
    day_start = end.replace(hour=0, minute=0)
    out = []
    for spec in specs:
        key = series_for_spend(spec).key
        row = store.fetchone(
            "SELECT coalesce(sum(value) FILTER (WHERE minute >= ?), 0), "
            "coalesce(sum(value) FILTER (WHERE minute > ?), 0), "
            "coalesce(sum(value) FILTER (WHERE minute <= ?), 0) "
            "FROM slo_rollups WHERE series = ? AND minute > ? AND minute <= ?",
            [day_start, end - timedelta(days=1), end - timedelta(days=1), key, end - timedelta(days=2), end],
        )
        today, last, previous = (float(v) for v in row)  # type: ignore[union-attr]
        out.append(SpendStatus(spec, today, last, previous))
    return out


def spend_candidates(statuses: Sequence[SpendStatus]) -> list[Candidate]:
    out: list[Candidate] = []
    for status in statuses:
        spec = status.spec
        base = {"slo": spec.name, "severity": "ticket", "service": spec.service or "", **spec.labels}
        if spec.tenant:
            base["tenant"] = spec.tenant
        scope = " / ".join(x for x in (spec.service, spec.tenant) if x) or "all services"
        if spec.daily_budget_usd is not None:
            over = status.today_usd > spec.daily_budget_usd
            out.append(Candidate(
                kind="spend", slo=spec.name, severity="ticket",
                labels={"alertname": SPEND_BUDGET_ALERTNAME, **base},
                annotations={"summary": f"{scope}: spent ${status.today_usd:,.2f} today, over the daily budget of "
                                        f"${spec.daily_budget_usd:,.2f}",
                             "today_usd": f"{status.today_usd:.2f}", "daily_budget_usd": f"{spec.daily_budget_usd:.2f}"},
                active=over, burn_long=status.today_usd / spec.daily_budget_usd,
            ))
        if spec.day_over_day_pct is not None:
            change = status.day_over_day
            active = (change is not None and change * 100 > spec.day_over_day_pct
                      and status.last_24h_usd >= spec.min_spend_usd)
            pct = f"{change:+.0%}" if change is not None else "n/a"
            out.append(Candidate(
                kind="spend", slo=spec.name, severity="ticket",
                labels={"alertname": SPEND_ANOMALY_ALERTNAME, **base},
                annotations={"summary": f"{scope}: spend in the last 24h ${status.last_24h_usd:,.2f} is {pct} "
                                        f"against the 24h before (${status.previous_24h_usd:,.2f}); threshold "
                                        f"+{spec.day_over_day_pct:g}%",
                             "last_24h_usd": f"{status.last_24h_usd:.2f}",
                             "previous_24h_usd": f"{status.previous_24h_usd:.2f}"},
                active=active, burn_long=change,
            ))
    return out
