"""The torch side of factor scoring (:mod:`lrpilot.controllers.factor`): the probes, which evaluate
the loss at every trial point (Algorithm 1's lines 3-7 for ``probe=slides``; the optimizer's last step
scaled by each factor for ``probe=lookahead``), and :class:`FactorScheduler`, the rule on top
of any optimizer in your own loop. The engine's ``factor(...)`` controller imports this module when it
starts.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lrpilot.controllers.factor import TABLE, FactorRule
from lrpilot.controllers.scheduler import set_lr


# --- the probe ------------------------------------------------------------------------------


class _Trials(nn.Module):
    """The loss at every trial point in one module call, so that one ``functional_call`` swaps the
    model's parameters for the trial buffers, which ``write(f)`` fills before each loss."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batches: Sequence[Any], factors: Sequence[float], write: Callable[[float], None]) -> Tensor:
        losses = []
        for f in factors:
            write(f)
            losses.append(torch.stack([self.loss_fn(self.model, b) for b in batches]))
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


def _losses_along(trials: _Trials, batches: Sequence[Any], factors: Sequence[float],
                  moved: dict[str, tuple[Tensor, Tensor]], scale: float) -> Tensor:
    """The loss on each of ``batches`` at ``p + f * scale * d`` for each factor ``f``, ``moved`` holding each
    parameter's ``(p, d)`` (factors x batches, float64, CPU). Every trial point is written into the same buffer,
    which ``functional_call`` puts in place of the parameters: the model and its buffers are left as they were."""
    trial = {n: torch.empty_like(p) for n, (p, _) in moved.items()}

    def write(f: float) -> None:
        for n, (p, d) in moved.items():
            torch.add(p, d, alpha=f * scale, out=trial[n])

    with torch.no_grad():
        losses = functional_call(trials, trial, (batches, factors, write))
    return losses.to("cpu", torch.float64)


def trial_losses(trials: _Trials, batch: Any, eta: float, factors: Sequence[float]) -> Tensor:
    """Lines 3-7 of Algorithm 1 (``probe=slides``): the loss on ``batch`` at ``theta - f * eta * grad``, the gradient
    on the same batch, for each factor ``f`` (factors x 1, float64, CPU); ``.grad`` is left as it was."""
    model = trials.model
    with _eval_mode(model):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(trials.loss_fn(model, batch), [p for _, p in named], allow_unused=True)
        moved = {f"model.{n}": (p, g) for (n, p), g in zip(named, grads) if g is not None}
        return _losses_along(trials, [batch], factors, moved, -eta)


def lookahead_losses(trials: _Trials, batches: Sequence[Any], before: Sequence[Tensor],
                     factors: Sequence[float]) -> Tensor:
    """``probe=lookahead``: the loss on each of ``batches`` at ``before + f * (theta - before)`` for each factor
    ``f``, ``before`` the parameters before the optimizer's last step (factors x batches, float64, CPU)."""
    model = trials.model
    with _eval_mode(model), torch.no_grad():
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        moved = {f"model.{n}": (b, p.detach() - b) for (n, p), b in zip(named, before)}
        return _losses_along(trials, batches, factors, moved, 1.0)


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
    with 0). ``probe``: ``"lookahead"`` (default: the optimizer's last step scaled by each factor,
    scored on ``batches`` probe batches; score after an optimizer step) or ``"slides"`` (Algorithm 1:
    the plain gradient step on one probe batch, its own); see :mod:`lrpilot.controllers.factor`.
    ``factors``: 3, 5, 7 (the slides' Factor_3/5/7) or a list of factors > 0;
    ``norm`` and ``score``: a name (``"noise"``, the default with ``lookahead``, ``"minmax"``, ``"exp"``)
    or a function (``norm``: of the float64 losses, factors x probe batches; ``score``: of the
    normalised losses, giving weights > 0);
    ``bounds``: [min, max] of the LR (default [k0/1000, 10*k0]). ``keep_each_step=False``: the lookahead
    probe's parameters are copied only when you call :meth:`keep` (before the step that precedes a
    scoring point; the engine's controller does), not before every optimizer step. The scheduler counts optimizer
    steps for its record; :meth:`state_dict` is plain data for ``torch.load(weights_only=True)``.

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from lrpilot.controllers.factor_probe import FactorScheduler
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    >>> model = torch.nn.Linear(10, 3)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> def sample_batch(generator):
    ...     idx = torch.randint(len(y), (32,), generator=generator)
    ...     return x[idx], y[idx]
    >>> sched = FactorScheduler(opt, model, loss_fn=lambda m, b: F.cross_entropy(m(b[0]), b[1]),
    ...                         sample_batch=sample_batch, k0=0.05)
    >>> for epoch in range(3):
    ...     for i in range(0, 256, 32):
    ...         opt.zero_grad()
    ...         F.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
    ...         opt.step()
    ...     lr = sched.step()  # one scoring point per epoch
    >>> [p["step"] for p in sched.record()["points"]], opt.param_groups[0]["lr"] == lr
    ([8, 16, 24], True)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module,
                 loss_fn: Callable[[nn.Module, Any], Tensor], sample_batch: Callable[[torch.Generator], Any],
                 k0: float, *, probe: str | None = None, factors: Any = None, batches: int | None = None,
                 norm: Any = None, score: Any = None, bounds: Sequence[float] | None = None,
                 generator: torch.Generator | None = None, keep_each_step: bool = True):
        self.rule = FactorRule.of(TABLE.read({"k0": k0, "probe": probe, "factors": factors, "batches": batches,
                                              "norm": norm, "score": score, "bounds": bounds}))
        self.optimizer = optimizer
        self.sample_batch = sample_batch
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator
        self.eta = self.rule.k0
        self.cap = self.rule.bounds[1]  # lowered by back_off
        self.iterations = 0
        self.points: list[dict[str, Any]] = []
        self.backoffs: list[dict[str, Any]] = []
        self._trials = _Trials(model, loss_fn)
        ref = weakref.ref(self)  # weak: the optimizer may outlive the scheduler
        optimizer.register_step_post_hook(_step_counter(ref))
        self._before: list[Tensor] | None = None  # lookahead: the parameters before the optimizer's last step
        if self.rule.probe == "lookahead" and keep_each_step:
            optimizer.register_step_pre_hook(_keep_parameters(ref))
        self._write()

    def step(self) -> float:
        """One scoring point: probe the factors, move the LR, write it into the param groups; returns it."""
        r = self.rule
        if r.probe == "slides":
            losses = trial_losses(self._trials, self.sample_batch(self.generator), self.eta, r.factors)
        elif self._before is None:  # no optimizer step yet: none to scale
            return self.eta
        else:
            batches = [self.sample_batch(self.generator) for _ in range(r.batches)]
            losses = lookahead_losses(self._trials, batches, self._before, r.factors)
        eta, scores = r.next_eta(self.eta, losses)
        self.eta = min(eta, self.cap)
        self.points.append({"step": self.iterations, "eta": self.eta, "losses": losses.mean(1).tolist(),
                            "scores": scores.tolist()})
        self._write()
        return self.eta

    def can_back_off(self) -> bool:
        """Whether the LR is above its lower bound."""
        return self.eta > self.rule.bounds[0]

    def back_off(self, factor: float) -> float:
        """After the model went back to an earlier state (:mod:`lrpilot.controllers.guard`): the LR times
        ``factor`` (within the bounds), and the cap at half the LR that diverged, so it is not tried again; returns the
        new LR, written into the param groups."""
        lo = self.rule.bounds[0]
        self.cap = max(lo, min(self.cap, self.eta / 2))
        self.eta = max(lo, self.eta * factor)
        self.backoffs.append({"step": self.iterations, "eta": self.eta})
        self._write()
        return self.eta

    def keep(self) -> None:
        """Copy the parameters as the lookahead probe's starting point: before every optimizer step with
        ``keep_each_step`` (the default), or where the caller knows the next step ends at a scoring point."""
        params = [p.detach() for p in self._trials.model.parameters() if p.requires_grad]
        if self._before is None:
            self._before = [p.clone() for p in params]
        else:
            torch._foreach_copy_(self._before, params)

    def get_last_lr(self) -> list[float]:
        """The LR of each param group, as torch's schedulers report it."""
        return [self.eta] * len(self.optimizer.param_groups)

    def record(self) -> dict[str, Any]:
        """The LR trajectory, ``[[step, lr], ...]`` from k0 at step 0; k0, each scoring point's step, new eta,
        losses and scores, and each back-off's step and new eta."""
        moves = sorted(self.points + self.backoffs, key=lambda p: p["step"])  # stable: a point before a back-off
        trajectory = [[0, self.rule.k0]] + [[p["step"], p["eta"]] for p in moves]
        return {"trajectory": trajectory, "k0": self.rule.k0, "points": [dict(p) for p in self.points],
                "backoffs": [dict(b) for b in self.backoffs]}

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the LR and its cap, the optimizer steps counted, the points and back-offs so far, the probe
        generator's state."""
        return {"eta": self.eta, "cap": self.cap, "iterations": self.iterations,
                "points": [dict(p) for p in self.points], "backoffs": [dict(b) for b in self.backoffs],
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` and write its LR into the param groups."""
        self.eta, self.cap, self.iterations = float(state["eta"]), float(state["cap"]), int(state["iterations"])
        self.points = [dict(p) for p in state["points"]]
        self.backoffs = [dict(b) for b in state["backoffs"]]
        self.generator.set_state(state["generator"])
        self._write()

    def _write(self) -> None:
        set_lr(self.optimizer, self.eta)


def _step_counter(ref: weakref.ref) -> Callable[..., None]:
    """An optimizer step hook that counts steps for the scheduler ``ref``."""

    def hook(*_: Any) -> None:
        scheduler = ref()
        if scheduler is not None:
            scheduler.iterations += 1

    return hook


def _keep_parameters(ref: weakref.ref) -> Callable[..., None]:
    """An optimizer pre-step hook that copies the parameters for the scheduler ``ref``'s lookahead probe."""

    def hook(*_: Any) -> None:
        scheduler = ref()
        if scheduler is not None:
            scheduler.keep()

    return hook

