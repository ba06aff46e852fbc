"""Alert lifecycle: pending -> firing -> resolved, with stable fingerprints (DESIGN §6).

Each evaluation turns every SLO (and spend rule) into *candidates*: one per severity, with
its labels and whether its condition holds now. ``apply`` moves the stored alerts (table
``alerts``, one row per fingerprint; transitions in ``alert_events``) and decides what to
notify:

- a condition that starts holding makes the alert ``pending``; after ``for`` (default 0)
  it is ``firing``. A pending alert whose condition clears goes ``inactive`` unnotified;
- a firing alert is notified once, then again every ``repeat_interval`` while it fires;
- a firing alert whose condition clears is ``resolved``; if it was notified, the resolve is
  notified too (same fingerprint, same dedup key);
- a silenced alert is not notified; when the silence ends and it still fires, it is;
- a firing page inhibits the ticket of the same SLO (as an Alertmanager inhibit rule).

The fingerprint is a hash of the alert's labels, so the same SLO and severity keep the same
fingerprint across restarts and across firings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from genobs.slo.burn import SloStatus, conditions
from genobs.slo.silences import list_silences, silenced_by
from genobs.slo.timeutil import as_utc, parse_duration
from genobs.store import Store

SLO_ALERTNAME = "GenobsSLOErrorBudgetBurn"
SPEND_BUDGET_ALERTNAME = "GenobsSpendOverDailyBudget"
SPEND_ANOMALY_ALERTNAME = "GenobsSpendDayOverDayIncrease"


def fingerprint(labels: dict[str, str]) -> str:
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Candidate:
    """What one evaluation says about one alert."""

    kind: str                    # "slo" | "spend"
    slo: str
    severity: str                # "page" | "ticket"
    labels: dict[str, str]
    annotations: dict[str, str]
    active: bool
    for_: timedelta = timedelta(0)
    repeat_interval: timedelta = timedelta(hours=4)
    burn_long: float | None = None
    burn_short: float | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass
class Alert:
    """A stored alert, as notifiers and the API see it."""

    fingerprint: str
    kind: str
    slo: str
    service: str | None
    severity: str
    state: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    burn_rate_long: float | None = None
    burn_rate_short: float | None = None
    silenced: bool = False
    inhibited: bool = False
    fired_at: datetime | None = None
    last_notified_at: datetime | None = None
    last_notified_state: str | None = None
    pending_since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "kind": self.kind, "slo": self.slo, "service": self.service,
            "severity": self.severity, "state": self.state,
            "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "labels": self.labels, "annotations": self.annotations,
            "burn_rate_long": self.burn_rate_long, "burn_rate_short": self.burn_rate_short,
            "silenced": bool(self.silenced), "inhibited": bool(self.inhibited),
            "last_notified_at": self.last_notified_at.isoformat() if self.last_notified_at else None,
        }


@dataclass
class Notice:
    """One alert to notify now, firing or resolved."""

    alert: Alert
    status: str  # "firing" | "resolved"
    # A firing notice holds until the next repeat (plus slack): receivers that expire
    # alerts (Alertmanager's endsAt) keep it active until genobs would have re-sent it.
    valid_until: datetime | None = None


@dataclass
class ApplyResult:
    notices: list[Notice] = field(default_factory=list)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (fingerprint, slo/severity, new state)


# ----------------------------------------------------------------------------- candidates


def slo_candidates(statuses: Iterable[SloStatus]) -> list[Candidate]:
    out: list[Candidate] = []
    for status in statuses:
        slo = status.slo
        spec, alerting = slo.spec, slo.alerting
        for severity, cond in conditions(status).items():
            labels = {"alertname": SLO_ALERTNAME, "slo": spec.name, "service": spec.service,
                      "severity": severity, "sli": spec.sli.kind, **spec.labels, **alerting.labels}
            summary = (f"{spec.name}: {spec.service} is burning its {spec.objective:g}% / {spec.window} "
                       f"error budget ({severity})")
            annotations = {
                "summary": summary,
                "description": ("; ".join(cond.reasons) if cond.reasons else
                                f"burn rate {cond.burn_long:.2f} (long window), {cond.burn_short:.2f} (short)")
                + f"; error budget remaining {status.budget_remaining:.1%}",
                "objective": f"{spec.objective:g}",
                "window": spec.window,
                "burn_rate_long": f"{cond.burn_long:.4g}",
                "burn_rate_short": f"{cond.burn_short:.4g}",
                "budget_remaining": f"{status.budget_remaining:.4g}",
                **({"slo_description": spec.description} if spec.description else {}),
                **alerting.annotations,
            }
            for_text = alerting.page_for if severity == "page" else alerting.ticket_for
            out.append(Candidate(
                kind="slo", slo=spec.name, severity=severity, labels=labels, annotations=annotations,
                active=cond.active, for_=_span(for_text), repeat_interval=_span(alerting.repeat_interval),
                burn_long=cond.burn_long, burn_short=cond.burn_short,
            ))
    return out


def _span(text: str) -> timedelta:
    return timedelta(0) if text in ("0", "0s") else parse_duration(text)


# ----------------------------------------------------------------------------- lifecycle

_COLUMNS = ("fingerprint, kind, slo, service, severity, state, starts_at, ends_at, labels, annotations, "
            "burn_rate_long, burn_rate_short, silenced, inhibited, fired_at, last_notified_at, "
            "last_notified_state, pending_since")


def _row_to_alert(row: Sequence[Any]) -> Alert:
    (fp, kind, slo, service, severity, state, starts, ends, labels, annotations, bl, bs, silenced, inhibited,
     fired, notified, notified_state, pending) = row
    t = lambda v: as_utc(v) if v is not None else None  # noqa: E731
    return Alert(fp, kind or "slo", slo, service, severity, state, as_utc(starts), t(ends),
                 json.loads(labels) if labels else {}, json.loads(annotations) if annotations else {},
                 bl, bs, bool(silenced), bool(inhibited), t(fired), t(notified), notified_state, t(pending))


def load_alerts(store: Store, *, state: str | None = None, kinds: Sequence[str] | None = None) -> list[Alert]:
    where, params = [], []
    if state:
        where.append("state = ?")
        params.append(state)
    if kinds:
        where.append("coalesce(kind, 'slo') IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(kinds))
    sql = f"SELECT {_COLUMNS} FROM alerts" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [_row_to_alert(r) for r in store.fetchall(sql + " ORDER BY starts_at DESC, slo, severity", params)]


def _save(cur: Any, alert: Alert, at: datetime) -> None:
    cur.execute(
        f"INSERT OR REPLACE INTO alerts ({_COLUMNS}, updated_at) VALUES ({', '.join('?' * 19)})",
        [alert.fingerprint, alert.kind, alert.slo, alert.service, alert.severity, alert.state, alert.starts_at,
         alert.ends_at, json.dumps(alert.labels, sort_keys=True), json.dumps(alert.annotations, sort_keys=True),
         alert.burn_rate_long, alert.burn_rate_short, alert.silenced, alert.inhibited, alert.fired_at,
         alert.last_notified_at, alert.last_notified_state, alert.pending_since, at],
    )


def _event(cur: Any, alert: Alert, at: datetime, state: str, details: dict[str, Any] | None = None) -> None:
    cur.execute("INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?)",
                [alert.fingerprint, at, state, alert.slo, alert.severity, json.dumps(details or {}, default=str)])


def apply(store: Store, candidates: Sequence[Candidate], at: datetime, *, kinds: Sequence[str] = ("slo", "spend")) -> ApplyResult:
    """Move the alerts of ``kinds`` to what ``candidates`` say at ``at``; return what to notify.

    Stored alerts of these kinds that no candidate names (an SLO removed from the spec)
    are resolved."""
    at = as_utc(at)
    result = ApplyResult()
    silences = list_silences(store)
    with store.transaction() as cur:
        stored = {a.fingerprint: a for a in (
            _row_to_alert(r) for r in cur.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE coalesce(kind, 'slo') IN (SELECT unnest(?::VARCHAR[])) "
                "AND (state IN ('pending', 'firing') OR last_notified_state = 'firing')", [list(kinds)]
            ).fetchall())}
        before = {fp: _key(a) for fp, a in stored.items()}
        touched: dict[str, tuple[Alert, Candidate | None]] = {}
        by_fp = {c.fingerprint: c for c in candidates}
        for fp, cand in by_fp.items():
            alert = stored.get(fp)
            if alert is None and not cand.active:
                continue
            if alert is None:
                existing = cur.execute(f"SELECT {_COLUMNS} FROM alerts WHERE fingerprint = ?", [fp]).fetchone()
                alert = _row_to_alert(existing) if existing else None
            alert = _step(cur, alert, cand, at, result)
            if alert is not None:
                touched[fp] = (alert, cand)
        for fp, alert in stored.items():
            if fp not in by_fp:  # its SLO is gone: close it
                gone = Candidate(alert.kind, alert.slo, alert.severity, alert.labels, alert.annotations, active=False)
                stepped = _step(cur, alert, gone, at, result)
                if stepped is not None:
                    touched[fp] = (stepped, None)
        # Inhibition: a firing page mutes the ticket of the same SLO.
        paging = {a.slo for a, _ in touched.values() if a.severity == "page" and a.state == "firing"}
        for fp, (alert, cand) in touched.items():
            alert.silenced = bool(silenced_by(silences, alert.labels, at))
            alert.inhibited = alert.severity == "ticket" and alert.state == "firing" and alert.slo in paging
            repeat = cand.repeat_interval if cand is not None else timedelta(hours=4)
            _decide(alert, at, repeat, result)
            # Written when something a user or a receiver sees changed (each write is a
            # row rewrite; burn rates alone are live in /v1/slo and on /metrics).
            if fp not in before or before[fp] != _key(alert):
                _save(cur, alert, at)
    return result


def _key(alert: Alert) -> tuple[Any, ...]:
    return (alert.state, alert.starts_at, alert.ends_at, alert.silenced, alert.inhibited, alert.last_notified_at,
            alert.last_notified_state, alert.pending_since, tuple(sorted(alert.labels.items())))


def _step(cur: Any, alert: Alert | None, cand: Candidate, at: datetime, result: ApplyResult) -> Alert | None:
    """One lifecycle step of one alert."""
    if cand.active:
        if alert is None or alert.state in ("resolved", "inactive"):
            # A new episode: same fingerprint, fresh state (an unsent resolve of the last
            # episode is moot once it fires again).
            alert = Alert(cand.fingerprint, cand.kind, cand.slo, cand.labels.get("service"), cand.severity,
                          "pending", at, None, dict(cand.labels), dict(cand.annotations), pending_since=at)
            _event(cur, alert, at, "pending")
            result.transitions.append((alert.fingerprint, f"{alert.slo}/{alert.severity}", "pending"))
        alert.annotations = dict(cand.annotations)
        alert.labels = dict(cand.labels)
        alert.burn_rate_long, alert.burn_rate_short = cand.burn_long, cand.burn_short
        if alert.state == "pending" and at - (alert.pending_since or at) >= cand.for_:
            alert.state = "firing"
            alert.fired_at = at
            alert.starts_at = at
            _event(cur, alert, at, "firing", {"burn_rate_long": cand.burn_long, "burn_rate_short": cand.burn_short})
            result.transitions.append((alert.fingerprint, f"{alert.slo}/{alert.severity}", "firing"))
        return alert
    if alert is None:
        return None
    if alert.state == "pending":
        alert.state = "inactive"
        alert.ends_at = at
        _event(cur, alert, at, "inactive")
        result.transitions.append((alert.fingerprint, f"{alert.slo}/{alert.severity}", "inactive"))
    elif alert.state == "firing":
        alert.state = "resolved"
        alert.ends_at = at
        alert.burn_rate_long, alert.burn_rate_short = cand.burn_long, cand.burn_short
        _event(cur, alert, at, "resolved")
        result.transitions.append((alert.fingerprint, f"{alert.slo}/{alert.severity}", "resolved"))
    return alert


def _decide(alert: Alert, at: datetime, repeat: timedelta, result: ApplyResult) -> None:
    if alert.state == "firing":
        if alert.silenced or alert.inhibited:
            return
        due = (alert.last_notified_state != "firing" or alert.last_notified_at is None
               or at - alert.last_notified_at >= repeat)
        if due:
            alert.last_notified_at = at
            alert.last_notified_state = "firing"
            result.notices.append(Notice(alert, "firing", at + repeat + timedelta(minutes=10)))
    elif alert.state in ("resolved", "inactive") and alert.last_notified_state == "firing":
        if alert.silenced:
            return
        alert.last_notified_at = at
        alert.last_notified_state = "resolved"
        result.notices.append(Notice(alert, "resolved"))


def alert_history(store: Store, *, slo: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    sql = 'SELECT fingerprint, "at", state, slo, severity, details FROM alert_events'
    params: list[Any] = []
    if slo:
        sql += " WHERE slo = ?"
        params.append(slo)
    rows = store.fetchall(sql + ' ORDER BY "at" DESC LIMIT ?', [*params, limit])
    return [{"fingerprint": r[0], "at": as_utc(r[1]).isoformat(), "state": r[2], "slo": r[3], "severity": r[4],
             "details": json.loads(r[5]) if r[5] else {}} for r in rows]


__all__ = ["Candidate", "Alert", "Notice", "apply", "slo_candidates", "load_alerts", "fingerprint", "alert_history"]
