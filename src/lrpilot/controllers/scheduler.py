"""Layer 2's torch adapter: a fixed policy driving any optimizer, per iteration.

Usage::

    sched = lrpilot.PolicyScheduler(optimizer, "COS(k0=0.1, k1=0.001, l=5000)")
    for batch in loader:
        loss = ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
        sched.step()

Resuming: build the model, the optimizer and the scheduler as for a new run, then
``optimizer.load_state_dict(...)`` and ``sched.load_state_dict(...)`` (either order: the
scheduler writes ``policy(step)`` into the param groups when it loads, and building it touches
nothing but the groups' ``lr`` and ``initial_lr``).
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import torch
from torch.optim.lr_scheduler import LRScheduler

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy, policy as to_policy


def set_lr(optimizer: torch.optim.Optimizer, lrs: float | Sequence[float]) -> None:
    """Write one LR, or one per param group, into the optimizer (tensor LRs are filled in place)."""
    if not isinstance(lrs, (list, tuple)):
        lrs = [lrs] * len(optimizer.param_groups)
    for group, lr in zip(optimizer.param_groups, lrs):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


class PolicyScheduler(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` that writes ``scale_g * policy_g(t)`` into each param group.

    ``policy`` is a policy, its text, or a list with one per param group; ``group_scales``
    multiplies the LR per group (for one policy scaled per group). ``t`` counts the optimizer
    steps actually taken: :meth:`step` advances it only if ``optimizer.step()`` ran since the
    last call, so a step that ``torch.amp.GradScaler`` skips (inf/NaN gradients) does not advance
    the policy. The LR is always ``policy(t)``, never derived from the optimizer's current LR.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, policy: Any, group_scales: Sequence[float] | None = None):
        n = len(optimizer.param_groups)
        items = list(policy) if isinstance(policy, (list, tuple)) else [policy] * n
        if len(items) != n:
            raise LRPilotError(f"PolicyScheduler: {len(items)} policies for {n} param groups; give one per group or one for all")
        scales = [1.0] * n if group_scales is None else [float(s) for s in group_scales]
        if len(scales) != n:
            raise LRPilotError(f"PolicyScheduler: group_scales has {len(scales)} entries for {n} param groups")
        self.policies: list[Policy] = [to_policy(p) for p in items]
        self.scales = scales
        self._optimizer_stepped = False
        ref = weakref.ref(self)

        def mark_stepped(opt, args, kwargs):
            s = ref()
            if s is not None:
                s._optimizer_stepped = True

        self._hook = optimizer.register_step_post_hook(mark_stepped)
        super().__init__(optimizer)

    @property
    def t(self) -> int:
        """The policy's current step (the number of optimizer steps taken)."""
        return self.last_epoch

    def _initial_step(self) -> None:
        self._step_count = 1
        self.last_epoch = 0
        self._write()

    def get_lr(self) -> list[float]:
        """The LR of each param group at the current step."""
        return [s * p(self.last_epoch) for p, s in zip(self.policies, self.scales)]

    def step(self, epoch: None = None) -> None:
        """Advance one iteration if the optimizer stepped since the last call, and write the LRs."""
        if epoch is not None:
            raise LRPilotError("PolicyScheduler.step() takes no epoch: it counts iterations itself; "
                               "restore a position with load_state_dict()")
        if self._optimizer_stepped:
            self._optimizer_stepped = False
            self.last_epoch += 1
            self._step_count += 1
            self._write()

    def _write(self) -> None:
        lrs = self.get_lr()
        set_lr(self.optimizer, lrs)
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        """Plain data (loadable with ``torch.load(weights_only=True)``): step, policy texts, scales."""
        return {"step": self.last_epoch, "policies": [str(p) for p in self.policies], "scales": list(self.scales),
                "optimizer_stepped": self._optimizer_stepped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and the policies of a saved state, and write the LRs they give."""
        policies = state_dict["policies"]
        if len(policies) != len(self.optimizer.param_groups):
            raise LRPilotError(f"scheduler state has {len(policies)} policies for {len(self.optimizer.param_groups)} param groups")
        self.policies = [to_policy(p) for p in policies]
        self.scales = [float(s) for s in state_dict["scales"]]
        self.last_epoch = int(state_dict["step"])
        self._optimizer_stepped = bool(state_dict["optimizer_stepped"])
        self._write()
