"""The adaptive methods' defaults adapt on digits-lenet, and the papers' readings, one setting away, reproduce
what lrpilot 0ce32fa (before the defaults changed) trained, value for value."""

import numpy as np
import pytest

from lrpilot.engine import train
from lrpilot.search.candidate import Outcome
from lrpilot.search.run import run_search
from lrpilot.search.stpt import Stpt
from lrpilot.tasks import get_task

# What 0ce32fa trained from seed 0 on digits-lenet under the texts that are now the papers' readings:
# factor(k0=0.05) for 4 epochs (its trajectory, then Top-1), autodrop(k0=0.05, rho=0.2, theta0=5, theta_max=10,
# nd=2, period=10) for 6 epochs (its drops, Top-1), stpt(k0=0.05, warmup=0) for 3 epochs (each epoch's LR, Top-1).
OLD_FACTOR = [[0, 0.05], [34, 0.04360770241955671], [68, 0.054656280897894045], [102, 0.06880301137910395],
              [136, 0.08659769396604321]], 94.0
OLD_AUTODROP = [{"iteration": 100, "trigger": 80, "lr": 0.010000000000000002, "theta": 10.0},
                {"iteration": 130, "trigger": 110, "lr": 0.0020000000000000005, "theta": 10.0},
                {"iteration": 160, "trigger": 140, "lr": 0.00040000000000000013, "theta": 10.0},
                {"iteration": 190, "trigger": 170, "lr": 0.0001, "theta": 10.0}], 97.11111111111111
OLD_STPT = [0.0625, 0.034375, 0.013750000000000002], 94.22222222222221


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-lenet")


def test_the_papers_readings_train_as_before(digits):
    r = train(digits, "factor(k0=0.05, probe=slides)", seed=0, epochs=4)
    assert (r.record["trajectory"], r.metrics["top1"]) == OLD_FACTOR
    r = train(digits, "autodrop(k0=0.05, rho=0.2, saturation=absolute, theta0=5, theta_max=10, nd=2, period=10)",
              seed=0, epochs=6)
    assert (r.record["drops"], r.metrics["top1"]) == OLD_AUTODROP
    r = run_search(digits, "stpt(k0=0.05, warmup=0, choose=best)", seed=0, epochs=3)
    assert ([row["best_lr"] for row in r.record["epochs"]], r.metrics["top1"]) == OLD_STPT


def test_factor_s_default_moves_its_lr_without_running_to_its_bound(digits):
    fixed = train(digits, "FIX(k0=0.05)", seed=0)
    for k0, rises in ((0.05, False), (0.005, True)):
        r = train(digits, f"factor(k0={k0})", seed=0)
        lrs = [lr for _, lr in r.record["trajectory"]]
        assert max(lrs) < 10 * k0  # the slides' probe ran to 10 k0 from 0.05 and ended at 38-63 %
        assert r.metrics["top1"] > fixed.metrics["top1"] - 2
        assert len(set(lrs)) > 1 and (max(lrs) > 4 * k0) == rises  # from 1/10 of a good LR it climbs


def test_autodrop_s_default_drops_on_digits(digits):
    r = train(digits, "autodrop(k0=0.05, rho=0.2)", seed=0)
    assert len(r.record["drops"]) >= 1 and r.curves["lr"][-1] < 0.05  # the paper's theta0 never fired here
    assert train(digits, "autodrop(k0=0.05, rho=0.2, saturation=absolute)", seed=0).record["drops"] == []


def _outcome(correct):
    return Outcome(100 * float(np.mean(correct)), b"", "ok", 1, 1, correct)


def test_stpt_s_default_keeps_the_current_lr_unless_another_beats_it_beyond_noise():
    def correct(n_right):  # the first n_right of 2,000 validation examples right
        return _outcome(np.arange(2000) < n_right)

    lrs = [0.2, 0.1, 0.05]
    nearest, best = Stpt(k0=0.1), Stpt(k0=0.1, choose="best")
    close = [correct(1801), correct(1800), correct(1798)]  # 0.05 and 0.1 points apart: noise
    assert best.keep(lrs, close, 0.1) == 0 and nearest.keep(lrs, close, 0.1) == 1
    apart = [correct(1600), correct(1800), correct(1900)]  # 5 points better: beyond noise
    assert nearest.keep(lrs, apart, 0.1) == 2 == best.keep(lrs, apart, 0.1)


def test_stpt_s_default_keeps_a_good_lr_on_digits(digits):
    fixed = train(digits, "FIX(k0=0.05)", seed=0)
    r = run_search(digits, "stpt(k0=0.05)", seed=0)
    assert r.policy == "stpt(k0=0.05, choose=nearest)" and r.metrics["top1"] > fixed.metrics["top1"] - 1.5
