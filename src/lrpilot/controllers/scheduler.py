"""Layer 2's torch adapter: a fixed policy driving any optimizer, per iteration.

Usage::

    sched = lrpilot.PolicyScheduler(optimizer, "COS(k0=0.1, k1=0.001, l=5000)")
    for batch in loader:
        loss = ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
        sched.step()

Resuming: build the model, the optimizer and the scheduler as for a new run, then
``optimizer.load_state_dict(...)`` and ``sched.load_state_dict(...)`` (either order: the
scheduler writes ``policy(step)`` into the param groups when it loads, and building it touches
nothing but the groups' ``lr`` and ``initial_lr``). ``PolicyScheduler(opt, p, last_epoch=N)``
resumes as torch's schedulers do: the groups must hold ``initial_lr`` (a loaded optimizer state
has it) and the scheduler starts at step ``N + 1``.

Differences from torch's schedulers, by design (each tested in
``tests/controllers/test_scheduler_contract.py``):

- ``step(epoch)`` raises (the scheduler counts iterations itself); a ``step()`` with no
  ``optimizer.step()`` before it does not advance and does not warn (a GradScaler-skipped step).
- The LR is always ``scale * policy(t)``, never derived from the current LR: it is not
  chainable; another scheduler's change to the same groups is overwritten at the next step.
- ``state_dict()`` is plain data (policy texts, scales, step), loadable with
  ``torch.load(weights_only=True)``, not torch's ``__dict__`` copy.
- A param group added after construction follows the one shared policy with
  ``scale = its lr / policy(0)`` (1 if ``policy(0) == 0``); with one policy per group, the next
  ``step()`` raises an error that names the fix.
- A missing ``initial_lr`` with ``last_epoch >= 0`` raises ``LRPilotError`` (a ValueError), not KeyError.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Sequence

import torch
from torch.optim.lr_scheduler import LRScheduler

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy, policy as to_policy


def set_lr(optimizer: torch.optim.Optimizer, lrs: float | Sequence[float]) -> None:
    """Write one LR, or one per param group, into the optimizer (tensor LRs are filled in place, untraced)."""
    if not isinstance(lrs, (list, tuple)):
        lrs = [lrs] * len(optimizer.param_groups)
    for group, lr in zip(optimizer.param_groups, lrs):
        if isinstance(group["lr"], torch.Tensor):
            _fill(group["lr"], lr)
        else:
            group["lr"] = lr


@torch.compiler.disable
def _fill(lr: torch.Tensor, value: float) -> None:
    """Fill a tensor LR, never traced by ``torch.compile``: a Python float filled into a tensor would be a
    constant of the graph, and a new LR every step would recompile every step."""
    lr.fill_(value)


def _wrap_optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """Mark ``optimizer.step`` as torch's LRScheduler does (a copied or unpickled optimizer lost it)."""
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return
    opt_ref = weakref.ref(optimizer)
    func = optimizer.step.__func__

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        opt = opt_ref()
        opt._opt_called = True
        return func.__get__(opt, opt.__class__)(*args, **kwargs)

    wrapper._wrapped_by_lr_sched = True
    optimizer.step = wrapper


def _mark_stepped(sched_ref: "weakref.ref[PolicyScheduler]", opt, args, kwargs) -> None:
    s = sched_ref()
    if s is not None:
        s._optimizer_stepped = True


def _like(group_lr: Any, value: float) -> Any:
    """``value`` as the type of a group's ``lr``: a new tensor for a tensor LR, else a float."""
    if isinstance(group_lr, torch.Tensor):
        return group_lr.detach().clone().fill_(value)
    return value


class PolicyScheduler(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` that writes ``scale_g * policy_g(t)`` into each param group.

    ``policy`` is a policy, its text, or a list with one per param group; ``group_scales``
    multiplies the LR per group (for one policy scaled per group). ``t`` counts the calls of
    :meth:`step` that followed at least one ``optimizer.step()`` since the previous call: two
    optimizer steps between two scheduler steps advance ``t`` by one, and a call with no optimizer
    step before it (one that ``torch.amp.GradScaler`` skipped for inf/NaN gradients) does not
    advance it. The LR is always ``policy(t)``, never derived from the optimizer's current LR.

    ``last_epoch=-1`` starts at ``t = 0``; ``last_epoch=N`` resumes at ``t = N + 1`` and needs
    ``initial_lr`` in every group, as torch's schedulers do. A group added with
    ``optimizer.add_param_group`` is scheduled from the next :meth:`step` with the shared policy
    and ``scale = its lr / policy(0)`` (1 if ``policy(0) == 0``); with one policy per group the
    next :meth:`step` raises. ``get_last_lr()`` has the types of the groups' ``lr`` (tensor copies
    for tensor LRs). Schedulers pickle and deepcopy together with their optimizer.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, policy: Any, group_scales: Sequence[float] | None = None,
                 last_epoch: int = -1):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        n = len(optimizer.param_groups)
        self._shared = not isinstance(policy, (list, tuple))
        items = [policy] * n if self._shared else list(policy)
        if len(items) != n:
            raise LRPilotError(f"PolicyScheduler: {len(items)} policies for {n} param groups; give one per group or one for all")
        scales = [1.0] * n if group_scales is None else [float(s) for s in group_scales]
        if len(scales) != n:
            raise LRPilotError(f"PolicyScheduler: group_scales has {len(scales)} entries for {n} param groups")
        last_epoch = int(last_epoch)
        if last_epoch < -1:
            raise LRPilotError(f"PolicyScheduler: last_epoch={last_epoch}; use -1 for a new run or N >= 0 to resume at step N + 1")
        if last_epoch >= 0:
            missing = [i for i, g in enumerate(optimizer.param_groups) if "initial_lr" not in g]
            if missing:
                raise LRPilotError(f"PolicyScheduler: last_epoch={last_epoch} but param group {missing[0]} has no "
                                   "'initial_lr'; load the optimizer's state first, or use last_epoch=-1 and load_state_dict()")
        self.policies: list[Policy] = [to_policy(p) for p in items]
        self.scales = scales
        self._optimizer_stepped = False
        if last_epoch == -1:
            for group, p, s in zip(optimizer.param_groups, self.policies, scales):
                group["initial_lr"] = _like(group["lr"], s * p(0))
        self._register(optimizer)
        super().__init__(optimizer, last_epoch)

    def _register(self, optimizer: torch.optim.Optimizer) -> None:
        self._hook = optimizer.register_step_post_hook(functools.partial(_mark_stepped, weakref.ref(self)))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_hook", None)  # it lives in the optimizer, which does not pickle its hooks
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        optimizer = self.__dict__.get("optimizer")
        if optimizer is not None:
            self._register(optimizer)
            _wrap_optimizer_step(optimizer)

    @property
    def t(self) -> int:
        """The policy's current step (see the class docstring for what advances it)."""
        return self.last_epoch

    def _initial_step(self) -> None:
        self._step_count = 1
        self.last_epoch += 1
        self._write()

    def get_lr(self) -> list[float]:
        """The LR of each param group at the current step."""
        return [s * p(self.last_epoch) for p, s in zip(self.policies, self.scales)]

    def _adopt_new_groups(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) == len(self.policies):
            return
        if not self._shared:
            raise LRPilotError(f"PolicyScheduler: the optimizer has {len(groups)} param groups but the scheduler "
                               f"{len(self.policies)} policies (a group was added); build a new PolicyScheduler with "
                               "one policy per group, or one policy for all")
        p = self.policies[0]
        p0 = p(0)
        for group in groups[len(self.policies):]:
            lr = group["lr"]
            scale = float(lr) / p0 if p0 != 0 else 1.0
            group["initial_lr"] = _like(lr, scale * p0)
            self.policies.append(p)
            self.scales.append(scale)
            self.base_lrs.append(_initial(group))

    def step(self, epoch: None = None) -> None:
        """Advance one iteration if the optimizer stepped since the last call, and write the LRs.

        With tensor LRs the step is never traced by ``torch.compile`` (a changing LR then compiles once);
        float LRs skip that guard's cost, a few microseconds a step."""
        if isinstance(self.optimizer.param_groups[0]["lr"], torch.Tensor):
            self._untraced_step(epoch)
        else:
            self._step(epoch)

    @torch.compiler.disable
    def _untraced_step(self, epoch: None) -> None:
        self._step(epoch)

    def _step(self, epoch: None) -> None:
        if epoch is not None:
            raise LRPilotError("PolicyScheduler.step() takes no epoch: it counts iterations itself; "
                               "restore a position with load_state_dict()")
        self._adopt_new_groups()
        self._step_count += 1
        if self._optimizer_stepped:
            self._optimizer_stepped = False
            self.last_epoch += 1
        self._write()

    def _write(self) -> None:
        set_lr(self.optimizer, self.get_lr())
        self._last_lr = [g["lr"].detach().clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
                         for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain data (loadable with ``torch.load(weights_only=True)``): step, policy texts, scales."""
        return {"step": self.last_epoch, "policies": [str(p) for p in self.policies], "scales": list(self.scales),
                "optimizer_stepped": self._optimizer_stepped, "step_count": self._step_count, "shared": self._shared}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and the policies of a saved state, and write the LRs they give."""
        policies = [to_policy(p) for p in state_dict["policies"]]
        scales = [float(s) for s in state_dict["scales"]]
        shared = bool(state_dict.get("shared", False))
        n = len(self.optimizer.param_groups)
        if len(policies) > n or (len(policies) < n and not shared):
            raise LRPilotError(f"scheduler state has {len(policies)} policies for {n} param groups")
        self.policies, self.scales, self._shared = policies, scales, shared
        groups = self.optimizer.param_groups[:len(policies)]
        for group, p, s in zip(groups, policies, scales):  # as a scheduler built with these policies sets them
            group["initial_lr"] = _like(group["lr"], s * p(0))
        self.base_lrs = [_initial(group) for group in groups]
        self.last_epoch = int(state_dict["step"])
        self._step_count = int(state_dict.get("step_count", self.last_epoch + 1))
        self._optimizer_stepped = bool(state_dict["optimizer_stepped"])
        self._adopt_new_groups()
        self._write()


def _initial(group: dict[str, Any]) -> Any:
    """A group's ``initial_lr`` as ``base_lrs`` holds it (a copy of a tensor)."""
    lr = group["initial_lr"]
    return lr.clone() if isinstance(lr, torch.Tensor) else lr
