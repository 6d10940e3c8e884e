"""Executors: the same search result whichever runs it; a killed worker is a clear error, not a hang."""

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import EXECUTORS, ExecutorEntry, InProcess, make_executor
from lrpilot.search.run import run_search
from lrpilot.tasks import get_task

TEXT = "stpt(k0=0.05, set=[2, 1, 0.5], alpha=3, warmup=1)"


def die(_):
    """A worker that is killed (SIGKILL) while it runs."""
    os.kill(os.getpid(), signal.SIGKILL)


def _search(executor, workers=None):
    return run_search("search.tiny:blobs", TEXT, seed=5, epochs=3, executor=executor, workers=workers).to_dict()


@pytest.fixture(scope="module")
def in_process():
    return _search("inprocess")


def _same_search(a, b):
    """Equal curves, metrics, cost and per-epoch records, wall time and workers aside."""
    def key(r):
        epochs = [{k: v for k, v in e.items() if k != "wall_s"} for e in r["record"]["epochs"]]
        cost = {k: v for k, v in r["cost"].items() if k not in ("wall_s", "workers")}
        return r["curves"], r["metrics"], cost, epochs
    return key(a) == key(b)


def test_local_processes_give_the_in_process_result(in_process):
    local = _search("local", workers=2)  # 3 candidates on 2 workers: one worker runs two
    assert local["cost"]["workers"] == 2
    assert _same_search(in_process, local)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is optional")
def test_ray_gives_the_in_process_result(in_process, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # Ray's workers import the task's module
    assert _same_search(in_process, _search("ray", workers=2))


def test_a_killed_worker_is_a_clear_error_not_a_hang():
    code = ("import sys, test_executors as t; from lrpilot.execution.executors import LocalExecutor\n"
            "from lrpilot.errors import LRPilotError\n"
            "try:\n    LocalExecutor(2).map(t.die, [0, 1, 2])\n"
            "except LRPilotError as e:\n    print(e); sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "worker process died" in r.stdout and "die" in r.stdout


def test_a_new_executor_is_one_entry_in_executors(monkeypatch):
    made = []
    monkeypatch.setitem(EXECUTORS, "serial", ExecutorEntry(lambda workers, address: made.append(workers) or InProcess(),
                                                           "one job at a time", jobs=True))
    assert make_executor("serial", 3).map(len, ["ab", "c"]) == [2, 1] and made == [3]
    with pytest.raises(LRPilotError, match="--address 'host:1' is for --executor ray"):
        make_executor("serial", address="host:1")


def test_executor_errors(monkeypatch):
    with pytest.raises(LRPilotError, match="unknown executor 'gpu'"):
        make_executor("gpu")
    with pytest.raises(LRPilotError, match="torchrun --nproc_per_node"):
        make_executor("torchrun")
    with pytest.raises(LRPilotError, match="--workers 0"):
        make_executor("local", 0)
    with pytest.raises(LRPilotError, match="name"):
        run_search(get_task("digits-mlp"), TEXT, steps=5, executor="local", workers=1)
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(LRPilotError, match=r"pip install 'lrpilot\[ray\]'"):
        make_executor("ray", 2).map(len, ["x"])


_ORPHAN = """
import multiprocessing, os, sys, time
from lrpilot.execution.executors import _serve

def slow(job):
    time.sleep(0.5)
    return job

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, 1, os.getpid()))
    proc.start()
    child.close()
    parent.send((slow, 1))
    parent.close()  # as if the parent were killed: the worker's reply meets a closed pipe
    proc.join(30)
    print(proc.exitcode)
"""


def test_a_worker_whose_parent_is_gone_exits_without_a_broken_pipe_traceback(tmp_path):
    # issue 14: "workers print BrokenPipeError tracebacks when their parent is killed"
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
