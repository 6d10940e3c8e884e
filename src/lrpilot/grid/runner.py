"""The benchmark runner: every (policy, seed) of a task that the store does not hold finished, in parallel.

The calling process claims each run in the store just before a worker takes it, keeps the
claims alive with heartbeats and writes each result (:mod:`lrpilot.grid.claims`), so that workers (local processes or
Ray tasks) need no access to the store. Runs held by another live benchmark are left to it;
runs whose holder died are taken over. A run that raises or whose worker dies is recorded
as ``failed`` with the reason, a diverged one as ``diverged``; the others go on.

A failure's record says its kind (``error_kind``): ``"invocation"`` when the way the run was
started caused it (a bad device or flag, an error of lrpilot's own checks, out of memory, the
worker killed), which a later bench retries; ``"run"`` when the policy or the training itself
raised, which is final (``rerun_failed=True``, ``bench --rerun-failed``: every failure is trained
again); ``"data"`` when the task's data does not fit its model (a label outside its outputs, an input it does
not take), final until the task changes. A bench whose claim on a run was taken over by another bench (it was paused past the
heartbeat timeout) leaves that run to the other and goes on with the rest.

Each bench computes its task's fingerprint once (:mod:`lrpilot.fingerprint`), stores its digest with
every run it claims and the whole fingerprint in the run's record; a stored run whose digest differs
(the task's data, model or optimizer changed) is trained again, and the bench says how many.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from lrpilot.engine import budget, eval_period
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.fingerprint import digest, fingerprint, short
from lrpilot.grid.claims import Claims
from lrpilot.grid.jobs import run_job
from lrpilot.grid.racing import Halving, RungTable, race
from lrpilot.policy.base import build
from lrpilot.policy.text import parse
from lrpilot.progress import expect_runs
from lrpilot.records import RunRecord
from lrpilot.store import Storage, retrain, stale
from lrpilot.tasks import TaskRef
from lrpilot.vocabulary import FINISHED

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task


@dataclass
class BenchSummary:
    """What one call of :func:`bench` did: runs trained, failed, pruned, already finished, held elsewhere; with
    racing, the seeds each policy got and how the race ended."""

    task: str
    budget: int
    policies: list[str]
    seeds: list[int]
    trained: int = 0
    failed: int = 0
    pruned: int = 0
    finished_before: int = 0
    held_elsewhere: int = 0
    purpose: str = "bench"
    raced: list[str] = field(default_factory=list)  # one line per racing round

    def runs(self, store: Storage) -> list[RunRecord]:
        """The stored runs of this bench: its task, purpose, budget, policies and seeds."""
        return [r for r in store.runs(task=self.task, purpose=self.purpose, curves=False, outcomes=True)
                if r.budget == self.budget and r.policy in self.policies and r.seed in self.seeds]

    def add(self, other: "BenchSummary") -> None:
        """Count another round's work into this summary."""
        self.trained += other.trained
        self.failed += other.failed
        self.pruned += other.pruned


def canonical_policies(policies: Iterable[str]) -> list[str]:
    """The texts of policies, controllers or searches made canonical, validated, duplicates dropped (order kept)."""
    texts = [str(build(parse(p))) for p in policies]
    if not texts:
        raise LRPilotError("no policies to benchmark: give --policies, --policy-file or --suite")
    return list(dict.fromkeys(texts))


def bench(store: Storage, task: str | TaskRef | Task, policies: Iterable[str], *, seeds: Iterable[int] = (0,),
          steps: int | None = None, epochs: float | None = None, data_dir: str | None = None,
          executor: Any = None, eval_every: int | None = None, device: str | None = None,
          progress: Callable[[str], None] | None = None, purpose: str = "bench",
          race: Halving | None = None, rerun_failed: bool = False) -> BenchSummary:
    """Run every (policy, seed) of ``task`` not finished in ``store``; return what was done.

    ``task``: a name (built in or ``module:function``, with ``data_dir``), a :class:`TaskRef`, which
    workers rebuild, or a Task object, which workers receive pickled; ``executor`` defaults to local processes, one per core. ``progress`` receives one
    line per finished run. ``purpose``: the runs' purpose in the store ("range-test" for a range test's probes).
    ``race``: successive halving with these settings and seed racing over ``seeds`` (:mod:`lrpilot.grid.racing`).
    ``rerun_failed``: train the stored failures again, whatever their kind.
    """
    ref = TaskRef.of(task, data_dir)
    texts, seeds = canonical_policies(policies), list(dict.fromkeys(seeds))
    with executor or LocalExecutor() as executor:
        executor.start(warm=(ref.build, ()))  # workers build the task while this process does
        grid = Grid(store, ref, budget(ref.build(), steps, epochs), executor, eval_every, device, progress, purpose,
                    rerun_failed=rerun_failed)
        return grid.run(texts, seeds) if race is None else grid.race(texts, seeds, race)


@dataclass
class Grid:
    """The runs of one task and budget in one store, trained by ``executor``: all at once (:meth:`run`) or raced."""

    store: Storage
    ref: TaskRef
    total: int
    executor: Any
    eval_every: int | None = None
    device: str | None = None
    progress: Callable[[str], None] | None = None
    purpose: str = "bench"
    rerun_failed: bool = False  # train failures of any kind stored before this grid began again (once each)
    began: float = field(default_factory=time.time)
    poll_s: float = 2.0  # racing: how often to look whether runs held by another process have finished

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def summary(self, texts: list[str], seeds: list[int]) -> BenchSummary:
        """An empty summary of this grid's runs of ``texts`` over ``seeds``."""
        return BenchSummary(self.ref.build().name, self.total, texts, seeds, purpose=self.purpose)

    def race(self, texts: list[str], seeds: list[int], halving: Halving,
             more: Callable[[list[str], int], bool] = lambda texts, seed: True) -> BenchSummary:
        """Successive halving and seed racing over this grid (:func:`lrpilot.grid.racing.race`)."""
        return race(self, texts, seeds, halving, more)

    def run(self, texts: list[str], seeds: list[int], halving: Halving | None = None, *,
            quiet: bool = False, live: bool = True) -> BenchSummary:
        """Train every (policy, seed) not finished in the store, successive halving's rungs sent with each job: the
        scores stored before this call, and with ``live`` those of this call's runs as they finish (then which run
        is pruned depends on the order in which the workers finish; without, on the store alone)."""
        store, total, purpose = self.store, self.total, self.purpose
        task_obj = self.ref.build()
        summary = self.summary(texts, seeds)
        fp = fingerprint(task_obj, total)
        now = digest(fp)
        stored = [r for r in store.runs(task=task_obj.name, purpose=purpose, curves=halving is not None)
                  if r.budget == total]
        done = {(r.policy, r.seed) for r in stored if r.status in FINISHED
                and not retrain(r.status, r.record, r.fingerprint, now,
                                self.rerun_failed and (r.finished_at or 0.0) < self.began)}
        todo = [(p, s) for s in seeds for p in texts if (p, s) not in done]
        summary.finished_before = len(texts) * len(seeds) - len(todo)
        say = (lambda line: None) if quiet else self.say
        wanted = set(todo)
        outdated = [r for r in stored if r.status in FINISHED and (r.policy, r.seed) in wanted
                    and stale(r.fingerprint, now)]
        if outdated:
            say(f"{len(outdated)} stored runs of {task_obj.name} were trained on other data, model or optimizer "
                f"(fingerprint {', '.join(sorted({short(r.fingerprint) for r in outdated}))}; now {short(now)}): "
                "trained again")
        table = None
        if halving is not None:
            table = RungTable(halving.iterations(total, eval_period(task_obj, total, self.eval_every)), halving.eta,
                              halving.slack)
            for r in stored:
                if not stale(r.fingerprint, now):
                    table.add(r.curves, r.status)
        progress = None if quiet else self.progress
        expect_runs(progress, len(todo))
        claims = Claims(self, task_obj, fp, now, summary, table, live=live, progress=progress, say=say)
        try:
            self.executor.run(run_job, claims.jobs(todo), claims.done, claims.failed, claims.heartbeat,
                              every=store.heartbeat_interval)
        finally:
            claims.release()  # interrupted: give the runs back at once
        return summary
