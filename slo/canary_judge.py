"""The canary judge: classify each metric Pass / High / Low / NoData, score, and decide.

Modelled on Kayenta's NetflixACAJudge (MannWhitneyClassifier + WeightedSumScorer), with
these differences, each for a reason a rollout gate needs:

- proportion metrics (error, safety-flag, hallucination-label rates) are tested on their
  counts (Fisher's exact test, Newcombe's score interval) instead of a rank test on 0/1s;
- "too little data" is its own outcome: a metric with fewer than ``min_samples`` per arm, or
  (``require_power``, default for proportions) fewer than needed to detect the allowed change,
  is NoData with ``inconclusive`` set and the samples per arm it would need; the run is then
  "inconclusive", never "pass";
- group weights are renormalised over the groups that have data (Kayenta lets a group with
  no data pull the score down by its whole weight);
- Kayenta's 0.25-of-the-estimate tolerance on the interval is off by default
  (``kayenta_tolerance`` turns it on).

A metric is High when the interval for canary - baseline lies above 0, or the test is
significant at the configured confidence with U above its midpoint (the interval alone
misses a shift when most values are tied, e.g. scores that are 0 for most answers), *and*
its effect size (mean ratio or CLES; rate ratio and rate
difference for proportions) is beyond ``allowed_increase``; Low mirrors that. Only the
``direction`` that is bad counts: a significant improvement is a Pass, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from genobs.slo.canary_config import CanarySpec, MetricSpec
from genobs.slo.canary_data import ContinuousData, CountData
from genobs.slo.canary_stats import (
    Tally,
    compare_proportions,
    mann_whitney,
    samples_to_detect_rates,
    samples_to_detect_shift,
)

Classification = Literal["Pass", "High", "Low", "NoData"]
VerdictName = Literal["pass", "marginal", "fail", "inconclusive"]


@dataclass
class MetricResult:
    name: str
    kind: str
    group: str
    classification: Classification
    reason: str
    critical: bool
    critical_failure: bool = False       # fails the run (critical metric, or beyond a critical bound)
    inconclusive: bool = False           # NoData because of too little data (not because it is unused)
    n_canary: int = 0
    n_baseline: int = 0
    missing_canary: int = 0
    missing_baseline: int = 0
    outliers_removed: int = 0
    mean_canary: float | None = None
    mean_baseline: float | None = None
    median_canary: float | None = None
    median_baseline: float | None = None
    effect: str = "mean_ratio"
    effect_size: float | None = None     # mean (rate) ratio canary / baseline, or CLES
    cles: float | None = None
    p_value: float | None = None
    method: str | None = None
    estimate: float | None = None        # Hodges-Lehmann shift (continuous) or rate difference
    ci_low: float | None = None
    ci_high: float | None = None
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    hl_digits: int | None = None         # estimate/interval on values rounded to this many digits (huge arms)
    samples_needed: int | None = None    # per arm, to detect the allowed change at the configured power
    more_samples_needed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass
class GroupScore:
    name: str
    score: float | None
    weight: float
    passed: int
    total: int


@dataclass
class Verdict:
    verdict: VerdictName
    score: float
    reason: str
    exit_code: int
    metrics: list[MetricResult]
    groups: list[GroupScore]
    baseline: str = ""
    canary: str = ""
    window_start: str | None = None
    window_end: str | None = None
    samples_canary: int = 0
    samples_baseline: int = 0
    more_samples_needed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: str | None = None
    interval: int | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": self.verdict,
            "passed": self.passed,
            "score": round(self.score, 4),
            "reason": self.reason,
            "exit_code": self.exit_code,
            "baseline": self.baseline,
            "canary": self.canary,
            "window": {"start": self.window_start, "end": self.window_end},
            "samples": {"canary": self.samples_canary, "baseline": self.samples_baseline},
            "more_samples_needed": self.more_samples_needed,
            "interval": self.interval,
            "created_at": self.created_at,
            "groups": [{k: _clean(v) for k, v in asdict(g).items()} for g in self.groups],
            "metrics": [m.as_dict() for m in self.metrics],
            "config": self.config,
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.floating,)):
        return _clean(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


# --------------------------------------------------------------------------- metrics


def _ratio(canary: float, baseline: float) -> float:
    if baseline == 0:
        return 1.0 if canary == 0 else (math.inf if canary > 0 else -math.inf)
    return canary / baseline


def _remove_outliers(t: Tally, factor: float) -> tuple[Tally, int]:
    """Kayenta's IQR detector: drop values beyond factor x IQR outside the quartiles."""
    if t.n < 4:
        return t, 0
    q1, q3 = t.quantile(0.25), t.quantile(0.75)
    iqr = q3 - q1
    keep = (t.values >= q1 - factor * iqr) & (t.values <= q3 + factor * iqr)
    removed = int(t.counts[~keep].sum())
    return Tally(t.values[keep], t.counts[keep]), removed


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def classify_continuous(metric: MetricSpec, data: ContinuousData, spec: CanarySpec) -> MetricResult:
    canary, baseline = data.canary, data.baseline
    removed = 0
    if metric.outliers == "iqr":
        canary, rc = _remove_outliers(canary, metric.outlier_factor)
        baseline, rb = _remove_outliers(baseline, metric.outlier_factor)
        removed = rc + rb
    result = MetricResult(
        name=metric.name, kind="continuous", group=metric.group, classification="NoData", reason="",
        critical=metric.critical, n_canary=canary.n, n_baseline=baseline.n,
        missing_canary=data.missing_canary, missing_baseline=data.missing_baseline, outliers_removed=removed,
        effect=metric.effect, allowed_increase=metric.allowed_increase, allowed_decrease=metric.allowed_decrease,
    )
    if canary.n:
        result.mean_canary, result.median_canary = canary.mean(), canary.quantile(0.5)
    if baseline.n:
        result.mean_baseline, result.median_baseline = baseline.mean(), baseline.quantile(0.5)
    if not _enough_data(result, metric, spec):
        return result
    needed = _needed_continuous(metric, baseline, spec)
    result.samples_needed = needed
    if np.array_equal(canary.values, baseline.values) and np.array_equal(canary.counts, baseline.counts):
        return _finish_pass(result, metric, "canary and baseline data are identical", needed)
    if canary.values.size == 1 and baseline.values.size == 1 and canary.values[0] == baseline.values[0]:
        return _finish_pass(result, metric, "every value is the same in both arms", needed)
    mw = mann_whitney(canary, baseline, spec.confidence)
    result.p_value, result.method = mw.p_value, mw.method
    result.estimate, result.ci_low, result.ci_high = mw.estimate, mw.ci_low, mw.ci_high
    result.cles = mw.cles
    result.hl_digits = mw.hl_digits
    ratio = _ratio(canary.mean(), baseline.mean())
    result.effect_size = mw.cles if metric.effect == "cles" else ratio
    tolerance = (metric.kayenta_tolerance or 0.0) * abs(mw.estimate)
    above = mw.ci_low > tolerance
    below = mw.ci_high < -tolerance
    if not metric.kayenta_tolerance:
        # With most values tied at one point (scores that are 0 for most answers), the
        # Hodges-Lehmann interval collapses to 0..0 however far apart the arms are; the
        # test's p-value and the direction of U still tell. Kayenta's rule (interval only)
        # stays when its tolerance is asked for.
        significant = mw.p_value < 1.0 - spec.confidence
        above = above or (significant and mw.cles > 0.5)
        below = below or (significant and mw.cles < 0.5)
    conf = f"{spec.confidence:.0%}"
    shift = (f"shift {_fmt(mw.estimate)} ({conf} CI {_fmt(mw.ci_low)}..{_fmt(mw.ci_high)}), "
             f"{'CLES' if metric.effect == 'cles' else 'mean ratio'} {_fmt(result.effect_size)}, "
             f"p={_fmt(mw.p_value, 3)}")
    return _decide(result, metric, above, below, result.effect_size, shift, needed)


def classify_proportion(metric: MetricSpec, data: CountData, spec: CanarySpec) -> MetricResult:
    result = MetricResult(
        name=metric.name, kind="proportion", group=metric.group, classification="NoData", reason="",
        critical=metric.critical, n_canary=data.trials_canary, n_baseline=data.trials_baseline,
        effect="rate_ratio", allowed_increase=metric.allowed_increase, allowed_decrease=metric.allowed_decrease,
    )
    if data.trials_canary:
        result.mean_canary = data.events_canary / data.trials_canary
    if data.trials_baseline:
        result.mean_baseline = data.events_baseline / data.trials_baseline
    if not _enough_data(result, metric, spec):
        return result
    pr = compare_proportions(data.events_canary, data.trials_canary, data.events_baseline,
                             data.trials_baseline, spec.confidence)
    result.p_value, result.method = pr.p_value, pr.method
    result.estimate, result.ci_low, result.ci_high = pr.difference, pr.ci_low, pr.ci_high
    ratio = _ratio(pr.rate_x, pr.rate_y)
    result.effect_size = ratio
    # Rate the power figure at the baseline rate, kept off zero (half an event) so that 0 of n
    # still asks for the samples a rare-event change needs.
    p0 = (data.events_baseline + 0.5) / (data.trials_baseline + 1.0)
    needed = _needed_rates(metric, p0, spec)
    result.samples_needed = needed
    big_enough_up = pr.difference > metric.min_difference
    big_enough_down = -pr.difference > metric.min_difference
    above = pr.ci_low > 0 and big_enough_up
    below = pr.ci_high < 0 and big_enough_down
    conf = f"{spec.confidence:.0%}"
    detail = (f"rate {_fmt(pr.rate_x)} vs {_fmt(pr.rate_y)} ({data.events_canary}/{data.trials_canary} vs "
              f"{data.events_baseline}/{data.trials_baseline}), difference {conf} CI "
              f"{_fmt(pr.ci_low)}..{_fmt(pr.ci_high)}, rate ratio {_fmt(ratio)}, p={_fmt(pr.p_value, 3)}")
    return _decide(result, metric, above, below, ratio, detail, needed)


def _enough_data(result: MetricResult, metric: MetricSpec, spec: CanarySpec) -> bool:
    n_min = min(result.n_canary, result.n_baseline)
    if result.n_canary == 0 and result.n_baseline == 0:
        result.reason = "no data in either arm"
        result.inconclusive = metric.must_have_data
        if metric.must_have_data:
            result.reason += " (must_have_data)"
            result.more_samples_needed = spec.min_samples
        return False
    if n_min == 0:
        empty = "canary" if result.n_canary == 0 else "baseline"
        result.reason = f"no data in the {empty} arm"
        result.inconclusive = True
        result.more_samples_needed = spec.min_samples
        return False
    if n_min < spec.min_samples:
        result.reason = (f"too few samples: canary {result.n_canary}, baseline {result.n_baseline} "
                         f"(min_samples {spec.min_samples} per arm)")
        result.inconclusive = True
        result.more_samples_needed = spec.min_samples - n_min
        return False
    return True


def _needed_continuous(metric: MetricSpec, baseline: Tally, spec: CanarySpec) -> int | None:
    sd = math.sqrt(baseline.variance()) if baseline.n > 1 else math.nan
    mean = baseline.mean()
    changes = []
    if metric.effect == "mean_ratio" and math.isfinite(sd) and mean != 0:
        if metric.direction in ("increase", "either"):
            changes.append(abs(mean) * (metric.allowed_increase - 1.0))
        if metric.direction in ("decrease", "either"):
            changes.append(abs(mean) * (1.0 - metric.allowed_decrease))
    changes = [c for c in changes if c > 0]
    if not changes or not (sd > 0):
        return None
    n = samples_to_detect_shift(sd, min(changes), spec.confidence, spec.power)
    return int(math.ceil(n)) if math.isfinite(n) else None


def _needed_rates(metric: MetricSpec, p0: float, spec: CanarySpec) -> int | None:
    targets = []
    if metric.direction in ("increase", "either"):
        targets.append(min(max(p0 * metric.allowed_increase, p0 + metric.min_difference), 1.0))
    if metric.direction in ("decrease", "either"):
        targets.append(max(min(p0 * metric.allowed_decrease, p0 - metric.min_difference), 0.0))
    sizes = [samples_to_detect_rates(p0, p1, spec.confidence, spec.power) for p1 in targets if p1 != p0]
    sizes = [s for s in sizes if math.isfinite(s)]
    return int(math.ceil(min(sizes))) if sizes else None


def _decide(result: MetricResult, metric: MetricSpec, above: bool, below: bool, effect: float | None,
            detail: str, needed: int | None) -> MetricResult:
    effect = math.nan if effect is None else effect
    wants_up = metric.direction in ("increase", "either")
    wants_down = metric.direction in ("decrease", "either")
    if wants_up and above and effect > metric.allowed_increase:
        result.classification = "High"
        result.reason = f"higher than allowed ({_fmt(metric.allowed_increase)}): {detail}"
        bound = metric.critical_increase
        if metric.critical or (bound is not None and effect >= bound):
            result.critical_failure = True
            if bound is not None and effect >= bound:
                result.reason += f"; beyond the critical bound {_fmt(bound)}"
        return result
    if wants_down and below and effect < metric.allowed_decrease:
        result.classification = "Low"
        result.reason = f"lower than allowed ({_fmt(metric.allowed_decrease)}): {detail}"
        bound = metric.critical_decrease
        if metric.critical or (bound is not None and effect <= bound):
            result.critical_failure = True
            if bound is not None and effect <= bound:
                result.reason += f"; beyond the critical bound {_fmt(bound)}"
        return result
    note = ""
    if (above and not wants_up) or (below and not wants_down):
        note = "improved: "
    elif above or below:
        note = "significant but within the allowed change: "
    return _finish_pass(result, metric, note + detail, needed)


def _finish_pass(result: MetricResult, metric: MetricSpec, reason: str, needed: int | None) -> MetricResult:
    n_min = min(result.n_canary, result.n_baseline)
    if metric.power_required and (needed is None or n_min < needed):
        result.classification = "NoData"
        result.inconclusive = True
        if needed is None:
            result.reason = f"cannot size a test for the allowed change; {reason}"
        else:
            result.more_samples_needed = needed - n_min
            result.reason = (f"not enough data to detect the allowed change: {needed} samples per arm "
                             f"needed, {n_min} here ({reason})")
        return result
    result.classification = "Pass"
    result.reason = reason
    return result


# --------------------------------------------------------------------------- run level


def score_metrics(results: list[MetricResult], spec: CanarySpec) -> tuple[float, list[GroupScore]]:
    """Kayenta's WeightedSumScorer, weights renormalised over the groups with data."""
    by_group: dict[str, list[MetricResult]] = {}
    for r in results:
        by_group.setdefault(r.group, []).append(r)
    explicit = {g: w for g, w in spec.groups.items() if g in by_group}
    rest = [g for g in by_group if g not in explicit]
    share = max(100.0 - sum(explicit.values()), 0.0) / len(rest) if rest else 0.0
    groups: list[GroupScore] = []
    for name, members in by_group.items():
        scored = [m for m in members if m.classification != "NoData"]
        passed = sum(m.classification == "Pass" for m in scored)
        score = 100.0 * passed / len(scored) if scored else None
        groups.append(GroupScore(name, score, explicit.get(name, share), passed, len(scored)))
    with_data = [g for g in groups if g.score is not None]
    total_weight = sum(g.weight for g in with_data)
    if not with_data or total_weight <= 0:
        return 0.0, groups
    return sum(g.score * g.weight for g in with_data) / total_weight, groups  # type: ignore[operator]


def decide(results: list[MetricResult], spec: CanarySpec) -> tuple[VerdictName, float, str, list[GroupScore]]:
    score, groups = score_metrics(results, spec)
    critical = [r for r in results if r.critical_failure]
    if critical:
        names = ", ".join(f"{r.name} {r.classification}" for r in critical)
        return "fail", 0.0, f"critical metric failed: {names}", groups
    if score < spec.thresholds.marginal and any(r.classification in ("High", "Low") for r in results):
        bad = ", ".join(f"{r.name} {r.classification}" for r in results if r.classification in ("High", "Low"))
        return "fail", score, f"score {score:.1f} < {spec.thresholds.marginal:g}: {bad}", groups
    inconclusive = [r for r in results if r.inconclusive]
    used = [r for r in results if r.classification != "NoData" or r.inconclusive]
    nodata = [r for r in results if r.classification == "NoData"]
    if inconclusive:
        names = ", ".join(r.name for r in inconclusive)
        return "inconclusive", score, f"not enough data: {names}", groups
    if not used:
        return "inconclusive", 0.0, "no metric has data in both arms", groups
    if len(nodata) >= spec.nodata_share * len(results):
        return "inconclusive", 0.0, (f"{len(nodata)} of {len(results)} metrics have no data "
                                     f"(>= {spec.nodata_share:.0%})"), groups
    bad = ", ".join(f"{r.name} {r.classification}" for r in results if r.classification in ("High", "Low"))
    if score >= spec.thresholds.pass_:
        return "pass", score, f"score {score:.1f} >= {spec.thresholds.pass_:g}", groups
    if score >= spec.thresholds.marginal:
        return "marginal", score, f"score {score:.1f} < {spec.thresholds.pass_:g}: {bad}", groups
    return "fail", score, f"score {score:.1f} < {spec.thresholds.marginal:g}: {bad}", groups


def exit_code(verdict: VerdictName, spec: CanarySpec) -> int:
    if verdict == "pass":
        return 0
    if verdict == "fail":
        return 1
    return spec.exit_codes.marginal if verdict == "marginal" else spec.exit_codes.inconclusive
