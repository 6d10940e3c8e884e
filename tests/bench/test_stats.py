"""The statistics of a decision: interval coverage on simulated benchmarks of known Top-1, ties, Games-Howell, cheapest."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import studentized_range

import lrpilot
from lrpilot.decision.stats import (_TINY_P, METHOD, Interval, _range_p, cheapest, paired_difference, tied_with_best,
                                 top1_interval, top1_intervals)
from lrpilot.errors import LRPilotError

MU, SB = 3.0, 1.5          # logit of a typical example (about 90 % Top-1) and the spread of example difficulty


def expected_top1(mu: float, sa: float, sb: float) -> float:
    """E[sigmoid(mu + a + b)], a ~ N(0, sa), b ~ N(0, sb), in percent, by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return 100 * float((w * expit(mu + math.hypot(sa, sb) * x)).sum() / w.sum())


def simulate(rng, n: int, seeds: int, m: int, mu: float = MU, sa: float = 0.2, sb: float = SB,
             b: np.ndarray | None = None) -> np.ndarray:
    """``n`` benchmarks (n x seeds x m bool): y ~ Bernoulli(sigmoid(mu + a_s + b_i)), a_s and b_i drawn afresh
    per benchmark (``b``: these example effects instead)."""
    a = rng.normal(0, sa, (n, seeds, 1))
    b = rng.normal(0, sb, (n, 1, m)) if b is None else b
    return rng.random((n, seeds, m)) < expit(mu + a + b)


def as_outcomes(y: np.ndarray, first_seed: int = 0) -> dict[int, np.ndarray]:
    """A (seeds x examples) matrix as ``{seed: correct}``."""
    return {first_seed + s: row for s, row in enumerate(y)}


def coverage(seeds: int, m: int, sa: float, n: int = 1000) -> float:
    """The share of ``n`` simulated benchmarks whose 95 % interval covers the expected Top-1."""
    truth = expected_top1(MU, sa, SB)
    y = simulate(np.random.default_rng(seeds * 10_000 + m), n, seeds, m, sa=sa)
    intervals = [top1_interval(as_outcomes(one)) for one in y]
    return float(np.mean([i.low <= truth <= i.high for i in intervals]))


@pytest.mark.parametrize("seeds, m", [(3, 450), (5, 1000)])
def test_interval_covers_the_expected_top1_over_seeds_and_examples(seeds, m):
    share = coverage(seeds, m, sa=0.2)
    assert 0.93 <= share <= 0.99                       # neither too narrow nor uselessly wide


def test_interval_without_seed_variance_covers_with_one_seed():
    assert coverage(1, 450, sa=0.0) >= 0.93


def test_interval_is_the_mean_with_bounds_in_percent():
    y = np.zeros((3, 200), bool)
    y[:, :150] = True
    y[0, 150:160] = True                               # 160/200, 150/200, 150/200
    interval = top1_interval(as_outcomes(y))
    assert interval.mean == pytest.approx(100 * 460 / 600)
    assert interval.low < interval.mean < interval.high
    assert interval.to_list() == [interval.low, interval.high]
    assert top1_interval(as_outcomes(y), level=0.5).high < interval.high


def test_all_correct_gets_the_exact_bound_and_one_example_says_nothing():
    assert top1_interval({0: np.ones(135, bool)}) == Interval(100.0, 100 * 0.025 ** (1 / 135), 100.0)
    assert top1_interval({0: np.zeros(135, bool)}).to_list() == [0.0, 100 - 100 * 0.025 ** (1 / 135)]
    assert top1_interval({0: np.ones(1, bool)}).to_list() == [0.0, 100.0]


def test_identical_outcomes_are_tied_with_p_one():
    y = simulate(np.random.default_rng(1), 1, 3, 450)[0]
    difference, p = paired_difference(as_outcomes(y), as_outcomes(y))
    assert (difference, p) == (Interval(0.0, 0.0, 0.0), 1.0)
    ties = tied_with_best({"a": as_outcomes(y), "b": as_outcomes(y.copy())})
    assert ties.tied == ("a", "b") and ties.comparisons["b"].p_value == 1.0
    assert ties.method == METHOD


def test_a_clearly_worse_policy_is_never_tied():
    rng = np.random.default_rng(2)
    for _ in range(50):
        good = rng.random((3, 450)) < 0.98
        bad = rng.random((3, 450)) < 0.70
        ties = tied_with_best({"bad": as_outcomes(bad), "good": as_outcomes(good)})
        assert (ties.best, ties.tied) == ("good", ("good",))
        comparison = ties.comparisons["bad"]
        assert comparison.difference.low > 0 and comparison.p_adjusted < 1e-3


def false_not_tied(k: int, n: int, common_seeds: bool = True, seeds: int = 3) -> float:
    """The share of ``n`` simulated benchmarks of ``k`` equally good policies (shared examples, their own seed
    effects, ``seeds`` seeds each) in which some policy is declared significantly worse than the best."""
    rng = np.random.default_rng(k)
    wrong = 0
    for _ in range(n):
        b = rng.normal(0, SB, (1, 1, 450))
        runs = {f"p{j}": as_outcomes(simulate(rng, 1, seeds, 450, b=b)[0], 0 if common_seeds else seeds * j)
                for j in range(k)}
        wrong += len(tied_with_best(runs).tied) < k
    return wrong / n


@pytest.mark.parametrize("common_seeds", [True, False])
def test_equally_good_policies_are_declared_worse_at_most_alpha_of_the_time(common_seeds):
    assert false_not_tied(2, 600, common_seeds) <= 0.05 + 0.025      # 0.025: about 3 Monte Carlo errors


def test_among_many_equally_good_policies_none_is_declared_worse_more_than_alpha_of_the_time():
    # the best is the largest of 8: Holm over 7 pairwise tests called one worse in 0.10 of these (0.18 with 3 seeds)
    assert false_not_tied(8, 200, seeds=5) <= 0.05 + 0.04


def test_games_howell_adjusts_for_the_number_of_policies():
    best = np.ones(400, bool)
    worse = best.copy()
    worse[:5] = False
    worse[10:15] = True                                 # 5 errors in 400 (one seed: example variation only)
    alone = tied_with_best({"best": {0: best}, "b": {0: worse}})
    comparison = alone.comparisons["b"]
    assert comparison.p_adjusted == pytest.approx(comparison.p_value)  # k = 2: the two-sided t-test
    assert comparison.p_value < 0.05 and not comparison.tied
    others = {f"c{j}": {0: np.roll(worse, 7 * j)} for j in range(5)}
    many = tied_with_best({"best": {0: best}, **others})
    for name in others:
        comparison = many.comparisons[name]
        assert comparison.p_value == pytest.approx(alone.comparisons["b"].p_value)
        assert comparison.p_value < 0.05 < comparison.p_adjusted
    assert set(many.tied) == {"best", *others}


def test_ties_order_by_mean_and_leave_out_policies_without_outcomes():
    rng = np.random.default_rng(3)
    runs = {name: as_outcomes(rng.random((3, 450)) < p) for name, p in (("low", 0.90), ("top", 0.93),
                                                                          ("mid", 0.92))}
    ties = tied_with_best({**runs, "empty": {}})
    means = {name: top1_interval(outcomes).mean for name, outcomes in runs.items()}
    assert ties.best == max(means, key=means.get) and "empty" not in ties.comparisons
    assert set(ties.comparisons) == set(runs) - {ties.best}
    assert list(ties.tied) == sorted(ties.tied, key=lambda name: -means[name])
    assert tied_with_best({"only": runs["low"], "empty": {}}).tied == ("only",)


def test_without_common_seeds_the_difference_is_unpaired_over_seeds():
    rng = np.random.default_rng(4)
    y = rng.random((6, 450)) < 0.9
    paired, _ = paired_difference(as_outcomes(y[:3]), as_outcomes(y[3:]))
    unpaired, p = paired_difference(as_outcomes(y[:3]), as_outcomes(y[3:], first_seed=10))
    assert unpaired.mean == pytest.approx(paired.mean)
    assert unpaired.high - unpaired.low != pytest.approx(paired.high - paired.low)
    assert 0 < p < 1
    same, p_same = paired_difference(as_outcomes(y[:3]), as_outcomes(y[:3], first_seed=10))
    assert same.mean == 0.0 and p_same == 0.5 and same.low < 0 < same.high


@pytest.mark.parametrize("outcomes, fix", [
    ({0: np.ones((2, 3), bool)}, "1-D bool array"),
    ({0: np.array([0.5, 1.0])}, "1-D bool array"),
    ({0: np.ones(3, bool), 1: np.ones(4, bool)}, "same examples"),
    ({}, "at least one seed"),
])
def test_bad_outcomes_raise_one_clear_error(outcomes, fix):
    with pytest.raises(LRPilotError, match=fix):
        top1_interval(outcomes)


def test_policies_scored_on_different_examples_raise():
    with pytest.raises(LRPilotError, match="450 and 449 examples"):
        tied_with_best({"a": {0: np.ones(450, bool)}, "b": {0: np.zeros(449, bool)}})


def test_bad_level_alpha_and_no_outcomes_raise():
    with pytest.raises(LRPilotError, match="level = 1.5"):
        top1_interval({0: np.ones(3, bool)}, level=1.5)
    with pytest.raises(LRPilotError, match="alpha = 0"):
        tied_with_best({"a": {0: np.ones(3, bool)}}, alpha=0)
    with pytest.raises(LRPilotError, match="no policy has outcomes"):
        tied_with_best({"a": {}})


def test_cheapest_takes_the_smallest_cost_tuple_keeping_the_given_order():
    cost = {"a": (100, 50), "b": (100, 40), "c": (100, 40), "d": (math.nan, 1)}
    assert cheapest(["a", "b", "c", "d"], cost) == "b"
    assert cheapest(["c", "b"], cost) == "c"
    assert cheapest(["d", "a"], cost) == "a"
    assert cheapest(["a"], cost) == "a"
    with pytest.raises(LRPilotError, match="no cost for \\['e'\\]"):
        cheapest(["a", "e"], cost)


def test_the_module_does_not_import_torch():
    code = "import sys, lrpilot.decision.stats; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(lrpilot.__file__).parents[1])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert run.stdout == "False\n"


def test_a_far_behind_policy_gets_the_bonferroni_bound_of_games_howell():
    for k, t, df in ((10, 7.9, 100.0), (2000, 8.0, 300.0), (5, 30.0, 50.0)):
        p = _range_p(t * 0.01, 0.0001, df, 450, k)
        exact = float(studentized_range.sf(math.sqrt(2) * t, k, df))
        assert p < _TINY_P or math.isclose(p, exact, rel_tol=1e-6)
        assert p >= exact * 0.999 or exact < 1e-12  # an upper bound wherever the integral is accurate
    assert _range_p(0.05, 0.0001, 100.0, 450, 10) == pytest.approx(studentized_range.sf(math.sqrt(2) * 5, 10, 100.0))


def test_the_vectorised_studentized_range_agrees_with_scipy_and_decides_the_same_ties():
    """range_sf against scipy's integral (the path of every tie before), on random (k, df, q): within scipy's own
    error (5e-11) + 5e-4 of the value, so the same to 3 significant digits (p-values print as .3g); and every
    Games-Howell decision at alpha = 0.05 the same, p near alpha included."""
    from lrpilot.decision.stats import _range_ps, range_sf

    rng = np.random.default_rng(23)
    for k in (3, 4, 8, 13, 50, 400, 2000):
        df = np.exp(rng.uniform(0, math.log(3e5), 24))
        q = np.concatenate([rng.uniform(0.5, 12, 12), [studentized_range.isf(0.05, k, d) for d in df[12:]]])
        q[12:] *= rng.uniform(0.99, 1.01, 12)  # near the critical value: p within a few % of alpha
        exact = np.array([studentized_range.sf(x, k, d) for x, d in zip(q, df)])
        fast = range_sf(q, k, df)
        assert np.all(np.abs(fast - exact) <= 5e-4 * exact + 5e-11), (k, q, df, fast, exact)
        t, variance = q / math.sqrt(2), np.full(q.size, 1e-4)
        p = _range_ps(t * 1e-2, variance, df, 450, k, alpha=0.05)
        old = [_range_p_of_scipy(m, v, d, k) for m, v, d in zip(t * 1e-2, variance, df)]
        assert [x > 0.05 for x in p] == [x > 0.05 for x in old]
        assert np.all(np.abs(p - old) <= 5e-4 * np.array(old) + 5e-11)


def _range_p_of_scipy(mean: float, variance: float, df: float, k: int) -> float:
    """Games-Howell's p as 0ce32fa computed it (scipy's integral, the Bonferroni bound below 1e-9)."""
    from scipy.stats import t as student

    t = mean / math.sqrt(variance)
    bound = k * (k - 1) * float(student.sf(t, df))
    return bound if bound < _TINY_P else float(min(1.0, studentized_range.sf(math.sqrt(2) * t, k, min(df, 1e6))))


def test_ties_computed_together_equal_those_computed_one_pair_at_a_time():
    rng = np.random.default_rng(7)
    runs = {f"p{j}": as_outcomes(rng.random((3, 269)) < 0.9 + 0.002 * j, first_seed=j % 2) for j in range(40)}
    ties = tied_with_best(runs)
    for name, comparison in ties.comparisons.items():
        alone = paired_difference(runs[ties.best], runs[name])
        assert comparison.difference == alone[0] and comparison.p_value == min(1.0, 2 * alone[1])
        assert comparison.tied == (comparison.p_adjusted > 0.05)
    assert [top1_interval(o) for o in runs.values()] == top1_intervals(list(runs.values()))


def test_power_is_the_noncentral_t_beyond_the_tie_test_s_critical_value():
    from scipy.stats import norm

    from lrpilot.decision.stats import power

    se = 0.004  # a difference's standard error: 0.4 points
    for delta in (0.0, 0.005, 0.01, 0.02):  # k = 2, many degrees of freedom: the normal approximation
        assert power((0.0, se ** 2, 1e9, 269, 2), delta) == pytest.approx(norm.sf(norm.isf(0.025) - delta / se), abs=1e-4)
    assert power((0.0, se ** 2, 8, 269, 2), 0.01) < power((0.0, se ** 2, 1e6, 269, 2), 0.01)  # few seeds: wider t
    assert power((0.0, se ** 2, 1e6, 269, 8), 0.01) < power((0.0, se ** 2, 1e6, 269, 2), 0.01)  # 8 policies: stricter
    assert math.isnan(power((0.0, math.nan, math.nan, 1, 2), 0.005))


def test_power_predicts_how_often_the_tie_test_separates_a_worse_policy():
    """Simulated benchmarks of two policies 1.5 points apart (shared examples, their own seed effects): the
    predicted power, from each benchmark's own variance estimate, is the share in which the worse is not tied."""
    from lrpilot.decision.stats import power

    seeds, m, dm, sa = 5, 2000, 0.2, 0.1
    delta = (expected_top1(MU, sa, SB) - expected_top1(MU - dm, sa, SB)) / 100
    rng, separated, predicted = np.random.default_rng(5), [], []
    for _ in range(300):
        b = rng.normal(0, SB, (1, 1, m))
        good, bad = (simulate(rng, 1, seeds, m, mu=mu, sa=sa, b=b)[0] for mu in (MU, MU - dm))
        ties = tied_with_best({"good": as_outcomes(good), "bad": as_outcomes(bad)})
        separated.append(ties.tied == ("good",))
        predicted.append(power(ties.comparisons[next(iter(ties.comparisons))].test, delta))
    assert 0.3 < np.mean(separated) < 0.7  # a case where power is neither 0 nor 1
    assert np.median(predicted) == pytest.approx(np.mean(separated), abs=0.1)


def test_the_mean_difference_over_tasks_averages_the_tasks_paired_differences():
    from lrpilot.decision.stats import mean_difference

    rng = np.random.default_rng(7)
    tasks = [(as_outcomes(rng.random((5, m)) < 0.95), as_outcomes(rng.random((5, m)) < 0.9)) for m in (269, 1000)]
    one = [paired_difference(a, b)[0] for a, b in tasks]
    both = mean_difference(tasks)
    assert both.mean == pytest.approx((one[0].mean + one[1].mean) / 2)
    half_widths = [(i.high - i.low) / 2 for i in one]
    assert (both.high - both.low) / 2 < max(half_widths)  # two tasks' evidence narrows the interval
    assert (both.high - both.low) / 2 > math.hypot(*half_widths) / 2 * 0.9  # about sqrt(v1 + v2) / 2
    assert mean_difference(tasks[:1]) == one[0]
