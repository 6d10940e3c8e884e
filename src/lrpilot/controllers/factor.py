"""The factor-scoring LR scheduler: Algorithm 1 of Kim and Yu's slides, "Automated learning rate
scheduling with in-training information".

At each scoring point, on one random batch: one gradient ``g`` at theta_t; for each factor ``f``
of the list, the loss ``L_f`` at ``theta_t - f * eta * g``; ``x = normalize(L)``,
``s = score(x)`` (default ``exp(-x)``), and the next LR is the weighted geometric mean of the
factors times the LR, ``eta * exp(sum_f s_f ln f / sum_f s_f)``, kept within ``bounds``.

Readings lrpilot takes where the slides are silent or ambiguous:

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
  0.9) went to the cap and collapsed to chance (benchmarks/factor_quality.py). The default cap
  allows one decade above the start. Every param group gets the same LR eta.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import weakref
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lrpilot.controllers.base import Context, Controller
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry
from lrpilot.policy.params import (FACTOR_LISTS, Check, Configured, Param, ParamTable, count, factor_list,
                                   factor_list_number, lr_bounds, number)
from lrpilot.controllers.scheduler import set_lr


def minmax(losses: Tensor) -> Tensor:
    """``(L - min L) / (max L - min L)``: 0 for the best factor, 1 for the worst, all 0 when the losses are equal."""
    span = losses.max() - losses.min()
    return (losses - losses.min()) / span if span > 0 else torch.zeros_like(losses)


def neg_exp(x: Tensor) -> Tensor:
    """The slides' score ``exp(-x)``."""
    return torch.exp(-x)


#: Normalisations and scores by the names the text form uses; add an entry to make yours nameable.
NORMALIZATIONS: dict[str, Callable[[Tensor], Tensor]] = {"minmax": minmax}
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
TABLE = ParamTable("factor", "factor(k0=0.005, factors=5)", 3, (
    Param("k0", number(lambda x: x > 0, "a finite number > 0 (the initial LR)")),
    Param("factors", factor_list, FACTOR_LISTS["Factor_3"], text=lambda f: factor_list_number(f) or list(f)),
    Param("batch", count("the probe batch size"), 32),
    Param("every", count("iterations between scoring points"), None),
    Param("norm", _named(NORMALIZATIONS), minmax, text=_name(NORMALIZATIONS)),
    Param("score", _named(SCORES), neg_exp, text=_name(SCORES)),
    Param("bounds", lr_bounds, derive=lambda v: (v["k0"] / 1000, 10 * v["k0"])),
))


@dataclasses.dataclass(frozen=True)
class FactorRule:
    """Algorithm 1's settings, validated: initial LR, factor list, normalisation, score, LR bounds."""

    k0: float
    factors: tuple[float, ...]
    norm: Callable[[Tensor], Tensor]
    score: Callable[[Tensor], Tensor]
    bounds: tuple[float, float]

    @classmethod
    def of(cls, values: dict[str, Any]) -> "FactorRule":
        """The rule within the checked values of :data:`TABLE`."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})

    def next_eta(self, eta: float, losses: Tensor) -> tuple[float, Tensor]:
        """Lines 8-11 of Algorithm 1: the next LR (within the bounds) and the factors' scores."""
        finite = torch.isfinite(losses)
        scores = torch.zeros_like(losses)
        if not finite.any():
            return self._clip(eta * min(self.factors)), scores
        scores[finite] = self.score(self.norm(losses[finite])).to(scores.dtype)
        log_f = torch.tensor(self.factors, dtype=scores.dtype).log()
        return self._clip(eta * math.exp(((scores * log_f).sum() / scores.sum()).item())), scores

    def _clip(self, eta: float) -> float:
        return min(max(eta, self.bounds[0]), self.bounds[1])


# --- the probe ------------------------------------------------------------------------------


class _Trials(nn.Module):
    """The loss at every trial point in one module call, so that one ``functional_call`` swaps the
    model's parameters for the trial buffers, which ``write(f)`` fills before each loss."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any, factors: Sequence[float], write: Callable[[float], None]) -> Tensor:
        losses = []
        for f in factors:
            write(f)
            losses.append(self.loss_fn(self.model, batch))
        return torch.stack(losses)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def trial_losses(trials: _Trials, batch: Any, eta: float, factors: Sequence[float]) -> Tensor:
    """Lines 3-7 of Algorithm 1: the loss at ``theta - f * eta * grad`` for each factor ``f`` (float64, CPU).

    One gradient, then every trial point written into the same buffer, which ``functional_call``
    puts in place of the parameters: the model, its ``.grad`` and its buffers are left as they were.
    """
    model = trials.model
    with _eval_mode(model):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(trials.loss_fn(model, batch), [p for _, p in named], allow_unused=True)
        moved = {f"model.{n}": (p, g) for (n, p), g in zip(named, grads) if g is not None}
        trial = {n: torch.empty_like(p) for n, (p, _) in moved.items()}

        def write(f: float) -> None:
            for n, (p, g) in moved.items():
                torch.add(p, g, alpha=-f * eta, out=trial[n])

        with torch.no_grad():
            losses = functional_call(trials, trial, (batch, factors, write))
    return losses.to("cpu", torch.float64)


def task_batch(task: Any, generator: torch.Generator, size: int) -> Any:
    """``size`` random training samples of ``task``: the first batches of an epoch shuffled by ``generator``."""
    pieces, n = [], 0
    for b in task.train_batches(generator):
        pieces.append(b)
        n += len(b[-1]) if isinstance(b, (tuple, list)) else len(b)
        if n >= size:
            break
    if isinstance(pieces[0], Tensor):
        return torch.cat(pieces)[:size]
    return type(pieces[0])(torch.cat(parts)[:size] for parts in zip(*pieces))


# --- the user's-loop API ----------------------------------------------------------------------


class FactorScheduler:
    """The factor-scoring scheduler in your own loop: call :meth:`step` at each scoring point.

    ``loss_fn(model, batch)`` gives the scalar training loss; ``sample_batch(generator)`` draws a
    probe batch (32 samples is the slides' best) with ``generator`` (default: a new one seeded
    with 0). ``factors``: 3, 5, 7 (the slides' Factor_3/5/7) or a list of factors > 0;
    ``norm`` and ``score``: a name (``"minmax"``, ``"exp"``) or a function of a float64 tensor
    (``score`` must give weights > 0);
    ``bounds``: [min, max] of the LR (default [k0/1000, 10*k0]). The scheduler counts optimizer
    steps for its record; :meth:`state_dict` is plain data for ``torch.load(weights_only=True)``.

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from lrpilot.controllers.factor import FactorScheduler
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    >>> model = torch.nn.Linear(10, 3)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> def sample_batch(generator):
    ...     idx = torch.randint(len(y), (32,), generator=generator)
    ...     return x[idx], y[idx]
    >>> sched = FactorScheduler(opt, model, loss_fn=lambda m, b: F.cross_entropy(m(b[0]), b[1]),
    ...                         sample_batch=sample_batch, k0=0.005, factors=5)
    >>> for epoch in range(3):
    ...     for i in range(0, 256, 32):
    ...         opt.zero_grad()
    ...         F.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
    ...         opt.step()
    ...     lr = sched.step()  # one scoring point per epoch
    >>> [p["step"] for p in sched.record()["points"]], opt.param_groups[0]["lr"] == lr != 0.005
    ([8, 16, 24], True)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module,
                 loss_fn: Callable[[nn.Module, Any], Tensor], sample_batch: Callable[[torch.Generator], Any],
                 k0: float, *, factors: Any = None, norm: Any = None, score: Any = None,
                 bounds: Sequence[float] | None = None, generator: torch.Generator | None = None):
        self.rule = FactorRule.of(TABLE.read({"k0": k0, "factors": factors, "norm": norm, "score": score,
                                              "bounds": bounds}))
        self.optimizer = optimizer
        self.sample_batch = sample_batch
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator
        self.eta = self.rule.k0
        self.iterations = 0
        self.points: list[dict[str, Any]] = []
        self._trials = _Trials(model, loss_fn)
        optimizer.register_step_post_hook(_step_counter(weakref.ref(self)))
        self._write()

    def step(self) -> float:
        """One scoring point: probe the factors, move the LR, write it into the param groups; returns it."""
        batch = self.sample_batch(self.generator)
        losses = trial_losses(self._trials, batch, self.eta, self.rule.factors)
        self.eta, scores = self.rule.next_eta(self.eta, losses)
        self.points.append({"step": self.iterations, "eta": self.eta, "losses": losses.tolist(),
                            "scores": scores.tolist()})
        self._write()
        return self.eta

    def get_last_lr(self) -> list[float]:
        """The LR of each param group, as torch's schedulers report it."""
        return [self.eta] * len(self.optimizer.param_groups)

    def record(self) -> dict[str, Any]:
        """The LR trajectory, ``[[step, lr], ...]`` from k0 at step 0; k0, and each scoring point's step, new eta,
        losses and scores."""
        trajectory = [[0, self.rule.k0]] + [[p["step"], p["eta"]] for p in self.points]
        return {"trajectory": trajectory, "k0": self.rule.k0, "points": [dict(p) for p in self.points]}

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the LR, the optimizer steps counted, the points so far, the probe generator's state."""
        return {"eta": self.eta, "iterations": self.iterations, "points": [dict(p) for p in self.points],
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` and write its LR into the param groups."""
        self.eta, self.iterations = float(state["eta"]), int(state["iterations"])
        self.points = [dict(p) for p in state["points"]]
        self.generator.set_state(state["generator"])
        self._write()

    def _write(self) -> None:
        set_lr(self.optimizer, self.eta)


def _step_counter(ref: weakref.ref) -> Callable[..., None]:
    """An optimizer step hook that counts steps for the scheduler ``ref`` (weak: the optimizer may outlive it)."""

    def hook(*_: Any) -> None:
        scheduler = ref()
        if scheduler is not None:
            scheduler.iterations += 1

    return hook


# --- the engine's controller ------------------------------------------------------------------


class FactorController(Configured, Controller):
    """The factor-scoring scheduler as an engine controller: ``factor(k0=0.005, factors=5)``.

    Scores at every epoch end, or every ``every`` iterations, on ``batch`` random training
    samples of the task drawn with the controller's own generator (see :class:`FactorScheduler`).
    """

    TABLE = TABLE

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.rule = FactorRule.of(self.params)
        self.scheduler: FactorScheduler | None = None

    def start(self, ctx: Context) -> None:
        r = self.rule
        self.scheduler = FactorScheduler(
            ctx.optimizer, ctx.model, ctx.task.train_loss, functools.partial(task_batch, ctx.task, size=self.batch),
            r.k0, factors=r.factors, norm=r.norm, score=r.score, bounds=r.bounds, generator=ctx.generator)
        if self.every is not None:
            self.after_step = self._score_every

    def _score_every(self) -> None:
        if self.scheduler.iterations % self.every == 0:
            self.scheduler.step()

    def after_epoch(self, epoch: int) -> None:
        if self.every is None:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)

    def record(self) -> dict[str, Any]:
        return self.scheduler.record()


ENTRY = Entry(TABLE.owner, "controller", FactorController.from_call, TABLE.names, str(TABLE.n_param),
              "factor scoring (Kim and Yu, Algorithm 1): per epoch, LR *= weighted geometric mean of the "
              "factors, scored exp(-minmax(loss at LR*f))", TABLE.example)
