"""lrpilot.decision.special against scipy.special, which it replaces in the decision's statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special as scipy_special

from lrpilot.decision import special

DFS = [1, 1.5, 2, 3.7, 9.9, 10, 50.3, 268, 999, 1000.5, 2000, 9999, 1e5, 1e6, 1e9, np.inf]
TS = np.concatenate([-np.logspace(-4, 2.5, 120), [0.0], np.logspace(-4, 2.5, 120)])


def _relative(got: np.ndarray, want: np.ndarray, floor: float = 1e-290) -> float:
    """The largest error relative to the value (values below ``floor`` in size, e.g. near underflow, absolutely)."""
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


@pytest.mark.parametrize("df", DFS)
def test_students_cdf_agrees_with_scipy_to_1e12_of_the_value_from_its_centre_to_its_far_tails(df):
    """Both sides of the continued fraction / quadrature switch (df 1000), and the normal at df = inf."""
    assert _relative(special.stdtr(df, TS), scipy_special.stdtr(df, TS)) < 1e-12


@pytest.mark.parametrize("p", [0.5, 0.6, 0.975, 0.995, 0.025])
def test_students_quantile_agrees_with_scipy(p):
    df = np.array(DFS, float)
    assert _relative(special.stdtrit(df, p), scipy_special.stdtrit(df, p), floor=1.0) < 1e-12


def test_the_normals_log_cdf_and_log_gamma_agree_with_scipy():
    z = np.linspace(-60, 30, 90_001)  # beyond 30 the log CDF is below the smallest normal double
    assert _relative(special.log_ndtr(z), scipy_special.log_ndtr(z)) < 1e-12
    x = np.concatenate([np.linspace(0.01, 30, 500), np.logspace(1.5, 7, 200)])
    assert _relative(special.gammaln(x), scipy_special.gammaln(x), floor=1.0) < 1e-14  # 0 at x = 1 and 2


def test_nan_stays_nan_infinite_t_is_certain_and_shapes_are_kept():
    p = special.stdtr(np.array([np.nan, 5.0, 5.0, np.inf]), np.array([1.0, np.nan, -np.inf, np.inf]))
    assert np.isnan(p[:2]).all() and p[2] == 0.0 and p[3] == 1.0
    q = special.stdtrit(np.array([[np.nan, np.inf, 3.0]]), 0.975)
    assert q.shape == (1, 3) and np.isnan(q[0, 0])
    assert q[0, 1] == pytest.approx(1.959963984540054, rel=1e-14) and q[0, 2] == pytest.approx(3.182446305284263)
    assert special.stdtr(3.0, 0.0) == 0.5 and np.shape(special.stdtrit(4.0, 0.9)) == ()


def test_a_value_computed_among_many_equals_it_computed_alone():
    """The ties of a ranking computed together equal those computed a pair at a time: each element's iteration
    stops where it would alone."""
    rng = np.random.default_rng(0)
    df, t = rng.uniform(1, 3000, 200), rng.normal(0, 3, 200)
    together, quantiles = special.stdtr(df, t), special.stdtrit(df, 0.975)
    assert all(together[i] == special.stdtr(df[i], t[i]) for i in range(0, 200, 7))
    assert all(quantiles[i] == special.stdtrit(df[i : i + 1], 0.975)[0] for i in range(0, 200, 7))
