"""One contract over every registered name (scikit-learn's ``check_estimator`` style).

The names come from the registry at collection time: every entry's example parses, its text is
canonical and bad parameters raise errors that name them; policies (functions and composites)
give the same LR vectorised as per step, at huge step counts too, and copy to equal objects;
controllers and the fixed-policy adapter resume bit-identically and keep state that
``torch.load(weights_only=True)`` reads; searches run on a tiny task, record their LR
trajectory and repeat exactly under the same seed. A kind this file does not know fails.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import lrpilot
from lrpilot.controllers.base import make_controller
from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.policy import entries, policy_from_dict
from lrpilot.policy.base import build
from lrpilot.policy.text import Call, parse, render
from lrpilot.search.run import run_search

from search.tiny import blobs
from tests.pickling import pickled_copy

POLICY_KINDS = ("function", "composite")
KINDS = (*POLICY_KINDS, "controller", "search")
#: Names registered at 3bee026: a registry that resolves lazily must still list every one of them.
REGISTERED_AT_3BEE026 = {
    "FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS",
    "warmup", "piecewise", "clamp", "autodrop", "factor", "stpt", "alr",
}
#: Positional arguments as the registry lists them (the inner policy of warmup and clamp, piecewise's pieces).
POSITIONAL = {"policy", "policy@start", "..."}

ENTRIES = entries()
EPOCHS = 5  # of the tiny task (10 iterations each); the interrupted run stops at the end of epoch 3


def _of(*kinds: str) -> list:
    return [pytest.param(e, id=e.name) for e in ENTRIES if e.kind in kinds]


# --- the registry ---------------------------------------------------------------------------------------


def test_every_registered_kind_is_one_this_contract_checks():
    unknown = {e.name: e.kind for e in ENTRIES if e.kind not in KINDS}
    assert not unknown, f"kinds without a contract here: {unknown}; add their checks to {__file__}"


def test_the_registry_lists_every_name_and_every_kind():
    names = {e.name for e in ENTRIES}
    assert REGISTERED_AT_3BEE026 <= names, f"not listed by entries(): {REGISTERED_AT_3BEE026 - names}"
    assert {e.kind for e in ENTRIES} >= set(KINDS)
    for kind in KINDS:
        assert {e.name for e in entries(kind)} == {e.name for e in ENTRIES if e.kind == kind}


def test_a_fresh_import_lists_the_same_names():
    """``import lrpilot`` alone, without the modules this file imports, lists every name (lazily or not)."""
    code = "import lrpilot; from lrpilot.policy import entries; print(sorted((e.name, e.kind) for e in entries()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted((e.name, e.kind) for e in ENTRIES))


# --- every entry: text, dict and errors --------------------------------------------------------------------


def _built(text: str):
    return build(parse(text))


@pytest.mark.parametrize("entry", _of(*KINDS))
def test_example_text_is_canonical(entry):
    obj = _built(entry.example)
    text = str(obj)
    again = _built(text)
    assert type(again) is type(obj) and str(again) == text
    assert str(_built(text.replace(", ", " ,  "))) == text  # whitespace is free


@pytest.mark.parametrize("entry", _of(*KINDS))
def test_example_parses_back_to_an_equal_object(entry):
    obj = _built(entry.example)
    assert _built(str(obj)) == obj


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_dict_form_round_trips(entry):
    p = lrpilot.policy(entry.example)
    d = p.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d, "to_dict() is not plain JSON data"
    q = policy_from_dict(json.loads(json.dumps(d)))
    assert q == p and str(q) == str(p)


def _keywords(entry) -> list[str]:
    return [k for k in entry.params if k not in POSITIONAL]


def _with(example: str, **kwargs) -> str:
    """The example's text with ``kwargs`` set (replacing the example's own value, else appended)."""
    c = parse(example)
    return render(Call(c.name, c.args, {**c.kwargs, **kwargs}, c.at))


def _error(text: str) -> str:
    with pytest.raises(LRPilotError) as info:
        _built(text)
    return str(info.value)


@pytest.mark.parametrize("entry", _of(*KINDS))
def test_unknown_keyword_is_named(entry):
    assert "bogus" in _error(_with(entry.example, bogus=1))


def _bad_values() -> list:
    cases = []
    for e in ENTRIES:
        for key in _keywords(e):
            values = ("-1", "nan", "0") if key == "k0" else ("-1", "nan")
            cases += [pytest.param(e, key, v, id=f"{e.name}-{key}={v}") for v in values]
    return cases


@pytest.mark.parametrize("entry, key, value", _bad_values())
def test_bad_value_error_names_the_parameter_and_the_value(entry, key, value):
    message = _error(_with(entry.example, **{key: math.nan if value == "nan" else int(value)}))
    assert f"{key}={value}" in message, message


# --- policies: vectorised equals per step, huge steps, copies ------------------------------------------------


HUGE = [10**9, 10**12, 2**53 - 2, 2**53]


def _numbers(value) -> list[float]:
    """Every number written in a parsed call (parameters, lists, nested policies, ``@`` starts)."""
    if isinstance(value, Call):
        return [*_numbers(value.args), *_numbers(list(value.kwargs.values())), *_numbers([value.at])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _steps(example: str) -> list[int]:
    """Every step up to 4000 and both sides of every boundary the example's numbers may set (n, 2n, 3n:
    a step size, a half cycle and its period, a warmup, a piece's start)."""
    edges = {m * int(n) + d for n in _numbers(parse(example)) if n >= 1 for m in (1, 2, 3) for d in (-1, 0, 1)}
    return sorted({*range(4001), 10**6, *edges})


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_values_equal_single_calls(entry):
    p = lrpilot.policy(entry.example)
    steps = _steps(entry.example) + HUGE
    vector = p.values(np.asarray(steps, dtype=np.int64))
    assert vector.shape == (len(steps),) and vector.dtype == np.float64
    single = [p(t) for t in steps]
    assert vector.tolist() == single, [(t, v, s) for t, v, s in zip(steps, vector.tolist(), single) if v != s]
    assert p.values(steps).tolist() == single  # a plain list of steps too


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_huge_step_counts_give_finite_non_negative_lrs(entry):
    p = lrpilot.policy(entry.example)
    for t in HUGE:
        lr = p(t)
        assert isinstance(lr, float) and math.isfinite(lr) and lr >= 0, (t, lr)
    vector = p.values(np.asarray(HUGE, dtype=np.int64))
    assert np.all(np.isfinite(vector)) and np.all(vector >= 0)


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_pickles_to_an_equal_policy(entry):
    p = lrpilot.policy(entry.example)
    q = pickled_copy(p)
    assert q == p and str(q) == str(p)
    steps = _steps(entry.example)
    assert q.values(steps).tolist() == p.values(steps).tolist()


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_deepcopies_to_an_equal_policy(entry):
    p = lrpilot.policy(entry.example)
    q = copy.deepcopy(p)
    assert q == p and str(q) == str(p)
    steps = _steps(entry.example)
    assert q.values(steps).tolist() == p.values(steps).tolist()


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS))
def test_adapter_state_loads_weights_only_and_continues_the_same_lrs(entry, tmp_path):
    def scheduler():
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        return model, opt, lrpilot.PolicyScheduler(opt, entry.example)

    def steps(model, opt, sched, n):
        lrs = []
        for _ in range(n):
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return lrs

    model, opt, sched = scheduler()
    steps(model, opt, sched, 7)
    torch.save(sched.state_dict(), tmp_path / "sched.pt")
    expected = steps(model, opt, sched, 5)
    model2, opt2, sched2 = scheduler()
    sched2.load_state_dict(torch.load(tmp_path / "sched.pt", weights_only=True))
    assert steps(model2, opt2, sched2, 5) == expected


# --- controllers and the fixed-policy adapter in the engine: resume and state ---------------------------------


@pytest.fixture(scope="module")
def tiny():
    return blobs()


class Interrupted(Exception):
    """A run stopped at an epoch end, as a killed process would be."""


def _watched(text: str, crash_at: int | None = None):
    """A fresh controller for ``text`` that keeps the model it trains, raising :class:`Interrupted`
    at the end of epoch ``crash_at``; (controller, the list that gets the model)."""
    controller, models = make_controller(text), []
    start, after_epoch = controller.start, controller.after_epoch

    def watch_start(ctx):
        models.append(ctx.model)
        start(ctx)

    def crashing_after_epoch(epoch):
        if epoch == crash_at:
            raise Interrupted
        after_epoch(epoch)

    controller.start, controller.after_epoch = watch_start, crashing_after_epoch
    return controller, models


def _comparable(result) -> dict:
    d = result.to_dict()
    del d["cost"]["wall_s"]
    return d


def _assert_same_state(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_state(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert a == b


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS, "controller"))
def test_resume_from_an_epoch_checkpoint_equals_the_uninterrupted_run(entry, tiny, tmp_path):
    kwargs = {"seed": 3, "epochs": EPOCHS, "eval_every": 7, "device": "cpu"}
    controller, models = _watched(entry.example)
    full = train(tiny, controller, **kwargs)
    with pytest.raises(Interrupted):
        train(tiny, _watched(entry.example, crash_at=3)[0], checkpoint_dir=tmp_path, **kwargs)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2
    resumed_controller, resumed_models = _watched(entry.example)
    resumed = train(tiny, resumed_controller, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert full.status == resumed.status == "ok"
    assert _comparable(resumed) == _comparable(full)
    for p, q in zip(models[0].state_dict().values(), resumed_models[0].state_dict().values(), strict=True):
        assert torch.equal(p, q)
    _assert_same_state(resumed_controller.state_dict(), controller.state_dict())


@pytest.mark.parametrize("entry", _of(*POLICY_KINDS, "controller"))
def test_controller_state_loads_with_weights_only(entry, tiny, tmp_path):
    controller = make_controller(entry.example)
    train(tiny, controller, seed=0, epochs=2, device="cpu")
    state = controller.state_dict()
    torch.save(state, tmp_path / "controller.pt")
    _assert_same_state(torch.load(tmp_path / "controller.pt", weights_only=True), state)


# --- searches: they run, record their LR trajectory and repeat under the same seed ---------------------------


def _without_wall(x):
    if isinstance(x, dict):
        return {k: _without_wall(v) for k, v in x.items() if k != "wall_s"}
    if isinstance(x, list):
        return [_without_wall(v) for v in x]
    return x


@pytest.mark.parametrize("entry", _of("search"))
def test_search_runs_records_its_lr_trajectory_and_repeats_under_one_seed(entry, tiny):
    a, b = (run_search(tiny, entry.example, seed=4, epochs=2, device="cpu") for _ in range(2))
    assert a.status == "ok" and a.cost["epochs"] == 2
    trajectory = a.record["trajectory"]
    assert trajectory and trajectory[0][0] == 0
    assert all(len(p) == 2 and 0 <= p[0] < a.cost["iterations"] and math.isfinite(p[1]) and p[1] > 0
               for p in trajectory)
    assert [p[0] for p in trajectory] == sorted({p[0] for p in trajectory})
    assert _without_wall(a.to_dict()) == _without_wall(b.to_dict())
