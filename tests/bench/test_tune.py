"""lrpilot tune: range test, recommendation, candidates within the compute budget, a replayable winner."""

from __future__ import annotations

import pytest

from lrpilot.bench.range_test import latest
from lrpilot.bench.tune import tune
from lrpilot.controllers.base import make_controller
from lrpilot.errors import LRPilotError
from lrpilot.policy.text import parse
from lrpilot.records import RunResult

from tests.bench.conftest import Inline, Scripted

TASK = "digits-lenet"  # 15 epochs per run


class Favouring(Inline):
    """'Trains' instantly: FIX probes score by their LR (best 0.1); candidates score by their function's name.

    Adaptive candidates record a distilled trajectory, as real adaptive runs do.
    """

    def __init__(self, scores: dict[str, float]):
        super().__init__()
        self.scores = scores

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        def fake(job):
            call = parse(job.policy)
            short = job.steps < 100  # the range test's one-epoch probes
            top1 = 90.0 - abs(float(call.kwargs["k0"]) - 0.1) * 100 if short else self.scores.get(call.name, 50.0)
            record = {} if call.name[0].isupper() else {"distilled": {"piecewise": "piecewise(FIX(k0=0.1), "
                                                                                   "FIX(k0=0.01)@300)"}}
            return RunResult(job.task.name, job.policy, job.seed, "ok", {"top1": top1, "ac": 0.9, "cd": 0.1,
                             "cdac": 0.1, "ld": 0.01, "iters_at_best": job.steps, "n_param": 1},
                             {"iterations": job.steps, "wall_s": 0.0}, {}, record)
        super().run(fake, jobs, on_done, on_failed, tick, every)


def test_tune_runs_the_range_test_then_interleaved_candidates_within_the_budget(store):
    ex = Favouring({"STEP": 97.0, "stpt": 96.0, "NSTEP": 99.0})
    result = tune(store, TASK, budget=61.0, executor=ex)
    found = latest(store, TASK)
    assert found is not None and result.range == {k: found[k] for k in ("k_low", "k_high", "best_lr")}
    assert found["best_lr"] == 0.1
    # 7 one-epoch probes (0.1, 0.01, 0.001: two falls; then 0.02, 0.05, 0.2, 0.5), then FIX (15 epochs),
    # stpt (estimated 1.6 x 15 = 24) and STEP (15) fill 61 epoch-equivalents; NSTEP would have won
    assert [parse(c).name for c in result.candidates] == ["FIX", "stpt", "STEP"]
    assert result.candidates[1] == "stpt(k0=0.1, bounds=[0.005, 0.1])"
    assert [parse(c).name for c in result.left_out][:2] == ["factor", "NSTEP"]
    assert result.best == result.trained_as == result.candidates[2]
    assert result.epoch_equivalents == 7 + 15 + 15 + 15  # the fake stpt run reports no epoch-equivalents


def test_an_adaptive_winner_is_given_as_its_distilled_policy(store):
    result = tune(store, TASK, budget=200.0, executor=Favouring({"stpt": 99.0}))
    assert result.trained_as == "stpt(k0=0.1, bounds=[0.005, 0.1])"
    assert result.best == "piecewise(FIX(k0=0.1), FIX(k0=0.01)@300)" and make_controller(result.best)
    assert "replays its LR trajectory" in result.format() and f'--policy "{result.best}"' in result.format()
    assert {parse(c).name for c in result.candidates} >= {"stpt", "factor", "autodrop"}


def test_a_second_tune_reuses_what_the_first_measured(store):
    tune(store, TASK, budget=200.0, executor=Favouring({}))
    again = Favouring({})
    tune(store, TASK, budget=200.0, executor=again)
    assert again.jobs == []


def test_budgets_that_fit_nothing_are_refused(store):
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(LRPilotError, match="--budget"):
            tune(store, TASK, budget=bad, executor=Scripted(lambda lr: 90.0))
    with pytest.raises(LRPilotError, match=r"does not fit one run .*raise it to 15 or more"):
        tune(store, TASK, budget=10.0, executor=Favouring({}))
    assert latest(store, TASK) is None  # refused before the range test spent any of it


def test_a_real_tune_returns_a_policy_that_trains(store):
    result = tune(store, TASK, budget=40.0, executor=Inline())
    assert len(result.candidates) >= 1 and result.metrics["top1_mean"] > 50  # chance is 10
    assert make_controller(result.best) and result.epoch_equivalents <= 40.0 + 1e-9


@pytest.mark.parametrize("best_lr", [0.1, 1.2e-4, 1e-4, 3e-5, 1e-9])
def test_a_best_lr_below_autodrops_floor_builds_a_valid_autodrop_candidate(best_lr):
    # issue 14: "tune on a task whose best range-test LR is below 1e-4 builds an invalid AutoDrop candidate"
    from lrpilot.bench.runner import canonical_policies
    from lrpilot.bench.tune import _autodrop

    [text] = canonical_policies([_autodrop(best_lr)])
    k0, k_min = parse(text).kwargs["k0"], parse(text).kwargs.get("k_min", 1e-4)
    assert float(k_min) < float(k0)
