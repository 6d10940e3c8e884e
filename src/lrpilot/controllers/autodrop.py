"""AutoDrop: drop the LR when the angular velocity of the parameters saturates (Algorithm 1 of
"AutoDrop: training deep learning models with automatic learning rate drop").

At the end of each period ``t`` (an epoch, or ``period`` iterations) the angular velocity is
``omega_t = angle(s_t, s_{t-1})`` in degrees with ``s_t = x_t - x_{t-1}`` (Definition 1, Equations
(1)-(2)), averaged over the last ``window`` periods. When ``|omega_t - omega_{t-1}| < theta`` the
drop is triggered: ``n_d`` more periods at the current LR accumulate ``z += k x``, then
``x <- 2z / ((n_d + 1) n_d)``, ``alpha <- max(alpha_min, rho alpha)`` and
``theta <- min(theta_max, theta / rho)``. Defaults are the paper's recommended settings:
``k_min`` (alpha_min) = 1e-4, ``theta0`` = 0.01 degrees, ``theta_max`` = 1 degree, ``nd`` = 20.

``saturation``: when the angular velocity counts as saturated.

- ``saturation=absolute`` is Algorithm 1: ``|omega_t - omega_{t-1}| < theta`` degrees, ``theta0`` = 0.01,
  per epoch, ``n_d`` = 20 (the paper's settings). On small tasks the angle between two periods' changes
  moves by several degrees from one period to the next (digits-lenet, 40 periods a run: mean
  ``|omega_t - omega_{t-1}|`` about 10 degrees, rising from 40 to about 90-110), so a change below 0.01
  degrees is never seen and the LR never drops.
- ``saturation=relative`` (the default) compares the mean angle of the last ``window`` periods with the mean
  of the ``window`` before them: saturated when its rise is below ``theta`` standard errors of that difference
  (``theta0`` = 1, ``theta_max`` = 2), so the test scales with the task's own angle noise, and when the angle
  has risen since the first window after the start or the last drop (by more than 2 standard errors) or stands
  at 90 degrees or more. It measures every
  ``period`` = 1/40 of the run with ``window`` = 5 and ``nd`` = 0.1 of the run's periods (4), so that drops fit
  in any budget; after a drop the test starts over on the new LR's angles. ``theta`` grows by ``1 / rho`` after
  each drop up to ``theta_max``, as in Algorithm 1. ``guard`` (default 1.1, :mod:`lrpilot.controllers.guard`):
  when the running training loss rises above 1.1 times its first value, the model and optimizer go back to the
  state kept last (every period) and the LR is cut tenfold: from 10 times a good LR a run dies in its first tens
  of iterations, before any saturation test. ``saturation=absolute`` has no guard unless given one.

Readings lrpilot takes where the paper is ambiguous:

- Period. Epochs by default with ``saturation=absolute``, as in Algorithm 1; ``period=p`` measures every
  ``p`` iterations. In the engine, such a controller without its own ``period``/``window`` takes the task's
  ``av_period``/``av_window``: the NQM then measures per iteration with a window of 20 (Section 3, Figure 3).
  The relative test sets its own (1/40 of the run, 5).
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
import statistics
from typing import TYPE_CHECKING, Any

from lrpilot.controllers.base import Context, Controller
from lrpilot.controllers.guard import BACKOFF, RISE, DivergenceGuard, rise_or_off
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, check_number, half_up
from lrpilot.policy.params import Configured, Param, ParamTable, choice, count, count_or_fraction, number

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn


def _below_k0(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    k0 = earlier["k0"]
    return check_number(owner, key, value, lambda x: 0 <= x < k0, f"a number >= 0 below k0={k0} (the lowest LR)")


def _from_theta0(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    theta0 = earlier["theta0"]
    return check_number(owner, key, value, lambda x: x >= theta0, f"a number >= theta0={theta0}")


#: The saturation tests: Algorithm 1's and lrpilot's default.
SATURATIONS = {"absolute": "Algorithm 1: |omega_t - omega_{t-1}| < theta degrees",
               "relative": "the mean angle of the last window periods rises by < theta standard errors"}


#: The relative test's second condition: the angle has risen by more than this many standard errors since the
#: first window after the start or the last drop, or its mean is at least NOISE_ANGLE degrees (consecutive changes
#: no longer point the same way). A flat angle at a low level, while the LR still makes progress along one
#: direction, is not saturation (digits-lenet from LR 0.005: about 25 degrees for the first third of the run).
RISEN = 2.0
NOISE_ANGLE = 90.0


def _absolute(values: dict[str, Any]) -> bool:
    return values["saturation"] == "absolute"


def _rise(earlier: list[float], later: list[float]) -> float:
    """How far the mean of ``later`` is above that of ``earlier``, in standard errors of the difference (0 when both
    are constant and equal; +-inf when constant and different)."""
    diff = statistics.fmean(later) - statistics.fmean(earlier)
    spread = math.sqrt(statistics.variance(earlier) / len(earlier) + statistics.variance(later) / len(later)) \
        if min(len(earlier), len(later)) > 1 else 0.0
    return diff / spread if spread > 0 else math.copysign(math.inf, diff) if diff else 0.0


class AutoDrop(Configured, Controller):
    """Algorithm 1 of the AutoDrop paper on top of any optimizer (SGD, momentum, Adam).

    In the engine: ``autodrop(k0=0.1, rho=0.2)``. In your own loop, give the optimizer and the
    model and call :meth:`step` once per period (epoch); with a whole ``period=p``, call
    :meth:`after_step` after every optimizer step instead. ``periods``: how many periods the run
    has, for a ``nd`` given as a fraction of them (the default 0.1); or give ``nd`` as a number.

    >>> import torch
    >>> from lrpilot.controllers.autodrop import AutoDrop
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(256, 8)
    >>> y = x @ torch.randn(8, 1) + 0.3 * torch.randn(256, 1)
    >>> model = torch.nn.Linear(8, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    >>> drop = AutoDrop(opt, model, k0=0.05, rho=0.5, periods=30)
    >>> for epoch in range(30):
    ...     for idx in torch.randperm(256).split(32):
    ...         opt.zero_grad()
    ...         torch.nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
    ...         opt.step()
    ...     lr = drop.step()  # one period per epoch
    >>> drop.record()["drops"]
    [{'epoch': 14, 'trigger': 11, 'lr': 0.025, 'theta': 2.0}, {'epoch': 27, 'trigger': 24, 'lr': 0.0125, 'theta': 2.0}]
    """

    #: Algorithm 1's settings in canonical order; #Param counts its six: alpha_0, alpha_min, theta_0,
    #: theta_max, rho and n_d.
    TABLE = ParamTable("autodrop", "autodrop(k0=0.1, rho=0.2)", 6, (
        Param("k0", number(lambda x: x > 0, "a finite number > 0 (the initial LR)")),
        Param("rho", number(lambda x: 0 < x < 1, "in (0, 1) (the LR drop factor)")),
        Param("saturation", choice(SATURATIONS), "relative", always=True),
        Param("k_min", _below_k0, 1e-4),
        Param("theta0", number(lambda x: x > 0, "a number > 0 (degrees; standard errors when relative)"),
              derive=lambda v: 0.01 if _absolute(v) else 1.0),
        Param("theta_max", _from_theta0, derive=lambda v: 1.0 if _absolute(v) else max(2.0, v["theta0"])),
        Param("nd", count_or_fraction("periods of delay; a fraction: of the run's periods"),
              derive=lambda v: 20 if _absolute(v) else 0.1),
        Param("period", count_or_fraction("iterations per period; a fraction: of the run's iterations"),
              derive=lambda v: None if _absolute(v) else 1 / 40),
        Param("window", count("periods averaged"), derive=lambda v: None if _absolute(v) else 5),
        Param("guard", rise_or_off, derive=lambda v: "off" if _absolute(v) else RISE, always=True,
              shown=lambda v: not _absolute(v) or v["guard"] != "off"),
    ))

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, model: nn.Module | None = None,
                 periods: int | None = None, **settings: Any):
        super().__init__(**settings)
        if optimizer is not None or model is not None:
            if optimizer is None or model is None:
                raise LRPilotError(f"{self.TABLE.owner}: give both the optimizer and the model (or neither, for the "
                                   "engine)")
            if isinstance(self.nd, float) and not (isinstance(periods, int) and periods >= 1):
                raise LRPilotError(f"{self.TABLE.owner}: nd={self.nd} is a fraction of the run's periods: give "
                                   f"periods= (how many times the run calls step()), or nd as a whole number")
            nd = self.nd if isinstance(self.nd, int) else max(1, half_up(self.nd * periods))
            period = self.period if isinstance(self.period, int) else None  # a fraction: step() once per period
            self._attach(optimizer, model, period, self.window or 1, nd, period or 1)

    # --- attaching ----------------------------------------------------------------------------

    def start(self, ctx: Context) -> None:
        """Attach to the engine's run; ``period``/``window`` default to the task's ``av_period``/``av_window``."""
        period = self.period if self.period is not None else ctx.task.av_period
        if isinstance(period, float):
            period = max(1, half_up(period * ctx.total_steps))
        window = self.window or ctx.task.av_window
        periods = ctx.total_steps / (period or ctx.iters_per_epoch)
        nd = self.nd if isinstance(self.nd, int) else max(1, half_up(self.nd * periods))
        self._attach(ctx.optimizer, ctx.model, period, window, nd, period or ctx.iters_per_epoch)
        self._unit_iters = 1 if period else ctx.iters_per_epoch

    def _attach(self, optimizer: torch.optim.Optimizer, model: nn.Module, period: int | None, window: int,
                nd: int, keep_every: int) -> None:
        from lrpilot.angles import AngleTracker, flat_params
        from lrpilot.controllers.scheduler import set_lr

        self.optimizer, self.model = optimizer, model
        self._flat = functools.partial(flat_params, model)  # the parameters as one vector
        self._set_lr = functools.partial(set_lr, optimizer)  # alpha into every param group
        self.every, self.n_d = period, nd
        self._unit_iters = 1  # iterations per unit of the drops' record (the engine sets an epoch's)
        self.alpha, self.theta = self.k0, self.theta0
        self.t = self.iterations = 0
        self.angles: collections.deque[float] = collections.deque(
            maxlen=window if _absolute(self.params) else 2 * window)
        self.omega = math.nan
        self.baseline: list[float] | None = None  # relative: the first window's angles since the start or a drop
        self.trigger: int | None = None
        self.k = 0
        self.z: Tensor | None = None
        self.drops: list[dict[str, Any]] = []
        self.tracker = AngleTracker()
        self.tracker.update(self._flat())
        self.divergence = None if self.guard == "off" else DivergenceGuard(model, optimizer, rise=self.guard,
                                                                           every=keep_every)
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
        angle = self.tracker.update(self._flat())
        if _absolute(self.params) or not math.isnan(angle):  # relative: the angles there are
            self.angles.append(angle)
        saturated = self._saturated()
        if self.trigger is not None:
            self._accumulate(self.tracker.last)
        elif saturated:
            self.trigger = self.t
        return self.alpha

    def after_check(self, step: int, loss: float) -> bool:
        """The guard: when the running training loss ``loss`` at iteration ``step`` has left its start, the state kept
        last, the LR times :data:`BACKOFF` (>= k_min) and the saturation test started over; True if it restored. In
        your own loop, call it every few iterations."""
        if self.divergence is None or not self.divergence.check(step, loss) or self.alpha <= self.k_min:
            return False
        from lrpilot.angles import AngleTracker

        restored = self.divergence.restore(step, loss)  # the optimizer's state, its old LR included
        self.alpha = restored["lr"] = max(self.k_min, BACKOFF * self.alpha)
        self._set_lr(self.alpha)
        self.trigger, self.k, self.z = None, 0, None
        self.angles.clear()
        self.baseline = None
        self.tracker = AngleTracker()
        self.tracker.update(self._flat())
        return True

    def _saturated(self) -> bool:
        """The saturation test of ``saturation`` on the angles so far (False until it has enough of them)."""
        if not _absolute(self.params):
            w = self.angles.maxlen // 2
            if self.baseline is None and len(self.angles) == w:
                self.baseline = list(self.angles)
            if len(self.angles) < self.angles.maxlen:
                return False
            earlier, last = list(self.angles)[:w], list(self.angles)[w:]
            return (_rise(earlier, last) < self.theta  # it has stopped rising ...
                    and (_rise(self.baseline, last) > RISEN  # ... after rising since the start or the last drop,
                         or statistics.fmean(last) >= NOISE_ANGLE))  # or at the angle of changes that point nowhere
        omega = sum(self.angles) / len(self.angles) if len(self.angles) == self.angles.maxlen else math.nan
        saturated = abs(omega - self.omega) < self.theta  # False while either is nan
        self.omega = omega
        return saturated

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
        if not _absolute(self.params):
            self.angles.clear()  # the test starts over on the new LR's angles
            self.baseline = None
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
                "angles": list(self.angles), "omega": self.omega, "baseline": self.baseline, "trigger": self.trigger,
                "k": self.k, "z": self.z, "drops": [dict(d) for d in self.drops], "tracker": self.tracker.state_dict(),
                **({"guard": self.divergence.state_dict()} if self.divergence is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after attaching) and write its LR into the param groups."""
        self.alpha, self.theta, self.omega = float(state["alpha"]), float(state["theta"]), float(state["omega"])
        self.t, self.iterations, self.k = int(state["t"]), int(state["iterations"]), int(state["k"])
        self.trigger, self.z = state["trigger"], state["z"]
        self.angles.clear()
        self.angles.extend(state["angles"])
        self.baseline = state.get("baseline")
        self.drops = [dict(d) for d in state["drops"]]
        self.tracker.load_state_dict(state["tracker"])
        if self.divergence is not None:
            self.divergence.load_state_dict(state["guard"])
        self._set_lr(self.alpha)

    def record(self) -> dict[str, Any]:
        """The LR trajectory, ``[[step, lr], ...]`` from k0 at step 0 (steps: iterations; epochs in epoch mode
        in your own loop, which counts none); k0, each drop's epoch (or iteration), trigger, new LR, theta, and
        each restore of the guard (its iteration, loss, the iteration it went back to, the new LR)."""
        restores = self.divergence.restores if self.divergence is not None else []
        moves = sorted([[d[self._unit] * self._unit_iters, d["lr"]] for d in self.drops]
                       + [[r["iteration"], r["lr"]] for r in restores], key=lambda m: m[0])
        return {"trajectory": [[0, self.k0]] + moves, "k0": self.k0, "unit": self._unit,
                "window": self.angles.maxlen, "nd": self.n_d, "drops": [dict(d) for d in self.drops],
                **({"restores": [dict(r) for r in restores]} if self.divergence is not None else {})}


ENTRY = Entry(AutoDrop.TABLE.owner, "controller", AutoDrop.from_call, AutoDrop.TABLE.names,
              str(AutoDrop.TABLE.n_param), "AutoDrop (Algorithm 1): when the angular velocity saturates, n_d more "
              "epochs of weighted parameter averaging, then LR *= rho (>= k_min) and theta /= rho (<= theta_max)",
              AutoDrop.TABLE.example)
