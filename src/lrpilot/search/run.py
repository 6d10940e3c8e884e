"""Running a search: its main run (the trajectory it keeps), its executor, and the compute it spends.

:func:`run_search` is what ``lrpilot train --policy "stpt(...)"`` calls. The result is an ordinary
:class:`lrpilot.records.RunResult` (metrics and curves of the kept trajectory), whose cost counts
every candidate: ``iterations`` and ``samples`` trained in all, ``epoch_equivalents`` (samples
over the training set's size), ``wall_s`` and ``workers``; ``epochs`` is the trajectory's length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any, Iterator

import torch

from lrpilot.engine import RunConfig, budget, epoch_samples
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import Executor, InProcess, make_executor
from lrpilot.execution.parallel import data_parallel, single
from lrpilot.execution.snapshot import pack, unpack
from lrpilot.policy.base import build, lookup
from lrpilot.policy.text import parse
from lrpilot.records import RunResult
from lrpilot.search.candidate import Candidate, Outcome, new_run, resolve, run_candidate, segment
from lrpilot.tasks import TaskRef
from lrpilot.tasks.base import Task


def is_search(text: str | None) -> bool:
    """Whether ``text`` names a search (``stpt(...)``, ``alr(...)``) rather than a policy or controller."""
    return isinstance(text, str) and lookup(parse(text).name).kind == "search"


class Search:
    """One search in progress: the main run, which holds the kept trajectory, and the candidates it branches."""

    def __init__(self, source: Any, spec: Any, executor: Executor, config: RunConfig):
        self.source, self.executor = source, executor
        self.main = new_run(source, str(spec), spec.k0, spec.n_param,
                            dataclasses.replace(config, progress=config.progress and executor.leader))
        # the candidates' settings: the main run's, on the device it resolved, without a progress bar
        self.config = dataclasses.replace(config, device=str(self.main.device), progress=False)
        if executor.distributed:
            data_parallel(self.main)
        self.iterations = self.samples = 0
        self.clock = time.perf_counter()

    @property
    def iters_per_epoch(self) -> int:
        """Iterations in an epoch of the task's training part."""
        return self.main.task.iters_per_epoch

    @property
    def total(self) -> int:
        """The budget of the main run in iterations."""
        return self.config.total

    @property
    def running(self) -> bool:
        """Whether the main run has not diverged."""
        return self.main.status == "running"

    def snapshot(self) -> bytes:
        """The main run's state now."""
        return pack(self.main.state())

    def branch(self, starts: list[tuple[bytes, float]], until: int, score: str) -> list[Outcome]:
        """Train a candidate from each (snapshot, LR) up to iteration ``until`` on the executor; their outcomes."""
        m = self.main
        candidates = [Candidate(self.source, snapshot, lr, until, score, m.policy_text, m.controller.n_param,
                                self.config) for snapshot, lr in starts]
        outcomes = self.executor.map(run_candidate, candidates)
        self.iterations += sum(o.iterations for o in outcomes)
        self.samples += sum(o.samples for o in outcomes)
        return outcomes

    def adopt(self, outcome: Outcome) -> None:
        """Continue the main run from a candidate's end."""
        self.main.restore(unpack(outcome.snapshot))

    def advance(self, lr: float, until: int) -> None:
        """Train the main run with ``lr`` up to iteration ``until`` (data-parallel under torchrun)."""
        iterations, samples = segment(self.main, lr, until)
        self.iterations += iterations
        self.samples += samples

    @contextlib.contextmanager
    def epoch(self, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Record ``row`` (filled in by the caller) as one epoch of the search, with its iterations, samples
        and wall time, in the main run's record."""
        clock, iterations, samples = time.perf_counter(), self.iterations, self.samples
        yield row
        row.update(iterations=self.iterations - iterations, samples=self.samples - samples,
                   wall_s=time.perf_counter() - clock)
        self.main.controller.epochs.append(row)

    def finish(self) -> RunResult:
        """The kept trajectory's result (metrics and outcomes of its final model), with the whole search's cost."""
        result = self.main.run()
        n = epoch_samples(self.main.task)
        result.cost.update(iterations=self.iterations, samples=self.samples, epoch_equivalents=self.samples / n,
                           wall_s=time.perf_counter() - self.clock, workers=self.executor.workers)
        return result


def run_search(task: str | TaskRef | Task, text: str, *, seed: int = 0, steps: int | None = None, epochs: float | None = None,
               eval_every: int | None = None, data_dir: str | None = None, executor: str | Executor | None = None,
               workers: int | None = None, diverge_factor: float = 10.0, device: str | None = None,
               progress: bool = False) -> RunResult | None:
    """Run the search ``text`` (``stpt(...)``, ``alr(...)``) on ``task`` and return its run (None on ranks > 0).

    ``task`` is a task name (or ``module:function``) or a :class:`TaskRef`, which every executor can
    rebuild in its workers, or a Task object (in-process only). ``executor``: "inprocess", "local", "ray", "torchrun" or an
    :class:`Executor` the caller owns; default: torchrun under ``torchrun``, else local with
    ``workers`` > 1, else in-process.
    """
    if not is_search(text):
        raise LRPilotError(f"{text!r} is not a search; searches are stpt(...) and alr(...) (lrpilot policies), "
                           "a policy or controller trains with lrpilot.engine.train")
    spec = build(parse(text))
    ex = executor if isinstance(executor, Executor) else make_executor(executor, workers)
    with ex:  # its workers serve every epoch's candidates
        if isinstance(task, (str, TaskRef)):
            source: Any = TaskRef.of(task, data_dir)
        elif isinstance(ex, InProcess):
            source = task
        else:
            raise LRPilotError(f"the {type(ex).__name__} executor rebuilds the task in each worker from its name; "
                               f"give the task's name (or module:function), not a {type(task).__name__} object")
        if ex.distributed and torch.cuda.is_available() and device is None:
            device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        config = RunConfig(total=budget(resolve(source), steps, epochs), seed=seed, eval_every=eval_every,
                           diverge_factor=diverge_factor, device=device, progress=progress)
        epochs_run = -(-config.total // resolve(source).iters_per_epoch)
        if set(getattr(spec, "phases", lambda n: ())(epochs_run)) == {"warmup"}:  # STPT's warmup is the whole run
            raise LRPilotError(f"{spec}: its warmup covers all {epochs_run} epoch(s) of the run ({config.total} "
                               "iterations), so it would never search; give a shorter warmup (epochs, or a fraction "
                               "of the run such as warmup=0.1) or a longer budget")
        search = Search(source, spec, ex, config)
        spec.drive(search)
        result = search.finish()
        single(search.main)  # before the executor destroys the process group (see single)
        return result if ex.leader else None
