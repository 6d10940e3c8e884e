"""Recommendation: from the task's stored runs, from a similar task's (rescaled), or from a range test."""

from dataclasses import dataclass, field

import pytest

import lrpilot
from lrpilot.bench.range_test import decade_test
from lrpilot.bench.recommend import recommend, rescale, similarity
from lrpilot.grid.runner import bench
from lrpilot.bench.suite import lrbench13
from lrpilot.controllers.base import make_controller
from lrpilot.errors import LRPilotError
from lrpilot.records import RunResult
from lrpilot.tasks import TaskRef

from tests.bench.conftest import Scripted

TASK = "digits-lenet"  # 10 classes, input 1 x 8 x 8, 510 iterations by default
SCRIPT = {0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0}


@dataclass
class FakeTask:
    """What the store needs of a task: its name and meta."""

    name: str
    meta: dict = field(default_factory=dict)


SIMILAR = FakeTask("digits-mlp2", {"dataset": "Digits", "model": "mlp", "num_classes": 10, "input_shape": [1, 8, 8]})
LESS = FakeTask("mnist-lenet5", {"dataset": "mnist", "model": "lenet-5", "num_classes": 10,
                                 "input_shape": [1, 28, 28]})


def put(store, task, policy, top1, seeds=(0, 1), budget=100):
    """Stored finished runs of ``policy`` on ``task`` with Top-1 ``top1`` (None: diverged)."""
    for seed in seeds:
        run_id = store.claim(task, policy, seed, budget)
        status = "ok" if top1 is not None else "diverged"
        metrics = {"top1": top1, "val_top1": top1, "ac": 0.9, "cd": 0.1, "cdac": 0.1, "ld": 0.01, "iters_at_best": budget}
        assert store.finish(run_id, RunResult(task.name, policy, seed, status, metrics,
                                              {"iterations": budget, "wall_s": 1.0}, {}, {}))


def save_range(store, task, best, k_low=None, k_high=None):
    store.save_analysis(task, "range-decade", "hand-made", {"kind": "decade", "best_lr": best,
                                                            "k_low": k_low or best / 2, "k_high": k_high or best * 2})


def texts(rec):
    return [p["policy"] for p in rec.policies]


def accepted(rec):
    """Every recommended text is accepted by the controller factory, as canonical text."""
    for text in texts(rec):
        assert str(make_controller(text)) == text
    return True


def similar_store(store):
    put(store, SIMILAR, "FIX(k0=0.1)", 95.0)
    put(store, SIMILAR, "COS(k0=0.2, k1=0.002, l=100)", 97.0)
    put(store, SIMILAR, "EXP(k0=0.1, gamma=0.99)", 90.0)
    put(store, LESS, "FIX(k0=0.5)", 99.5)


# --- case 1: stored -------------------------------------------------------------------------------

def test_stored_case_gives_top_policies_by_utility_at_the_largest_budget(store):
    policies = ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=20)", "EXP(k0=0.02, gamma=0.99)"]
    bench(store, TASK, policies, seeds=[0, 1], steps=20, executor=Scripted({0.05: 95.0, 0.1: 90.0, 0.02: 80.0}.get))
    bench(store, TASK, policies, seeds=[0], steps=10, executor=Scripted({0.05: 10.0, 0.1: 20.0, 0.02: 99.0}.get))
    rec = recommend(store, TASK)
    assert rec.case == "stored" and rec.task == TASK and "3 best stored policies" in rec.note
    assert texts(rec) == ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=20)", "EXP(k0=0.02, gamma=0.99)"]
    assert [(p["top1_mean"], p["top1_std"], p["n"], p["source"]) for p in rec.policies] == \
        [(95.0, 0.0, 2, TASK), (90.0, 0.0, 2, TASK), (80.0, 0.0, 2, TASK)]
    assert accepted(rec)
    assert texts(recommend(store, TASK, top=2)) == texts(rec)[:2]


def test_stored_case_format_lists_the_policies_with_their_top1(store):
    bench(store, TASK, ["FIX(k0=0.05)"], seeds=[0, 1], steps=20, executor=Scripted(lambda lr: 95.0))
    lines = recommend(store, TASK).format().splitlines()
    assert lines[0].startswith(f"{TASK}: its 1 best stored")
    assert lines[1] == f"  1. FIX(k0=0.05)  validation Top-1 95.00 %, test 95.00 % (2 runs on {TASK})"


# --- case 2: similar --------------------------------------------------------------------------------

def test_an_adaptive_policy_comes_with_its_distilled_trajectory_to_replay(store):
    replay = "piecewise(FIX(k0=0.05), FIX(k0=0.005)@60)"
    run_id = store.claim(TaskRef(TASK).build(), "autodrop(k0=0.05, rho=0.2)", 0, 100)
    store.finish(run_id, RunResult(TASK, "autodrop(k0=0.05, rho=0.2)", 0, "ok", {"top1": 99.0, "val_top1": 99.0}, {}, {},
                                   {"distilled": {"piecewise": replay, "fit": "FIX(k0=0.05)", "fit_error": 1.0}}))
    put(store, TaskRef(TASK).build(), "FIX(k0=0.05)", 95.0)
    rec = recommend(store, TASK)
    assert [p.get("replay") for p in rec.policies] == [replay, None]
    assert f"(no search cost): {replay}" in rec.format() and make_controller(replay)


def test_similar_case_takes_the_policies_of_the_most_similar_task(store):
    similar_store(store)
    rec = recommend(store, TASK)
    assert rec.case == "similar"
    assert texts(rec) == ["COS(k0=0.2, k1=0.002, l=100)", "FIX(k0=0.1)", "EXP(k0=0.1, gamma=0.99)"]
    assert {p["source"] for p in rec.policies} == {"digits-mlp2"}  # not the better but less similar mnist-lenet5
    assert "digits-mlp2 (similarity 6/8)" in rec.note and "not rescaled" in rec.note
    assert accepted(rec)


def test_similar_case_rescales_by_the_ratio_of_the_best_lrs(store):
    similar_store(store)
    save_range(store, SIMILAR, 0.1)
    save_range(store, TaskRef(TASK).build(), 0.05)
    rec = recommend(store, TASK)
    assert rec.case == "similar" and "rescaled by this task's range test" in rec.note
    assert texts(rec) == ["COS(k0=0.1, k1=0.001, l=100)", "FIX(k0=0.05)", "EXP(k0=0.05, gamma=0.99)"]
    assert [p["top1_mean"] for p in rec.policies] == [97.0, 95.0, 90.0]
    assert accepted(rec)


def test_similar_case_without_a_source_range_test_scales_by_its_best_fix_run(store):
    similar_store(store)
    put(store, SIMILAR, "FIX(k0=0.4)", 92.0)
    save_range(store, TaskRef(TASK).build(), 0.02)
    rec = recommend(store, TASK, top=2)
    assert texts(rec) == ["COS(k0=0.04, k1=0.0004, l=100)", "FIX(k0=0.02)"]  # factor 0.02 / 0.1 (best FIX)


def test_equally_similar_sources_are_merged_by_top1(store):
    twin = FakeTask("digits-mlp3", dict(SIMILAR.meta))
    put(store, SIMILAR, "FIX(k0=0.1)", 95.0)
    put(store, twin, "FIX(k0=0.3)", 96.0)
    put(store, twin, "EXP(k0=0.1, gamma=0.99)", 80.0)
    rec = recommend(store, TASK)
    assert rec.case == "similar" and "digits-mlp2" in rec.note and "digits-mlp3" in rec.note
    assert [(p["policy"], p["source"]) for p in rec.policies] == \
        [("FIX(k0=0.3)", "digits-mlp3"), ("FIX(k0=0.1)", "digits-mlp2"), ("EXP(k0=0.1, gamma=0.99)", "digits-mlp3")]


def test_a_stored_task_without_runs_is_no_source(store):
    save_range(store, SIMILAR, 0.1)  # a task row, but nothing trained
    rec = recommend(store, TASK, range_test=False)
    assert rec.case == "range-test" and rec.policies == []


def test_similar_case_after_a_range_test_of_the_target_is_rescaled(store):
    """The range test of a new task must not turn its short FIX probes into its 'stored' recommendation."""
    similar_store(store)
    save_range(store, SIMILAR, 0.1)
    decade_test(store, TASK, seeds=(0,), steps=10, executor=Scripted(SCRIPT.get))  # best 0.01
    rec = recommend(store, TASK)
    assert rec.case == "similar", rec.format()
    assert texts(rec) == ["COS(k0=0.02, k1=0.0002, l=100)", "FIX(k0=0.01)", "EXP(k0=0.01, gamma=0.99)"]


def test_a_benchmark_at_the_range_tests_budget_is_a_stored_recommendation(store):
    decade_test(store, TASK, seeds=(0,), steps=10, executor=Scripted(SCRIPT.get))
    bench(store, TASK, ["FIX(k0=0.005)"], seeds=[0], steps=10, executor=Scripted(SCRIPT.get))  # a probe's budget
    rec = recommend(store, TASK, range_test=False)
    assert rec.case == "stored" and texts(rec) == ["FIX(k0=0.005)"], rec.format()


# --- case 3: range test ------------------------------------------------------------------------------

def test_empty_store_runs_the_range_test_and_scales_the_suite_to_it(store):
    ex = Scripted(SCRIPT.get)
    rec = recommend(store, TASK, top=13, executor=ex, seeds=(0,), steps=10)
    assert rec.case == "range-test" and len(ex.jobs) == 8
    assert "no stored runs" in rec.note and "new range test [0.005, 0.02] (best 0.01)" in rec.note
    assert texts(rec) == lrbench13(510, 0.005, 0.02, 0.01)
    assert texts(rec)[0] == "FIX(k0=0.01)" and len(rec.policies) == 13
    assert {(p["source"], p["top1_mean"], p["n"]) for p in rec.policies} == {("range test", None, 0)}
    assert store.analyses(task=TASK, kind="range-decade") and accepted(rec)
    assert rec.format().splitlines()[1] == "  1. FIX(k0=0.01)"


def test_range_test_case_uses_a_stored_range_test_without_training(store):
    save_range(store, TaskRef(TASK).build(), 0.04, 0.01, 0.08)
    ex = Scripted(SCRIPT.get)
    rec = recommend(store, TASK, executor=ex)
    assert ex.jobs == [] and rec.case == "range-test" and "stored range test [0.01, 0.08]" in rec.note
    assert texts(rec) == lrbench13(510, 0.01, 0.08, 0.04)[:5] and accepted(rec)


def test_recommending_twice_from_an_empty_store_gives_the_same_answer(store):
    first = recommend(store, TASK, executor=Scripted(SCRIPT.get), seeds=(0,), steps=10)
    again = Scripted(SCRIPT.get)
    second = recommend(store, TASK, executor=again, seeds=(0,), steps=10)
    assert again.jobs == []
    assert (second.case, texts(second)) == (first.case, texts(first)), second.format()


def test_without_range_test_it_says_so_and_recommends_nothing(store):
    rec = recommend(store, TASK, range_test=False)
    assert rec.case == "range-test" and rec.policies == []
    assert "no range test" in rec.note and f"lrpilot range-test --task {TASK}" in rec.note
    assert store.runs() == [] and store.analyses() == []


def test_unknown_task_is_an_error(store):
    with pytest.raises(LRPilotError, match="unknown task 'nope'"):
        recommend(store, "nope")


# --- similarity and rescale ---------------------------------------------------------------------------

def row(dataset=None, model=None, num_classes=None, input_shape=None):
    return {"dataset": dataset, "model": model, "num_classes": num_classes, "input_shape": input_shape}


@pytest.mark.parametrize("a, b, score", [
    (row("CIFAR10", "ResNet-20", 10, [3, 32, 32]), row("cifar10", "ResNet-32", 10, [3, 32, 32]), 8),
    (row("Digits"), row("digits"), 4),
    (row("cifar10"), row("cifar100"), 0),
    (row(model="ResNet-20"), row(model="resnet32"), 2),
    (row(model="resnet_56"), row(model="ResNet 110"), 2),
    (row(model="lenet"), row(model="mlp"), 0),
    (row(num_classes=10), row(num_classes=10), 1),
    (row(num_classes=10), row(num_classes=100), 0),
    (row(input_shape=[1, 8, 8]), row(input_shape=[1, 8, 8]), 1),
    (row(input_shape=[1, 8, 8]), row(input_shape=[1, 28, 28]), 0),
    (row(), row(), 0),  # unknowns never match
    (row(""), row(""), 0),
    ({"name": "a"}, {"name": "b"}, 0),
])
def test_similarity(a, b, score):
    assert similarity(a, b) == score and similarity(b, a) == score


@pytest.mark.parametrize("text, factor, expected", [
    ("FIX(k0=0.1)", 0.5, "FIX(k0=0.05)"),
    ("FIX(k0=0.1)", 1 / 3, "FIX(k0=0.03333)"),
    ("FIX(k0=0.1)", 1.0, "FIX(k0=0.1)"),
    ("COS(k0=0.1, k1=0.001, l=5000)", 2.0, "COS(k0=0.2, k1=0.002, l=5000)"),
    ("EXP(k0=0.1, gamma=0.999)", 0.1, "EXP(k0=0.01, gamma=0.999)"),
    ("NSTEP(k0=0.1, gamma=0.1, l=[150, 180])", 3.0, "NSTEP(k0=0.3, gamma=0.1, l=[150, 180])"),
    ("TRI2(k0=0.0001, k1=0.9, l=2000)", 0.5, "TRI2(k0=5e-05, k1=0.45, l=2000)"),
    ("piecewise(FIX(k0=0.1), COS(k0=0.1, k1=0.001, l=5000)@1000)", 0.5,
     "piecewise(FIX(k0=0.05), COS(k0=0.05, k1=0.0005, l=5000)@1000)"),
    ("warmup(COS(k0=0.1, k1=0.001, l=5000), steps=500)", 2.0, "warmup(COS(k0=0.2, k1=0.002, l=5000), steps=500)"),
    ("clamp(EXP(k0=0.1, gamma=0.999), min=0.001)", 0.5, "clamp(EXP(k0=0.05, gamma=0.999), min=0.001)"),
])
def test_rescale_scales_k0_k1_only(text, factor, expected):
    assert rescale(text, factor) == expected
    assert str(lrpilot.policy(expected)) == expected


def test_rescale_scales_a_controllers_k0():
    out = rescale("autodrop(k0=0.1, rho=0.2)", 0.5)
    assert out == str(make_controller(out)) and "k0=0.05" in out and "rho=0.2" in out
