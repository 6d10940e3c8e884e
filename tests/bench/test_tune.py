"""lrpilot tune: range test, a TPE search with successive halving, racing over seeds, a decision on validation."""

from __future__ import annotations

import pytest

from lrpilot.bench import tune as tune_module
from lrpilot.bench.range_test import RangeTestResult, latest
from lrpilot.grid.runner import canonical_policies
from lrpilot.bench.space import suite_trials
from lrpilot.bench.tune import SCHEDULES, first_candidates, tune
from lrpilot.controllers.base import make_controller
from lrpilot.errors import LRPilotError
from lrpilot.policy.text import parse

from tests.bench.conftest import Graded, Inline

TASK = "digits-lenet"  # 15 epochs per run


def graded(scores: dict[str, float], trajectory: str | None = None) -> Graded:
    """Range-test probes (short runs) score by their LR (best 0.1); candidates by their function's name (default
    0.6); adaptive candidates record a distilled trajectory: ``trajectory`` (it moved), else none (it never did)."""
    def quality(job):
        call = parse(job.policy)
        if job.steps < 100:  # the range test's one-epoch probes
            return 0.9 - abs(float(call.kwargs["k0"]) - 0.1)
        return scores.get(call.name, 0.6)

    def record(job):
        if parse(job.policy).name[0].isupper():
            return {}
        if trajectory is None:
            return {"distilled": {"piecewise": "FIX(k0=0.1)", "readable": "piecewise(FIX(k0=0.1))", "moved": False}}
        return {"distilled": {"piecewise": trajectory, "readable": trajectory, "moved": True}}
    return Graded(quality, every=43, record=record)


def test_tune_searches_races_and_decides_on_validation_within_the_budget(store):
    ex = graded({"COS": 0.97, "FIX": 0.9})
    result = tune(store, TASK, budget=300.0, executor=ex)
    found = latest(store, TASK)
    assert found is not None and found.best_lr == 0.1
    assert result.range == {"k_low": found.k_low, "k_high": found.k_high, "best_lr": found.best_lr, "answer": found.answer["lr"]}
    assert result.epoch_equivalents <= 300.0 + 1e-9
    names = [parse(c).name for c in result.candidates]
    assert names[:3] == ["FIX", "COS", "WSD"]  # then LRBench's 13 functions scaled to the range test, then TPE's
    assert names[3:16] == ["FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP", "SIN", "SIN2",
                           "SINEXP", "COS"]
    assert {"factor", "autodrop", "stpt"} <= set(names) and len(names) > 18  # the adaptive methods after the search
    # every COS candidate scores the same: they are tied, and the decision is one of them, told in words
    d = result.decision
    assert parse(d.chosen).name == "COS" and all(parse(p).name == "COS" for p in d.tied)
    assert result.best == result.trained_as == d.chosen
    assert "tied with the best" in result.format() or "no other policy is tied" in result.format()
    assert result.metrics["val_top1_mean"] == pytest.approx(97.0, abs=0.3)
    assert "test Top-1" in result.format() and "not used to choose" in result.format()


def test_a_proposal_already_trained_is_told_its_score_and_the_search_goes_on(store, monkeypatch):
    # the suite's FIX at the range test's answer is the first candidate itself: one worker, a batch of nothing new
    def suite(k_low, k_high, best):
        fix, *rest = suite_trials(k_low, k_high, best)
        return [{**fix, "k0": k_low}, *rest]

    monkeypatch.setattr(tune_module, "suite_trials", suite)
    result = tune(store, TASK, budget=300.0, executor=graded({"COS": 0.97}))
    names = [parse(c).name for c in result.candidates]
    assert names[:3] == ["FIX", "COS", "WSD"] and result.candidates[0] == f"FIX(k0={latest(store, TASK).k_low:g})"
    assert names[3:15] == ["STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP",
                           "COS"]


def test_policies_statistically_tied_get_more_seeds_and_the_cheapest_is_chosen(store):
    # FIX and COS tie (the same quality); the rest is clearly worse: FIX (#Param 1) is chosen over COS (3)
    result = tune(store, TASK, budget=500.0, executor=graded({"COS": 0.95, "FIX": 0.95}))
    d = result.decision
    assert d.chosen == "FIX(k0=0.05)" and len(d.tied) >= 2  # FIX at the answer, the good range's lower end
    assert d.seeds[d.chosen][:3] == (0, 1, 2)  # raced over more seeds than the first
    assert "cheapest" in d.words() and f"chose {d.chosen}" in d.words()


def test_an_adaptive_trajectory_is_a_candidate_of_its_own_and_a_still_one_is_reported(store):
    moved = "piecewise(FIX(k0=0.1), FIX(k0=0.01)@300)"
    result = tune(store, TASK, budget=400.0, executor=graded({"piecewise": 0.99}, trajectory=moved))
    assert moved in result.candidates and result.best == moved and make_controller(result.best)
    still = tune(store, "digits-mlp", budget=400.0, executor=graded({}, trajectory=None))
    assert any("never moved" in n for n in still.notes)


def test_the_trajectory_of_an_adaptive_candidate_behind_the_best_is_not_trained(store):
    moved = "piecewise(FIX(k0=0.1), FIX(k0=0.01)@300)"
    result = tune(store, TASK, budget=400.0, executor=graded({"FIX": 0.97, "piecewise": 0.99}, trajectory=moved))
    assert moved not in result.candidates  # the adaptive runs score 0.6 on seed 0, far behind FIX's 0.97
    runs = {r.policy: r for r in store.runs(task=TASK, purpose="bench") if r.seed == 0}
    adaptive = [c for c in result.candidates if parse(c).name in ("factor", "autodrop", "stpt")]
    behind = [c for c in adaptive if runs[c].status == "ok"]
    assert len(adaptive) == 3 and all(runs[c].status in ("ok", "pruned") for c in adaptive) and behind
    assert sum("behind the best on seed 0, so its trajectory was not trained" in n for n in result.notes) == len(behind)


MOVED = "piecewise(FIX(k0=0.1), FIX(k0=0.01)@300)"


# resolved at once; raced; raced with a trajectory tied with the best, until the compute is spent
@pytest.mark.parametrize("scores, trajectory", [({"COS": 0.97}, None), ({"COS": 0.95, "FIX": 0.95}, None),
                                                ({"COS": 0.95, "FIX": 0.95, "piecewise": 0.95, "stpt": 0.95}, MOVED)])
def test_a_second_tune_reuses_what_the_first_measured(store, scores, trajectory):
    first = tune(store, TASK, budget=500.0, executor=graded(scores, trajectory))
    again = graded(scores, trajectory)
    second = tune(store, TASK, budget=500.0, executor=again)
    assert again.jobs == []
    assert (second.best, second.candidates, second.epoch_equivalents, second.notes) == (
        first.best, first.candidates, first.epoch_equivalents, first.notes)
    assert trajectory is None or trajectory in first.candidates


def test_budgets_that_fit_nothing_are_refused(store):
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(LRPilotError, match="--budget"):
            tune(store, TASK, budget=bad, executor=graded({}))
    with pytest.raises(LRPilotError, match=r"does not fit one run .*raise it to 15 or more"):
        tune(store, TASK, budget=10.0, executor=graded({}))
    assert latest(store, TASK) is None  # refused before the range test spent any of it


def test_a_real_tune_returns_a_policy_that_trains(store):
    result = tune(store, TASK, budget=60.0, seeds=(0, 1), executor=Inline())
    assert result.metrics["val_top1_mean"] > 50  # chance is 10
    assert make_controller(result.best) and result.epoch_equivalents <= 60.0 + 1e-9


@pytest.mark.parametrize("best_lr", [0.1, 1.2e-4, 1e-4, 3e-5, 1e-9])
def test_the_adaptive_candidates_are_valid_and_can_move_within_the_run(best_lr):
    texts = canonical_policies(first_candidates(RangeTestResult(best_lr / 2, best_lr, best_lr), 645))
    assert [t.split("(")[0] for t in texts[:SCHEDULES]] == ["FIX", "COS", "WSD"]
    factor, autodrop = (make_controller(t) for t in texts[SCHEDULES:SCHEDULES + 2])
    assert factor.bounds[1] > best_lr and factor.probe == "lookahead"  # not capped at its start, the default probe
    assert autodrop.k_min < autodrop.k0 and autodrop.saturation == "relative"
    assert autodrop.nd * autodrop.period < 1 / 2  # fractions of the run: a drop can fire within it
    assert texts[SCHEDULES + 2].endswith("choose=nearest)")


def test_a_real_tune_on_two_workers_is_reused_whole_by_a_second_one(tmp_path):
    # the rungs come from earlier batches only: which worker finishes first does not change what is trained
    from lrpilot.execution.executors import LocalExecutor
    from lrpilot.store import Store

    with Store(tmp_path / "s.db") as store, LocalExecutor(2) as ex:
        first = tune(store, "digits-mlp", budget=40.0, seeds=(0, 1), executor=ex)
        n = len(store.runs(task="digits-mlp"))
        again = tune(store, "digits-mlp", budget=40.0, seeds=(0, 1), executor=ex)
        assert len(store.runs(task="digits-mlp")) == n
    assert (again.best, again.candidates, again.epoch_equivalents) == (first.best, first.candidates,
                                                                       first.epoch_equivalents)


@pytest.mark.parametrize("task, line", [
    ("digits-lenet", 'lrpilot train --task digits-lenet --policy "FIX(k0=0.1)"'),
    ("mytasks:wine", 'lrpilot train --task mytasks:wine --policy "FIX(k0=0.1)"'),
    ("wine-mlp", "problem.train('FIX(k0=0.1)') (a lrpilot.Problem), or "
                 "lrpilot.PolicyScheduler(optimizer, 'FIX(k0=0.1)') in your own loop"),
])
def test_the_train_with_it_line_is_runnable_for_a_named_task_and_python_for_a_problem(task, line):
    from lrpilot.decision.rule import Decision
    from lrpilot.decision.stats import Interval, Ties
    from lrpilot.bench.tune import TuneResult

    p, iv = "FIX(k0=0.1)", Interval(97.0, 96.0, 98.0)
    decision = Decision(510, {p: iv}, {p: iv}, Ties(p, (p,), {}, ""), p, {p: (0, 1)}, {p: (1.0, 500.0)})
    result = TuneResult(task, p, p, decision, [p], 0, [], 30.0, 150.0,
                        {"k_low": 0.01, "k_high": 0.1, "best_lr": 0.1, "answer": 0.05})
    assert result.format().splitlines()[-1] == f"  train with it: {line}"


@pytest.mark.parametrize("epochs, per_lr", [(15.0, 1.0), (2.0, 0.2)])
def test_the_range_test_spends_at_most_a_tenth_of_the_run_per_lr(store, monkeypatch, epochs, per_lr):
    # on a task trained under 10 epochs, one epoch per LR would spend most of tune's budget before any candidate
    from lrpilot.tasks import get_task

    task = get_task(TASK)
    task.epochs = epochs
    asked = []

    def decade_test(*args, epochs, **kwargs):
        asked.append(epochs)
        raise LRPilotError("stop after the range test's call")

    monkeypatch.setattr(tune_module, "decade_test", decade_test)
    with pytest.raises(LRPilotError, match="stop after"):
        tune(store, task, executor=Inline())
    assert asked == [pytest.approx(per_lr)]
