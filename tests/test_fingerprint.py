"""A run's fingerprint (lrpilot.fingerprint) and how a bench uses it: stale runs are trained again, --rerun-failed."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from lrpilot.grid.runner import bench
from lrpilot.fingerprint import digest, fingerprint, short
from lrpilot.records import RunResult
from lrpilot.store import Store
from lrpilot.tasks import ClassificationTask, get_task
from lrpilot.tasks.nqm import make_nqm_task
from lrpilot.tasks.ref import _build

from tests.bench.conftest import Inline


def tiny(hidden: int = 4, label_shift: int = 0, **settings) -> ClassificationTask:
    """A 3-class task on 60 random examples with a one-hidden-layer MLP, called "wine"."""
    g = torch.Generator().manual_seed(0)
    x, xt = torch.randn(60, 5, generator=g), torch.randn(30, 5, generator=g)
    y, yt = (torch.arange(60) + label_shift) % 3, torch.arange(30) % 3
    return ClassificationTask("wine", (x, y), (xt, yt),
                              lambda: nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, 3)), 3,
                              **{"batch_size": 16, **settings})


def test_the_same_task_built_twice_has_the_same_digest_and_the_budget_counts():
    a, b = get_task("digits-lenet"), get_task("digits-lenet")
    assert a is not b and digest(fingerprint(a, 100)) == digest(fingerprint(b, 100))
    assert digest(fingerprint(a, 100)) != digest(fingerprint(a, 101))
    d = digest(fingerprint(a, 100))
    assert len(d) == 64 and short(d) == d[:10]
    assert short(None) == "-"


@pytest.mark.parametrize("changed", [
    dict(hidden=5),  # the model's architecture
    dict(label_shift=1),  # the data
    dict(batch_size=8),  # a setting of the task
    dict(momentum=0.5),  # the optimizer's
    dict(weight_decay=0.0),
], ids=lambda changed: next(iter(changed)))
def test_what_decides_a_result_changes_the_digest(changed):
    assert digest(fingerprint(tiny(**changed), 50)) != digest(fingerprint(tiny(), 50))


def test_what_does_not_decide_a_result_leaves_the_digest_alone():
    a, b = tiny(), tiny(lr=0.5, epochs=3, eval_batch_size=7, meta={"dataset": "another label"})
    assert digest(fingerprint(a, 50)) == digest(fingerprint(b, 50))  # defaults the policy and budget override
    fp = fingerprint(a, 50)
    assert fp["versions"]["torch"] == torch.__version__ and "lrpilot" in fp["versions"]
    assert digest({**fp, "versions": {"torch": "9.9", "lrpilot": "9.9"}}) == digest(fp)  # versions: recorded only


def test_the_optimizer_class_and_a_generated_tasks_settings_count():
    adam = tiny()
    adam.make_optimizer = lambda params, lr: torch.optim.Adam(params, lr=lr)
    fp = fingerprint(adam, 50)
    assert fp["optimizer"]["class"] == "torch.optim.adam.Adam" and "lr" not in fp["optimizer"]["groups"][0]
    assert digest(fp) != digest(fingerprint(tiny(), 50))
    assert digest(fingerprint(make_nqm_task(seed=0), 10)) != digest(fingerprint(make_nqm_task(seed=1), 10))
    assert fingerprint(make_nqm_task(), 10)["model"]["n_param"] == len(make_nqm_task().a)


def test_it_is_computed_once_per_task_and_moves_no_random_state():
    task, built = tiny(), []
    make = task.make_model_fn
    task.make_model_fn = lambda: built.append(1) or make()
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    first = fingerprint(task, 50)
    assert torch.equal(torch.rand(2), expected)
    assert fingerprint(task, 60) == {**first, "budget": 60} and built == [1]


# --- the bench --------------------------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.db") as s:
        yield s


#: A user's task module: "wine" with a hidden layer of HIDDEN units (``wide``: twice as many); while the file
#: ``raise`` lies beside it, training raises (a failure of the run itself).
WINE = """
from pathlib import Path

import torch
from torch import nn

from lrpilot.tasks import ClassificationTask

HIDDEN = {hidden}
RAISE = Path(__file__).with_name("raise")


def wine(hidden=HIDDEN):
    g = torch.Generator().manual_seed(0)
    x, xt = torch.randn(60, 5, generator=g), torch.randn(30, 5, generator=g)
    task = ClassificationTask("wine", (x, torch.arange(60) % 3), (xt, torch.arange(30) % 3),
                              lambda: nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, 3)), 3,
                              batch_size=16)
    loss = task.train_loss

    def train_loss(model, batch):
        if RAISE.exists():
            raise ValueError("boom")
        return loss(model, batch)

    task.train_loss = train_loss
    return task


def wide():
    return wine(2 * HIDDEN)
"""


def write_wine(folder, hidden: int = 4) -> str:
    """Write the module ``wine_tasks`` (see :data:`WINE`) into ``folder``; its name."""
    (folder / "wine_tasks.py").write_text(WINE.format(hidden=hidden))
    return "wine_tasks"


@pytest.fixture
def user_tasks(tmp_path, monkeypatch):
    """The module ``wine_tasks`` on sys.path, imported and its tasks built anew in each test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wine_tasks", raising=False)
    _build.cache_clear()
    yield write_wine(tmp_path)
    _build.cache_clear()


def test_a_stored_run_of_another_model_is_trained_again_and_said(store, user_tasks):
    first = bench(store, f"{user_tasks}:wine", ["FIX(k0=0.05)"], seeds=[0, 1], steps=4, executor=Inline())
    assert first.trained == 2
    [old] = {r.fingerprint for r in store.runs()}
    assert store.runs()[0].record["fingerprint"]["model"]["n_param"] == 5 * 4 + 4 + 4 * 3 + 3
    lines, ex = [], Inline()
    again = bench(store, f"{user_tasks}:wide", ["FIX(k0=0.05)"], seeds=[0, 1], steps=4, executor=ex,
                  progress=lines.append)
    assert (again.trained, again.finished_before) == (2, 0) and len(ex.jobs) == 2
    assert lines[0] == (f"2 stored runs of wine were trained on other data, model or optimizer (fingerprint "
                        f"{short(old)}; now {short(digest(fingerprint(get_task(f'{user_tasks}:wide'), 4)))}): "
                        "trained again")
    runs = store.runs()
    assert len(runs) == 2 and {r.fingerprint for r in runs} != {old}
    assert {r.record["fingerprint"]["model"]["n_param"] for r in runs} == {5 * 8 + 8 + 8 * 3 + 3}
    steady = bench(store, f"{user_tasks}:wide", ["FIX(k0=0.05)"], seeds=[0, 1], steps=4, executor=Inline(),
                   progress=lines.append)
    assert (steady.trained, steady.finished_before) == (0, 2) and len(lines) == 3  # nothing said, nothing trained


def test_runs_stored_without_a_fingerprint_are_reused(store, user_tasks):
    run_id = store.claim("wine", "FIX(k0=0.05)", 0, 4)  # as stored before schema v6, or by the Lightning callback
    store.finish(run_id, RunResult("wine", "FIX(k0=0.05)", 0, "ok", {"top1": 50.0}, {}, {}))
    done = bench(store, f"{user_tasks}:wine", ["FIX(k0=0.05)"], seeds=[0], steps=4, executor=Inline())
    assert (done.trained, done.finished_before) == (0, 1) and store.runs()[0].fingerprint is None


def test_rerun_failed_trains_every_stored_failure_once(store, user_tasks, tmp_path):
    (tmp_path / "raise").touch()
    task = f"{user_tasks}:wine"
    failed = bench(store, task, ["FIX(k0=0.05)"], seeds=[0], steps=4, executor=Inline())
    assert failed.failed == 1 and store.runs()[0].record["error_kind"] == "run"
    (tmp_path / "raise").unlink()
    assert bench(store, task, ["FIX(k0=0.05)"], seeds=[0], steps=4, executor=Inline()).trained == 0  # final
    (tmp_path / "raise").touch()
    again = bench(store, task, ["FIX(k0=0.05)"], seeds=[0], steps=4, executor=Inline(), rerun_failed=True)
    assert (again.failed, again.trained) == (1, 0)  # tried once more and failed again: once, not in a loop
    (tmp_path / "raise").unlink()
    fixed = bench(store, task, ["FIX(k0=0.05)"], seeds=[0], steps=4, executor=Inline(), rerun_failed=True)
    assert fixed.trained == 1 and [r.status for r in store.runs()] == ["ok"]
