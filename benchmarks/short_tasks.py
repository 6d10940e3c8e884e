"""Built-in tasks at a shorter budget, for benchmarks that train hundreds of runs on 2 CPU cores.

``mnist-lenet-1k``: ``mnist-lenet`` (the LRBench paper's MNIST/LeNet) trained 1,000 iterations instead of
10,000 (1.8 epochs of its 55,000 training examples), evaluated every 500. Built in any process from
``short_tasks:mnist_lenet_1k`` (``benchmarks/`` on the path).
"""

from __future__ import annotations

from lrpilot.tasks import get_task
from lrpilot.tasks.base import Task


def mnist_lenet_1k() -> Task:
    task = get_task("mnist-lenet")
    task.name, task.epochs = "mnist-lenet-1k", 1000 / task.iters_per_epoch
    return task


SHORT = {"mnist-lenet-1k": "short_tasks:mnist_lenet_1k"}


def task_ref(name: str) -> str:
    """The reference that builds ``name``: its ``module:function`` for a short task, else the name itself."""
    return SHORT.get(name, name)
