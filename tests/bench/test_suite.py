"""The lrbench13 suite: one policy per LRBench function, scaled into the good range [k_low, k_high]."""

import numpy as np
import pytest

import lrpilot
from lrpilot.bench.suite import SUITES, lrbench13, suite
from lrpilot.errors import LRPilotError

NAMES = ("FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS")
DECAYING = ("STEP", "NSTEP", "EXP", "INV", "POLY", "COS")
CYCLIC = ("TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP")
TOTAL, LOW, HIGH, BEST = 1000, 0.005, 0.05, 0.02


def policies(total=TOTAL, low=LOW, high=HIGH, best=BEST):
    """name -> policy object of the suite."""
    out = {}
    for text in lrbench13(total, low, high, best):
        p = lrpilot.policy(text)
        out[text.split("(")[0]] = p
        assert str(p) == text  # the suite writes canonical text
    return out


def test_thirteen_texts_one_per_lrbench_function_in_order():
    texts = lrbench13(TOTAL, LOW, HIGH, BEST)
    assert [t.split("(")[0] for t in texts] == list(NAMES)
    assert suite("lrbench13", TOTAL, LOW, HIGH, BEST) == texts


def test_fix_sits_at_best_and_defaults_to_k_high():
    assert policies()["FIX"](0) == BEST and policies()["FIX"](TOTAL - 1) == BEST
    assert lrbench13(TOTAL, LOW, HIGH)[0] == "FIX(k0=0.05)"


@pytest.mark.parametrize("total", [TOTAL, 645])
@pytest.mark.parametrize("name", DECAYING)
def test_decaying_ones_start_at_k_high_and_end_near_k_low(name, total):
    p = policies(total)[name]
    values = p.values(np.arange(total))
    assert p(0) == pytest.approx(HIGH, rel=1e-9)
    assert p(total - 1) == pytest.approx(LOW, rel=0.01)
    assert np.all(np.diff(values) <= 1e-15)  # never rises
    assert values.min() >= LOW * (1 - 1e-3)


@pytest.mark.parametrize("name", CYCLIC)
def test_cyclic_ones_stay_within_the_range_and_cycle_twice(name):
    p = policies()[name]
    values = p.values(np.arange(TOTAL))
    assert values.min() >= LOW * (1 - 1e-9) and values.max() <= HIGH * (1 + 1e-9)
    half = TOTAL // 4
    assert p(0) == pytest.approx(LOW) and p(2 * half) == pytest.approx(LOW)  # two full cycles of 2 half cycles
    assert p(half) > LOW and p(3 * half) > LOW
    if name in ("TRI", "SIN"):
        assert p(half) == pytest.approx(HIGH) and p(3 * half) == pytest.approx(HIGH)


def test_policy_values_agree_with_calls_over_the_run():
    for name, p in policies().items():
        t = np.arange(0, TOTAL, 37)
        assert p.values(t) == pytest.approx([p(int(i)) for i in t], rel=1e-12), name


@pytest.mark.parametrize("k_low, k_high, fragment", [
    (0.05, 0.005, "0 < k_low < k_high"),
    (0.01, 0.01, "[0.01, 0.01]"),
    (0.0, 0.01, "[0.0, 0.01]"),
    (-0.1, 0.01, "[-0.1, 0.01]"),
    (0.01, float("inf"), "inf"),
    (float("nan"), 0.01, "nan"),
])
def test_bad_ranges_are_refused(k_low, k_high, fragment):
    with pytest.raises(LRPilotError) as e:
        lrbench13(TOTAL, k_low, k_high)
    assert fragment in str(e.value)


def test_tiny_budgets_are_refused_and_eight_is_enough():
    with pytest.raises(LRPilotError, match="budget of 7 iterations"):
        lrbench13(7, LOW, HIGH)
    assert all(lrpilot.policy(t) for t in lrbench13(8, LOW, HIGH))


def test_unknown_suite_names_the_choices():
    with pytest.raises(LRPilotError, match="unknown suite 'nope': use one of lrbench13"):
        suite("nope", TOTAL, LOW, HIGH)


def test_a_new_suite_is_one_entry_in_suites(monkeypatch):
    monkeypatch.setitem(SUITES, "fix2", lambda total, k_low, k_high, best: [f"FIX(k0={k_low})", f"FIX(k0={k_high})"])
    assert suite("fix2", TOTAL, LOW, HIGH) == ["FIX(k0=0.005)", "FIX(k0=0.05)"]
