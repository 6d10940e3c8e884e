"""The claim loop of one grid round: each run claimed in the store just before a worker takes it, kept alive by
heartbeats every :attr:`lrpilot.store.Storage.heartbeat_interval` seconds, and its result written.

Workers need no access to the store. A run held by another live process is skipped; a run whose claim another
process took over (this one was paused past the store's heartbeat timeout) is left to that one; a worker's death
is stored as a failure of its kind (:func:`death_kind`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from lrpilot.grid.jobs import Job
from lrpilot.grid.racing import RungTable
from lrpilot.progress import expect_runs, report_run
from lrpilot.records import RunResult
from lrpilot.search.run import is_search
from lrpilot.store import ClaimLost

if TYPE_CHECKING:
    from lrpilot.grid.runner import BenchSummary, Grid
    from lrpilot.tasks.base import Task


class Claims:
    """The runs one grid round holds (job -> run id), and what it does as the executor reports on them."""

    def __init__(self, grid: Grid, task: Task, fingerprint: dict[str, Any], digest: str, summary: BenchSummary,
                 table: RungTable | None, *, live: bool, progress: Callable[[str], None] | None,
                 say: Callable[[str], None]):
        self.grid, self.store, self.task, self.fingerprint, self.digest = grid, grid.store, task, fingerprint, digest
        self.summary, self.table, self.live, self.progress, self.say = summary, table, live, progress, say
        self.held: dict[Job, int] = {}

    def jobs(self, todo: Iterable[tuple[str, int]]) -> Iterator[Job]:
        """The jobs of the (policy, seed) pairs ``todo``, each claimed just before it is handed out."""
        grid = self.grid
        for policy, seed in todo:
            run_id = self.store.claim(self.task, policy, seed, grid.total, purpose=grid.purpose,
                                      fingerprint=self.digest, rerun_failed=grid.rerun_failed)
            if run_id is None:
                self.summary.held_elsewhere += 1
                self.say(f"{policy} seed {seed}: finished or held by another process, skipped")
                expect_runs(self.progress, -1)
                continue
            rungs = self.table.rungs() if self.table is not None and not is_search(policy) else ()
            job = Job(grid.ref, policy, seed, grid.total, grid.eval_every, grid.device, rungs)
            self.held[job] = run_id
            yield job

    def done(self, job: Job, result: RunResult) -> None:
        """A worker's result: stored, counted and reported."""
        if result.status == "failed":
            self.failed(job, result.record.get("error", "failed"), result)
            return
        if not self._finish(job, result):
            return
        summary = self.summary
        if self.table is not None and self.live:
            self.table.add(result.curves, result.status)
        if result.status == "pruned":
            summary.pruned += 1
            r = result.record
            self._report(job, result, f"{self._count()} {job.policy} seed {job.seed}: pruned at iteration "
                         f"{r['pruned_at']} (validation Top-1 {r['rung_score']:.2f}% < {r['rung_threshold']:.2f}%, "
                         f"the rung's cut over {r['rung_runs']} runs)")
            return
        summary.trained += 1
        top1, val = result.metrics.get("top1"), result.metrics.get("val_top1")
        wall = (result.cost or {}).get("wall_s")
        self._report(job, result, f"{self._count()} {job.policy} seed {job.seed}: {result.status}"
                     + ("" if val is None else f", validation Top-1 {val:.2f}%")
                     + ("" if top1 is None else f", test {top1:.2f}%") + ("" if wall is None else f" ({wall:.1f} s)"))

    def failed(self, job: Job, reason: str, result: RunResult | None = None) -> None:
        """A failed run: from :meth:`done`, or reported by the executor (the worker died, or Ray lost the task)."""
        record = result.record if result is not None else {"error": reason, "error_kind": death_kind(reason)}
        result = RunResult(self.task.name, job.policy, job.seed, "failed", {}, {}, {}, record, self.grid.total)
        if not self._finish(job, result):
            return
        self.summary.failed += 1
        kind = result.record.get("error_kind")
        self._report(job, result, f"{self._count()} {job.policy} seed {job.seed}: failed: "
                     f"{reason.splitlines()[0][:200]}" + (" (retried by a later bench)" if kind == "invocation" else ""))

    def heartbeat(self) -> None:
        """Keep every held run alive; a run another process took over is given up."""
        for job, run_id in list(self.held.items()):
            try:
                self.store.heartbeat(run_id)
            except ClaimLost:
                del self.held[job]
                self._lost(job)

    def release(self) -> None:
        """Give the runs still held back to the queue (the round was interrupted)."""
        for run_id in self.held.values():
            self.store.release(run_id)

    def _finish(self, job: Job, result: RunResult) -> bool:
        """Store the result of a held job; False if its claim was lost meanwhile."""
        run_id = self.held.pop(job, None)
        if run_id is None:  # lost at a heartbeat, already said
            return False
        try:
            self.store.finish(run_id, replace(result, record={**result.record, "fingerprint": self.fingerprint}))
        except ClaimLost:
            self._lost(job)
            return False
        return True

    def _lost(self, job: Job) -> None:
        self.summary.held_elsewhere += 1
        self.say(f"{job.policy} seed {job.seed}: taken over by another process (this one was paused past the "
                 "heartbeat timeout); its result is left to that one")
        expect_runs(self.progress, -1)

    def _count(self) -> str:
        s = self.summary
        return f"[{s.trained + s.failed + s.pruned + s.finished_before}/{len(s.policies) * len(s.seeds)}]"

    def _report(self, job: Job, result: RunResult, line: str) -> None:
        """One finished run to the progress: its line, its validation Top-1 if it finished ok, its cost."""
        report_run(self.progress, line, policy=job.policy, status=result.status,
                   val_top1=result.metrics.get("val_top1") if result.status == "ok" else None,
                   epochs=(result.cost or {}).get("epoch_equivalents", 0.0))


def death_kind(reason: str) -> str:
    """The kind of a worker's death: killed by a signal (the user, the OOM killer) or lost by Ray is the invocation's
    fault; a worker that exited with a status of its own (the run called exit) is the run's."""
    code = re.search(r"exit code (-?\d+)", reason)
    return "run" if code and int(code.group(1)) >= 0 else "invocation"
