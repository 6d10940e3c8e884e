"""The Ray executor on a local Ray cluster that the test starts (loopback only, 2 CPUs)."""

from __future__ import annotations

import os

import pytest

from lrpilot.execution.executors import RayExecutor
from lrpilot.grid.runner import bench
from lrpilot.store import Store

from tests.bench.conftest import Inline
from tests.bench.flaky import KILL_LR

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e .[test]")


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_tasks_give_the_runs_of_one_process_and_survive_a_dead_worker(local_ray, store, tmp_path):
    policies = ["FIX(k0=0.05)", "COS(k0=0.05, k1=0.0005, l=15)", f"FIX(k0={KILL_LR})"]
    done = bench(store, "tests.bench.flaky:task", policies, seeds=[0], steps=15, executor=RayExecutor())
    assert (done.trained, done.failed) == (2, 1)
    with Store(tmp_path / "inline.db") as other:
        bench(other, "tests.bench.flaky:task", policies[:2], seeds=[0], steps=15, executor=Inline())
        expected = {r.policy: r for r in other.runs()}
    runs = {r.policy: r for r in store.runs()}
    for p in policies[:2]:
        assert runs[p].status == "ok" and runs[p].metrics == expected[p].metrics
    assert runs[policies[2]].status == "failed" and runs[policies[2]].record["error"]


def test_successive_halving_and_racing_run_on_ray(local_ray, store):
    from lrpilot.grid.racing import Halving

    # as on local workers: the useless LR, sent once two runs have their rung scores, stops at the rung
    policies = ["FIX(k0=0.05)", "FIX(k0=0.03)", "FIX(k0=0.02)", "FIX(k0=1e-06)"]
    done = bench(store, "digits-mlp", policies, steps=135, eval_every=15, executor=RayExecutor(workers=2),
                 race=Halving(2, 1), seeds=[0, 1])
    runs = {(r.policy, r.seed): r for r in store.runs(task="digits-mlp")}
    assert runs["FIX(k0=1e-06)", 0].status == "pruned" and runs["FIX(k0=1e-06)", 0].record["pruned_at"] == 75
    assert ("FIX(k0=1e-06)", 1) not in runs  # out of the race after its first seed
    assert done.raced and done.pruned >= 1
