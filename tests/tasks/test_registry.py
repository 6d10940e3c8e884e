"""The task registry: built-in names, user tasks as package.module:function, and the errors."""

import textwrap

import pytest

from lrpilot.errors import LRPilotError
from lrpilot.tasks import TASKS, ClassificationTask, Task, get_task, list_tasks

USER_MODULE = '''
import torch
from torch import nn
from lrpilot.tasks import ClassificationTask

def _task(name, seed):
    g = torch.Generator().manual_seed(seed)
    split = (torch.randn(8, 3, generator=g), torch.arange(8) % 2)
    return ClassificationTask(name, split, split, lambda: nn.Linear(3, 2), 2, batch_size=4)

def with_both(data_dir=None, seed=0):
    task = _task("user-both", seed)
    task.meta["got"] = (data_dir, seed)
    return task

def with_seed(seed):
    task = _task("user-seed", seed)
    task.meta["got"] = seed
    return task

def with_kwargs(**kwargs):
    task = _task("user-kwargs", 0)
    task.meta["got"] = kwargs
    return task

def plain():
    return _task("user-plain", 0)

def not_a_task():
    return {"name": "oops"}

NOT_CALLABLE = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module ``my_tasks`` on sys.path holding task functions."""
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_tasks"


def test_list_tasks_names_every_builtin():
    names = [name for name, _ in list_tasks()]
    assert names == list(TASKS)
    assert {"digits-lenet", "digits-mlp", "mnist1d-mlp", "mnist1d-cnn", "mnist-lenet", "cifar10-cnn3",
            "cifar10-resnet20", "cifar10-resnet32", "nqm"} <= set(names)
    assert all(isinstance(d, str) and d and "\n" not in d for _, d in list_tasks())


def test_unknown_task_lists_known_names_and_user_form():
    with pytest.raises(LRPilotError, match=r"unknown task 'digits-cnn'; known tasks: digits-lenet, .*cifar10-resnet32.*"
                                           r"package\.module:function"):
        get_task("digits-cnn")


def test_user_task_gets_data_dir_and_seed(user_module):
    task = get_task(f"{user_module}:with_both", data_dir="/some/where", seed=7)
    assert isinstance(task, ClassificationTask) and task.meta["got"] == ("/some/where", 7)


def test_user_task_gets_only_what_it_accepts(user_module):
    assert get_task(f"{user_module}:with_seed", data_dir="/x", seed=3).meta["got"] == 3
    assert get_task(f"{user_module}:with_kwargs", seed=2).meta["got"] == {"data_dir": None, "seed": 2}
    assert isinstance(get_task(f"{user_module}:plain", data_dir="/x", seed=1), Task)


def test_user_task_must_return_a_task(user_module):
    with pytest.raises(LRPilotError, match=r"task 'my_tasks:not_a_task' returned dict .*expected a lrpilot.tasks.Task"):
        get_task(f"{user_module}:not_a_task")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:make", r"cannot import module 'no_such_module_xyz'"),
        ("my_tasks:missing", r"module 'my_tasks' has no function 'missing'"),
        ("my_tasks:NOT_CALLABLE", r"module 'my_tasks' has no function 'NOT_CALLABLE' \(it is a int\)"),
        (":make", "expected the form package.module:function"),
        ("my_tasks:", "expected the form package.module:function"),
        ("a:b:c", "expected the form package.module:function"),
    ],
)
def test_bad_user_task_names(user_module, name, message):
    with pytest.raises(LRPilotError, match=message):
        get_task(name)


def test_lazy_entry_whose_module_is_missing_does_not_break_others(monkeypatch):
    monkeypatch.setitem(TASKS, "ghost", ("lrpilot.tasks.no_such_module:make", "a task whose module is gone"))
    with pytest.raises(LRPilotError, match=r"task 'ghost': cannot import module 'lrpilot.tasks.no_such_module'"):
        get_task("ghost")
    assert get_task("digits-mlp").name == "digits-mlp"


def test_nqm_resolves_lazily():
    pytest.importorskip("lrpilot.tasks.nqm")
    assert isinstance(get_task("nqm"), Task)
