"""PolicyScheduler against torch's own schedulers, resume, param groups, skipped optimizer steps."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as tls

import lrpilot

N_STEPS = 300


def _tiny(seed: int = 0, lr: float = 0.5):
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return model, opt


X3 = torch.linspace(-1, 1, 12).reshape(4, 3)


def _train_step(model, opt):
    opt.zero_grad()
    loss = model(X3).pow(2).mean()
    loss.backward()
    opt.step()


def _lr(opt, i: int = 0) -> float:
    return opt.param_groups[i]["lr"]


TORCH_CASES = [
    ("STEP(k0=0.1, gamma=0.5, l=30)", 0.1,
     lambda o: tls.StepLR(o, step_size=30, gamma=0.5)),
    ("STEP(k0=0.05, gamma=0.1, l=7)", 0.05,
     lambda o: tls.StepLR(o, step_size=7, gamma=0.1)),
    ("NSTEP(k0=0.05, gamma=0.1, l=[150, 180])", 0.05,
     lambda o: tls.MultiStepLR(o, milestones=[150, 180], gamma=0.1)),
    ("NSTEP(k0=0.1, gamma=0.5, l=[10, 50, 51, 200])", 0.1,
     lambda o: tls.MultiStepLR(o, milestones=[10, 50, 51, 200], gamma=0.5)),
    ("EXP(k0=0.1, gamma=0.99)", 0.1,
     lambda o: tls.ExponentialLR(o, gamma=0.99)),
    ("EXP(k0=0.3, gamma=0.9)", 0.3,
     lambda o: tls.ExponentialLR(o, gamma=0.9)),
    ("TRI(k0=0.001, k1=0.1, l=20)", 0.001,
     lambda o: tls.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=20,
                            mode="triangular", cycle_momentum=False)),
    ("TRI(k0=0.0001, k1=0.9, l=37)", 0.0001,
     lambda o: tls.CyclicLR(o, base_lr=0.0001, max_lr=0.9, step_size_up=37,
                            mode="triangular", cycle_momentum=False)),
    ("TRI2(k0=0.001, k1=0.1, l=20)", 0.001,
     lambda o: tls.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=20,
                            mode="triangular2", cycle_momentum=False)),
    ("TRI2(k0=0.0001, k1=0.9, l=13)", 0.0001,
     lambda o: tls.CyclicLR(o, base_lr=0.0001, max_lr=0.9, step_size_up=13,
                            mode="triangular2", cycle_momentum=False)),
    ("FIX(k0=0.025)", 0.025,
     lambda o: tls.ConstantLR(o, factor=1.0, total_iters=5)),
]


@pytest.mark.parametrize("text,k0,make_torch", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_scheduler(text, k0, make_torch):
    m_ref, o_ref = _tiny(lr=k0)
    ref = make_torch(o_ref)
    m, o = _tiny(lr=0.5)  # the policy scheduler, not the optimizer, sets the LR
    sched = lrpilot.PolicyScheduler(o, lrpilot.policy(text))
    assert isinstance(sched, tls.LRScheduler)
    ours, theirs = [], []
    for _ in range(N_STEPS):
        ours.append(_lr(o))
        theirs.append(_lr(o_ref))
        assert sched.get_last_lr() == [_lr(o)]
        _train_step(m, o)
        _train_step(m_ref, o_ref)
        sched.step()
        ref.step()
    ours.append(_lr(o))
    theirs.append(_lr(o_ref))
    bad = [(t, a, b) for t, (a, b) in enumerate(zip(ours, theirs))
           if not math.isclose(a, b, rel_tol=1e-12, abs_tol=0)]
    assert not bad, f"{text}: (t, ours, torch) = {bad[:10]}"
    # and the LR did move where the policy moves (the comparison is not vacuous)
    if not text.startswith("FIX"):
        assert len(set(ours)) > 1


@pytest.mark.parametrize("text", ["COS(k0=0.1, k1=0.001, l=25)", "SINEXP(k0=0.05, k1=0.3, gamma=0.97, l=10)",
                                  "POLY(k0=0.1, p=2, l=120)"])
def test_optimizer_lr_is_policy_t(text):
    p = lrpilot.policy(text)
    m, o = _tiny()
    sched = lrpilot.PolicyScheduler(o, text)  # text accepted too
    assert _lr(o) == p(0)
    assert sched.get_last_lr() == [p(0)]
    for t in range(1, 200):
        _train_step(m, o)
        sched.step()
        assert math.isclose(_lr(o), p(t), rel_tol=1e-12, abs_tol=0), (t, _lr(o), p(t))
        assert sched.get_last_lr() == [_lr(o)]


def test_text_and_object_give_same_lrs():
    text = "TRI2(k0=0.0001, k1=0.9, l=7)"
    runs = []
    for pol in (text, lrpilot.policy(text)):
        m, o = _tiny()
        sched = lrpilot.PolicyScheduler(o, pol)
        seq = []
        for _ in range(50):
            seq.append(_lr(o))
            _train_step(m, o)
            sched.step()
        runs.append(seq)
    assert runs[0] == runs[1]


# --------------------------------------------------------------------------------------------
# Resume from a checkpoint
# --------------------------------------------------------------------------------------------

_g = torch.Generator().manual_seed(1234)
XS = torch.randn(64, 4, generator=_g)
YS = torch.randn(64, 1, generator=_g)


def _build(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.123, momentum=0.9)
    return model, opt


def _train(model, opt, sched, start, stop, lrs):
    for i in range(start, stop):
        lrs.append(_lr(opt))
        j = (i * 8) % 64
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(XS[j:j + 8]), YS[j:j + 8])
        loss.backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("text", ["COS(k0=0.1, k1=0.001, l=30)", "TRI2(k0=0.001, k1=0.05, l=20)"])
def test_resume_is_exact(text, tmp_path):
    p = lrpilot.policy(text)

    model, opt = _build(0)
    sched = lrpilot.PolicyScheduler(opt, p)
    full_lrs: list[float] = []
    _train(model, opt, sched, 0, 100, full_lrs)
    full_params = [q.detach().clone() for q in model.parameters()]

    model, opt = _build(0)
    sched = lrpilot.PolicyScheduler(opt, p)
    lrs: list[float] = []
    _train(model, opt, sched, 0, 50, lrs)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict()}, path)
    del model, opt, sched

    ck = torch.load(path, weights_only=True)
    model2, opt2 = _build(99)  # different init: everything must come from the checkpoint
    sched2 = lrpilot.PolicyScheduler(opt2, p)
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    model2.load_state_dict(ck["model"])
    assert math.isclose(_lr(opt2), p(50), rel_tol=1e-12)
    assert math.isclose(sched2.get_last_lr()[0], p(50), rel_tol=1e-12)
    _train(model2, opt2, sched2, 50, 100, lrs)

    assert lrs == full_lrs
    for t, v in enumerate(full_lrs):
        assert math.isclose(v, p(t), rel_tol=1e-12), (t, v, p(t))
    for a, b in zip(full_params, model2.parameters()):
        assert torch.equal(a, b.detach())
    # after resuming, stepping keeps following the policy
    assert math.isclose(_lr(opt2), p(100), rel_tol=1e-12)


def test_state_dict_is_plain_data():
    m, o = _tiny()
    sched = lrpilot.PolicyScheduler(o, "COS(k0=0.1, k1=0.001, l=30)")
    for _ in range(7):
        _train_step(m, o)
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    m2, o2 = _tiny()
    s2 = lrpilot.PolicyScheduler(o2, "COS(k0=0.1, k1=0.001, l=30)")
    s2.load_state_dict(sd)
    p = lrpilot.policy("COS(k0=0.1, k1=0.001, l=30)")
    assert math.isclose(s2.get_last_lr()[0], p(7), rel_tol=1e-12)
    _train_step(m2, o2)
    s2.step()
    assert math.isclose(_lr(o2), p(8), rel_tol=1e-12), (_lr(o2), p(8))


# --------------------------------------------------------------------------------------------
# Parameter groups
# --------------------------------------------------------------------------------------------

def _two_groups():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=0.5)
    return model, opt


def _train2(model, opt):
    opt.zero_grad()
    model(X3).pow(2).mean().backward()
    opt.step()


@pytest.mark.parametrize("as_text", [False, True])
def test_one_policy_per_group(as_text):
    t0, t1 = "COS(k0=0.1, k1=0.001, l=20)", "STEP(k0=0.01, gamma=0.5, l=7)"
    p0, p1 = lrpilot.policy(t0), lrpilot.policy(t1)
    model, opt = _two_groups()
    sched = lrpilot.PolicyScheduler(opt, [t0, t1] if as_text else [p0, p1])
    for t in range(60):
        assert math.isclose(_lr(opt, 0), p0(t), rel_tol=1e-12), t
        assert math.isclose(_lr(opt, 1), p1(t), rel_tol=1e-12), t
        assert sched.get_last_lr() == [_lr(opt, 0), _lr(opt, 1)]
        _train2(model, opt)
        sched.step()


def test_group_scales():
    p = lrpilot.policy("TRI(k0=0.001, k1=0.1, l=10)")
    model, opt = _two_groups()
    sched = lrpilot.PolicyScheduler(opt, p, group_scales=[1.0, 0.1])
    for t in range(60):
        assert math.isclose(_lr(opt, 0), p(t), rel_tol=1e-12), t
        assert math.isclose(_lr(opt, 1), 0.1 * p(t), rel_tol=1e-12), t
        assert len(sched.get_last_lr()) == 2
        _train2(model, opt)
        sched.step()


def test_group_count_mismatch_is_rejected():
    # not in the paper: a list of policies must match the optimizer's param groups
    _, opt = _two_groups()
    with pytest.raises(ValueError):
        lrpilot.PolicyScheduler(opt, ["FIX(k0=0.1)"])
    _, opt = _two_groups()
    with pytest.raises(ValueError):
        lrpilot.PolicyScheduler(opt, "FIX(k0=0.1)", group_scales=[1.0, 0.5, 0.1])


def test_bad_policy_text_raises_lrpilot_error():
    _, opt = _tiny()
    with pytest.raises(lrpilot.LRPilotError, match="gamma"):
        lrpilot.PolicyScheduler(opt, "EXP(k0=0.1, gamma=1.5)")


# --------------------------------------------------------------------------------------------
# A skipped optimizer step (GradScaler found inf) does not advance the policy
# --------------------------------------------------------------------------------------------

def test_skipped_optimizer_step_does_not_advance():
    p = lrpilot.policy("TRI(k0=0.001, k1=0.1, l=5)")
    m, o = _tiny()
    sched = lrpilot.PolicyScheduler(o, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # skipped before the very first optimizer step
        o.zero_grad()
        sched.step()
        assert _lr(o) == p(0)
        assert sched.get_last_lr() == [p(0)]
        for t in range(7):
            assert math.isclose(_lr(o), p(t), rel_tol=1e-12), t
            _train_step(m, o)
            sched.step()
        assert math.isclose(_lr(o), p(7), rel_tol=1e-12)
        for _ in range(3):  # three skipped steps in a row
            o.zero_grad()
            sched.step()
            assert math.isclose(_lr(o), p(7), rel_tol=1e-12)
            assert math.isclose(sched.get_last_lr()[0], p(7), rel_tol=1e-12)
        _train_step(m, o)
        sched.step()
        assert math.isclose(_lr(o), p(8), rel_tol=1e-12), (_lr(o), p(8))


def test_real_gradscaler_skip_does_not_advance():
    try:
        scaler = torch.amp.GradScaler("cpu")
    except Exception as e:  # pragma: no cover - depends on the torch build
        pytest.skip(f"GradScaler on CPU unavailable: {e}")
    p = lrpilot.policy("COS(k0=0.1, k1=0.001, l=4)")
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sched = lrpilot.PolicyScheduler(opt, p)
    bad_iters = {0, 5, 6, 11}
    k = 0
    seen, expected = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for it in range(16):
            seen.append(_lr(opt))
            expected.append(p(k))
            opt.zero_grad()
            loss = model(X3).pow(2).mean()
            scaler.scale(loss).backward()
            if it in bad_iters:
                model.weight.grad[0, 0] = float("inf")
            before = model.weight.detach().clone()
            scaler.step(opt)
            scaler.update()
            sched.step()
            skipped = torch.equal(before, model.weight.detach())
            assert skipped == (it in bad_iters), "premise: the scaler skips exactly the inf steps"
            if it not in bad_iters:
                k += 1
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(seen, expected)), (seen, expected)
    assert math.isclose(_lr(opt), p(k), rel_tol=1e-12)
