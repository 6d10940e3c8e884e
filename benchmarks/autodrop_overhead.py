"""AutoDrop's per-epoch overhead as a fraction of an epoch (target < 1%), measured two ways in one process.

1. Directly: each ``after_epoch`` call (angle, check, accumulation, averaging) timed against the
   run's mean epoch wall time, for the paper's settings and for settings that drop often.
2. End to end: the engine under AutoDrop against FIX at the same LR over the same epochs, in
   alternating rounds (order swapped every round), ratio of the median wall times. Under the
   paper's thresholds nothing drops on this task, so both runs train identically and the ratio
   is the controller's cost alone (noisy on shared cores: read 1. for the precise figure).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/autodrop_overhead.py [--task digits-lenet] [--epochs 15] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrpilot.controllers.autodrop import AutoDrop
from lrpilot.engine import train
from lrpilot.policy.text import parse
from lrpilot.tasks import get_task


class TimedAutoDrop(AutoDrop):
    """AutoDrop that records the seconds each ``after_epoch`` takes."""

    def __init__(self, **options):
        super().__init__(**options)
        self.seconds: list[float] = []

    def after_epoch(self, epoch: int) -> None:
        start = time.perf_counter()
        super().after_epoch(epoch)
        self.seconds.append(time.perf_counter() - start)


def direct(task, text: str, epochs: int, rounds: int) -> None:
    """Time ``after_epoch`` inside real runs; print its share of the mean epoch."""
    shares, calls, drops = [], [], 0
    for seed in range(rounds):
        controller = TimedAutoDrop(**parse(text).kwargs)
        r = train(task, controller, seed=seed, epochs=epochs)
        shares.append(sum(controller.seconds) / r.cost["wall_s"])
        calls.extend(controller.seconds)
        drops += len(r.record["drops"])
    print(f"  {text}: after_epoch median {statistics.median(calls) * 1e6:.0f} us, max {max(calls) * 1e6:.0f} us; "
          f"share of epoch time median {100 * statistics.median(shares):.3f}%, max {100 * max(shares):.3f}% "
          f"({drops} drops in {rounds} runs)")


def end_to_end(task, fixed: str, text: str, epochs: int, rounds: int) -> None:
    """Alternating rounds of the engine under ``fixed`` and ``text``; print the ratio of median wall times."""
    seconds: dict[str, list[float]] = {fixed: [], text: []}
    for i in range(rounds):
        for spec in (fixed, text) if i % 2 == 0 else (text, fixed):
            start = time.perf_counter()
            train(task, spec, seed=0, epochs=epochs)
            seconds[spec].append(time.perf_counter() - start)
    f, a = statistics.median(seconds[fixed]), statistics.median(seconds[text])
    ratios = [y / x for x, y in zip(seconds[fixed], seconds[text])]
    print(f"  {fixed}: median {f:.3f} s   {text}: median {a:.3f} s")
    print(f"  ratio of medians {a / f:.4f} (overhead {100 * (a / f - 1):+.2f}%); per-round ratios "
          f"{min(ratios):.3f}..{max(ratios):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-lenet")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    task = get_task(args.task)
    lr = task.lr
    paper = f"autodrop(k0={lr}, rho=0.2, nd=0.1)"
    often = f"autodrop(k0={lr}, rho=0.5, theta0=5, theta_max=45, nd=2)"
    train(task, f"FIX(k0={lr})", steps=20)  # warm up torch's lazy initialisation
    print(f"{args.task}: {args.epochs} epochs of {task.iters_per_epoch} iterations, "
          f"torch threads {torch.get_num_threads()}, {args.rounds} rounds")
    print("1. after_epoch timed directly")
    for text in (paper, often):
        direct(task, text, args.epochs, args.rounds)
    print("2. engine wall time, alternating rounds")
    end_to_end(task, f"FIX(k0={lr})", paper, args.epochs, args.rounds)


if __name__ == "__main__":
    main()
