"""A verdict as text (terminals), markdown (pull-request comments), JUnit XML (CI test
reports: one testcase per metric, failures with the reason) or JSON."""

from __future__ import annotations

import json
import math
from typing import Any
from xml.etree import ElementTree as ET

from genobs.slo.canary_judge import MetricResult, Verdict

FORMATS = ("text", "json", "junit", "markdown")

_MARK = {"Pass": "PASS", "High": "HIGH", "Low": "LOW", "NoData": "NODATA"}


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return str(x)


def _ci(m: MetricResult) -> str:
    if m.ci_low is None:
        return "-"
    return f"{_num(m.ci_low)}..{_num(m.ci_high)}"


def _headline(v: Verdict) -> str:
    line = f"canary verdict: {v.verdict.upper()}  score {v.score:.1f}  ({v.reason})"
    if v.more_samples_needed and v.verdict == "inconclusive":
        line += f"; about {v.more_samples_needed} more samples per arm needed"
    return line


def _rows(v: Verdict) -> list[list[str]]:
    rows = []
    for m in v.metrics:
        flag = _MARK[m.classification] + (" (inconclusive)" if m.inconclusive else "") + \
            (" CRITICAL" if m.critical_failure else "")
        rows.append([m.name, flag, f"{m.n_canary}/{m.n_baseline}", _num(m.mean_canary), _num(m.mean_baseline),
                     _num(m.effect_size), _ci(m), _num(m.p_value, 3)])
    return rows


HEADERS = ["metric", "result", "n canary/baseline", "canary mean", "baseline mean", "effect", "CI (canary-baseline)",
           "p"]


def render_text(v: Verdict) -> str:
    rows = _rows(v)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]
    out = [_headline(v),
           f"baseline {v.baseline} ({v.samples_baseline} samples)  vs  canary {v.canary} ({v.samples_canary} samples)",
           f"window {v.window_start} .. {v.window_end}", ""]
    out.append("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)))
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    out.append("")
    for m in v.metrics:
        if m.classification != "Pass" or m.inconclusive:
            out.append(f"- {m.name}: {m.reason}")
    return "\n".join(out).rstrip() + "\n"


def render_markdown(v: Verdict) -> str:
    icon = {"pass": "✅", "marginal": "⚠️", "inconclusive": "❔", "fail": "❌"}[v.verdict]
    out = [f"### {icon} Canary {v.verdict}: score {v.score:.1f}", "",
           f"{v.reason}" + (f" (about {v.more_samples_needed} more samples per arm needed)"
                            if v.more_samples_needed and v.verdict == "inconclusive" else ""),
           "",
           f"Baseline `{v.baseline}` ({v.samples_baseline} samples) vs canary `{v.canary}` "
           f"({v.samples_canary} samples), {v.window_start} .. {v.window_end}.", "",
           "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in _rows(v):
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    notes = [m for m in v.metrics if m.classification != "Pass" or m.inconclusive]
    if notes:
        out += ["", "<details><summary>Reasons</summary>", ""]
        out += [f"- **{m.name}**: {m.reason}" for m in notes]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def render_junit(v: Verdict) -> str:
    """JUnit XML: one testsuite, one testcase per metric. High/Low are failures; NoData of
    a metric that needs data is a failure too when the verdict is not pass (so CI shows why),
    else skipped."""
    suite = ET.Element("testsuite", name="genobs canary", tests=str(len(v.metrics)))
    failures = skipped = 0
    for m in v.metrics:
        case = ET.SubElement(suite, "testcase", classname=f"canary.{m.group}", name=m.name)
        if m.classification in ("High", "Low"):
            failures += 1
            ET.SubElement(case, "failure", message=f"{m.classification}: {m.reason}",
                          type=m.classification).text = m.reason
        elif m.classification == "NoData":
            if m.inconclusive:
                failures += 1
                ET.SubElement(case, "failure", message=f"inconclusive: {m.reason}", type="Inconclusive").text = m.reason
            else:
                skipped += 1
                ET.SubElement(case, "skipped", message=m.reason)
        ET.SubElement(case, "system-out").text = m.reason
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("verdict", v.verdict), ("score", f"{v.score:.2f}"), ("baseline", v.baseline),
                       ("canary", v.canary), ("window_start", v.window_start or ""),
                       ("window_end", v.window_end or ""), ("reason", v.reason)):
        ET.SubElement(props, "property", name=key, value=str(value))
    suite.insert(0, props)
    suites = ET.Element("testsuites", name="genobs canary", tests=str(len(v.metrics)), failures=str(failures))
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def render_json(v: Verdict) -> str:
    return json.dumps(v.as_dict(), indent=2, default=str) + "\n"


def render(v: Verdict, fmt: str) -> str:
    if fmt == "text":
        return render_text(v)
    if fmt == "json":
        return render_json(v)
    if fmt == "junit":
        return render_junit(v)
    if fmt == "markdown":
        return render_markdown(v)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    """Rebuild a Verdict from its JSON (the CLI reading through a server)."""
    from genobs.slo.canary_judge import GroupScore

    fields = MetricResult.__dataclass_fields__
    metrics = []
    for m in data.get("metrics", []):
        values = {k: _unjson(v) for k, v in m.items() if k in fields}
        metrics.append(MetricResult(**values))
    groups = [GroupScore(**g) for g in data.get("groups", [])]
    window = data.get("window") or {}
    samples = data.get("samples") or {}
    return Verdict(verdict=data["verdict"], score=float(data["score"]), reason=data.get("reason", ""),
                   exit_code=int(data.get("exit_code", 1)), metrics=metrics, groups=groups,
                   baseline=data.get("baseline", ""), canary=data.get("canary", ""),
                   window_start=window.get("start"), window_end=window.get("end"),
                   samples_canary=int(samples.get("canary", 0)), samples_baseline=int(samples.get("baseline", 0)),
                   more_samples_needed=data.get("more_samples_needed"), config=data.get("config") or {},
                   id=data.get("id"), created_at=data.get("created_at"), interval=data.get("interval"))


def _unjson(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value
