"""HTTP routes of the canary judge (mounted by the runtime from canary_plugin.contribute).

- ``GET|POST /v1/canary/verdict``: the verdict as JSON, always 200 when the input is valid
  (Argo Rollouts' web metric provider reads it with a successCondition);
- ``GET|POST /v1/canary/gate``: the same JSON with 200 on pass and 412 otherwise (Flagger's
  webhooks roll back on any non-2xx). POST accepts Flagger's webhook body: the arms and window
  come from its ``metadata``;
- ``POST /v1/canary/analyses`` starts a continuous analysis, ``GET /v1/canary/analyses/{id}``
  shows its interval verdicts; ``GET /v1/canary/verdicts`` lists stored verdicts.

Bad input answers 400 with a message naming the parameter, never 5xx.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse

from genobs.slo.canary_config import CanaryConfigError, CanarySpec, spec_from_mapping
from genobs.slo.canary_data import parse_duration
from genobs.slo.canary_run import (
    CanaryInputError,
    analysis_status,
    recent_verdicts,
    run_canary,
    start_analysis,
)
from genobs.store import Store

SpecProvider = Callable[[], CanarySpec]


def _spec_for(base: CanarySpec, config: Any, window: str | None) -> CanarySpec:
    spec = base
    if config is not None:
        try:
            spec = spec_from_mapping(config, source="request body `config`")
        except CanaryConfigError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
    if window:
        try:
            parse_duration(window)
        except (ValueError, OverflowError) as exc:
            raise HTTPException(status_code=400, detail=f"window: {exc}") from None
        spec = spec.model_copy(update={"window": window})
    return spec


def _params(source: dict[str, Any], spec: CanarySpec) -> tuple[str, str]:
    baseline = source.get("baseline") or spec.baseline
    canary = source.get("canary") or spec.canary
    if not baseline or not canary:
        raise HTTPException(status_code=400, detail="baseline and canary are required "
                            "(e.g. baseline=variant=baseline&canary=variant=canary), or set them in canary.yaml")
    return str(baseline), str(canary)


def build_router(get_store: Callable[[], Store], get_spec: SpecProvider,
                 dependencies: Sequence[DependsParam] = ()) -> APIRouter:
    router = APIRouter(prefix="/v1/canary", tags=["canary"], dependencies=list(dependencies))

    def judge(source: dict[str, Any], config: Any = None) -> dict[str, Any]:
        spec = _spec_for(get_spec(), config, source.get("window"))
        baseline, canary = _params(source, spec)
        try:
            verdict = run_canary(get_store(), baseline, canary, source.get("since"), source.get("until"), spec)
        except CanaryInputError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return verdict.as_dict()

    query_doc = dict(
        baseline=Query(None, description="baseline arm, e.g. variant=baseline"),
        canary=Query(None, description="canary arm, e.g. variant=canary or model_version=v1.6"),
        since=Query(None, description="window start (RFC 3339, epoch, or a duration before now, e.g. 2h)"),
        until=Query(None, description="window end (default now)"),
        window=Query(None, description="window length when since is not given (default canary.yaml window)"),
        expect=Query(None, description="gate only: pass (default: 200 on pass) or fail (200 on fail, for "
                     "Flagger rollback hooks)"),
    )

    @router.get("/verdict", summary="Judge the canary (JSON for Argo Rollouts' web provider)")
    def get_verdict(baseline: str | None = query_doc["baseline"], canary: str | None = query_doc["canary"],
                    since: str | None = query_doc["since"], until: str | None = query_doc["until"],
                    window: str | None = query_doc["window"]) -> dict[str, Any]:
        return judge(dict(baseline=baseline, canary=canary, since=since, until=until, window=window))

    @router.post("/verdict", summary="Judge the canary with a config in the body")
    def post_verdict(body: dict[str, Any] = Body(..., examples=[{
            "baseline": "variant=baseline", "canary": "variant=canary", "since": "2h",
            "config": {"min_samples": 100}}])) -> dict[str, Any]:
        return judge(body, body.get("config"))

    def gate(source: dict[str, Any], config: Any = None) -> JSONResponse:
        expect = str(source.get("expect") or "pass")
        if expect not in ("pass", "fail"):
            raise HTTPException(status_code=400, detail="expect must be pass or fail")
        data = judge(source, config)
        # expect=fail turns the gate around for Flagger's rollback hooks (200 = roll back)
        return JSONResponse(data, status_code=200 if data["verdict"] == expect else 412)

    @router.get("/gate", summary="200 when the canary passes, 412 otherwise (Flagger webhook)")
    def get_gate(baseline: str | None = query_doc["baseline"], canary: str | None = query_doc["canary"],
                 since: str | None = query_doc["since"], until: str | None = query_doc["until"],
                 window: str | None = query_doc["window"], expect: str | None = query_doc["expect"]) -> JSONResponse:
        return gate(dict(baseline=baseline, canary=canary, since=since, until=until, window=window, expect=expect))

    @router.post("/gate", summary="Flagger webhook: arms and window from the query or the body's metadata")
    def post_gate(body: dict[str, Any] | None = Body(None), baseline: str | None = query_doc["baseline"],
                  canary: str | None = query_doc["canary"], since: str | None = query_doc["since"],
                  until: str | None = query_doc["until"], window: str | None = query_doc["window"],
                  expect: str | None = query_doc["expect"]) -> JSONResponse:
        body = body or {}
        if not isinstance(body, dict):
            raise HTTPException(status_code=400, detail="body must be a JSON object")
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        source = {**body, **metadata}
        for key, value in dict(baseline=baseline, canary=canary, since=since, until=until, window=window,
                               expect=expect).items():
            if value is not None:
                source[key] = value
        return gate(source, body.get("config"))

    @router.post("/analyses", status_code=201, summary="Start a continuous analysis (judged every interval)")
    def post_analysis(body: dict[str, Any] = Body(..., examples=[{
            "baseline": "variant=baseline", "canary": "variant=canary", "interval": "10m", "lifetime": "2h"}])
            ) -> dict[str, Any]:
        spec = _spec_for(get_spec(), body.get("config"), None)
        baseline, canary = _params(body, spec)
        try:
            interval = parse_duration(str(body.get("interval", "10m")))
            lifetime = parse_duration(str(body.get("lifetime", "2h")))
            datetime.now(timezone.utc) + interval + lifetime  # OverflowError when not representable
        except (ValueError, OverflowError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        try:
            aid = start_analysis(get_store(), baseline, canary, interval=interval, lifetime=lifetime, spec=spec)
        except CanaryInputError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return analysis_status(get_store(), aid) or {"id": aid}

    @router.get("/analyses/{analysis_id}", summary="A continuous analysis and its interval verdicts")
    def get_analysis(analysis_id: int) -> dict[str, Any]:
        status = analysis_status(get_store(), analysis_id)
        if status is None:
            raise HTTPException(status_code=404, detail=f"no canary analysis {analysis_id}")
        return status

    @router.get("/verdicts", summary="Stored verdicts, newest first (the audit trail)")
    def get_verdicts(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return recent_verdicts(get_store(), limit=limit)

    return router
