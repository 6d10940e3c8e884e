"""The divergence guard of the adaptive controllers: when the training loss leaves its start, go back and lower the LR.

The factor scheduler and AutoDrop promise robustness to a bad initial LR, but from 10 times a good one a run dies
within its first tens of iterations, before the first scoring point or saturation test can act. What it shows
first is its training loss rising above where it started: FIX at 10x the range test's LR, the engine's running
mean checked every 10 iterations, went above 1.1 times its first value within 20-60 iterations in 6 of the 9 runs on
digits-lenet, mnist1d-cnn and mnist-lenet (1.18-28 times, or nan), while no run at 1x or 1/10 of it went above
1.012 times (3 seeds each; mnist1d-transformer at 1x: 0.96). Of the other 3, one (mnist-lenet) trained on and two
(mnist1d-cnn) ended at chance level with no rise above 1.03 times: a network that dies quietly is not told apart
from a slow start by its loss.

:class:`DivergenceGuard` keeps a copy of the model's and the optimizer's state, renewed at most every ``every``
iterations while the loss is within ``rise`` times its first value; when a loss is above that or not finite,
the controller puts the copy back (:meth:`DivergenceGuard.restore`) and multiplies its LR by :data:`BACKOFF`.
The copy costs one more model and optimizer state in memory (on their device). Losses at or below 0 at the start
(not a cross-entropy) leave the guard off, as they leave the engine's divergence check.

In your own loop, give it the training loss every few iterations::

    guard = DivergenceGuard(model, optimizer, every=50)
    ...
    if guard.check(step, loss.item()):
        guard.restore(step, loss.item())
        lr *= BACKOFF  # then write it into the optimizer
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from lrpilot.policy.base import check_number

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The default rise: a loss above this many times the first one trips the guard.
RISE = 1.1
#: The LR's factor after a restore: from 10x a good LR, one restore comes back to it.
BACKOFF = 0.1


def _rise(owner: str, key: str, value: Any, words: str = "") -> float:
    return check_number(owner, key, value, lambda x: x > 1, "a number > 1 (the rise of the training loss over its "
                        "first value that restores an earlier state)" + words)


def rise_or_off(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float | str:
    """The guard's setting: a rise > 1 (times the first loss), or ``off``."""
    return value if value == "off" else _rise(owner, key, value, " or off")


class DivergenceGuard:
    """Keeps the model's and optimizer's state while the training loss is within ``rise`` times its first value
    (at most every ``every`` iterations), and puts it back on request. :attr:`restores` lists each restore's
    iteration, loss and the iteration it went back to."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, rise: float = RISE, every: int = 1):
        self.model, self.optimizer, self.every = model, optimizer, every
        self.rise = _rise("DivergenceGuard", "rise", rise)
        self.first: float | None = None
        self.restores: list[dict[str, Any]] = []
        self._keep(0)

    def check(self, step: int, loss: float) -> bool:
        """Whether ``loss`` at iteration ``step`` has left its start (above ``rise`` times the first loss, or not
        finite); if not, the state is kept when ``every`` iterations have passed since the last copy."""
        if self.first is None and math.isfinite(loss):
            self.first = loss
        if self.first is not None and self.first <= 0:
            return False
        if math.isfinite(loss) and loss <= self.rise * self.first:
            if step - self.kept_at >= self.every:
                self._keep(step)
            return False
        return True

    def restore(self, step: int, loss: float) -> dict[str, Any]:
        """Put back the state kept last (the copy stays, for another restore), the optimizer's LRs included;
        returns the restore's entry in :attr:`restores`, for the caller to add the LR it goes on with."""
        self.model.load_state_dict(self._model)
        self.optimizer.load_state_dict(copy.deepcopy(self._optimizer))  # loading may share the copy's tensors
        self.restores.append({"iteration": step, "loss": loss, "back_to": self.kept_at})
        return self.restores[-1]

    def _keep(self, step: int) -> None:
        self._model = copy.deepcopy(self.model.state_dict())
        self._optimizer = copy.deepcopy(self.optimizer.state_dict())
        self.kept_at = step

    def state_dict(self) -> dict[str, Any]:
        """Plain data and tensors (``torch.load(weights_only=True)``): the kept state included."""
        return {"first": self.first, "kept_at": self.kept_at, "model": self._model, "optimizer": self._optimizer,
                "restores": [dict(r) for r in self.restores]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first, self.kept_at = state["first"], int(state["kept_at"])
        self._model, self._optimizer = state["model"], state["optimizer"]
        self.restores = [dict(r) for r in state["restores"]]
