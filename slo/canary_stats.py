"""Statistics of the canary judge: the two-sample Mann-Whitney U test with the Hodges-Lehmann
estimate and its confidence interval exactly as R's ``wilcox.test(x, y, conf.int=TRUE)``
computes them, and a test on counts for proportion metrics.

scipy does the p-values (``mannwhitneyu`` for the exact distribution, ``norm`` for the
normal approximation, ``fisher_exact`` for counts). What scipy lacks is written here: the
Hodges-Lehmann estimate and its interval, the quantile of the exact null distribution of U
(R's ``qwilcox``) and Newcombe's score interval for a difference of proportions.

Every function works on *distinct values with counts* (what ``GROUP BY value`` in DuckDB
returns), so the ranks, ties and U are exact while a million samples per arm cost only as
much as their distinct values. ``x`` is the canary, ``y`` the baseline; the interval is
for the location shift x - y (R's and Kayenta's convention).

R's algorithm, in short (stats:::wilcox.test.default):
- exact when both arms have fewer than 50 values and there are no ties: p from the exact
  distribution of W, interval ``[diffs[qu], diffs[n*m - qu + 1]]`` of the sorted pairwise
  differences with ``qu = qwilcox(alpha/2, n, m)``, estimate ``median(diffs)``;
- otherwise the normal approximation with the tie correction and a continuity correction
  of 0.5, and an interval from the roots (``uniroot``, tolerance 1e-4) of the standardised
  statistic W(d) of ``c(x - d, y)``. Between two pairwise differences W(d) is constant and
  only within-arm ties remain, so each root is the pairwise difference where W(d) crosses
  the bound: ``diffs[ceil(n*m/2 -+ 0.5 -+ z * sigma)]``. That order statistic is what is
  computed here (R's value lies within its uniroot tolerance of it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Sequence

import numpy as np

# R: exact <- (n.x < 50) && (n.y < 50), and only without ties.
EXACT_MAX_N = 50
# Pairs of distinct values up to which the order statistics of the differences come from one
# sorted outer difference (exact float differences, like R's outer(x, y, "-")); beyond, from a
# bisection on the difference with counts by binary search (O(K log K) per step).
OUTER_MAX_PAIRS = 400_000
# Distinct values per arm above which the estimate and interval (not the test) are computed on
# values rounded to this many significant digits (R's wilcox.test has the same knob:
# digits.rank). Keeps a 1M-samples-per-arm verdict under a second; the test stays exact.
HL_COARSEN_ABOVE = 200_000
HL_COARSEN_DIGITS = 5


def _stats() -> ModuleType:
    """scipy.stats, imported on first use: the server imports this module at start (the
    canary routes), and scipy costs ~60 MB of resident memory that most servers never use."""
    from scipy import stats
    return stats


@dataclass(frozen=True)
class Tally:
    """One arm as sorted distinct finite values with their counts."""

    values: np.ndarray  # float64, strictly increasing
    counts: np.ndarray  # int64, > 0

    @classmethod
    def of(cls, data: Sequence[float] | np.ndarray) -> "Tally":
        arr = np.asarray(data, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        values, counts = np.unique(arr, return_counts=True)
        return cls(values, counts.astype(np.int64))

    @classmethod
    def empty(cls) -> "Tally":
        return cls(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64))

    @functools.cached_property
    def n(self) -> int:
        return int(self.counts.sum())

    @functools.cached_property
    def _mean(self) -> float:
        n = self.n
        return float(np.dot(self.values, self.counts.astype(np.float64)) / n) if n else math.nan

    def mean(self) -> float:
        return self._mean

    def variance(self) -> float:
        n = self.n
        if n < 2:
            return math.nan
        mean = self.mean()
        return float(np.dot((self.values - mean) ** 2, self.counts) / (n - 1))

    def quantile(self, q: float) -> float:
        """The q-quantile (lower value at a split, enough for reporting)."""
        if not self.n:
            return math.nan
        cum = np.cumsum(self.counts)
        return float(self.values[min(int(np.searchsorted(cum, q * cum[-1], side="left")), len(cum) - 1)])

    def expand(self) -> np.ndarray:
        return np.repeat(self.values, self.counts)


@dataclass(frozen=True)
class MannWhitney:
    """Result of the two-sided test of canary (x) against baseline (y)."""

    n_x: int
    n_y: int
    u: float                  # U of x: pairs (x_i > y_j) + half the ties (scipy's U1)
    p_value: float
    method: Literal["exact", "asymptotic"]
    estimate: float           # Hodges-Lehmann estimate of the shift x - y
    ci_low: float
    ci_high: float
    confidence: float         # the level asked for
    achieved_confidence: float  # exact intervals reach only discrete levels (R warns; we report)
    ties: bool
    hl_digits: int | None = None  # set when estimate/interval used rounded values (huge arms)

    @property
    def cles(self) -> float:
        """Common-language effect size P(canary > baseline) + half the ties, U / (n m)."""
        return self.u / (self.n_x * self.n_y) if self.n_x and self.n_y else math.nan


def mann_whitney(x: Tally | Sequence[float] | np.ndarray, y: Tally | Sequence[float] | np.ndarray,
                 confidence: float = 0.95) -> MannWhitney:
    """R's ``wilcox.test(x, y, conf.int=TRUE, conf.level=confidence)`` (two-sided, mu = 0),
    with scipy's p-value for the same method and continuity correction.

    Raises ValueError when an arm is empty (no test is possible: the judge classifies NoData).
    """
    tx = x if isinstance(x, Tally) else Tally.of(x)
    ty = y if isinstance(y, Tally) else Tally.of(y)
    n, m = tx.n, ty.n
    if n == 0 or m == 0:
        raise ValueError("Mann-Whitney needs at least one value in each arm")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values, cx, cy = _merge(tx, ty)
    totals = cx + cy
    ties = bool((totals > 1).any())
    # Exact average ranks of the pooled sample, from the counts.
    ends = np.cumsum(totals)
    avg_rank = ends - (totals - 1) / 2.0
    u = float(np.dot(cx, avg_rank) - n * (n + 1) / 2.0)
    alpha = 1.0 - confidence
    exact = n < EXACT_MAX_N and m < EXACT_MAX_N and not ties
    if exact:
        p = float(_stats().mannwhitneyu(tx.expand(), ty.expand(), alternative="two-sided",
                                     method="exact").pvalue)
        dist = _wilcox_cdf(n, m)
        qu = _qwilcox(alpha / 2.0, dist)
        if qu == 0:
            qu = 1
        ql = n * m - qu
        achieved = 1.0 - 2.0 * float(dist[int(qu) - 1]) if qu >= 1 else 1.0
        lo, hi = _kth_differences(tx, ty, [qu, ql + 1])
        estimate = _median_difference(tx, ty)
        return MannWhitney(n, m, u, p, "exact", estimate, lo, hi, confidence,
                           min(achieved, 1.0), ties)
    tie_term = float(np.sum(totals.astype(np.float64) ** 3 - totals))
    p = asymptotic_p_value(u, n, m, tie_term)
    # Interval: between pairwise differences only within-arm ties are left (see module doc).
    within = float(np.sum(tx.counts.astype(np.float64) ** 3 - tx.counts)
                   + np.sum(ty.counts.astype(np.float64) ** 3 - ty.counts))
    big_n = n + m
    sigma = math.sqrt(n * m / 12.0 * ((big_n + 1) - within / (big_n * (big_n - 1))))
    z = float(_stats().norm.ppf(1.0 - alpha / 2.0))
    nm = n * m
    k_low = min(max(math.ceil(nm / 2.0 - 0.5 - z * sigma), 1), nm)
    k_high = min(max(math.ceil(nm / 2.0 + 0.5 + z * sigma), 1), nm)
    hx, hy, digits = _coarsened(tx, ty)
    lo, hi = _kth_differences(hx, hy, [k_low, k_high])
    estimate = _median_difference(hx, hy)
    return MannWhitney(n, m, u, p, "asymptotic", estimate, lo, hi, confidence, confidence, ties, digits)


def asymptotic_p_value(u: float, n: int, m: int, tie_term: float) -> float:
    """scipy.stats.mannwhitneyu's two-sided asymptotic p-value (tie and continuity corrected)
    from U of the first sample and sum(t^3 - t) over tie groups."""
    big_n = n + m
    mu = n * m / 2.0
    u = max(u, n * m - u)
    s = math.sqrt(n * m / 12.0 * ((big_n + 1) - tie_term / (big_n * (big_n - 1)))) if big_n > 1 else 0.0
    if s == 0.0:
        return 1.0
    zval = (u - mu - 0.5) / s
    return float(min(max(2.0 * _stats().norm.sf(zval), 0.0), 1.0))


# --------------------------------------------------------------------------- proportions


@dataclass(frozen=True)
class Proportions:
    """Counts of events in each arm and the test of their rates."""

    events_x: int
    n_x: int
    events_y: int
    n_y: int
    p_value: float
    method: str
    ci_low: float      # Newcombe hybrid score interval for rate_x - rate_y
    ci_high: float
    confidence: float

    @property
    def rate_x(self) -> float:
        return self.events_x / self.n_x if self.n_x else math.nan

    @property
    def rate_y(self) -> float:
        return self.events_y / self.n_y if self.n_y else math.nan

    @property
    def difference(self) -> float:
        return self.rate_x - self.rate_y


def compare_proportions(events_x: int, n_x: int, events_y: int, n_y: int,
                        confidence: float = 0.95) -> Proportions:
    """Fisher's exact test (two-sided, scipy) on the 2x2 table, and Newcombe's hybrid score
    interval (his method 10, from Wilson intervals) for the difference of the rates: the
    interval stays sensible at zero events, where the Wald interval collapses."""
    if n_x <= 0 or n_y <= 0:
        raise ValueError("a proportion needs at least one trial in each arm")
    if not (0 <= events_x <= n_x and 0 <= events_y <= n_y):
        raise ValueError("events must be between 0 and the number of trials")
    table = [[events_x, n_x - events_x], [events_y, n_y - events_y]]
    p = float(_stats().fisher_exact(table, alternative="two-sided").pvalue)
    z = float(_stats().norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    px, py = events_x / n_x, events_y / n_y
    lx, ux = wilson_interval(events_x, n_x, z)
    ly, uy = wilson_interval(events_y, n_y, z)
    d = px - py
    low = d - math.sqrt((px - lx) ** 2 + (uy - py) ** 2)
    high = d + math.sqrt((ux - px) ** 2 + (py - ly) ** 2)
    return Proportions(events_x, n_x, events_y, n_y, min(p, 1.0), "fisher-exact", low, high, confidence)


def wilson_interval(events: int, n: int, z: float) -> tuple[float, float]:
    p = events / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- sample sizes


def samples_to_detect_shift(sd: float, shift: float, confidence: float, power: float) -> float:
    """Samples per arm for the Mann-Whitney test to detect a location shift ``shift`` in data
    with standard deviation ``sd`` (two-sided at ``confidence``, equal arms): the t-test's
    size divided by the test's asymptotic relative efficiency under normality (3/pi)."""
    if not (sd > 0 and shift != 0 and math.isfinite(sd)):
        return math.inf if shift == 0 else 2.0
    za = _stats().norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    zb = _stats().norm.ppf(power)
    return float(2.0 * ((za + zb) * sd / shift) ** 2 / (3.0 / math.pi))


def samples_to_detect_rates(p0: float, p1: float, confidence: float, power: float) -> float:
    """Samples per arm to detect rates p0 -> p1 with a two-sided test at ``confidence``
    (normal approximation, pooled variance under the null; Fleiss without continuity)."""
    if p1 == p0:
        return math.inf
    za = _stats().norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    zb = _stats().norm.ppf(power)
    pbar = (p0 + p1) / 2.0
    top = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return float((top / (p1 - p0)) ** 2)


# --------------------------------------------------------------------------- internals


def _merge(tx: Tally, ty: Tally) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled distinct values with each arm's count (0 where the arm lacks the value)."""
    values = np.union1d(tx.values, ty.values)
    cx = np.zeros(values.size, dtype=np.int64)
    cy = np.zeros(values.size, dtype=np.int64)
    cx[np.searchsorted(values, tx.values)] = tx.counts
    cy[np.searchsorted(values, ty.values)] = ty.counts
    return values, cx, cy


@functools.lru_cache(maxsize=64)
def _wilcox_cdf(n: int, m: int) -> np.ndarray:
    """P(W <= w) for w = 0..n*m under the null without ties (R's pwilcox), exactly: the
    counts are the coefficients of the Gaussian binomial [n+m choose n]_q."""
    size = n * m + 1
    coeffs = np.zeros(size, dtype=object)
    coeffs[0] = 1
    for i in range(1, n + 1):
        # multiply by (1 - q^(m+i)), then divide by (1 - q^i): the quotient is a polynomial
        shift = m + i
        if shift < size:
            coeffs[shift:] = coeffs[shift:] - coeffs[:size - shift].copy()
        for k in range(i, size):
            coeffs[k] += coeffs[k - i]
    total = sum(coeffs)
    return np.array([float(c) for c in np.cumsum(coeffs)]) / float(total)


def _qwilcox(p: float, cdf: np.ndarray) -> int:
    """R's qwilcox(p, n, m) for p <= 0.5: the smallest q with P(W <= q) >= p (R subtracts
    10 machine epsilons from p first)."""
    target = p - 10 * np.finfo(float).eps
    return int(np.searchsorted(cdf, target, side="left"))


def _coarsened(tx: Tally, ty: Tally) -> tuple[Tally, Tally, int | None]:
    if max(tx.values.size, ty.values.size) <= HL_COARSEN_ABOVE:
        return tx, ty, None
    return _signif(tx, HL_COARSEN_DIGITS), _signif(ty, HL_COARSEN_DIGITS), HL_COARSEN_DIGITS


def _signif(t: Tally, digits: int) -> Tally:
    v = t.values
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.abs(v)))
    exponent[~np.isfinite(exponent)] = 0
    scale = 10.0 ** (digits - 1 - exponent)
    rounded = np.round(v * scale) / scale
    values, inverse = np.unique(rounded, return_inverse=True)
    counts = np.bincount(inverse, weights=t.counts, minlength=values.size).astype(np.int64)
    return Tally(values, counts)


def _median_difference(tx: Tally, ty: Tally) -> float:
    """Median of all n*m pairwise differences x_i - y_j (the Hodges-Lehmann estimate)."""
    nm = tx.n * ty.n
    if nm % 2:
        (mid,) = _kth_differences(tx, ty, [(nm + 1) // 2])
        return mid
    lo, hi = _kth_differences(tx, ty, [nm // 2, nm // 2 + 1])
    return (lo + hi) / 2.0


def _kth_differences(tx: Tally, ty: Tally, ks: Sequence[int]) -> list[float]:
    """The k-th smallest (1-based) of the n*m pairwise differences x_i - y_j, for each k."""
    a, ca, b, cb = tx.values, tx.counts, ty.values, ty.counts
    if a.size * b.size <= OUTER_MAX_PAIRS:
        diffs = np.subtract.outer(a, b).ravel()
        weights = np.multiply.outer(ca, cb).ravel()
        order = np.argsort(diffs, kind="stable")
        cum = np.cumsum(weights[order])
        idx = np.searchsorted(cum, np.asarray(ks, dtype=np.int64), side="left")
        return [float(v) for v in diffs[order][idx]]
    return [float(v) for v in _bisect_differences(a, ca, b, cb, np.asarray(ks, dtype=np.int64))]


def _bisect_differences(a: np.ndarray, ca: np.ndarray, b: np.ndarray, cb: np.ndarray,
                        ks: np.ndarray) -> np.ndarray:
    """Order statistics of the weighted differences without forming them: bisect on d with
    F(d) = #{x_i - y_j <= d} counted by binary search, then snap to the next difference."""
    total_y = int(cb.sum())
    cum_y = np.concatenate(([0], np.cumsum(cb)))

    # x_i - d is rounded, so a difference equal to d may land on either side of it; counting
    # with a tolerance of a few ulps of the data keeps such ties on the "<= d" side.
    tol = 64 * np.finfo(float).eps * max(float(np.abs(a).max()), float(np.abs(b).max()), 1.0)

    def count_le(d: np.ndarray) -> np.ndarray:
        # pairs with y_j >= x_i - d, for each probe d (rows)
        idx = np.searchsorted(b, a[None, :] - d[:, None] - tol, side="left")
        return ((total_y - cum_y[idx]) * ca[None, :]).sum(axis=1)

    lo = np.full(ks.size, a[0] - b[-1])
    hi = np.full(ks.size, a[-1] - b[0])
    below = count_le(lo) >= ks       # the smallest difference already reaches k
    lo = np.nextafter(lo, -np.inf)

    def next_difference(low: np.ndarray) -> np.ndarray:
        # the smallest difference above each low: per x_i, the largest y_j < x_i - low
        j = np.searchsorted(b, a[None, :] - low[:, None], side="left") - 1
        cand = np.where(j >= 0, a[None, :] - b[np.maximum(j, 0)], np.inf)
        cand = np.where(cand > low[:, None], cand, np.inf)
        return cand.min(axis=1)

    done = below.copy()
    out = np.where(below, a[0] - b[-1], np.nan)
    for step in range(200):
        if done.all():
            break
        if step % 4 == 3:
            # Data on a grid (ms with one decimal, integer tokens) leave few differences in
            # the bracket after a few halvings: stop as soon as the next one reaches k.
            nxt = next_difference(lo)
            hit = ~done & np.isfinite(nxt) & (count_le(nxt) >= ks)
            out = np.where(hit, nxt, out)
            done |= hit
        mid = lo + (hi - lo) / 2.0
        active = ~done & (mid > lo) & (mid < hi)
        if not active.any():
            break
        reach = count_le(mid) >= ks
        hi = np.where(active & reach, mid, hi)
        lo = np.where(active & ~reach, mid, lo)
    rest = ~done
    if rest.any():
        # lo and hi are one float step apart: the answer is the next difference above lo.
        nxt = next_difference(lo)
        out = np.where(rest, np.where(np.isfinite(nxt), nxt, hi), out)
    return out
