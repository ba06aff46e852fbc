"""One SLO evaluation cycle: rollups -> SLIs and burn rates -> alert lifecycle -> outbox.

``check`` is what `genobs slo check`, the server's periodic task and the demo's replay all
call. With ``manage_alerts=False`` it only reports (the alert state is left alone, nothing
is queued); the rollups are refreshed either way (they are a cache of the samples).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

from genobs.config import NotifiersConfig
from genobs.slo import rollups
from genobs.slo.alerting import Alert, ApplyResult, Notice, apply, load_alerts, slo_candidates
from genobs.slo.burn import SloStatus, conditions, evaluate
from genobs.slo.notifiers import Message, build_messages, matches_route
from genobs.slo.outbox import enqueue
from genobs.slo.sli import series_for_slo, series_for_spend
from genobs.slo.spec import Spec
from genobs.slo.spend import SpendStatus, spend_candidates, spend_statuses
from genobs.slo.timeutil import as_utc, utcnow
from genobs.store import Store


@dataclass
class CheckResult:
    at: datetime
    statuses: list[SloStatus]
    spend: list[SpendStatus]
    applied: ApplyResult | None
    queued: list[int] = field(default_factory=list)
    refresh: rollups.RefreshReport | None = None

    @property
    def breached(self) -> list[str]:
        """SLOs whose error budget over their window is spent."""
        return [s.slo.name for s in self.statuses if s.window.total and s.budget_remaining <= 0]

    @property
    def alerting(self) -> dict[str, list[str]]:
        """SLO -> severities whose condition holds now."""
        out: dict[str, list[str]] = {}
        for status in self.statuses:
            active = [sev for sev, cond in conditions(status).items() if cond.active]
            if active:
                out[status.slo.name] = active
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "slos": [s.as_dict() | {"alerting": self.alerting.get(s.slo.name, [])} for s in self.statuses],
            "spend": [s.as_dict() for s in self.spend],
            "breached": self.breached,
            "transitions": [
                {"fingerprint": fp, "alert": what, "state": state}
                for fp, what, state in (self.applied.transitions if self.applied else [])
            ],
            "notifications_queued": len(self.queued),
        }


def all_series(spec: Spec) -> list[rollups.SeriesSql]:
    return [series_for_slo(s.spec) for s in spec.slos] + [series_for_spend(s) for s in spec.spend]


def route(notices: Sequence[Notice], config: NotifiersConfig | None, external_url: str | None) -> list[Message]:
    if not config or not notices:
        return []
    messages: list[Message] = []
    for receiver in config.receivers:
        mine = [n for n in notices if matches_route(receiver, n.alert.labels)]
        messages += build_messages(receiver, mine, external_url)
    return messages


def check(store: Store, spec: Spec, *, at: datetime | None = None, manage_alerts: bool = True,
          notifiers: NotifiersConfig | None = None, external_url: str | None = None,
          overlap: timedelta = rollups.OVERLAP) -> CheckResult:
    at = as_utc(at or utcnow())
    # One transaction for the cycle: one commit (one WAL sync) instead of one per step, and
    # the alert state, the outbox rows and the statuses change together or not at all.
    with store.transaction():
        report = rollups.refresh(store, all_series(spec), overlap=overlap)
        statuses = evaluate(store, spec.slos, at)
        spend = spend_statuses(store, spec.spend, at)
        applied = None
        queued: list[int] = []
        if manage_alerts:
            candidates = slo_candidates(statuses) + spend_candidates(spend)
            applied = apply(store, candidates, at)
            queued = enqueue(store, route(applied.notices, notifiers, external_url))
            _save_statuses(store, statuses)
    return CheckResult(at, statuses, spend, applied, queued, report)


def _save_statuses(store: Store, statuses: Sequence[SloStatus]) -> None:
    if not statuses:
        return
    now = utcnow()
    rows: list[Any] = []
    for status in statuses:
        data = status.as_dict()
        rows += [data["slo"], data["service"], now, status.at, data["objective"], data["window"], data["good"],
                 data["total"], data["error_ratio"], data["budget_remaining"], json.dumps(data["burn_rates"]),
                 json.dumps({"events": data["events"], "sli": data["sli"]})]
    values = ", ".join(["(" + ", ".join("?" * 12) + ")"] * len(statuses))
    with store.transaction() as cur:
        cur.execute("DELETE FROM slo_status")
        cur.execute(f"INSERT INTO slo_status VALUES {values}", rows)


def saved_statuses(store: Store) -> list[dict[str, Any]]:
    """The last evaluation of each SLO (what the server's task stored)."""
    rows = store.fetchall(
        'SELECT slo, service, evaluated_at, "at", objective, "window", good, total, error_ratio, budget_remaining, '
        "burn_rates, details FROM slo_status ORDER BY slo"
    )
    keys = ("slo", "service", "evaluated_at", "at", "objective", "window", "good", "total", "error_ratio",
            "budget_remaining", "burn_rates", "details")
    out = []
    for row in rows:
        item = dict(zip(keys, row))
        item["burn_rates"] = json.loads(item["burn_rates"] or "{}")
        item["details"] = json.loads(item["details"] or "{}")
        out.append(item)
    return out


__all__ = ["check", "CheckResult", "saved_statuses", "load_alerts", "Alert", "all_series", "route"]
