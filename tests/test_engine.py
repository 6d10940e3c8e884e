"""The engine: determinism, curves, divergence, checkpoints and bit-identical resume; the public run."""

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch

from crash import interrupted_and_resumed
from lrpilot import outcomes
from lrpilot.cli import main
from lrpilot.engine import CURVES, Run, RunConfig, budget, train
from lrpilot.errors import LRPilotError
from lrpilot.policy import policy
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


def test_same_seed_same_numbers_other_seed_other_numbers(digits):
    a = train(digits, "COS(k0=0.05, k1=0.001, l=100)", seed=3, epochs=2)
    b = train(digits, "COS(k0=0.05, k1=0.001, l=100)", seed=3, epochs=2)
    c = train(digits, "COS(k0=0.05, k1=0.001, l=100)", seed=4, epochs=2)
    assert a.to_dict()["curves"] == b.to_dict()["curves"] and a.metrics == b.metrics
    assert a.curves["train_loss"] != c.curves["train_loss"]


def test_curves_metrics_and_cost(digits):
    r = train(digits, "STEP(k0=0.05, gamma=0.5, l=20)", seed=0, steps=100, eval_every=25)
    assert r.status == "ok"
    assert set(r.curves) == set(CURVES) and len({len(v) for v in r.curves.values()}) == 1
    evaluated = [i for i, t in zip(r.curves["iteration"], r.curves["test_top1"]) if not math.isnan(t)]
    assert evaluated == [25, 50, 75, 100]
    # the LR recorded at iteration i is the policy's LR for the next iteration
    for i, lr in zip(r.curves["iteration"], r.curves["lr"]):
        assert lr == pytest.approx(policy("STEP(k0=0.05, gamma=0.5, l=20)")(i))
    assert r.cost["iterations"] == 100 and r.cost["samples"] == 100 * 32 - (32 * 34 - len(digits.train[1])) * 2
    m = r.metrics
    assert 0 < m["top1"] <= m["top5"] <= 100 and m["best_top1"] >= m["top1"]
    assert m["iters_at_best"] in evaluated and m["n_param"] == 3
    assert m["ld"] == pytest.approx(m["test_loss"] - m["train_loss"])
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["curves"]["angular_velocity"][0] is None


def test_validation_metrics_curves_and_outcomes(digits):
    r = train(digits, "FIX(k0=0.05)", seed=0, steps=100, eval_every=25)
    m = r.metrics
    for key in ("val_top1", "val_top5", "val_ac", "val_cd", "val_cdac", "val_loss", "val_best_top1", "val_iters_at_best"):
        assert m[key] is not None, key
    val = [(i, t) for i, t in zip(r.curves["iteration"], r.curves["val_top1"]) if not math.isnan(t)]
    assert [i for i, _ in val] == [25, 50, 75, 100] and val[-1][1] == m["val_top1"]
    assert m["val_best_top1"] == max(t for _, t in val) and m["val_iters_at_best"] in (25, 50, 75, 100)
    assert m["val_top1"] != m["top1"] or m["val_loss"] != m["test_loss"]  # two different splits
    assert set(r.outcomes) == {"val", "test"} and r.to_dict()["outcomes"] == r.outcomes
    for split, top1 in (("val", m["val_top1"]), ("test", m["top1"])):
        correct = outcomes.decode(r.outcomes[split])
        assert len(correct) == digits.meta[f"n_{split}"] and correct.mean() * 100 == pytest.approx(top1)


def test_no_outcomes_without_an_ok_classification_run(digits):
    assert train(digits, "FIX(k0=1000)", seed=0, epochs=3).outcomes == {}
    nqm = train(get_task("nqm"), "FIX(k0=0.06)", steps=20)
    assert nqm.outcomes == {} and nqm.metrics["val_loss"] == nqm.metrics["test_loss"] and nqm.metrics["val_top1"] is None


def test_absurd_lr_ends_diverged_not_crashing(digits):
    r = train(digits, "FIX(k0=1000)", seed=0, epochs=3)
    assert r.status == "diverged" and r.cost["iterations"] < 3 * digits.iters_per_epoch
    assert r.metrics["top1"] is None and json.dumps(r.to_dict(), allow_nan=False)


def test_budget_errors(digits):
    assert budget(digits, None, 2) == 2 * digits.iters_per_epoch
    for steps, epochs in ((5, 1), (0, None), (None, -1)):
        with pytest.raises(LRPilotError):
            budget(digits, steps, epochs)


def test_resume_is_bit_identical(digits, tmp_path):
    full, state, resumed = interrupted_and_resumed(digits, "TRI2(k0=0.001, k1=0.1, l=30)", tmp_path,
                                                   seed=1, epochs=5, eval_every=20)
    assert state["epoch"] == 2
    assert resumed.to_dict()["curves"] == full.to_dict()["curves"]
    assert resumed.metrics == full.metrics and resumed.outcomes == full.outcomes
    assert resumed.cost["iterations"] == full.cost["iterations"] and resumed.cost["samples"] == full.cost["samples"]


def test_resume_refuses_another_runs_checkpoint(digits, tmp_path):
    train(digits, "FIX(k0=0.01)", seed=0, steps=50, checkpoint_dir=tmp_path)
    with pytest.raises(LRPilotError, match="another run"):
        train(digits, "FIX(k0=0.02)", seed=0, steps=50, checkpoint_dir=tmp_path, resume=True)


def _cli(*args):
    return [sys.executable, "-m", "lrpilot.cli", "train", "--task", "digits-mlp", "--quiet", *args]


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    # 150 short epochs (34 iterations of a small MLP each): long enough that the kill comes mid-run on a fast machine
    args = ["--policy", "COS(k0=0.05, k1=0.0001, l=400)", "--epochs", "150", "--seed", "2"]
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen(_cli(*args, "--checkpoint", str(ckpt), "--json", str(tmp_path / "a.json")))
    deadline = time.time() + 60
    while time.time() < deadline and not (ckpt / "checkpoint.pt").exists():
        time.sleep(0.05)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "a.json").exists(), "the run finished before it could be killed; give it more epochs"
    epoch = torch.load(ckpt / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= epoch < 150
    subprocess.run(_cli(*args, "--checkpoint", str(ckpt), "--resume", "--json", str(tmp_path / "a.json")), check=True)
    subprocess.run(_cli(*args, "--json", str(tmp_path / "b.json")), check=True)
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["curves"] == b["curves"] and a["metrics"] == b["metrics"] and a["status"] == "ok"


def test_cli_reports_divergence_with_exit_0(capsys):
    assert main(["train", "--task", "digits-mlp", "--policy", "FIX(k0=1000)", "--epochs", "2", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "diverged"


@pytest.mark.parametrize("args, fragment", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "cifar10-cnn3", "--data-dir", "/nonexistent/x"], "data_batch_1.bin"),
    (["--task", "digits-mlp", "--resume"], "--resume needs --checkpoint"),
    (["--task", "digits-mlp", "--policy", "FIX(k0=-1)"], "k0=-1"),
])
def test_cli_errors_are_one_line_exit_2(args, fragment, capsys):
    assert main(["train", *args]) == 2
    out, err = capsys.readouterr()
    assert fragment in err and err.count("\n") == 1 and out == ""


def test_nqm_angular_velocity_matches_theorem_1():
    from nqm_theory import nqm_stationary_angle

    task = get_task("nqm")
    r = train(task, "FIX(k0=0.06)", seed=0, epochs=30)
    measured = [a for a in r.curves["angular_velocity"][10:] if a is not None and not math.isnan(a)]
    expected = nqm_stationary_angle(0.06, task.a.double().numpy(), task.sigma.double().numpy())
    assert 90 < expected < 120
    assert sum(measured) / len(measured) == pytest.approx(expected, abs=1.5)


def test_user_task_from_module(tmp_path, monkeypatch):
    (tmp_path / "mytask.py").write_text(
        "import torch\nfrom lrpilot.tasks import ClassificationTask\n"
        "def make(seed=0):\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    x = torch.randn(200, 5, generator=g); y = (x[:, 0] > 0).long()\n"
        "    return ClassificationTask(name='toy-linear', train=(x[:150], y[:150]), test=(x[150:], y[150:]),\n"
        "                              make_model_fn=lambda: torch.nn.Linear(5, 2), num_classes=2, epochs=5, lr=0.1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = train(get_task("mytask:make"), "FIX(k0=0.1)", epochs=5)
    assert r.status == "ok" and r.metrics["top1"] > 80


def test_a_public_run_in_segments_equals_one_call(digits):
    text = "COS(k0=0.05, k1=0.001, l=100)"
    one = train(digits, text, seed=3, steps=100, eval_every=25)
    run = Run(digits, text, RunConfig(total=100, seed=3, eval_every=25))
    assert run.run_until(30) is None and (run.step, run.status) == (30, "running")  # mid-epoch (34 an epoch)
    run.run_until(30)  # already there: nothing to train
    run.run_until(10_000)  # stops at the budget
    assert run.step == 100
    result = run.run()
    assert result.to_dict()["curves"] == one.to_dict()["curves"] and result.metrics == one.metrics
    assert result.budget == one.budget == 100 and result.policy == text


def test_use_task_swaps_in_a_view_of_the_task(digits):
    class Counting:
        """The task as it is, counting its training losses."""

        def __init__(self, task):
            self.task, self.losses = task, 0

        def __getattr__(self, name):
            return getattr(self.task, name)

        def train_loss(self, model, batch):
            self.losses += 1
            return self.task.train_loss(model, batch)

    run = Run(digits, "FIX(k0=0.05)", RunConfig(total=60, seed=1))
    run.run_until(20)
    view = Counting(run.task)
    run.use_task(view)
    full = train(digits, "FIX(k0=0.05)", seed=1, steps=60)
    assert run.run().to_dict()["curves"] == full.to_dict()["curves"] and view.losses == 40


@pytest.mark.parametrize("settings, fragment", [
    ({"total": 0}, "total=0"), ({"total": 10, "eval_every": 0}, "--eval-every 0"),
    ({"total": 10, "diverge_factor": 1.0}, "diverge_factor=1.0"),
])
def test_run_config_names_the_bad_setting(settings, fragment):
    with pytest.raises(LRPilotError, match=fragment):
        RunConfig(**settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig(total=10).seed = 1


# --- issue 14: "--resume with a damaged checkpoint" (each case one LRPilotError naming the file and the fix) ---

class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _damage(kind, path, good):
    if kind == "garbage bytes":
        path.write_bytes(b"\x00\xffnot a checkpoint" * 50)
    elif kind == "truncated zip":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "a list instead of a dict":
        torch.save([1, 2, 3], path)
    elif kind == "missing fields":
        state = torch.load(path, weights_only=True)
        del state["model"], state["optimizer"]
        torch.save(state, path)
    elif kind == "a checkpoint of another model (size mismatch)":
        state = torch.load(path, weights_only=True)
        state["model"] = {k: torch.zeros(*(n + 1 for n in v.shape)) for k, v in state["model"].items()}
        torch.save(state, path)
    elif kind == "a directory where the file should be":
        path.unlink()
        path.mkdir()
        (path / "x").write_text("")
    elif kind == "a pickle payload that weights_only=True refuses":
        torch.save({"identity": _Evil()}, path)


@pytest.mark.parametrize("kind", ["garbage bytes", "truncated zip", "empty file", "a list instead of a dict",
                                  "missing fields", "a checkpoint of another model (size mismatch)",
                                  "a directory where the file should be",
                                  "a pickle payload that weights_only=True refuses"])
def test_resume_with_a_damaged_checkpoint_is_one_clear_error(digits, tmp_path, kind, capsys):
    train(digits, "FIX(k0=0.01)", seed=0, steps=50, checkpoint_dir=tmp_path)
    path = tmp_path / "checkpoint.pt"
    _damage(kind, path, path.read_bytes())
    with pytest.raises(LRPilotError) as err:
        train(digits, "FIX(k0=0.01)", seed=0, steps=50, checkpoint_dir=tmp_path, resume=True)
    message = str(err.value)
    assert str(path) in message and "--checkpoint" in message and "\n" not in message
    assert "pwned" not in capsys.readouterr().out


def test_a_full_disk_while_checkpointing_leaves_no_temporary_file(digits, tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(LRPilotError, match="cannot write the checkpoint .*: the disk is full"):
        train(digits, "FIX(k0=0.01)", seed=0, steps=50, checkpoint_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
