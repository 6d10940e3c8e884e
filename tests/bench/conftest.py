"""Executors for the benchmark tests: in this process (real training, no start-up), or scripted results."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from lrpilot.execution.executors import InProcess
from lrpilot.policy.text import parse
from lrpilot.records import RunResult
from lrpilot.store import Store


class Inline(InProcess):
    """The in-process executor, keeping the jobs it was given (in ``jobs``)."""

    def __init__(self):
        self.jobs: list[Any] = []

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        super().run(fn, (self.jobs.append(job) or job for job in jobs), on_done, on_failed, tick, every)


class Scripted(Inline):
    """'Trains' FIX(k0=lr) jobs instantly: Top-1 = ``top1(lr)`` (None: the run diverged)."""

    def __init__(self, top1: Callable[[float], float | None]):
        super().__init__()
        self.top1 = top1

    def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0) -> None:
        def fake(job):
            value = self.top1(float(parse(job.policy).kwargs["k0"]))
            status = "diverged" if value is None else "ok"
            return RunResult(job.task.name, job.policy, job.seed, status, {"top1": value, "ac": 0.9, "cd": 0.1,
                             "cdac": 0.1, "ld": 0.01, "iters_at_best": job.steps, "n_param": 1},
                             {"iterations": job.steps, "wall_s": 0.0}, {}, {})
        super().run(fake, jobs, on_done, on_failed, tick, every)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.db") as s:
        yield s
