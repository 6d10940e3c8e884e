"""AutoDrop: drop the LR when the angular velocity of the parameters saturates (Algorithm 1 of
"AutoDrop: training deep learning models with automatic learning rate drop").

At the end of each period ``t`` (an epoch, or ``period`` iterations) the angular velocity is
``omega_t = angle(s_t, s_{t-1})`` in degrees with ``s_t = x_t - x_{t-1}`` (Definition 1, Equations
(1)-(2)), averaged over the last ``window`` periods. When ``|omega_t - omega_{t-1}| < theta`` the
drop is triggered: ``n_d`` more periods at the current LR accumulate ``z += k x``, then
``x <- 2z / ((n_d + 1) n_d)``, ``alpha <- max(alpha_min, rho alpha)`` and
``theta <- min(theta_max, theta / rho)``. Defaults are the paper's recommended settings:
``k_min`` (alpha_min) = 1e-4, ``theta0`` = 0.01 degrees, ``theta_max`` = 1 degree, ``nd`` = 20.

Readings lrpilot takes where the paper is ambiguous:

- Period. Epochs by default, as in Algorithm 1; ``period=p`` measures every ``p`` iterations. In
  the engine, a controller without its own ``period``/``window`` takes the task's ``av_period``/
  ``av_window``: the NQM then measures per iteration with a window of 20 (Section 3, Figure 3).
  ``nd`` counts periods; a fraction ``0 < nd < 1`` is that share of the run's periods (its
  epochs in epoch mode), rounded half up, at least 1.
- Check. The compared values are the means of the last ``window`` angles, so the first check
  needs ``window + 1`` angles: period ``t = window + 2``, i.e. Algorithm 1's ``t > 2`` for a
  window of 1. A zero change has no direction (nan, where the paper adds epsilon) and never
  triggers. No check while a drop is pending: Algorithm 1 as printed checks every period and a
  new trigger restarts the delay (``z, k <- 0``), so at saturation, where the check passes period
  after period, the drop would wait as long as the saturation lasts, the opposite of its intent.
- Accumulation. Algorithm 1 as printed accumulates ``k x`` from the trigger period itself and
  applies at ``k > n_d``: n_d + 1 terms with weights 1..n_d+1, whose sum (n_d+1)(n_d+2)/2 its
  normalisation 2/((n_d+1) n_d) does not match (the parameters would be scaled by (n_d+2)/n_d).
  Here the drop comes at the same period, the n_d-th after the trigger, but the trigger period's
  own end point is left out: ``x = sum_k k x_{t0+k} / (n_d (n_d+1)/2)`` over ``k = 1..n_d``, the
  parameters at the ends of the n_d periods after the trigger period ``t0``, a weighted mean.
- Only parameters are averaged: buffers (BatchNorm running statistics) keep their last values
  and the optimizer's state (momentum, Adam's moments) is kept. The next angle compares
  ``x_{t+1} - x_avg`` with the last change before the averaging (Algorithm 1's ``y <- x``).
- Every param group gets the one LR alpha; drops at ``alpha_min`` still average and raise theta.

The module imports no torch: the settings and the text form need none, and the torch pieces (the
angle tracker, the parameter vector, the LR writer) are imported when the controller attaches to a run.
"""

from __future__ import annotations

import collections
import functools
import math
from typing import TYPE_CHECKING, Any

from lrpilot.controllers.base import Context, Controller
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, check_number, half_up
from lrpilot.policy.params import Configured, Param, ParamTable, count, count_or_fraction, number

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn


def _below_k0(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    k0 = earlier["k0"]
    return check_number(owner, key, value, lambda x: 0 <= x < k0, f"a number >= 0 below k0={k0} (the lowest LR)")


def _from_theta0(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    theta0 = earlier["theta0"]
    return check_number(owner, key, value, lambda x: x >= theta0, f"a number of degrees >= theta0={theta0}")


class AutoDrop(Configured, Controller):
    """Algorithm 1 of the AutoDrop paper on top of any optimizer (SGD, momentum, Adam).

    In the engine: ``autodrop(k0=0.1, rho=0.2)``. In your own loop, give the optimizer and the
    model and call :meth:`step` once per period (epoch); with ``period=p``, call
    :meth:`after_step` after every optimizer step instead. ``nd`` is then a whole number of periods.

    >>> import torch
    >>> from lrpilot.controllers.autodrop import AutoDrop
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(256, 8)
    >>> y = x @ torch.randn(8, 1) + 0.3 * torch.randn(256, 1)
    >>> model = torch.nn.Linear(8, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    >>> drop = AutoDrop(opt, model, k0=0.05, rho=0.5, theta0=1, theta_max=8, nd=2)
    >>> for epoch in range(30):
    ...     for idx in torch.randperm(256).split(32):
    ...         opt.zero_grad()
    ...         torch.nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
    ...         opt.step()
    ...     lr = drop.step()  # one period per epoch
    >>> drop.record()["drops"]
    [{'epoch': 8, 'trigger': 6, 'lr': 0.025, 'theta': 2.0}, {'epoch': 15, 'trigger': 13, 'lr': 0.0125, 'theta': 4.0}]
    """

    #: Algorithm 1's settings in canonical order; #Param counts its six: alpha_0, alpha_min, theta_0,
    #: theta_max, rho and n_d.
    TABLE = ParamTable("autodrop", "autodrop(k0=0.1, rho=0.2)", 6, (
        Param("k0", number(lambda x: x > 0, "a finite number > 0 (the initial LR)")),
        Param("rho", number(lambda x: 0 < x < 1, "in (0, 1) (the LR drop factor)")),
        Param("k_min", _below_k0, 1e-4),
        Param("theta0", number(lambda x: x > 0, "a number of degrees > 0"), 0.01),
        Param("theta_max", _from_theta0, 1.0),
        Param("nd", count_or_fraction("periods of delay; a fraction: of the run's periods"), 20),
        Param("period", count("iterations per period"), None),
        Param("window", count("periods averaged"), None),
    ))

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, model: nn.Module | None = None,
                 **settings: Any):
        super().__init__(**settings)
        if optimizer is not None or model is not None:
            if optimizer is None or model is None:
                raise LRPilotError(f"{self.TABLE.owner}: give both the optimizer and the model (or neither, for the "
                                   "engine)")
            if isinstance(self.nd, float):
                raise LRPilotError(f"{self.TABLE.owner}: nd={self.nd} is a fraction of the run, which only the engine "
                                   "knows; in your own loop give nd as a whole number of periods")
            self._attach(optimizer, model, self.period, self.window or 1, self.nd)

    # --- attaching ----------------------------------------------------------------------------

    def start(self, ctx: Context) -> None:
        """Attach to the engine's run; ``period``/``window`` default to the task's ``av_period``/``av_window``."""
        period = self.period if self.period is not None else ctx.task.av_period
        window = self.window or ctx.task.av_window
        periods = ctx.total_steps / (period or ctx.iters_per_epoch)
        nd = self.nd if isinstance(self.nd, int) else max(1, half_up(self.nd * periods))
        self._attach(ctx.optimizer, ctx.model, period, window, nd)
        self._unit_iters = 1 if period else ctx.iters_per_epoch

    def _attach(self, optimizer: torch.optim.Optimizer, model: nn.Module, period: int | None, window: int,
                nd: int) -> None:
        from lrpilot.angles import AngleTracker, flat_params
        from lrpilot.controllers.scheduler import set_lr

        self.optimizer, self.model = optimizer, model
        self._flat = functools.partial(flat_params, model)  # the parameters as one vector
        self._set_lr = functools.partial(set_lr, optimizer)  # alpha into every param group
        self.every, self.n_d = period, nd
        self._unit_iters = 1  # iterations per unit of the drops' record (the engine sets an epoch's)
        self.alpha, self.theta = self.k0, self.theta0
        self.t = self.iterations = 0
        self.angles: collections.deque[float] = collections.deque(maxlen=window)
        self.omega = math.nan
        self.trigger: int | None = None
        self.k = 0
        self.z: Tensor | None = None
        self.drops: list[dict[str, Any]] = []
        self.tracker = AngleTracker()
        self.tracker.update(self._flat())
        if period is not None:
            self.after_step = self._count_iteration  # epoch mode leaves after_step the base no-op
        self._set_lr(self.alpha)

    # --- Algorithm 1 --------------------------------------------------------------------------

    def _count_iteration(self) -> None:
        self.iterations += 1
        if self.iterations % self.every == 0:
            self.step()

    def after_epoch(self, epoch: int) -> None:
        if self.every is None:
            self.step()

    def step(self) -> float:
        """One period's end: measure omega_t, check for saturation, accumulate, drop; returns the LR."""
        self.t += 1
        self.angles.append(self.tracker.update(self._flat()))
        omega = sum(self.angles) / len(self.angles) if len(self.angles) == self.angles.maxlen else math.nan
        saturated = abs(omega - self.omega) < self.theta  # False while either is nan
        self.omega = omega
        if self.trigger is not None:
            self._accumulate(self.tracker.last)
        elif saturated:
            self.trigger = self.t
        return self.alpha

    def _accumulate(self, x: Tensor) -> None:
        """``z += k x`` for the k-th period after the trigger; at ``k = n_d`` the weighted average and the drop."""
        self.k += 1
        self.z = self.k * x if self.z is None else self.z + self.k * x  # new tensors: saved states stay intact
        if self.k == self.n_d:
            self._drop(self.z * (2.0 / ((self.n_d + 1) * self.n_d)))

    def _drop(self, average: Tensor) -> None:
        import torch

        with torch.no_grad():
            params = list(self.model.parameters())
            for p, chunk in zip(params, average.split([p.numel() for p in params])):
                p.copy_(chunk.view_as(p))
        self.tracker.last = self._flat().double()
        self.alpha = max(self.k_min, self.rho * self.alpha)
        self.theta = min(self.theta_max, self.theta / self.rho)
        self.drops.append({self._unit: self._at(self.t), "trigger": self._at(self.trigger), "lr": self.alpha,
                           "theta": self.theta})
        self.trigger, self.k, self.z = None, 0, None
        self._set_lr(self.alpha)

    @property
    def _unit(self) -> str:
        return "epoch" if self.every is None else "iteration"

    def _at(self, t: int) -> int:
        return t if self.every is None else t * self.every

    # --- checkpoints and the record -------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data and tensors (``torch.load(weights_only=True)``), a pending drop's ``z`` and ``k`` included."""
        return {"alpha": self.alpha, "theta": self.theta, "t": self.t, "iterations": self.iterations,
                "angles": list(self.angles), "omega": self.omega, "trigger": self.trigger, "k": self.k, "z": self.z,
                "drops": [dict(d) for d in self.drops], "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after attaching) and write its LR into the param groups."""
        self.alpha, self.theta, self.omega = float(state["alpha"]), float(state["theta"]), float(state["omega"])
        self.t, self.iterations, self.k = int(state["t"]), int(state["iterations"]), int(state["k"])
        self.trigger, self.z = state["trigger"], state["z"]
        self.angles.clear()
        self.angles.extend(state["angles"])
        self.drops = [dict(d) for d in state["drops"]]
        self.tracker.load_state_dict(state["tracker"])
        self._set_lr(self.alpha)

    def record(self) -> dict[str, Any]:
        """The LR trajectory, ``[[step, lr], ...]`` from k0 at step 0 (steps: iterations; epochs in epoch mode
        in your own loop, which counts none); k0, and each drop's epoch (or iteration), trigger, new LR, theta."""
        trajectory = [[0, self.k0]] + [[d[self._unit] * self._unit_iters, d["lr"]] for d in self.drops]
        return {"trajectory": trajectory, "k0": self.k0, "unit": self._unit, "window": self.angles.maxlen,
                "nd": self.n_d, "drops": [dict(d) for d in self.drops]}


ENTRY = Entry(AutoDrop.TABLE.owner, "controller", AutoDrop.from_call, AutoDrop.TABLE.names,
              str(AutoDrop.TABLE.n_param), "AutoDrop (Algorithm 1): when the angular velocity saturates, n_d more "
              "epochs of weighted parameter averaging, then LR *= rho (>= k_min) and theta /= rho (<= theta_max)",
              AutoDrop.TABLE.example)
