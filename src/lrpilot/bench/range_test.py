"""The LR range test: LRBench's decade search for a good range, the exponential sweep of LR finders, one answer.

**Decade** (LRBench Section IV-V): FIX from ``start`` (0.1) down by 10x, a short budget each,
over seeds, until validation Top-1 has fallen at two decades in a row (or ``min_lr``); then a 1-2-5 sweep
around the best decade (best/5, best/2, 2 best, 5 best). A diverged or failed run counts as
chance level (100 / #classes). Short runs are noisy, so before the range is cut, each LR in or
next to the good range whose Top-1 std over seeds exceeds ``spread`` points gets more seeds (one
more batch of ``len(seeds)`` at a time, up to ``max_seeds``), and the range is cut again. The good
range ``[k_low, k_high]`` is the contiguous block of measured LRs around the best whose mean Top-1
is within ``tolerance`` points of the best one; when that block is the best LR alone, it is widened
to the next smaller measured LR (the stable side; the next larger one if the best is the smallest).
Each LR's spread (mean, std, n) is kept. The FIX runs are stored runs of purpose ``range-test``
(apart from benchmarks); the summary is stored as the analysis ``range-decade``.

**Sweep** (Smith's LR finder): one engine run per seed, the LR growing geometrically from ``lr_min``
to ``lr_max`` over ``steps`` iterations, the training loss smoothed (EMA, beta 0.98, bias
corrected), stopped once it exceeds 4x its minimum. Rule (:data:`SWEEP_RULE`): the LR at the
smoothed loss minimum divided by 10; the steepest-fall rule of LR finders lands 2-5x above the
largest constant LR that trains (``benchmarks/range_test_quality.py``). The sweep is repeated
over seeds in parallel workers and the median suggestion is reported with its spread (min, max).
Stored as the analysis ``range-sweep``.

The decade search returns a :class:`RangeTestResult`; the sweep, a :class:`SweepResult`.

**Answer** (:func:`answer`): one recommended constant LR, ``{"lr", "method", "why"}``. The decade
search trains each LR, so the lower end ``k_low`` of its good range is the answer (the lower end:
a short run favours larger LRs than the full budget, where its best LR can lose a few points),
whether the sweep's suggestion lies inside the good range (method ``both``) or not (``decade``);
the sweep's suggestion is used (``sweep``) only when no decade LR trained above chance level +
``tolerance``, or when the sweep ran alone.
"""

from __future__ import annotations

import math
import os
import statistics
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Self

import numpy as np
import torch

from lrpilot.grid.runner import bench
from lrpilot.controllers.base import Context, Controller
from lrpilot.controllers.scheduler import set_lr
from lrpilot.engine import Run, RunConfig, budget
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.text import fmt_sig
from lrpilot.progress import expect_runs, report_run
from lrpilot.store import Storage
from lrpilot.tasks import TaskRef

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task

SWEEP_RULE = "LR at the smoothed training loss minimum / 10 (median over seeds; spread = min..max)"


class _Summary:
    """What :class:`RangeTestResult` and :class:`SweepResult` share: read back from the dict the store keeps, and
    that dict's ``result[key]`` for one release."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """A stored summary (one written by hand may lack fields: their defaults)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        """The dict form's ``result[key]``, for one release: use the attribute."""
        warnings.warn(f"a range test's result is a {type(self).__name__}: use result.{key}, not result[{key!r}] "
                      "(the dict form goes in the next release)", DeprecationWarning, stacklevel=2)
        return self.to_dict()[key]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RangeTestResult(_Summary):
    """A decade range test's summary (see the module): the good range ``[k_low, k_high]``, the best short run's LR,
    each measured LR's spread over seeds (``points``), the settings, and the :func:`answer`. Stored as
    :meth:`to_dict` (the analysis ``range-decade``), read back by :meth:`from_dict`."""

    k_low: float
    k_high: float
    best_lr: float
    points: list[dict[str, Any]] = field(default_factory=list)
    budget: int | None = None
    seeds: list[int] = field(default_factory=list)
    tolerance: float | None = None
    spread: float | None = None
    max_seeds: int | None = None
    chance: float | None = None
    answer: dict[str, Any] | None = None
    kind: str = "decade"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary, as the store keeps it."""
        return {"kind": self.kind, "budget": self.budget, "seeds": self.seeds, "tolerance": self.tolerance,
                "spread": self.spread, "max_seeds": self.max_seeds, "chance": self.chance, "points": self.points,
                "best_lr": self.best_lr, "k_low": self.k_low, "k_high": self.k_high, "answer": self.answer}


@dataclass(frozen=True)
class SweepResult(_Summary):
    """An exponential sweep's summary (see the module): the suggested LR (the median of the seeds'; None when no
    loss fell), their ``spread`` ``[min, max]``, each seed's curve (``{"seed", "lr", "loss", "suggestion"}``), the
    settings, and the :func:`answer`. Stored as :meth:`to_dict` (the analysis ``range-sweep``), read back by
    :meth:`from_dict`."""

    suggestion: float | None = None
    spread: list[float] | None = None
    curves: list[dict[str, Any]] = field(default_factory=list)
    steps: int | None = None
    lr_min: float | None = None
    lr_max: float | None = None
    rule: str = SWEEP_RULE
    answer: dict[str, Any] | None = None
    kind: str = "sweep"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary, as the store keeps it."""
        return {"kind": self.kind, "rule": self.rule, "steps": self.steps, "lr_min": self.lr_min,
                "lr_max": self.lr_max, "curves": self.curves, "suggestion": self.suggestion, "spread": self.spread,
                "answer": self.answer}


def _fix(lr: float) -> str:
    return f"FIX(k0={fmt_sig(lr, 3)})"


def decade_test(store: Storage, task: str | TaskRef | Task, *, seeds: tuple[int, ...] = (0, 1), steps: int | None = None,
                epochs: float | None = 2.0, start: float = 0.1, min_lr: float = 1e-6, tolerance: float = 1.0,
                spread: float = 2.0, max_seeds: int = 6, sweep: SweepResult | None = None,
                data_dir: str | None = None, executor: Any = None,
                progress: Callable[[str], None] | None = None) -> RangeTestResult:
    """LRBench's decade range test on ``task`` (see the module); returns and stores its summary with the
    :func:`answer`, which weighs ``sweep`` (a :func:`sweep_test` result) when one is given."""
    if not 0 < min_lr < start:
        raise LRPilotError(f"range test from start={start} down to min_lr={min_lr}: need 0 < min_lr < start")
    if not tolerance >= 0:
        raise LRPilotError(f"--tolerance {tolerance} must be >= 0 (Top-1 points)")
    if not spread >= 0:
        raise LRPilotError(f"--spread {spread} must be >= 0 (Top-1 points of std over seeds)")
    seeds = tuple(dict.fromkeys(seeds))
    ref = TaskRef.of(task, data_dir)
    task_obj = ref.build()
    total = budget(task_obj, steps, None if steps is not None else epochs)
    chance = 100.0 / (task_obj.num_classes or 100)
    scores: dict[float, dict[int, float]] = {}  # LR -> seed -> Top-1

    def measure(lrs: list[float], batch: tuple[int, ...] = seeds) -> None:
        texts = {_fix(lr): lr for lr in lrs}
        done = bench(store, ref, list(texts), seeds=batch, steps=total, executor=executor,
                     progress=progress, purpose="range-test")
        for r in done.runs(store):
            value = _score(r.metrics) if r.status == "ok" else None
            scores.setdefault(texts[r.policy], {})[r.seed] = chance if value is None else value

    lr, falls, previous = start, 0, None
    with executor or LocalExecutor() as executor:
        while lr >= min_lr * (1 - 1e-9) and falls < 2:
            measure([lr])
            mean = statistics.fmean(scores[lr].values())
            falls = falls + 1 if previous is not None and mean < previous else 0
            previous, lr = mean, float(f"{lr / 10:.3g}")
        best = max(scores, key=lambda x: statistics.fmean(scores[x].values()))
        measure([x for x in (best / 5, best / 2, best * 2, best * 5) if x <= 1.0])
        more = seeds + tuple(range(max(seeds) + 1, max(seeds) + 1 + max_seeds))  # the seeds added, in order
        while noisy := _noisy(_points(scores), tolerance, spread, max_seeds):
            for n in sorted({len(scores[x]) for x in noisy}):
                measure([x for x in noisy if len(scores[x]) == n], more[n:min(max_seeds, n + len(seeds))])
    points = _points(scores)
    result = RangeTestResult(**_good_range(points, tolerance), points=points, budget=total, seeds=list(seeds),
                             tolerance=tolerance, spread=spread, max_seeds=max_seeds, chance=chance)
    result = replace(result, answer=answer(result, sweep))
    store.save_analysis(task_obj, "range-decade", f"budget={total} seeds={list(seeds)} start={start} "
                        f"tolerance={tolerance} spread={spread} max_seeds={max_seeds}", result.to_dict())
    return result


def _score(metrics: dict[str, Any] | None) -> float | None:
    """The value the decade search selects on (higher is better), or None if the run has none."""
    return (metrics or {}).get("val_top1")  # selection uses the validation split, never the test split


def _points(scores: dict[float, dict[int, float]]) -> list[dict[str, Any]]:
    """Each measured LR's spread over seeds (mean, std, n), sorted by LR."""
    return [{"lr": x, "top1_mean": statistics.fmean(v.values()),
             "top1_std": statistics.stdev(v.values()) if len(v) > 1 else 0.0, "n": len(v)}
            for x, v in sorted(scores.items())]


def _noisy(points: list[dict[str, Any]], tolerance: float, spread: float, max_seeds: int) -> list[float]:
    """The LRs in or next to the good range whose Top-1 std exceeds ``spread`` and that have room for more seeds."""
    lrs = [p["lr"] for p in points]
    good = _good_range(points, tolerance)
    lo, hi = max(0, lrs.index(good["k_low"]) - 1), lrs.index(good["k_high"]) + 1
    return [p["lr"] for p in points[lo:hi + 1] if p["top1_std"] > spread and p["n"] < max_seeds]


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

    task: str | TaskRef
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
    task = _LossKept(TaskRef.of(job.task, job.data_dir).build())
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
    """The sweep's rule: the LR at the loss minimum / 10, the first 10% of the curve skipped as start-up noise;
    None if the minimum lies within 2 points of that start (the loss never fell)."""
    skip = len(lrs) // 10
    if len(losses) - skip < 3:
        return None
    low = skip + int(np.argmin(losses[skip:]))
    return float(lrs[low]) / 10 if low - skip >= 2 else None


def sweep_test(store: Storage, task: str | TaskRef | Task, *, seeds: tuple[int, ...] = (0, 1, 2), steps: int = 100,
               lr_min: float = 1e-5, lr_max: float = 10.0, data_dir: str | None = None, executor: Any = None,
               progress: Callable[[str], None] | None = None) -> SweepResult:
    """The exponential sweep over ``seeds`` (see the module); returns and stores the suggestion and spread."""
    if not 0 < lr_min < lr_max:
        raise LRPilotError(f"sweep from lr_min={lr_min} to lr_max={lr_max}: need 0 < lr_min < lr_max")
    if steps < 10:
        raise LRPilotError(f"--sweep-steps {steps} is too few for a loss curve: use >= 10")
    ref = TaskRef.of(task, data_dir)
    task_obj = ref.build()
    curves: list[dict[str, Any]] = []

    def done(job: SweepJob, curve: dict[str, Any]) -> None:
        curves.append(curve)
        s = curve["suggestion"]
        report_run(progress, f"sweep seed {job.seed}: {len(curve['lr'])} iterations, suggested LR "
                   + ("none (the loss never fell)" if s is None else f"{s:.3g}"), policy=f"sweep seed {job.seed}",
                   status="ok", epochs=steps / task_obj.iters_per_epoch)

    def failed(job: SweepJob, reason: str) -> None:
        raise LRPilotError(f"the LR sweep of seed {job.seed} failed: {reason.splitlines()[0]}")

    jobs = [SweepJob(ref, data_dir, s, steps, lr_min, lr_max) for s in dict.fromkeys(seeds)]
    expect_runs(progress, len(jobs))
    (executor or LocalExecutor(min(len(jobs), os.cpu_count() or 1))).run(sweep_job, iter(jobs), done, failed)
    curves.sort(key=lambda c: c["seed"])
    found = [c["suggestion"] for c in curves if c["suggestion"] is not None]
    median = math.exp(statistics.median([math.log(x) for x in found])) if found else None
    result = SweepResult(median, [min(found), max(found)] if found else None, curves, steps, lr_min, lr_max)
    result = replace(result, answer=answer(None, result))
    store.save_analysis(task_obj, "range-sweep", f"steps={steps} seeds={list(seeds)} lr_min={lr_min} "
                        f"lr_max={lr_max}", result.to_dict())
    return result


def answer(decade: RangeTestResult | None, sweep: SweepResult | None) -> dict[str, Any]:
    """One recommended constant LR from the results of either test or both: ``{"lr", "method", "why"}`` (see the module)."""
    s = sweep.suggestion if sweep else None
    said = f"the sweep's {s:.3g} ({SWEEP_RULE})" if s is not None else "the sweep gave no suggestion"
    if decade is None:
        return {"lr": s, "method": "sweep", "why": said if s is not None else
                f"{said} (the loss never fell): widen --lr-min/--lr-max or add --sweep-steps"}
    best, low, high = decade.best_lr, decade.k_low, decade.k_high
    top = max(p["top1_mean"] for p in decade.points)
    if top <= decade.chance + decade.tolerance:  # nothing trained: the decade search did not resolve
        return {"lr": s, "method": "sweep", "why": f"no decade LR trained above chance level ({decade.chance:g}% "
                f"+ {decade.tolerance:g}); {said}" + ("" if s is not None else ": try a larger --start or --epochs")}
    search = (f"the decade search's good range [{low:g}, {high:g}] (best {best:g}, Top-1 {top:.2f}), its lower end "
              f"{low:g}: a short run favours larger LRs than the full budget does")
    if sweep is None:
        return {"lr": low, "method": "decade", "why": search}
    if s is not None and low <= s <= high:
        return {"lr": low, "method": "both", "why": f"the methods agree: {said} lies in the good range; {search}"}
    where = "" if s is None else f" lies {'above' if s > high else 'below'} the good range"
    return {"lr": low, "method": "decade", "why": f"the methods disagree: {said}{where}; the decade search wins, "
            f"since it trains each LR while the sweep reads a short loss curve: {search}"}


def latest(store: Storage, task: str, kind: str = "range-decade") -> Any:
    """The newest stored range test of ``kind`` for ``task``, a :class:`RangeTestResult` (``range-decade``) or a
    :class:`SweepResult` (``range-sweep``), or None."""
    if kind not in _KINDS:
        raise LRPilotError(f"unknown range test kind {kind!r}: use {' or '.join(_KINDS)}")
    found = store.analyses(task=task, kind=kind)
    return _KINDS[kind].from_dict(found[-1]["result"]) if found else None


_KINDS = {"range-decade": RangeTestResult, "range-sweep": SweepResult}  # the analyses' kinds and their summaries
