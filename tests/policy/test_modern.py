"""WSD, ONECYCLE and linear decay to zero against their sources' formulas, written here independently.

WSD follows Hägele et al. (2024): linear warmup, constant, then a cooldown over the last ``decay`` share of the
run with 1 - s, 1 - sqrt(s) or (1 + cos(pi s)) / 2. ONECYCLE is checked against torch's own ``OneCycleLR``
(two phases, momentum cycling off), step by step. The implementation never computes an expectation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lrpilot
from lrpilot.cli import main
from lrpilot.errors import LRPilotError

FALL = {"linear": lambda s: 1 - s, "sqrt": lambda s: 1 - math.sqrt(s), "cos": lambda s: (1 + math.cos(math.pi * s)) / 2}


def wsd(t: int, peak: float, final: float, total: int, warmup: int, decay: float, shape: str) -> float:
    """Hägele et al.'s schedule, piece by piece, from ``final`` (warmup start and cooldown end) to ``peak``."""
    cool = total * (1 - decay)
    if t < warmup:
        return final + (peak - final) * t / warmup
    if t < cool:
        return peak
    return final + (peak - final) * FALL[shape](min((t - cool) / (total - cool), 1.0))


@pytest.mark.parametrize("shape", ["linear", "sqrt", "cos"])
@pytest.mark.parametrize("final", [0.0, 0.002])
def test_wsd_is_warmup_stable_then_the_cooldown_shape(shape, final):
    text = f"WSD(k0=0.1, k1={final:g}, l=1000, w=50, decay=0.3, shape={shape})"
    p = lrpilot.policy(text)
    steps = [0, 1, 25, 49, 50, 51, 400, 699, 700, 701, 800, 850, 999, 1000, 5000]
    for t in steps:
        assert p(t) == pytest.approx(wsd(t, 0.1, final, 1000, 50, 0.3, shape), rel=1e-12, abs=1e-15), t
    assert p(50) == p(699) == 0.1 and p(1000) == p(10**9) == final
    assert p.values(steps).tolist() == [p(t) for t in steps]


def test_wsd_defaults_are_haegele_s_sqrt_cooldown_over_the_last_fifth_without_warmup():
    p = lrpilot.policy("WSD(k0=0.1, l=1000)")
    assert str(p) == "WSD(k0=0.1, l=1000)" and p.n_param == 6
    assert p(0) == p(799) == 0.1
    assert p(900) == pytest.approx(0.1 * (1 - math.sqrt(0.5)))
    assert str(lrpilot.policy("WSD(k0=0.1, k1=0, l=1000, w=0, decay=0.2, shape=sqrt)")) == str(p)


def test_linear_decay_to_zero_is_poly_with_power_one_and_wsd_with_a_whole_linear_cooldown():
    poly, wsd_linear = lrpilot.policy("POLY(k0=0.1, p=1, l=1000)"), lrpilot.policy("WSD(k0=0.1, l=1000, decay=1, shape=linear)")
    for t in (0, 1, 250, 500, 999, 1000, 2000):
        expected = 0.1 * max(1 - t / 1000, 0.0)
        assert poly(t) == pytest.approx(expected, abs=1e-15) and wsd_linear(t) == pytest.approx(expected, abs=1e-15)


def torch_one_cycle(total: int, max_lr: float, pct: float, div: float, final_div: float, anneal: str) -> list[float]:
    """The LR of every step of torch's OneCycleLR (SGD without momentum, so no momentum cycling)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=total, pct_start=pct, div_factor=div,
                                                final_div_factor=final_div, anneal_strategy=anneal,
                                                cycle_momentum=False)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(total - 1):  # torch refuses a step past total_steps
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("total, pct, div, final_div, shape", [
    (1000, 0.3, 25, 1e4, "cos"), (1000, 0.3, 25, 1e4, "linear"), (517, 0.25, 10, 100, "cos"), (40, 0.1, 1, 1, "linear"),
])
def test_onecycle_equals_torch_s_one_cycle_lr_at_every_step(total, pct, div, final_div, shape):
    text = f"ONECYCLE(k0=0.2, l={total}, pct={pct:g}, div={div:g}, final_div={final_div:g}, shape={shape})"
    p = lrpilot.policy(text)
    expected = torch_one_cycle(total, 0.2, pct, div, final_div, shape)
    np.testing.assert_allclose(p.values(range(total)), expected, rtol=1e-12, atol=1e-16)
    assert p(0) == pytest.approx(0.2 / div) and max(expected) == pytest.approx(0.2, rel=1e-4)
    assert p(total - 1) == pytest.approx(0.2 / (div * final_div)) == p(10 * total)  # held after the end


def test_onecycle_defaults_are_torch_s():
    p = lrpilot.policy("ONECYCLE(k0=0.1, k1=0, l=100, pct=0.3, div=25, final_div=10000, shape=cos)")
    assert str(p) == "ONECYCLE(k0=0.1, l=100)" and p.n_param == 7


@pytest.mark.parametrize("text, fragment", [
    ("WSD(k0=0.1, l=100, w=90)", "starts the cooldown at step 80, before the warmup ends at w=90"),
    ("WSD(k0=0.1, l=100, decay=0)", "decay=0 is invalid"),
    ("WSD(k0=0.1, l=100, shape=step)", "shape='step' is invalid; shape must be one of sqrt, linear, cos"),
    ("WSD(k0=0.1, k1=0.2, l=100)", "k1=0.2 must be below k0=0.1"),
    ("ONECYCLE(k0=0.1, l=3, pct=0.3)", "pct * l must exceed 1"),
    ("ONECYCLE(k0=0.1, l=100, pct=1)", "pct=1 is invalid"),
    ("ONECYCLE(k0=0.1, l=100, div=0.5)", "div=0.5 is invalid"),
    ("ONECYCLE(k0=0.1, l=100, shape=sqrt)", "shape must be one of cos, linear"),
])
def test_bad_settings_are_one_error_naming_them(text, fragment):
    with pytest.raises(LRPilotError, match=fragment.replace("*", r"\*")):
        lrpilot.policy(text)


def test_lrpilot_policies_lists_them_with_their_sources(capsys):
    assert main(["policies"]) == 0
    out = capsys.readouterr().out
    for fragment in ("WSD", "Hägele et al. 2024", "ONECYCLE", "Smith and Topin 2019", "linear decay to zero"):
        assert fragment in out
