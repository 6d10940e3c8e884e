"""The LR range test: LRBench's decade search (scripted and real), its good-range rule, and the LR sweep."""

import math
import statistics

import numpy as np
import pytest

from lrpilot.bench.range_test import (SWEEP_RULE, RangeTestResult, SweepJob, SweepResult, _fix, _good_range, answer,
                                      decade_test, latest, suggest, sweep_job, sweep_test)
from lrpilot.grid.runner import bench
from lrpilot.errors import LRPilotError

from tests.bench.conftest import Inline, Scripted
from tests.bench.flaky import RAISE_LR

TASK = "digits-lenet"


def table(top1: dict[float, float | None]):
    """Scripted Top-1 from a table of LRs (KeyError: an LR the test did not expect)."""
    return Scripted(lambda lr: top1[float(f"{lr:.3g}")])


class Seeded(Scripted):
    """Scripted Top-1 that depends on the seed too: ``top1(lr, seed)``."""

    def __init__(self, top1):
        super().__init__(None)
        self.by_seed = top1

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        jobs = list(jobs)
        seeds = iter([j.seed for j in jobs])
        self.top1 = lambda lr: self.by_seed(float(f"{lr:.3g}"), next(seeds))
        super().run(fn, iter(jobs), on_done, on_failed, tick, every)


def tried(executor) -> list[str]:
    """The policies the executor trained, in order, once each."""
    return list(dict.fromkeys(j.policy for j in executor.jobs))


def decade(store, executor, **kw):
    return decade_test(store, TASK, **{"seeds": (0, 1), "steps": 10, "executor": executor, **kw})


# --- the decade search -------------------------------------------------------------------------

def test_decade_search_stops_after_two_falls_then_sweeps_1_2_5_around_the_best(store):
    ex = table({0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0,
                0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0})
    result = decade(store, ex)
    assert tried(ex) == ["FIX(k0=0.1)", "FIX(k0=0.01)", "FIX(k0=0.001)", "FIX(k0=0.0001)",
                         "FIX(k0=0.002)", "FIX(k0=0.005)", "FIX(k0=0.02)", "FIX(k0=0.05)"]
    assert len(ex.jobs) == 16 and {j.seed for j in ex.jobs} == {0, 1} and {j.steps for j in ex.jobs} == {10}
    assert [p["lr"] for p in result.points] == [0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
    assert [p["top1_mean"] for p in result.points] == [70.0, 80.0, 85.0, 89.5, 90.0, 89.2, 60.0, 50.0]
    assert {p["n"] for p in result.points} == {2} and {p["top1_std"] for p in result.points} == {0.0}
    assert (result.best_lr, result.k_low, result.k_high) == (0.01, 0.005, 0.02)
    assert (result.kind, result.budget, result.seeds, result.tolerance) == ("decade", 10, [0, 1], 1.0)
    runs = store.runs(task=TASK, curves=False)
    assert len(runs) == 16 and {r.status for r in runs} == {"ok"} and {r.budget for r in runs} == {10}


def test_one_fall_followed_by_a_rise_does_not_stop_the_search(store):
    ex = table({0.1: 50.0, 0.01: 40.0, 0.001: 60.0, 0.0001: 55.0, 1e-05: 50.0,
                0.0002: 52.0, 0.0005: 58.0, 0.002: 57.0, 0.005: 45.0})
    result = decade(store, ex, seeds=(0,))
    assert tried(ex)[:5] == ["FIX(k0=0.1)", "FIX(k0=0.01)", "FIX(k0=0.001)", "FIX(k0=0.0001)", "FIX(k0=1e-05)"]
    assert tried(ex)[5:] == ["FIX(k0=0.0002)", "FIX(k0=0.0005)", "FIX(k0=0.002)", "FIX(k0=0.005)"]
    assert result.best_lr == 0.001 and (result.k_low, result.k_high) == (0.0005, 0.001)


def test_decade_search_ends_at_min_lr_when_top1_keeps_rising(store):
    ex = Scripted(lambda lr: 60.0 - math.log10(lr))  # the smaller the better, for ever
    result = decade(store, ex, seeds=(0,), min_lr=1e-4)
    assert tried(ex) == ["FIX(k0=0.1)", "FIX(k0=0.01)", "FIX(k0=0.001)", "FIX(k0=0.0001)",
                         "FIX(k0=2e-05)", "FIX(k0=5e-05)", "FIX(k0=0.0002)", "FIX(k0=0.0005)"]
    assert result.best_lr == pytest.approx(2e-05)


def test_fine_sweep_stays_at_or_below_lr_1(store):
    ex = table({1.0: 90.0, 0.1: 80.0, 0.01: 70.0, 0.2: 85.0, 0.5: 88.0})
    result = decade(store, ex, seeds=(0,), start=1.0)
    assert tried(ex) == ["FIX(k0=1)", "FIX(k0=0.1)", "FIX(k0=0.01)", "FIX(k0=0.2)", "FIX(k0=0.5)"]
    assert (result.best_lr, result.k_low, result.k_high) == (1.0, 0.5, 1.0)


def test_diverged_runs_count_as_chance_level(store):
    ex = Scripted(lambda lr: None if lr >= 0.1 else {0.01: 90.0, 0.001: 40.0, 0.0001: 30.0}.get(lr, 20.0))
    result = decade(store, ex)
    means = {p["lr"]: p["top1_mean"] for p in result.points}
    assert means == {0.0001: 30.0, 0.001: 40.0, 0.002: 20.0, 0.005: 20.0, 0.01: 90.0, 0.02: 20.0, 0.05: 20.0,
                     0.1: 10.0}  # 10 classes: chance is 10%
    statuses = {(r.policy, r.status) for r in store.runs(task=TASK, curves=False)}
    assert ("FIX(k0=0.1)", "diverged") in statuses


def test_a_failed_run_in_the_fine_sweep_is_chance_not_missing(store):
    def top1(lr):
        if lr == 0.2:
            raise RuntimeError("worker lost")
        return {0.1: 90.0, 0.01: 80.0, 0.001: 70.0, 0.02: 85.0, 0.05: 89.9, 0.5: 50.0}[lr]

    result = decade(store, Scripted(top1), seeds=(0,))
    assert {p["lr"]: p["top1_mean"] for p in result.points}[0.2] == 10.0
    assert {r.status for r in store.runs(task=TASK, curves=False) if r.policy == "FIX(k0=0.2)"} == {"failed"}
    assert (result.best_lr, result.k_low, result.k_high) == (0.1, 0.05, 0.1)


def test_tolerance_widens_the_good_range(store):
    ex = table({0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0,
                0.002: 85.0, 0.005: 87.0, 0.02: 88.0, 0.05: 60.0})
    assert (decade(store, ex).k_low, decade(store, ex).k_high) == (0.005, 0.01)  # alone: + next smaller
    wide = decade(store, ex, tolerance=5.0)
    assert (wide.k_low, wide.k_high) == (0.002, 0.02)


def test_summary_is_stored_as_range_decade_and_latest_returns_it(store):
    assert latest(store, TASK) is None
    ex = table({0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0,
                0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0})
    result = decade(store, ex)
    (stored,) = store.analyses(task=TASK, kind="range-decade")
    assert stored["result"] == result.to_dict() and "budget=10" in stored["settings"]
    assert latest(store, TASK) == result and latest(store, TASK, "range-decade") == result
    assert latest(store, TASK, "range-sweep") is None and latest(store, "digits-mlp") is None
    with pytest.raises(LRPilotError, match="unknown range test kind 'range-foo': use range-decade or range-sweep"):
        latest(store, TASK, "range-foo")


def test_rerun_reuses_the_stored_runs(store):
    script = {0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0}
    first = decade(store, table(script))
    again = table(script)
    assert decade(store, again) == first
    assert again.jobs == []
    assert len(store.runs(task=TASK, curves=False)) == 16 and len(store.analyses(task=TASK)) == 1
    more = table(script)  # another seed: only its runs are trained
    decade(store, more, seeds=(0, 1, 2))
    assert {j.seed for j in more.jobs} == {2} and len(more.jobs) == 8


def test_probes_are_range_test_runs_apart_from_a_benchmark_at_their_budget(store):
    script = {0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0}
    decade(store, table(script), seeds=(0,))
    assert {r.purpose for r in store.runs(task=TASK)} == {"range-test"} and store.runs(purpose="bench") == []
    user = table(script)
    done = bench(store, TASK, ["FIX(k0=0.01)"], seeds=[0], steps=10, executor=user)  # a probe's policy and budget
    assert tried(user) == ["FIX(k0=0.01)"]  # trained: the probe is not taken for the benchmark
    assert [(r.policy, r.budget, r.purpose) for r in done.runs(store)] == [("FIX(k0=0.01)", 10, "bench")]
    again = table(script)
    decade(store, again, seeds=(0,))  # the probes are still there, the benchmark did not replace them
    assert again.jobs == [] and len(store.runs(task=TASK, purpose="range-test")) == 8


@pytest.mark.parametrize("kw, fragment", [
    ({"min_lr": 0.1}, "min_lr=0.1"),
    ({"min_lr": 0.5}, "min_lr=0.5"),
    ({"min_lr": 0.0}, "min_lr=0.0"),
    ({"start": 0.001, "min_lr": 0.01}, "start=0.001"),
    ({"tolerance": -1.0}, "--tolerance -1.0"),
    ({"tolerance": float("nan")}, "--tolerance nan"),
])
def test_bad_arguments_are_refused_before_any_run(store, kw, fragment):
    ex = Scripted(lambda lr: 50.0)
    with pytest.raises(LRPilotError) as e:
        decade(store, ex, **kw)
    assert fragment in str(e.value)
    assert ex.jobs == [] and store.runs() == [] and store.analyses() == []


# --- the good-range rule on hand-made points ---------------------------------------------------

def points(*means):
    return [{"lr": 10.0 ** (i - len(means)), "top1_mean": m} for i, m in enumerate(means)]


def lr_range(pts, tolerance):
    r = _good_range(pts, tolerance)
    lrs = [p["lr"] for p in pts]
    return lrs.index(r["k_low"]), lrs.index(r["best_lr"]), lrs.index(r["k_high"])


def test_good_range_is_the_contiguous_block_within_tolerance():
    assert lr_range(points(50, 80, 89.5, 90, 89.2, 70, 89.9), 1.0) == (2, 3, 4)  # 89.9 beyond the gap stays out


def test_good_range_tolerance_bound_is_inclusive():
    assert lr_range(points(70, 89.0, 90, 89.0, 70), 1.0) == (1, 2, 3)
    assert lr_range(points(70, 88.99, 90, 89.0, 70), 1.0) == (2, 2, 3)


def test_single_point_range_takes_the_next_smaller_lr():
    assert lr_range(points(50, 60, 90, 60, 50), 1.0) == (1, 2, 2)
    assert lr_range(points(90, 50, 40), 1.0) == (0, 0, 1)  # the smallest LR: the next larger one
    assert lr_range(points(40, 50, 90), 0.0) == (1, 2, 2)
    assert lr_range(points(90), 1.0) == (0, 0, 0)


def test_good_range_ties_pick_the_first_best_and_zero_tolerance_keeps_equals():
    assert lr_range(points(80, 90, 90, 70), 0.0) == (1, 1, 2)


# --- a real decade search -----------------------------------------------------------------------

def test_real_decade_search_on_digits_follows_its_own_rule(store):
    ex = Inline()
    result = decade_test(store, TASK, seeds=(0,), steps=30, executor=ex)  # 30: enough to learn on 1,078 images
    runs = {r.policy: r for r in store.runs(task=TASK, curves=False)}
    assert len(runs) == len(ex.jobs) == len(result.points) and {r.budget for r in runs.values()} == {30}
    means = {p["lr"]: p["top1_mean"] for p in result.points}
    for p in result.points:
        r = runs[_fix(p["lr"])]
        assert p["top1_mean"] == (r.metrics["val_top1"] if r.status == "ok" else 10.0)
    decades = [0.1]
    while len(decades) < len(means) and float(f"{decades[-1] / 10:.3g}") in means:
        decades.append(float(f"{decades[-1] / 10:.3g}"))
    tops = [means[x] for x in decades]
    falls = [b < a for a, b in zip(tops, tops[1:])]
    assert falls[-2:] == [True, True] and not any(x and y for x, y in zip(falls[:-2], falls[1:-2]))
    best = max(means, key=means.get)
    assert result.best_lr == best and result.k_low <= best <= result.k_high
    assert latest(store, TASK) == result


# --- the exponential sweep ------------------------------------------------------------------------

LRS = list(10 ** np.linspace(-4, 1, 51))  # 0.1 apart in log10; index 20 is 0.01


def test_suggest_is_a_tenth_of_the_lr_at_the_loss_minimum():
    x = np.log10(LRS)
    loss = 2 - np.tanh(2 * (x + 2)) + 5 * np.maximum(0, x + 0.5) ** 2  # steepest at 0.01, minimum further on
    low = int(np.argmin(loss))
    assert 20 < low < 50 and suggest(LRS, list(loss)) == pytest.approx(LRS[low] / 10)


@pytest.mark.parametrize("cliff", [0, 1])  # the steepest fall is the minimum itself, or the point before it
def test_suggest_is_never_the_lr_at_the_minimum_where_the_steepest_fall_ends_there(cliff):
    loss = np.r_[np.linspace(3.0, 2.8, 30), [1.0], np.linspace(1.5, 4.0, 20)]  # a cliff down to index 30
    if cliff:
        loss[31] = 0.9  # the minimum one point past the cliff
    slope = np.gradient(loss, np.log(LRS))
    assert int(np.argmin(slope)) in (29, 30) and int(np.argmin(loss)) == 30 + cliff
    assert suggest(LRS, list(loss)) == pytest.approx(LRS[30 + cliff] / 10)
    assert suggest(LRS, list(loss)) <= LRS[20 + cliff] * (1 + 1e-9)  # a decade below: not the minimum or a neighbour


def test_suggest_ignores_a_lower_loss_in_the_skipped_first_tenth():
    loss = list(np.linspace(2.0, 1.5, 51))
    loss[0] = 0.5  # start-up noise below the real minimum
    assert suggest(LRS, loss) == pytest.approx(LRS[50] / 10)


@pytest.mark.parametrize("loss", [
    [2.3] * 51,  # flat
    list(np.linspace(2.3, 5.0, 51)),  # rising
    [2.3] * 6 + [2.0] + [3.0] * 44,  # minimum too early to measure a slope after the skipped points
])
def test_suggest_is_none_without_a_fall(loss):
    assert suggest(LRS, loss) is None


def test_suggest_is_none_for_an_empty_curve():
    assert suggest([], []) is None


def test_sweep_on_digits_grows_lrs_stops_at_explosion_and_reports_median(store):
    lines = []
    result = sweep_test(store, TASK, seeds=(0, 1), steps=30, lr_min=1e-5, lr_max=100.0, executor=Inline(),
                        progress=lines.append)
    assert [c["seed"] for c in result.curves] == [0, 1] and len(lines) == 2
    growth = (100.0 / 1e-5) ** (1 / 29)
    for c in result.curves:
        n = len(c["lr"])
        assert 10 <= n < 30 and len(c["loss"]) == n  # stopped before lr_max
        assert c["lr"] == pytest.approx([1e-5 * growth ** i for i in range(n)], rel=1e-9)
        assert all(math.isfinite(v) for v in c["loss"])
        assert all(v <= 4 * min(c["loss"][:i]) for i, v in enumerate(c["loss"]) if i)  # the 4x stop rule
        assert c["suggestion"] == suggest(c["lr"], c["loss"])
    found = [c["suggestion"] for c in result.curves if c["suggestion"] is not None]
    assert found, "no seed gave a suggestion"
    assert result.suggestion == pytest.approx(math.exp(statistics.median(math.log(s) for s in found)))
    assert result.spread == [min(found), max(found)]
    assert result.spread[0] <= result.suggestion <= result.spread[1]
    assert (result.kind, result.steps, result.lr_min, result.lr_max) == ("sweep", 30, 1e-5, 100.0)
    assert latest(store, TASK, "range-sweep") == result and latest(store, TASK) is None
    stored = store.analyses(task=TASK, kind="range-sweep")[-1]["result"]
    assert stored == result.to_dict() and SweepResult.from_dict(stored) == result  # the same JSON as the dict was
    assert list(stored) == ["kind", "rule", "steps", "lr_min", "lr_max", "curves", "suggestion", "spread", "answer"]
    with pytest.warns(DeprecationWarning, match="a SweepResult: use result.suggestion"):
        assert result["suggestion"] == result.suggestion
    assert store.runs() == []  # a sweep stores no runs


def test_sweep_is_deterministic_per_seed():
    job = SweepJob(TASK, None, 0, 20, 1e-4, 10.0)
    a, b = sweep_job(job), sweep_job(job)
    assert a == b and len(a["lr"]) > 0
    assert sweep_job(SweepJob(TASK, None, 1, 20, 1e-4, 10.0))["loss"] != a["loss"]


def test_sweep_median_of_three_seeds_is_the_middle_one(store, monkeypatch):
    import lrpilot.bench.range_test as rt

    made = {0: 0.01, 1: 0.1, 2: 0.001}
    monkeypatch.setattr(rt, "sweep_job", lambda job: {"seed": job.seed, "lr": [], "loss": [],
                                                      "suggestion": made[job.seed]})
    result = sweep_test(store, TASK, seeds=(2, 0, 1, 0), steps=10, executor=Inline())
    assert [c["seed"] for c in result.curves] == [0, 1, 2]  # duplicates dropped, sorted
    assert result.suggestion == pytest.approx(0.01) and result.spread == [0.001, 0.1]


def test_sweep_without_any_suggestion_reports_none(store, monkeypatch):
    import lrpilot.bench.range_test as rt

    monkeypatch.setattr(rt, "sweep_job", lambda job: {"seed": job.seed, "lr": [], "loss": [], "suggestion": None})
    result = sweep_test(store, TASK, seeds=(0,), steps=10, executor=Inline())
    assert result.suggestion is None and result.spread is None
    assert latest(store, TASK, "range-sweep") == result


def test_a_failed_sweep_is_an_error_naming_its_seed(store):
    with pytest.raises(LRPilotError, match="the LR sweep of seed 0 failed: RuntimeError: the flaky task fails"):
        sweep_test(store, "tests.bench.flaky:task", seeds=(0,), steps=10, lr_min=RAISE_LR, lr_max=1.0,
                   executor=Inline())


@pytest.mark.parametrize("kw, fragment", [
    ({"lr_min": 1.0, "lr_max": 1.0}, "lr_min=1.0"),
    ({"lr_min": 0.0}, "lr_min=0.0"),
    ({"lr_min": 10.0, "lr_max": 1.0}, "lr_max=1.0"),
    ({"steps": 9}, "--sweep-steps 9"),
])
def test_bad_sweep_arguments_are_refused(store, kw, fragment):
    ex = Inline()
    with pytest.raises(LRPilotError) as e:
        sweep_test(store, TASK, **{"executor": ex, **kw})
    assert fragment in str(e.value) and ex.jobs == [] and store.analyses() == []


# --- extra seeds where the decade search's spread is large ------------------------------------------

def test_noisy_lrs_in_or_next_to_the_good_range_get_more_seeds_up_to_the_cap(store):
    noisy = {0.01: {0: 80.0, 1: 96.0}, 0.02: {0: 90.0, 1: 91.0}}  # 0.01: std 11.3 before extra seeds
    base = {0.1: 50.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5, 0.05: 60.0}

    def top1(lr, seed):
        return noisy[lr].get(seed, 92.0) if lr in noisy else base[lr]

    ex = Seeded(top1)
    result = decade(store, ex, max_seeds=5)
    extra = sorted((j.policy, j.seed) for j in ex.jobs if j.seed > 1)
    assert extra == [("FIX(k0=0.01)", 2), ("FIX(k0=0.01)", 3), ("FIX(k0=0.01)", 4)]  # batches of 2, capped at 5
    by_lr = {p["lr"]: p for p in result.points}
    assert by_lr[0.01]["n"] == 5 and by_lr[0.01]["top1_mean"] == pytest.approx((80 + 96 + 3 * 92) / 5)
    assert by_lr[0.01]["top1_std"] == pytest.approx(statistics.stdev([80, 96, 92, 92, 92]))
    assert by_lr[0.02]["n"] == 2 and by_lr[0.1]["n"] == 2  # calm or far from the range: no more seeds
    assert (result.spread, result.max_seeds, result.seeds) == (2.0, 5, [0, 1])


def test_a_noisy_lr_far_from_the_good_range_gets_no_more_seeds(store):
    ex = Seeded(lambda lr, seed: {0.1: 50.0 + 10 * seed, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0,
                                  0.005: 89.5, 0.02: 89.2, 0.05: 60.0}[lr])
    result = decade(store, ex)
    assert {j.seed for j in ex.jobs} == {0, 1} and {p["lr"]: p["n"] for p in result.points}[0.1] == 2


def test_extra_seeds_can_move_the_good_range(store):
    # 0.005 looks as good as 0.01 on seeds 0, 1, but not on more: the range is cut after the extra seeds
    ex = Seeded(lambda lr, seed: {0.005: 96.0 if seed == 0 else 84.0 if seed == 1 else 80.0}.get(lr, {
        0.1: 50.0, 0.01: 90.0, 0.001: 70.0, 0.0001: 60.0, 0.002: 75.0, 0.02: 89.5, 0.05: 60.0}.get(lr)))
    result = decade(store, ex, max_seeds=4)
    assert {p["lr"]: p["n"] for p in result.points}[0.005] == 4
    assert (result.best_lr, result.k_low, result.k_high) == (0.01, 0.01, 0.02)


def test_spread_must_be_nonnegative(store):
    with pytest.raises(LRPilotError, match="spread -1"):
        decade(store, Scripted(lambda lr: 50.0), spread=-1.0)


# --- one answer from both methods -------------------------------------------------------------------

def decade_result(points, best, k_low, k_high, chance=10.0, tolerance=1.0):
    return RangeTestResult(k_low, k_high, best, [{"lr": lr, "top1_mean": m} for lr, m in points], chance=chance,
                           tolerance=tolerance)


GOOD = decade_result([(0.005, 80.0), (0.01, 94.5), (0.02, 95.0), (0.05, 94.2), (0.1, 60.0)], 0.02, 0.01, 0.05)


def test_answer_agrees_when_the_sweep_lies_in_the_good_range():
    a = answer(GOOD, SweepResult(0.03))
    assert (a["lr"], a["method"]) == (0.01, "both")  # the good range's lower end, not the best LR
    assert "agree" in a["why"] and "0.03" in a["why"] and "[0.01, 0.05]" in a["why"] and "lower end 0.01" in a["why"]


@pytest.mark.parametrize("s, side", [(0.2, "above"), (0.005, "below")])
def test_answer_takes_the_decade_search_when_the_methods_disagree(s, side):
    a = answer(GOOD, SweepResult(s))
    assert (a["lr"], a["method"]) == (0.01, "decade")
    assert "disagree" in a["why"] and f"lies {side} the good range" in a["why"] and "trains each LR" in a["why"]


def test_answer_uses_the_sweep_when_no_decade_lr_trained():
    dead = decade_result([(0.01, 10.0), (0.1, 10.5)], 0.1, 0.01, 0.1)
    a = answer(dead, SweepResult(0.004))
    assert (a["lr"], a["method"]) == (0.004, "sweep") and "above chance level (10%" in a["why"]
    assert answer(dead, SweepResult(None))["lr"] is None


def test_answer_of_one_method_is_that_method():
    assert answer(GOOD, None)["lr"] == 0.01 and answer(GOOD, None)["method"] == "decade"
    assert answer(None, SweepResult(0.05)) == {"lr": 0.05, "method": "sweep", "why": answer(
        None, SweepResult(0.05))["why"]} and SWEEP_RULE in answer(None, SweepResult(0.05))["why"]
    assert answer(None, SweepResult(None))["lr"] is None
    assert answer(GOOD, SweepResult(None))["method"] == "decade"


def test_the_answer_is_stored_in_both_analyses(store):
    sweep = SweepResult(0.007)
    result = decade(store, table({0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5,
                                  0.02: 89.2, 0.05: 60.0}), sweep=sweep)
    assert result.answer == answer(result, sweep) and result.answer["method"] == "both"
    assert latest(store, TASK).answer == result.answer and result.chance == 10.0


def test_the_result_round_trips_the_stored_json_and_its_dict_form_warns(store):
    result = decade(store, Scripted(lambda lr: 90.0 - abs(math.log10(lr / 0.01))))
    stored = store.analyses(task=TASK, kind="range-decade")[-1]["result"]
    assert stored == result.to_dict() and RangeTestResult.from_dict(stored) == result == latest(store, TASK)
    with pytest.warns(DeprecationWarning, match="use result.k_low"):
        assert result["k_low"] == result.k_low
