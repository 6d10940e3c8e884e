"""AutoDrop against the fixed STEP drops it replaces, across initial LRs (the AutoDrop paper's Tables 1-2).

The baseline is the paper's: NSTEP with the same drop factor rho at fixed epochs (30%, 60% and 80%
of the budget, the 60/120/160-of-200 schedule of its CIFAR baselines). AutoDrop runs with the
paper's recommended settings (theta0 = 0.01 deg, theta_max = 1 deg, k_min = 1e-4) and n_d as a
fraction of the run, and once more with thresholds scaled to the epoch-to-epoch noise of the
angular velocity on these small tasks (not the paper's). Every row: mean +- std over the seeds of
the final Top-1 and test loss, and the number of drops. Seeds pick the initialisation and the
batch order; the split is the task's default.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/autodrop_quality.py
     [--tasks digits-lenet:30 mnist1d-cnn:60] [--seeds 3] [--lr-scales 0.5 1 2] [--rho 0.2] [--nd 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrpilot.engine import train
from lrpilot.policy.text import fmt_number
from lrpilot.tasks import get_task

BASELINE_AT = (0.3, 0.6, 0.8)


def methods(lr: float, total: int, rho: float, nd: float) -> dict[str, str]:
    """The policies compared at one initial LR: the fixed drops, AutoDrop (paper), AutoDrop (scaled thresholds)."""
    k0, r, n = fmt_number(lr), fmt_number(rho), fmt_number(nd)
    bounds = ", ".join(fmt_number(round(f * total)) for f in BASELINE_AT)
    return {
        "NSTEP baseline": f"NSTEP(k0={k0}, gamma={r}, l=[{bounds}])",
        "AutoDrop paper": f"autodrop(k0={k0}, rho={r}, nd={n})",
        "AutoDrop theta0=1": f"autodrop(k0={k0}, rho={r}, theta0=1, theta_max=10, nd={n})",
    }


def mean_std(values: list[float], digits: int) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {std:.{digits}f}"


def row(task, text: str, epochs: int, seeds: int) -> tuple[str, str, str]:
    """Top-1, final test loss and drops (mean +- std over seeds) of one policy."""
    runs = [train(task, text, seed=s, epochs=epochs) for s in range(seeds)]
    bad = [r.status for r in runs if r.status != "ok"]
    if bad:
        return f"{len(bad)} of {seeds} {bad[0]}", "-", "-"
    drops = [len(r.record["drops"]) if "drops" in r.record else len(BASELINE_AT) for r in runs]
    return (mean_std([r.metrics["top1"] for r in runs], 2), mean_std([r.metrics["test_loss"] for r in runs], 4),
            mean_std(drops, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet:30", "mnist1d-cnn:60"], help="TASK:EPOCHS")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr-scales", nargs="+", type=float, default=[0.5, 1.0, 2.0], help="initial LR / task LR")
    ap.add_argument("--rho", type=float, default=0.2)
    ap.add_argument("--nd", type=float, default=0.1, help="AutoDrop's n_d as a fraction of the run")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, {args.seeds} seeds, rho {args.rho}, "
          f"baseline drops at {', '.join(f'{f:.0%}' for f in BASELINE_AT)} of the budget")
    header = f"{'task':<14} {'LR':>7}  {'method':<18} {'Top-1 %':>16} {'test loss':>18} {'drops':>11}"
    for spec in args.tasks:
        name, epochs = spec.split(":")
        task, epochs, start = get_task(name), int(epochs), time.perf_counter()
        print(f"\n{name}: {epochs} epochs ({epochs * task.iters_per_epoch} iterations)\n{header}")
        for scale in args.lr_scales:
            lr = task.lr * scale
            for label, text in methods(lr, epochs * task.iters_per_epoch, args.rho, args.nd).items():
                top1, loss, drops = row(task, text, epochs, args.seeds)
                print(f"{name:<14} {fmt_number(lr):>7}  {label:<18} {top1:>16} {loss:>18} {drops:>11}", flush=True)
        print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
