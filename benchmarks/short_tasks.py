"""Built-in tasks at a shorter budget, for benchmarks that train hundreds of runs on 2 CPU cores.

``mnist-lenet-500``: ``mnist-lenet`` (the LRBench paper's MNIST/LeNet) trained 500 iterations instead of
10,000 (0.9 of an epoch of its 55,000 training examples), evaluated every 250. Built in any process from
``short_tasks:mnist_lenet_500`` (``benchmarks/`` on the path).
"""

from __future__ import annotations

from lrpilot.tasks import get_task
from lrpilot.tasks.base import Task


def mnist_lenet_500() -> Task:
    task = get_task("mnist-lenet")
    task.name, task.epochs, task.eval_every = "mnist-lenet-500", 500 / task.iters_per_epoch, 250
    return task


SHORT = {"mnist-lenet-500": "short_tasks:mnist_lenet_500"}


def task_ref(name: str) -> str:
    """The reference that builds ``name``: its ``module:function`` for a short task, else the name itself."""
    return SHORT.get(name, name)
