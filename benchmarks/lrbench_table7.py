"""LRBench's Table VII (MNIST, LeNet) reproduced on real MNIST through ``lrpilot bench``.

The ten policies of the table, in the paper's settings (its Table II: batch 100, SGD with momentum
0.9, weight decay 5e-4, Xavier initialisation; 10,000 iterations for every policy; the test split
evaluated every 500 iterations), over ``--seeds`` seeds. The runs go through ``lrpilot bench`` into
an SQLite store, so a killed run of this script resumes where it stopped: call it again.

Printed, in the paper's layout: the policy's parameters, #Iter (iterations at the highest Top-1,
median over seeds), LD, Top-1 (the highest Top-1 of the run, LRBench's reading, mean +- std over
seeds), Top-5, AC, CD, CDAC (of the final model: the engine computes the full metrics once, at the
end), each beside the paper's number; then the paper's three claims checked in words.

Run: .venv/bin/python benchmarks/lrbench_table7.py [--seeds 3] [--workers 2] [--db out/table7.db]
     [--out benchmarks/results/lrbench_table7.md]   (5-8 minutes a run on a shared core: 136 min for 30 runs on 2)
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from lrpilot.policy import policy
from lrpilot.store import Store

STEPS = 10_000
CYCLIC = ("TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP")
DEFAULTS = ("NSTEP", "INV")
# name: (policy text, k0, k1, gamma, p, l, and the paper's #Iter, LD, Top-1, std, Top-5, AC, CD, CDAC)
TABLE = {
    "NSTEP": ("NSTEP(k0=0.01, gamma=0.9, l=[5000, 7000, 8000, 9000, 9500])", "0.01", "", "0.9", "",
              "5000,7000,8000,9000,9500", (10000, 0.0209, 99.12, 0.01, 99.99, 0.9946, 0.0362, 0.0023)),
    "INV": ("INV(k0=0.01, gamma=0.0001, p=0.75)", "0.01", "", "0.0001", "0.75", "",
            (8000, 0.0228, 99.09, 0.02, 99.99, 0.9945, 0.0369, 0.0021)),
    "POLY": ("POLY(k0=0.01, p=1.2, l=10000)", "0.01", "", "", "1.2", "10000*",
             (8000, 0.0210, 99.11, 0.01, 99.99, 0.9937, 0.0389, 0.0185)),
    "TRI": ("TRI(k0=0.01, k1=0.06, l=2000)", "0.01", "0.06", "", "", "2000",
            (4000, 0.0166, 99.28, 0.02, 100.00, 0.9948, 0.0349, 0.0020)),
    "TRI2": ("TRI2(k0=0.01, k1=0.06, l=2000)", "0.01", "0.06", "", "", "2000",
             (4000, 0.0170, 99.28, 0.01, 100.00, 0.9949, 0.0344, 0.0018)),
    "TRIEXP": ("TRIEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)", "0.01", "0.06", "0.99994", "", "2000",
               (4000, 0.0167, 99.27, 0.01, 100.00, 0.9948, 0.0353, 0.0019)),
    "SIN": ("SIN(k0=0.01, k1=0.06, l=2000)", "0.01", "0.06", "", "", "2000",
            (4000, 0.0171, 99.31, 0.04, 100.00, 0.9949, 0.0350, 0.0171)),
    "SIN2": ("SIN2(k0=0.01, k1=0.06, l=2000)", "0.01", "0.06", "", "", "2000",
             (4000, 0.0166, 99.33, 0.02, 100.00, 0.9950, 0.0342, 0.0018)),
    "SINEXP": ("SINEXP(k0=0.01, k1=0.06, gamma=0.99994, l=2000)", "0.01", "0.06", "0.99994", "", "2000",
               (4000, 0.0168, 99.28, 0.04, 100.00, 0.9950, 0.0340, 0.0019)),
    "COS": ("COS(k0=0.01, k1=0.06, l=2000)", "0.01", "0.06", "", "", "2000",
            (10000, 0.0192, 99.32, 0.04, 100.00, 0.9952, 0.0336, 0.0192)),
}


def _mean(xs: list[float]) -> float:
    return statistics.mean(xs)


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def best_until(run, iteration: int) -> float:
    """The highest test Top-1 of ``run`` among the evaluations at or before ``iteration``."""
    pairs = zip(run.curves["iteration"], run.curves["test_top1"])
    return max(t for i, t in pairs if i <= iteration and t == t)


def collect(db: str, seeds: int) -> dict[str, list]:
    """The finished runs of each policy in the store, by the table's names."""
    with Store(db) as store:
        runs = [r for r in store.runs(task="mnist-lenet") if r.budget == STEPS and r.seed < seeds]
    texts = {}
    for name, (text, *_) in TABLE.items():
        texts[name] = [r for r in runs if r.policy == text]
    return texts


def table(by_name: dict[str, list]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The markdown table (ours beside the paper's) and each policy's means."""
    head = ("| LR | k0 | k1 | gamma | p | l | #Iter | LD | Top-1 (%) | Top-5 (%) | AC | CD | CDAC | runs |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines, means = [head], {}
    for name, (text, k0, k1, gamma, p, l, paper) in TABLE.items():
        runs = [r for r in by_name[name] if r.status == "ok"]
        others = collections.Counter(r.status for r in by_name[name] if r.status != "ok")
        count = ", ".join([f"{len(runs)} ok", *(f"{n} {status}" for status, n in sorted(others.items()))])
        if not runs:
            lines.append(f"| {name} | {k0} | {k1} | {gamma} | {p} | {l} | " + " | ".join(["-"] * 7) + f" | {count} |")
            continue
        m = {k: _mean([r.metrics[k] for r in runs]) for k in ("ld", "top5", "ac", "cd", "cdac", "top1")}
        best = [r.metrics["best_top1"] for r in runs]
        m["best_top1"], m["best_std"] = _mean(best), _std(best)
        m["iters"] = statistics.median(r.metrics["iters_at_best"] for r in runs)
        m["at4000"] = _mean([best_until(r, 4000) for r in runs])
        means[name] = m
        it, ld, t1, sd, t5, ac, cd, cdac = paper
        lines.append(
            f"| {name} | {k0} | {k1} | {gamma} | {p} | {l} | {m['iters']:.0f} ({it}) | {m['ld']:.4f} ({ld}) | "
            f"{m['best_top1']:.2f} +- {m['best_std']:.2f} ({t1:.2f} +- {sd:.2f}) | {m['top5']:.2f} ({t5:.2f}) | "
            f"{m['ac']:.4f} ({ac}) | {m['cd']:.4f} ({cd}) | {m['cdac']:.4f} ({cdac}) | {count} |")
    return lines, means


def claims(means: dict[str, dict[str, float]]) -> list[str]:
    """The paper's claims about Table VII, each checked on ``means``, in words."""
    out = []
    if "NSTEP" in means and all(c in means for c in CYCLIC):
        target = means["NSTEP"]["top1"]
        reached = [c for c in CYCLIC if means[c]["at4000"] >= target]
        out.append(
            f"1. Does every cyclic policy reach by 4,000 iterations what NSTEP reaches at 10,000 ({target:.2f} %, "
            f"its final Top-1)? {'Yes' if len(reached) == len(CYCLIC) else 'No'}: {len(reached)} of {len(CYCLIC)} "
            "(best Top-1 up to iteration 4,000: "
            + ", ".join(f"{c} {means[c]['at4000']:.2f}" for c in CYCLIC) + ").")
    if "SIN2" in means:
        order = sorted(means, key=lambda n: -means[n]["best_top1"])
        lead, sin2 = means[order[0]], means["SIN2"]
        se = 100 * (0.992 * 0.008 / 10_000) ** 0.5  # one run's binomial standard error at 99.2 % on 10,000 images
        near = [n for n in order if lead["best_top1"] - means[n]["best_top1"] < se]
        level = [n for n in order if n != "SIN2" and abs(means[n]["best_top1"] - sin2["best_top1"]) < 1e-9]
        verdict = "No" if sin2["best_top1"] < lead["best_top1"] - 1e-9 else \
            "Yes, tied with " + ", ".join(level) if level else "Yes"
        out.append(
            f"2. Is SIN2 the best? {verdict}: SIN2 ranks "
            f"{order.index('SIN2') + 1} of {len(order)} by mean highest Top-1 ({sin2['best_top1']:.3f} +- "
            f"{sin2['best_std']:.3f}; the best, {order[0]}, {lead['best_top1']:.3f}). {len(near)} policies lie within "
            f"one run's binomial standard error ({se:.2f} points at 99.2 % on 10,000 test images) of the best: "
            + ", ".join(f"{n} {means[n]['best_top1']:.3f}" for n in near)
            + f"; the order among them is noise. The ten means span "
            f"{lead['best_top1'] - means[order[-1]]['best_top1']:.2f} points.")
    defaults = [d for d in DEFAULTS if d in means]
    cyclic = [c for c in (*CYCLIC, "COS") if c in means]  # the paper's 7 cyclic LRs
    if defaults and cyclic:
        parts = []
        for key, label in (("ld", "LD"), ("cd", "CD"), ("cdac", "CDAC")):
            low = min(means[d][key] for d in defaults)
            below = [c for c in cyclic if means[c][key] < low]
            parts.append(f"{label}: {len(below)} of {len(cyclic)} cyclic below both defaults "
                         f"(cyclic mean {_mean([means[c][key] for c in cyclic]):.4f}, defaults "
                         + ", ".join(f"{d} {means[d][key]:.4f}" for d in defaults) + ")")
        out.append("3. Are LD, CD and CDAC lower for the cyclic policies than for Caffe's defaults (NSTEP, INV)? "
                   + "; ".join(parts) + ". These are of the final model, at iteration 10,000, where the LRs are "
                   + ", ".join(f"{n} {policy(TABLE[n][0])(STEPS - 1):.3g}" for n in (*defaults, *cyclic))
                   + ": the cyclic ones are mid-cycle, most at their largest LR, while the paper's cyclic policies "
                   "have their highest Top-1 at 4,000 iterations, where the LR is back at k0 = 0.01.")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", default="out/table7.db")
    ap.add_argument("--out", default=None, help="also write the result as Markdown to this file")
    ap.add_argument("--report-only", action="store_true", help="print what the store holds, train nothing")
    args = ap.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    lrpilot = Path(sys.executable).with_name("lrpilot")
    cmd = [str(lrpilot), "bench", "--task", "mnist-lenet", "--steps", str(STEPS), "--repeats", str(args.seeds),
           "--workers", str(args.workers), "--db", args.db, "--policies", *(t[0] for t in TABLE.values())]
    if not args.report_only:
        print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    by_name = collect(args.db, args.seeds)
    lines, means = table(by_name)
    runs = [r for rs in by_name.values() for r in rs if r.finished_at is not None]
    span = max(r.finished_at for r in runs) - min(r.started_at for r in runs) if runs else 0.0
    per_run = statistics.median(r.cost["wall_s"] for r in runs if r.cost) if runs else 0.0
    text = "\n".join([
        f"# LRBench Table VII (MNIST, LeNet) on real MNIST, {args.seeds} seeds",
        "",
        f"Command: `.venv/bin/python benchmarks/lrbench_table7.py --seeds {args.seeds} --workers {args.workers}`: "
        f"{len(runs)} runs, {span / 60:.0f} min from the first start to the last finish in the store, a median "
        f"of {per_run:.0f} s per run (one torch thread each, on cores shared with other work).",
        "",
        "Settings: the paper's Table II (batch 100, SGD momentum 0.9, weight decay 5e-4, Xavier init), 10,000 "
        "iterations, test Top-1 every 500 iterations. Ours first, the paper's in parentheses. Top-1: the highest "
        "over the run (mean +- std over seeds); #Iter: where it was reached (median); LD, Top-5, AC, CD, CDAC: "
        "the final model, mean over seeds. *POLY's l is Caffe's max_iter, which the paper leaves implicit.",
        "",
        *lines,
        "",
        "## The paper's claims",
        "",
        *claims(means),
        "",
    ])
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
