"""Do the adaptive methods adapt? Each method, the paper's reading and lrpilot's default, against FIX and COS.

For each task: the range test's answer ``lr`` (decade search, one epoch per LR, stored), and from each start
LR ``lr / 10``, ``lr`` and ``10 lr``, at the same budget, over ``--seeds`` seeds:

- FIX(k0=start), COS(k0=start, k1=0, l=T);
- ``factor`` paper: ``factor(k0=start, probe=slides)`` (the slides' Algorithm 1, per epoch) and the default
  ``factor(k0=start)`` (the lookahead probe every 1/40 of the run, the divergence guard);
- ``autodrop`` paper: ``autodrop(k0=start, rho=0.2, saturation=absolute)`` (theta0 = 0.01 degrees, per epoch,
  n_d = 20) and the default ``autodrop(k0=start, rho=0.2)`` (the relative saturation test, 40 periods, the
  divergence guard);
- ``stpt`` paper: ``stpt(k0=start, choose=best)`` (Algorithm 1's bestLR) and the default ``stpt(k0=start)`` (the
  LR nearest the current one among those within noise of the best).

Each cell: test Top-1 mean with its 95 % interval over seeds and test examples (as ``lrpilot rank`` gives them),
and the paired difference from FIX at the same start (points, with its interval); a policy with diverged runs
shows their number and its mean Top-1 with a diverged run at chance level (10 %). "Ahead of FIX" is beyond the
noise: the paired difference's interval above 0 (where FIX has diverged runs: none of the method's diverged and
its interval above FIX's mean). The seeds' claims, each stated yes/no:

- the slides: factor from LR 0.005 against constant, step (x0.1 every 30 % of the run, PyTorch's StepLR
  gamma) and cosine to 0, all from 0.005;
- AutoDrop Table 2: the initial LR at 0.3, 0.5, 1 and 1.5 x the range test's (the paper's 0.03-0.15 around
  0.1), against the baseline step schedule (x rho = 0.2 at 50 % and 75 % of the run): AutoDrop ahead at every
  initial LR, and the spread (max - min of the means) of each;
- STPT: 87.5 % fewer iterations at no loss: STPT from ``lr`` against the best on validation of the 8 separate
  FIX runs at the LRs of its Wide set around ``lr`` (5 ... 0.2 x), on test; its compute over theirs.
The reference "the better of FIX/COS" in the targets is the better on test (the stricter comparison).

Runs are stored in ``--store`` (one SQLite file a task), so an interrupted benchmark resumes where it stopped.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/adaptive_quality.py [--tasks digits-lenet mnist1d-cnn mnist-lenet]
     [--seeds 3] [--workers 2] [--store DIR] [--out benchmarks/results/adaptive_quality.md] [--claims TASK ...]
     (mnist-lenet trains 2,000 iterations, the others their default budgets)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lrpilot.decision import stats
from lrpilot.decision.rule import outcomes
from lrpilot.bench.range_test import decade_test, latest
from lrpilot.grid.runner import bench, canonical_policies
from lrpilot.bench.tune import start_lr
from lrpilot.engine import budget
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.text import fmt_sig
from lrpilot.search.stpt import LR_SETS
from lrpilot.store import Store
from lrpilot.tasks import TaskRef

STEPS = {"mnist-lenet": 2000}  # a budget that fits here; the others train their default budgets
STARTS = {"1/10": 0.1, "1x": 1.0, "10x": 10.0}
METHODS = {  # row label -> policy text for a start LR k and a run of T iterations
    "FIX": "FIX(k0={k})",
    "COS": "COS(k0={k}, k1=0, l={T})",
    "factor (slides)": "factor(k0={k}, probe=slides)",
    "factor (default)": "factor(k0={k})",
    "autodrop (paper)": "autodrop(k0={k}, rho=0.2, saturation=absolute{kmin})",
    "autodrop (default)": "autodrop(k0={k}, rho=0.2{kmin})",
    "stpt (paper)": "stpt(k0={k}, choose=best)",
    "stpt (default)": "stpt(k0={k})",
}
DEFAULTS = ("factor (default)", "autodrop (default)", "stpt (default)")
SLIDES_K0 = 0.005
TABLE2 = (0.3, 0.5, 1.0, 1.5)


def text(template: str, k: float, total: int) -> str:
    """``template`` at start LR ``k`` for a run of ``total`` iterations (AutoDrop's floor kept below k)."""
    kmin = "" if k > 1e-4 else f", k_min={fmt_sig(k / 10, 3)}"
    return canonical_policies([template.format(k=fmt_sig(k, 3), T=total, kmin=kmin)])[0]


class Task:
    """One task's store, budget, range test and results."""

    def __init__(self, name: str, store_dir: Path, seeds: int, workers: int):
        self.ref = TaskRef(name)
        self.obj = self.ref.build()
        self.store = Store(store_dir / f"{name}.db")
        self.total = budget(self.obj, STEPS.get(name), None)
        self.seeds, self.workers = tuple(range(seeds)), workers
        found = latest(self.store, self.obj.name)
        if found is None:
            with LocalExecutor(workers) as ex:
                found = decade_test(self.store, self.ref, seeds=(0,), epochs=1.0, executor=ex)
        self.lr = start_lr(found)

    def train(self, texts: list[str]) -> None:
        start = time.perf_counter()
        with LocalExecutor(self.workers) as ex:
            summary = bench(self.store, self.ref, texts, seeds=self.seeds, steps=self.total, executor=ex)
        print(f"  {self.obj.name}: {len(texts)} policies x {len(self.seeds)} seeds ({summary.trained} trained) "
              f"in {time.perf_counter() - start:.0f} s", flush=True)

    def runs(self, policy: str) -> list[Any]:
        return [r for r in self.store.runs(task=self.obj.name, policy=policy, purpose="bench", curves=False,
                                           outcomes=True) if r.budget == self.total and r.seed in self.seeds]

    def test(self, policy: str) -> dict[int, Any]:
        return outcomes(self.runs(policy), "test")

    def interval(self, policy: str) -> stats.Interval | None:
        test = self.test(policy)
        return stats.top1_interval(test) if len(test) == len(self.seeds) else None

    def versus(self, policy: str, other: str) -> stats.Interval | None:
        """``policy - other`` in points, paired by seed and example."""
        a, b = self.test(policy), self.test(other)
        return stats.paired_difference(a, b)[0] if len(a) == len(b) == len(self.seeds) else None

    def lr_moved(self, policy: str) -> str:
        """The LR's range over the runs' trajectories, e.g. ``0.05 -> [0.009, 0.12]``."""
        lrs = [lr for r in self.runs(policy) for _, lr in (r.record or {}).get("trajectory", [])]
        return f"[{fmt_sig(min(lrs), 2)}, {fmt_sig(max(lrs), 2)}]" if lrs else "fixed"

    def diverged(self, policy: str) -> int:
        return sum(r.status == "diverged" for r in self.runs(policy))

    def mean(self, policy: str) -> float:
        """Mean test Top-1 over the seeds, a diverged run counted at chance level."""
        runs = self.runs(policy)
        chance = 100.0 / self.obj.num_classes
        return sum((r.metrics or {}).get("top1", chance) if r.status == "ok" else chance for r in runs) / len(runs)

    def val_mean(self, policy: str) -> float:
        """Mean validation Top-1 over the seeds' finished runs (what a user choosing among them would see)."""
        vals = [r.metrics["val_top1"] for r in self.runs(policy) if r.status == "ok"]
        return sum(vals) / len(vals) if vals else -1.0

    def cell(self, policy: str) -> str:
        n = self.diverged(policy)
        return cell(self.interval(policy)) if not n else f"{n} of {len(self.seeds)} diverged ({self.mean(policy):.2f})"

    def compute(self, policy: str) -> float:
        runs = self.runs(policy)
        return sum((r.cost or {}).get("epoch_equivalents") or 0.0 for r in runs) / max(1, len(runs))


def cell(iv: stats.Interval | None) -> str:
    return "-" if iv is None else f"{iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]"


def diff(iv: stats.Interval | None) -> str:
    return "-" if iv is None else f"{iv.mean:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"


def main_table(t: Task) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The methods x starts table's lines, and each cell's policy text."""
    texts = {start: {label: text(tpl, t.lr * f, t.total) for label, tpl in METHODS.items()}
             for start, f in STARTS.items()}
    t.train([p for row in texts.values() for p in row.values()])
    lines = [f"| method | " + " | ".join(f"{s} = {fmt_sig(t.lr * f, 3)}: Top-1 | vs FIX" for s, f in STARTS.items())
             + " | LR range (1x) |", "| --- |" + " --- | --- |" * len(STARTS) + " --- |"]
    for label in METHODS:
        cells = []
        for start in STARTS:
            p, fix = texts[start][label], texts[start]["FIX"]
            cells += [t.cell(p), "" if label == "FIX" else diff(t.versus(p, fix))]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {t.lr_moved(texts['1x'][label])} |")
    return lines, texts


def targets(t: Task, texts: dict[str, dict[str, str]]) -> list[str]:
    """The issue's targets for the defaults, each yes/no with its numbers."""
    out = []
    for label in DEFAULTS:
        below = [s for s in STARTS if (d := t.versus(texts[s][label], texts[s]["FIX"])) is not None and d.high < 0]
        ref = max(("FIX", "COS"), key=lambda m: t.mean(texts["1x"][m]))
        near = t.versus(texts["1x"][label], texts["1x"][ref])
        better = [s for s in ("1/10", "10x") if ahead(t, texts[s][label], texts[s]["FIX"])]
        verdict = "yes" if not below else f"no ({', '.join(below)})"
        out.append(f"- {label}: never significantly below FIX: {verdict}; "
                   f"from 1x within noise of the better of FIX/COS ({ref}): "
                   f"{'yes' if near is not None and near.high >= 0 else 'no'} ({diff(near)}); "
                   f"ahead of FIX beyond the noise from 1/10 and 10x: {', '.join(better) or 'neither'}")
    return out


def ahead(t: Task, policy: str, fix: str) -> bool:
    """``policy`` ahead of ``fix`` beyond the noise: their paired difference's interval above 0; where that has no
    interval (a diverged run), ``policy`` with none diverged and its interval's low end above ``fix``'s mean, a
    diverged run of it at chance level."""
    d = t.versus(policy, fix)
    if d is not None:
        return d.low > 0
    iv = t.interval(policy)
    return not t.diverged(policy) and iv is not None and iv.low > t.mean(fix)


def claims(t: Task) -> list[str]:
    """The seeds' own claims on this task, yes/no."""
    T = t.total
    slides = {"constant": f"FIX(k0={SLIDES_K0})", "step": f"STEP(k0={SLIDES_K0}, gamma=0.1, l={round(0.3 * T)})",
              "cosine": f"COS(k0={SLIDES_K0}, k1=0, l={T})", "factor (slides)": f"factor(k0={SLIDES_K0}, probe=slides)",
              "factor (default)": f"factor(k0={SLIDES_K0})"}
    slides = {k: canonical_policies([v])[0] for k, v in slides.items()}
    table2 = {f: {"baseline": text(f"NSTEP(k0={{k}}, gamma=0.2, l=[{T // 2}, {3 * T // 4}])", t.lr * f, T),
                  "paper": text(METHODS["autodrop (paper)"], t.lr * f, T),
                  "default": text(METHODS["autodrop (default)"], t.lr * f, T)} for f in TABLE2}
    grid = [text("FIX(k0={k})", t.lr * m, T) for m in LR_SETS["wide"]]
    stpt = {"paper": text(METHODS["stpt (paper)"], t.lr, T), "default": text(METHODS["stpt (default)"], t.lr, T)}
    t.train(list(slides.values()) + [p for row in table2.values() for p in row.values()] + grid + list(stpt.values()))

    means = {k: t.mean(p) for k, p in slides.items()}
    fixed = max(means[k] for k in ("constant", "step", "cosine"))
    out = [f"- slides (factor from {SLIDES_K0} beats constant, step and cosine from {SLIDES_K0}): "
           + ", ".join(f"{k} {t.cell(p)}" for k, p in slides.items())
           + f"; reproduced: {'yes' if means['factor (slides)'] > fixed else 'no'} (slides reading), "
           f"{'yes' if means['factor (default)'] > fixed else 'no'} (default)"]
    rows = {m: [t.mean(table2[f][m]) for f in TABLE2] for m in ("baseline", "paper", "default")}
    spread = {m: max(v) - min(v) for m, v in rows.items()}
    out.append(f"- AutoDrop Table 2 (initial LR {', '.join(fmt_sig(t.lr * f, 3) for f in TABLE2)}): "
               + "; ".join(f"{m} " + " / ".join(f"{v:.2f}" for v in rows[m]) + f" (spread {spread[m]:.2f})"
                           for m in rows)
               + "; AutoDrop ahead of the baseline at every initial LR: "
               + ", ".join(f"{m} {'yes' if all(a > b for a, b in zip(rows[m], rows['baseline'])) else 'no'}"
                           for m in ("paper", "default")))
    best_grid = max(grid, key=t.val_mean)  # the grid's choice, made on validation as a user would
    grid_cost = sum(t.compute(p) for p in grid)
    for reading, p in stpt.items():
        d = t.versus(p, best_grid)
        out.append(f"- STPT ({reading}, {p}): {t.cell(p)} against the 8-LR grid's best on validation "
                   f"{best_grid} {t.cell(best_grid)}: {diff(d)} points at {t.compute(p) / grid_cost:.3f} "
                   f"of its compute; no loss (within 0.5 point) at <= 0.2 of the compute: "
                   f"{'yes' if d is not None and d.mean >= -0.5 and t.compute(p) <= 0.2 * grid_cost else 'no'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet", "mnist1d-cnn", "mnist-lenet"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", type=Path, default=Path("/tmp/adaptive_quality"))
    ap.add_argument("--out", type=Path, default=None, help="also write the tables to this Markdown file")
    ap.add_argument("--claims", nargs="*", default=None, metavar="TASK",
                    help="check the seeds' claims on these tasks only (default: every task; none: --claims)")
    args = ap.parse_args()
    args.store.mkdir(parents=True, exist_ok=True)
    report = ["# Adaptive methods: the papers' readings and lrpilot's defaults", "",
              f"`benchmarks/adaptive_quality.py`, {args.seeds} seeds; test Top-1 % with 95 % intervals over seeds "
              "and test examples; `vs FIX`: the paired difference from FIX at the same start LR (points). Command: "
              f"`{' '.join(['benchmarks/adaptive_quality.py'] + sys.argv[1:])}`.", ""]
    overview: dict[str, tuple[Task, dict[str, dict[str, str]]]] = {}
    for name in args.tasks:
        t = Task(name, args.store, args.seeds, args.workers)
        lines, texts = main_table(t)
        overview[name] = t, texts
        section = [f"## {t.obj.name}: {t.total} iterations, range test's LR {fmt_sig(t.lr, 3)}", "", *lines, "",
                   "Targets:", *targets(t, texts)]
        if args.claims is None or name in args.claims:
            section += ["", "The seeds' claims:", *claims(t)]
        else:
            section += ["", "The seeds' claims: not checked on this task (`--claims`)."]
        print("\n".join(section), flush=True)
        report += section + [""]
    summary = ["## Overview", "", "Mean test Top-1 % from 1/10, 1x and 10x the range test's LR (a diverged run at "
               "chance level, marked *):", "", "| method | " + " | ".join(overview) + " |",
               "| --- |" + " --- |" * len(overview)]
    for label in METHODS:
        summary.append(f"| {label} | " + " | ".join(
            " / ".join(f"{t.mean(texts[s][label]):.2f}" + ("*" if t.diverged(texts[s][label]) else "") for s in STARTS)
            for t, texts in overview.values()) + " |")
    print("\n".join(summary))
    report[4:4] = summary + [""]
    if args.out:
        args.out.write_text("\n".join(report))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
