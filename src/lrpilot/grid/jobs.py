"""What a worker runs: a :class:`Job` (plain data) trained by :func:`run_job`, its failure recorded with its kind."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from lrpilot.distill import attach
from lrpilot.engine import train
from lrpilot.errors import DataError, LRPilotError
from lrpilot.grid.racing import Rung, raced
from lrpilot.records import RunResult
from lrpilot.search.run import is_search, run_search
from lrpilot.tasks import TaskRef


@dataclass(frozen=True)
class Job:
    """One training run for a worker: everything it needs, as plain data."""

    task: TaskRef
    policy: str
    seed: int
    steps: int
    eval_every: int | None = None
    device: str | None = None
    rungs: tuple[Rung, ...] = ()  # successive halving's checkpoints (:mod:`lrpilot.grid.racing`)


def run_job(job: Job) -> RunResult:
    """Train one job (in a worker; its task built once per worker), its adaptive trajectory distilled; a search
    runs its candidates one after another in that worker. An exception becomes a ``failed`` result whose record
    says the error and its kind (:func:`error_kind`)."""
    try:
        return _run_job(job)
    except Exception as e:  # noqa: BLE001 - recorded as the run's failure, with its kind
        return RunResult(job.task.name, job.policy, job.seed, "failed", {}, {}, {},
                         {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}",
                          "error_kind": error_kind(e)}, job.steps)


def error_kind(e: BaseException) -> str:
    """``"data"`` for the task's data that its model cannot train on (:class:`~lrpilot.errors.DataError`), trained
    again once the task changes (its fingerprint); ``"invocation"`` for an error of how a run was started (a check
    of lrpilot's: a bad flag or value; a device that does not exist or is out of memory), which a later bench
    retries; ``"run"`` for one of the run itself."""
    if isinstance(e, DataError):
        return "data"
    if isinstance(e, (LRPilotError, MemoryError)):
        return "invocation"
    text = f"{type(e).__name__} {e}".lower()
    if any(w in text for w in ("outofmemory", "out of memory", "device", "cuda", "mps", "xpu", "backend")):
        return "invocation"
    return "run"


def _run_job(job: Job) -> RunResult:
    if job.rungs:
        result = raced(job)
    elif is_search(job.policy):
        result = run_search(job.task, job.policy, seed=job.seed, steps=job.steps, eval_every=job.eval_every,
                            executor="inprocess", device=job.device)
    else:
        result = train(job.task.build(), job.policy, seed=job.seed, steps=job.steps, eval_every=job.eval_every,
                       device=job.device)
    return attach(result)
