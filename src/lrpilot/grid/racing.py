"""Spend compute where the decision is open: successive halving over policies, racing over seeds.

**Successive halving** (ASHA-style, in its stopping form, as Optuna's ``SuccessiveHalvingPruner`` and Ray
Tune's ASHA scheduler): a run of ``T`` iterations passes ``rungs`` checkpoints at ``T / eta^k``
(``k = rungs, ..., 1``; with the defaults ``eta=3, rungs=2``: T/9 and T/3), each moved up to the next
evaluation. At a rung the run's validation Top-1 (at the latest evaluation) is compared with the
scores that the runs of the same benchmark had at that rung when this run was handed to a worker; once
there are at least ``eta`` of them, a run whose validation error (100 - Top-1) exceeds ``slack`` times the
error of the ``k``-th best, ``k = max(1, (n + 1) // eta)``, stops there: it is stored ``pruned`` with the
iteration it reached and never counts as a full-budget result. ``slack`` 1 is ASHA's rule (stop below the
``k``-th best); the default 1.5 stops only the runs clearly failing, because an LR schedule's intermediate
accuracy depends on its phase: a cyclic schedule mid-cycle or a high LR before its decay trails the runs
that decayed early and overtakes them at the end (short-horizon bias). On mnist1d-cnn ASHA's rule stopped
SIN(k0=0.1, k1=0.2, l=1000), the best of 42 policies on fresh seeds, at iteration 600 of 4,000 (85.9 %
against 89.6 % for FIX(k0=0.1), which it beats by 1.6 points at the end).
The scores travel with the job, so the rule needs no link between worker and benchmark and works on
every executor (local processes, Ray, several benchmarks sharing a store); early runs, with fewer
scores to compare against, are never pruned.

**Seed racing**: the first seed of every policy first; then another seed only for the policies still
statistically tied with the leader on validation (:func:`lrpilot.decision.rule.decide`), until the
leader is resolved (it is tied with no other policy) or the seeds (or a tune's compute) run out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import SELECTION

if TYPE_CHECKING:
    from lrpilot.grid.runner import BenchSummary, Grid

SCORE = SELECTION  # what the rungs compare: selection uses the validation split, never the test split


@dataclass(frozen=True)
class Halving:
    """Successive halving's settings: reduction factor ``eta``, the number of ``rungs`` below the full budget and
    the ``slack`` on the k-th best's validation error (see the module)."""

    eta: int = 3
    rungs: int = 2
    slack: float = 1.5

    def __post_init__(self) -> None:
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise LRPilotError(f"--eta {self.eta!r} must be a whole number >= 2 (the reduction factor)")
        if isinstance(self.rungs, bool) or not isinstance(self.rungs, int) or self.rungs < 1:
            raise LRPilotError(f"rungs={self.rungs!r} must be a whole number >= 1")
        if isinstance(self.slack, bool) or not isinstance(self.slack, (int, float)) or not self.slack >= 1:
            raise LRPilotError(f"--slack {self.slack!r} must be a number >= 1 (1: ASHA's rule)")

    def iterations(self, total: int, eval_every: int) -> list[int]:
        """The rungs' iterations for a run of ``total``: ``total / eta^k``, each at the next evaluation, below total."""
        points = {min(total, math.ceil(total / self.eta ** k / eval_every) * eval_every)
                  for k in range(self.rungs, 0, -1)}
        return sorted(p for p in points if p < total)


@dataclass(frozen=True)
class Rung:
    """One checkpoint of a job: its ``iteration`` and the ``scores`` other runs had there when the job was sent."""

    iteration: int
    scores: tuple[float, ...]
    eta: int = 3
    slack: float = 1.0

    @property
    def threshold(self) -> float | None:
        """The score a run needs here to go on: the k-th best of the scores, None with fewer than ``eta``."""
        if len(self.scores) < self.eta:
            return None
        return sorted(self.scores, reverse=True)[max(1, (len(self.scores) + 1) // self.eta) - 1]

    def prunes(self, score: float | None) -> bool:
        """Whether a run scoring ``score`` here stops (see the module); a run with no score is not judged."""
        if self.threshold is None or score is None or math.isnan(score):
            return False
        return 100.0 - score > self.slack * (100.0 - self.threshold)


def score_at(curves: dict[str, list], iteration: int) -> float | None:
    """``SCORE`` at the latest evaluation at or before ``iteration`` in a run's curves, if it reached it."""
    its, values = curves.get("iteration") or [], curves.get(SCORE) or []
    if not its or its[-1] < iteration:
        return None
    best = None
    for i, v in zip(its, values):
        if i > iteration:
            break
        if v is not None and not math.isnan(v):
            best = v
    return best


class RungTable:
    """The scores seen at each rung so far, filled from stored runs and from results as they come in."""

    def __init__(self, iterations: Iterable[int], eta: int, slack: float = 1.0):
        self.eta, self.slack = eta, slack
        self.scores: dict[int, list[float]] = {i: [] for i in iterations}

    def add(self, curves: dict[str, list] | None, status: str) -> None:
        """Count a finished or pruned run's scores at the rungs it reached."""
        if status not in ("ok", "pruned") or not curves:
            return
        for it, scores in self.scores.items():
            s = score_at(curves, it)
            if s is not None:
                scores.append(s)

    def rungs(self) -> tuple[Rung, ...]:
        """The rungs to send with the next job: the scores as they stand now."""
        return tuple(Rung(it, tuple(s), self.eta, self.slack) for it, s in sorted(self.scores.items()))


def raced(job: Any) -> Any:
    """Train ``job`` (a :class:`lrpilot.grid.jobs.Job` with rungs) through its rungs: the run stops ``pruned`` at
    the first rung that prunes it, else trains to the end. Its record says where it stopped and why."""
    from lrpilot.engine import Run, RunConfig

    run = Run(job.task.build(), job.policy, RunConfig(total=job.steps, seed=job.seed, eval_every=job.eval_every,
                                                     device=job.device))
    for rung in job.rungs:
        run.run_until(rung.iteration)
        if run.status != "running":
            break
        score = run.latest(SCORE)
        if rung.prunes(score):
            result = run.stop("pruned")
            result.record.update(pruned_at=run.step, rung_score=score, rung_threshold=rung.threshold,
                                 rung_runs=len(rung.scores))
            return result
    return run.run()


def race(grid: Grid, texts: list[str], seeds: list[int], halving: Halving,
         more: Callable[[list[str], int], bool] = lambda texts, seed: True) -> BenchSummary:
    """Successive halving of ``grid``'s runs within each seed, and another seed only for the policies still tied with
    the leader on validation (best first); ``more(texts, seed)`` False says the runs of ``texts`` on ``seed`` do not fit
    (a tune's compute): that seed then races the leading ones that fit, and none when fewer than two do."""
    from lrpilot.decision.rule import decide  # numpy and scipy: not in the workers, which import this module for raced

    summary = grid.summary(texts, seeds)
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
        first = grid.run(alive, [seed], halving)
        summary.add(first)
        summary.finished_before += first.finished_before
        while first.held_elsewhere:  # another process trains some of this round: its results decide too
            time.sleep(grid.poll_s)
            first = grid.run(alive, [seed], halving, quiet=True)
            summary.add(first)
        decision = decide([r for r in summary.runs(grid.store) if r.policy in alive], budget=grid.total)
        tied = [p for p in decision.tied if p in alive]
        summary.raced.append(f"seed {seed}: {len(alive)} raced, {len(decision.excluded)} out "
                             f"(pruned, diverged or failed), {len(tied)} tied with the leader"
                             + (f" {decision.ties.best}" if decision.ties else ""))
        grid.say(summary.raced[-1])
        if len(tied) <= 1:
            summary.raced.append("resolved: the leader is tied with no other policy" if tied else
                                 "no policy left to race")
            break
        alive = tied
    return summary
