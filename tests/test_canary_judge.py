"""The canary judge's decisions (genobs/slo/canary_judge.py): per-metric classification,
score and verdict, on data built here with known properties."""

from __future__ import annotations

import numpy as np
import pytest

from genobs.slo.canary_config import (
    CanaryConfigError,
    CanarySpec,
    MetricSpec,
    default_spec,
    kayenta_spec,
    parse_selector,
    spec_from_mapping,
)
from genobs.slo.canary_data import ContinuousData, CountData
from genobs.slo.canary_judge import classify_continuous, classify_proportion, decide, exit_code
from genobs.slo.canary_stats import Tally

RNG = np.random.default_rng(1234)
LAT = MetricSpec(name="latency_ms", column="latency_ms", allowed_increase=1.05, critical_increase=1.5)
ERR = MetricSpec(name="error_rate", kind="proportion", column="status", events=["error"], critical=True,
                 allowed_increase=1.5, min_difference=0.005)


def spec(*metrics: MetricSpec, **kw: object) -> CanarySpec:
    return CanarySpec(metrics=list(metrics), **kw)


def cont(canary: np.ndarray, baseline: np.ndarray, missing: tuple[int, int] = (0, 0)) -> ContinuousData:
    return ContinuousData(Tally.of(canary), Tally.of(baseline), *missing)


def lognormal(n: int, factor: float = 1.0) -> np.ndarray:
    return np.round(RNG.lognormal(np.log(700), 0.3, n) * factor, 1)


def test_identical_arms_pass() -> None:
    data = lognormal(300)
    r = classify_continuous(LAT, cont(data, data.copy()), spec(LAT))
    assert r.classification == "Pass" and "identical" in r.reason


def test_a_regression_beyond_the_allowed_ratio_is_high() -> None:
    r = classify_continuous(LAT, cont(lognormal(400, 1.2), lognormal(400)), spec(LAT))
    assert r.classification == "High"
    assert r.ci_low > 0 and r.effect_size > 1.05
    assert "higher than allowed" in r.reason and not r.critical_failure


def test_a_shift_in_mostly_tied_scores_is_high_though_the_interval_is_zero() -> None:
    """Hallucination scores are 0 for most answers: the Hodges-Lehmann interval is 0..0 even
    when the canary's non-zero share triples; the test's p-value and U still show the shift."""
    score = MetricSpec(name="hallucination_score", score="hallucination_score", allowed_increase=1.1)
    rng = np.random.default_rng(7)   # its own stream: the other tests' data stay as they were
    baseline = np.where(rng.random(2500) < 0.08, np.round(rng.uniform(0.5, 1.0, 2500), 2), 0.0)
    canary = np.where(rng.random(500) < 0.30, np.round(rng.uniform(0.5, 1.0, 500), 2), 0.0)
    r = classify_continuous(score, cont(canary, baseline), spec(score))
    assert (r.ci_low, r.ci_high) == (0.0, 0.0)
    assert r.classification == "High" and r.p_value < 1e-6 and r.effect_size > 2
    same = classify_continuous(score, cont(baseline[:500], baseline[500:]), spec(score))
    assert same.classification == "Pass"


def test_a_significant_change_within_the_allowed_ratio_passes() -> None:
    metric = LAT.model_copy(update={"allowed_increase": 1.3})
    r = classify_continuous(metric, cont(lognormal(3000, 1.1), lognormal(3000)), spec(metric))
    assert r.classification == "Pass"
    assert r.ci_low > 0 and "within the allowed change" in r.reason


def test_an_improvement_is_a_pass_for_a_one_sided_metric() -> None:
    r = classify_continuous(LAT, cont(lognormal(400, 0.7), lognormal(400)), spec(LAT))
    assert r.classification == "Pass" and r.reason.startswith("improved")
    either = LAT.model_copy(update={"direction": "either"})
    assert classify_continuous(either, cont(lognormal(400, 0.7), lognormal(400)), spec(either)).classification == "Low"


def test_beyond_the_critical_bound_fails_the_run_even_if_not_critical() -> None:
    r = classify_continuous(LAT, cont(lognormal(300, 2.0), lognormal(300)), spec(LAT))
    assert r.classification == "High" and r.critical_failure and "critical bound" in r.reason
    verdict, score, reason, _ = decide([r], spec(LAT))
    assert verdict == "fail" and score == 0.0 and "latency_ms" in reason


def test_nan_and_missing_values_are_counted_and_left_out() -> None:
    canary = np.concatenate([lognormal(200), [np.nan, np.inf]])
    r = classify_continuous(LAT, ContinuousData(Tally.of(canary), Tally.of(lognormal(200)), 5, 0), spec(LAT))
    assert r.n_canary == 200 and r.missing_canary == 5
    assert r.classification == "Pass"


def test_iqr_outlier_removal_when_configured() -> None:
    base = lognormal(400)
    canary = np.concatenate([lognormal(400), [1e7] * 3])
    metric = LAT.model_copy(update={"outliers": "iqr"})
    r = classify_continuous(metric, cont(canary, base), spec(metric))
    assert r.outliers_removed == 3 and r.n_canary == 400


def test_no_data_and_too_little_data() -> None:
    empty = classify_continuous(LAT, cont(np.array([]), np.array([])), spec(LAT))
    assert empty.classification == "NoData" and not empty.inconclusive
    needed = LAT.model_copy(update={"must_have_data": True})
    assert classify_continuous(needed, cont(np.array([]), np.array([])), spec(needed)).inconclusive
    one_side = classify_continuous(LAT, cont(np.array([]), lognormal(100)), spec(LAT))
    assert one_side.classification == "NoData" and one_side.inconclusive and "canary" in one_side.reason
    few = classify_continuous(LAT, cont(lognormal(20), lognormal(500)), spec(LAT, min_samples=50))
    assert few.classification == "NoData" and few.more_samples_needed == 30
    verdict, _, reason, _ = decide([few], spec(LAT, min_samples=50))
    assert verdict == "inconclusive" and "latency_ms" in reason


def test_proportions_high_when_the_rate_rises_beyond_both_bounds() -> None:
    data = CountData(events_canary=60, trials_canary=2000, events_baseline=10, trials_baseline=2000)
    r = classify_proportion(ERR, data, spec(ERR))
    assert r.classification == "High" and r.critical_failure
    assert r.effect_size == pytest.approx(6.0) and r.ci_low > 0


def test_proportions_below_the_minimum_difference_do_not_count() -> None:
    data = CountData(events_canary=30, trials_canary=20000, events_baseline=10, trials_baseline=20000)
    r = classify_proportion(ERR, data, spec(ERR))
    # 0.15 % vs 0.05 %: significant and 3x, but 0.1 points is under min_difference 0.5 points
    assert r.ci_low > 0 and r.classification != "High"


def test_proportions_need_enough_samples_to_pass() -> None:
    few = classify_proportion(ERR, CountData(0, 300, 0, 300), spec(ERR))
    assert few.classification == "NoData" and few.inconclusive
    assert few.samples_needed > 300 and few.more_samples_needed == few.samples_needed - 300
    many = classify_proportion(ERR, CountData(2, 20000, 3, 20000), spec(ERR))
    assert many.classification == "Pass"


def test_score_is_weighted_by_group_and_renormalised_over_groups_with_data() -> None:
    a = MetricSpec(name="a", column="latency_ms", group="g1", allowed_increase=1.05)
    b = MetricSpec(name="b", column="ttft_ms", group="g2", allowed_increase=1.05)
    c = MetricSpec(name="c", column="cost_usd", group="g3")
    s = spec(a, b, c, groups={"g1": 60, "g2": 30, "g3": 10}, nodata_share=1.0)
    results = [classify_continuous(a, cont(lognormal(400), lognormal(400)), s),
               classify_continuous(b, cont(lognormal(400, 1.3), lognormal(400)), s),
               classify_continuous(c, cont(np.array([]), np.array([])), s)]
    assert [r.classification for r in results] == ["Pass", "High", "NoData"]
    verdict, score, _, groups = decide(results, s)
    assert score == pytest.approx(100 * 60 / 90)  # g3 has no data: 60 / (60 + 30)
    assert verdict == "fail"  # 66.7 < 75
    assert {g.name: g.score for g in groups} == {"g1": 100.0, "g2": 0.0, "g3": None}


def test_thresholds_pass_marginal_fail() -> None:
    metrics = [MetricSpec(name=f"m{i}", column="latency_ms", allowed_increase=1.05) for i in range(5)]
    s = spec(*metrics)
    ok = [classify_continuous(m, cont(lognormal(300), lognormal(300)), s) for m in metrics]
    assert decide(ok, s)[0] == "pass"
    one_high = ok[:4] + [classify_continuous(metrics[4], cont(lognormal(300, 1.4), lognormal(300)), s)]
    assert decide(one_high, s)[:2] == ("marginal", pytest.approx(80.0))
    assert exit_code("marginal", s) == 3
    lenient = spec(*metrics, exit_codes={"marginal": 0, "inconclusive": 1})
    assert exit_code("marginal", lenient) == 0 and exit_code("inconclusive", lenient) == 1


def test_half_the_metrics_without_data_is_inconclusive() -> None:
    a = MetricSpec(name="a", column="latency_ms")
    b = MetricSpec(name="b", column="ttft_ms")
    s = spec(a, b)
    results = [classify_continuous(a, cont(lognormal(300), lognormal(300)), s),
               classify_continuous(b, cont(np.array([]), np.array([])), s)]
    verdict, score, reason, _ = decide(results, s)
    assert verdict == "inconclusive" and score == 0.0 and "1 of 2" in reason


def test_kayenta_preset_and_its_tolerance_rule() -> None:
    k = kayenta_spec()
    assert k.confidence == 0.98
    assert all(m.allowed_increase == 1.1 and m.kayenta_tolerance == 0.25 for m in k.metrics)
    metric = k.metrics[0]
    r = classify_continuous(metric, cont(lognormal(500, 1.25), lognormal(500)), k)
    assert r.classification == "High"


def test_defaults_cover_the_issue_metrics() -> None:
    names = {m.name for m in default_spec().metrics}
    assert {"latency_ms", "ttft_ms", "output_tokens", "cost_usd", "error_rate", "hallucination_score",
            "clip_score", "safety_flag_rate"} <= names


def test_config_errors_name_the_key() -> None:
    with pytest.raises(CanaryConfigError, match=r"metrics\.0"):
        spec_from_mapping({"metrics": [{"name": "x", "column": "prompt"}]}, source="canary.yaml")
    with pytest.raises(CanaryConfigError, match="thresholds"):
        spec_from_mapping({"thresholds": {"pass": 70, "marginal": 80}}, source="canary.yaml")
    with pytest.raises(CanaryConfigError, match="unknown_key|extra"):
        spec_from_mapping({"unknown_key": 1}, source="canary.yaml")
    with pytest.raises(CanaryConfigError, match="'flavour' is not one of"):
        parse_selector("flavour=canary", what="--canary")
    assert parse_selector("service=chat-api, model_version=v1.6") == {"service": "chat-api", "model_version": "v1.6"}
