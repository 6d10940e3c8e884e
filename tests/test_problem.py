"""lrpilot.Problem: the user's model, optimizer, loss and DataLoaders as a task, through the engine, bench, range test
and tune; task objects wherever a task name is accepted, sent to worker processes pickled."""

import contextlib
import io
import pickle
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

import lrpilot
from lrpilot import LRPilotError, Problem
from lrpilot.bench.range_test import decade_test, sweep_test
from lrpilot.bench.recommend import recommend
from lrpilot.grid.runner import bench
from lrpilot.execution.executors import InProcess, LocalExecutor
from lrpilot.store import Store
from lrpilot.tasks import ClassificationTask, TaskRef

from tests.pickling import pickled_copy

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-problem-example"


class Net(nn.Sequential):
    """A small MLP: 4 inputs, 3 classes (module-level, so spawned workers can unpickle it)."""

    def __init__(self):
        super().__init__(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def scaled(batch):
    """A collate_fn of the test's own: stacks (x, y) pairs and doubles the inputs."""
    xs, ys = zip(*batch)
    return 2 * torch.stack(xs), torch.stack(ys)


def data(n: int = 60, seed: int = 0, classes: int = 3) -> TensorDataset:
    """A learnable synthetic classification set: the class shifts the first feature."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 4, generator=g)
    x[:, 0] += 2 * y
    return TensorDataset(x, y)


def problem(**kwargs) -> Problem:
    settings = dict(model=Net, train=DataLoader(data(), batch_size=8, shuffle=True), test=data(30, seed=1),
                    name="synthetic-mlp", epochs=2, lr=0.05)
    return Problem(**{**settings, **kwargs})


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.db") as s:
        yield s


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    text = README.read_text()
    assert MARKER in text
    snippet = re.search(r"```python\n(.*?)```", text[text.index(MARKER):], re.S).group(1)
    assert "lrpilot.Problem(" in snippet and "p.range_test()" in snippet and "p.tune(budget=" in snippet
    monkeypatch.setenv("LRPILOT_DB", str(tmp_path / "default.db"))  # store=None: the default store
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), {"__name__": "readme_example"})
    assert "wine-mlp: chose " in out.getvalue() and "FIX(k0=" in out.getvalue()
    with Store(tmp_path / "default.db") as s:
        runs = s.runs(task="wine-mlp", purpose="bench")
        assert {r.seed for r in runs} >= {0, 1} and all(r.task == "wine-mlp" for r in runs)
        assert s.analyses(task="wine-mlp", kind="range-decade")


def test_training_batches_follow_the_generator_and_keep_the_loaders_settings():
    p = problem(train=DataLoader(data(), batch_size=7, shuffle=True, collate_fn=scaled))
    first = list(p.train_batches(torch.Generator().manual_seed(3)))
    torch.manual_seed(123)  # the global RNG: not what shuffles
    again = list(p.train_batches(torch.Generator().manual_seed(3)))
    other = list(p.train_batches(torch.Generator().manual_seed(4)))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, other))
    assert [len(y) for _, y in first] == [7] * 7 + [5] == [len(y) for _, y in other]  # 54 kept for training
    assert p.batch_size == 7 and p.iters_per_epoch == len(first) == 8
    kept = torch.cat([x for x, _ in first])
    held = torch.cat([x for x, _ in p._loader("val")])
    everything = 2 * data().tensors[0]  # scaled by the loader's collate_fn, in training and in evaluation
    assert sorted(map(tuple, torch.cat([kept, held]).tolist())) == sorted(map(tuple, everything.tolist()))


def test_same_seed_same_curves_and_another_seed_others():
    p = problem()
    a, b, c = p.train("FIX(k0=0.05)", seed=0), p.train("FIX(k0=0.05)", seed=0), p.train("FIX(k0=0.05)", seed=1)
    assert a.status == "ok" and a.curves == b.curves and a.metrics == b.metrics
    assert a.curves["train_loss"] != c.curves["train_loss"]
    assert a.outcomes == b.outcomes and set(a.outcomes) == {"val", "test"}


def test_val_and_test_are_evaluated_in_order_on_every_split():
    val = data(21, seed=2)
    p = problem(val=DataLoader(val, batch_size=5, shuffle=True), optimizer=torch.optim.SGD,
                optimizer_args={"momentum": 0.5})
    assert (p.meta["n_train"], p.meta["n_val"], p.meta["n_test"], p.num_classes) == (60, 21, 30, 3)
    model = p.make_model().eval()
    with torch.no_grad():
        for split, ds in (("val", val), ("test", data(30, seed=1)), ("train", data())):
            ev = p.evaluate(model, split)
            x, y = ds.tensors
            assert torch.equal(ev.labels, y) and ev.probs.shape == (len(y), 3)
            assert ev.loss == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-5)
            assert torch.allclose(ev.probs, torch.softmax(model(x), 1))
    with pytest.raises(LRPilotError, match="unknown split 'dev'"):
        p.evaluate(model, "dev")
    opt = p.make_optimizer(model.parameters(), lr=0.2)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.5
    assert opt.param_groups[0]["lr"] == 0.2


def test_without_val_a_stratified_slice_of_train_is_held_out():
    p = problem()
    assert (p.meta["n_train"], p.meta["n_val"]) == (54, 6)
    held = torch.cat([y for _, y in p._loader("val")])
    assert torch.bincount(held).tolist() == [2, 2, 2]
    assert p.meta["model"] == "Net" and p.meta["input_shape"] == [4] and p.meta["dataset"] == "synthetic-mlp"


def test_a_custom_loss_trains_and_evaluates():
    calls = []

    def loss(out, y):
        calls.append(len(y))
        return F.cross_entropy(out, y, label_smoothing=0.1)

    result = problem(loss=loss).train(seed=0, steps=3, eval_every=3)
    assert result.status == "ok" and 8 in calls and result.policy == "FIX(k0=0.05)"


def test_the_old_unhashable_task_object_case_now_works(store):
    split = data()
    task = ClassificationTask("object-task", split.tensors, data(30, seed=1).tensors, Net, 3, batch_size=8)
    sweep = sweep_test(store, task, seeds=(0,), steps=12, executor=InProcess())
    assert len(sweep.curves) == 1 and store.analyses(task="object-task", kind="range-sweep")
    decade = decade_test(store, task, seeds=(0,), steps=4, start=0.1, min_lr=0.01, executor=InProcess())
    assert decade.points and {r.task for r in store.runs(task="object-task", purpose="range-test")} == {
        "object-task"}


def test_a_problem_runs_in_the_local_executor_with_two_workers(store):
    p = problem()
    policies = ["FIX(k0=0.05)", "FIX(k0=0.2)"]
    summary = bench(store, p, policies, seeds=(0,), steps=10, executor=LocalExecutor(2))
    assert (summary.trained, summary.failed, summary.task) == (2, 0, "synthetic-mlp")
    runs = {r.policy: r for r in store.runs(task="synthetic-mlp", purpose="bench")}
    assert set(runs) == set(policies) and all(r.status == "ok" for r in runs.values())
    here = p.train("FIX(k0=0.2)", seed=0, steps=10)
    assert runs["FIX(k0=0.2)"].metrics["val_top1"] == here.metrics["val_top1"]
    assert runs["FIX(k0=0.2)"].metrics["train_loss"] == pytest.approx(here.metrics["train_loss"], rel=1e-6)
    row = next(t for t in store.tasks() if t["name"] == "synthetic-mlp")
    assert (row["dataset"], row["model"], row["num_classes"]) == ("synthetic-mlp", "Net", 3)


def test_problem_methods_store_under_its_name(store):
    p = problem()
    ranking = p.bench(["FIX(k0=0.05)", "FIX(k0=0.1)"], seeds=(0, 1), store=store, steps=6)
    assert {r.policy for r in ranking.rows} == {"FIX(k0=0.05)", "FIX(k0=0.1)"}
    assert sum(r.chosen for r in ranking.rows) == 1
    assert len(store.runs(task="synthetic-mlp", purpose="bench")) == 4
    again = p.bench(["FIX(k0=0.05)"], seeds=(0,), store=store, steps=6)  # stored: nothing trains
    assert len(again.rows) == 2 and len(store.runs(task="synthetic-mlp", purpose="bench")) == 4
    swept = p.range_test(store, method="sweep", seeds=(0,))
    assert swept["answer"]["method"] == "sweep" and "decade" not in swept
    with pytest.raises(LRPilotError, match="method='grid'"):
        p.range_test(store, method="grid")


def test_tune_on_a_problem_runs_its_own_range_test(store):
    # no range test stored: tune's decade search trains the problem object, not a task looked up by its name
    result = problem(epochs=3).tune(budget=30, store=store)
    assert result.task == "synthetic-mlp" and result.decision.chosen is not None
    assert store.runs(task="synthetic-mlp", purpose="range-test")


def test_recommend_takes_a_problem(store):
    p = problem(name="recommended-mlp")
    fresh = recommend(store, p, top=3, steps=4, start=0.1, min_lr=0.01, seeds=(0,), executor=InProcess())
    assert fresh.case == "range-test" and len(fresh.policies) == 3
    assert store.analyses(task="recommended-mlp", kind="range-decade")
    p.bench(["FIX(k0=0.05)", "FIX(k0=0.2)"], seeds=(0,), store=store, steps=6)
    stored = recommend(store, p)
    assert stored.case == "stored" and {q["policy"] for q in stored.policies} == {"FIX(k0=0.05)", "FIX(k0=0.2)"}


def test_an_unpicklable_problem_is_one_error_with_the_two_fixes(store):
    p = problem(model=lambda: Net())
    with pytest.raises(LRPilotError, match=r"does not pickle.*\"module:function\".*executor=\"inprocess\""):
        bench(store, p, ["FIX(k0=0.05)"], seeds=(0,), steps=4, executor=LocalExecutor(2))
    with pytest.raises(LRPilotError, match="cannot be sent to worker processes"):
        pickle.dumps(TaskRef.of(p))
    assert not [r for r in store.runs(task="synthetic-mlp") if r.status == "running"]  # the claim was given back
    summary = bench(store, p, ["FIX(k0=0.05)"], seeds=(0,), steps=4, executor=InProcess())  # the second fix
    assert summary.trained == 1


VANISHING = """
import torch

class Gone(torch.nn.Sequential):
    def __init__(self):
        super().__init__(torch.nn.Linear(4, 3))
"""


def test_a_problem_whose_classes_workers_cannot_import_fails_its_runs_with_the_reason(store, tmp_path, monkeypatch):
    (tmp_path / "vanishing_models.py").write_text(VANISHING)
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing_models

    p = problem(model=vanishing_models.Gone, name="vanishing")
    (tmp_path / "vanishing_models.py").unlink()  # this process has the module; a new worker cannot import it
    summary = bench(store, p, ["FIX(k0=0.05)"], seeds=(0, 1), steps=4, executor=LocalExecutor(1))
    assert (summary.trained, summary.failed) == (0, 2)
    for run in store.runs(task="vanishing"):
        assert "could not be unpickled in this worker process" in run.record["error"]
        assert run.record["error_kind"] == "invocation"  # a later bench, with the module importable, retries it


def test_a_task_object_travels_pickled_once_and_is_unpickled_once_per_process():
    p = problem()
    ref = TaskRef.of(p)
    assert ref == TaskRef.of(p) and hash(ref) == hash(TaskRef.of(p)) and ref.build() is p and ref.name == p.name
    assert ref != TaskRef.of(problem()) and ref != TaskRef(p.name)
    first, second = pickled_copy(ref), pickled_copy(ref)
    assert first.build() is second.build() and first.build() is not p and first == second
    assert first.build().meta == p.meta
    assert pickled_copy(TaskRef("digits-mlp", "/d")) == TaskRef("digits-mlp", "/d")  # names: unchanged
    with pytest.raises(LRPilotError, match="neither a task name, a TaskRef nor a lrpilot Task"):
        TaskRef.of(42)


@pytest.mark.parametrize("change, message", [
    ({"train": (torch.zeros(4, 4), torch.zeros(4))}, r"train=tuple is neither a torch DataLoader nor a Dataset"),
    ({"test": TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))}, r"test= is empty"),
    ({"train": DataLoader(data(), batch_size=8, sampler=SubsetRandomSampler(range(10)))}, r"custom sampler"),
    ({"num_classes": 2}, r"train split has label 2, outside \[0, 2\)"),
    ({"test": TensorDataset(torch.zeros(3, 4), torch.tensor([0, 1, 7]))}, r"test split has label 7, outside \[0, 3\)"),
    ({"test": TensorDataset(torch.zeros(3, 4), torch.zeros(3))}, r"test labels are torch.float32"),
    ({"test": TensorDataset(torch.zeros(3, 4))}, r"a test batch is list; expected a pair"),
    ({"train": DataLoader(data(5), batch_size=8, drop_last=True)}, r"no batch"),
    ({"model": lambda: nn.Flatten(0)}, r"expected \(batch, classes\) logits"),
    ({"model": "Net"}, r"model='Net' must be callable"),
    ({"name": ""}, r"name='' must be a non-empty text"),
    ({"model": None}, r"model=None must be callable"),
    ({"val_fraction": 0.9}, r"val_fraction=0.9 must be a number in \(0, 0.5\]"),
    ({"epochs": 0}, r"epochs=0 must be a finite number > 0"),
    ({"train": data(), "batch_size": 0}, r"batch_size=0 must be a whole number >= 1"),
])
def test_bad_inputs_are_one_error_each(change, message):
    with pytest.raises(LRPilotError, match=message):
        problem(**change)


def test_an_optimizer_factory_that_returns_no_optimizer_is_an_error():
    p = problem(optimizer=lambda params, lr: None)
    with pytest.raises(LRPilotError, match="returned NoneType, expected a torch.optim.Optimizer"):
        p.make_optimizer(p.make_model().parameters(), lr=0.1)


def test_lrpilot_exports_problem():
    assert lrpilot.Problem is Problem and "Problem" in lrpilot.__all__
