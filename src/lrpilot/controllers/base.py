"""Layer 2: controllers, online rules that watch training and set the LR.

A controller sees training only through events from the engine (or from a user's own loop):
:meth:`Controller.start` once, :meth:`Controller.after_step` after every optimizer step,
:meth:`Controller.after_epoch` at every epoch end; and a :class:`Context` that gives the
model, the optimizer and, for controllers that probe, the task's loss and batches.

Torch appears here only in type hints, and a controller imports its torch machinery when it
starts: building one from text (``make_controller``), and listing the registry, need no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy
from lrpilot.policy.base import build
from lrpilot.policy.text import parse

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lrpilot.controllers.scheduler import PolicyScheduler


@dataclass
class Context:
    """What a controller may look at: the model, its optimizer, the task and the budget.

    ``generator`` is the controller's own random stream (e.g. to pick a probe batch), saved
    with the checkpoint, so that controllers never disturb the order of the training data.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    task: Any
    total_steps: int
    iters_per_epoch: int
    generator: torch.Generator


class Controller:
    """Sets the LR of the optimizer's param groups as training goes."""

    def start(self, ctx: Context) -> None:
        """Attach to a run: write the first LR into the optimizer."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimizer step."""

    def after_epoch(self, epoch: int) -> None:
        """Called at the end of each epoch (``epoch`` counts from 1)."""

    def after_check(self, step: int, loss: float) -> bool:
        """Called every few iterations (before the last) with the running mean training loss: True when the
        controller put back an earlier state of the model and optimizer (:mod:`lrpilot.controllers.guard`), so
        that the losses since are forgotten."""
        return False

    @property
    def n_param(self) -> int:
        """LRBench's #Param of this controller's configuration."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Plain data for the run's checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`start`)."""

    def record(self) -> dict[str, Any]:
        """What the run should keep besides the curves; JSON-able. An adaptive controller's holds its LR
        trajectory as ``"trajectory": [[step, lr], ...]`` (from each step on, the LR it set), which
        :mod:`lrpilot.distill` reads."""
        return {}


class ScheduleController(Controller):
    """A fixed policy, applied per iteration by :class:`lrpilot.PolicyScheduler`."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.scheduler: PolicyScheduler | None = None

    def __str__(self) -> str:
        return str(self.policy)

    @property
    def n_param(self) -> int:
        return self.policy.n_param

    def start(self, ctx: Context) -> None:
        from lrpilot.controllers.scheduler import PolicyScheduler

        self.scheduler = PolicyScheduler(ctx.optimizer, self.policy)
        self.after_step = self.scheduler.step  # the hot path: one bound call per iteration

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


def make_controller(spec: str | Policy | Controller) -> Controller:
    """A fresh controller from policy or controller text: ``"COS(...)"``, ``"autodrop(k0=0.1)"``."""
    if isinstance(spec, Controller):
        return spec
    obj = spec if isinstance(spec, Policy) else build(parse(spec))
    if not isinstance(obj, (Policy, Controller)):
        raise LRPilotError(f"{spec!r} is a search that branches training, not a controller; run it with "
                           "`lrpilot train --policy` or lrpilot.search.run.run_search")
    return ScheduleController(obj) if isinstance(obj, Policy) else obj
