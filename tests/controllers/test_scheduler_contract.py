"""PolicyScheduler against the LRScheduler contract that torch's own scheduler tests exercise.

26 checks, each a named test: it passes as torch's schedulers do, or it is a difference by
design (documented in ``lrpilot.controllers.scheduler``) whose one-line error or behaviour is
asserted. The by-design ones say so in their docstring.
"""

from __future__ import annotations

import copy
import io
import math
import warnings

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as tls

import lrpilot
from lrpilot.controllers.scheduler import PolicyScheduler

from tests.pickling import pickled_copy

COS = "COS(k0=0.1, k1=0.001, l=20)"
P = lrpilot.policy(COS)


def _opt(lr=0.5, groups=1):
    torch.manual_seed(0)
    model = nn.Linear(3, groups)
    if groups == 1:
        return torch.optim.SGD(model.parameters(), lr=lr)
    return torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=lr)


def _opt_step(opt):
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.ones_like(p)
    opt.step()


def _run(opt, sched, n):
    for _ in range(n):
        _opt_step(opt)
        sched.step()


def _lr(opt, i=0):
    return float(opt.param_groups[i]["lr"])


def _close(a, b):
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)


# 1
def test_construction_is_warning_free_and_an_lrscheduler():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = _opt()
        sched = PolicyScheduler(opt, COS)
    assert isinstance(sched, tls.LRScheduler)
    assert sched.last_epoch == 0 and sched.t == 0 and _lr(opt) == P(0)
    with pytest.raises(TypeError, match="not an Optimizer"):
        PolicyScheduler(object(), COS)


# 2
def test_step_follows_the_policy():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    for t in range(1, 30):
        _run(opt, sched, 1)
        assert _lr(opt) == P(t) and sched.last_epoch == t


# 3
def test_get_last_lr_floats_for_float_lrs():
    opt = _opt(groups=2)
    sched = PolicyScheduler(opt, COS, group_scales=[1.0, 0.5])
    _run(opt, sched, 3)
    last = sched.get_last_lr()
    assert all(type(v) is float for v in last)
    assert last == [g["lr"] for g in opt.param_groups] == [P(3), 0.5 * P(3)]


# 4
def test_get_last_lr_tensors_for_tensor_lrs_and_copies():
    torch.manual_seed(0)
    opt = torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=torch.tensor(0.5))
    lr_tensor = opt.param_groups[0]["lr"]
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 4)
    (last,) = sched.get_last_lr()
    assert isinstance(last, torch.Tensor) and last is not lr_tensor
    assert opt.param_groups[0]["lr"] is lr_tensor  # filled in place
    assert _close(last, P(4)) and _close(lr_tensor, P(4))
    last.fill_(123.0)  # the copy does not alias the optimizer's LR
    assert _close(lr_tensor, P(4))


# 5
def test_state_dict_round_trip_in_place():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 6)
    sd = sched.state_dict()
    _run(opt, sched, 5)
    sched.load_state_dict(sd)
    assert sched.last_epoch == 6 and _lr(opt) == P(6) and sched.get_last_lr() == [P(6)]
    assert sched.state_dict() == sd


# 6
def test_state_loads_weights_only_into_a_fresh_optimizer():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 9)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    opt2 = _opt(lr=0.01)
    sched2 = PolicyScheduler(opt2, "FIX(k0=0.3)")  # the state brings the policy
    sched2.load_state_dict(torch.load(buf, weights_only=True))
    assert _lr(opt2) == P(9)
    _run(opt2, sched2, 1)
    assert _lr(opt2) == P(10)


# 6b
def test_loading_another_policys_state_leaves_the_scheduler_as_one_built_with_it():
    """As torch's _check_scheduler_state_dict: every field of the scheduler equals that of one built with the
    loaded policy (base_lrs included: it was the first policy's), and so do the groups' initial_lr."""
    opt, opt2 = _opt(groups=2), _opt(groups=2)
    source = PolicyScheduler(opt, COS, group_scales=[1.0, 0.1])
    _run(opt, source, 4)
    loaded = PolicyScheduler(opt2, "FIX(k0=0.3)")
    loaded.load_state_dict(source.state_dict())
    fields = lambda sched: {k: v for k, v in sched.__dict__.items() if k not in ("optimizer", "_hook")}  # noqa: E731
    assert fields(loaded) == fields(source) and loaded.base_lrs == [P(0), 0.1 * P(0)]
    assert [g["initial_lr"] for g in opt2.param_groups] == [g["initial_lr"] for g in opt.param_groups]


# 7
def test_step_count_is_restored():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 7)
    sched.step()  # a step with no optimizer step: counted, does not advance
    assert sched._step_count == 9 and sched.last_epoch == 7
    sched2 = PolicyScheduler(_opt(), COS)
    sched2.load_state_dict(sched.state_dict())
    assert sched2._step_count == 9
    legacy = {k: v for k, v in sched.state_dict().items() if k not in ("step_count", "shared")}
    sched3 = PolicyScheduler(_opt(), COS)
    sched3.load_state_dict(legacy)  # a state saved before step_count was stored
    assert sched3._step_count == 8 and sched3.last_epoch == 7


# 8
def test_optimizer_and_scheduler_state_load_in_either_order():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 5)
    osd, ssd = copy.deepcopy(opt.state_dict()), sched.state_dict()
    for order in ("opt_first", "sched_first"):
        o2 = _opt()
        s2 = PolicyScheduler(o2, COS)
        if order == "opt_first":
            o2.load_state_dict(osd)
            s2.load_state_dict(ssd)
        else:
            s2.load_state_dict(ssd)
            o2.load_state_dict(osd)
        assert _lr(o2) == P(5), order
        _run(o2, s2, 1)
        assert _lr(o2) == P(6), order


# 9
def test_added_param_group_follows_the_shared_policy_scaled():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    opt = torch.optim.SGD(a.parameters(), lr=0.5)
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 3)
    opt.add_param_group({"params": b.parameters(), "lr": 0.1 * P(0)})  # scale = lr / policy(0) = 0.1
    _run(opt, sched, 1)
    assert len(sched.get_last_lr()) == 2
    assert _lr(opt, 0) == P(4) and _close(_lr(opt, 1), 0.1 * P(4))
    assert _close(sched.scales[1], 0.1) and _close(opt.param_groups[1]["initial_lr"], 0.1 * P(0))
    _run(opt, sched, 5)
    assert _close(_lr(opt, 1), 0.1 * P(9))


# 10
def test_added_param_group_with_zero_policy_start_gets_scale_one():
    text = "warmup(COS(k0=0.1, k1=0.001, l=20), steps=5)"
    p = lrpilot.policy(text)
    assert p(0) == 0
    opt = _opt()
    sched = PolicyScheduler(opt, text)
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": 0.7})
    _run(opt, sched, 2)
    assert sched.scales == [1.0, 1.0] and _lr(opt, 1) == p(2) == _lr(opt, 0)


# 11
def test_added_param_group_with_per_group_policies_raises_at_next_step():
    """By design: a list of policies has none for the new group; the error names the fix."""
    opt = _opt()
    sched = PolicyScheduler(opt, [COS])
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": 0.7})
    _opt_step(opt)
    with pytest.raises(lrpilot.LRPilotError, match="a group was added.*build a new PolicyScheduler") as e:
        sched.step()
    assert "\n" not in str(e.value)


# 12
def test_state_of_a_grown_optimizer_loads_into_a_grown_optimizer():
    def grown():
        opt = _opt()
        sched = PolicyScheduler(opt, COS)
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": 0.2 * P(0)})
        return opt, sched

    opt, sched = grown()
    _run(opt, sched, 6)
    sd = sched.state_dict()
    opt2, sched2 = grown()
    sched2.load_state_dict(sd)
    assert [_lr(opt2, i) for i in range(2)] == [_lr(opt, i) for i in range(2)]
    assert len(sched2.get_last_lr()) == 2
    _run(opt, sched, 1)
    _run(opt2, sched2, 1)
    assert sched2.get_last_lr() == sched.get_last_lr()


# 13
def test_state_saved_before_a_group_was_added_loads_into_the_grown_optimizer():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 4)
    sd = sched.state_dict()
    opt2 = _opt()
    sched2 = PolicyScheduler(opt2, COS)
    opt2.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": 0.5 * P(0)})
    sched2.load_state_dict(sd)
    assert len(sched2.get_last_lr()) == 2 and _close(_lr(opt2, 1), 0.5 * P(4))
    # per-group states keep refusing a mismatch (one line)
    sd_list = PolicyScheduler(_opt(), [COS]).state_dict()
    with pytest.raises(lrpilot.LRPilotError, match="1 policies for 2 param groups"):
        PolicyScheduler(_opt(groups=2), COS).load_state_dict(sd_list)


# 14
def test_deepcopy_with_its_optimizer_advances():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 3)
    s2 = copy.deepcopy(sched)
    o2 = s2.optimizer
    assert o2 is not opt
    _run(o2, s2, 4)
    assert s2.last_epoch == 7 and _lr(o2) == P(7)
    assert sched.last_epoch == 3 and _lr(opt) == P(3)  # the original is untouched
    _run(opt, sched, 1)
    assert sched.last_epoch == 4 and s2.last_epoch == 7


# 15
def test_pickle_round_trip_advances():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 5)
    s2 = pickled_copy(sched)
    o2 = s2.optimizer
    assert s2.last_epoch == 5 and _lr(o2) == P(5) and s2.policies == sched.policies
    _run(o2, s2, 2)
    assert s2.last_epoch == 7 and _lr(o2) == P(7)
    o3, s3 = pickled_copy((opt, sched))  # pickled together: the same optimizer
    assert s3.optimizer is o3
    _run(o3, s3, 1)
    assert _lr(o3) == P(6)


# 16
def test_last_epoch_resumes_at_the_next_step():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    _run(opt, sched, 10)
    osd = copy.deepcopy(opt.state_dict())
    opt2 = _opt()
    opt2.load_state_dict(osd)  # brings initial_lr
    sched2 = PolicyScheduler(opt2, COS, last_epoch=9)
    assert sched2.last_epoch == 10 and _lr(opt2) == P(10) and sched2._step_count == 1
    _run(opt2, sched2, 1)
    _run(opt, sched, 1)
    assert _lr(opt2) == _lr(opt) == P(11)


# 17
def test_last_epoch_without_initial_lr_is_refused():
    """By design: LRPilotError (a ValueError) naming the fix, where torch raises a multi-line KeyError."""
    with pytest.raises(lrpilot.LRPilotError, match="no 'initial_lr'; load the optimizer's state first") as e:
        PolicyScheduler(_opt(), COS, last_epoch=5)
    assert "\n" not in str(e.value)


# 18
def test_last_epoch_below_minus_one_is_refused():
    with pytest.raises(lrpilot.LRPilotError, match="use -1 for a new run"):
        PolicyScheduler(_opt(), COS, last_epoch=-2)


def _count_graphs(make_sched, n_steps=20):
    import torch._dynamo

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.1))
    sched = make_sched(opt)
    graphs = [0]

    def backend(gm, example_inputs):
        graphs[0] += 1
        return gm.forward

    @torch.compile(backend=backend)
    def train_step():
        opt.step()
        sched.step()

    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_steps):
            model(torch.ones(2, 3)).sum().backward()
            train_step()
            opt.zero_grad()
            lrs.append(float(opt.param_groups[0]["lr"]))
    torch._dynamo.reset()
    return graphs[0], lrs, sched


# 19
def test_tensor_lr_under_compile_does_not_recompile():
    ours, lrs, sched = _count_graphs(lambda o: PolicyScheduler(o, COS))
    theirs, _, _ = _count_graphs(lambda o: tls.CosineAnnealingLR(o, T_max=20))
    assert ours <= max(theirs, 2), (ours, theirs)
    assert ours == 1
    assert sched.last_epoch == 20
    assert all(_close(v, P(t + 1)) for t, v in enumerate(lrs))


# 20
def test_tensor_lr_is_filled_in_place_and_initial_lr_is_a_tensor():
    opt = torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=torch.tensor(0.5))
    lr = opt.param_groups[0]["lr"]
    sched = PolicyScheduler(opt, COS)
    init = opt.param_groups[0]["initial_lr"]
    assert isinstance(init, torch.Tensor) and init is not lr and _close(init, P(0))
    _run(opt, sched, 3)
    assert opt.param_groups[0]["lr"] is lr and opt.param_groups[0]["initial_lr"] is init
    assert set(opt.param_groups[0]) == set(torch.optim.SGD([nn.Parameter(torch.zeros(1))]).param_groups[0]) | {"initial_lr"}


# 21
def test_optimizer_step_is_wrapped_also_after_copies():
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    assert getattr(opt.step, "_wrapped_by_lr_sched", False)
    for s2 in (copy.deepcopy(sched), pickled_copy(sched)):
        assert getattr(s2.optimizer.step, "_wrapped_by_lr_sched", False)
        _opt_step(s2.optimizer)
        assert s2.optimizer._opt_called


# 22
def test_t_counts_scheduler_steps_after_an_optimizer_step():
    """By design: t counts scheduler steps that followed >= 1 optimizer step, not optimizer steps."""
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    for _ in range(5):
        _opt_step(opt)
        _opt_step(opt)
        sched.step()
    assert sched.t == 5 and _lr(opt) == P(5)
    assert "at least one ``optimizer.step()``" in PolicyScheduler.__doc__


# 23
def test_step_before_optimizer_step_neither_warns_nor_advances():
    """By design: torch warns and advances; here it is a skipped step (GradScaler found inf)."""
    opt = _opt()
    sched = PolicyScheduler(opt, COS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
        sched.step()
    assert sched.t == 0 and _lr(opt) == P(0)
    _run(opt, sched, 1)
    assert sched.t == 1


# 24
def test_step_with_an_epoch_is_refused():
    """By design: torch's deprecated step(epoch) raises a one-line error naming load_state_dict()."""
    sched = PolicyScheduler(_opt(), COS)
    with pytest.raises(lrpilot.LRPilotError, match="takes no epoch.*load_state_dict") as e:
        sched.step(3)
    assert "\n" not in str(e.value)


# 25
def test_chained_with_another_scheduler_is_overwritten():
    """By design: not chainable; the LR is scale * policy(t), another scheduler's change is overwritten."""
    opt = _opt()
    ours = PolicyScheduler(opt, COS)
    other = tls.ExponentialLR(opt, gamma=0.5)
    for t in range(1, 6):
        _opt_step(opt)
        other.step()
        ours.step()
        assert _lr(opt) == P(t)
    assert "not" in lrpilot.controllers.scheduler.__doc__ and "chainable" in lrpilot.controllers.scheduler.__doc__
