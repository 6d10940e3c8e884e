"""The factor-scoring scheduler (Kim and Yu's Algorithm 1): direction and formula of the LR update (the slides'
probe), memory independent of the number of factors, a probe that touches nothing, the lookahead probe (the
default), the engine path, checkpoints and the text form."""

import copy
import ctypes
import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from crash import interrupted_and_resumed
from lrpilot.controllers import factor_probe
from lrpilot.controllers.base import make_controller
from lrpilot.controllers.factor import FACTOR_LISTS, FactorController
from lrpilot.controllers.factor_probe import FactorScheduler
from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import lookup
from lrpilot.tasks import get_task

K0 = 0.01


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


class Quadratic(nn.Module):
    """L(x) = h/2 |x|^2: the trial point x - f eta h x has loss h/2 (1 - f eta h)^2 |x|^2, best at f = 1/(eta h)."""

    def __init__(self, h: float, dim: int = 4):
        super().__init__()
        self.h = h
        self.x = nn.Parameter(torch.ones(dim, dtype=torch.float64))

    def loss(self):
        return 0.5 * self.h * (self.x**2).sum()


def quadratic_scheduler(eta_h: float, loss_fn=None, **options):
    """A scheduler with the slides' probe at LR K0 on a quadratic whose curvature makes eta * h = ``eta_h``."""
    model = Quadratic(eta_h / K0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = FactorScheduler(opt, model, loss_fn or (lambda m, b: m.loss()), lambda g: None, K0, probe="slides",
                            **options)
    return sched, model, opt


def geometric_mean(factors, scores):
    return math.exp(sum(s * math.log(f) for f, s in zip(factors, scores)) / sum(scores))


@pytest.mark.parametrize("name", FACTOR_LISTS)
def test_lr_grows_when_the_largest_factor_is_best_and_shrinks_when_the_smallest_is(name):
    grow, *_ = quadratic_scheduler(1 / 8, factors=name)  # f = 8 lands on the minimum: larger is better
    shrink, *_ = quadratic_scheduler(10.0, factors=name)  # every step overshoots: smaller is better
    for sched, best in ((grow, max(FACTOR_LISTS[name])), (shrink, min(FACTOR_LISTS[name]))):
        sched.step()
        losses = sched.points[0]["losses"]
        assert losses.index(min(losses)) == FACTOR_LISTS[name].index(best)
    assert grow.eta > K0 > shrink.eta


@pytest.mark.parametrize("name, expected", [("Factor_3", 1.0), ("Factor_5", 0.5 ** (1 / 5))])
def test_equal_losses_give_the_plain_geometric_mean_of_the_list(name, expected):
    sched, *_ = quadratic_scheduler(1.0, loss_fn=lambda m, b: (m.x * 0).sum() + 1.0, factors=name)
    sched.step()
    assert sched.points[0]["losses"] == [1.0] * len(FACTOR_LISTS[name])
    assert sched.eta == pytest.approx(K0 * expected, rel=1e-12)


def test_next_lr_is_the_weighted_geometric_mean_computed_independently():
    factors, eta_h, dim = FACTOR_LISTS["Factor_5"], 0.3, 4
    sched, model, opt = quadratic_scheduler(eta_h, factors=5)
    assert sched.step() == sched.eta == opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    losses = [0.5 * model.h * (1 - f * eta_h) ** 2 * dim for f in factors]
    x = [(v - min(losses)) / (max(losses) - min(losses)) for v in losses]
    scores = [math.exp(-v) for v in x]
    point = sched.points[0]
    assert point["losses"] == pytest.approx(losses, rel=1e-12) and point["scores"] == pytest.approx(scores, rel=1e-12)
    assert sched.eta == pytest.approx(K0 * geometric_mean(factors, scores), rel=1e-12)
    assert torch.equal(model.x, torch.ones(dim, dtype=torch.float64))


def test_pluggable_score_and_bounds():
    # a score that keeps only the best factor: the LR doubles until the upper bound stops it
    sched, *_ = quadratic_scheduler(1 / 8, score=lambda x: (x == 0).double(), bounds=(K0 / 10, 3 * K0))
    assert [sched.step() for _ in range(3)] == pytest.approx([2 * K0, 3 * K0, 3 * K0])


def test_non_finite_trial_losses_score_zero():
    def loss_fn(m, b):  # diverges once a step crosses the minimum
        return m.loss() if m.x.sum() > 0 else torch.tensor(math.inf, dtype=torch.float64)

    sched, *_ = quadratic_scheduler(1.5, loss_fn=loss_fn, factors=5)  # f = 4, 2, 1 cross; 0.5, 0.125 do not
    sched.step()
    scores = sched.points[0]["scores"]
    assert scores[:3] == [0, 0, 0] and scores[3] == 1 and scores[4] == pytest.approx(math.exp(-1))
    assert sched.eta == pytest.approx(K0 * geometric_mean([0.5, 0.125], scores[3:]))
    every_one_crosses, *_ = quadratic_scheduler(20.0, loss_fn=loss_fn, factors=5)
    assert every_one_crosses.step() == pytest.approx(K0 * 0.125)


def test_probe_leaves_model_optimizer_and_global_rng_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    F.cross_entropy(model(x), y).backward()
    opt.step()  # momentum buffers and .grad exist
    model[3].eval()  # mixed modes must come back as they were
    generator, drawn_with = torch.Generator().manual_seed(5), []

    def sample_batch(g):
        drawn_with.append(g)
        idx = torch.randint(64, (32,), generator=g)
        return x[idx], y[idx]

    sched = FactorScheduler(opt, model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), sample_batch, 0.05,
                            probe="slides", factors=7, generator=generator)
    before = (copy.deepcopy(model.state_dict()), [p.grad.clone() for p in model.parameters()],
              copy.deepcopy(opt.state_dict()["state"]), torch.get_rng_state(), [m.training for m in model.modules()])
    sched.step()
    assert drawn_with == [generator] and sched.eta != 0.05
    after = (model.state_dict(), [p.grad for p in model.parameters()], opt.state_dict()["state"],
             torch.get_rng_state(), [m.training for m in model.modules()])
    assert _same(before, after)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


# --- memory -------------------------------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_in_use():
    """Bytes the C allocator has handed out (glibc's mallinfo2: heap chunks in use + mmapped blocks)."""
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


_LIBC = ctypes.CDLL(None)
if hasattr(_LIBC, "mallinfo2"):
    _LIBC.mallinfo2.restype = _MallInfo2


class _PeakMeter(TorchDispatchMode):
    """The peak of the C heap in use, sampled after every torch op (tensors are allocated by ops)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, _heap_in_use())
        return out


def peak_extra_bytes(fn) -> int:
    meter = _PeakMeter()
    meter.peak = start = _heap_in_use()
    with meter:
        fn()
    return meter.peak - start


@pytest.mark.skipif(not hasattr(_LIBC, "mallinfo2"), reason="needs glibc's mallinfo2")
def test_memory_is_one_parameter_copy_beyond_the_gradient_whatever_the_number_of_factors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, 10))
    copy_bytes = sum(p.numel() * p.element_size() for p in model.parameters())  # 3.1 M parameters, 12.6 MB
    batch = torch.randn(32, 512), torch.randint(0, 10, (32,))

    def loss_fn(m, b):
        return F.cross_entropy(m(b[0]), b[1])

    def scoring(n):
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        return FactorScheduler(opt, model, loss_fn, lambda g: batch, 0.001, probe="slides", factors=[1.0] * n).step

    def deep_copy_per_factor():  # the slides' literal line 4: a copy of the model per factor
        grads = torch.autograd.grad(loss_fn(model, batch), list(model.parameters()))
        for f in FACTOR_LISTS["Factor_3"]:
            trial = copy.deepcopy(model)
            with torch.no_grad():
                for p, g in zip(trial.parameters(), grads):
                    p.sub_(f * 0.001 * g)
                loss_fn(trial, batch)

    peak_extra_bytes(scoring(3))  # warm up
    gradient = peak_extra_bytes(lambda: torch.autograd.grad(loss_fn(model, batch), list(model.parameters())))
    three, twenty = peak_extra_bytes(scoring(3)), peak_extra_bytes(scoring(20))
    assert three - gradient < 1.5 * copy_bytes and twenty - gradient < 1.5 * copy_bytes
    assert abs(twenty - three) < 0.2 * copy_bytes
    assert peak_extra_bytes(deep_copy_per_factor) - gradient > 1.5 * copy_bytes  # the meter tells them apart


# --- the engine ---------------------------------------------------------------------------------


def test_engine_runs_it_and_records_the_lr_trajectory(digits):
    r = train(digits, "factor(k0=0.005, probe=slides)", epochs=3)
    assert r.status == "ok" and r.policy == "factor(k0=0.005, probe=slides)" and r.metrics["n_param"] == 3
    points = r.record["points"]
    assert [p["step"] for p in points] == [digits.iters_per_epoch * e for e in (1, 2, 3)]
    assert all(len(p["losses"]) == len(p["scores"]) == 3 for p in points)
    after_first = [lr for i, lr in zip(r.curves["iteration"], r.curves["lr"]) if points[0]["step"] < i <= points[1]["step"]]
    assert set(after_first) == {points[0]["eta"]} and points[0]["eta"] != 0.005
    assert len({p["eta"] for p in points}) == 3


def test_factor_one_probes_without_disturbing_training(digits):
    # only factor 1: the LR never moves, so the run must equal FIX bit for bit (data order, model, RNG)
    fixed = train(digits, "FIX(k0=0.05)", seed=2, epochs=3)
    total = 3 * digits.iters_per_epoch
    for probe, every in (("slides", digits.iters_per_epoch), ("lookahead", max(1, round(total / 40)))):
        probed = train(digits, f"factor(k0=0.05, probe={probe}, factors=[1])", seed=2, epochs=3)
        assert [p["step"] for p in probed.record["points"]] == list(range(every, total + 1, every))
        assert probed.to_dict()["curves"] == fixed.to_dict()["curves"]
        assert probed.metrics["top1"] == fixed.metrics["top1"]


def test_every_n_iterations(digits):
    r = train(digits, "factor(k0=0.005, probe=slides, every=20, batch=16)", steps=100)
    assert [p["step"] for p in r.record["points"]] == [20, 40, 60, 80, 100]
    r = train(digits, "factor(k0=0.005, every=0.25)", steps=100)  # a fraction of the run
    assert [p["step"] for p in r.record["points"]] == [25, 50, 75, 100]


def test_checkpoint_resume_continues_identically(digits, tmp_path):
    full, state, resumed = interrupted_and_resumed(digits, "factor(k0=0.005, probe=slides, factors=5)", tmp_path,
                                                   seed=1, epochs=5, eval_every=20)
    assert state["epoch"] == 2 and len(state["controller"]["points"]) == 2
    assert resumed.to_dict()["curves"] == full.to_dict()["curves"] and resumed.record == full.record
    full, state, resumed = interrupted_and_resumed(digits, "factor(k0=0.005)", tmp_path / "lookahead",
                                                   seed=1, epochs=5, eval_every=20)
    every = round(5 * digits.iters_per_epoch / 40)  # scored every 1/40 of the run
    assert len(state["controller"]["points"]) == 2 * digits.iters_per_epoch // every  # 2 of 5 epochs
    assert resumed.to_dict()["curves"] == full.to_dict()["curves"] and resumed.record == full.record


def test_user_loop_state_round_trips_through_weights_only_load(tmp_path):
    a, *_ = quadratic_scheduler(1 / 8, factors=7)
    a.step()
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b, *_ = quadratic_scheduler(1 / 8, factors=7)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert b.optimizer.param_groups[0]["lr"] == a.eta
    a.step(), b.step()
    assert b.record() == a.record() and len(a.record()["points"]) == 2


def test_class_docstring_example_runs():
    result = doctest.testmod(factor_probe)
    assert result.failed == 0 and result.attempted > 0


# --- the text form ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical", [
    ("factor(k0=0.005)", "factor(k0=0.005, probe=lookahead, guard=1.1)"),
    ("factor(k0=0.005, probe=lookahead, factors=3, batch=32, batches=8, every=0.025, norm=noise, score=exp, "
     "bounds=[0.000005, 0.05])", "factor(k0=0.005, probe=lookahead, guard=1.1)"),
    ("factor(k0=0.005, probe=slides, factors=3, batch=32, norm=minmax, score=exp, bounds=[0.000005, 0.05])",
     "factor(k0=0.005, probe=slides)"),
    ("factor(bounds=[1e-4, 0.5], every=10, batch=64, factors=Factor_5, k0=5e-3, probe=slides)",
     "factor(k0=0.005, probe=slides, factors=5, batch=64, every=10, bounds=[0.0001, 0.5])"),
    ("factor(k0=0.005, batches=4, norm=minmax)", "factor(k0=0.005, probe=lookahead, batches=4, norm=minmax, guard=1.1)"),
    ("factor(k0=0.1, factors=[8, 4, 2, 1, 0.5, 0.25, 0.125])", "factor(k0=0.1, probe=lookahead, factors=7, guard=1.1)"),
    ("factor(k0=0.1, factors=[3, 1, 0.25])", "factor(k0=0.1, probe=lookahead, factors=[3, 1, 0.25], guard=1.1)"),
])
def test_canonical_text_parses_back_to_an_equal_configuration(text, canonical):
    c = make_controller(text)
    assert isinstance(c, FactorController) and str(c) == canonical
    assert make_controller(canonical) == c and make_controller(canonical) is not c


def test_registry_entry_builds_fresh_controllers():
    entry = lookup("factor")
    assert entry.kind == "controller" and entry.example == "factor(k0=0.005, factors=5)"
    assert make_controller(entry.example) is not make_controller(entry.example)


@pytest.mark.parametrize("text, named", [
    ("factor()", "k0"),
    ("factor(k0=-1)", "k0"),
    ("factor(k0=0.005, factors=4)", "factors"),
    ("factor(k0=0.005, factors=Factor_9)", "factors"),
    ("factor(k0=0.005, factors=[])", "factors"),
    ("factor(k0=0.005, factors=[2, 0])", "factors"),
    ("factor(k0=0.005, factors=[2, -1, 0.5])", "factors"),
    ("factor(k0=0.005, batch=0)", "batch"),
    ("factor(k0=0.005, batch=2.5)", "batch"),
    ("factor(k0=0.005, every=0)", "every"),
    ("factor(k0=0.005, every=1.5)", "every"),
    ("factor(k0=0.005, probe=copy)", "probe"),
    ("factor(k0=0.005, batches=0)", "batches"),
    ("factor(k0=0.005, bounds=[0.1, 0.01])", "bounds"),
    ("factor(k0=0.005, bounds=[0.01, 0.01])", "bounds"),
    ("factor(k0=0.5, bounds=[0.001, 0.1])", "k0"),
    ("factor(k0=0.005, norm=zscore)", "norm"),
    ("factor(k0=0.005, score=linear)", "score"),
    ("factor(k0=0.005, lr=1)", "lr"),
])
def test_bad_text_names_the_parameter(text, named, digits):
    with pytest.raises(LRPilotError, match=rf"\b{named}\b"):
        make_controller(text)
    with pytest.raises(LRPilotError, match=rf"\b{named}\b"):
        train(digits, text, steps=1)


# --- the lookahead probe's rule -----------------------------------------------------------------


def _lookahead_rule():
    from lrpilot.controllers.factor import TABLE, FactorRule

    return FactorRule.of(TABLE.read({"k0": K0}))


@pytest.mark.parametrize("shift, moves", [(0.0, "stays"), (0.01, "stays"), (1.0, "grows"), (-1.0, "shrinks")])
def test_noise_normalisation_moves_the_lr_only_when_a_factor_beats_the_current_one_beyond_noise(shift, moves):
    # losses of factors 2, 1, 0.5 on 8 probe batches: batch-to-batch spread 1, the same for every factor (paired)
    torch.manual_seed(0)
    batches = torch.randn(8, dtype=torch.float64)
    noise_only = 0.05 * torch.randn(3, 8, dtype=torch.float64)  # a paired difference of about 0.02 standard errors
    losses = batches + noise_only + torch.tensor([[-shift], [0.0], [shift]], dtype=torch.float64)
    eta, scores = _lookahead_rule().next_eta(K0, losses)
    assert {"stays": eta == K0, "grows": eta > K0, "shrinks": eta < K0}[moves]
    assert scores[1] == 1.0  # the current LR weighs 1 whatever happens
