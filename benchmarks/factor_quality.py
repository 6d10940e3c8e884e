"""Kim and Yu's comparison on small tasks: the factor scheduler against fixed schedules, all from LR 0.005.

The slides' set-up (ResNet-18, CIFAR-10, 100 epochs, batch 32, every scheduler from LR 0.005,
PyTorch's defaults otherwise) gives Top-1: ours 87.0, linear 85.2, cosine 85.0, step 84.4,
constant 83.5. Here: digits-lenet and mnist1d-cnn at their default budgets (15 and 100 epochs,
SGD with momentum 0.9 and weight decay 5e-4), seeds 0, 1, 2, and

- FIX: constant 0.005;
- STEP: x0.1 every 30% of the run (PyTorch's StepLR gamma; its step_size has no default);
- COS: cosine from 0.005 to 0 over the run (CosineAnnealingLR, eta_min 0);
- POLY p=1: linear decay to 0 over the run;
- factor(k0=0.005) with Factor_3, 5 and 7 (default bounds [k0/1000, 10 k0]), and Factor_3
  with the cap at 100 k0;
- references outside the slides' set-up: FIX and COS from the default cap, 10 k0 = 0.05, to tell
  what the scheduler adds beyond reaching that LR.

Prints mean +- std of the final test Top-1 per task and policy, and the factor runs' final LRs.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/factor_quality.py [--tasks digits-lenet mnist1d-cnn]
     [--seeds 3] [--epochs E]   (about 8 minutes on one core at the default budgets)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrpilot.engine import budget, train
from lrpilot.tasks import get_task

K0 = 0.005
SLIDES = {"FIX": 83.5, "STEP": 84.4, "COS": 85.0, "POLY p=1": 85.2}  # their "ours" (87.0) names no list


def policies(total: int) -> dict[str, str]:
    """The compared policies for a run of ``total`` iterations, by row label."""
    return {
        "FIX": f"FIX(k0={K0})",
        "STEP": f"STEP(k0={K0}, gamma=0.1, l={round(0.3 * total)})",
        "COS": f"COS(k0={K0}, k1=0, l={total})",
        "POLY p=1": f"POLY(k0={K0}, p=1, l={total})",
        "factor Factor_3": f"factor(k0={K0})",
        "factor Factor_5": f"factor(k0={K0}, factors=5)",
        "factor Factor_7": f"factor(k0={K0}, factors=7)",
        "factor Factor_3, max 100 k0": f"factor(k0={K0}, bounds=[{K0 / 1000}, {100 * K0}])",
        "ref: FIX at 10 k0": f"FIX(k0={10 * K0})",
        "ref: COS from 10 k0": f"COS(k0={10 * K0}, k1=0, l={total})",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet", "mnist1d-cnn"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=None, help="override the tasks' default budgets")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.tasks:
        task = get_task(name)
        total = budget(task, None, args.epochs)
        print(f"\n{name}: {total} iterations ({total / task.iters_per_epoch:g} epochs), seeds 0..{args.seeds - 1}")
        print(f"  {'policy':<30}{'Top-1 mean +- std':>20}{'slides CIFAR-10':>17}   final LR of the factor runs")
        for label, text in policies(total).items():
            start = time.perf_counter()
            runs = [train(task, text, seed=s, steps=total) for s in range(args.seeds)]
            top1 = [r.metrics["top1"] if r.status == "ok" else float("nan") for r in runs]
            slides = SLIDES.get(label)
            lrs = [r.record["points"][-1]["eta"] for r in runs if r.record.get("points")]
            std = statistics.stdev(top1) if len(top1) > 1 else 0.0
            print(f"  {label:<30}{statistics.mean(top1):>11.2f} +- {std:<5.2f}"
                  f"{'' if slides is None else slides:>17}   "
                  f"{' '.join(f'{lr:.3g}' for lr in lrs)}  ({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nslides (ResNet-18, CIFAR-10): ours 87.0, linear 85.2, cosine 85.0, step 84.4, constant 83.5")


if __name__ == "__main__":
    main()
