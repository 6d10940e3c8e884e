"""STPT against the grid of its 8 LRs trained separately and against the paper's reference.

The paper (Yamada et al., Section III) claims that 8 LRs pre-trained on 8 workers cost 87.5% fewer
iterations than 8 separate runs, with accuracy no worse (4.8 points better than the reference on
ImageNet). Here, on digits-lenet (15 epochs, its default) and mnist1d-cnn (40 epochs, the paper's
length), seeds 0, 1, 2, with k0 the task's default LR:

- STPT: ``stpt(k0=k0, set=mix, alpha=0.08)``: Table 4's Mix of LR sets, alpha = 8% of the epoch
  (the paper's 200 of 2,500), warmup 10% of the epochs at k0 / 20, scored on a held-out 10% slice;
- grid: FIX at each of the 8 LRs of the Wide set times k0 (5 k0 ... 0.2 k0), trained separately;
  "best grid" is the LR with the highest mean Top-1;
- reference: the paper's, FIX at k0 then /10 when accuracy saturates, as a fixed policy: /10 at
  50% and 75% of the run (He et al.'s schedule), no warmup.

Prints mean +- std of the final test Top-1 and the compute: epoch-equivalents (training samples
over the training set's size, every candidate counted) and wall time, both for one run and, for
the grid, for all 8. Targets: STPT compute <= 0.2 x the grid's; STPT Top-1 >= best grid - 0.5.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stpt_quality.py [--tasks ...] [--seeds 3] [--epochs E]
     [--alpha 0.08 0.25]   (about 12 minutes on a shared core; each extra alpha adds a few)
"""

from __future__ import annotations

import argparse
import statistics

import torch

from lrpilot.distill import attach
from lrpilot.engine import budget, train
from lrpilot.search.run import run_search
from lrpilot.search.stpt import LR_SETS
from lrpilot.tasks import get_task

EPOCHS = {"digits-lenet": 15, "mnist1d-cnn": 40}


def _mean_std(xs: list[float]) -> str:
    return f"{statistics.mean(xs):6.2f} +- {statistics.stdev(xs) if len(xs) > 1 else 0.0:4.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(EPOCHS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=None, help="override the budgets (15 and 40 epochs)")
    ap.add_argument("--alpha", type=float, nargs="+", default=[0.08], help="STPT's alpha: one row each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.tasks:
        task = get_task(name)
        epochs = args.epochs or EPOCHS.get(name, task.epochs)
        total = budget(task, None, epochs)
        k0 = task.lr
        grid = [round(k0 * f, 6) for f in LR_SETS["wide"]]
        runs: dict[str, list] = {}
        for seed in range(args.seeds):
            for alpha in args.alpha:
                runs.setdefault(f"STPT alpha={alpha:g}", []).append(
                    run_search(name, f"stpt(k0={k0}, set=mix, alpha={alpha})", seed=seed, epochs=epochs))
            runs.setdefault("reference", []).append(
                train(task, f"NSTEP(k0={k0}, gamma=0.1, l=[{total // 2}, {3 * total // 4}])", seed=seed, epochs=epochs))
            for lr in grid:
                runs.setdefault(f"FIX {lr:g}", []).append(train(task, f"FIX(k0={lr})", seed=seed, epochs=epochs))
            print(f"{name} seed {seed} done; STPT LRs by epoch: "
                  f"{[round(e['best_lr'], 5) for e in runs[f'STPT alpha={args.alpha[0]:g}'][-1].record['epochs']]}",
                  flush=True)
        top1 = {label: [r.metrics["top1"] or 0.0 for r in rs] for label, rs in runs.items()}
        per_run = {label: (statistics.mean(r.cost["epoch_equivalents"] for r in rs),
                           statistics.mean(r.cost["wall_s"] for r in rs)) for label, rs in runs.items()}
        best = max((f"FIX {lr:g}" for lr in grid), key=lambda label: statistics.mean(top1[label]))
        grid_cost = tuple(sum(per_run[f"FIX {lr:g}"][i] for lr in grid) for i in range(2))
        rows.append((name, epochs, top1, per_run, best, grid_cost, runs))

    for name, epochs, top1, per_run, best, grid_cost, runs in rows:
        stpt = [k for k in top1 if k.startswith("STPT")]
        print(f"\n{name}, {epochs:g} epochs, {args.seeds} seeds: final test Top-1 (%), compute per run")
        print(f"  {'method':<22} {'Top-1':>15} {'epoch-eq':>9} {'wall s':>8}")
        for label in [*stpt, "reference", *[k for k in top1 if k.startswith("FIX")]]:
            mark = "  <- best grid" if label == best else ""
            print(f"  {label:<22} {_mean_std(top1[label]):>15} {per_run[label][0]:9.2f} {per_run[label][1]:8.1f}{mark}")
        print(f"  {'grid (all 8 runs)':<22} {'':>15} {grid_cost[0]:9.2f} {grid_cost[1]:8.1f}")
        for label in stpt:
            s_cost, s_top1 = per_run[label], statistics.mean(top1[label])
            print(f"  {label}: compute / grid {s_cost[0] / grid_cost[0]:.3f} in epoch-equivalents (target <= 0.2), "
                  f"{s_cost[1] / grid_cost[1]:.3f} in wall time; Top-1 - best grid "
                  f"{s_top1 - statistics.mean(top1[best]):+.2f} points (target >= -0.5), - reference "
                  f"{s_top1 - statistics.mean(top1['reference']):+.2f}")
        distilled = attach(runs[stpt[0]][0]).record["distilled"]
        print(f"  {stpt[0]} distilled (seed 0): {distilled['piecewise'][:100]}...")
        print(f"      fit {distilled['fit']}, error {distilled['fit_error']:.3f}")


if __name__ == "__main__":
    main()
