"""Distill: adaptive runs export their LR trajectory as fixed policy texts that parse and train."""

import json

import numpy as np
import pytest

import lrpilot
from lrpilot.cli import main
from lrpilot.distill import attach, distill, fit_text, trajectory
from lrpilot.engine import train
from lrpilot.policy import entries
from lrpilot.search.run import is_search, run_search
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


def test_stpt_trajectory_trained_as_piecewise_reproduces_the_search(digits):
    stpt = attach(run_search(digits, "stpt(k0=0.05, set=middle, alpha=3, warmup=1, score=train)", seed=0, epochs=4))
    text = stpt.record["distilled"]["piecewise"]
    ipe = digits.iters_per_epoch
    assert text.startswith("piecewise(FIX(k0=0.0025), FIX(k0=") and f"@{ipe}" in text  # warmup at k0 / 20
    again = train(digits, text, seed=0, epochs=4).to_dict()
    s = stpt.to_dict()
    for key in ("train_loss", "test_loss", "test_top1"):  # the LR curve differs at epoch ends only: the search
        assert again["curves"][key] == s["curves"][key]  # picks the next epoch's LR after recording it
    assert again["metrics"]["top1"] == s["metrics"]["top1"]


ADAPTIVE = [e.example for e in entries("controller") + entries("search")]


@pytest.mark.parametrize("text", ADAPTIVE)
def test_every_adaptive_record_holds_its_lr_trajectory(digits, text):
    r = run_search(digits, text, epochs=2) if is_search(text) else train(digits, text, epochs=2)
    points = r.record["trajectory"]
    assert points[0][0] == 0 and all(isinstance(s, int) and lr > 0 for s, lr in points)
    assert [s for s, _ in points] == sorted(s for s, _ in points)

    def lr_at(i):
        return [lr for s, lr in points if s <= i][-1]

    for i, lr in zip(r.curves["iteration"], r.curves["lr"]):  # at an epoch end, the LR before or after the change
        assert lr in (lr_at(i), lr_at(i - 1))
    assert "distilled" not in r.record  # distilled where the result is stored or shown, not in the engine


def test_autodrop_and_factor_trajectories_follow_their_drops_and_points(digits):
    ipe = digits.iters_per_epoch
    r = train(digits, "autodrop(k0=0.05, rho=0.5, saturation=absolute, theta0=50, theta_max=100, nd=1)", epochs=6)
    drops = r.record["drops"]
    assert drops and r.record["trajectory"] == [[0, 0.05]] + [[d["epoch"] * ipe, d["lr"]] for d in drops]
    r = train(digits, "factor(k0=0.01, every=20)", steps=60)
    assert r.record["trajectory"] == [[0, 0.01]] + [[p["step"], p["eta"]] for p in r.record["points"]]
    assert trajectory({"trajectory": [[0, 0.01], [10, 0.01], [20, 0.02], [20, 0.03]]}) == [[0, 0.01], [20, 0.03]]


def test_every_adaptive_engine_run_carries_parseable_texts(digits):
    r = attach(train(digits, "factor(k0=0.02, probe=slides, factors=5)", seed=0, epochs=4))
    d = r.record["distilled"]
    p = lrpilot.policy(d["piecewise"])
    inside = [q for q in r.record["points"] if q["step"] < r.cost["iterations"]]  # the last one: after the run
    assert len(inside) == 3 and all(p(q["step"]) == q["eta"] for q in inside)
    assert str(lrpilot.policy(d["fit"])) == d["fit"] and d["fit_error"] >= 0
    assert attach(train(digits, "FIX(k0=0.05)", steps=5)).record == {}  # fixed policies: nothing to distill


@pytest.mark.parametrize("truth", ["EXP(k0=0.1, gamma=0.99)", "COS(k0=0.1, k1=0.001, l=300)",
                                   "STEP(k0=0.1, gamma=0.5, l=100)"])
def test_the_fit_finds_the_function_a_trajectory_came_from(truth):
    p = lrpilot.policy(truth)
    points = [[t, p(t)] for t in range(400)]
    text, error = fit_text(points, 400)
    assert error < 0.02 and np.allclose(np.log(lrpilot.policy(text).values(range(400))),
                                        np.log(p.values(range(400))), atol=0.1)


def test_distilled_texts_train_from_the_command_line(tmp_path):
    d = distill({"trajectory": [[0, 0.01], [40, 0.05], [80, 0.02]]}, 120)
    assert d["piecewise"] == "piecewise(FIX(k0=0.01), FIX(k0=0.05)@40, FIX(k0=0.02)@80)"
    for text in (d["piecewise"], d["fit"]):
        assert main(["train", "--task", "digits-mlp", "--policy", text, "--steps", "10", "--quiet"]) == 0


def test_a_run_too_short_for_the_fit_keeps_its_piecewise_text(capsys):
    assert distill({"trajectory": [[0, 0.05], [2, 0.1]]}, 3) == {
        "piecewise": "piecewise(FIX(k0=0.05), FIX(k0=0.1)@2)", "readable": "piecewise(FIX(k0=0.05), FIX(k0=0.1)@2)",
        "fit": None, "fit_error": None, "moved": True}
    assert main(["train", "--task", "digits-mlp", "--steps", "3", "--policy", "factor(k0=0.05, probe=slides)",
                 "--json", "-"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok" and run["record"]["distilled"] == {
        "piecewise": "piecewise(FIX(k0=0.05))", "readable": "piecewise(FIX(k0=0.05))", "fit": None,
        "fit_error": None, "moved": False}
