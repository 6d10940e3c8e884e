"""lrpilot range-test prints and stores one answer: the decade search, the sweep, or both (scripted runs)."""

import json

import pytest

import lrpilot.bench.range_test as rt
import lrpilot.cli as cli
from lrpilot.cli import main
from lrpilot.store import Store

from tests.bench.conftest import Inline, Scripted

TASK = "digits-lenet"
TOP1 = {0.1: 50.0, 0.01: 90.0, 0.001: 80.0, 0.0001: 70.0, 0.002: 85.0, 0.005: 89.5, 0.02: 89.2, 0.05: 60.0}


class Both(Scripted):
    """Scripted FIX runs for the decade search; the sweep's jobs run as they are (in this process)."""

    def run(self, fn, jobs, *args, **kw):
        (Inline.run if fn is rt.sweep_job else Scripted.run)(self, fn, jobs, *args, **kw)


@pytest.fixture
def scripted(monkeypatch, tmp_path):
    """A store, Top-1 from TOP1 for the decade search, and sweeps whose loss minimum lies at a given LR."""
    monkeypatch.setattr(cli, "_executor", lambda args: Both(lambda lr: TOP1[float(f"{lr:.3g}")]))

    def sweep(lr_at_min):
        monkeypatch.setattr(rt, "sweep_job", lambda job: {"seed": job.seed, "lr": [], "loss": [],
                                                          "suggestion": lr_at_min / 10})
    return str(tmp_path / "results.db"), sweep


def range_test(db, *extra):
    return main(["range-test", "--task", TASK, "--steps", "10", "--repeats", "2", "--quiet", "--db", db, *extra])


@pytest.mark.parametrize("lr_at_min, method, word", [(0.1, "both", "agree"), (0.02, "decade", "disagree")])
def test_both_methods_print_one_answer_and_store_it(scripted, capsys, lr_at_min, method, word):
    db, sweep = scripted
    sweep(lr_at_min)
    assert range_test(db) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("answer:")]
    assert line.startswith(f"answer: constant LR 0.005 ({method}): the methods {word}")
    assert "FIX 0.01     validation Top-1  90.00 +- 0.00 (n=2)" in out
    with Store(db) as s:
        (stored,) = s.analyses(task=TASK, kind="range-decade")
    assert stored["result"]["answer"] == {"lr": 0.005, "method": method, "why": line.split("): ", 1)[1]}
    assert {"best_lr", "k_low", "k_high"} <= set(stored["result"])  # what tune and the suites read


def test_json_holds_the_answer(scripted, capsys):
    db, sweep = scripted
    sweep(0.1)
    assert range_test(db, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == out["decade"]["answer"] and out["answer"]["method"] == "both"
    stored = {a["kind"]: a["result"] for a in Store(db).analyses()}  # --json prints what the store keeps
    assert (out["decade"], out["sweep"]) == (stored["range-decade"], stored["range-sweep"])
    assert out["sweep"]["kind"] == "sweep" and out["sweep"]["suggestion"] == pytest.approx(0.01)


def test_one_method_answers_alone(scripted, capsys):
    db, sweep = scripted
    sweep(0.5)
    assert range_test(db, "--method", "sweep") == 0
    assert "answer: constant LR 0.05 (sweep): the sweep's 0.05" in capsys.readouterr().out
    assert range_test(db, "--method", "decade") == 0
    assert "answer: constant LR 0.005 (decade): the decade search's good range [0.005, 0.02]" in capsys.readouterr().out
