"""The benchmark runner: every (policy, seed) of a task that the store does not hold finished, in parallel.

The calling process claims each run in the store just before a worker takes it, keeps the
claims alive with heartbeats and writes each result, so that workers (local processes or
Ray tasks) need no access to the store. Runs held by another live benchmark are left to it;
runs whose holder died are taken over. A run that raises or whose worker dies is recorded
as ``failed`` with the reason, a diverged one as ``diverged``; the others go on.

A failure's record says its kind (``error_kind``): ``"invocation"`` when the way the run was
started caused it (a bad device or flag, an error of lrpilot's own checks, out of memory, the
worker killed), which a later bench retries; ``"run"`` when the policy or the training itself
raised, which is final. A bench whose claim on a run was taken over by another bench (it was
paused past the heartbeat timeout) leaves that run to the other and goes on with the rest.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from lrpilot.distill import attach
from lrpilot.engine import budget, train
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.base import build
from lrpilot.policy.text import parse
from lrpilot.records import RunRecord, RunResult
from lrpilot.search.run import is_search, run_search
from lrpilot.store import ClaimLost, Storage, retryable
from lrpilot.store.schema import FINISHED
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
    """``"invocation"`` for an error of how a run was started (a check of lrpilot's: a bad flag or value; a device
    that does not exist or is out of memory), which a later bench retries; ``"run"`` for one of the run itself."""
    if isinstance(e, (LRPilotError, MemoryError)):
        return "invocation"
    text = f"{type(e).__name__} {e}".lower()
    if any(w in text for w in ("outofmemory", "out of memory", "device", "cuda", "mps", "xpu", "backend")):
        return "invocation"
    return "run"


def _run_job(job: Job) -> RunResult:
    if is_search(job.policy):
        result = run_search(job.task, job.policy, seed=job.seed, steps=job.steps, eval_every=job.eval_every,
                            executor="inprocess", device=job.device)
    else:
        result = train(job.task.build(), job.policy, seed=job.seed, steps=job.steps, eval_every=job.eval_every,
                       device=job.device)
    return attach(result)


@dataclass
class BenchSummary:
    """What one call of :func:`bench` did: runs trained, failed, already finished, held elsewhere."""

    task: str
    budget: int
    policies: list[str]
    seeds: list[int]
    trained: int = 0
    failed: int = 0
    finished_before: int = 0
    held_elsewhere: int = 0
    purpose: str = "bench"

    def runs(self, store: Storage) -> list[RunRecord]:
        """The stored runs of this bench: its task, purpose, budget, policies and seeds."""
        return [r for r in store.runs(task=self.task, purpose=self.purpose, curves=False)
                if r.budget == self.budget and r.policy in self.policies and r.seed in self.seeds]


def canonical_policies(policies: Iterable[str]) -> list[str]:
    """The texts of policies, controllers or searches made canonical, validated, duplicates dropped (order kept)."""
    texts = [str(build(parse(p))) for p in policies]
    if not texts:
        raise LRPilotError("no policies to benchmark: give --policies, --policy-file or --suite")
    return list(dict.fromkeys(texts))


def bench(store: Storage, task: str | TaskRef, policies: Iterable[str], *, seeds: Iterable[int] = (0,),
          steps: int | None = None, epochs: float | None = None, data_dir: str | None = None,
          executor: Any = None, eval_every: int | None = None, device: str | None = None,
          progress: Callable[[str], None] | None = None, purpose: str = "bench") -> BenchSummary:
    """Run every (policy, seed) of ``task`` not finished in ``store``; return what was done.

    ``task``: a name (built in or ``module:function``, with ``data_dir``) or a :class:`TaskRef`, which
    workers rebuild; ``executor`` defaults to local processes, one per core. ``progress`` receives one
    line per finished run. ``purpose``: the runs' purpose in the store ("range-test" for a range test's probes).
    """
    ref = TaskRef.of(task, data_dir)
    texts, seeds = canonical_policies(policies), list(dict.fromkeys(seeds))
    with executor or LocalExecutor() as executor:
        executor.start(warm=(ref.build, ()))  # workers build the task while this process does
        return _bench(store, ref, texts, seeds, steps, epochs, executor, eval_every, device, progress, purpose)


def _bench(store, ref, texts, seeds, steps, epochs, executor, eval_every, device, progress,
           purpose) -> BenchSummary:
    task_obj = ref.build()
    total = budget(task_obj, steps, epochs)
    summary = BenchSummary(task_obj.name, total, texts, seeds, purpose=purpose)
    done = {(r.policy, r.seed) for r in store.runs(task=task_obj.name, purpose=purpose, curves=False)
            if r.budget == total and r.status in FINISHED and not retryable(r.status, r.record)}
    todo = [Job(ref, p, s, total, eval_every, device)
            for p in texts for s in seeds if (p, s) not in done]
    summary.finished_before = len(texts) * len(seeds) - len(todo)
    held: dict[Job, int] = {}
    say = progress or (lambda line: None)

    def claimed() -> Iterator[Job]:
        for job in todo:
            run_id = store.claim(task_obj, job.policy, job.seed, total, purpose=purpose)
            if run_id is None:
                summary.held_elsewhere += 1
                say(f"{job.policy} seed {job.seed}: finished or held by another process, skipped")
                continue
            held[job] = run_id
            yield job

    def count() -> str:
        return f"[{summary.trained + summary.failed + summary.finished_before}/{len(texts) * len(seeds)}]"

    def lost(job: Job) -> None:
        summary.held_elsewhere += 1
        say(f"{job.policy} seed {job.seed}: taken over by another process (this one was paused past the heartbeat "
            "timeout); its result is left to that one")

    def finish(job: Job, result: RunResult) -> bool:
        """Store the result of a held job; False if its claim was lost meanwhile."""
        run_id = held.pop(job, None)
        if run_id is None:  # lost at a heartbeat, already said
            return False
        try:
            store.finish(run_id, result)
        except ClaimLost:
            lost(job)
            return False
        return True

    def on_done(job: Job, result: RunResult) -> None:
        if result.status == "failed":
            on_failed(job, result.record.get("error", "failed"), result)
            return
        if not finish(job, result):
            return
        summary.trained += 1
        top1 = result.metrics.get("top1")
        wall = (result.cost or {}).get("wall_s")
        say(f"{count()} {job.policy} seed {job.seed}: {result.status}"
            + ("" if top1 is None else f", Top-1 {top1:.2f}%") + ("" if wall is None else f" ({wall:.1f} s)"))

    def on_failed(job: Job, reason: str, result: RunResult | None = None) -> None:
        # reported by the executor (not by run_job): the worker died, or Ray lost the task
        record = result.record if result is not None else {"error": reason, "error_kind": _death_kind(reason)}
        result = RunResult(task_obj.name, job.policy, job.seed, "failed", {}, {}, {}, record, total)
        if not finish(job, result):
            return
        summary.failed += 1
        kind = result.record.get("error_kind")
        say(f"{count()} {job.policy} seed {job.seed}: failed: {reason.splitlines()[0][:200]}"
            + (" (retried by a later bench)" if kind == "invocation" else ""))

    def heartbeat() -> None:
        for job, run_id in list(held.items()):
            try:
                store.heartbeat(run_id)
            except ClaimLost:
                del held[job]
                lost(job)

    try:
        executor.run(run_job, claimed(), on_done, on_failed, heartbeat,
                     every=min(30.0, getattr(store, "heartbeat_timeout", 120.0) / 4))
    finally:
        for run_id in held.values():  # interrupted: give the runs back at once
            store.release(run_id)
    return summary


def _death_kind(reason: str) -> str:
    """The kind of a worker's death: killed by a signal (the user, the OOM killer) or lost by Ray is the invocation's
    fault; a worker that exited with a status of its own (the run called exit) is the run's."""
    code = re.search(r"exit code (-?\d+)", reason)
    return "run" if code and int(code.group(1)) >= 0 else "invocation"
