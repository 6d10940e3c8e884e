"""Distill: adaptive runs export their LR trajectory as fixed policy texts that parse and train."""

import numpy as np
import pytest

import lrpilot
from lrpilot.cli import main
from lrpilot.distill import distill, fit_text, trajectory
from lrpilot.engine import train
from lrpilot.search.run import run_search
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


def test_stpt_trajectory_trained_as_piecewise_reproduces_the_search(digits):
    stpt = run_search(digits, "stpt(k0=0.05, set=middle, alpha=3, warmup=1, score=train)", seed=0, epochs=4)
    text = stpt.record["distilled"]["piecewise"]
    ipe = digits.iters_per_epoch
    assert text.startswith("piecewise(FIX(k0=0.0025), FIX(k0=") and f"@{ipe}" in text  # warmup at k0 / 20
    again = train(digits, text, seed=0, epochs=4).to_dict()
    s = stpt.to_dict()
    for key in ("train_loss", "test_loss", "test_top1"):  # the LR curve differs at epoch ends only: the search
        assert again["curves"][key] == s["curves"][key]  # picks the next epoch's LR after recording it
    assert again["metrics"]["top1"] == s["metrics"]["top1"]


def test_autodrop_and_factor_records_become_trajectories():
    autodrop = {"k0": 0.1, "unit": "epoch", "drops": [{"epoch": 3, "lr": 0.02}, {"epoch": 5, "lr": 0.004}]}
    assert trajectory(autodrop, 10, {}) == [[0, 0.1], [30, 0.02], [50, 0.004]]
    factor = {"k0": 0.01, "points": [{"step": 10, "eta": 0.01}, {"step": 20, "eta": 0.02}]}
    assert trajectory(factor, 10, {}) == [[0, 0.01], [20, 0.02]]  # unchanged LRs merged
    curves = {"iteration": [5, 10], "lr": [0.1, 0.05]}
    assert trajectory({}, 10, curves) == [[0, 0.1], [10, 0.05]]


def test_every_adaptive_engine_run_carries_parseable_texts(digits):
    r = train(digits, "factor(k0=0.02, factors=5)", seed=0, epochs=4)
    d = r.record["distilled"]
    p = lrpilot.policy(d["piecewise"])
    inside = [q for q in r.record["points"] if q["step"] < r.cost["iterations"]]  # the last one: after the run
    assert len(inside) == 3 and all(p(q["step"]) == q["eta"] for q in inside)
    assert str(lrpilot.policy(d["fit"])) == d["fit"] and d["fit_error"] >= 0
    assert train(digits, "FIX(k0=0.05)", steps=5).record == {}  # fixed policies: nothing to distill


@pytest.mark.parametrize("truth", ["EXP(k0=0.1, gamma=0.99)", "COS(k0=0.1, k1=0.001, l=300)",
                                   "STEP(k0=0.1, gamma=0.5, l=100)"])
def test_the_fit_finds_the_function_a_trajectory_came_from(truth):
    p = lrpilot.policy(truth)
    points = [[t, p(t)] for t in range(400)]
    text, error = fit_text(points, 400)
    assert error < 0.02 and np.allclose(np.log(lrpilot.policy(text).values(range(400))),
                                        np.log(p.values(range(400))), atol=0.1)


def test_distilled_texts_train_from_the_command_line(tmp_path):
    d = distill({"trajectory": [[0, 0.01], [40, 0.05], [80, 0.02]]}, 40, 120, {})
    assert d["piecewise"] == "piecewise(FIX(k0=0.01), FIX(k0=0.05)@40, FIX(k0=0.02)@80)"
    for text in (d["piecewise"], d["fit"]):
        assert main(["train", "--task", "digits-mlp", "--policy", text, "--steps", "10", "--quiet"]) == 0
