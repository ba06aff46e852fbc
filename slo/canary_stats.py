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
from typing import Literal, Sequence

import numpy as np
from scipy import stats

# R: exact <- (n.x < 50) && (n.y < 50), and only without ties.
EXACT_MAX_N = 50
# Order statistics of the n*m differences (_select_differences): pairs of distinct values up
# to which they are listed and sorted outright (exact float differences, like R's
# outer(x, y, "-")); beyond, a randomised selection narrows a bracket to that many first,
# drawing this many pairs per round.
SELECT_LIST_PAIRS = 60_000
SELECT_SAMPLE = 16_384
SELECT_MAX_ROUNDS = 64
# Distinct values per arm above which the estimate and interval (not the test) are computed on
# values rounded to this many significant digits (R's wilcox.test has the same knob:
# digits.rank). Keeps a 1M-samples-per-arm verdict under a second; the test stays exact.
HL_COARSEN_ABOVE = 200_000
HL_COARSEN_DIGITS = 5


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
        p = float(stats.mannwhitneyu(tx.expand(), ty.expand(), alternative="two-sided",
                                     method="exact").pvalue)
        dist = _wilcox_cdf(n, m)
        qu = _qwilcox(alpha / 2.0, dist)
        if qu == 0:
            qu = 1
        ql = n * m - qu
        achieved = 1.0 - 2.0 * float(dist[int(qu) - 1]) if qu >= 1 else 1.0
        lo, hi, estimate = _interval_and_estimate(tx, ty, qu, ql + 1)
        return MannWhitney(n, m, u, p, "exact", estimate, lo, hi, confidence,
                           min(achieved, 1.0), ties)
    tie_term = float(np.sum(totals.astype(np.float64) ** 3 - totals))
    p = asymptotic_p_value(u, n, m, tie_term)
    # Interval: between pairwise differences only within-arm ties are left (see module doc).
    within = float(np.sum(tx.counts.astype(np.float64) ** 3 - tx.counts)
                   + np.sum(ty.counts.astype(np.float64) ** 3 - ty.counts))
    big_n = n + m
    sigma = math.sqrt(n * m / 12.0 * ((big_n + 1) - within / (big_n * (big_n - 1))))
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    nm = n * m
    k_low = min(max(math.ceil(nm / 2.0 - 0.5 - z * sigma), 1), nm)
    k_high = min(max(math.ceil(nm / 2.0 + 0.5 + z * sigma), 1), nm)
    hx, hy, digits = _coarsened(tx, ty)
    lo, hi, estimate = _interval_and_estimate(hx, hy, k_low, k_high)
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
    return float(min(max(2.0 * stats.norm.sf(zval), 0.0), 1.0))


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
    p = float(stats.fisher_exact(table, alternative="two-sided").pvalue)
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
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
    za = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    zb = stats.norm.ppf(power)
    return float(2.0 * ((za + zb) * sd / shift) ** 2 / (3.0 / math.pi))


def samples_to_detect_rates(p0: float, p1: float, confidence: float, power: float) -> float:
    """Samples per arm to detect rates p0 -> p1 with a two-sided test at ``confidence``
    (normal approximation, pooled variance under the null; Fleiss without continuity)."""
    if p1 == p0:
        return math.inf
    za = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    zb = stats.norm.ppf(power)
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


def _median_ks(nm: int) -> list[int]:
    """Ranks whose mean is the median of nm pairwise differences (the Hodges-Lehmann estimate)."""
    return [(nm + 1) // 2] if nm % 2 else [nm // 2, nm // 2 + 1]


def _interval_and_estimate(tx: Tally, ty: Tally, k_low: int, k_high: int) -> tuple[float, float, float]:
    """The k_low-th and k_high-th smallest pairwise differences and their median, in one
    selection: the four ranks share the candidate bookkeeping (and the sort when few pairs)."""
    mid = _median_ks(tx.n * ty.n)
    got = _kth_differences(tx, ty, [k_low, k_high, *mid])
    return got[0], got[1], float(np.mean(got[2:]))


def _median_difference(tx: Tally, ty: Tally) -> float:
    """Median of all n*m pairwise differences x_i - y_j (the Hodges-Lehmann estimate)."""
    return float(np.mean(_kth_differences(tx, ty, _median_ks(tx.n * ty.n))))


def _kth_differences(tx: Tally, ty: Tally, ks: Sequence[int]) -> list[float]:
    """The k-th smallest (1-based) of the n*m pairwise differences x_i - y_j, for each k."""
    return [float(v) for v in _select_differences(tx.values, tx.counts, ty.values, ty.counts,
                                                   np.asarray(ks, dtype=np.int64))]


@dataclass
class _Bracket:
    """Pairs j in [hi_pos_i, lo_pos_i) of each row i: those above lo and at most hi, for the
    ranks (1-based, ascending) that lie among them; ``below`` is the weight of pairs <= lo."""

    ranks: np.ndarray
    hi_pos: np.ndarray
    lo_pos: np.ndarray
    below: int
    stuck: int = 0

    @property
    def pairs(self) -> int:
        return int((self.lo_pos - self.hi_pos).sum())


def _select_differences(a: np.ndarray, ca: np.ndarray, b: np.ndarray, cb: np.ndarray,
                        ks: np.ndarray) -> np.ndarray:
    """Order statistics (1-based ranks ``ks``) of the weighted differences a_i - b_j (a, b
    strictly increasing, weights ca_i * cb_j) without forming all pairs: a randomised
    selection in X - Y (Floyd-Rivest sampling over Johnson and Mizoguchi's row bounds).

    The pairs form a K_a x K_b matrix whose rows fall as j rises. A probe d splits each row at
    pos_i(d) = searchsorted(b, a_i - d): pairs j >= pos_i are <= d, and their weight is counted
    in O(K_a log K_b). A bracket of pairs holding some of the ranks draws pairs in proportion
    to their weight, probes a few standard errors either side of each rank's place in that
    sample, and is replaced by the parts between the probes that still hold ranks (ranks close
    together share one). Each round keeps ~7/sqrt(SELECT_SAMPLE) of a bracket, so a few rounds
    leave at most ``SELECT_LIST_PAIRS`` pairs, which are listed, sorted and counted exactly.
    Work: O(rounds x (K_a log K_b + SELECT_SAMPLE log)). The random draws only steer the
    probes: the answer does not depend on them.
    """
    ka, kb = a.size, b.size
    ks = np.asarray(ks, dtype=np.int64)
    if ka * kb <= SELECT_LIST_PAIRS:
        return _list_and_pick(a, ca, b, cb, np.zeros(ka, dtype=np.int64), np.full(ka, kb, dtype=np.int64), ks)
    rng = np.random.default_rng(0x5EED)
    cum_b = np.concatenate(([0], np.cumsum(cb)))          # weight of b[:j]
    total_b = int(cum_b[-1])
    ca_f = ca.astype(np.float64)
    found: dict[int, float] = {}
    open_ = [_Bracket(np.unique(ks), np.zeros(ka, dtype=np.int64), np.full(ka, kb, dtype=np.int64), 0)]
    for round_ in range(SELECT_MAX_ROUNDS):
        if not open_:
            break
        plans: list[tuple[_Bracket, list[tuple[np.ndarray, float, float]]]] = []
        for br in open_:
            if br.pairs <= SELECT_LIST_PAIRS or br.stuck >= 2 or round_ == SELECT_MAX_ROUNDS - 1:
                got = _list_and_pick(a, ca, b, cb, br.hi_pos, br.lo_pos, br.ranks - br.below)
                found.update(zip(br.ranks.tolist(), got.tolist()))
                continue
            plans.append((br, _probe_windows(rng, a, ca_f, b, cum_b, br)))
        if not plans:
            break
        probes = np.array([d for _, windows in plans for _, lo, hi in windows for d in (lo, hi)])
        pos = np.searchsorted(b, a[None, :] - probes[:, None], side="left")
        weight = ((total_b - cum_b[pos]) * ca[None, :]).sum(axis=1)
        open_ = []
        p = 0
        for br, windows in plans:
            count = 2 * len(windows)
            w, ps = weight[p:p + count], pos[p:p + count]
            p += count
            order = np.argsort(w, kind="stable")       # counts rise with the probe
            w, ps = w[order], ps[order]
            before = br.pairs
            for ranks, _lo, _hi in windows:
                i_lo = int(np.searchsorted(w, ranks[0], side="left"))   # probes with weight < first rank
                i_hi = int(np.searchsorted(w, ranks[-1], side="left"))  # first probe with weight >= last rank
                lo_pos, below = (ps[i_lo - 1], int(w[i_lo - 1])) if i_lo > 0 and w[i_lo - 1] > br.below \
                    else (br.lo_pos, br.below)
                hi_pos = ps[i_hi] if i_hi < count else br.hi_pos
                child = _Bracket(ranks, np.maximum(hi_pos, br.hi_pos), np.minimum(lo_pos, br.lo_pos), below)
                # a bracket of one heavily tied difference cannot shrink: list it next round
                child.stuck = br.stuck + 1 if child.pairs >= before else 0
                _merge_into(open_, child)
    return np.array([found[int(k)] for k in ks], dtype=np.float64)


def _merge_into(brackets: list[_Bracket], child: _Bracket) -> None:
    """Ranks whose probes left the same bracket share it."""
    for br in brackets:
        if br.below == child.below and np.array_equal(br.lo_pos, child.lo_pos) \
                and np.array_equal(br.hi_pos, child.hi_pos):
            br.ranks = np.union1d(br.ranks, child.ranks)
            return
    brackets.append(child)


def _probe_windows(rng: np.random.Generator, a: np.ndarray, ca_f: np.ndarray, b: np.ndarray,
                   cum_b: np.ndarray, br: _Bracket) -> list[tuple[np.ndarray, float, float]]:
    """Draw SELECT_SAMPLE pairs of the bracket by weight (by pair when a stuck bracket's
    weight sits on few pairs) and return, per group of nearby ranks, two probes: sample
    quantiles 3.5 standard errors below the first rank's place and above the last's."""
    row_w = (cum_b[br.lo_pos] - cum_b[br.hi_pos]) * ca_f
    bracket_w = float(row_w.sum())
    by_pair = br.stuck > 0
    width = br.lo_pos - br.hi_pos
    cum_rows = np.cumsum(width.astype(np.float64) if by_pair else row_w)
    size = SELECT_SAMPLE
    # sorted draws: rows (and so the columns, which rise with the row) are searched in order
    rows = np.searchsorted(cum_rows, np.sort(rng.random(size)) * cum_rows[-1], side="right")
    rows = np.minimum(rows, a.size - 1)
    if by_pair:
        cols = br.hi_pos[rows] + (rng.random(size) * width[rows]).astype(np.int64)
    else:
        low_w, high_w = cum_b[br.hi_pos[rows]], cum_b[br.lo_pos[rows]]
        cols = np.searchsorted(cum_b, low_w + rng.random(size) * (high_w - low_w), side="right") - 1
    cols = np.clip(cols, br.hi_pos[rows], br.lo_pos[rows] - 1)
    sample = np.sort(a[rows] - b[cols])
    places = (br.ranks - br.below) / bracket_w
    spread = 3.5 * np.sqrt(np.maximum(places * (1 - places), 1.0 / size) / size)
    lows = np.clip(np.floor((places - spread) * size).astype(np.int64), 0, size - 1)
    highs = np.clip(np.ceil((places + spread) * size).astype(np.int64), 0, size - 1)
    windows: list[tuple[np.ndarray, float, float]] = []
    start = 0
    for i in range(1, br.ranks.size + 1):
        # ranks whose sample windows overlap share one pair of probes
        if i == br.ranks.size or lows[i] > highs[i - 1]:
            low, high = float(sample[lows[start]]), float(sample[highs[i - 1]])
            if low >= high:
                # the ranks sit on one heavily tied value: bracket just that value
                low = float(np.nextafter(high, -np.inf))
            windows.append((br.ranks[start:i], low, high))
            start = i
    return windows


def _list_and_pick(a: np.ndarray, ca: np.ndarray, b: np.ndarray, cb: np.ndarray, hi_pos: np.ndarray,
                   lo_pos: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The rank-th (1-based, by weight) of the pairs j in [hi_pos_i, lo_pos_i) of each row i,
    for each rank, listed as exact float differences (R's outer(x, y, "-")) and sorted."""
    width = lo_pos - hi_pos
    rows = np.repeat(np.arange(a.size), width)
    starts = np.cumsum(width) - width
    cols = np.arange(rows.size) - np.repeat(starts - hi_pos, width)
    diffs = a[rows] - b[cols]
    order = np.argsort(diffs, kind="stable")
    cum = np.cumsum((ca[rows] * cb[cols])[order])
    idx = np.minimum(np.searchsorted(cum, np.asarray(ranks), side="left"), cum.size - 1)
    return diffs[order][idx].astype(np.float64)
