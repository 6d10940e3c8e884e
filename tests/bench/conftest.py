"""Executors for the benchmark tests: in this process (real training, no start-up), or scripted results."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from lrpilot.policy.base import build
from lrpilot.execution.executors import InProcess
from lrpilot.outcomes import encode
from lrpilot.policy.text import parse
from lrpilot.records import RunResult
from lrpilot.store import Store


class Inline(InProcess):
    """The in-process executor, keeping the jobs it was given (in ``jobs``)."""

    def __init__(self):
        self.jobs: list[Any] = []

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        super().run(fn, (self.jobs.append(job) or job for job in jobs), on_done, on_failed, tick, every)


def correct(quality: float, seed: int, m: int = 450) -> np.ndarray:
    """A deterministic correctness vector with ``quality`` of ``m`` right, the same for the same quality and seed."""
    rng = np.random.default_rng([round(quality * 1000), seed])
    out = np.zeros(m, bool)
    out[rng.permutation(m)[:round(quality * m)]] = True
    return out


class Graded(Inline):
    """'Trains' instantly: a job's validation Top-1 is ``100 quality(job)`` at every evaluation (every ``every``
    iterations), its final outcomes on 450 examples have that quality (None: the run diverged); a job with rungs
    stops ``pruned`` at the first rung that prunes it, as :func:`lrpilot.grid.racing.raced` does. ``record(job)``
    gives an adaptive job's record (e.g. its distilled trajectory)."""

    def __init__(self, quality: Callable[[Any], float | None], every: int = 10,
                 record: Callable[[Any], dict] = lambda job: {}):
        super().__init__()
        self.quality, self.every, self.record = quality, every, record

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        def fake(job):
            q = self.quality(job)
            if q is None:
                return RunResult(job.task.name, job.policy, job.seed, "diverged", {"n_param": 1},
                                 {"iterations": 1, "epoch_equivalents": 1 / job.task.build().iters_per_epoch}, {},
                                 {}, job.steps)
            for rung in job.rungs:
                if rung.prunes(100 * q):
                    return self.result(job, q, rung.iteration, "pruned", {
                        "pruned_at": rung.iteration, "rung_score": 100 * q, "rung_threshold": rung.threshold,
                        "rung_runs": len(rung.scores)})
            return self.result(job, q, job.steps, "ok", self.record(job))
        super().run(fake, jobs, on_done, on_failed, tick, every)

    def result(self, job, q: float, stop: int, status: str, record: dict) -> RunResult:
        its = list(range(self.every, stop + 1, self.every)) or [stop]
        curves = {"iteration": its, "val_top1": [100 * q] * len(its)}
        cost = {"iterations": stop, "epoch_equivalents": stop / job.task.build().iters_per_epoch, "wall_s": 0.0}
        if status != "ok":
            return RunResult(job.task.name, job.policy, job.seed, status, {"n_param": 1}, cost, curves, record,
                             job.steps)
        val, test = correct(q, job.seed), correct(q, job.seed + 1000)
        metrics = {"val_top1": 100 * val.mean(), "top1": 100 * test.mean(),
                   "n_param": build(parse(job.policy)).n_param, "val_iters_at_best": its[0],
                   "ac": 0.9, "cd": 0.1, "cdac": 0.1}
        return RunResult(job.task.name, job.policy, job.seed, status, metrics, cost, curves, record, job.steps,
                         outcomes={"val": encode(val), "test": encode(test)})


class Scripted(Inline):
    """'Trains' FIX(k0=lr) jobs instantly: Top-1 = ``top1(lr)`` (None: the run diverged)."""

    def __init__(self, top1: Callable[[float], float | None]):
        super().__init__()
        self.top1 = top1

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        def fake(job):
            value = self.top1(float(parse(job.policy).kwargs["k0"]))
            status = "diverged" if value is None else "ok"
            return RunResult(job.task.name, job.policy, job.seed, status, {"top1": value, "val_top1": value,
                             "ac": 0.9, "cd": 0.1, "cdac": 0.1, "ld": 0.01, "iters_at_best": job.steps, "n_param": 1},
                             {"iterations": job.steps, "wall_s": 0.0}, {}, {})
        super().run(fake, jobs, on_done, on_failed, tick, every)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.db") as s:
        yield s
