"""Replay stored data through the SLO engine, as if it had been evaluated live (the demo).

Evaluates every ``step`` of data time from ``start`` to ``end``: alert transitions happen
at the data time they would have happened, notifications go through the outbox to the
receivers and are drained after each step (so they arrive in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from genobs.config import NotifiersConfig
from genobs.slo.engine import check
from genobs.slo.outbox import drain
from genobs.slo.spec import Spec
from genobs.slo.timeutil import as_utc
from genobs.store import Store


@dataclass
class ReplayReport:
    start: datetime
    end: datetime
    evaluations: int = 0
    transitions: list[dict[str, Any]] = field(default_factory=list)   # at, alert, state
    delivered: int = 0
    failed: int = 0
    final: dict[str, Any] = field(default_factory=dict)

    def fired(self) -> list[dict[str, Any]]:
        return [t for t in self.transitions if t["state"] == "firing"]

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "evaluations": self.evaluations,
                "transitions": self.transitions, "notifications_delivered": self.delivered,
                "notifications_failed": self.failed, "final": self.final}


def replay(store: Store, spec: Spec, start: datetime, end: datetime, *, step: timedelta = timedelta(minutes=5),
           notifiers: NotifiersConfig | None = None, external_url: str | None = None) -> ReplayReport:
    start, end = as_utc(start), as_utc(end)
    report = ReplayReport(start, end)
    at = start + step
    result = None
    while at <= end:
        # Nothing else writes during a replay: no overlap needed for in-flight ingests.
        result = check(store, spec, at=at, notifiers=notifiers, external_url=external_url, overlap=timedelta(0))
        report.evaluations += 1
        for fingerprint, alert, state in (result.applied.transitions if result.applied else []):
            report.transitions.append({"at": at.isoformat(), "alert": alert, "state": state, "fingerprint": fingerprint})
        if notifiers is not None and result.queued:
            delivery = drain(store, notifiers)
            report.delivered += delivery.delivered
            report.failed += delivery.failed
        at += step
    if result is not None:
        report.final = result.as_dict()
    return report


def replay_week(store: Store, spec: Spec, receiver_url: str | None, *, start: datetime | None = None,
                end: datetime | None = None, step: timedelta = timedelta(minutes=5),
                external_url: str | None = None) -> ReplayReport:
    """Replay the stored samples' span (default: first to last sample, whole minutes) and
    send the alerts to a webhook receiver at ``receiver_url`` (Alertmanager webhook v4 JSON)."""
    if start is None or end is None:
        lo, hi = store.fetchone("SELECT min(timestamp), max(timestamp) FROM samples") or (None, None)
        if lo is None:
            raise ValueError("no samples to replay")
        start = start or as_utc(lo).replace(second=0, microsecond=0)
        end = end or as_utc(hi).replace(second=0, microsecond=0) + timedelta(minutes=1)
    notifiers = None
    if receiver_url:
        notifiers = NotifiersConfig(receivers=[{"name": "demo-webhook", "type": "webhook", "url": receiver_url,
                                                "group_by": ["slo", "severity"]}])
    return replay(store, spec, start, end, step=step, notifiers=notifiers, external_url=external_url)
