"""Ray Tune's ASHA scheduler over tune's search space, for benchmarks/decision_quality.py (needs `ray[tune]`).

Trials are sampled at random from :func:`lrpilot.bench.space.propose` (through Ray's Optuna searcher, so the
space is the same define-by-run function), each an engine run on seed 0 that reports its validation Top-1 at
every evaluation; ASHA (reduction factor 3, grace period one evaluation) stops the ones behind; every trial
stops once the trials together have spent the compute. The choice is the best complete trial on validation.
Ray runs on this machine only, on loopback.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from lrpilot.bench.range_test import RangeTestResult
from lrpilot.grid.runner import canonical_policies
from lrpilot.bench.space import propose
from lrpilot.engine import Run, RunConfig, budget, epoch_samples
from lrpilot.tasks import TaskRef


def _text(config: dict[str, Any], total: int, found: RangeTestResult) -> str:
    import optuna

    return canonical_policies([propose(optuna.trial.FixedTrial(config), total, found.k_low, found.k_high)])[0]


class _Space:
    """The define-by-run space as a picklable object (Ray saves its searcher's state)."""

    def __init__(self, total: int, k_low: float, k_high: float):
        self.total, self.k_low, self.k_high = total, k_low, k_high

    def __call__(self, trial: Any) -> None:
        propose(trial, self.total, self.k_low, self.k_high)


def search(task: str, compute: float, found: RangeTestResult, workdir: Path) -> tuple[str, float]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    task_obj = TaskRef(task).build()
    total, unit = budget(task_obj, None, None), epoch_samples(task_obj)
    evals = math.ceil(total / Run(task_obj, "FIX(k0=0.01)", RunConfig(total=total)).eval_every)

    def trainable(config: dict[str, Any]) -> None:
        t = TaskRef(task).build()
        run = Run(t, _text(config, total, found), RunConfig(total=total, seed=0))
        while run.step < total and run.status == "running":
            run.run_until(run.step + run.eval_every)
            score = run.latest("val_top1")
            tune.report({"val_top1": score if score is not None else 0.0, "spent": run.samples / unit})

    class Spent(tune.Stopper):
        """Stops every trial once the trials together have spent ``compute`` epoch-equivalents."""

        def __init__(self):
            self.by_trial: dict[str, float] = {}

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.by_trial[trial_id] = result["spent"]
            return False

        def stop_all(self) -> bool:
            return sum(self.by_trial.values()) >= compute

    path = os.pathsep.join([str(Path(__file__).parent), *sys.path])  # the workers import this module's trainable
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             ignore_reinit_error=True, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        stopper = Spent()
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            metric="val_top1", mode="max", num_samples=10_000, max_concurrent_trials=2,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=evals, grace_period=1, reduction_factor=3),
            search_alg=OptunaSearch(space=_Space(total, found.k_low, found.k_high), metric="val_top1", mode="max",
                                    sampler=optuna.samplers.RandomSampler(seed=0))),
            run_config=tune.RunConfig(stop=stopper, storage_path=str(workdir.resolve() / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(fail_fast=True)))
        results = tuner.fit()
        complete = [r for r in results if r.metrics and r.metrics.get("training_iteration") == evals]
        best = max(complete or list(results), key=lambda r: r.metrics.get("val_top1", 0.0))
        return _text(best.config, total, found), sum(stopper.by_trial.values())
    finally:
        ray.shutdown()
