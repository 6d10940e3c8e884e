"""A task by reference: its name (built in, or ``package.module:function``) and data folder, or a task object.

A :class:`TaskRef` travels to worker processes, Ray workers and ``torch.distributed`` ranks, each of which
builds the task from it once. A reference to a task *object* (a :class:`lrpilot.Problem`, a
``ClassificationTask`` made in the caller's code) carries the object: it is pickled once, when the reference is
first sent, and unpickled once per worker process; an object that does not pickle is one :class:`LRPilotError`
naming the two fixes.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task


@dataclass(frozen=True, eq=False)
class TaskRef:
    """The task called ``name`` with its data in ``data_dir`` (None: the task's default or none), or, with
    ``task``, that task object itself (``name`` is then its name). Equal references build the same task."""

    name: str
    data_dir: str | None = None
    task: Any = None  # a Task object, carried as it is (pickled when the reference is sent, see the module)

    @classmethod
    def of(cls, task: "str | TaskRef | Task", data_dir: str | None = None) -> "TaskRef":
        """``task`` as a reference: a name with ``data_dir``, a TaskRef as it is, or a reference to a Task object."""
        if isinstance(task, (str, TaskRef)):
            return task if isinstance(task, TaskRef) else cls(task, data_dir)
        from lrpilot.tasks import check_task
        from lrpilot.tasks.base import Task

        if not isinstance(task, Task):
            raise LRPilotError(f"task {type(task).__name__} is neither a task name, a TaskRef nor a lrpilot Task "
                               "(e.g. lrpilot.Problem or a ClassificationTask)")
        check_task(task, task.name)
        return cls(task.name, None, task)

    def build(self) -> Task:
        """The task, built once per process: later calls with an equal reference return the same object."""
        if isinstance(self.task, _Unloadable):
            raise LRPilotError(self.task.message)
        return self.task if self.task is not None else _build(self)

    def _key(self) -> tuple:
        """What equality and hashing compare: the name and data folder, or the task object's identity."""
        return (self.name, self.data_dir) if self.task is None else ("object", id(self.task))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskRef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple:
        if self.task is None:
            return TaskRef, (self.name, self.data_dir)
        if "_pickled" not in self.__dict__:  # pickled once per reference, however many jobs carry it
            payload = _dumps(self.task)
            object.__setattr__(self, "_pickled", (hashlib.sha256(payload).hexdigest(), payload))
        return _loaded, (self.name, *self.__dict__["_pickled"])


#: digest of a task object's pickle -> the object unpickled in this process (once per worker process)
_LOADED: dict[str, Any] = {}


@dataclass(frozen=True)
class _Unloadable:
    """A task object that did not unpickle in this process: its reference's ``build`` raises ``message``."""

    message: str


def _loaded(name: str, digest: str, payload: bytes) -> TaskRef:
    """A reference to a task object sent pickled, unpickled once per process (equal payloads: the same object).
    One that does not unpickle here (its classes are not importable in this process) fails when it is built, so
    that the job, not the worker, fails with the reason."""
    if digest not in _LOADED:
        try:
            # the payload is never read from a file: this process's own parent (the bench, range test or tune
            # that holds the user's task object) pickled it and sent it inside the job, over the same executor
            # channel that already carries the job itself as a pickle; a task object (model factory, loss, data
            # loaders) is arbitrary Python, which weights_only loading cannot hold
            _LOADED[digest] = pickle.loads(payload)
        except Exception as e:  # noqa: BLE001  (the user's classes: ImportError, AttributeError, ...)
            _LOADED[digest] = _Unloadable(
                f"task {name!r} could not be unpickled in this worker process ({type(e).__name__}: "
                f"{clip(e, 200, quote=False)}): its model, loss and data classes and functions must be "
                "importable there (defined in a module, or in a script under if __name__ == \"__main__\":), "
                "or run with executor=\"inprocess\"")
    return TaskRef(name, None, _LOADED[digest])


def _dumps(task: Any) -> bytes:
    """``task`` pickled, or one LRPilotError saying why it cannot travel to worker processes and the two fixes."""
    try:
        return pickle.dumps(task)
    except Exception as e:  # noqa: BLE001  (pickle raises PicklingError, AttributeError, TypeError, ...)
        reason = clip(e, 200, quote=False)
        raise LRPilotError(
            f"task {task.name!r} cannot be sent to worker processes: it does not pickle ({type(e).__name__}: "
            f"{reason}); a lambda or a locally defined function (model factory, loss, collate_fn) or an "
            "unpicklable dataset is the usual cause. Either define the task in an importable module's function "
            "and pass \"module:function\" as the task (each worker builds it), or run in this process with "
            "executor=\"inprocess\" (lrpilot.execution.executors.InProcess())") from e


@functools.cache
def _build(ref: TaskRef) -> Task:
    from lrpilot.tasks import get_task  # here: the registry's module imports this one

    return get_task(ref.name, data_dir=ref.data_dir)
