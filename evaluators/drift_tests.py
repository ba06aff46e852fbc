"""Evidently's default column drift tests, computed from aggregates instead of raw rows.

Evidently 0.7's ``DataDriftPreset`` picks one test per column (``evidently.legacy.calculations.
stattests.registry._get_default_stattest``), after dropping NaN and +-inf from each side:

=====================  ===================  =====================================  ==========
reference rows (n_r)   column type          distinct values in both (n_v)          test
=====================  ===================  =====================================  ==========
n_r <= 1000            numerical            n_v <= 2                               Z-test
n_r <= 1000            numerical            3 <= n_v <= 5                          chi-square
n_r <= 1000            numerical            n_v > 5                                K-S
n_r <= 1000            categorical          n_v <= 2 / n_v > 2                     Z / chi-square
n_r > 1000             numerical            n_v <= 5                               Jensen-Shannon
n_r > 1000             numerical            n_v > 5                                Wasserstein (normed)
n_r > 1000             categorical          any                                    Jensen-Shannon
=====================  ===================  =====================================  ==========

Drift is detected when a p-value is below 0.05 (``<=`` for K-S, ``<`` for chi-square and Z) or
a distance reaches 0.1 (``>=``; Wasserstein distance divided by max(std of reference, 0.001),
Jensen-Shannon distance with the natural log). The dataset drifts when the share of drifted
columns is >= 0.5.

Every function here takes what a database can aggregate (value counts, ECDF extremes, binned
counts and sums) and returns the score Evidently would compute from the raw rows, or, for the
Wasserstein distance on large windows, bounds on it that decide the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Literal, Mapping, Sequence

import numpy as np
from scipy import stats
from scipy.spatial import distance

FeatureType = Literal["numerical", "categorical"]

SMALL_REFERENCE_ROWS = 1000  # Evidently: reference_data.shape[0] <= 1000 -> the "small" tests
FEW_NUMERIC_VALUES = 5  # numerical columns with <= 5 distinct values are tested like categories
KS_EXACT_MAX_ROWS = 10000  # scipy ks_2samp(method="auto"): exact p-value when max(n1, n2) <= 10000
WASSERSTEIN_MIN_NORM = 0.001  # Evidently: max(np.std(reference), 0.001)
DEFAULT_DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class DriftTest:
    """One of Evidently's stat tests: its registered name, display name, default threshold and
    which way it decides (a p-value below the threshold, or a distance at or above it)."""

    name: str
    display_name: str
    threshold: float
    kind: Literal["p_value", "distance"]
    inclusive: bool  # p-value tests: drift when p <= threshold (K-S) rather than p < threshold

    def drifted(self, score: float) -> bool:
        if self.kind == "distance":
            return bool(score >= self.threshold)
        return bool(score <= self.threshold) if self.inclusive else bool(score < self.threshold)


KS = DriftTest("ks", "K-S p_value", 0.05, "p_value", inclusive=True)
CHI_SQUARE = DriftTest("chisquare", "chi-square p_value", 0.05, "p_value", inclusive=False)
Z_TEST = DriftTest("z", "Z-test p_value", 0.05, "p_value", inclusive=False)
JENSEN_SHANNON = DriftTest("jensenshannon", "Jensen-Shannon distance", 0.1, "distance", inclusive=True)
WASSERSTEIN = DriftTest("wasserstein", "Wasserstein distance (normed)", 0.1, "distance", inclusive=True)

TESTS: dict[str, DriftTest] = {t.name: t for t in (KS, CHI_SQUARE, Z_TEST, JENSEN_SHANNON, WASSERSTEIN)}


def default_test(feature_type: FeatureType, n_reference: int, n_values: int) -> DriftTest:
    """The test Evidently's DataDriftPreset picks for a column.

    ``n_reference``: reference rows left after dropping NaN/inf; ``n_values``: distinct values of
    reference and current together (any number above 5 may be passed as 6 for numerical columns).
    """
    if feature_type not in ("numerical", "categorical"):
        raise ValueError(f"feature type must be 'numerical' or 'categorical', got {feature_type!r}")
    if n_reference <= SMALL_REFERENCE_ROWS:
        if feature_type == "numerical":
            if n_values <= FEW_NUMERIC_VALUES:
                return CHI_SQUARE if n_values > 2 else Z_TEST
            return KS
        return CHI_SQUARE if n_values > 2 else Z_TEST
    if feature_type == "numerical":
        return JENSEN_SHANNON if n_values <= FEW_NUMERIC_VALUES else WASSERSTEIN
    return JENSEN_SHANNON


@dataclass
class ColumnDrift:
    """The drift verdict for one column, as Evidently would report it.

    ``statistic`` is Evidently's "drift score" (the p-value of a p-value test, the distance of a
    distance test). ``p_value`` repeats it for p-value tests. For Wasserstein distances decided
    from bounds, ``statistic`` is the lower bound (the exact part, nearly always within 1e-4 of
    the true value) and ``details['bounds']`` holds [low, high].
    ``drifted`` is None when a window has no finite values (Evidently raises on such a column).
    """

    feature: str
    feature_type: FeatureType
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def tested(self) -> bool:
        return self.drifted is not None


def no_data(feature: str, feature_type: FeatureType, n_reference: int, n_current: int) -> ColumnDrift:
    empty = [side for side, n in (("reference", n_reference), ("current", n_current)) if n == 0]
    return ColumnDrift(
        feature, feature_type, "no_data", None, None, None, None,
        {"n_reference": n_reference, "n_current": n_current,
         "reason": f"no finite values in the {' and '.join(empty)} window"},
    )


def dataset_drift_share(columns: Sequence[ColumnDrift], drift_share: float = DEFAULT_DRIFT_SHARE) -> tuple[int, int, float, bool]:
    """(tested columns, drifted columns, share, dataset drifted) — Evidently's DatasetDriftMetric
    rule: share = drifted / tested, dataset drift when share >= drift_share. Columns without data
    are left out (Evidently refuses to run on them)."""
    tested = [c for c in columns if c.tested]
    drifted = sum(1 for c in tested if c.drifted)
    share = drifted / len(tested) if tested else 0.0
    return len(tested), drifted, share, bool(tested) and share >= drift_share


# --------------------------------------------------------------------------- counts-based tests


def _aligned(ref_counts: Mapping[Hashable, int], cur_counts: Mapping[Hashable, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref_counts) | set(cur_counts), key=lambda k: (str(type(k)), k))
    ref = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    return ref, cur


def chi_square_p_value(ref_counts: Mapping[Hashable, int], cur_counts: Mapping[Hashable, int]) -> float:
    """Evidently's chi-square: observed current counts against reference counts scaled to the
    current size (a value only in the current window gives p = 0)."""
    ref, cur = _aligned(ref_counts, cur_counts)
    k_norm = cur.sum() / ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur, ref * k_norm)[1])


def z_test_p_value(ref_counts: Mapping[Hashable, int], cur_counts: Mapping[Hashable, int]) -> float:
    """Evidently's two-proportion Z-test: the share of the smallest value in each window."""
    keys = sorted(set(ref_counts) | set(cur_counts))
    if len(keys) == 1:  # both windows hold the same single value
        return 1.0
    first = keys[0]
    n1, n2 = float(sum(ref_counts.values())), float(sum(cur_counts.values()))
    p1 = (n1 - ref_counts.get(first, 0)) / n1
    p2 = (n2 - cur_counts.get(first, 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def jensen_shannon_distance(ref_counts: Mapping[Hashable, int], cur_counts: Mapping[Hashable, int]) -> float:
    """scipy's Jensen-Shannon distance (natural log) between the two value distributions."""
    ref, cur = _aligned(ref_counts, cur_counts)
    return float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))


def counts_test(test: DriftTest, ref_counts: Mapping[Hashable, int], cur_counts: Mapping[Hashable, int]) -> float:
    if test is CHI_SQUARE:
        return chi_square_p_value(ref_counts, cur_counts)
    if test is Z_TEST:
        return z_test_p_value(ref_counts, cur_counts)
    if test is JENSEN_SHANNON:
        return jensen_shannon_distance(ref_counts, cur_counts)
    raise ValueError(f"{test.name} is not computed from value counts")


# --------------------------------------------------------------------------- K-S


def ks_p_value_asymptotic(d: float, n_reference: int, n_current: int) -> float:
    """scipy ks_2samp's two-sided p-value when max(n1, n2) > 10000 (Smirnov's asymptotic
    distribution), from the statistic alone."""
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))


def ks_statistic_from_ecdf(max_ref_minus_cur: float, max_cur_minus_ref: float) -> float:
    """scipy's D from the largest ECDF differences (both evaluated at every data point)."""
    return float(max(max_ref_minus_cur, min(max(max_cur_minus_ref, 0.0), 1.0)))


# --------------------------------------------------------------------------- Wasserstein


@dataclass(frozen=True)
class Bin:
    """Rows of one side inside a bin [low, high): how many, and the sum of their values."""

    low: float
    high: float
    ref_count: int
    ref_sum: float
    cur_count: int
    cur_sum: float


@dataclass(frozen=True)
class WassersteinBounds:
    """W1 between the two ECDFs lies in [low, high]; ``exact`` is the part computed exactly and
    ``ambiguous`` lists the bins (as indexes into the input) that carry the uncertainty."""

    low: float
    high: float
    ambiguous: tuple[int, ...]


def wasserstein_bounds(
    bins: Sequence[Bin], n_reference: int, n_current: int,
    ref_before: int = 0, cur_before: int = 0,
) -> WassersteinBounds:
    """Bounds on W1 = integral of |F_ref - F_cur| from per-bin counts and sums.

    On a bin [a, b) holding values x_j, integral_a^b F = F(a-) (b - a) + sum_j (b - x_j) / N
    exactly, so where F_ref - F_cur keeps one sign across the bin its contribution is exact.
    Elsewhere it lies between |integral of the difference| and the bin width times the
    largest difference possible there. ``bins`` must be sorted and contiguous; ``*_before`` are
    the rows of each side below the first bin.
    """
    low = high = 0.0
    ambiguous: list[int] = []
    r_before, c_before = float(ref_before), float(cur_before)
    nr, nc = float(n_reference), float(n_current)
    for i, b in enumerate(bins):
        width = b.high - b.low
        integral_ref = (r_before * width + b.ref_count * b.high - b.ref_sum) / nr
        integral_cur = (c_before * width + b.cur_count * b.high - b.cur_sum) / nc
        signed = integral_ref - integral_cur
        d_min = r_before / nr - (c_before + b.cur_count) / nc
        d_max = (r_before + b.ref_count) / nr - c_before / nc
        if d_min >= 0 or d_max <= 0 or width == 0:
            low += abs(signed)
            high += abs(signed)
        else:
            low += abs(signed)
            high += min(width * max(d_max, -d_min), 2 * width * d_max - signed, signed - 2 * width * d_min)
            ambiguous.append(i)
        r_before += b.ref_count
        c_before += b.cur_count
    return WassersteinBounds(low, max(high, low), tuple(ambiguous))


def wasserstein_norm(reference_std: float) -> float:
    return max(float(reference_std), WASSERSTEIN_MIN_NORM)


def rounding_tolerance(value_scale: float, norm: float) -> float:
    """How far our normed W1 may be from scipy's through floating-point rounding alone (sums of
    up to millions of values of magnitude ``value_scale``); decisions closer than this to the
    threshold are recomputed exactly."""
    return 1e-9 * (abs(value_scale) / norm + 1.0)


def decide_from_bounds(test: DriftTest, low: float, high: float, tolerance: float) -> bool | None:
    """True/False when the whole interval lies on one side of the threshold, else None."""
    if low - tolerance >= test.threshold:
        return True
    if high + tolerance < test.threshold:
        return False
    return None
