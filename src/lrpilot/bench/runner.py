"""The benchmark runner: every (policy, seed) of a task that the store does not hold finished, in parallel.

The calling process claims each run in the store just before a worker takes it, keeps the
claims alive with heartbeats and writes each result, so that workers (local processes or
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

import re
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from lrpilot.bench.racing import Halving, Rung, RungTable, raced
from lrpilot.distill import attach
from lrpilot.engine import budget, eval_period, train
from lrpilot.errors import DataError, LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.fingerprint import digest, fingerprint, short
from lrpilot.policy.base import build
from lrpilot.policy.text import parse
from lrpilot.progress import expect_runs, report_run
from lrpilot.records import RunRecord, RunResult
from lrpilot.search.run import is_search, run_search
from lrpilot.store import ClaimLost, Storage, retrain, stale
from lrpilot.store.schema import FINISHED
from lrpilot.tasks import TaskRef

if TYPE_CHECKING:
    from lrpilot.tasks.base import Task


@dataclass(frozen=True)
class Job:
    """One training run for a worker: everything it needs, as plain data."""

    task: TaskRef
    policy: str
    seed: int
    steps: int
    eval_every: int | None = None
    device: str | None = None
    rungs: tuple[Rung, ...] = ()  # successive halving's checkpoints (:mod:`lrpilot.bench.racing`)


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
    ``race``: successive halving with these settings and seed racing over ``seeds`` (:mod:`lrpilot.bench.racing`).
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

    def race(self, texts: list[str], seeds: list[int], halving: Halving,
             more: Callable[[list[str], int], bool] = lambda texts, seed: True) -> BenchSummary:
        """Successive halving within each seed, and another seed only for the policies still tied with the leader
        on validation (best first); ``more(texts, seed)`` False says the runs of ``texts`` on ``seed`` do not fit (a
        tune's compute): that seed then races the leading ones that fit, and none when fewer than two do."""
        from lrpilot.decision.rule import decide

        summary = BenchSummary(self.ref.build().name, self.total, texts, seeds, purpose=self.purpose)
        alive = list(texts)
        for k, seed in enumerate(seeds):
            if k:
                n = next((n for n in range(len(alive), 1, -1) if more(alive[:n], seed)), 0)
                if n < 2:
                    summary.raced.append(f"compute spent: stopped before seed {seed}")
                    break
                if n < len(alive):
                    summary.raced.append(f"seed {seed}: compute left for the {n} leading of {len(alive)} only")
                    alive = alive[:n]
            first = self.run(alive, [seed], halving)
            summary.add(first)
            summary.finished_before += first.finished_before
            while first.held_elsewhere:  # another process trains some of this round: its results decide too
                time.sleep(self.poll_s)
                first = self.run(alive, [seed], halving, quiet=True)
                summary.add(first)
            decision = decide([r for r in summary.runs(self.store) if r.policy in alive], budget=self.total)
            tied = [p for p in decision.tied if p in alive]
            summary.raced.append(f"seed {seed}: {len(alive)} raced, {len(decision.excluded)} out "
                                 f"(pruned, diverged or failed), {len(tied)} tied with the leader"
                                 + (f" {decision.ties.best}" if decision.ties else ""))
            self.say(summary.raced[-1])
            if len(tied) <= 1:
                summary.raced.append("resolved: the leader is tied with no other policy" if tied else
                                     "no policy left to race")
                break
            alive = tied
        return summary

    def run(self, texts: list[str], seeds: list[int], halving: Halving | None = None, *,
            quiet: bool = False, live: bool = True) -> BenchSummary:
        """Train every (policy, seed) not finished in the store, successive halving's rungs sent with each job: the
        scores stored before this call, and with ``live`` those of this call's runs as they finish (then which run
        is pruned depends on the order in which the workers finish; without, on the store alone)."""
        store, total, purpose = self.store, self.total, self.purpose
        task_obj = self.ref.build()
        summary = BenchSummary(task_obj.name, total, texts, seeds, purpose=purpose)
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
        held: dict[Job, int] = {}
        progress = None if quiet else self.progress
        expect_runs(progress, len(todo))

        def claimed() -> Iterator[Job]:
            for policy, seed in todo:
                run_id = store.claim(task_obj, policy, seed, total, purpose=purpose, fingerprint=now,
                                     rerun_failed=self.rerun_failed)
                if run_id is None:
                    summary.held_elsewhere += 1
                    say(f"{policy} seed {seed}: finished or held by another process, skipped")
                    expect_runs(progress, -1)
                    continue
                rungs = table.rungs() if table is not None and not is_search(policy) else ()
                job = Job(self.ref, policy, seed, total, self.eval_every, self.device, rungs)
                held[job] = run_id
                yield job

        def count() -> str:
            done_now = summary.trained + summary.failed + summary.pruned + summary.finished_before
            return f"[{done_now}/{len(texts) * len(seeds)}]"

        def lost(job: Job) -> None:
            summary.held_elsewhere += 1
            say(f"{job.policy} seed {job.seed}: taken over by another process (this one was paused past the "
                "heartbeat timeout); its result is left to that one")
            expect_runs(progress, -1)

        def finish(job: Job, result: RunResult) -> bool:
            """Store the result of a held job; False if its claim was lost meanwhile."""
            run_id = held.pop(job, None)
            if run_id is None:  # lost at a heartbeat, already said
                return False
            try:
                store.finish(run_id, replace(result, record={**result.record, "fingerprint": fp}))
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
            if table is not None and live:
                table.add(result.curves, result.status)
            if result.status == "pruned":
                summary.pruned += 1
                r = result.record
                report(job, result, f"{count()} {job.policy} seed {job.seed}: pruned at iteration {r['pruned_at']} "
                       f"(validation Top-1 {r['rung_score']:.2f}% < {r['rung_threshold']:.2f}%, the rung's cut over "
                       f"{r['rung_runs']} runs)")
                return
            summary.trained += 1
            top1, val = result.metrics.get("top1"), result.metrics.get("val_top1")
            wall = (result.cost or {}).get("wall_s")
            report(job, result, f"{count()} {job.policy} seed {job.seed}: {result.status}"
                   + ("" if val is None else f", validation Top-1 {val:.2f}%")
                   + ("" if top1 is None else f", test {top1:.2f}%") + ("" if wall is None else f" ({wall:.1f} s)"))

        def report(job: Job, result: RunResult, line: str) -> None:
            """One finished run to the progress: its line, its validation Top-1 if it finished ok, its cost."""
            report_run(progress, line, policy=job.policy, status=result.status,
                       val_top1=result.metrics.get("val_top1") if result.status == "ok" else None,
                       epochs=(result.cost or {}).get("epoch_equivalents", 0.0))

        def on_failed(job: Job, reason: str, result: RunResult | None = None) -> None:
            # reported by the executor (not by run_job): the worker died, or Ray lost the task
            record = result.record if result is not None else {"error": reason, "error_kind": _death_kind(reason)}
            result = RunResult(task_obj.name, job.policy, job.seed, "failed", {}, {}, {}, record, total)
            if not finish(job, result):
                return
            summary.failed += 1
            kind = result.record.get("error_kind")
            report(job, result, f"{count()} {job.policy} seed {job.seed}: failed: {reason.splitlines()[0][:200]}"
                   + (" (retried by a later bench)" if kind == "invocation" else ""))

        def heartbeat() -> None:
            for job, run_id in list(held.items()):
                try:
                    store.heartbeat(run_id)
                except ClaimLost:
                    del held[job]
                    lost(job)

        try:
            self.executor.run(run_job, claimed(), on_done, on_failed, heartbeat,
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
