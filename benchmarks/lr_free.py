"""Built-in tasks with their optimizer replaced by a schedule-free or learning-rate-free one, for
``decision_quality.py`` (benchmark only: ``pip install -c constraints.txt schedulefree prodigyopt``).

- ``schedulefree``: Defazio et al.'s Schedule-Free ("The Road Less Scheduled", 2024; the ``schedulefree``
  package): ``SGDScheduleFree`` (momentum 0.9) for a task trained with SGD, ``AdamWScheduleFree`` (the task's
  betas) for one trained with AdamW, the task's weight decay, ``warmup_steps`` 5 % of the run (the package
  recommends a warmup); evaluated at the averaged point x (``optimizer.eval()``), trained at y.
- ``prodigy``: Mishchenko and Defazio's Prodigy (2024; the ``prodigyopt`` package) with the task's weight decay,
  its other settings the package's defaults; the LR is a multiplier of its own estimate (``lr=1`` recommended).

As tasks of their own, named ``<task>+<optimizer>`` and built in any process from
``lr_free:<optimizer>__<task with _ for ->`` (e.g. ``lr_free:schedulefree__digits_lenet``), so that bench's
workers build them; the splits are the base task's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from lrpilot.engine import budget
from lrpilot.tasks import get_task
from short_tasks import task_ref
from lrpilot.tasks.base import ClassificationTask, Evaluation

OPTIMIZERS = ("schedulefree", "prodigy")
WARMUP_SHARE = 0.05


@dataclass
class SwappedOptimizer(ClassificationTask):
    """A classification task trained with ``optimizer`` (one of :data:`OPTIMIZERS`); ``betas`` are the base task's
    Adam betas, None for a task trained with SGD; ``warmup_steps`` schedule-free's warmup."""

    optimizer: str = "schedulefree"
    betas: tuple[float, float] | None = None
    warmup_steps: int = 0

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        if self.optimizer == "prodigy":
            from prodigyopt import Prodigy

            return Prodigy(params, lr=lr, weight_decay=self.weight_decay)
        import schedulefree

        if self.betas is None:
            opt = schedulefree.SGDScheduleFree(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                               warmup_steps=self.warmup_steps)
        else:
            opt = schedulefree.AdamWScheduleFree(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay,
                                                 warmup_steps=self.warmup_steps)
        opt.train()
        self._training = opt  # evaluate() reads the model at schedule-free's averaged point
        return opt

    def evaluate(self, model: torch.nn.Module, split: str = "test") -> Evaluation:
        opt = getattr(self, "_training", None)
        if opt is None:
            return super().evaluate(model, split)
        opt.eval()
        try:
            return super().evaluate(model, split)
        finally:
            opt.train()


def swapped(name: str, optimizer: str) -> SwappedOptimizer:
    """Built-in (or :mod:`short_tasks`) task ``name`` trained with ``optimizer``, named ``name+optimizer``."""
    base = get_task(task_ref(name))
    shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(ClassificationTask) if f.init}
    return SwappedOptimizer(**{**shared, "name": f"{name}+{optimizer}"}, optimizer=optimizer,
                            betas=getattr(base, "betas", None),
                            warmup_steps=round(WARMUP_SHARE * budget(base, None, None)))


def reference(name: str, optimizer: str) -> str:
    """The ``module:function`` text that builds :func:`swapped` in a worker."""
    return f"lr_free:{optimizer}__{name.replace('-', '_')}"


def __getattr__(attr: str) -> Any:
    """``<optimizer>__<task>``: a factory of that swapped task (see the module)."""
    optimizer, _, task = attr.partition("__")
    if optimizer not in OPTIMIZERS or not task:
        raise AttributeError(f"module 'lr_free' has no attribute {attr!r}")
    return lambda: swapped(task.replace("_", "-"), optimizer)
