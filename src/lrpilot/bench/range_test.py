"""The LR range test: LRBench's decade search for a good range, and the exponential sweep of LR finders.

**Decade** (LRBench Section IV-V): FIX from ``start`` (0.1) down by 10x, a short budget each,
over seeds, until Top-1 has fallen at two decades in a row (or ``min_lr``); then a 1-2-5 sweep
around the best decade (best/5, best/2, 2 best, 5 best). A diverged or failed run counts as
chance level (100 / #classes). The good range ``[k_low, k_high]`` is the contiguous block of
measured LRs around the best whose mean Top-1 is within ``tolerance`` points of the best one;
when that block is the best LR alone, it is widened to the next smaller measured LR (the stable
side; the next larger one if the best is the smallest). The FIX runs are
stored runs of purpose ``range-test`` (apart from benchmarks); the summary is stored as the
analysis ``range-decade``.

**Sweep** (Smith's LR finder): one engine run per seed, the LR growing geometrically from ``lr_min``
to ``lr_max`` over ``steps`` iterations, the training loss smoothed (EMA, beta 0.98, bias
corrected), stopped once it exceeds 4x its minimum. Rule: the suggested LR is where the
smoothed loss falls fastest against log LR, before its minimum (the first 10% of points
skipped as start-up noise). One curve's steepest point is noisy, so the sweep is repeated over
seeds in parallel workers and the median suggestion is reported with its spread (min, max).
Stored as the analysis ``range-sweep``.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lrpilot.bench.runner import bench
from lrpilot.controllers.base import Context, Controller
from lrpilot.controllers.scheduler import set_lr
from lrpilot.engine import Run, RunConfig, budget
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.text import fmt_sig
from lrpilot.store import Storage
from lrpilot.tasks import TaskRef

SWEEP_RULE = ("steepest descent of the smoothed training loss against log LR, before the loss minimum "
              "(median over seeds; spread = min..max)")


def _fix(lr: float) -> str:
    return f"FIX(k0={fmt_sig(lr, 3)})"


def decade_test(store: Storage, task: str, *, seeds: tuple[int, ...] = (0, 1), steps: int | None = None,
                epochs: float | None = 2.0, start: float = 0.1, min_lr: float = 1e-6, tolerance: float = 1.0,
                data_dir: str | None = None, executor: Any = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """LRBench's decade range test on ``task`` (see the module); returns and stores its summary."""
    if not 0 < min_lr < start:
        raise LRPilotError(f"range test from start={start} down to min_lr={min_lr}: need 0 < min_lr < start")
    if not tolerance >= 0:
        raise LRPilotError(f"--tolerance {tolerance} must be >= 0 (Top-1 points)")
    task_obj = TaskRef(task, data_dir).build()
    total = budget(task_obj, steps, None if steps is not None else epochs)
    chance = 100.0 / (task_obj.num_classes or 100)
    top1: dict[float, list[float]] = {}

    def measure(lrs: list[float]) -> None:
        texts = {_fix(lr): lr for lr in lrs}
        done = bench(store, task, list(texts), seeds=seeds, steps=total, data_dir=data_dir, executor=executor,
                     progress=progress, purpose="range-test")
        for r in done.runs(store):
            ok = r.status == "ok" and (r.metrics or {}).get("top1") is not None
            top1.setdefault(texts[r.policy], []).append(r.metrics["top1"] if ok else chance)

    lr, falls, previous = start, 0, None
    with executor or LocalExecutor() as executor:
        while lr >= min_lr * (1 - 1e-9) and falls < 2:
            measure([lr])
            mean = statistics.fmean(top1[lr])
            falls = falls + 1 if previous is not None and mean < previous else 0
            previous, lr = mean, float(f"{lr / 10:.3g}")
        best = max(top1, key=lambda x: statistics.fmean(top1[x]))
        measure([x for x in (best / 5, best / 2, best * 2, best * 5) if x <= 1.0])
    points = [{"lr": x, "top1_mean": statistics.fmean(v), "top1_std": statistics.stdev(v) if len(v) > 1 else 0.0,
               "n": len(v)} for x, v in sorted(top1.items())]
    result = {"kind": "decade", "budget": total, "seeds": list(seeds), "tolerance": tolerance,
              "points": points, **_good_range(points, tolerance)}
    store.save_analysis(task_obj, "range-decade", f"budget={total} seeds={list(seeds)} start={start} "
                        f"tolerance={tolerance}", result)
    return result


def _good_range(points: list[dict[str, Any]], tolerance: float) -> dict[str, float]:
    """best_lr, k_low, k_high from points sorted by LR (see the module's rule)."""
    means = [p["top1_mean"] for p in points]
    i = max(range(len(points)), key=means.__getitem__)
    lo = hi = i
    while lo > 0 and means[lo - 1] >= means[i] - tolerance:
        lo -= 1
    while hi < len(points) - 1 and means[hi + 1] >= means[i] - tolerance:
        hi += 1
    if lo == hi:  # the best alone: add the next smaller LR (the stable side), or the next larger at the bottom
        lo, hi = (i - 1, i) if i > 0 else (i, min(len(points) - 1, i + 1))
    return {"best_lr": points[i]["lr"], "k_low": points[lo]["lr"], "k_high": points[hi]["lr"]}


@dataclass(frozen=True)
class SweepJob:
    """One exponential sweep for a worker."""

    task: str
    data_dir: str | None
    seed: int
    steps: int
    lr_min: float
    lr_max: float


def sweep_job(job: SweepJob) -> dict[str, Any]:
    """Run one exponential LR sweep (in a worker): the LRs, the smoothed losses and the suggestion.

    It trains through the engine one iteration at a time (:meth:`lrpilot.engine.Run.run_until`) with
    :class:`_Sweep` as the controller, until the sweep's own stop rule (the engine's divergence check is off
    and its one evaluation lies past the last step).
    """
    task = _LossKept(TaskRef(job.task, job.data_dir).build())
    sweep = _Sweep(job, task)
    run = Run(task, sweep, RunConfig(total=job.steps + 1, seed=job.seed, eval_every=job.steps + 1,
                                     diverge_factor=math.inf))
    while not sweep.done and run.status == "running":
        run.run_until(run.step + 1)
    return {"seed": job.seed, "lr": sweep.lrs, "loss": sweep.losses, "suggestion": suggest(sweep.lrs, sweep.losses)}


class _LossKept:
    """A task whose latest training loss is kept (``loss``) for the sweep, which needs every step's loss."""

    def __init__(self, task: Any):
        self.task, self.loss = task, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def train_loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        self.loss = self.task.train_loss(model, batch)
        return self.loss


class _Sweep(Controller):
    """The sweep as the engine's controller: the LR of step i is ``lr_min * growth**i``; after each step the loss is
    smoothed and kept with its LR, and the run ends once the smoothed loss is not finite or above 4x its minimum."""

    def __init__(self, job: SweepJob, task: _LossKept):
        self.job, self.task = job, task
        self.growth = (job.lr_max / job.lr_min) ** (1 / max(1, job.steps - 1))
        self.lr = job.lr_min
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.avg, self.best = 0.0, math.inf
        self.done = False  # the loss exploded, or the last step is taken

    def __str__(self) -> str:
        return f"lr-sweep(lr_min={self.job.lr_min}, lr_max={self.job.lr_max}, steps={self.job.steps})"

    def start(self, ctx: Context) -> None:
        self.optimizer = ctx.optimizer
        set_lr(self.optimizer, self.lr)

    def after_step(self) -> None:
        self.avg = 0.98 * self.avg + 0.02 * self.task.loss.item()
        smooth = self.avg / (1 - 0.98 ** (len(self.lrs) + 1))
        if not math.isfinite(smooth) or smooth > 4 * self.best:
            self.done = True
            return
        self.best = min(self.best, smooth)
        self.lrs.append(self.lr)
        self.losses.append(smooth)
        self.done = len(self.lrs) == self.job.steps
        self.lr = self.job.lr_min * self.growth ** len(self.lrs)
        set_lr(self.optimizer, self.lr)


def suggest(lrs: list[float], losses: list[float]) -> float | None:
    """The sweep's rule: the LR of the steepest fall of the loss against log LR, before the loss minimum."""
    end = int(np.argmin(losses)) + 1 if losses else 0
    skip = len(lrs) // 10
    if end - skip < 3:
        return None
    slope = np.gradient(np.asarray(losses[skip:end]), np.log(np.asarray(lrs[skip:end])))
    return float(lrs[skip + int(np.argmin(slope))])


def sweep_test(store: Storage, task: str, *, seeds: tuple[int, ...] = (0, 1, 2), steps: int = 100,
               lr_min: float = 1e-5, lr_max: float = 10.0, data_dir: str | None = None, executor: Any = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The exponential sweep over ``seeds`` (see the module); returns and stores the suggestion and spread."""
    if not 0 < lr_min < lr_max:
        raise LRPilotError(f"sweep from lr_min={lr_min} to lr_max={lr_max}: need 0 < lr_min < lr_max")
    if steps < 10:
        raise LRPilotError(f"--sweep-steps {steps} is too few for a loss curve: use >= 10")
    task_obj = TaskRef(task, data_dir).build()
    curves: list[dict[str, Any]] = []
    say = progress or (lambda line: None)

    def done(job: SweepJob, curve: dict[str, Any]) -> None:
        curves.append(curve)
        s = curve["suggestion"]
        say(f"sweep seed {job.seed}: {len(curve['lr'])} iterations, suggested LR "
            + ("none (the loss never fell)" if s is None else f"{s:.3g}"))

    def failed(job: SweepJob, reason: str) -> None:
        raise LRPilotError(f"the LR sweep of seed {job.seed} failed: {reason.splitlines()[0]}")

    jobs = [SweepJob(task, data_dir, s, steps, lr_min, lr_max) for s in dict.fromkeys(seeds)]
    (executor or LocalExecutor(min(len(jobs), os.cpu_count() or 1))).run(sweep_job, iter(jobs), done, failed)
    curves.sort(key=lambda c: c["seed"])
    found = [c["suggestion"] for c in curves if c["suggestion"] is not None]
    median = math.exp(statistics.median([math.log(x) for x in found])) if found else None
    result = {"kind": "sweep", "rule": SWEEP_RULE, "steps": steps, "lr_min": lr_min, "lr_max": lr_max,
              "curves": curves, "suggestion": median,
              "spread": [min(found), max(found)] if found else None}
    store.save_analysis(task_obj, "range-sweep", f"steps={steps} seeds={list(seeds)} lr_min={lr_min} "
                        f"lr_max={lr_max}", result)
    return result


def latest(store: Storage, task: str, kind: str = "range-decade") -> dict[str, Any] | None:
    """The newest stored range test of ``kind`` for ``task``, or None."""
    found = store.analyses(task=task, kind=kind)
    return found[-1]["result"] if found else None
