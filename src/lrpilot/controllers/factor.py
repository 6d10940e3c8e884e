"""The factor-scoring LR scheduler: Algorithm 1 of Kim and Yu's slides, "Automated learning rate
scheduling with in-training information".

At each scoring point, on one random batch: one gradient ``g`` at theta_t; for each factor ``f``
of the list, the loss ``L_f`` at ``theta_t - f * eta * g``; ``x = normalize(L)``,
``s = score(x)`` (default ``exp(-x)``), and the next LR is the weighted geometric mean of the
factors times the LR, ``eta * exp(sum_f s_f ln f / sum_f s_f)``, kept within ``bounds``.

``probe``: which trial points are scored, on which batch.

- ``probe=slides`` is Algorithm 1 as the slides give it (the readings below). It scores the plain
  gradient step on the batch the gradient came from, which favours the longest step whatever the LR: a
  batch's loss falls fastest along its own gradient. On digits-lenet from LR 0.05 every probe's largest
  factor won, the LR ran to its cap 10 k0 and the runs ended at 28 % Top-1 (3 seeds; FIX(k0=0.05): 97.7 %;
  benchmarks/adaptive_quality.py).
- ``probe=lookahead`` (the default) scores the optimizer's own last step, ``theta_{t-1} + f (theta_t -
  theta_{t-1})``, so momentum, weight decay and Adam's scaling are those of the real step, on ``batches``
  probe batches of ``batch`` samples that are not the gradient's, every ``every`` = 1/40 of the run.
  Normalisation ``noise`` (:func:`noise`) weighs the current LR (f = 1) 1 and another factor by how far its
  loss, paired batch by batch with the current LR's, is below it beyond 4 standard errors, so the LR moves
  only where the probe tells the factors apart. A one-step probe favours short steps wherever the step's
  noise dominates (on mnist1d-cnn at its best constant LR, 0.1, half the last step scored better than the
  whole one by up to 2.8 standard errors, as much as at 1.0 or 0.01), hence the wide margin.
  ``guard`` (default 1.1, :mod:`lrpilot.controllers.guard`): when the running training loss rises above 1.1 times
  its first value, the model and optimizer go back to the state kept last (every ``every``) and the LR is cut
  tenfold, its cap then half the LR that diverged. From 10 times a good LR a run dies in its first tens of
  iterations, before any scoring point; ``guard=off`` leaves it to die.

Readings lrpilot takes where the slides are silent or ambiguous (``probe=slides``):

- The gradient is computed once per scoring point: line 5 of Algorithm 1 sits inside the factor
  loop but computes the same gradient at theta_t for every factor.
- No model copy per factor (the slides' first listed limitation): the trial points are evaluated
  with ``torch.func.functional_call`` on one reused buffer, so memory beyond the model is the
  gradient plus one copy of the parameters, whatever the number of factors.
- The probe runs in eval mode (dropout off, BatchNorm on its running statistics, which it does
  not update): the losses are then a deterministic function of the step size, and the probe
  changes no buffer and draws nothing from the global random stream. Every module's mode is
  restored afterwards.
- The direction is the plain gradient of the loss (no momentum, no weight decay), whatever the
  optimizer, as in line 6.
- Normalisation is min-max, ``(L - min L) / (max L - min L)`` (all 0 when the losses are equal):
  the best factor scores exp(0) = 1, the worst exp(-1). Equal losses therefore give the plain
  geometric mean of the list: 1 for Factor_3, 0.5^(1/5) ~ 0.87 for Factor_5, 0.5^(1/7) ~ 0.91 for
  Factor_7.
- A trial point whose loss is not finite scores 0; if none is finite, eta shrinks by the
  smallest factor.
- Scoring points are epoch ends (the slides scale "the current epoch"), or every ``every``
  iterations. The probe batch has ``batch`` samples (32, the slides' best), drawn with the
  controller's own generator so that the order of the training data never changes.
- ``bounds`` (absent from the slides, whose run from LR 1 diverges) default to [k0 / 1000, 10 * k0].
  The probe's plain step ignores momentum, which makes the real step 1 / (1 - momentum) times
  longer (10 times at 0.9), so the probe keeps favouring LRs up to about the best single plain
  step, far beyond what momentum SGD tolerates: with a cap of 100 * k0, MNIST-1D's CNN (momentum
  0.9) went to the cap and collapsed to chance. The default cap allows one decade above the start
  (with either probe). Every param group gets the same LR eta.

This module holds the rule, its settings and the engine's ``factor(...)`` controller, and imports
no torch (its functions import it when called); the probe and :class:`FactorScheduler`, for your
own loop, are in :mod:`lrpilot.controllers.factor_probe`, which the controller imports when it starts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lrpilot.controllers.base import Context, Controller
from lrpilot.controllers.guard import BACKOFF, RISE, DivergenceGuard, rise_or_off
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, half_up
from lrpilot.policy.params import (FACTOR_LISTS, Check, Configured, Param, ParamTable, choice, count,
                                   count_or_fraction, factor_list, factor_list_number, lr_bounds, number)

if TYPE_CHECKING:
    from torch import Tensor

    from lrpilot.controllers.factor_probe import FactorScheduler


def minmax(losses: Tensor, factors: Sequence[float]) -> Tensor:
    """``(L - min L) / (max L - min L)`` of the mean losses: 0 for the best factor, 1 for the worst, all 0 when the
    losses are equal. ``losses``: factors x probe batches."""
    import torch

    mean = losses.mean(1)
    span = mean.max() - mean.min()
    return (mean - mean.min()) / span if span > 0 else torch.zeros_like(mean)


def noise(losses: Tensor, factors: Sequence[float], z: float = 4.0) -> Tensor:
    """Each factor against the current LR's (the factor nearest 1), paired over the probe batches: 0 for the current
    LR's own, ``-log(t - z)`` for a factor whose loss is below it by ``t > z`` standard errors of their difference,
    infinite (score 0) for the others. So ``exp(-x)`` weighs the current LR 1 and a factor by how far its gain clears
    the noise, and the LR moves only when some factor beats it. ``losses``: factors x probe batches (with one probe
    batch no difference has a spread, and the LR stays)."""
    import torch

    current = min(range(len(factors)), key=lambda i: abs(math.log(factors[i])))
    gain = losses[current] - losses
    if gain.shape[1] > 1:
        spread, mean = gain.std(1) / gain.shape[1] ** 0.5, gain.mean(1)
        t = torch.where(spread > 0, mean / spread, torch.where(mean > 0, math.inf, 0.0))
    else:
        t = torch.zeros(len(gain), dtype=gain.dtype)
    x = torch.where(t > z, -torch.log((t - z).clamp(1e-300, 1e6)), torch.full_like(t, math.inf))
    x[current] = 0.0
    return x


def neg_exp(x: Tensor) -> Tensor:
    """The slides' score ``exp(-x)``."""
    import torch

    return torch.exp(-x)


#: Normalisations and scores by the names the text form uses; add an entry to make yours nameable.
NORMALIZATIONS: dict[str, Callable[[Tensor, Sequence[float]], Tensor]] = {"minmax": minmax, "noise": noise}
#: The probe readings: the slides' Algorithm 1 and lrpilot's default.
PROBES = {"slides": "the plain gradient step, scored on its own batch", "lookahead": "the optimizer's last step, "
          "scored on other batches"}
SCORES: dict[str, Callable[[Tensor], Tensor]] = {"exp": neg_exp}


# --- the settings ---------------------------------------------------------------------------


def _named(table: dict[str, Callable[[Tensor], Tensor]]) -> Check:
    """A name of ``table``, or a function in Python."""

    def check(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> Callable[[Tensor], Tensor]:
        if callable(value):
            return value
        if value not in table:
            raise LRPilotError(f"{owner}: {key}={value!r} is unknown; known: {', '.join(table)} "
                               "(or a function in Python)")
        return table[value]

    return check


def _name(table: dict[str, Callable[[Tensor], Tensor]]) -> Callable[[Callable], str]:
    """A function's text: its name in ``table``, else its own ``__name__``."""
    return lambda fn: next((k for k, v in table.items() if v is fn), getattr(fn, "__name__", repr(fn)))


#: The text form's settings in canonical order; #Param counts the slides' three hyperparameters: the
#: initial LR, the factor list and the probe batch size.
def _slides(values: dict[str, Any]) -> bool:
    return values["probe"] == "slides"


TABLE = ParamTable("factor", "factor(k0=0.005, factors=5)", 3, (
    Param("k0", number(lambda x: x > 0, "a finite number > 0 (the initial LR)")),
    Param("probe", choice(PROBES), "lookahead", always=True),
    Param("factors", factor_list, FACTOR_LISTS["Factor_3"], text=lambda f: factor_list_number(f) or list(f)),
    Param("batch", count("the probe batch size"), 32),
    Param("batches", count("probe batches, scored pairwise"), 8, shown=lambda v: not _slides(v)),
    Param("every", count_or_fraction("iterations between scoring points; a fraction: of the run"),
          derive=lambda v: None if _slides(v) else 1 / 40),
    Param("norm", _named(NORMALIZATIONS), derive=lambda v: minmax if _slides(v) else noise,
          text=_name(NORMALIZATIONS)),
    Param("score", _named(SCORES), neg_exp, text=_name(SCORES)),
    Param("bounds", lr_bounds, derive=lambda v: (v["k0"] / 1000, 10 * v["k0"])),
    Param("guard", rise_or_off, derive=lambda v: "off" if _slides(v) else RISE, always=True,
              shown=lambda v: not _slides(v) or v["guard"] != "off"),
))


@dataclasses.dataclass(frozen=True)
class FactorRule:
    """Algorithm 1's settings, validated: initial LR, probe, factor list, probe batches, normalisation, score, LR
    bounds."""

    k0: float
    probe: str
    factors: tuple[float, ...]
    batches: int
    norm: Callable[[Tensor], Tensor]
    score: Callable[[Tensor], Tensor]
    bounds: tuple[float, float]

    @classmethod
    def of(cls, values: dict[str, Any]) -> "FactorRule":
        """The rule within the checked values of :data:`TABLE`."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})

    def next_eta(self, eta: float, losses: Tensor) -> tuple[float, Tensor]:
        """Lines 8-11 of Algorithm 1: the next LR (within the bounds) and the factors' scores. ``losses``: factors x
        probe batches."""
        import torch

        finite = torch.isfinite(losses).all(1)
        scores = torch.zeros(len(losses), dtype=losses.dtype)
        if not finite.any():
            return self._clip(eta * min(self.factors)), scores
        kept = [f for f, ok in zip(self.factors, finite.tolist()) if ok]
        scores[finite] = self.score(self.norm(losses[finite], kept)).to(scores.dtype)
        log_f = torch.tensor(self.factors, dtype=scores.dtype).log()
        return self._clip(eta * math.exp(((scores * log_f).sum() / scores.sum()).item())), scores

    def _clip(self, eta: float) -> float:
        return min(max(eta, self.bounds[0]), self.bounds[1])


# --- the engine's controller ------------------------------------------------------------------


class FactorController(Configured, Controller):
    """The factor-scoring scheduler as an engine controller: ``factor(k0=0.005, factors=5)``.

    Scores every ``every`` iterations (a fraction: of the run; None: at every epoch end), on random
    training samples of the task drawn with the controller's own generator (see
    :class:`~lrpilot.controllers.factor_probe.FactorScheduler`, which it drives).
    """

    TABLE = TABLE

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.rule = FactorRule.of(self.params)
        self.scheduler: FactorScheduler | None = None

    def start(self, ctx: Context) -> None:
        from lrpilot.controllers.factor_probe import FactorScheduler, task_batch

        r = self.rule
        self.scheduler = FactorScheduler(
            ctx.optimizer, ctx.model, ctx.task.train_loss, functools.partial(task_batch, ctx.task, size=self.batch),
            r.k0, probe=r.probe, factors=r.factors, batches=r.batches, norm=r.norm, score=r.score, bounds=r.bounds,
            generator=ctx.generator, keep_each_step=self.every is None)
        if self.every is not None:
            self._every = self.every if isinstance(self.every, int) else max(1, half_up(self.every * ctx.total_steps))
            self.after_step = self._score_every
            self._keep_before_scoring()
        every = self._every if self.every is not None else ctx.iters_per_epoch
        self.divergence = None if self.guard == "off" else DivergenceGuard(ctx.model, ctx.optimizer, rise=self.guard,
                                                                           every=every)

    def after_check(self, step: int, loss: float) -> bool:
        """The guard: when the loss has left its start, the state kept last and the LR times :data:`BACKOFF`."""
        if self.divergence is None or not self.divergence.check(step, loss) or not self.scheduler.can_back_off():
            return False
        restored = self.divergence.restore(step, loss)  # the optimizer's state, its old LR included
        restored["lr"] = self.scheduler.back_off(BACKOFF)
        if self.every is not None:  # the lookahead's copy was of the parameters left behind
            self._keep_before_scoring()
        return True

    def _score_every(self) -> None:
        if self.scheduler.iterations % self._every == 0:
            self.scheduler.step()
        self._keep_before_scoring()

    def _keep_before_scoring(self) -> None:
        """Lookahead: copy the parameters before the step that ends at a scoring point, and only then."""
        if self.probe == "lookahead" and (self.scheduler.iterations + 1) % self._every == 0:
            self.scheduler.keep()

    def after_epoch(self, epoch: int) -> None:
        if self.every is None:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        state = self.scheduler.state_dict()
        if self.divergence is not None:
            state["guard"] = self.divergence.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
        if self.divergence is not None:
            self.divergence.load_state_dict(state["guard"])
        if self.every is not None:  # the model is restored: its parameters are those before the next step
            self._keep_before_scoring()

    def record(self) -> dict[str, Any]:
        record = self.scheduler.record()
        if self.divergence is not None:
            record["restores"] = [dict(r) for r in self.divergence.restores]
        return record


ENTRY = Entry(TABLE.owner, "controller", FactorController.from_call, TABLE.names, str(TABLE.n_param),
              "factor scoring (Kim and Yu, Algorithm 1): LR *= weighted geometric mean of the factors f, scored "
              "by the loss at LR*f; probe=lookahead (default): the optimizer's last step on other batches, every "
              "1/40 of the run; probe=slides: the plain gradient step on its own batch, per epoch", TABLE.example)
