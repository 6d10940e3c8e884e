"""PolicyScheduler.step() against torch's LambdaLR.step() with the same function, and the
time to evaluate 10^6 steps vectorised. Both schedulers run side by side in one process,
alternating rounds; only the scheduler.step() call is timed (each after a real
optimizer.step()), and the figure is the ratio of the medians. Target: ratio <= 1.0.

Run: .venv/bin/python benchmarks/scheduler_step.py [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import lrpilot

POLICIES = ["TRI2(k0=0.0001, k1=0.9, l=2000)", "COS(k0=0.1, k1=0.001, l=5000)",
            "NSTEP(k0=0.1, gamma=0.1, l=[3000, 6000, 9000])", "FIX(k0=0.01)"]


def per_step_seconds(make, steps: int) -> float:
    """Mean seconds of one scheduler.step() call, each after a real optimizer.step()."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = make(opt)
    clock = time.perf_counter
    total = 0.0
    for _ in range(steps):
        opt.step()
        start = clock()
        sched.step()
        total += clock() - start
    return total / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.steps} steps x {args.rounds} rounds")
    print(f"{'policy':<48} {'PolicyScheduler us':>18} {'LambdaLR us':>12} {'ratio':>7}")
    for text in POLICIES:
        pol = lrpilot.policy(text)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(per_step_seconds(lambda o: lrpilot.PolicyScheduler(o, pol), args.steps))
            theirs.append(per_step_seconds(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: pol(t)), args.steps))
        o, t = (statistics.median(x) * 1e6 for x in (ours, theirs))
        print(f"{text:<48} {o:>18.2f} {t:>12.2f} {o / t:>7.3f}")
    steps = np.arange(1_000_000)
    for text in POLICIES:
        pol = lrpilot.policy(text)
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            pol.values(steps)
            times.append(time.perf_counter() - start)
        print(f"10^6 steps vectorised, {text:<48} {statistics.median(times) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
