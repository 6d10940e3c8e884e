"""Recommendation from stored results (LRBench Section III): good policies for a task, new or known.

Three cases, tried in order:

1. ``stored``: the task has finished benchmark runs (purpose "bench", not range-test probes): its top
   policies by utility, at its largest budget.
2. ``similar``: it has none: the top policies of the most similar stored task(s). Similarity of a
   stored task to this one = 4 (same dataset) + 2 (same model family: the model name without a
   trailing size, ResNet-20 ~ ResNet-32) + 1 (same #classes) + 1 (same input shape); at least 1.
   Their LRs (k0, k1) are rescaled by this task's range test when one is stored: times this
   task's best constant LR over the source task's (its range test, else its best FIX run).
3. ``range-test``: nothing similar is stored: the ``lrbench13`` suite scaled to this task's
   stored range test (run here first when there is none), FIX at the best LR first.

Every recommendation is policy text that ``lrpilot train --policy`` accepts; an adaptive one (a
search or controller) also comes with ``replay``, the LR trajectory its stored run chose as a fixed
piecewise policy, which trains again at no search cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from lrpilot.bench.suite import lrbench13
from lrpilot.controllers.base import make_controller
from lrpilot.decision.ranking import rank
from lrpilot.decision.rule import RULE
from lrpilot.distill import replayable
from lrpilot.policy.text import Call, parse, render
from lrpilot.store import Storage
from lrpilot.store.meta import task_row
from lrpilot.tasks import TASKS, TaskRef

if TYPE_CHECKING:
    from lrpilot.bench.range_test import RangeTestResult  # torch: only where a range test runs


@dataclass
class Recommendation:
    """Policies for a task, the case that produced them, and where they come from."""

    task: str
    case: str  # stored | similar | range-test
    note: str
    # policy, source, val_top1_mean, val_top1_ci, top1_mean, top1_ci, top1_std, n, tied_with_best, chosen[, replay]
    policies: list[dict[str, Any]] = field(default_factory=list)

    def format(self) -> str:
        """Lines for the terminal."""
        lines = [f"{self.task}: {self.note}"]
        for i, p in enumerate(self.policies, 1):
            measured = "" if p.get("val_top1_mean") is None else (
                f"  validation Top-1 {_with_ci(p['val_top1_mean'], p['val_top1_ci'])}, test "
                f"{_with_ci(p['top1_mean'], p['top1_ci'])} ({p['n']} runs on {p['source']})"
                + (f"; chosen: {RULE}" if p.get("chosen") else
                   "; tied with the best" if p.get("tied_with_best") else ""))
            lines.append(f"  {i}. {p['policy']}{measured}")
            if p.get("replay"):
                lines.append(f"     its LR trajectory as a fixed policy (no search cost): {p['replay']}")
        return "\n".join(lines)


def recommend(store: Storage, task: str | TaskRef, *, top: int = 5, data_dir: str | None = None,
              range_test: bool = True, progress: Callable[[str], None] | None = None,
              **range_args: Any) -> Recommendation:
    """Recommend up to ``top`` policies for ``task`` (a name with ``data_dir``, a :class:`TaskRef` or a Task) from
    ``store`` (see the module for the cases)."""
    ref = TaskRef.of(task, data_dir)
    # a built-in task is stored under its own name: its stored policies need no task built (nor torch)
    rec = _stored(store, ref.name, top) if ref.name in TASKS else None
    if rec is not None:
        return rec
    task_obj = ref.build()
    name = task_obj.name
    rec = _stored(store, name, top)
    if rec is not None:
        return rec
    from lrpilot.bench.range_test import decade_test, latest  # they train: only past the stored case
    from lrpilot.engine import budget

    tasks = {t["name"]: t for t in store.tasks()}
    this = task_row(task_obj)
    scored = sorted(((similarity(this, t), n) for n, t in tasks.items() if n != name), reverse=True)
    scored = [(s, n) for s, n in scored if s > 0 and store.runs(task=n, purpose="bench", curves=False)]
    if scored:
        best = scored[0][0]
        sources = [n for s, n in scored if s == best]
        mine = latest(store, name)
        picks = sorted((p for n in sources for p in _top(store, n, top)),
                       key=lambda p: (not p["chosen"], -(p["val_top1_mean"] if p["val_top1_mean"] is not None
                                                          else -1)))[:top]
        factors = {n: _factor(store, n, mine) for n in {p["source"] for p in picks}}
        scaled = 0
        for p in picks:
            factor = factors[p["source"]]
            if factor is not None:
                p["policy"], scaled = rescale(p["policy"], factor), scaled + 1
        how = "rescaled by this task's range test" if scaled else "not rescaled (no range test of this task stored)"
        return Recommendation(name, "similar", f"no stored runs; the best policies of the most similar stored "
                              f"task(s) {', '.join(sources)} (similarity {best}/8), {how}", picks)
    found = latest(store, name)
    if found is None and not range_test:
        return Recommendation(name, "range-test", "no stored runs of this or a similar task, and no range test: "
                              "run lrpilot range-test --task " + name)
    ran = found is None
    found = found or decade_test(store, ref, progress=progress, **range_args)
    total = budget(task_obj, None, None)
    picks = [{"policy": p, "source": "range test", "val_top1_mean": None, "top1_mean": None, "n": 0}
             for p in lrbench13(total, found.k_low, found.k_high, found.best_lr)[:top]]
    return Recommendation(name, "range-test", f"no stored runs of this or a similar task: the LRBench suite scaled "
                          f"to the {'new' if ran else 'stored'} range test [{found.k_low:g}, {found.k_high:g}] "
                          f"(best {found.best_lr:g}); benchmark them with lrpilot bench --suite lrbench13", picks)


def _with_ci(mean: float | None, ci: list[float] | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f} %" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def _top(store: Storage, task: str, top: int) -> list[dict[str, Any]]:
    """The top policies of ``task`` at its largest budget, from its benchmark runs: the decision
    (:data:`lrpilot.decision.rule.RULE`) first, then in order of validation utility."""
    ranking = rank(store.runs(task=task, purpose="bench", curves=False, outcomes=True), "utility", task=task)
    if not ranking.rows:
        return []
    largest = max(r.budget for r in ranking.rows)
    rows = sorted((r for r in ranking.rows if r.budget == largest), key=lambda r: not r.chosen)
    picks = []
    for r in rows[:top]:
        replay = replayable(r.policy, r.runs)
        d = r.to_dict()
        picks.append({"policy": r.policy, "source": task, "n": r.n,
                      **{k: d[k] for k in ("val_top1_mean", "val_top1_ci", "top1_mean", "top1_ci", "top1_std",
                                           "tied_with_best", "chosen")},
                      **({"replay": replay} if replay != r.policy else {})})
    return picks


def _family(model: str | None) -> str | None:
    return None if not model else re.sub(r"[-_ ]?\d+$", "", model).lower()


def similarity(a: dict[str, Any], b: dict[str, Any]) -> int:
    """The module's similarity of two ``tasks`` rows (0 to 8)."""
    def same(x, y):
        return x is not None and y is not None and x == y
    return (4 * same((a.get("dataset") or "").lower() or None, (b.get("dataset") or "").lower() or None)
            + 2 * same(_family(a.get("model")), _family(b.get("model")))
            + same(a.get("num_classes"), b.get("num_classes")) + same(a.get("input_shape"), b.get("input_shape")))


def _stored(store: Storage, name: str, top: int) -> Recommendation | None:
    """The ``stored`` case: task ``name``'s own best stored policies, if it has any."""
    own = _top(store, name, top)
    return Recommendation(name, "stored", f"its {len(own)} best stored policies, by utility", own) if own else None


def _factor(store: Storage, source: str, mine: RangeTestResult | None) -> float | None:
    """This task's best constant LR over the source task's, or None if either is unknown."""
    if mine is None:
        return None
    from lrpilot.bench.range_test import latest
    theirs = latest(store, source)
    if theirs is not None:
        return mine.best_lr / theirs.best_lr
    for row in rank(store.runs(task=source, purpose="bench", curves=False, outcomes=True), "utility",
                    task=source).rows:
        call = parse(row.policy)
        if call.name == "FIX":
            return mine.best_lr / float(call.kwargs["k0"])
    return None


def rescale(text: str, factor: float) -> str:
    """``text`` with its range parameters k0 and k1 (also inside composites) multiplied by ``factor``."""
    def walk(v: Any) -> Any:
        if isinstance(v, Call):
            return replace(v, args=[walk(a) for a in v.args],
                           kwargs={k: float(f"{x * factor:.4g}") if k in ("k0", "k1") else walk(x)
                                   for k, x in v.kwargs.items()})
        return [walk(x) for x in v] if isinstance(v, list) else v
    return str(make_controller(render(walk(parse(text)))))
