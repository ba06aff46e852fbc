"""HTTP routes of the SLO engine: GET /v1/slo, GET /v1/alerts, and silences.

The same data as `genobs slo status`, `genobs alerts` and `genobs silence` (the CLI calls
these routes when a server holds the database). Bad input answers 400 with what was wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Sequence

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from genobs.slo.alerting import alert_history, load_alerts
from genobs.slo.engine import check
from genobs.slo.silences import SilenceError, add_silence, expire_silence, list_silences, parse_matcher
from genobs.slo.spec import Spec, SpecError
from genobs.slo.timeutil import TimeParseError, parse_instant, utcnow
from genobs.store import Store

ALERT_STATES = ("pending", "firing", "resolved", "inactive")


class SilenceIn(BaseModel):
    matchers: list[str] = Field(min_length=1, description="label=value, label!=value, label=~re, label!~re")
    starts_at: str = Field(default="now", description="when it starts (the one time grammar)")
    ends_at: str = Field(description="when it ends (RFC 3339, epoch, ...)")
    comment: str = Field(min_length=1)
    created_by: str | None = None


def _instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_instant(text, now=utcnow())
    except (TimeParseError, ValueError) as exc:
        raise HTTPException(400, f"{name}: {exc}") from None


def slo_report(store: Store, spec: Spec | None, at: datetime | None) -> dict[str, Any]:
    """What GET /v1/slo and `genobs slo status` show: each SLO now (or at ``at``)."""
    if spec is None:
        return {"at": (at or utcnow()).isoformat(), "slos": [], "spend": [], "spec": None,
                "note": "no SLO spec: set slo.file in genobs.yaml or put slo.yaml in the working directory"}
    result = check(store, spec, at=at, manage_alerts=False)
    data = result.as_dict()
    data.pop("transitions", None)
    data.pop("notifications_queued", None)
    data["spec"] = spec.source
    firing = {(a.slo, a.severity) for a in load_alerts(store, state="firing")}
    for item in data["slos"]:
        item["firing"] = sorted(sev for slo, sev in firing if slo == item["slo"])
    return data


def build_router(get_store: Callable[[], Store], get_spec: Callable[[], Spec | None],
                 dependencies: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(tags=["slo"], dependencies=list(dependencies))

    @router.get("/v1/slo", summary="SLOs: error ratio, budget remaining and burn rates per window")
    def get_slo(at: str | None = Query(None, description="evaluate at this time (default now)")) -> dict[str, Any]:
        when = _instant(at, "at")
        try:
            spec = get_spec()
        except SpecError as exc:
            raise HTTPException(400, f"SLO spec: {exc}") from None
        return slo_report(get_store(), spec, when)

    @router.get("/v1/alerts", summary="Alerts (SLO burn-rate pages and tickets, spend tickets)")
    def get_alerts(state: str | None = Query(None, description="pending | firing | resolved | inactive"),
                   history: bool = Query(False, description="also the state transitions")) -> dict[str, Any]:
        if state is not None and state not in ALERT_STATES:
            raise HTTPException(400, f"state: expected one of {', '.join(ALERT_STATES)}, got {state!r}")
        store = get_store()
        body: dict[str, Any] = {"alerts": [a.as_dict() for a in load_alerts(store, state=state)]}
        if history:
            body["history"] = alert_history(store)
        return body

    @router.get("/v1/silences", summary="Silences (maintenance windows)")
    def get_silences() -> dict[str, Any]:
        now = utcnow()
        return {"silences": [s.as_dict(now) for s in list_silences(get_store())]}

    @router.post("/v1/silences", summary="Add a silence", status_code=201)
    def post_silence(body: SilenceIn) -> dict[str, Any]:
        starts, ends = _instant(body.starts_at, "starts_at"), _instant(body.ends_at, "ends_at")
        try:
            matchers = [parse_matcher(m) for m in body.matchers]
            silence_id = add_silence(get_store(), matchers, starts, ends, comment=body.comment,  # type: ignore[arg-type]
                                     created_by=body.created_by)
        except SilenceError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"id": silence_id}

    @router.delete("/v1/silences/{silence_id}", summary="Expire a silence now")
    def delete_silence(silence_id: int) -> dict[str, Any]:
        if not expire_silence(get_store(), silence_id):
            raise HTTPException(404, f"no active silence {silence_id}")
        return {"id": silence_id, "expired": True}

    return router
