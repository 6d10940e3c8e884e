"""AutoDrop (Algorithm 1 of the AutoDrop paper, ``saturation=absolute``): the drop rule on hand-made angles, the
weighted parameter average, the NQM of Figure 3 through the engine, Adam, checkpoints and the text form; the
relative saturation test (the default) on hand-made angles, the NQM and digits-lenet."""

import doctest
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from crash import interrupted_and_resumed
from lrpilot.cli import main
from lrpilot.controllers import autodrop
from lrpilot.controllers.autodrop import AutoDrop
from lrpilot.controllers.base import Context, Controller, make_controller
from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import lookup
from lrpilot.tasks import get_task

NQM_STEPS = 500


@pytest.fixture(scope="module")
def nqm():
    return get_task("nqm")


# --- the rule on a hand-driven point ----------------------------------------------------------


class Point(nn.Module):
    """A 2-D parameter moved by hand, and a buffer standing in for BatchNorm's running statistics."""

    def __init__(self):
        super().__init__()
        self.x = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        self.register_buffer("running", torch.zeros(()))


def moves(turns):
    """Period t's change, turned by ``turns[t]`` degrees from period t-1's change (so omega_t = turns[t]);
    lengths 1.1, 1.2, ... so that the weighted average is not a plain mean."""
    phi, out = 0.0, []
    for t, turn in enumerate(turns, start=1):
        phi += turn
        out.append((1 + 0.1 * t) * torch.tensor([math.cos(math.radians(phi)), math.sin(math.radians(phi))],
                                                dtype=torch.float64))
    return out


def walk(drop, model, steps, start=1):
    """Add each change to the parameters, call ``step()``; the points set by hand, the points after, the LRs."""
    set_by_hand, after, lrs = [], [], []
    for t, s in enumerate(steps, start=start):
        with torch.no_grad():
            model.x += s
            model.running.fill_(t)
        set_by_hand.append(model.x.detach().clone())
        lrs.append(drop.step())
        after.append(model.x.detach().clone())
    return set_by_hand, after, lrs


# omega_t for t = 2..19 (t = 1 has no angle). |omega_4 - omega_3| = 0.015 misses theta0 = 0.01; t = 6 triggers,
# t = 7, 8, 9 are the n_d = 3 periods after it (t = 8 would trigger again, but a drop is pending), the drop at 9
# doubles theta (rho = 0.5) so that the same 0.015 triggers at t = 11; the second drop hits k_min and theta_max.
TURNS = [0, 20, 50, 50.015, 80, 80.005, 81, 81.001, 100, 130, 130.015, 10, 20, 30, 60, 60.025, 5, 6, 7]
RULE = dict(k0=0.1, rho=0.5, saturation="absolute", k_min=0.03, theta0=0.01, theta_max=0.03, nd=3)
PAPER = dict(saturation="absolute")


def make_optimizer(kind, params):
    return {"sgd": lambda: torch.optim.SGD(params, lr=1.0),
            "momentum": lambda: torch.optim.SGD(params, lr=1.0, momentum=0.9),
            "adam": lambda: torch.optim.Adam(params, lr=1.0)}[kind]()


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_drops_exactly_when_the_rule_says_and_sets_the_weighted_average(kind):
    model = Point()
    opt = make_optimizer(kind, model.parameters())
    model.x.sum().backward()
    opt.step()  # the optimizer has state (momentum, Adam's moments), which AutoDrop must keep
    state = {k: v.clone() for k, v in opt.state[model.x].items() if torch.is_tensor(v)}
    drop = AutoDrop(opt, model, **RULE)
    points, after, lrs = walk(drop, model, moves(TURNS))
    assert drop.record()["drops"] == [
        {"epoch": 9, "trigger": 6, "lr": 0.05, "theta": 0.02},
        {"epoch": 14, "trigger": 11, "lr": 0.03, "theta": 0.03},  # rho * 0.05 = 0.025 < k_min; 0.04 > theta_max
        {"epoch": 19, "trigger": 16, "lr": 0.03, "theta": 0.03},  # |60.025 - 60| < theta_max triggers
    ]
    assert lrs == [0.1] * 8 + [0.05] * 5 + [0.03] * 6
    assert opt.param_groups[0]["lr"] == 0.03
    for t_drop, t0 in ((9, 6), (14, 11), (19, 16)):
        x = points[t0:t_drop]  # the ends of periods t0+1 .. t0+n_d, weights 1..n_d
        expected = (1 * x[0] + 2 * x[1] + 3 * x[2]) / 6
        assert torch.allclose(after[t_drop - 1], expected, rtol=0, atol=1e-12)
    untouched = [t for t in range(1, 20) if t not in (9, 14, 19)]
    assert all(torch.equal(after[t - 1], points[t - 1]) for t in untouched)
    assert model.running.item() == 19  # buffers are not averaged
    assert all(torch.equal(opt.state[model.x][k], v) for k, v in state.items())


@pytest.mark.parametrize("window", [1, 3])
def test_first_check_needs_two_full_windows_of_angles(window):
    model = Point()
    drop = AutoDrop(torch.optim.SGD(model.parameters(), lr=1.0), model, k0=0.1, rho=0.5, nd=1, window=window,
                    **PAPER)
    walk(drop, model, moves([40.0] * 10))  # constant omega: the first possible check already passes
    assert drop.record()["drops"][0] == {"epoch": window + 3, "trigger": window + 2, "lr": 0.05, "theta": 0.02}


def test_state_dict_round_trip_mid_drop_continues_identically(tmp_path):
    steps = moves(TURNS)
    a, b = Point(), Point()
    drop_a = AutoDrop(torch.optim.SGD(a.parameters(), lr=1.0), a, **RULE)
    walk(drop_a, a, steps[:7])  # triggered at 6, one period accumulated
    torch.save({"drop": drop_a.state_dict(), "model": a.state_dict()}, tmp_path / "s.pt")
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert saved["drop"]["k"] == 1 and saved["drop"]["trigger"] == 6 and saved["drop"]["z"] is not None
    b.load_state_dict(saved["model"])
    drop_b = AutoDrop(torch.optim.SGD(b.parameters(), lr=1.0), b, **RULE)
    drop_b.load_state_dict(saved["drop"])
    tail_a, tail_b = walk(drop_a, a, steps[7:], start=8), walk(drop_b, b, steps[7:], start=8)
    assert drop_b.record() == drop_a.record() and len(drop_a.record()["drops"]) == 3
    assert all(torch.equal(u, v) for u, v in zip(tail_a[1], tail_b[1]))


def test_epoch_mode_does_nothing_per_iteration_and_period_mode_counts_iterations():
    model = Point()
    per_epoch = AutoDrop(torch.optim.SGD(model.parameters(), lr=1.0), model, k0=0.1, rho=0.5, **PAPER)
    assert per_epoch.after_step.__func__ is Controller.after_step
    per_3 = AutoDrop(torch.optim.SGD(model.parameters(), lr=1.0), model, k0=0.1, rho=0.5, period=3, **PAPER)
    for _ in range(7):
        per_3.after_step()
    per_3.after_epoch(1)
    assert (per_3.t, per_3.iterations) == (2, 7)
    restored = AutoDrop(torch.optim.SGD(model.parameters(), lr=1.0), model, k0=0.1, rho=0.5, period=3, **PAPER)
    restored.load_state_dict(per_3.state_dict())  # mid-period: 7 = 2 * 3 + 1
    for c in (per_3, restored):
        c.after_step(), c.after_step()
    assert per_3.t == restored.t == 3


@pytest.mark.parametrize("nd, task, expected", [
    (0.1, SimpleNamespace(av_period=None, av_window=1), 2),  # 10% of 15 epochs, rounded
    (0.01, SimpleNamespace(av_period=None, av_window=1), 1),  # at least 1
    (0.01, SimpleNamespace(av_period=1, av_window=20), 6),  # 1% of 645 iterations (NQM-style periods)
    (7, SimpleNamespace(av_period=None, av_window=1), 7),
])
def test_nd_as_a_fraction_of_the_run(nd, task, expected):
    model = Point()
    drop = AutoDrop(k0=0.1, rho=0.5, nd=nd, **PAPER)
    drop.start(Context(model, torch.optim.SGD(model.parameters(), lr=1.0), task, 645, 43, torch.Generator()))
    assert drop.record()["nd"] == expected and drop.record()["window"] == task.av_window


# --- the engine -------------------------------------------------------------------------------


def test_nqm_drops_and_beats_the_fixed_lr_as_in_figure_3(nqm):
    text = "autodrop(k0=0.06, rho=0.5, saturation=absolute, k_min=0.001, nd=10)"  # Section 3: 0.06 down to 0.001
    fixed = train(nqm, "FIX(k0=0.06)", steps=NQM_STEPS)
    auto = train(nqm, text, steps=NQM_STEPS)
    rec = auto.record
    assert (rec["unit"], rec["window"], rec["nd"]) == ("iteration", 20, 10)  # the task's per-iteration window
    assert len(rec["drops"]) >= 2 and all(d["iteration"] - d["trigger"] == 10 for d in rec["drops"])
    assert [d["lr"] for d in rec["drops"][:2]] == [0.03, 0.015] and min(auto.curves["lr"]) == 0.001
    assert auto.metrics["test_loss"] < 0.1 * fixed.metrics["test_loss"]


def test_the_relative_default_drops_on_the_nqm_too_and_beats_the_fixed_lr(nqm):
    fixed = train(nqm, "FIX(k0=0.06)", steps=NQM_STEPS)
    auto = train(nqm, "autodrop(k0=0.06, rho=0.5, k_min=0.001)", steps=NQM_STEPS)  # 40 periods, not the task's
    assert auto.record["unit"] == "iteration" and len(auto.record["drops"]) >= 1
    assert auto.metrics["test_loss"] < 0.5 * fixed.metrics["test_loss"]


def test_works_on_top_of_adam(nqm, monkeypatch):
    monkeypatch.setattr(nqm, "make_optimizer", lambda params, lr: torch.optim.Adam(params, lr=lr))
    fixed = train(nqm, "FIX(k0=0.1)", steps=NQM_STEPS)
    auto = train(nqm, "autodrop(k0=0.1, rho=0.5, saturation=absolute, k_min=0.001, nd=10)", steps=NQM_STEPS)
    assert len(auto.record["drops"]) >= 2 and auto.curves["lr"][-1] < 0.1
    assert auto.metrics["test_loss"] < fixed.metrics["test_loss"]


def test_engine_checkpoint_mid_drop_resumes_identically(nqm, tmp_path):
    full, state, resumed = interrupted_and_resumed(nqm, "autodrop(k0=0.06, rho=0.5, saturation=absolute, k_min=0.001, "
                                                   "nd=10)", tmp_path, seed=1, epochs=5)
    assert state["epoch"] == 2 and state["controller"]["k"] >= 1 and state["controller"]["z"] is not None
    assert resumed.to_dict()["curves"] == full.to_dict()["curves"] and resumed.record == full.record


# --- the text form ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical", [
    ("autodrop(k0=0.1, rho=0.2)", "autodrop(k0=0.1, rho=0.2, saturation=relative, guard=1.1)"),
    ("autodrop(k0=0.1, rho=0.2, saturation=relative, theta0=1, theta_max=2, nd=0.1, period=0.025, window=5)",
     "autodrop(k0=0.1, rho=0.2, saturation=relative, guard=1.1)"),
    ("autodrop(window=20, period=1, nd=10, theta_max=1, theta0=0.01, k_min=1e-4, rho=0.5, k0=6e-2, "
     "saturation=absolute)", "autodrop(k0=0.06, rho=0.5, saturation=absolute, nd=10, period=1, window=20)"),
    ("autodrop(k0=0.1, rho=0.2, saturation=absolute, nd=20.0, theta0=0.05, k_min=0)",
     "autodrop(k0=0.1, rho=0.2, saturation=absolute, k_min=0, theta0=0.05)"),
    ("autodrop(k0=0.1, rho=0.2, saturation=absolute, nd=0.1, theta_max=2)",
     "autodrop(k0=0.1, rho=0.2, saturation=absolute, theta_max=2, nd=0.1)"),
    ("autodrop(k0=0.1, rho=0.2, theta0=3)", "autodrop(k0=0.1, rho=0.2, saturation=relative, theta0=3, guard=1.1)"),
])
def test_canonical_text_parses_back_to_an_equal_configuration(text, canonical):
    c = make_controller(text)
    assert isinstance(c, AutoDrop) and str(c) == canonical
    assert make_controller(canonical) == c and make_controller(canonical) is not c


def test_registry_entry_and_policies_listing(capsys):
    entry = lookup("autodrop")
    assert entry.kind == "controller" and entry.example == "autodrop(k0=0.1, rho=0.2)"
    assert make_controller(entry.example) is not make_controller(entry.example)
    assert main(["policies"]) == 0
    assert "autodrop(k0=0.1, rho=0.2)" in capsys.readouterr().out


@pytest.mark.parametrize("text, named", [
    ("autodrop(k0=0.1)", "rho"),
    ("autodrop(rho=0.2)", "k0"),
    ("autodrop(k0=0, rho=0.2)", "k0"),
    ("autodrop(k0=0.1, rho=1)", "rho"),
    ("autodrop(k0=0.1, rho=0)", "rho"),
    ("autodrop(k0=0.1, rho=nan)", "rho"),
    ("autodrop(k0=0.1, rho=0.2, k_min=0.1)", "k_min"),
    ("autodrop(k0=0.1, rho=0.2, theta0=0)", "theta0"),
    ("autodrop(k0=0.1, rho=0.2, theta_max=0.001)", "theta_max"),
    ("autodrop(k0=0.1, rho=0.2, saturation=fast)", "saturation"),
    ("autodrop(k0=0.1, rho=0.2, period=1.5)", "period"),
    ("autodrop(k0=0.1, rho=0.2, nd=0)", "nd"),
    ("autodrop(k0=0.1, rho=0.2, nd=1.5)", "nd"),
    ("autodrop(k0=0.1, rho=0.2, period=0)", "period"),
    ("autodrop(k0=0.1, rho=0.2, window=2.5)", "window"),
    ("autodrop(k0=0.1, rho=0.2, lr=1)", "lr"),
])
def test_bad_text_names_the_parameter(text, named, nqm):
    with pytest.raises(LRPilotError, match=rf"\b{named}\b"):
        make_controller(text)
    with pytest.raises(LRPilotError, match=rf"\b{named}\b"):
        train(nqm, text, steps=1)


def test_user_loop_errors_and_docstring_example():
    model = Point()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(LRPilotError, match="periods="):
        AutoDrop(opt, model, k0=0.1, rho=0.5, nd=0.1)  # the default nd, 0.1, too
    with pytest.raises(LRPilotError, match="model"):
        AutoDrop(opt, k0=0.1, rho=0.5)
    assert doctest.testmod(autodrop).failed == 0
