"""Response times of the dashboard's pages over a store of 10,000 runs (``lrpilot dashboard``).

Fills a temporary SQLite store (or ``--db``, kept) with synthetic finished runs of one task: ``--policies``
policies of the 13 LRBench functions x ``--seeds`` seeds, each with 20-point curves and per-example outcomes
on 269 validation and 450 test examples (digits-lenet's sizes), then starts the dashboard on 127.0.0.1 and
times each page ``--rounds`` times (the first request of a ranking fills its cache: reported apart).

    .venv/bin/python benchmarks/dashboard_latency.py [--runs 10000] [--seeds 5] [--rounds 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from lrpilot.outcomes import encode
from lrpilot.records import RunResult
from lrpilot.store import Store

TASK = "digits-lenet"
FUNCTIONS = ("FIX(k0={k})", "STEP(k0={k}, gamma=0.5, l=100)", "NSTEP(k0={k}, gamma=0.5, l=[200, 400])",
             "EXP(k0={k}, gamma=0.999)", "INV(k0={k}, gamma=0.001, p=0.5)", "POLY(k0={k}, p=2, l=645)",
             "TRI(k0=0.001, k1={k}, l=100)", "TRI2(k0=0.001, k1={k}, l=100)", "TRIEXP(k0=0.001, k1={k}, l=100, gamma=0.999)",
             "SIN(k0=0.001, k1={k}, l=100)", "SIN2(k0=0.001, k1={k}, l=100)", "SINEXP(k0=0.001, k1={k}, l=100, gamma=0.999)",
             "COS(k0={k}, k1=0.001, l=645)")
BUDGET = 645


def fill(store: Store, runs: int, seeds: int) -> None:
    """``runs`` finished runs: policies x seeds, synthetic metrics, curves and outcomes."""
    rng = np.random.default_rng(0)
    n_policies = -(-runs // seeds)
    for i in range(n_policies):
        text = FUNCTIONS[i % len(FUNCTIONS)].format(k=round(0.01 + 0.0001 * (i // len(FUNCTIONS)), 6))
        quality = 0.9 + 0.08 * rng.random()
        for seed in range(seeds):
            if i * seeds + seed >= runs:
                return
            run = store.claim(TASK, text, seed, BUDGET)
            q = quality + 0.005 * rng.standard_normal()
            val, test = rng.random(269) < q, rng.random(450) < q
            it = list(range(32, BUDGET + 1, 32))
            curve = list(100 * q * (1 - np.exp(-np.arange(1, len(it) + 1) / 4)))
            metrics = {"top1": 100 * test.mean(), "top5": 100.0, "ac": q, "cd": 0.1, "cdac": 0.05, "ld": 0.02,
                       "best_top1": 100 * test.mean(), "iters_at_best": BUDGET, "train_loss": 0.1, "test_loss": 0.12,
                       "val_top1": 100 * val.mean(), "val_top5": 100.0, "val_ac": q, "val_cd": 0.1, "val_cdac": 0.05,
                       "val_best_top1": 100 * val.mean(), "val_iters_at_best": BUDGET, "val_loss": 0.12, "n_param": 2}
            curves = {"iteration": it, "lr": [0.01] * len(it), "train_loss": [1 / (j + 1) for j in range(len(it))],
                      "val_top1": curve, "test_top1": curve, "val_loss": [1 / (j + 1) for j in range(len(it))],
                      "test_loss": [1 / (j + 1) for j in range(len(it))], "angular_velocity": [1.5] * len(it)}
            cost = {"iterations": BUDGET, "samples": BUDGET * 64, "epochs": 15, "epoch_equivalents": 15.0,
                    "wall_s": 2.0 + rng.random(), "workers": 1}
            store.finish(run, RunResult(TASK, text, seed, "ok", metrics, cost, curves, {}, BUDGET,
                                        {"val": encode(val), "test": encode(test)}))


def timed(url: str) -> tuple[float, int]:
    """Seconds to fetch ``url`` whole, and its size in bytes."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        body = response.read()
    return time.perf_counter() - start, len(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", default=None, help="a store to fill (kept; filled only when empty)")
    args = ap.parse_args()
    folder = tempfile.TemporaryDirectory()
    db = args.db or str(Path(folder.name) / "results.db")
    with Store(db) as store:
        if not store.runs(task=TASK, curves=False):
            start = time.perf_counter()
            fill(store, args.runs, args.seeds)
            print(f"filled {args.runs} runs in {time.perf_counter() - start:.0f} s")
        runs = store.runs(task=TASK, curves=False)
        stored = len(runs)
    from lrpilot.dashboard.app import serve_in_thread

    with serve_in_thread(db) as base:
        one = runs[len(runs) // 2]
        quote = urllib.parse.quote
        pages = {"tasks": "/", "ranking (page 1)": f"/task/{TASK}",
                 "ranking (page 40, sorted by wall s)": f"/task/{TASK}?sort=wall_s&page=40",
                 "ranking (filtered: COS, 5 seeds)": f"/task/{TASK}?fn=COS&seeds=5",
                 "curves (3 policies)": f"/task/{TASK}/curves?" + "&".join(f"p={quote(r.policy)}" for r in runs[:15:5]),
                 "run": f"/task/{TASK}/run/{one.id}?policy={quote(one.policy)}",
                 "compare": f"/task/{TASK}/compare?p={quote(runs[0].policy)}&p={quote(runs[-1].policy)}",
                 "range tests": f"/task/{TASK}/range-tests"}
        first = {name: timed(base + path) for name, path in pages.items()}
        print(f"{stored} stored runs of {TASK}; {args.rounds} rounds per page after a first request")
        print(f"{'page':40s} {'first s':>8s} {'median s':>9s} {'max s':>7s} {'KiB':>6s}")
        for name, path in pages.items():
            times = [timed(base + path)[0] for _ in range(args.rounds)]
            print(f"{name:40s} {first[name][0]:8.3f} {statistics.median(times):9.3f} {max(times):7.3f} "
                  f"{first[name][1] / 1024:6.0f}")
    folder.cleanup()


if __name__ == "__main__":
    main()
