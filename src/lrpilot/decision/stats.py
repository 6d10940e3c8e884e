"""The statistics of a decision: Top-1 intervals, paired comparisons and the group tied with the best.

One policy's outcomes on a task are ``{seed: correct}``, ``correct`` a 1-D bool array of per-example
correctness on one split (the same examples in the same order for every seed and policy of the task).
They form a matrix ``y[s, i]`` (seeds x examples) whose mean is the Top-1; :data:`METHOD` states how its
uncertainty is estimated. The computations run on stacks of such matrices (policies x seeds x examples), so that
a ranking of thousands of policies is a few array operations; Games-Howell's studentized range is integrated by
:func:`range_sf` (vectorised, scipy's integral only where its answer decides a tie). Pure numpy (the special
functions in :mod:`lrpilot.decision.special`): no torch, no store, no scipy but where a p is within 1e-8 of alpha and
in :func:`power` (slow to import).
"""

from __future__ import annotations

import functools
import math
from itertools import groupby
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from lrpilot.decision import special
from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

METHOD = (
    "Top-1 is the mean of the correctness matrix y[s, i] (seeds x examples); its variance is estimated as "
    "s2_seeds / n_seeds + s2_examples / n_examples (the variances of the seed means and of the example means, "
    "slightly conservative), with Welch-Satterthwaite degrees of freedom and a Student-t interval clipped to "
    "[0, 100], so it covers both a new training seed and a new draw of examples from the split's population; "
    "with one seed it covers example sampling only (seed-to-seed variation is unknown), with one example "
    "seed variation only, and an all-correct (all-wrong) matrix gets the exact Clopper-Pearson bound over "
    "the examples. Two policies are compared on the difference matrix a[s, i] - b[s, i] over their common "
    "seeds (paired by seed and example) with the same estimate; without a common seed, on the example-wise "
    "difference of their seed means, with the two seed variances summed. Each policy is compared with the "
    "best (highest mean): its t statistic is referred to the studentized range of k policies (Games-Howell: the best "
    "is the largest of k means chosen by the data, so k - 1 comparisons with it behave like all k (k - 1) / 2), "
    "which keeps the chance of declaring any of k equally good policies worse near alpha (simulated, 8 policies: "
    "0.045 with 5 seeds; 0.12 with 3, as Games-Howell is liberal with few seeds; Holm over the k - 1 pairs: 0.10 "
    "and 0.18); for k = 2 it is the two-sided t-test. A difference that is zero everywhere has p = 1. Policies not significantly worse are "
    "tied with the best."
)


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval, in percent (Top-1) or points (a difference)."""

    mean: float
    low: float
    high: float

    def to_list(self) -> list[float]:
        """``[low, high]``."""
        return [self.low, self.high]


@dataclass(frozen=True)
class Comparison:
    """``best`` against ``policy``: ``difference`` is best - policy in points; ``p_value`` the two-sided p of this
    one pair, ``p_adjusted`` Games-Howell's over the k policies (:data:`METHOD`); ``tied`` when not significantly
    worse (``p_adjusted > alpha``)."""

    policy: str
    best: str
    difference: Interval
    p_value: float
    tied: bool
    test: tuple[float, float, float, int, int, float] = field(repr=False)  # (mean, variance, df, #examples, k, alpha)

    @functools.cached_property
    def p_adjusted(self) -> float:
        return _range_p(*self.test)


@dataclass(frozen=True)
class Ties:
    """The best policy, the policies not significantly worse than it (best first) and every comparison."""

    best: str
    tied: tuple[str, ...]
    comparisons: dict[str, Comparison]
    method: str


def _matrix(outcomes: Mapping[int, np.ndarray], seeds: Sequence[int] | None = None) -> np.ndarray:
    """The (seeds x examples) float matrix of ``outcomes`` (of ``seeds`` only when given), checked."""
    rows = []
    for seed in sorted(outcomes) if seeds is None else seeds:
        row = np.asarray(outcomes[seed])
        if row.ndim != 1 or row.size == 0 or not (row.dtype == bool or np.isin(row, (0, 1)).all()):
            raise LRPilotError(f"the outcomes of seed {seed} are {clip(row)}: give a non-empty 1-D bool array "
                               "of per-example correctness")
        rows.append(row)
    if not rows:
        raise LRPilotError("no outcomes: give at least one seed's per-example correctness")
    if len({row.size for row in rows}) > 1:
        raise LRPilotError(f"the outcome arrays have {sorted({row.size for row in rows})} examples: every seed "
                           "and policy must be scored on the same examples of one split")
    return np.array(rows, dtype=float)


def _by_seeds(outcomes: Sequence[Mapping[int, np.ndarray]]) -> list[tuple[tuple[int, ...], list[int]]]:
    """The positions of ``outcomes`` grouped by their seeds (sorted), so that each group stacks into one array."""
    key = lambda i: tuple(sorted(outcomes[i]))  # noqa: E731
    return [(seeds, list(group)) for seeds, group in groupby(sorted(range(len(outcomes)), key=key), key)]


def _check_level(level: float, name: str = "level") -> None:
    """Raise unless ``0 < level < 1``."""
    if not 0.0 < level < 1.0:
        raise LRPilotError(f"{name} = {level!r}: give a probability between 0 and 1 (e.g. 0.95)")


def _seed_terms(y: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The seed term (variance of the seed means / #seeds, its df) of each matrix of the stack ``y`` (matrices x
    seeds x examples); none with one seed."""
    n = y.shape[1]
    return [(y.mean(axis=2).var(axis=1, ddof=1) / n, n - 1)] if n > 1 else []


def _terms(y: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The variance terms of each matrix of the stack ``y``: its seeds' and its examples' (the same of the
    example means); none over a single seed or example."""
    n = y.shape[2]
    return _seed_terms(y) + ([(y.mean(axis=1).var(axis=1, ddof=1) / n, n - 1)] if n > 1 else [])


def _combine(terms: Sequence[tuple[np.ndarray, int]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The summed variances and their Welch-Satterthwaite degrees of freedom (``nan`` variance: no term)."""
    if not terms:
        return np.full(size, math.nan), np.full(size, math.nan)
    variance = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return variance, np.where(denominator > 0, variance * variance / denominator, math.inf)


def _t_intervals(mean: np.ndarray, variance: np.ndarray, df: np.ndarray, level: float,
                 bound: float) -> list[Interval]:
    """Each ``mean`` (a fraction) +- its Student-t half-width, in percent, clipped to ``[-bound, 100]``."""
    with np.errstate(invalid="ignore"):
        half = np.where(np.isnan(variance), math.inf, special.stdtrit(df, 0.5 + level / 2) * np.sqrt(variance))
    low, high = 100 * np.maximum(mean - half, -bound) + 0.0, 100 * np.minimum(mean + half, 1.0)
    return [Interval(*map(float, v)) for v in zip(100 * mean, low, high)]


def top1_interval(outcomes: Mapping[int, np.ndarray], level: float = 0.95) -> Interval:
    """Mean Top-1 (%) over seeds and examples with a ``level`` confidence interval for the expected Top-1 of the
    policy over training seeds AND over examples drawn from the same population as the split."""
    return top1_intervals([outcomes], level)[0]


def top1_intervals(outcomes: Sequence[Mapping[int, np.ndarray]], level: float = 0.95) -> list[Interval]:
    """:func:`top1_interval` of each policy's outcomes, computed together."""
    _check_level(level)
    out: list[Interval] = [None] * len(outcomes)  # type: ignore[list-item]
    for _, group in _by_seeds(outcomes):
        y = np.stack([_matrix(outcomes[i]) for i in group])
        mean = y.mean(axis=(1, 2))
        for i, interval in zip(group, _t_intervals(mean, *_combine(_terms(y), len(group)), level, 0.0)):
            out[i] = interval
        for i, m in zip(group, mean):
            if m in (0.0, 1.0) and y.shape[2] > 1:
                out[i] = _exact_bound(float(m), y.shape[2], level)
    return out


def _exact_bound(mean: float, n_examples: int, level: float) -> Interval:
    """The Clopper-Pearson interval of an all-correct (``mean`` 1) or all-wrong (0) outcome on ``n_examples``."""
    far = 100 * ((1 - level) / 2) ** (1 / n_examples)
    return Interval(100.0, far, 100.0) if mean == 1.0 else Interval(0.0, 0.0, 100 - far)


def _differences(a: Mapping[int, np.ndarray], others: Sequence[Mapping[int, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean of a - b (fraction) for each b of ``others``, its variance and degrees of freedom, and the #examples:
    paired by common seeds, else by example."""
    ya, seeds_a = _matrix(a), sorted(a)
    mean, variance, df = (np.empty(len(others)) for _ in range(3))
    for seeds, group in _by_seeds(others):
        yb = np.stack([_matrix(others[i]) for i in group])
        if ya.shape[1] != yb.shape[2]:
            raise LRPilotError(f"the two policies have {ya.shape[1]} and {yb.shape[2]} examples: score them on the "
                               "same examples of one split")
        common = sorted(set(seeds_a) & set(seeds))
        if common:
            d = ya[[seeds_a.index(s) for s in common]] - yb[:, [seeds.index(s) for s in common]]
            mean[group], terms = d.mean(axis=(1, 2)), _terms(d)
        else:
            by_example = ya.mean(axis=0) - yb.mean(axis=1)
            mean[group] = by_example.mean(axis=1)
            terms = _seed_terms(ya[None]) + _seed_terms(yb) + _terms(by_example[:, None])
        variance[group], df[group] = _combine(terms, len(group))
    return mean, variance, df, ya.shape[1]


def paired_difference(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray],
                      level: float = 0.95) -> tuple[Interval, float]:
    """a - b in points with its ``level`` interval, and the one-sided p-value of H0: a <= b."""
    _check_level(level)
    mean, variance, df, n_examples = _differences(a, [b])
    return _t_intervals(mean, variance, df, level, 1.0)[0], float(_p_values(mean, variance, df, n_examples)[0])


def _p_values(mean: np.ndarray, variance: np.ndarray, df: np.ndarray, n_examples: int) -> np.ndarray:
    """One-sided p of H0: difference <= 0. No variation: 1 for a zero or negative difference, the sign test's
    0.5 ** n_examples for one that is positive everywhere; no variance estimate (one seed, one example): 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.stdtr(df, -(mean / np.sqrt(variance)))
    p = np.where(variance == 0, 0.5 ** n_examples, p)
    return np.where(((mean <= 0) & (variance == 0)) | np.isnan(variance), 1.0, p)


_TINY_P = 1e-9  # below this, Games-Howell's p is given as its Bonferroni bound (see _range_ps)
_NEAR = 1e-8  # a p of range_sf this close to alpha is computed by scipy's integral, which decided ties before


def _range_p(mean: float, variance: float, df: float, n_examples: int, k: int, alpha: float | None = None) -> float:
    """:func:`_range_ps` of one difference."""
    return float(_range_ps(*(np.array([x], float) for x in (mean, variance, df)), n_examples, k, alpha)[0])


def _range_ps(mean: np.ndarray, variance: np.ndarray, df: np.ndarray, n_examples: int, k: int,
              alpha: float | None = None) -> np.ndarray:
    """Games-Howell's p of each difference ``mean`` > 0 among ``k`` policies: the studentized range's tail at
    sqrt(2) t (:func:`range_sf`; within :data:`_NEAR` of ``alpha``, scipy's integral); the no-variation cases as
    :func:`_p_values`, Bonferroni-adjusted over the k - 1. Where Bonferroni over the k (k - 1) / 2 pairs bounds
    the tail below :data:`_TINY_P`, that bound (no integral is more exact there)."""
    p = np.minimum(1.0, 2 * (k - 1) * _p_values(mean, variance, df, n_examples))
    if k == 2:
        return p
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / np.sqrt(variance)
        bound = k * (k - 1) * special.stdtr(df, -t)  # pairs x the two-sided tail of |t|
    varied = (mean > 0) & (variance > 0)
    p[varied] = bound[varied]
    open_ = varied & (bound >= _TINY_P)
    q, nu = math.sqrt(2) * t[open_], np.minimum(df[open_], 1e6)
    sf = range_sf(q, k, nu)
    if alpha is not None:
        near = np.flatnonzero(np.abs(sf - alpha) <= _NEAR)
        if near.size:
            from scipy.stats import studentized_range  # slow to import: only for these

            sf[near] = [studentized_range.sf(q[i], k, nu[i]) for i in near]
    p[open_] = np.minimum(1.0, sf)
    return p


def _not_worse(p_pair: np.ndarray, mean: np.ndarray, variance: np.ndarray, df: np.ndarray, n_examples: int,
               k: int, alpha: float) -> np.ndarray:
    """Games-Howell's p > ``alpha`` for each pair, its integral skipped where the answer is sure: that p is at least
    the pair's own two-sided p (the range of k means exceeds that of two) and at most k (k - 1) / 2 times it
    (Bonferroni)."""
    tied = p_pair > alpha
    open_ = ~tied & (p_pair * k * (k - 1) / 2 > alpha)
    tied[open_] = _range_ps(mean[open_], variance[open_], df[open_], n_examples, k, alpha) > alpha
    return tied


def tied_with_best(outcomes: Mapping[str, Mapping[int, np.ndarray]], alpha: float = 0.05) -> Ties:
    """The best policy (highest mean Top-1; the first given on equal means) and those not significantly worse
    at level ``alpha`` after Games-Howell's correction; policies without outcomes are left out (:data:`METHOD`,
    which gives the measured chance of declaring one of many equally good policies worse)."""
    _check_level(alpha, "alpha")
    means = {name: float(_matrix(runs).mean()) for name, runs in outcomes.items() if runs}
    if not means:
        raise LRPilotError("no policy has outcomes: store the per-example correctness of at least one run")
    ranked = sorted(means, key=lambda name: -means[name])
    best, others, k = ranked[0], ranked[1:], len(ranked)
    mean, variance, df, n = _differences(outcomes[best], [outcomes[name] for name in others])
    p_pair = np.minimum(1.0, 2 * _p_values(mean, variance, df, n))
    tied = _not_worse(p_pair, mean, variance, df, n, k, alpha)
    intervals = _t_intervals(mean, variance, df, 0.95, 1.0)
    comparisons = {name: Comparison(name, best, intervals[i], float(p_pair[i]), bool(tied[i]),
                                    (float(mean[i]), float(variance[i]), float(df[i]), n, k, alpha))
                   for i, name in enumerate(others)}
    tied_names = (best, *(name for name in others if comparisons[name].tied))
    return Ties(best, tied_names, comparisons, METHOD)


_W_STEP, _W_END = 0.02, 30.0  # the grid of ranges w on which the tail of the range of k normals is tabulated
_Z_STEP, _Z_END = 0.05, 12.0  # nodes z for the largest of the k normals (trapezoid rule)
_Z = _Z_STEP * np.arange(-round(_Z_END / _Z_STEP), round(_Z_END / _Z_STEP) + 1)
_LATTICE = 0.01  # z - w on the two grids lies on this lattice, so that its log CDF is computed once per value


@functools.lru_cache(maxsize=16)
def _log_range_tail(k: int) -> tuple[np.ndarray, float, float]:
    """log P(range of k standard normals > w) on the grid w = 0, _W_STEP, ..., _W_END; the largest w where it is
    1 to 1e-15; and the spread of the range (its 10-90 % width over its median), which sets the panels' width.
    The tail is k E[Phi(z)^(k-1) - (Phi(z) - Phi(z - w))^(k-1)] over the largest z, the difference written so that
    small tails keep their digits."""
    w = np.arange(0.0, _W_END + _W_STEP / 2, _W_STEP)
    step_z, step_w, end = (round(x / _LATTICE) for x in (_Z_STEP, _W_STEP, _Z_END + _W_END))
    zs, ws = np.arange(_Z.size) - (_Z.size - 1) // 2, np.arange(w.size)
    lattice = special.log_ndtr(_LATTICE * np.arange(-end, round(_Z_END / _LATTICE) + 1))
    top, low = lattice[step_z * zs + end], lattice[step_z * zs[None, :] - step_w * ws[:, None] + end]
    with np.errstate(divide="ignore"):
        lost = -np.expm1((k - 1) * np.log1p(-np.exp(low - top)))
        tail = np.log((np.exp((k - 1) * top - _Z * _Z / 2) * lost).sum(axis=1))
    tail -= tail[0]  # P(range > 0) = 1: the quadrature's own scale cancels
    at = lambda p: float(np.interp(math.log(p), tail[::-1], w[::-1]))  # noqa: E731 - the w where the tail is p
    return tail, float(w[np.flatnonzero(tail > -1e-15)[-1]]), (at(0.1) - at(0.9)) / at(0.5)


def _tail_at(k: int, w: np.ndarray) -> np.ndarray:
    """P(range of k normals > w) for w >= 0, by cubic (4-point Lagrange) interpolation of its log on the grid;
    0 past the grid's end (below 1e-40 there)."""
    table = _log_range_tail(k)[0]
    u = w / _W_STEP
    i = np.clip(np.floor(u).astype(int) - 1, 0, table.size - 4)
    t = u - i
    a, b, c, d = (table[i + j] for j in range(4))
    log = (-a * (t - 1) * (t - 2) * (t - 3) + 3 * b * t * (t - 2) * (t - 3) - 3 * c * t * (t - 1) * (t - 3)
           + d * t * (t - 1) * (t - 2)) / 6
    return np.where(w <= _W_END, np.exp(log), 0.0)


def range_sf(q: np.ndarray, k: int, df: np.ndarray) -> np.ndarray:
    """P(Q > q) for the studentized range Q of ``k`` means with ``df`` degrees of freedom, elementwise: what
    ``scipy.stats.studentized_range.sf`` integrates one value at a time (``df`` >= 100,000: its asymptotic form,
    the range of k normals), as one vectorised integral. P(Q > q) = E_s[P(range > q s)], s ~ chi_df / sqrt(df):
    over x = log s in Gauss-Legendre panels no wider than the density's scale 1 / sqrt(2 df) or the tail's
    spread (halved), from where the tail is 1 to 12 scales above 0; below, where the tail is 1, panels of the
    density alone, down to max(12 scales, 50 / df) below 0 (where P(s < e^x) < 1e-21). Agrees
    with scipy within 5e-4 of the value + 5e-11 (scipy's own error) over k <= 2000 (tests/bench/test_stats.py)."""
    q, df = np.broadcast_arrays(np.asarray(q, float), np.asarray(df, float))
    out = np.empty(q.shape)
    asymptotic = df >= 100_000
    if asymptotic.any():
        out[asymptotic] = _tail_at(k, q[asymptotic])
    q, nu = q[~asymptotic], df[~asymptotic]
    if not q.size:
        return out
    _, one, spread = _log_range_tail(k)
    scale = 1 / np.sqrt(2 * nu)
    floor, hi = -np.maximum(12 * scale, 50 / nu), 12 * scale
    with np.errstate(divide="ignore"):
        lo = np.clip(np.log(one / q), floor, hi)
    log_norm = math.log(2) + nu / 2 * np.log(nu / 2) - special.gammaln(nu / 2)
    density = lambda x, of: np.exp(log_norm[of] + nu[of] * (x - np.exp(2 * x) / 2))  # noqa: E731 - of log s
    x, weight, of = special.gauss_panels(lo, hi, np.ceil((hi - lo) / (np.minimum(scale, spread) / 2)))
    out[~asymptotic] = np.bincount(of, weight * density(x, of) * _tail_at(k, q[of] * np.exp(x)), minlength=q.size)
    x, weight, of = special.gauss_panels(floor, lo, np.ceil((lo - floor) / scale))
    out[~asymptotic] += np.bincount(of, weight * density(x, of), minlength=q.size)
    return out


def cheapest(tied: Sequence[str], cost: Mapping[str, Sequence[float]]) -> str:
    """Among tied policies the one with the smallest cost tuple (e.g. (#Param, #Iterations at best)),
    ties kept in the given order; a missing (NaN) cost counts as the largest."""
    if not tied:
        raise LRPilotError("no tied policies: give at least one policy name")
    missing = [name for name in tied if name not in cost]
    if missing:
        raise LRPilotError(f"no cost for {clip(missing)}: give a cost tuple for every tied policy")
    return min(tied, key=lambda name: tuple(math.inf if math.isnan(c) else c for c in cost[name]))


def power(test: tuple[float, ...], delta: float, alpha: float = 0.05) -> float:
    """The chance that :func:`tied_with_best` declares a policy worse than the best when it is ``delta`` (a fraction,
    0.005 for half a point) behind, at the variance and degrees of freedom of a comparison's ``test`` taken as the
    true variance of the difference: the noncentral t's tail beyond Games-Howell's critical value among the k
    policies (the two-sided t-test's for k = 2). nan without a variance estimate (one seed and one example, or none)."""
    _check_level(alpha, "alpha")
    _, variance, df, _, k = test[:5]
    if math.isnan(variance) or variance <= 0:
        return math.nan
    df = min(df, 1e6)
    critical = special.stdtrit(df, 1 - alpha / 2) if k == 2 else _range_critical(k, df, alpha) / math.sqrt(2)
    from scipy.special import nctdtr  # slow to import: only the decision's words need it

    return float(1.0 - nctdtr(df, delta / math.sqrt(variance), critical))


def _range_critical(k: int, df: float, alpha: float) -> float:
    """The q at which the studentized range's tail (:func:`range_sf`) is ``alpha``, by bisection."""
    low, high = 0.0, 100.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if range_sf(np.array([mid]), k, np.array([df]))[0] > alpha else (low, mid)
    return (low + high) / 2


def mean_difference(pairs: Sequence[tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray]]],
                    level: float = 0.95) -> Interval:
    """The mean over tasks of a - b in points, each ``(a, b)`` the outcomes of two policies on one task's split
    (paired by seed and example as :func:`paired_difference`), with its ``level`` interval: the tasks' variances
    summed over (#tasks)^2 with Welch-Satterthwaite degrees of freedom. The tasks are fixed: the interval covers
    seeds and examples, not the choice of tasks."""
    _check_level(level)
    if not pairs:
        raise LRPilotError("no tasks: give at least one pair of outcomes")
    differences = [tuple(float(x[0]) for x in _differences(a, [b])[:3]) for a, b in pairs]
    n = len(differences)
    variance, df = _combine([(np.array([v / n ** 2]), d) for _, v, d in differences if not math.isnan(v)], 1)
    return _t_intervals(np.array([sum(m for m, *_ in differences) / n]), variance, df, level, 1.0)[0]
