"""How good is each method's choice of LR policy? Retrained on fresh seeds that no method saw.

For each task of ``--tasks``:

1. the reference grid: LRBench's 13 functions (the ``lrbench13`` suite) over the range test's good range
   (``SCALES``: x1; the 2026-12-02 tables also had x1/3 and x3) and tune's adaptive candidates (STPT, factor,
   AutoDrop), 16 policies trained on 5 fresh seeds (100-104): its compute is the unit of the methods' budgets;
   the oracle is the best by mean test Top-1 on those seeds of these and the two modern schedules of the rows
   ``wsd-default`` and ``cosine-warmup-default`` (below), 18 policies;
2. each method, given a compute budget (a fraction of the grid's) and its own empty store, chooses one
   policy using only seeds 0-4 and the validation split (today's tune chose on test, which this measures);
3. each choice is retrained on the 5 fresh seeds; its mean test Top-1 with a 95 % interval over seeds and
   test examples (:func:`lrpilot.decision.stats.top1_interval`), and regret = oracle - choice.

The first row, "grid on validation", is lrpilot's decision rule applied to the grid's own fresh-seed runs
on the validation split: the regret that choosing on validation leaves at the whole grid's compute (the
oracle chooses on the test split itself), a floor for the methods' regret.

Methods: ``tune`` (lrpilot tune), ``tune-old`` (today's tune, from ``--old-rev``, run as a subprocess),
``tpe-hyperband`` (Optuna's TPE sampler with its HyperbandPruner over tune's search space, pruned on the
validation Top-1 at each evaluation), ``random`` (random search over the same space, full runs),
``ray-asha`` (Ray Tune's ASHA scheduler over the same space, if ``ray[tune]`` is installed),
``finder-cos`` (the LR finder's calibrated suggestion, then cosine decay to 1/100 of it over the run),
``fix-default`` (FIX at the task's default LR, no search), ``tune-default`` (lrpilot tune at its default budget,
10 runs of the task, whatever the grid's compute), and the schedules practitioners use without a search, at the
range test's answer ``lr`` (their compute: the range test's): ``wsd-default`` (WSD with a 5 % warmup and
Hägele et al.'s 20 % 1-sqrt cooldown to 0), ``cosine-warmup-default`` (a 5 % linear warmup, then cosine to 0);
and the optimizers that need no schedule, at their packages' recommended settings (no search, compute 0;
``benchmarks/lr_free.py``): ``schedulefree`` (schedule-free SGD at 10x the task's LR, the low end of the
package's "10x-50x", or schedule-free AdamW at 1x, "1x-10x", for an AdamW task; warmup 5 %), ``prodigy``
(Prodigy, LR 1 with cosine annealing over the run, as its README recommends).

After the tasks' tables, a summary row per method over the tasks it ran on: the mean regret (oracle - choice) and
the mean gain over the task's default (choice - FIX at the task's LR), each paired by fresh seed and test example
within a task, with a 95 % interval over seeds and examples (:func:`lrpilot.decision.stats.mean_difference`; the
tasks are fixed, not a sample).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decision_quality.py --tasks digits-lenet mnist1d-cnn
     mnist1d-transformer mnist-lenet-500 [--fractions 0.05 0.1 0.2] [--workers 2] [--store DIR] [--old-rev 6edb484]
     [--out FILE.md] [--methods ...] [--kept]   (ray-asha needs `pip install -c constraints.txt "ray[tune]"`;
     schedulefree and prodigy `pip install -c constraints.txt schedulefree prodigyopt`, or the `bench` extra)
The stores in --store keep every run and each method's choice, so an interrupted benchmark resumes where it
stopped. ``mnist-lenet-500`` is mnist-lenet at 500 iterations (``benchmarks/short_tasks.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lrpilot.decision import stats
from lrpilot.decision.rule import decide, outcomes
from lrpilot.bench.range_test import RangeTestResult, decade_test, latest, sweep_test
from lrpilot.grid.runner import bench, canonical_policies
from lrpilot.bench.space import propose
from lrpilot.bench.suite import lrbench13
from lrpilot.bench.tune import SCHEDULES, WSD_WARMUP, first_candidates, start_lr, tune, wsd_candidate
from lrpilot.engine import Run, RunConfig, budget, epoch_samples
from lrpilot.policy.text import fmt_sig
from lrpilot.execution.executors import LocalExecutor
from lrpilot.store import Store
from lrpilot.tasks import TaskRef
from short_tasks import task_ref

FRESH = (100, 101, 102, 103, 104)
SCALES = (1.0,)  # of the range test's good range; (1 / 3, 1.0, 3.0) triples the grid (2026-12-02's tables)
WARMUP_SHARE = WSD_WARMUP  # of the run: the warmup of wsd-default (tune's WSD candidate) and cosine-warmup-default
ROOT = Path(__file__).resolve().parents[1]


def reference_grid(store: Store, task: str, executor: Any) -> tuple[list[str], list[str], RangeTestResult]:
    """The grid's policies (LRBench's and the adaptive ones) and the two modern schedules, from a decade range test
    stored in the reference store."""
    task_obj = TaskRef(task).build()
    found = latest(store, task_obj.name) or decade_test(store, task, seeds=(0,), epochs=1.0, executor=executor)
    total = budget(task_obj, None, None)
    texts = [t for s in SCALES for t in lrbench13(total, found.k_low * s, found.k_high * s, found.best_lr * s)]
    modern = [method_wsd_default(task, found)[0], method_cosine_warmup_default(task, found)[0]]
    adaptive = first_candidates(found, total)[SCHEDULES:]
    return canonical_policies(texts + adaptive), canonical_policies(modern), found


def fresh_results(store: Store, task: str, texts: list[str], executor: Any) -> dict[str, dict[str, Any]]:
    """Each policy trained on the fresh seeds: mean test Top-1 with its interval, its test outcomes, its compute."""
    bench(store, task, texts, seeds=FRESH, executor=executor)
    task_obj = TaskRef(task).build()  # stored under its own name (a "module:function" task's may differ)
    total = budget(task_obj, None, None)
    runs = [r for r in store.runs(task=task_obj.name, purpose="bench", curves=False, outcomes=True)
            if r.budget == total and r.seed in FRESH]
    out = {}
    for text in texts:
        mine = [r for r in runs if r.policy == text]
        test = outcomes(mine, "test")
        iv = stats.top1_interval(test) if len(test) == len(FRESH) else None
        out[text] = {"interval": iv, "outcomes": test, "n_ok": len(test), "n": len(mine),
                     "compute": sum((r.cost or {}).get("epoch_equivalents") or 0.0 for r in mine)}
    return out


def grid_decision(store: Store, task: str, texts: list[str]) -> Any:
    """lrpilot's decision rule on the grid's own fresh-seed runs, on validation: what the whole grid's compute
    buys. Its test Top-1 comes from the same runs, so a seed's luck counts on both splits (slightly optimistic)."""
    task_obj = TaskRef(task).build()
    total = budget(task_obj, None, None)
    runs = [r for r in store.runs(task=task_obj.name, purpose="bench", curves=False, outcomes=True)
            if r.budget == total and r.seed in FRESH and r.policy in texts]
    return decide(runs, budget=total)


# --- the methods: each returns (chosen policy text, compute spent in epoch-equivalents) ----------------------

def method_tune(task: str, compute: float, workdir: Path, executor: Any, **_: Any) -> tuple[str, float]:
    with Store(workdir / "tune.db") as store:
        result = tune(store, task, budget=compute, executor=executor)  # its own seeds, 0-4
    return result.best, result.epoch_equivalents


def method_tune_default(task: str, workdir: Path, executor: Any, **_: Any) -> tuple[str, float]:
    return method_tune(task, None, workdir, executor)


def method_tune_old(task: str, compute: float, workdir: Path, old_src: Path | None, **_: Any) -> tuple[str, float]:
    if old_src is None:
        raise RuntimeError("needs --old-rev")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(old_src), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-m", "lrpilot", "tune", "--task", task, "--budget", f"{compute:.6g}",
                          "--workers", "2", "--db", str(workdir / "old.db"), "--json", "--quiet"],
                         env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    return result["best"], result["epoch_equivalents"]


def _space_search(task: str, compute: float, sampler: Any, pruner: Any, found: RangeTestResult) -> tuple[str, float]:
    """Optuna over tune's space on seed 0: each trial an engine run, its validation Top-1 reported at every
    evaluation (for the pruner), until ``compute`` epoch-equivalents are spent; the best complete trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task_obj = TaskRef(task).build()
    total, unit, warmup = budget(task_obj, None, None), epoch_samples(task_obj), task_obj.meta.get("warmup", False)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    spent, texts = 0.0, {}
    while spent < compute:
        trial = study.ask()
        text = canonical_policies([propose(trial, total, found.k_low, found.k_high, warmup)])[0]
        texts[trial.number] = text
        run = Run(task_obj, text, RunConfig(total=total, seed=0))
        state = optuna.trial.TrialState.COMPLETE
        while run.step < total and run.status == "running":
            run.run_until(run.step + run.eval_every)
            score = run.latest("val_top1")
            if score is not None and run.step < total:
                trial.report(score, run.step)
                if trial.should_prune():
                    state = optuna.trial.TrialState.PRUNED
                    break
        result = run.run() if state == optuna.trial.TrialState.COMPLETE else None
        spent += run.samples / unit
        if result is None:
            study.tell(trial, state=state)
        else:
            study.tell(trial, result.metrics.get("val_top1") or 100.0 / task_obj.num_classes)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else study.trials[0]
    return texts[best.number], spent


def method_tpe_hyperband(task: str, compute: float, found: RangeTestResult, **_: Any) -> tuple[str, float]:
    import optuna

    return _space_search(task, compute, optuna.samplers.TPESampler(seed=0, multivariate=True, group=True),
                         optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3), found)


def method_random(task: str, compute: float, found: RangeTestResult, **_: Any) -> tuple[str, float]:
    import optuna

    return _space_search(task, compute, optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner(), found)


def method_ray_asha(task: str, compute: float, found: RangeTestResult, workdir: Path, **_: Any) -> tuple[str, float]:
    from ray_asha import search  # benchmarks/ray_asha.py: Ray Tune's ASHA over the same space

    return search(task, compute, found, workdir)


def method_finder_cos(task: str, compute: float, workdir: Path, executor: Any, **_: Any) -> tuple[str, float]:
    task_obj = TaskRef(task).build()
    total = budget(task_obj, None, None)
    with Store(workdir / "finder.db") as store:
        sweep = sweep_test(store, task, seeds=(0,), executor=executor)
    lr = sweep.suggestion
    spent = sum(len(c["lr"]) for c in sweep.curves) / task_obj.iters_per_epoch
    return canonical_policies([f"COS(k0={lr:.3g}, k1={lr / 100:.3g}, l={total})"])[0], spent


def method_fix_default(task: str, **_: Any) -> tuple[str, float]:
    return canonical_policies([f"FIX(k0={TaskRef(task).build().lr:g})"])[0], 0.0


def _range_cost(task_obj: Any, found: RangeTestResult) -> float:
    """The decade range test's compute in epoch-equivalents (as tune counts it)."""
    return sum(p["n"] for p in found.points) * found.budget / task_obj.iters_per_epoch


def method_wsd_default(task: str, found: RangeTestResult, **_: Any) -> tuple[str, float]:
    task_obj = TaskRef(task).build()
    total = budget(task_obj, None, None)
    return canonical_policies([wsd_candidate(found, total)])[0], _range_cost(task_obj, found)


def method_cosine_warmup_default(task: str, found: RangeTestResult, **_: Any) -> tuple[str, float]:
    task_obj = TaskRef(task).build()
    total = budget(task_obj, None, None)
    w = round(WARMUP_SHARE * total)
    text = f"warmup(COS(k0={fmt_sig(start_lr(found), 3)}, k1=0, l={total - w}), steps={w})"
    return canonical_policies([text])[0], _range_cost(task_obj, found)


def method_schedulefree(task: str, **_: Any) -> tuple[str, float, str]:
    import lr_free

    task_obj = TaskRef(task).build()
    lr = task_obj.lr * (1 if getattr(task_obj, "betas", None) else 10)
    return canonical_policies([f"FIX(k0={lr:g})"])[0], 0.0, lr_free.reference(task_obj.name, "schedulefree")


def method_prodigy(task: str, **_: Any) -> tuple[str, float, str]:
    import lr_free

    task_obj = TaskRef(task).build()
    total = budget(task_obj, None, None)
    return canonical_policies([f"COS(k0=1, k1=0, l={total})"])[0], 0.0, lr_free.reference(task_obj.name, "prodigy")


METHODS = {"tune": method_tune, "tune-old": method_tune_old, "tpe-hyperband": method_tpe_hyperband,
           "random": method_random, "ray-asha": method_ray_asha, "finder-cos": method_finder_cos,
           "fix-default": method_fix_default, "tune-default": method_tune_default, "wsd-default": method_wsd_default,
           "cosine-warmup-default": method_cosine_warmup_default, "schedulefree": method_schedulefree,
           "prodigy": method_prodigy}
BUDGETLESS = ("finder-cos", "fix-default", "tune-default", "wsd-default", "cosine-warmup-default", "schedulefree",
              "prodigy")


def old_checkout(rev: str, where: Path) -> Path:
    """A checkout of ``rev`` (today's tune) in ``where``; its ``src`` folder."""
    if not where.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev], check=True,
                       capture_output=True)
    return where / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["digits-lenet"])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.2],
                    help="budgets as fractions of the grid's compute (tune at each; the others at 0.1)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", default=None, help="folder for the stores, one subfolder a task (default: /tmp/decision_quality-TASK)")
    ap.add_argument("--kept", action="store_true",
                    help="train no method: only the rows whose choice an earlier call kept (the tables of several calls)")
    ap.add_argument("--old-rev", default=None, help="git revision of today's tune for tune-old")
    ap.add_argument("--out", default=None, help="also write the tables as Markdown here")
    args = ap.parse_args()
    here = str(Path(__file__).parent)  # ray_asha and lr_free, importable here and in the workers (spawned)
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    tables, results = [], {}
    for task in args.tasks:
        work = Path(args.store) / task if args.store else Path(f"/tmp/decision_quality-{task}")
        work.mkdir(parents=True, exist_ok=True)
        table, results[task] = run_task(task_ref(task), args, work)
        tables.append(table)
    tables.append(format_summary(results))
    print("\n\n".join(tables))
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    if args.out:
        Path(args.out).write_text("\n\n".join(tables) + "\n")


def run_task(task: str, args: argparse.Namespace, work: Path) -> tuple[str, dict[str, Any]]:
    """One task's table, and its results for the summary: each row's fresh-seed test outcomes, the oracle's and
    the default's."""
    old_src = old_checkout(args.old_rev, work / "old-checkout") if args.old_rev else None
    with Store(work / "reference.db") as ref, LocalExecutor(args.workers) as ex:
        grid, modern, found = reference_grid(ref, task, ex)
        print(f"{task}: reference grid: {len(grid)} policies and {len(modern)} modern schedules x {len(FRESH)} "
              "fresh seeds", flush=True)
        graded = fresh_results(ref, task, grid, ex)
        grid_compute = sum(g["compute"] for g in graded.values())
        grid += modern
        graded.update(fresh_results(ref, task, modern, ex))
        ok = {t: g for t, g in graded.items() if g["interval"] is not None}
        oracle = max(ok, key=lambda t: ok[t]["interval"].mean)
        print(f"grid compute {grid_compute:.0f} epoch-equivalents; oracle {oracle} "
              f"{ok[oracle]['interval'].mean:.2f}", flush=True)
        on_val = grid_decision(ref, task, grid)
        print(f"the grid on validation: best {on_val.ties.best}, {len(on_val.tied)} tied, chose {on_val.chosen}",
              flush=True)
        default = method_fix_default(task)[0]
        scored = {"oracle": ok[oracle]["outcomes"], "default": fresh_results(ref, task, [default], ex)[default]["outcomes"]}
        rows = [("grid on validation", 1.0, grid_compute, on_val.chosen, ok[on_val.chosen]["interval"], "")]
        scored[("grid on validation", 1.0)] = ok[on_val.chosen]["outcomes"]
        for name in args.methods:
            fractions = [None] if name in BUDGETLESS else args.fractions if name == "tune" else [0.1]
            for f in fractions:
                compute = 0.0 if f is None else f * grid_compute
                workdir = work / f"{name}-{f}"
                workdir.mkdir(exist_ok=True)
                t0, cache = time.perf_counter(), workdir / "choice.json"
                try:
                    kept = json.loads(cache.read_text()) if cache.exists() else None
                    if kept and kept["compute"] == compute:  # chosen by an earlier, interrupted call
                        chosen, spent, on = kept["chosen"], kept["spent"], kept["on"]
                    elif args.kept:
                        continue  # a row only for the choices an earlier call made
                    else:
                        chosen, spent, *on = METHODS[name](task=task, compute=compute, workdir=workdir,
                                                           executor=ex, found=found, old_src=old_src)
                        cache.write_text(json.dumps({"compute": compute, "chosen": chosen, "spent": spent, "on": on}))
                    g = fresh_results(ref, on[0] if on else task, [chosen], ex)[chosen]
                except Exception as e:  # noqa: BLE001 - a method that cannot run here is a row that says why
                    print(f"{name} at {f}: not run ({type(e).__name__}: {str(e)[:200]})", flush=True)
                    rows.append((name, f, None, None, None, f"not run: {type(e).__name__}: {str(e)[:120]}"))
                    continue
                rows.append((name, f, spent, chosen if not on else f"{chosen} on {on[0]}", g["interval"], ""))
                if g["interval"] is not None:
                    scored[(name, f)] = g["outcomes"]
                iv = g["interval"]
                print(f"{name} at {f}: {chosen} -> {'-' if iv is None else f'{iv.mean:.2f}'} "
                      f"({spent:.1f} epoch-eq, {time.perf_counter() - t0:.0f} s)", flush=True)
    return format_table(TaskRef(task).build().name, rows, ok[oracle]["interval"], oracle, grid_compute, len(grid)), scored


def format_table(task: str, rows: list, oracle_iv: Any, oracle: str, grid_compute: float, n_grid: int) -> str:
    lines = [f"### {task}", "",
             f"Oracle: {oracle}, {oracle_iv.mean:.2f} % [{oracle_iv.low:.2f}, {oracle_iv.high:.2f}] (best of the "
             f"{n_grid} policies, the reference grid and WSD and warmup + cosine at the range test's LR, on seeds "
             f"{FRESH[0]}-{FRESH[-1]}; the grid's compute, the unit of the budgets: {grid_compute:.0f} "
             "epoch-equivalents).", "",
             "| method | budget (of grid) | compute (epoch-eq) | chosen policy | fresh-seed test Top-1 % [95% CI] | "
             "regret (points) |", "|---|---|---|---|---|---|"]
    for name, f, spent, chosen, iv, note in rows:
        if note:
            lines.append(f"| {name} | {'-' if f is None else f'{f:g}'} | - | {note} | - | - |")
            continue
        top1 = "-" if iv is None else f"{iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]"
        regret = "-" if iv is None else f"{oracle_iv.mean - iv.mean:.2f}"
        short = chosen if len(chosen) <= 70 else chosen[:67] + "..."
        lines.append(f"| {name} | {'-' if f is None else f'{f:g}'} | {spent:.1f} | `{short}` | {top1} | {regret} |")
    return "\n".join(lines)


def format_summary(results: dict[str, dict[Any, Any]]) -> str:
    """A row per method over the tasks it has a fresh-seed result on: mean regret and mean gain over the default."""
    keys = list(dict.fromkeys(k for scored in results.values() for k in scored if isinstance(k, tuple)))
    lines = [f"### Summary over {', '.join(results)}", "",
             "| method | budget (of grid) | tasks | mean regret (points) [95% CI] | mean gain over the default (points) "
             "[95% CI] |", "|---|---|---|---|---|"]
    for name, f in keys:
        on = [scored for scored in results.values() if (name, f) in scored]
        regret = stats.mean_difference([(s["oracle"], s[(name, f)]) for s in on])
        gain = stats.mean_difference([(s[(name, f)], s["default"]) for s in on])
        lines.append(f"| {name} | {'-' if f is None else f'{f:g}'} | {len(on)} | {_points(regret)} | {_points(gain)} |")
    return "\n".join(lines)


def _points(iv: Any) -> str:
    return f"{iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]"


if __name__ == "__main__":
    main()
