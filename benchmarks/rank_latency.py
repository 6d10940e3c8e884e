"""The first ranking of a large store, and ``lrpilot rank`` on a small one: this checkout against another revision.

Fills (or reuses, ``--db``) a store of ``--runs`` synthetic runs as ``benchmarks/dashboard_latency.py`` does, then
times, ``--rounds`` times each, alternating: reading the task's runs and ranking them with this checkout's code
and with the code of ``--old`` (a checkout, e.g. ``git worktree add /tmp/old 0ce32fa``), both imported in this
process under their own module paths (subprocesses, one per revision), and checks that the two rankings are the
same (ties, decision, every printed cell). Then ``lrpilot rank --task digits-lenet`` on a store of ``--small``
synthetic runs (or on ``--small-db``, e.g. the main job's store), a fresh process each time, wall time and peak
memory of both revisions side by side.

    .venv/bin/python benchmarks/rank_latency.py --old /tmp/old [--runs 10000] [--small 46 | --small-db FILE]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW = HERE.parent / "src"
RANK = r"""
import json, sys, time
start = time.perf_counter()
try:
    from lrpilot.decision.ranking import rank
except ImportError:  # a revision before lrpilot.decision
    from lrpilot.bench.rank import rank
from lrpilot.store import Store
with Store(sys.argv[1]) as store:
    records = store.runs(task="digits-lenet", purpose="bench", curves=False, outcomes=True)
loaded = time.perf_counter()
ranking = rank(records, task="digits-lenet")
done = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "rank_s": done - loaded,
                  "cells": ranking.table()[1], "tied": [r.policy for r in ranking.rows if r.tied_with_best],
                  "chosen": [r.policy for r in ranking.rows if r.chosen]}))
"""


def fill(db: str, runs: int, seeds: int) -> None:
    """A store of ``runs`` synthetic runs (benchmarks/dashboard_latency.py's), unless it holds them already."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from dashboard_latency import fill; "
            f"from lrpilot.store import Store\nwith Store({db!r}) as s:\n    s.runs(task='digits-lenet', curves=False) "
            f"or fill(s, {runs}, {seeds})")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(NEW)})


def ranked(src: Path, db: str) -> dict:
    """One ranking of ``db``'s runs by the code under ``src``, in a fresh process: times and what it printed."""
    out = subprocess.run([sys.executable, "-c", RANK, db], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(src)})
    return json.loads(out.stdout)


def command(src: Path, db: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of ``lrpilot rank --task digits-lenet`` by the code under ``src``."""
    code = ("import resource, runpy, sys; sys.argv = ['lrpilot', 'rank', '--task', 'digits-lenet', '--db', "
            f"{db!r}]\ntry:\n    runpy.run_module('lrpilot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(src)})
    return time.perf_counter() - start, float(out.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, type=Path, help="a checkout of the baseline revision")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--small", type=int, default=46, help="runs of the store `lrpilot rank` answers on")
    ap.add_argument("--small-db", default=None, help="answer on this store instead (e.g. the main job's; kept)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", default=None, help="the large store (kept; filled only when empty)")
    args = ap.parse_args()
    old = args.old / "src"
    folder = tempfile.TemporaryDirectory()
    big, small = args.db or str(Path(folder.name) / "big.db"), args.small_db or str(Path(folder.name) / "small.db")
    fill(big, args.runs, args.seeds)
    if not args.small_db:
        fill(small, args.small, 3)
    times: dict[str, list[dict]] = {"new": [], "old": []}
    for _ in range(args.rounds):
        for name, src in (("new", NEW), ("old", old)):
            times[name].append(ranked(src, big))
    new, base = times["new"][0], times["old"][0]
    same = all(new[k] == base[k] for k in ("cells", "tied", "chosen"))
    print(f"ranking {args.runs} runs ({args.runs // args.seeds} policies x {args.seeds} seeds), median of "
          f"{args.rounds} fresh processes; identical rankings (every cell, ties, decision): {same}")
    print(f"{'':12s} {'import+read s':>13s} {'rank s':>8s} {'total s':>8s}")
    med = {name: {k: statistics.median(t[k] for t in runs) for k in ("load_s", "rank_s")} for name, runs in times.items()}
    for name in ("old", "new"):
        print(f"{name:12s} {med[name]['load_s']:13.2f} {med[name]['rank_s']:8.2f} "
              f"{med[name]['load_s'] + med[name]['rank_s']:8.2f}")
    total = {name: med[name]["load_s"] + med[name]["rank_s"] for name in med}
    print(f"ratio new / old: rank {med['new']['rank_s'] / med['old']['rank_s']:.3f}, read + rank "
          f"{total['new'] / total['old']:.3f}")
    cli: dict[str, list[tuple[float, float]]] = {"new": [], "old": []}
    for _ in range(args.rounds):
        for name, src in (("new", NEW), ("old", old)):
            cli[name].append(command(src, small))
    where = args.small_db or f"{args.small} synthetic runs"
    print(f"lrpilot rank --task digits-lenet over {where} (a fresh process; median of {args.rounds}):")
    for name in ("old", "new"):
        print(f"{name:12s} {statistics.median(t for t, _ in cli[name]):6.2f} s  "
              f"{statistics.median(m for _, m in cli[name]):6.0f} MiB peak")
    print(f"ratio new / old: {statistics.median(t for t, _ in cli['new']) / statistics.median(t for t, _ in cli['old']):.3f}")
    folder.cleanup()


if __name__ == "__main__":
    main()
