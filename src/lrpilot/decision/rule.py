"""The decision among benchmarked policies: chosen on validation, reported on test, with intervals and ties.

For the full-budget runs of one task and budget: each policy's mean validation and test Top-1 with a
95 % interval over its seeds and examples (:func:`lrpilot.decision.stats.top1_interval`); the best by mean
validation Top-1; the group not significantly worse than it on validation (paired by seed and example,
Games-Howell-corrected: :func:`lrpilot.decision.stats.tied_with_best`); and the choice, the cheapest by LRBench's cost
metrics (#Param, then the mean #Iterations at the highest validation Top-1) of the tied policies *shown* to
be close to the best: the upper end of the 95 % interval of (best - policy) at most ``margin`` points
(default :data:`MARGIN`), paired over at least :data:`MIN_SEEDS` common seeds, so that the interval holds
seed-to-seed variation (over one seed it holds example sampling only). Not being shown worse is not being
shown as good: with few seeds or examples most policies are "tied", and the cheapest of them can be points
behind; the best itself is always eligible, so without such evidence the choice is the best on validation.
A policy with a diverged or failed run, one pruned by successive halving, or one whose runs have no
validation outcomes (stored before validation splits) takes no part in the decision: it is listed
with the reason.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np

from lrpilot.decision import stats
from lrpilot.records import RunRecord
from lrpilot.vocabulary import FINISHED, LOST

MARGIN = 0.5  # points of Top-1 that a cheaper policy may be behind the best and still be chosen for its cost
MIN_SEEDS = 2  # common seeds with the best that showing a policy within MARGIN of it takes
RULE = (f"the cheapest (#Param, then #Iterations at the best validation Top-1) of the tied policies shown within "
        f"{MARGIN:g} points of the best over at least {MIN_SEEDS} common seeds, else the best")


@dataclass(frozen=True)
class Decision:
    """See the module. ``val`` and ``test`` map each decided policy to its Top-1 interval."""

    budget: int
    val: dict[str, stats.Interval]
    test: dict[str, stats.Interval]
    ties: stats.Ties | None
    chosen: str | None
    seeds: dict[str, tuple[int, ...]]
    cost: dict[str, tuple[float, float]]
    excluded: dict[str, str] = field(default_factory=dict)
    margin: float = MARGIN

    @property
    def tied(self) -> tuple[str, ...]:
        """The best policy and those statistically tied with it (best first)."""
        return self.ties.tied if self.ties else ()

    @property
    def close(self) -> tuple[str, ...]:
        """The best and the tied policies shown within ``margin`` points of it over at least :data:`MIN_SEEDS`
        common seeds (best first): the eligible."""
        if not self.ties:
            return ()
        best = self.ties.best
        return tuple(p for p in self.tied if p == best or (
            self.ties.comparisons[p].difference.high <= self.margin
            and len(set(self.seeds[p]) & set(self.seeds[best])) >= MIN_SEEDS))

    @property
    def power(self) -> tuple[float, int, int] | None:
        """(power, #validation examples, #seeds of the best): the chance that the tie test tells a policy ``margin``
        points behind the best from it (:func:`lrpilot.decision.stats.power`), at the median variance of the tied
        policies' comparisons; None without a tie."""
        if not self.ties or len(self.tied) < 2:
            return None
        tests = sorted((self.ties.comparisons[p].test for p in self.tied[1:]), key=lambda t: t[1])
        test = tests[(len(tests) - 1) // 2]
        return stats.power(test, self.margin / 100), test[3], len(self.seeds[self.ties.best])

    def words(self) -> str:
        """The decision in one sentence, e.g. ``7 policies are statistically tied with the best; chose ...``."""
        if self.chosen is None:
            return "no policy has full-budget runs with validation outcomes to decide on"
        n, k, best, chosen = len(self.tied), len(self.close), self.ties.best, self.chosen
        shown = f"shown within {self.margin:g} points of it over {MIN_SEEDS} or more common seeds"
        cost = f"#Param {self.cost[chosen][0]:g}, #Iterations at the best validation Top-1 {self.cost[chosen][1]:.0f}"
        if n == 1:
            head = f"{best} is the best on validation and no other policy is tied with it; chose it"
        else:
            head = (f"{_count(n - 1, 'policy is', 'policies are')} statistically tied with the best ({best}) on "
                    "validation; ")
            if k == 1:
                head += f"none is {shown}, so chose {chosen}, the best itself"
            else:
                head += (f"{_count(k - 1, 'is', 'are')} {shown}; chose {chosen}, "
                         + ("the best itself and the cheapest" if chosen == best else "the cheapest") + f" ({cost})")
        words = f"{head}: validation Top-1 {_fmt(self.val[chosen])}, test Top-1 {_fmt(self.test[chosen])}"
        if self.power and not math.isnan(self.power[0]):
            p, n, seeds = self.power
            words += (f"; with {n} validation examples x {_count(seeds, 'seed', 'seeds')}, a {self.margin:g}-point "
                      f"difference is detected with power {p:.2f}"
                      + (", so the tie does not show the tied policies equal" if p < 0.8 else ""))
        return words


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _fmt(iv: stats.Interval) -> str:
    return f"{iv.mean:.2f} % [{iv.low:.2f}, {iv.high:.2f}]"


def outcomes(runs: Iterable[RunRecord], split: str) -> dict[int, np.ndarray]:
    """Seed -> per-example correctness on ``split`` of the ok runs that have it."""
    out = {}
    for r in runs:
        if r.status == "ok":
            correct = r.correct(split)
            if correct is not None:
                out[r.seed] = correct
    return out


def decide(records: Iterable[RunRecord], *, budget: int | None = None, alpha: float = 0.05,
           margin: float = MARGIN) -> Decision:
    """The decision over the runs of one task at ``budget`` (default: the largest budget among them)."""
    records = [r for r in records if r.purpose == "bench"]
    if budget is None:
        budget = max((r.budget for r in records), default=0)
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.budget == budget and r.status in FINISHED:
            groups.setdefault(r.policy, []).append(r)
    seeds, cost, excluded, by_val, by_test = {}, {}, {}, {}, {}
    for policy, runs in groups.items():
        why = _excluded(runs)
        if why:
            excluded[policy] = why
            continue
        by_val[policy] = outcomes(runs, "val")
        if test_out := outcomes(runs, "test"):
            by_test[policy] = test_out
        seeds[policy] = tuple(sorted(by_val[policy]))
        cost[policy] = (float((runs[0].metrics or {}).get("n_param") or 0), _mean_iters(runs))
    val, test = (dict(zip(split, stats.top1_intervals(list(split.values())))) for split in (by_val, by_test))
    if not by_val:
        return Decision(budget, val, test, None, None, seeds, cost, excluded, margin)
    ties = stats.tied_with_best(by_val, alpha=alpha)
    decision = Decision(budget, val, test, ties, None, seeds, cost, excluded, margin)
    return replace(decision, chosen=stats.cheapest(decision.close, cost))


def _excluded(runs: list[RunRecord]) -> str | None:
    """Why a policy's runs take no part in the decision, or None."""
    statuses = {r.status for r in runs}
    for status in LOST:
        if status in statuses:
            n = sum(r.status == status for r in runs)
            if status == "pruned":
                at = min((r.record or {}).get("pruned_at", 0) for r in runs if r.status == "pruned")
                return f"pruned by successive halving at iteration {at}"
            return f"{n} of {len(runs)} runs {status}"
    if not all((r.outcomes or {}).get("val") is not None for r in runs):  # without decoding them
        return "no validation outcomes (stored before validation splits)"
    return None


def _mean_iters(runs: list[RunRecord]) -> float:
    xs = [float(r.metrics["val_iters_at_best"]) for r in runs
          if r.metrics and r.metrics.get("val_iters_at_best") is not None]
    return statistics.fmean(xs) if xs else math.inf
