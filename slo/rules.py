"""Prometheus recording and alerting rules equivalent to the SLOs (`genobs slo rules`).

For teams who alert from Prometheus: the rules read the request metrics that genobs itself
exports on /metrics (``genobs_requests_total{service,model,model_version,variant,status}``,
``genobs_request_latency_seconds`` and ``genobs_time_to_first_token_seconds`` histograms),
in the shape Sloth generates: one recording rule per SLO and window for the error ratio,
then one multiwindow alert per severity with the same factors as the engine. Only
availability, latency and ttft SLIs can be expressed this way (the others need scores or
SQL); those are listed as comments. A latency threshold that is not a histogram bucket
bound uses the largest bound below it (stricter), and says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from genobs.slo.alerting import SLO_ALERTNAME
from genobs.slo.spec import Slo, Spec, SpecError
from genobs.slo.timeutil import format_duration

# The histogram buckets of genobs' exporter (genobs.collectors.metrics; a test checks they agree).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0,
                   60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0,
                30.0, 60.0)
METRIC_LABELS = ("model", "model_version", "variant")   # besides service


def _go_float(value: float) -> str:
    """How prometheus-client writes a bucket bound in ``le`` (2.0 -> "2.0")."""
    return repr(float(value))


def _selector(slo: Slo, extra: str = "") -> str:
    parts = [f'service="{_escape(slo.spec.service)}"']
    for key, values in slo.spec.filter.items():
        if len(values) == 1:
            parts.append(f'{key}="{_escape(values[0])}"')
        else:
            parts.append(f'{key}=~"{"|".join(_regex_escape(v) for v in values)}"')
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _regex_escape(value: str) -> str:
    import re
    return _escape(re.escape(value))


def _bucket(threshold_s: float, buckets: tuple[float, ...]) -> tuple[float | None, bool]:
    below = [b for b in buckets if b <= threshold_s + 1e-12]
    if not below:
        return None, False
    return below[-1], abs(below[-1] - threshold_s) < 1e-9


def _error_ratio(slo: Slo, window: str) -> tuple[str | None, str | None]:
    """(PromQL error ratio over window, note) or (None, why not)."""
    spec = slo.spec
    unsupported = [k for k, _ in spec.filter.items() if k not in METRIC_LABELS]
    if unsupported:
        return None, f"filter on {', '.join(unsupported)}: not a label of genobs' request metrics"
    kind = spec.sli.kind
    if kind == "availability":
        bad = "|".join(spec.sli.bad_statuses)  # type: ignore[union-attr]
        bad_sel = _selector(slo, 'status=~"' + bad + '"')
        return (f"sum(rate(genobs_requests_total{bad_sel}[{window}]))\n/\n"
                f"sum(rate(genobs_requests_total{_selector(slo)}[{window}]))"), None
    if kind in ("latency", "ttft"):
        metric = "genobs_request_latency_seconds" if kind == "latency" else "genobs_time_to_first_token_seconds"
        threshold = spec.sli.threshold_ms / 1000.0  # type: ignore[union-attr]
        bound, exact = _bucket(threshold, LATENCY_BUCKETS if kind == "latency" else TTFT_BUCKETS)
        if bound is None:
            return None, f"threshold {threshold}s is below the smallest histogram bucket"
        note = None if exact else f"threshold {threshold:g}s is not a bucket bound: uses le={_go_float(bound)} (stricter)"
        le_sel = _selector(slo, 'le="' + _go_float(bound) + '"')
        return (f"1 - (\nsum(rate({metric}_bucket{le_sel}[{window}]))\n/\n"
                f"sum(rate({metric}_count{_selector(slo)}[{window}]))\n)"), note
    return None, f"SLI kind {kind!r} is computed from scores or SQL inside genobs, not from exported metrics"


def _events_metric(slo: Slo) -> str:
    return {"availability": "genobs_requests_total", "latency": "genobs_request_latency_seconds_count",
            "ttft": "genobs_time_to_first_token_seconds_count"}[slo.spec.sli.kind]


def _record_name(window: str) -> str:
    return f"genobs_slo:sli_error:ratio_rate{window}"


def prometheus_rules(spec: Spec) -> str:
    groups: list[dict[str, Any]] = []
    comments: list[str] = []
    for slo in spec.slos:
        windows: set[timedelta] = {slo.spec.window_span}
        for w in slo.catalog.windows:
            windows.update((w.short, w.long))
        probe, why = _error_ratio(slo, "5m")
        if probe is None:
            comments.append(f"# {slo.name}: not expressible as Prometheus rules: {why}")
            continue
        if why:
            comments.append(f"# {slo.name}: {why}")
        labels = {"slo": slo.name, "service": slo.spec.service}
        records = []
        for span in sorted(windows):
            text = format_duration(span)
            expr, _ = _error_ratio(slo, text)
            records.append({"record": _record_name(text), "expr": expr, "labels": {**labels, "window": text}})
        records.append({"record": "genobs_slo:objective:ratio", "expr": f"vector({slo.spec.target!r})", "labels": labels})
        alerts = []
        budget = slo.spec.error_budget
        for severity in ("page", "ticket"):
            if not getattr(slo.alerting, severity):
                continue
            clauses = []
            for w in slo.catalog.windows:
                if w.severity != severity:
                    continue
                threshold = f"({w.factor:.6g} * {budget!r})"
                sel = f'{{slo="{_escape(slo.name)}"}}'
                clause = (f"(max without (window) ({_record_name(format_duration(w.long))}{sel} > {threshold})\n"
                          f" and\n max without (window) ({_record_name(format_duration(w.short))}{sel} > {threshold})")
                if slo.alerting.min_events:
                    # As in the engine: enough events in the long window.
                    clause += (f"\n and on()\n (sum(increase({_events_metric(slo)}{_selector(slo)}"
                               f"[{format_duration(w.long)}])) >= {slo.alerting.min_events})")
                clauses.append(clause + ")")
            expr = "\nor\n".join(clauses)
            for_ = slo.alerting.page_for if severity == "page" else slo.alerting.ticket_for
            rule: dict[str, Any] = {
                "alert": SLO_ALERTNAME,
                "expr": expr,
                "labels": {**labels, "severity": severity, "sli": slo.spec.sli.kind, **slo.spec.labels,
                           **slo.alerting.labels},
                "annotations": {
                    "summary": f"{slo.name}: {slo.spec.service} is burning its {slo.spec.objective:g}% / "
                               f"{slo.spec.window} error budget ({severity})",
                },
            }
            if for_ not in ("0s", "0"):
                rule["for"] = for_
            alerts.append(rule)
        groups.append({"name": f"genobs-slo-{slo.name}-sli-recordings", "rules": records})
        if alerts:
            groups.append({"name": f"genobs-slo-{slo.name}-alerts", "rules": alerts})
    header = ["# Prometheus rules generated by `genobs slo rules` from " + spec.source,
              "# over the request metrics genobs exports on /metrics.", *comments]
    body = yaml.dump({"groups": groups}, Dumper=_BlockDumper, sort_keys=False, width=1000)
    return "\n".join(header) + "\n" + body


class _BlockDumper(yaml.SafeDumper):
    """Multi-line PromQL as YAML block scalars (|), as people write rule files."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def check_ratio_sql(spec: Spec) -> None:
    """Run each SLO's rollup SQL on an empty in-memory database, so a ratio SLI's predicate
    that does not parse or names an unknown column is reported by `genobs slo validate`."""
    from genobs.slo import rollups
    from genobs.slo.sli import series_for_slo
    from genobs.store import Store

    store = Store.memory()
    try:
        for slo in spec.slos:
            try:
                rollups.refresh(store, [series_for_slo(slo.spec)])
            except Exception as exc:  # DuckDB's parser/binder errors, shown to the user
                key = "sli.good / sli.total" if slo.spec.sli.kind == "ratio" else "sli"
                first = str(exc).splitlines()[0]
                raise SpecError(f"{spec.source}: slo {slo.name!r}: {key}: the SQL does not run: {first}") from None
    finally:
        store.close()
