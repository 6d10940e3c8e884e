"""The run-identity commands of the CLI: bench retraining a changed user task, --rerun-failed, runs, delete."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lrpilot.cli as cli
from lrpilot.cli import main
from lrpilot.records import RunResult
from lrpilot.store import Store

from tests.bench.conftest import Inline
from tests.test_fingerprint import user_tasks, write_wine  # noqa: F401 - user_tasks is a fixture

SRC = str(Path(__file__).parents[1] / "src")
FIX = "FIX(k0=0.05)"


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "results.db")


def test_a_user_task_whose_model_changes_is_retrained(tmp_path, db):
    # issue point 5: benching mytasks:wine, changing its hidden layer size and benching again said "0 runs trained"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC])}
    cmd = [sys.executable, "-m", "lrpilot", "bench", "--task", f"{write_wine(tmp_path, hidden=4)}:wine",
           "--policies", FIX, "--repeats", "2", "--steps", "3", "--workers", "1", "--db", db]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "wine: 2 runs trained, 0 pruned, 0 failed, 0 already in" in first.stdout
    with Store(db) as s:
        [old] = {r.fingerprint for r in s.runs()}
    write_wine(tmp_path, hidden=6)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "wine: 2 runs trained, 0 pruned, 0 failed, 0 already in" in second.stdout
    assert f"2 stored runs of wine were trained on other data, model or optimizer (fingerprint {old[:10]}; now " \
        in second.stderr
    with Store(db) as s:
        runs = s.runs()
    assert len(runs) == 2 and old not in {r.fingerprint for r in runs}
    assert {r.record["fingerprint"]["model"]["n_param"] for r in runs} == {5 * 6 + 6 + 6 * 3 + 3}


@pytest.fixture
def inline(monkeypatch):
    """The CLI's executor replaced by the in-process one (real training, no worker start-up)."""
    monkeypatch.setattr(cli, "_executor", lambda args: Inline())


def bench_wine(db, *flags) -> int:
    return main(["bench", "--task", "wine_tasks:wine", "--policies", FIX, "--repeats", "1", "--steps", "3",
                 "--quiet", "--db", db, *flags])


def test_a_failed_run_is_retried_with_rerun_failed(user_tasks, inline, tmp_path, db, capsys):
    (tmp_path / "raise").touch()  # the run itself fails: final without --rerun-failed
    assert bench_wine(db) == 0
    assert "0 runs trained, 0 pruned, 1 failed" in capsys.readouterr().out
    (tmp_path / "raise").unlink()
    assert bench_wine(db) == 0
    assert "0 runs trained, 0 pruned, 0 failed, 1 already in" in capsys.readouterr().out
    assert bench_wine(db, "--rerun-failed") == 0
    assert "1 runs trained, 0 pruned, 0 failed, 0 already in" in capsys.readouterr().out
    with Store(db) as s:
        assert [r.status for r in s.runs()] == ["ok"]


@pytest.fixture
def stored(db):
    """A store with wine's runs: two ok bench runs, a failed one, a range-test probe; another task's run."""
    with Store(db) as s:
        for policy, seed, status, purpose, task in (
                (FIX, 0, "ok", "bench", "wine"), (FIX, 1, "failed", "bench", "wine"),
                ("FIX(k0=0.1)", 0, "ok", "bench", "wine"), (FIX, 0, "ok", "range-test", "wine"),
                (FIX, 0, "ok", "bench", "beer")):
            run_id = s.claim(task, policy, seed, 10, purpose=purpose, fingerprint="ab" * 32 if seed == 0 else None)
            metrics = {"top1": 80.0 + seed, "val_top1": 70.5} if status == "ok" else {}
            record = {"error": "ValueError: boom", "error_kind": "run"} if status == "failed" else {}
            s.finish(run_id, RunResult(task, policy, seed, status, metrics, {}, {"train_loss": [1.0, 0.5]}, record))
    return db


def test_runs_lists_a_tasks_runs_filtered(stored, capsys):
    assert main(["runs", "--task", "wine", "--db", stored]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "4 runs of wine"
    assert lines[1].split()[:6] == ["id", "policy", "seed", "budget", "purpose", "status"]
    assert "fingerprint" in lines[1] and "val Top-1" in lines[1] and "test Top-1" in lines[1]
    first = lines[2].split()
    assert first[:2] == ["1", FIX] and first[2:6] == ["0", "10", "bench", "ok"] and first[6:8] == ["70.50", "80.00"]
    assert first[-1] == "ab" * 5 and lines[3].split()[-1] == "-"  # seed 1 was claimed without one
    assert main(["runs", "--task", "wine", "--policy", "FIX(k0=0.050)", "--purpose", "bench", "--db", stored]) == 0
    assert capsys.readouterr().out.startswith("2 runs of wine")  # the policy text made canonical
    assert main(["runs", "--task", "wine", "--status", "failed", "--json", "--db", stored]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["seed"], row["status"], row["val_top1"], row["fingerprint"], row["task"]) == (1, "failed", None, None,
                                                                                              "wine")
    assert set(row) == {"id", "task", "policy", "seed", "budget", "purpose", "status", "val_top1", "top1",
                        "finished_at", "fingerprint"}
    assert main(["runs", "--task", "nope", "--db", stored]) == 0 and "no runs of nope match" in capsys.readouterr().out


def test_delete_with_yes_deletes_the_filtered_runs_only(stored, capsys):
    assert main(["delete", "--task", "wine", "--status", "failed", "--yes", "--db", stored]) == 0
    assert capsys.readouterr().out.strip() == "deleted 1 runs of wine"
    assert main(["delete", "--task", "wine", "--purpose", "range-test", "--yes", "--db", stored]) == 0
    with Store(stored) as s:
        assert [(r.policy, r.seed, r.purpose) for r in s.runs(task="wine")] == [(FIX, 0, "bench"),
                                                                              ("FIX(k0=0.1)", 0, "bench")]
        assert len(s.runs(task="beer")) == 1
    assert main(["delete", "--task", "wine", "--status", "failed", "--yes", "--db", stored]) == 0
    assert "nothing deleted" in capsys.readouterr().out.splitlines()[-1]


def test_delete_without_a_terminal_refuses_unless_yes(stored, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: not a terminal, even if it says yes
    assert main(["delete", "--task", "wine", "--db", stored]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrpilot delete: error: refusing to delete 4 runs (--task 'wine')") and "--yes" in err
    with Store(stored) as s:
        assert len(s.runs()) == 5


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, left", [("n\n", 5), ("y\n", 1)])
def test_delete_on_a_terminal_asks_with_the_count(stored, monkeypatch, capsys, answer, left):
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    assert main(["delete", "--task", "wine", "--db", stored]) == 0
    out = capsys.readouterr().out
    assert "delete 4 runs (--task 'wine') and their curves from" in out and "[y/N]" in out
    assert ("deleted 4 runs of wine" in out) == (answer == "y\n")
    with Store(stored) as s:
        assert len(s.runs()) == left


def test_delete_needs_a_task(stored, capsys):
    assert main(["delete", "--status", "failed", "--yes", "--db", stored]) == 2
    assert "--task" in capsys.readouterr().err


def test_runs_and_delete_import_no_torch(stored):
    code = ("import sys\nfrom lrpilot.cli import main\n"
            f"main(['runs', '--task', 'wine', '--db', {stored!r}])\n"
            f"main(['delete', '--task', 'wine', '--status', 'failed', '--yes', '--db', {stored!r}])\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    assert "deleted 1 runs of wine" in r.stdout and r.stdout.split()[-1] == "False"
