"""Does the range test's one answer train? Its LR as a constant LR at the task's budget, against the decade grid.

For each task: the range test as `lrpilot range-test` runs it (sweep over 3 seeds, then the decade
search, 2 epochs per LR over 3 seeds, and its answer), then FIX at the answer's LR and at each LR
the decade search measured from best/5 to 5 best (its 1-2-5 grid) at the task's full budget over
seeds 0, 1, 2. Prints mean +- std of the final Top-1 per LR, the grid's best constant LR and
whether the answer is within 1 point of it. Runs go to a store in a temporary folder.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/range_test_quality.py [--tasks digits-lenet mnist1d-cnn]
     [--epochs E] [--workers 2]   (on 2 cores: digits-lenet about 2 minutes, mnist1d-cnn
     at its 100 epochs about 2)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from lrpilot.bench.range_test import _fix, decade_test, sweep_test
from lrpilot.grid.runner import bench
from lrpilot.engine import budget
from lrpilot.execution.executors import LocalExecutor
from lrpilot.store import Store
from lrpilot.tasks import get_task

SEEDS = (0, 1, 2)


def top1(store: Store, task: str, total: int, lr: float) -> list[float]:
    """The final Top-1 of FIX(lr)'s full-budget runs (a diverged or failed run: chance, as the range test counts)."""
    chance = 100.0 / (get_task(task).num_classes or 100)
    return [r.metrics["top1"] if r.status == "ok" else chance
            for r in store.runs(task=task, policy=_fix(lr), purpose="bench", curves=False) if r.budget == total]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet"])
    ap.add_argument("--epochs", type=float, default=None, help="full budget (default: the task's own)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store(f"{tmp}/results.db") as store, \
            LocalExecutor(args.workers) as executor:
        for task in args.tasks:
            sweep = sweep_test(store, task, seeds=SEEDS, executor=executor)
            decade = decade_test(store, task, seeds=SEEDS, sweep=sweep, executor=executor)
            a = decade.answer
            grid = [p["lr"] for p in decade.points if decade.best_lr / 5.01 <= p["lr"] <= decade.best_lr * 5.01]
            total = budget(get_task(task), None, args.epochs)
            bench(store, task, [_fix(lr) for lr in dict.fromkeys(grid + [a["lr"]])], seeds=SEEDS, steps=total,
                  executor=executor)
            each = ", ".join("none" if c["suggestion"] is None else f"{c['suggestion']:.3g}" for c in sweep.curves)
            print(f"\n{task}: sweep suggestions {each} "
                  f"(median {sweep.suggestion:.3g}); decade good range [{decade.k_low:g}, {decade.k_high:g}]")
            print(f"answer: {a['lr']:.3g} ({a['method']}): {a['why']}")
            print(f"FIX at the full budget ({total} iterations), seeds {list(SEEDS)}:")
            means = {}
            for lr in sorted(set(grid + [a["lr"]])):
                v = top1(store, task, total, lr)
                means[lr] = statistics.fmean(v)
                short = {p["lr"]: p for p in decade.points}.get(lr)
                note = f"   (decade, 2 epochs: {short['top1_mean']:.2f} +- {short['top1_std']:.2f}, n={short['n']})" \
                    if short else ""
                print(f"  {lr:<8.3g}{means[lr]:7.2f} +- {statistics.stdev(v):.2f}{'  <- answer' if lr == a['lr'] else ''}"
                      f"{note}", flush=True)
            best = max((lr for lr in grid), key=means.get)
            gap = means[best] - means[a["lr"]]
            print(f"best constant LR of the grid: {best:g} ({means[best]:.2f}); answer {gap:.2f} points below: "
                  f"{'within' if gap <= 1.0 else 'NOT within'} 1 point")


if __name__ == "__main__":
    main()
