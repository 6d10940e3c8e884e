"""A task by reference: its name (built in, or ``package.module:function``) and data folder.

A :class:`TaskRef` is plain data, so it travels to worker processes, Ray workers and
``torch.distributed`` ranks, each of which builds the task from it once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task


@dataclass(frozen=True)
class TaskRef:
    """The task called ``name`` with its data in ``data_dir`` (None: the task's default or none)."""

    name: str
    data_dir: str | None = None

    @classmethod
    def of(cls, task: "str | TaskRef", data_dir: str | None = None) -> "TaskRef":
        """``task`` as a reference: a name with ``data_dir``, or a TaskRef as it is."""
        return task if isinstance(task, TaskRef) else cls(task, data_dir)

    def build(self) -> Task:
        """The task, built once per process: later calls with an equal reference return the same object."""
        return _build(self)


@functools.cache
def _build(ref: TaskRef) -> Task:
    from lrpilot.tasks import get_task  # here: the registry's module imports this one

    return get_task(ref.name, data_dir=ref.data_dir)
