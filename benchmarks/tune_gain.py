"""Does tune at its default budget beat the task's default LR? Its choice against FIX(k0=task.lr) on fresh seeds.

For each task: ``lrpilot tune`` at its default budget (10 runs of the task) on seeds 0-4 in its own store; then
its choice (the replayable text) and the task's default policy FIX(k0=lr) are trained on seeds 100-104, which
tune never saw, and compared on the test split: each mean Top-1 with its 95 % interval, and the paired
difference choice - default with its interval (``lrpilot rank``'s statistics). Stores in ``--store`` keep every
run, so an interrupted benchmark resumes.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_gain.py [--tasks digits-lenet mnist1d-cnn] [--store DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lrpilot.decision import stats
from lrpilot.decision.rule import outcomes
from lrpilot.grid.runner import bench, canonical_policies
from lrpilot.bench.tune import tune
from lrpilot.engine import budget
from lrpilot.execution.executors import LocalExecutor
from lrpilot.policy.text import fmt_sig
from lrpilot.store import Store
from lrpilot.tasks import TaskRef

FRESH = (100, 101, 102, 103, 104)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet", "mnist1d-cnn"])
    ap.add_argument("--store", type=Path, default=Path("/tmp/tune_gain"))
    args = ap.parse_args()
    args.store.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        task = TaskRef(name).build()
        with Store(args.store / f"{name}-tune.db") as store, LocalExecutor() as ex:
            chosen = tune(store, name, executor=ex)
        default = f"FIX(k0={fmt_sig(task.lr, 3)})"
        texts = canonical_policies([chosen.best, default])
        with Store(args.store / f"{name}-fresh.db") as store, LocalExecutor() as ex:
            bench(store, name, texts, seeds=FRESH, executor=ex)
            total = budget(task, None, None)
            runs = [r for r in store.runs(task=task.name, purpose="bench", curves=False, outcomes=True)
                    if r.budget == total and r.seed in FRESH]
        test = {t: outcomes([r for r in runs if r.policy == t], "test") for t in texts}
        d, _ = stats.paired_difference(test[texts[0]], test[texts[1]])
        print(f"{name}: tune (default budget, {chosen.epoch_equivalents:.0f} epoch-eq) chose {chosen.best}")
        for t in texts:
            iv = stats.top1_interval(test[t])
            print(f"  {t}: test Top-1 on seeds 100-104 {iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]")
        print(f"  gain over the default: {d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] points", flush=True)


if __name__ == "__main__":
    main()
