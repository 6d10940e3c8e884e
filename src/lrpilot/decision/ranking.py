"""LRBench's LR policy ranking (Wu et al. 2019, Section IV): the top policies of a task by utility, cost or robustness.

The finished runs of a task are grouped by (policy, budget) and their seeds aggregated: the mean
and the sample standard deviation (ddof=1; 0 for one run) of every metric over the group's ok
runs. Groups of different budgets are ranked apart, each with its own places 1, 2, ...

Every order selects on the validation split; the test split is only reported. Each group has its mean
validation and test Top-1 with a 95 % interval over seeds and examples, and whether it is statistically
tied with the best on validation; the one chosen is :data:`lrpilot.decision.rule.RULE`
(:mod:`lrpilot.decision.rule`: paired tests on the per-example outcomes, Games-Howell-corrected).

Diverged and failed runs count as failures: groups are ordered first by their share of failed
runs, so a policy with a diverged run ranks below every policy without one, whatever its metrics;
runs pruned by successive halving are not full-budget results and count the same way.
Then, with missing values (NaN) last in each criterion:

- ``utility``: mean validation Top-1 descending, then validation AC descending, CD ascending, CDAC ascending;
- ``cost``: mean #Iterations at the highest validation Top-1 ascending, then #Param ascending, then wall time
  ascending;
- ``robustness``: mean |LD| on validation (validation loss - train loss) ascending, then validation Top-1
  descending;
- ``score``: the weighted score ``0.6 U + 0.2 C + 0.2 R`` descending, then validation Top-1 descending, where
  U, C and R normalise mean validation Top-1, #Iterations at its highest and |LD| on validation to [0, 1] over
  the groups of the same budget (1 the best value, 0 the worst; 1 for all when all are equal; 0 where missing
  or infinite).

Queued and running runs are ignored.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field, replace
from typing import IO, Any, Iterable, Sequence

from lrpilot.errors import LRPilotError
from lrpilot.files import atomic_path
from lrpilot.records import RunRecord, stale
from lrpilot.vocabulary import FINISHED, RANKED

METRICS = RANKED
# the rankings (``by``): criterion -> (value, descending) keys in order; a new one is one entry here
ORDERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "utility": (("val_top1", True), ("val_ac", True), ("val_cd", False), ("val_cdac", False)),
    "cost": (("val_iters_at_best", False), ("n_param", False), ("wall_s", False)),
    "robustness": (("abs_val_ld", False), ("val_top1", True)),
    "score": (("score", True), ("val_top1", True)),
}
SCORE_WEIGHTS = (("val_top1", True, 0.6), ("val_iters_at_best", False, 0.2), ("abs_val_ld", False, 0.2))
FIELDS = ("rank", "policy", "budget", "n", "n_ok", "n_diverged", "n_failed", "n_pruned", "score", "tied_with_best",
          "chosen", "val_top1_ci", "top1_ci",
          *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")))  # the flat dicts, CSV and DataFrame columns


@dataclass(frozen=True)
class RankedPolicy:
    """One (policy, budget) group: its place, run counts, the mean and std of every metric over its ok runs.

    ``runs`` holds the group's finished runs (for their curves); ``score`` is the weighted score.
    """

    rank: int
    policy: str
    budget: int
    n: int
    n_ok: int
    n_diverged: int
    n_failed: int
    mean: dict[str, float]
    std: dict[str, float]
    score: float
    runs: tuple[RunRecord, ...] = field(repr=False, compare=False)
    n_pruned: int = 0
    val_ci: tuple[float, float] | None = None  # 95 % interval of the mean validation Top-1
    top1_ci: tuple[float, float] | None = None  # the same on test
    tied_with_best: bool = False  # statistically tied with the best on validation (the best included)
    chosen: bool = False  # the decision (lrpilot.decision.rule.RULE)

    def value(self, key: str) -> float:
        """The mean of metric ``key``, or the score."""
        return self.score if key == "score" else self.mean[key]

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-able dict (``<metric>_mean``, ``<metric>_std``; NaN becomes None)."""
        row = {k: getattr(self, k) for k in FIELDS[:8]} | {"score": _finite(self.score)}
        row |= {"tied_with_best": self.tied_with_best, "chosen": self.chosen,
                "val_top1_ci": None if self.val_ci is None else list(self.val_ci),
                "top1_ci": None if self.top1_ci is None else list(self.top1_ci)}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = _finite(self.mean[m]), _finite(self.std[m])
        return row


@dataclass(frozen=True)
class Ranking:
    """The ranked groups of one task, by budget and then by place; ``by`` names the ordering."""

    rows: list[RankedPolicy]
    by: str
    task: str | None = None
    stale: int = 0  # finished runs left out: trained on other data, model or optimizer (:func:`current`)

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as flat JSON-able dicts."""
        return [r.to_dict() for r in self.rows]

    def to_csv(self, file: str | os.PathLike | IO[str]) -> None:
        """Write the rows as CSV (missing values empty) to an open text file or, whole, to a path."""
        if hasattr(file, "write"):
            writer = csv.DictWriter(file, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(self.to_dicts())
            return
        with atomic_path(file, "the CSV file", "free space or give another --csv FILE") as tmp, \
                open(tmp, "w", newline="") as f:
            self.to_csv(f)

    def to_dataframe(self) -> Any:
        """The rows as a pandas DataFrame (pandas is an optional dependency)."""
        try:
            import pandas as pd
        except ImportError:
            raise LRPilotError("a ranking as a DataFrame needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_dicts(), columns=list(FIELDS))

    def table(self, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
        """The terminal and report table's headers and cells (:func:`lrpilot.decision.tables.table`)."""
        from lrpilot.decision.tables import table

        return table(self, columns)

    def format(self, columns: str | None = None, width: int = 120) -> str:
        """The ranking as a text table at most ``width`` characters wide (:func:`lrpilot.decision.tables.format`)."""
        from lrpilot.decision.tables import format

        return format(self, columns, width)



def current(records: Sequence[RunRecord]) -> tuple[list[RunRecord], int]:
    """The finished runs not stale, and how many are: a run is stale when its fingerprint differs from that of the
    latest finished run of its budget that has one (what a bench retrains, :func:`lrpilot.records.stale`; a run
    without a fingerprint never is)."""
    latest: dict[int, tuple[float, str]] = {}
    for r in records:
        if r.status in FINISHED and r.fingerprint and (r.finished_at or 0.0) >= latest.get(r.budget, (-1.0, ""))[0]:
            latest[r.budget] = (r.finished_at or 0.0, r.fingerprint)
    kept = [r for r in records if not stale(r.fingerprint, latest.get(r.budget, (0.0, None))[1])]
    return kept, sum(r.status in FINISHED for r in records) - sum(r.status in FINISHED for r in kept)


def rank(records: Iterable[RunRecord], by: str = "utility", top: int | None = None, *,
         task: str | None = None, stale: bool = False) -> Ranking:
    """Rank the finished runs of one task (see the module's docstring); ``top`` keeps the first N of each budget;
    stale runs (:func:`current`) are left out and counted unless ``stale``.

    ``task`` names the task when ``records`` holds none of its finished runs; records of another task are an error.
    """
    check_by(by)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise LRPilotError(f"top={top!r} must be a whole number >= 1, or None for every policy")
    records, n_stale = (list(records), 0) if stale else current(list(records))
    finished = [r for r in records if r.status in FINISHED]
    tasks = sorted({r.task for r in finished} | ({task} if task else set()))
    if len(tasks) > 1:
        raise LRPilotError(f"the runs are of several tasks ({', '.join(tasks)}): rank one task's runs, "
                           "e.g. store.runs(task=...)")
    groups: dict[tuple[int, str], list[RunRecord]] = {}
    for r in finished:
        groups.setdefault((r.budget, r.policy), []).append(r)
    from lrpilot.decision.rule import decide  # numpy: after the checks above

    rows = []
    for budget in sorted({b for b, _ in groups}):
        decision = decide([r for (b, _), runs in groups.items() if b == budget for r in runs], budget=budget)
        summaries = _stats([(p, runs) for (b, p), runs in groups.items() if b == budget], budget)
        stats = _scored([_decided(row, decision) for row in summaries])
        stats.sort(key=lambda s: _sort_key(s, ORDERS[by]))
        rows += [replace(s, rank=i) for i, s in enumerate(stats[:top], 1)]
    return Ranking(rows, by, tasks[0] if tasks else None, n_stale)


def check_by(by: str) -> str:
    """``by`` if it names one of :data:`ORDERS`, else LRPilotError."""
    if by not in ORDERS:
        raise LRPilotError(f"unknown ranking by={by!r}: use one of {', '.join(ORDERS)}")
    return by


def _stats(groups: list[tuple[str, list[RunRecord]]], budget: int) -> list[RankedPolicy]:
    """Each policy's counts and the mean and sample std of each metric over its ok runs."""
    oks = [[r for r in runs if r.status == "ok"] for _, runs in groups]
    means, stds = _mean_std([list(map(_row, ok)) for ok in oks])
    rows = []
    for (policy, runs), ok, mean, std in zip(groups, oks, means, stds):
        count = [r.status for r in runs].count
        rows.append(RankedPolicy(0, policy, budget, len(runs), len(ok), count("diverged"), count("failed"),
                                 dict(zip(METRICS, mean)), dict(zip(METRICS, std)), math.nan, tuple(runs),
                                 count("pruned")))
    return rows


def _decided(row: RankedPolicy, decision: Any) -> RankedPolicy:
    """``row`` with its intervals and its place in the decision."""
    val, test = decision.val.get(row.policy), decision.test.get(row.policy)
    return replace(row, val_ci=val and (val.low, val.high), top1_ci=test and (test.low, test.high),
                   tied_with_best=row.policy in decision.tied, chosen=row.policy == decision.chosen)


def _mean_std(groups: list[list[list[float]]]) -> tuple[list[list[float]], list[list[float]]]:
    """For each group of rows (runs x metrics, NaN: missing), each column's mean over its values, exactly rounded as
    ``statistics.fmean``, and sample std (ddof=1, numpy's two-pass: within an ulp of ``statistics.stdev``; the
    groups of one size in one call, the same as one at a time, as numpy adds along that axis in order; 0 for one
    value); NaN for no value, and the std NaN where a value is infinite."""
    import warnings

    import numpy as np  # here: the CLI reads this module's tables without numpy

    spreads: list[list[float]] = [[0.0] * len(METRICS)] * len(groups)
    by_size: dict[int, list[int]] = {}
    for i, rows in enumerate(groups):
        by_size.setdefault(len(rows), []).append(i)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with fewer than two values: its std is set below
        for size, at in by_size.items():
            if size > 1:
                for i, spread in zip(at, np.nanstd(np.array([groups[i] for i in at]), axis=1, ddof=1).tolist()):
                    spreads[i] = spread
    means, stds = [], []
    for rows, spread in zip(groups, spreads):
        mean, std = [], []
        for xs, sd in zip(zip(*rows) if rows else [()] * len(METRICS), spread):
            xs = [x for x in xs if not math.isnan(x)]
            mean.append(math.fsum(xs) / len(xs) if xs else math.nan)
            std.append(math.nan if not xs or not math.isfinite(mean[-1]) else 0.0 if len(xs) == 1 else sd)
        means.append(mean)
        stds.append(std)
    return means, stds


def _row(r: RunRecord) -> list[float]:
    """One run's value of each of :data:`METRICS` (its metrics and cost, with |LD|), NaN where absent or not a
    number."""
    values = {**(r.metrics or {}), **(r.cost or {})}
    get = lambda k: float(v) if isinstance(v := values.get(k), (int, float)) else math.nan  # noqa: E731
    derived = {"abs_ld": abs(get("ld")), "abs_val_ld": abs(get("val_loss") - get("train_loss"))}
    return [derived[m] if m in derived else get(m) for m in METRICS]


def _scored(rows: list[RankedPolicy]) -> list[RankedPolicy]:
    """The rows of one budget with their weighted score (see the module's docstring)."""
    score = [0.0] * len(rows)
    for m, higher_better, weight in SCORE_WEIGHTS:
        xs = [r.mean[m] for r in rows if math.isfinite(r.mean[m])]
        if not xs:
            continue
        best, worst = (max(xs), min(xs)) if higher_better else (min(xs), max(xs))
        for i, r in enumerate(rows):
            if math.isfinite(r.mean[m]):
                score[i] += weight * (1.0 if best == worst else (r.mean[m] - worst) / (best - worst))
    return [replace(r, score=s) for r, s in zip(rows, score)]


def _sort_key(row: RankedPolicy, order: Sequence[tuple[str, bool]]) -> tuple:
    keys: list[Any] = [(row.n - row.n_ok) / row.n]  # diverged, failed and pruned runs first of all
    for key, descending in order:
        v = row.value(key)
        keys.append((1, 0.0) if math.isnan(v) else (0, -v if descending else v))
    return (*keys, row.policy)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
