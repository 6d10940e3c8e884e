"""`lrpilot bench` with 2 local workers against 1, on an 8-run grid of digits-lenet.

The grid: FIX at 8 LRs (0.002 .. 0.2), one seed, the task's default budget. Each round benches
the grid into a fresh SQLite store once with 1 worker and once with 2 (alternating which goes
first), in this process, worker start-up included (what a user waits for). The figure is the
ratio of the median wall times. Target on 2 cores: 2 workers <= 0.6 x 1 worker.

Run: .venv/bin/python benchmarks/bench_workers.py [--rounds 3] [--task digits-lenet] [--steps N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lrpilot.execution.executors import LocalExecutor
from lrpilot.grid.runner import bench
from lrpilot.store import Store

GRID = [f"FIX(k0={lr})" for lr in (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2)]


def timed(task: str, workers: int, steps: int | None, folder: Path) -> float:
    with Store(folder / f"w{workers}-{time.monotonic_ns()}.db") as store:
        start = time.perf_counter()
        done = bench(store, task, GRID, seeds=[0], steps=steps, executor=LocalExecutor(workers))
        wall = time.perf_counter() - start
    assert done.trained == len(GRID) and done.failed == 0, done
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-lenet")
    ap.add_argument("--steps", type=int, default=None, help="budget per run (default: the task's)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                walls[workers].append(timed(args.task, workers, args.steps, Path(tmp)))
            print(f"round {r + 1}: 1 worker {walls[1][-1]:.1f} s, 2 workers {walls[2][-1]:.1f} s, "
                  f"ratio {walls[2][-1] / walls[1][-1]:.2f}", flush=True)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"{args.task}, {len(GRID)} runs: median 1 worker {one:.1f} s, 2 workers {two:.1f} s; "
          f"ratio 2/1 = {two / one:.2f} (target <= 0.6)")


if __name__ == "__main__":
    main()
