"""The benchmark runner: real worker processes, the store's bookkeeping, crashes and interruptions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lrpilot.execution.executors import LocalExecutor, make_executor
from lrpilot.grid.runner import bench
from lrpilot.errors import LRPilotError
from lrpilot.store import Store

from tests.bench.conftest import Inline
from tests.bench.flaky import KILL_LR, RAISE_LR

FLAKY = "tests.bench.flaky:task"


def test_two_workers_run_every_pair_once_and_a_rerun_adds_nothing(store):
    lines = []
    policies = ["FIX(k0=0.05)", "COS(k0=0.05, k1=0.0005, l=20)", f"FIX(k0={KILL_LR})", f"FIX(k0={RAISE_LR})",
                "FIX(k0=50)"]
    with LocalExecutor(2) as ex:
        done = bench(store, FLAKY, policies, seeds=[0, 1], steps=20, executor=ex, progress=lines.append)
        again = bench(store, FLAKY, policies, seeds=[0, 1], steps=20, executor=ex)
    assert (done.trained, done.failed, done.finished_before) == (6, 4, 0)
    assert (again.trained, again.failed, again.finished_before) == (0, 0, 10)
    runs = {(r.policy, r.seed): r for r in store.runs(task="flaky")}
    assert len(runs) == 10 and len(lines) == 10
    for seed in (0, 1):
        assert runs["FIX(k0=0.05)", seed].status == "ok" and runs["FIX(k0=0.05)", seed].metrics["top1"] > 20  # chance: 10
        assert runs["FIX(k0=50)", seed].status == "diverged"
        assert "worker process died (exit code 3)" in runs[f"FIX(k0={KILL_LR})", seed].record["error"]
        assert "the flaky task fails" in runs[f"FIX(k0={RAISE_LR})", seed].record["error"]


def test_worker_processes_give_the_same_runs_as_one_process(store, tmp_path):
    policies = ["FIX(k0=0.05)", "EXP(k0=0.05, gamma=0.95)"]
    bench(store, "digits-lenet", policies, seeds=[3], steps=15, executor=LocalExecutor(2))
    with Store(tmp_path / "inline.db") as other:
        bench(other, "digits-lenet", policies, seeds=[3], steps=15, executor=Inline())
        for a, b in zip(store.runs(), other.runs()):
            assert (a.policy, a.metrics, a.curves["train_loss"]) == (b.policy, b.metrics, b.curves["train_loss"])


def test_runs_held_by_another_live_process_are_left_to_it(store, tmp_path):
    other = Store(store.url)
    held = other.claim("digits-lenet", "FIX(k0=0.05)", 0, 10)
    done = bench(store, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0, 1], steps=10, executor=Inline())
    assert (done.trained, done.held_elsewhere) == (1, 1)
    assert {r.seed: r.status for r in store.runs()} == {0: "running", 1: "ok"} and held is not None


def test_an_interrupted_bench_gives_its_runs_back(store):
    class Interrupted(Inline):
        def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0):
            next(jobs)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bench(store, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0], steps=10, executor=Interrupted())
    assert [r.status for r in store.runs()] == ["queued"]
    assert bench(store, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0], steps=10, executor=Inline()).trained == 1


def test_bad_input_is_refused_before_anything_is_stored(store):
    with pytest.raises(LRPilotError, match="no policies"):
        bench(store, "digits-lenet", [], executor=Inline())
    with pytest.raises(LRPilotError, match="k0"):
        bench(store, "digits-lenet", ["FIX(k0=0.1)", "COS(k1=0.1)"], executor=Inline())
    with pytest.raises(LRPilotError, match="--workers 0"):
        make_executor("local", 0)
    with pytest.raises(LRPilotError, match="unknown executor 'dask'"):
        make_executor("dask")
    assert store.runs() == []


def _finished(url: str) -> int:
    with Store(url) as s:
        return sum(r.status == "ok" for r in s.runs(curves=False))


def test_a_bench_killed_with_sigkill_and_restarted_ends_with_each_run_once(tmp_path):
    url = str(tmp_path / "killed.db")
    policies = ["FIX(k0=0.05)", "FIX(k0=0.02)", "COS(k0=0.05, k1=0.0005, l=120)", "EXP(k0=0.05, gamma=0.99)"]
    cmd = [sys.executable, "-m", "lrpilot.cli", "bench", "--task", "digits-lenet", "--policies", *policies,
           "--repeats", "2", "--steps", "120", "--workers", "2", "--db", url]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while _finished(url) < 2 if os.path.exists(url) else True:
        assert first.poll() is None and time.monotonic() < deadline, "the first bench ended or stalled"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its workers, mid-way
    first.wait()
    before = _finished(url)
    assert 2 <= before < 8
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{8 - before} runs trained, 0 pruned, 0 failed, {before} already in" in second.stdout
    with Store(url) as s:
        runs = s.runs(curves=False)
    assert sorted((r.policy, r.seed) for r in runs) == sorted((p, k) for p in policies for k in (0, 1))
    assert {r.status for r in runs} == {"ok"}


# --- issue 14: faults in long runs ------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [{"device": "bogus"}, {"eval_every": 0}])
def test_a_bad_per_run_flag_does_not_poison_the_store(store, flags):
    # issue 14: "A bad per-run flag poisons the store for good": the failures are of kind "invocation", and the
    # rerun with the flag fixed trains them; a failure of the run itself (the flaky task raising) stays final
    policies = ["FIX(k0=0.05)", f"FIX(k0={RAISE_LR})"]
    bad = bench(store, FLAKY, policies, seeds=[0], steps=5, executor=Inline(), **flags)
    assert (bad.trained, bad.failed) == (0, 2)
    kinds = {r.policy: r.record["error_kind"] for r in store.runs(task="flaky")}
    assert kinds == {"FIX(k0=0.05)": "invocation", f"FIX(k0={RAISE_LR})": "invocation"}
    fixed = bench(store, FLAKY, policies, seeds=[0], steps=5, executor=Inline())
    assert (fixed.trained, fixed.failed, fixed.finished_before) == (1, 1, 0)
    runs = {r.policy: r for r in store.runs(task="flaky")}
    assert runs["FIX(k0=0.05)"].status == "ok" and len(runs) == 2
    assert runs[f"FIX(k0={RAISE_LR})"].record["error_kind"] == "run"
    again = bench(store, FLAKY, policies, seeds=[0], steps=5, executor=Inline())
    assert (again.trained, again.failed, again.finished_before) == (0, 0, 2)  # a failure of the run is final


def test_a_worker_killed_by_a_signal_is_retried_one_that_exits_is_final(store):
    # issue 14, which failures are final: a worker killed (by the user, the OOM killer) is the invocation's fault
    class Dying(Inline):
        def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0):
            for job in jobs:
                on_failed(job, "its worker process died (exit code -9)" if job.seed == 0
                          else "its worker process died (exit code 3)")

    done = bench(store, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0, 1], steps=5, executor=Dying())
    assert done.failed == 2
    assert {r.seed: r.record["error_kind"] for r in store.runs()} == {0: "invocation", 1: "run"}
    again = bench(store, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0, 1], steps=5, executor=Inline())
    assert (again.trained, again.finished_before) == (1, 1)


def test_a_bench_whose_claims_were_taken_over_goes_on_with_the_rest(store, monkeypatch):
    # issue 14: "A bench paused (SIGSTOP) past the heartbeat timeout, whose runs another bench took over, exits 2
    # when it resumes instead of going on with other runs"
    import lrpilot.grid.runner as runner

    paused = Store(store.url, heartbeat_timeout=0.3)
    other = Store(store.url, heartbeat_timeout=0.3)
    real, lines = runner.run_job, []

    def run_job(job):
        if job.seed == 0:  # "paused" past the timeout; the other bench takes this run over
            time.sleep(0.5)
            assert other.claim(job.task.name, job.policy, job.seed, job.steps) is not None
        return real(job)

    monkeypatch.setattr(runner, "run_job", run_job)
    done = bench(paused, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0, 1, 2], steps=5, executor=Inline(),
                 progress=lines.append)
    assert (done.trained, done.held_elsewhere) == (2, 1)
    assert any("taken over by another process" in line for line in lines)
    assert {r.seed: r.status for r in store.runs()} == {0: "running", 1: "ok", 2: "ok"}
    paused.close()
    other.close()


def test_a_lost_claim_at_a_heartbeat_is_given_up(store):
    # issue 14, the same through the heartbeat: the run is dropped, the bench goes on
    paused = Store(store.url, heartbeat_timeout=0.3)

    class Takeover(Inline):
        def run(self, fn, jobs, on_done, on_failed, tick=lambda: None, every=10.0):
            first = next(jobs)
            time.sleep(0.5)
            assert Store(store.url, heartbeat_timeout=0.3).claim(first.task.name, first.policy, first.seed,
                                                                 first.steps) is not None
            tick()  # the heartbeat finds the claim lost
            on_done(first, fn(first))
            super().run(fn, jobs, on_done, on_failed, tick, every)

    done = bench(paused, "digits-lenet", ["FIX(k0=0.05)"], seeds=[0, 1], steps=5, executor=Takeover())
    assert (done.trained, done.held_elsewhere) == (1, 1)
    paused.close()
