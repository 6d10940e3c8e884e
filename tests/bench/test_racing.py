"""Successive halving and seed racing: on scripted results (exact), then on real training."""

from __future__ import annotations

import re

import pytest

from lrpilot.grid.racing import Halving, Rung, RungTable, score_at
from lrpilot.decision.ranking import rank
from lrpilot.grid.runner import bench
from lrpilot.errors import LRPilotError

from tests.bench.conftest import Graded, Inline

TOTAL, EVERY = 90, 10  # iterations per run, evaluation period


def Curves() -> Graded:
    """Scripted runs of FIX(k0=q) (also inside a composite) whose validation Top-1 is 100 q."""
    return Graded(lambda job: float(re.search(r"k0=([0-9.e-]+)", job.policy).group(1)), every=EVERY)


def test_rungs_sit_at_evaluations_below_the_budget():
    assert Halving(3, 2).iterations(90, 10) == [10, 30]
    assert Halving(3, 2).iterations(645, 32) == [96, 224]
    assert Halving(2, 3).iterations(16, 1) == [2, 4, 8]
    for bad in ({"eta": 1}, {"eta": True}, {"rungs": 0}):
        with pytest.raises(LRPilotError):
            Halving(**bad)


def test_a_rung_prunes_below_its_kth_best_once_it_has_eta_scores():
    assert not Rung(10, (90.0, 80.0), 3).prunes(1.0)  # too few to judge
    rung = Rung(10, (90.0, 80.0, 70.0, 60.0, 50.0), 3)  # k = (5 + 1) // 3 = 2: the 2nd best, 80
    assert rung.threshold == 80.0 and rung.prunes(79.9) and not rung.prunes(80.0)
    assert not rung.prunes(None) and not rung.prunes(float("nan"))


def test_with_slack_a_rung_stops_only_the_runs_whose_error_is_that_many_times_the_kth_bests():
    scores = (90.0, 80.0, 70.0, 60.0, 50.0)  # the 2nd best, 80: error 20
    loose = Rung(10, scores, 3, slack=1.5)
    assert not loose.prunes(71.0) and loose.prunes(69.9)  # error 29 < 30 goes on, 30.1 stops
    assert Rung(10, scores, 3, slack=1.0).prunes(79.9)  # slack 1: ASHA's rule
    table = RungTable([10], 3, slack=1.5)
    for v in scores:
        table.add({"iteration": [10], "val_top1": [v]}, "ok")
    assert table.rungs() == (loose,)
    for bad in (0.5, 0, True, "2", float("nan")):
        with pytest.raises(LRPilotError, match="--slack"):
            Halving(slack=bad)


def test_score_at_reads_the_latest_evaluation_at_or_before_the_rung():
    curves = {"iteration": [10, 20, 30], "val_top1": [50.0, float("nan"), 70.0]}
    assert score_at(curves, 25) == 50.0 and score_at(curves, 30) == 70.0
    assert score_at(curves, 31) is None  # never reached
    table = RungTable([20, 30], 3)
    table.add(curves, "ok")
    table.add(curves, "diverged")  # not counted
    assert [r.scores for r in table.rungs()] == [(50.0,), (70.0,)]


def test_successive_halving_prunes_the_worst_first_and_never_ranks_a_pruned_run_as_finished(store):
    good = ["FIX(k0=0.98)", "FIX(k0=0.97)", "FIX(k0=0.96)"]
    bad = [f"FIX(k0=0.{q})" for q in (5, 45, 4, 35, 3, 25)]
    lines = []
    done = bench(store, "digits-lenet", good + bad, steps=TOTAL, eval_every=EVERY, executor=Curves(),
                 race=Halving(3, 2), seeds=[0], progress=lines.append)
    runs = {r.policy: r for r in store.runs(task="digits-lenet")}
    pruned = {p for p, r in runs.items() if r.status == "pruned"}
    assert pruned == set(bad) and done.pruned == len(bad) and done.trained == 3
    assert all(runs[p].record["pruned_at"] == 10 for p in pruned)  # the first rung
    assert any("pruned at iteration 10" in line for line in lines)
    ranking = rank(store.runs(task="digits-lenet", outcomes=True))
    assert [r.policy for r in ranking.rows[:3]] == good
    for row in ranking.rows[3:]:
        assert row.n_ok == 0 and row.n_pruned == 1 and not row.tied_with_best and row.val_ci is None


def test_racing_stops_adding_seeds_once_the_leader_is_resolved(store):
    done = bench(store, "digits-lenet", ["FIX(k0=0.98)", "FIX(k0=0.6)", "FIX(k0=0.55)"], steps=TOTAL,
                 eval_every=EVERY, executor=Curves(), race=Halving(3, 2), seeds=[0, 1, 2])
    assert {(r.policy, r.seed) for r in store.runs(task="digits-lenet")} == {
        ("FIX(k0=0.98)", 0), ("FIX(k0=0.6)", 0), ("FIX(k0=0.55)", 0)}
    assert done.raced[-1].startswith("resolved")


def test_racing_gives_more_seeds_only_to_the_policies_tied_with_the_leader(store):
    # two texts that train identically are always tied: they race on; the clearly worse one stops after seed 0
    tied = ["FIX(k0=0.9)", "clamp(FIX(k0=0.9), max=1)"]
    done = bench(store, "digits-lenet", tied + ["FIX(k0=0.5)"], steps=TOTAL, eval_every=EVERY, executor=Curves(),
                 race=Halving(3, 2), seeds=[0, 1, 2])
    seeds = {}
    for r in store.runs(task="digits-lenet"):
        seeds.setdefault(r.policy, set()).add(r.seed)
    assert seeds["FIX(k0=0.9)"] == seeds["clamp(FIX(k0=0.9), max=1)"] == {0, 1, 2}
    assert seeds["FIX(k0=0.5)"] == {0}
    assert not done.raced[-1].startswith("resolved")
    ranking = rank(store.runs(task="digits-lenet", outcomes=True))
    assert {r.policy for r in ranking.rows if r.tied_with_best} == set(tied)
    assert sum(r.chosen for r in ranking.rows) == 1


def test_when_a_seed_does_not_fit_every_contender_the_leading_ones_race_on(store):
    from lrpilot.grid.runner import Grid
    from lrpilot.tasks import TaskRef

    tied = ["FIX(k0=0.9)", "clamp(FIX(k0=0.9), max=1)", "clamp(FIX(k0=0.9), max=2)"]  # always tied, in this order
    grid = Grid(store, TaskRef("digits-lenet"), TOTAL, Curves(), EVERY)
    done = grid.race(tied, [0, 1, 2], Halving(3, 2), more=lambda texts, seed: len(texts) <= 2)
    seeds = {}
    for r in store.runs(task="digits-lenet"):
        seeds.setdefault(r.policy, set()).add(r.seed)
    assert seeds == {tied[0]: {0, 1, 2}, tied[1]: {0, 1, 2}, tied[2]: {0}}
    assert "seed 1: compute left for the 2 leading of 3 only" in done.raced
    assert grid.race(tied, [0, 1, 2, 3], Halving(3, 2), more=lambda texts, seed: False).raced[-1] == (
        "compute spent: stopped before seed 1")


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_successive_halving_on_real_training_stores_pruned_runs_with_their_curves(store, executor):
    from lrpilot.execution.executors import LocalExecutor

    # FIX at a useless LR, sent after at least two that train: pruned at the rung (75 of 135 iterations)
    policies = ["FIX(k0=0.05)", "FIX(k0=0.03)", "FIX(k0=0.02)", "FIX(k0=1e-06)"]
    ex = Inline() if executor == "inline" else LocalExecutor(2)
    done = bench(store, "digits-mlp", policies, steps=135, eval_every=15, executor=ex, race=Halving(2, 1),
                 seeds=[0])
    runs = {r.policy: r for r in store.runs(task="digits-mlp")}
    assert runs["FIX(k0=1e-06)"].status == "pruned" and all(runs[p].status == "ok" for p in policies[:2])
    r = runs["FIX(k0=1e-06)"]
    assert r.record["pruned_at"] == 75 and r.cost["iterations"] == 75 and r.curves["iteration"][-1] == 75
    assert r.metrics.get("top1") is None  # no full-budget result
    pruned = [r for r in runs.values() if r.status == "pruned"]
    assert done.pruned == len(pruned) and all(r.record["rung_score"] < r.record["rung_threshold"] for r in pruned)
