"""The statistics of a decision: Top-1 intervals, paired comparisons and the group tied with the best.

One policy's outcomes on a task are ``{seed: correct}``, ``correct`` a 1-D bool array of per-example
correctness on one split (the same examples in the same order for every seed and policy of the task).
They form a matrix ``y[s, i]`` (seeds x examples) whose mean is the Top-1; :data:`METHOD` states how its
uncertainty is estimated. Pure numpy and scipy: no torch, no store.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from lrpilot.errors import LRPilotError, clip

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
    test: tuple[float, float, float, int, int] = field(repr=False)  # (mean, variance, df, #examples, k)

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
        rows.append(row.astype(float))
    if not rows:
        raise LRPilotError("no outcomes: give at least one seed's per-example correctness")
    if len({row.size for row in rows}) > 1:
        raise LRPilotError(f"the outcome arrays have {sorted({row.size for row in rows})} examples: every seed "
                           "and policy must be scored on the same examples of one split")
    return np.vstack(rows)


def _check_level(level: float, name: str = "level") -> None:
    """Raise unless ``0 < level < 1``."""
    if not 0.0 < level < 1.0:
        raise LRPilotError(f"{name} = {level!r}: give a probability between 0 and 1 (e.g. 0.95)")


def _row_terms(y: np.ndarray) -> list[tuple[float, int]]:
    """The row term of ``y``: (variance of the row means / #rows, its df); none with one row."""
    n_rows = y.shape[0]
    return [(float(y.mean(axis=1).var(ddof=1)) / n_rows, n_rows - 1)] if n_rows > 1 else []


def _terms(y: np.ndarray) -> list[tuple[float, int]]:
    """The variance terms (variance of the mean, degrees of freedom) of the matrix ``y``: seeds, examples."""
    return _row_terms(y) + _row_terms(y.T)


def _combine(terms: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """The summed variance and its Welch-Satterthwaite degrees of freedom (``nan`` variance: no term)."""
    if not terms:
        return math.nan, math.nan
    variance = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms)
    return variance, (variance * variance / denominator if denominator > 0 else math.inf)


def _t_interval(mean: float, variance: float, df: float, level: float, bound: float) -> Interval:
    """``mean`` (a fraction) +- the Student-t half-width, in percent, clipped to ``[-bound, 100]``."""
    half = math.inf if math.isnan(variance) else float(sps.t.ppf(0.5 + level / 2, df)) * math.sqrt(variance)
    return Interval(100 * mean, 100 * max(mean - half, -bound) + 0.0, 100 * min(mean + half, 1.0))


def top1_interval(outcomes: Mapping[int, np.ndarray], level: float = 0.95) -> Interval:
    """Mean Top-1 (%) over seeds and examples with a ``level`` confidence interval for the expected Top-1 of the
    policy over training seeds AND over examples drawn from the same population as the split."""
    _check_level(level)
    y = _matrix(outcomes)
    mean = float(y.mean())
    if mean in (0.0, 1.0) and y.shape[1] > 1:
        return _exact_bound(mean, y.shape[1], level)
    return _t_interval(mean, *_combine(_terms(y)), level, 0.0)


def _exact_bound(mean: float, n_examples: int, level: float) -> Interval:
    """The Clopper-Pearson interval of an all-correct (``mean`` 1) or all-wrong (0) outcome on ``n_examples``."""
    far = 100 * ((1 - level) / 2) ** (1 / n_examples)
    return Interval(100.0, far, 100.0) if mean == 1.0 else Interval(0.0, 0.0, 100 - far)


def _difference(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray]) -> tuple[float, float, float, int]:
    """Mean of a - b (fraction), its variance, degrees of freedom and #examples: paired by common seeds, else
    by example."""
    ya, yb = _matrix(a), _matrix(b)
    if ya.shape[1] != yb.shape[1]:
        raise LRPilotError(f"the two policies have {ya.shape[1]} and {yb.shape[1]} examples: score them on the "
                           "same examples of one split")
    common = sorted(set(a) & set(b))
    if common:
        d = _matrix(a, common) - _matrix(b, common)
        return float(d.mean()), *_combine(_terms(d)), d.shape[1]
    by_example = ya.mean(axis=0) - yb.mean(axis=0)
    terms = _row_terms(ya) + _row_terms(yb) + _row_terms(by_example[:, None])
    return float(by_example.mean()), *_combine(terms), by_example.size


def paired_difference(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray],
                      level: float = 0.95) -> tuple[Interval, float]:
    """a - b in points with its ``level`` interval, and the one-sided p-value of H0: a <= b."""
    _check_level(level)
    mean, variance, df, n_examples = _difference(a, b)
    return _t_interval(mean, variance, df, level, 1.0), _p_value(mean, variance, df, n_examples)


def _p_value(mean: float, variance: float, df: float, n_examples: int) -> float:
    """One-sided p of H0: difference <= 0. No variation: 1 for a zero or negative difference, the sign test's
    0.5 ** n_examples for one that is positive everywhere; no variance estimate (one seed, one example): 1."""
    if (mean <= 0 and variance == 0) or math.isnan(variance):
        return 1.0
    if variance == 0:
        return 0.5 ** n_examples
    return float(sps.t.sf(mean / math.sqrt(variance), df))


_TINY_P = 1e-9  # below this, Games-Howell's p is given as its Bonferroni bound (see _range_p)


def _range_p(mean: float, variance: float, df: float, n_examples: int, k: int) -> float:
    """Games-Howell's p of a difference ``mean`` > 0 among ``k`` policies: the studentized range's tail at
    sqrt(2) t; the no-variation cases as :func:`_p_value`, Bonferroni-adjusted over the k - 1. Where Bonferroni
    over the k (k - 1) / 2 pairs bounds the tail below :data:`_TINY_P`, that bound (the numerical integration
    is no more exact there, and costs about 20 ms)."""
    if mean <= 0 or math.isnan(variance) or variance == 0 or k == 2:
        return min(1.0, 2 * (k - 1) * _p_value(mean, variance, df, n_examples))
    t = mean / math.sqrt(variance)
    bound = k * (k - 1) * float(sps.t.sf(t, df))  # pairs x the two-sided tail of |t|
    if bound < _TINY_P:
        return bound
    return float(min(1.0, sps.studentized_range.sf(math.sqrt(2) * t, k, min(df, 1e6))))


def _not_worse(p_pair: float, test: tuple[float, float, float, int, int], alpha: float) -> bool:
    """Games-Howell's p > ``alpha``, its integral skipped where the answer is sure: that p is at least the pair's
    own two-sided p (the range of k means exceeds that of two) and at most k (k - 1) / 2 times it (Bonferroni)."""
    k = test[-1]
    if p_pair > alpha:
        return True
    if p_pair * k * (k - 1) / 2 <= alpha:
        return False
    return _range_p(*test) > alpha


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
    comparisons = {}
    for name in others:
        d = _difference(outcomes[best], outcomes[name])
        p_pair = min(1.0, 2 * _p_value(*d))
        comparisons[name] = Comparison(name, best, _t_interval(*d[:3], 0.95, 1.0), p_pair,
                                       _not_worse(p_pair, (*d, k), alpha), (*d, k))
    tied = (best, *(name for name in others if comparisons[name].tied))
    return Ties(best, tied, comparisons, METHOD)


def cheapest(tied: Sequence[str], cost: Mapping[str, Sequence[float]]) -> str:
    """Among tied policies the one with the smallest cost tuple (e.g. (#Param, #Iterations at best)),
    ties kept in the given order; a missing (NaN) cost counts as the largest."""
    if not tied:
        raise LRPilotError("no tied policies: give at least one policy name")
    missing = [name for name in tied if name not in cost]
    if missing:
        raise LRPilotError(f"no cost for {clip(missing)}: give a cost tuple for every tied policy")
    return min(tied, key=lambda name: tuple(math.inf if math.isnan(c) else c for c in cost[name]))


def power(test: tuple[float, float, float, int, int], delta: float, alpha: float = 0.05) -> float:
    """The chance that :func:`tied_with_best` declares a policy worse than the best when it is ``delta`` (a fraction,
    0.005 for half a point) behind, at the variance and degrees of freedom of a comparison's ``test`` taken as the
    true variance of the difference: the noncentral t's tail beyond Games-Howell's critical value among the k
    policies (the two-sided t-test's for k = 2). nan without a variance estimate (one seed and one example, or none)."""
    _check_level(alpha, "alpha")
    _, variance, df, _, k = test
    if math.isnan(variance) or variance <= 0:
        return math.nan
    df = min(df, 1e6)
    critical = (sps.t.ppf(1 - alpha / 2, df) if k == 2
                else sps.studentized_range.ppf(1 - alpha, k, df) / math.sqrt(2))
    return float(sps.nct.sf(critical, df, delta / math.sqrt(variance)))


def mean_difference(pairs: Sequence[tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray]]],
                    level: float = 0.95) -> Interval:
    """The mean over tasks of a - b in points, each ``(a, b)`` the outcomes of two policies on one task's split
    (paired by seed and example as :func:`paired_difference`), with its ``level`` interval: the tasks' variances
    summed over (#tasks)^2 with Welch-Satterthwaite degrees of freedom. The tasks are fixed: the interval covers
    seeds and examples, not the choice of tasks."""
    _check_level(level)
    if not pairs:
        raise LRPilotError("no tasks: give at least one pair of outcomes")
    differences = [_difference(a, b) for a, b in pairs]
    n = len(differences)
    variance, df = _combine([(v / n ** 2, d) for _, v, d, _ in differences if not math.isnan(v)])
    return _t_interval(sum(m for m, *_ in differences) / n, variance, df, level, 1.0)
