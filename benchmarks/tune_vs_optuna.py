"""`lrpilot tune` against an Optuna TPE search over FIX and STEP policies given the same compute.

For each seed: `tune` runs on a fresh store (range test, recommendation, candidates incl. the
adaptive methods, in 2 local workers) and reports the compute it used, E epoch-equivalents; then
Optuna's TPE sampler (seeded) proposes FIX(k0) or STEP(k0, gamma, l) policies, each trained at the
task's budget with the same seed, until its trials have used E. Both pick their winner by the final
test Top-1 of a single run (neither holds out a validation split), and the table shows the
winner's final Top-1 and the compute. Optuna is only a dependency of this script
(`pip install optuna`).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_vs_optuna.py [--task digits-lenet] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lrpilot.execution.executors import LocalExecutor
from lrpilot.bench.tune import tune
from lrpilot.engine import budget, train
from lrpilot.store import Store
from lrpilot.tasks import get_task


def optuna_search(task_name: str, seed: int, compute: float) -> tuple[float, str, float, int]:
    """TPE over FIX/STEP until ``compute`` epoch-equivalents are used: (best Top-1, its policy, used, trials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = get_task(task_name)
    total = budget(task, None, None)
    used, texts = 0.0, {}

    def objective(trial: optuna.Trial) -> float:
        nonlocal used
        k0 = trial.suggest_float("k0", 1e-4, 1.0, log=True)
        if trial.suggest_categorical("fn", ["FIX", "STEP"]) == "FIX":
            text = f"FIX(k0={k0:.4g})"
        else:
            gamma = trial.suggest_float("gamma", 0.05, 0.9)
            step = trial.suggest_int("l", max(1, total // 10), max(2, total // 2))
            text = f"STEP(k0={k0:.4g}, gamma={gamma:.3g}, l={step})"
        result = train(task, text, seed=seed, steps=total)
        used += result.cost["epochs"]
        texts[trial.number] = text
        top1 = result.metrics.get("top1")
        return top1 if top1 is not None else 100.0 / (task.num_classes or 100)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    while used < compute:
        study.optimize(objective, n_trials=1)
    return study.best_value, texts[study.best_trial.number], used, len(study.trials)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-lenet")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=None, help="tune's budget in epoch-equivalents")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "tune.db") as store, LocalExecutor(2) as ex:
            start = time.perf_counter()
            tuned = tune(store, args.task, budget=args.budget, seeds=(seed,), executor=ex)
            tune_wall = time.perf_counter() - start
        start = time.perf_counter()
        best, text, used, trials = optuna_search(args.task, seed, tuned.epoch_equivalents)
        optuna_wall = time.perf_counter() - start
        rows.append((seed, tuned.metrics["top1_mean"], tuned.best, tuned.epoch_equivalents, tune_wall,
                     best, text, used, trials, optuna_wall))
        print(f"seed {seed}: tune {tuned.metrics['top1_mean']:.2f}% with {tuned.best[:60]} "
              f"({tuned.epoch_equivalents:.1f} epoch-eq, {tune_wall:.0f} s); optuna {best:.2f}% with {text} "
              f"({used:.1f} epoch-eq, {trials} trials, {optuna_wall:.0f} s)", flush=True)

    def ms(values):
        values = list(values)
        return f"{statistics.fmean(values):.2f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"

    print(f"\n{args.task}, seeds {args.seeds}: final test Top-1 of the chosen policy, compute in epoch-equivalents")
    print(f"  lrpilot tune  {ms(r[1] for r in rows)} %   compute {ms(r[3] for r in rows)}")
    print(f"  Optuna TPE    {ms(r[5] for r in rows)} %   compute {ms(r[7] for r in rows)}")


if __name__ == "__main__":
    main()
