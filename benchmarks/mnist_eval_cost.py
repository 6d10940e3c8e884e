"""Training and evaluation cost of ``mnist-lenet``: the old settings against the new, side by side.

Before: Caffe's example batch of 64, the contiguous (NCHW) memory format, about 20 test evaluations
a run (every ``total // 20`` iterations). After: the task as it is now (the LRBench paper's batch 100,
channels-last, an evaluation every 500 iterations, Caffe's ``test_interval``). Both train ``--steps``
iterations with FIX(k0=0.01) on one torch thread, alternating order over ``--rounds``; printed: ms per
training iteration (evaluations excluded), seconds in evaluation (test evaluations and the final
training-set pass for LD), the evaluation share of the run's time, and the after / before ratios.

Run: .venv/bin/python benchmarks/mnist_eval_cost.py [--steps 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from lrpilot import engine
from lrpilot.tasks import get_task


def timed_run(task, steps: int) -> dict[str, float]:
    """One run of ``steps`` iterations; the time spent inside ``engine.evaluate`` is measured apart."""
    spent = [0.0]
    inner = engine.evaluate

    def counting(model, t, split="test"):
        start = time.perf_counter()
        try:
            return inner(model, t, split)
        finally:
            spent[0] += time.perf_counter() - start

    engine.evaluate = counting
    try:
        start = time.perf_counter()
        result = engine.train(task, f"FIX(k0={task.lr})", steps=steps)
        wall = time.perf_counter() - start
    finally:
        engine.evaluate = inner
    evals = sum(1 for t in result.curves["test_top1"] if t == t)
    return {"ms_per_iter": 1000 * (wall - spent[0]) / steps,
            "ms_per_1k": 1e6 * (wall - spent[0]) / result.cost["samples"], "eval_s": spent[0], "wall_s": wall,
            "share": spent[0] / wall, "evals": evals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    after = get_task("mnist-lenet")
    from lrpilot.tasks.builtin import make_mnist_lenet

    old = make_mnist_lenet(batch_size=64)
    old = dataclasses.replace(old, eval_every=None, channels_last=False)
    old.train = tuple(t.contiguous() for t in old.train)
    old.test = tuple(t.contiguous() for t in old.test)
    rows: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for r in range(args.rounds):
        order = (("before", old), ("after", after)) if r % 2 == 0 else (("after", after), ("before", old))
        for name, task in order:
            rows[name].append(timed_run(task, args.steps))
    med = {name: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for name, runs in rows.items()}
    print(f"mnist-lenet, {args.steps} iterations, FIX(k0=0.01), 1 thread, median of {args.rounds} rounds")
    print(f"{'':8} {'batch':>5} {'ms/iter':>8} {'ms/1k samples':>13} {'evals':>6} {'eval s':>7} {'wall s':>7} "
          f"{'eval share':>10}")
    for (name, m), task in zip(med.items(), (old, after)):
        print(f"{name:8} {task.batch_size:5} {m['ms_per_iter']:8.1f} {m['ms_per_1k']:13.1f} {m['evals']:6.0f} "
              f"{m['eval_s']:7.1f} {m['wall_s']:7.1f} {m['share']:10.0%}")
    b, a = med["before"], med["after"]
    print(f"ratio after/before: ms/iter {a['ms_per_iter'] / b['ms_per_iter']:.2f}, "
          f"ms/1k samples {a['ms_per_1k'] / b['ms_per_1k']:.2f}, "
          f"eval s {a['eval_s'] / b['eval_s']:.2f}, wall s {a['wall_s'] / b['wall_s']:.2f}")


if __name__ == "__main__":
    main()
