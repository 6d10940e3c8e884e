"""``lrpilot tune``: the one command for a new task: range test, recommendation, benchmark, adaptive methods.

Steps, all stored, so that a second call reuses what the first measured:

1. the decade range test (one seed, one epoch per LR) unless one is stored;
2. the recommendation (the task's own best stored policies, a similar task's, or the LRBench suite
   scaled to the range test), then the adaptive methods from the range test's best LR, bounded
   by its good range: ``stpt(k0=best, bounds=[k_low / 10, k_high])``, ``factor(...)`` the same,
   ``autodrop(k0=best, rho=0.2)`` (the paper's rho);
3. a benchmark of these candidates at the task's budget, interleaved (recommended, adaptive,
   recommended, ...) and cut to what the compute budget allows, in parallel workers;
4. the winner by utility (mean Top-1 over seeds, then AC, CD, CDAC), as replayable text: a fixed
   policy as it is, an adaptive run's LR trajectory as its distilled piecewise policy.

The budget counts epoch-equivalents of compute (samples trained over the training set's size):
the range test's runs and every candidate, a search's probes included. Candidates whose
estimated cost no longer fits are left out, and said so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from lrpilot.bench.range_test import decade_test, latest
from lrpilot.bench.rank import rank
from lrpilot.bench.recommend import recommend, replayable
from lrpilot.bench.runner import bench, canonical_policies
from lrpilot.engine import budget as iterations_of
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.text import fmt_sig, parse
from lrpilot.store import Storage
from lrpilot.tasks import TaskRef

_AUTODROP_K_MIN = 1e-4  # AutoDrop's default floor (k_min), which must be below k0
_STPT_COST = 1.6  # STPT's epoch-equivalents per epoch with 8 LRs and alpha 0.08: 8 x 0.08 + 0.92, rounded up


@dataclass
class TuneResult:
    """The winner of a tune, what it tried and what it spent."""

    task: str
    best: str  # replayable policy text
    trained_as: str  # the text the winning run was trained under (an adaptive method's own text)
    metrics: dict[str, Any]  # top1_mean, top1_std of the winner
    candidates: list[str]
    left_out: list[str]
    epoch_equivalents: float
    budget: float
    range: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        """Lines for the terminal."""
        m = self.metrics
        lines = [f"{self.task}: best policy {self.best}",
                 f"  Top-1 {m['top1_mean']:.2f} +- {m['top1_std']:.2f} % (mean over seeds)"
                 if m.get("top1_mean") is not None else "  (no finished run)"]
        if self.trained_as != self.best:
            lines.append(f"  found by {self.trained_as}; the text above replays its LR trajectory")
        lines.append(f"  range test: good range [{self.range['k_low']:g}, {self.range['k_high']:g}], "
                     f"best constant LR {self.range['best_lr']:g}")
        lines.append(f"  {len(self.candidates)} candidates, {self.epoch_equivalents:.1f} of {self.budget:g} "
                     "epoch-equivalents of compute")
        if self.left_out:
            lines.append(f"  left out for the budget: {', '.join(self.left_out)}")
        lines.append(f"  train with it: lrpilot train --task {self.task} --policy \"{self.best}\"")
        return "\n".join(lines)


def tune(store: Storage, task: str | TaskRef, *, budget: float | None = None, seeds: tuple[int, ...] = (0,),
         data_dir: str | None = None, executor: Any = None,
         progress: Callable[[str], None] | None = None) -> TuneResult:
    """Tune ``task`` (a name with ``data_dir``, or a :class:`TaskRef`) within ``budget`` epoch-equivalents
    (default: 8 runs of the task's budget); see the module."""
    ref = TaskRef.of(task, data_dir)
    task_obj = ref.build()
    budget = 8.0 * task_obj.epochs if budget is None else budget
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise LRPilotError(f"--budget {budget!r} must be a number of epoch-equivalents > 0")
    with executor or LocalExecutor() as executor:  # one set of workers for the range test and the candidates
        return _tune(store, ref, budget, seeds, executor, progress)


def _tune(store, ref, budget, seeds, executor, progress) -> TuneResult:
    say = progress or (lambda line: None)
    task_obj = ref.build()
    if budget < len(seeds) * task_obj.epochs:  # refused before the range test spends any of it
        raise _too_small(budget, task_obj, seeds)
    range_cost = 0.0
    found = latest(store, task_obj.name)
    if found is None:
        say("range test (decade search, one seed, one epoch per LR)")
        found = decade_test(store, ref.name, seeds=(0,), epochs=1.0, data_dir=ref.data_dir, executor=executor,
                            progress=progress)
        range_cost = sum(p["n"] for p in found["points"]) * found["budget"] / task_obj.iters_per_epoch
    best, low, high = fmt_sig(found["best_lr"], 3), fmt_sig(found["k_low"] / 10, 3), fmt_sig(found["k_high"], 3)
    adaptive = [f"stpt(k0={best}, bounds=[{low}, {high}])", f"factor(k0={best}, bounds=[{low}, {high}])",
                _autodrop(found["best_lr"])]
    rec = recommend(store, ref, top=4, range_test=False)
    say(f"recommendation: {rec.note}")

    def estimate(text: str) -> float:
        return len(seeds) * task_obj.epochs * (_STPT_COST if parse(text).name == "stpt" else 1.0)

    candidates, left_out, planned = [], [], range_cost
    for text in canonical_policies(_interleave([p["policy"] for p in rec.policies], adaptive)):
        fits = planned + estimate(text) <= budget
        (candidates if fits else left_out).append(text)
        planned += estimate(text) if fits else 0.0
    if not candidates:
        raise _too_small(budget, task_obj, seeds, range_cost)
    total = iterations_of(task_obj, None, None)
    runs = bench(store, ref, candidates, seeds=seeds, steps=total, executor=executor, progress=progress).runs(store)
    top = rank(runs, "utility", task=task_obj.name).rows[0]
    return TuneResult(task_obj.name, replayable(top), top.policy,
                      {"top1_mean": top.mean["top1"], "top1_std": top.std["top1"]}, candidates, left_out,
                      range_cost + sum(_epoch_equivalents(r, task_obj) for r in runs), budget,
                      {k: found[k] for k in ("k_low", "k_high", "best_lr")})


def _too_small(budget: float, task_obj: Any, seeds: tuple[int, ...], spent: float = 0.0) -> LRPilotError:
    """The error for a budget that fits no candidate after ``spent`` epoch-equivalents of range test."""
    need = spent + len(seeds) * task_obj.epochs
    return LRPilotError(f"--budget {budget:g} epoch-equivalents does not fit one run of {task_obj.name} "
                        f"({task_obj.epochs:g} epochs x {len(seeds)} seed(s)"
                        + (f" after a range test of {spent:.1f}" if spent else "") + f"): raise it to {need:.4g} or more")


def _autodrop(best_lr: float) -> str:
    """AutoDrop from the range test's best LR with the paper's rho; its floor ``k_min`` (default 1e-4) must stay
    below k0, so a best LR at or below 1e-4 gets a floor a decade under it."""
    k0 = float(fmt_sig(best_lr, 3))
    if k0 > _AUTODROP_K_MIN:
        return f"autodrop(k0={fmt_sig(k0, 3)}, rho=0.2)"
    return f"autodrop(k0={fmt_sig(k0, 3)}, rho=0.2, k_min={fmt_sig(k0 / 10, 3)})"


def _interleave(fixed: list[str], adaptive: list[str]) -> list[str]:
    out: list[str] = []
    for i in range(max(len(fixed), len(adaptive))):
        out += fixed[i:i + 1] + adaptive[i:i + 1]
    return list(dict.fromkeys(out))


def _epoch_equivalents(run: Any, task: Any) -> float:
    cost = run.cost or {}
    if cost.get("epoch_equivalents") is not None:
        return float(cost["epoch_equivalents"])
    return float(cost.get("iterations", 0)) / task.iters_per_epoch
