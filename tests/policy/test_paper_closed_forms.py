"""The 13 LR functions of LRBench (Wu et al., "Demystifying Learning Rate Policies ...", Table I).

Every expected value here is computed by this file's own reference code, written from Table I
and formula (2) of the paper:

    lr(t) = |k0 - k1| * g(t) + min(k0, k1)

with the readings lrpilot adopts (see the docstring of each ``_g_*`` helper). The implementation
is never used to produce an expectation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lrpilot

REL = 1e-9
ABS = 1e-15
HUGE = 10**9


# --------------------------------------------------------------------------------------------
# Reference implementation, written from the paper
# --------------------------------------------------------------------------------------------

def _half_cycle_pos(t: int, l: int) -> tuple[int, int]:
    """(m, n): distance of t from the nearest multiple of 2l (0 <= m <= l), and floor(t / 2l).

    Exact integer arithmetic, so the huge steps are as precise as the small ones.  The cyclic
    functions of Table I are all symmetric about t = l inside each period 2l.
    """
    n, u = divmod(t, 2 * l)
    return min(u, 2 * l - u), n


def _tri(t: int, l: int) -> float:
    """TRI(t) = (2/pi) |arcsin(sin(pi t / 2l))|: a triangle 0 -> 1 (at t = l) -> 0 (at t = 2l)."""
    m, _ = _half_cycle_pos(t, l)
    return m / l


def _sin(t: int, l: int) -> float:
    """SIN(t) = |sin(pi t / 2l)|, period 2l, peak 1 at t = l."""
    m, _ = _half_cycle_pos(t, l)
    return math.sin(math.pi * m / (2 * l))


def _cos(t: int, l: int) -> float:
    """COS(t) = (1 + cos(pi t / l)) / 2: l is the half period (1 at t = 0, 0 at t = l)."""
    m, _ = _half_cycle_pos(t, l)
    return 0.5 * (1.0 + math.cos(math.pi * m / l))


def _halvings(t: int, l: int) -> float:
    """1 / 2^floor(t / 2l)."""
    return math.pow(0.5, t // (2 * l))


def ref_g(name: str, kw: dict, t: int) -> float:
    gamma, p, l = kw.get("gamma"), kw.get("p"), kw.get("l")
    if name == "STEP":
        return math.pow(gamma, t // l)
    if name == "NSTEP":
        return math.pow(gamma, sum(1 for b in l if b <= t))
    if name == "EXP":
        return math.pow(gamma, t)
    if name == "INV":
        return 1.0 / math.pow(1.0 + gamma * t, p)
    if name == "POLY":
        return math.pow(1.0 - t / l, p) if t < l else 0.0
    if name == "TRI":
        return _tri(t, l)
    if name == "TRI2":
        return _halvings(t, l) * _tri(t, l)
    if name == "TRIEXP":
        return math.pow(gamma, t) * _tri(t, l)
    if name == "SIN":
        return _sin(t, l)
    if name == "SIN2":
        return _halvings(t, l) * _sin(t, l)
    if name == "SINEXP":
        return math.pow(gamma, t) * _sin(t, l)
    if name == "COS":
        return _cos(t, l)
    raise AssertionError(name)


def ref_lr(name: str, kw: dict, t: int) -> float:
    """Formula (2); FIX is k0; decaying functions have k1 = 0 unless given."""
    k0 = kw["k0"]
    if name == "FIX":
        return k0
    k1 = kw.get("k1", 0.0)
    return abs(k0 - k1) * ref_g(name, kw, t) + min(k0, k1)


def _fmt(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return repr(v)


def text_of(name: str, kw: dict) -> str:
    return f"{name}(" + ", ".join(f"{k}={_fmt(v)}" for k, v in kw.items()) + ")"


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


# --------------------------------------------------------------------------------------------
# Cases: (name, parameters); the paper's own examples are marked
# --------------------------------------------------------------------------------------------

CASES = [
    ("FIX", {"k0": 0.025}),                                        # paper, Figure 1
    ("FIX", {"k0": 0.01}),                                         # paper, Section II
    ("STEP", {"k0": 0.1, "gamma": 0.1, "l": 30}),
    ("STEP", {"k0": 0.5, "gamma": 0.5, "l": 7}),
    ("STEP", {"k0": 0.1, "k1": 0.001, "gamma": 0.5, "l": 10}),
    ("STEP", {"k0": 0.1, "gamma": 1.0, "l": 5}),
    ("NSTEP", {"k0": 0.05, "gamma": 0.1, "l": [150, 180]}),        # paper, Figure 1
    ("NSTEP", {"k0": 0.1, "gamma": 0.5, "l": [10, 25, 60, 61]}),
    ("NSTEP", {"k0": 0.1, "k1": 0.01, "gamma": 0.2, "l": [5]}),
    ("EXP", {"k0": 0.1, "gamma": 0.99}),
    ("EXP", {"k0": 1.0, "gamma": 0.5}),
    ("EXP", {"k0": 0.1, "k1": 0.001, "gamma": 0.9}),
    ("INV", {"k0": 0.1, "gamma": 0.001, "p": 0.75}),
    ("INV", {"k0": 0.01, "gamma": 0.5, "p": 2}),
    ("INV", {"k0": 0.1, "k1": 0.01, "gamma": 1.0, "p": 0.5}),
    ("POLY", {"k0": 0.1, "p": 2, "l": 100}),
    ("POLY", {"k0": 0.01, "p": 0.5, "l": 1000}),
    ("POLY", {"k0": 0.1, "k1": 0.001, "p": 1.2, "l": 37}),
    ("TRI", {"k0": 0.0001, "k1": 0.9, "l": 2000}),
    ("TRI", {"k0": 0.001, "k1": 0.1, "l": 25}),
    ("TRI", {"k0": 0.3, "k1": 0.05, "l": 10}),
    ("TRI", {"k0": 0.001, "k1": 0.01, "l": 1}),
    ("TRI2", {"k0": 0.0001, "k1": 0.9, "l": 2000}),
    ("TRI2", {"k0": 0.001, "k1": 0.1, "l": 7}),
    ("TRIEXP", {"k0": 0.05, "k1": 0.3, "gamma": 0.94, "l": 100}),  # paper, Figure 1
    ("TRIEXP", {"k0": 0.001, "k1": 0.01, "gamma": 0.9999, "l": 50}),
    ("SIN", {"k0": 0.001, "k1": 0.1, "l": 25}),
    ("SIN", {"k0": 0.2, "k1": 0.02, "l": 9}),
    ("SIN2", {"k0": 0.001, "k1": 0.1, "l": 25}),
    ("SIN2", {"k0": 0.0001, "k1": 0.9, "l": 2000}),
    ("SINEXP", {"k0": 0.05, "k1": 0.3, "gamma": 0.94, "l": 100}),
    ("SINEXP", {"k0": 0.001, "k1": 0.01, "gamma": 0.999, "l": 13}),
    ("COS", {"k0": 0.1, "k1": 0.001, "l": 5000}),
    ("COS", {"k0": 0.001, "k1": 0.1, "l": 30}),
    ("COS", {"k0": 0.05, "k1": 0.0005, "l": 3}),
]


def steps_for(name: str, kw: dict) -> list[int]:
    ts = {0, 1, 2, 3, 10, 99, 100, 101, 12345, HUGE, HUGE + 1, HUGE + 7}
    l = kw.get("l")
    if isinstance(l, list):
        for b in l:
            ts |= {b - 1, b, b + 1}
    elif l is not None:
        ts |= {l - 1, l, l + 1, 2 * l - 1, 2 * l, 2 * l + 1, 3 * l, 4 * l + 1, 6 * l - 1,
               HUGE + l, HUGE * l, 10**12 + l}
    return sorted(t for t in ts if t >= 0)


def _id(case):
    name, kw = case
    return text_of(name, kw)


@pytest.fixture(params=CASES, ids=[_id(c) for c in CASES])
def case(request):
    return request.param


# --------------------------------------------------------------------------------------------
# The reference itself agrees with the table's literal formulas (guards this file's reading)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("l", [1, 2, 3, 7, 100])
def test_reference_matches_table_literal_forms(l):
    for t in range(0, 9 * l + 1):
        x = math.pi * t / (2 * l)
        assert math.isclose(_tri(t, l), 2 / math.pi * abs(math.asin(math.sin(x))), abs_tol=1e-12)
        assert math.isclose(_sin(t, l), abs(math.sin(x)), abs_tol=1e-12)
        assert math.isclose(_cos(t, l), 0.5 * (1 + math.cos(math.pi * t / l)), abs_tol=1e-12)
        assert _halvings(t, l) == 1 / 2 ** math.floor(t / (2 * l))


# --------------------------------------------------------------------------------------------
# Scalar and vectorised values against the reference
# --------------------------------------------------------------------------------------------

def test_scalar_values_match_paper(case):
    name, kw = case
    p = lrpilot.policy(text_of(name, kw))
    bad = []
    for t in steps_for(name, kw):
        got, want = p(t), ref_lr(name, kw, t)
        assert isinstance(got, float), f"p({t}) returned {type(got)}"
        if not close(got, want):
            bad.append((t, got, want))
    assert not bad, f"{text_of(name, kw)}: (t, got, want) = {bad}"


def test_vector_values_match_paper(case):
    name, kw = case
    p = lrpilot.policy(text_of(name, kw))
    ts = steps_for(name, kw) + list(range(0, 301))
    got = p.values(np.array(ts, dtype=np.int64))
    assert isinstance(got, np.ndarray)
    assert got.shape == (len(ts),)
    assert np.issubdtype(got.dtype, np.floating)
    bad = [(t, float(g), ref_lr(name, kw, t)) for t, g in zip(ts, got)
           if not close(float(g), ref_lr(name, kw, t))]
    assert not bad, f"{text_of(name, kw)}: (t, got, want) = {bad[:10]}"


def test_values_of_arange_match_paper(case):
    name, kw = case
    p = lrpilot.policy(text_of(name, kw))
    got = p.values(np.arange(0, 500))
    want = [ref_lr(name, kw, t) for t in range(500)]
    assert len(got) == 500
    for t in range(500):
        assert close(float(got[t]), want[t]), (t, float(got[t]), want[t])


# --------------------------------------------------------------------------------------------
# The paper's examples, spelled out by hand
# --------------------------------------------------------------------------------------------

def test_paper_nstep_example():
    p = lrpilot.policy("NSTEP(k0=0.05, gamma=0.1, l=[150, 180])")
    for t, want in [(0, 0.05), (149, 0.05), (150, 0.005), (151, 0.005), (179, 0.005),
                    (180, 0.0005), (199, 0.0005), (HUGE, 0.0005)]:
        assert close(p(t), want), (t, p(t), want)


def test_paper_triexp_example():
    p = lrpilot.policy("TRIEXP(k0=0.05, k1=0.3, gamma=0.94, l=100)")
    # LR starts at min(k0, k1) = 0.05, peaks (damped by 0.94^t) at t = l, back to 0.05 at 2l.
    assert close(p(0), 0.05)
    assert close(p(50), 0.25 * 0.94**50 * 0.5 + 0.05)
    assert close(p(100), 0.25 * 0.94**100 + 0.05)
    assert close(p(150), 0.25 * 0.94**150 * 0.5 + 0.05)
    assert close(p(200), 0.05)
    assert close(p(300), 0.25 * 0.94**300 + 0.05)
    assert close(p(199), 0.25 * 0.94**199 * 0.01 + 0.05)


def test_paper_fix_example():
    p = lrpilot.policy("FIX(k0=0.025)")
    assert all(p(t) == 0.025 for t in (0, 1, 70, 115, 199, HUGE))
    assert np.all(p.values(np.arange(200)) == 0.025)


def test_tri2_example_from_brief():
    p = lrpilot.policy("TRI2(k0=0.0001, k1=0.9, l=2000)")
    assert close(p(0), 0.0001)
    assert close(p(1000), 0.0001 + 0.8999 * 0.5)
    assert close(p(2000), 0.9)
    assert close(p(4000), 0.0001)
    assert close(p(6000), 0.0001 + 0.8999 / 2)
    assert close(p(10000), 0.0001 + 0.8999 / 4)


def test_cos_half_period_is_l():
    p = lrpilot.policy("COS(k0=0.1, k1=0.001, l=5000)")
    assert close(p(0), 0.1)
    assert close(p(2500), 0.0505)
    assert close(p(5000), 0.001)
    assert close(p(7500), 0.0505)
    assert close(p(10000), 0.1)


def test_sin_peaks_at_l():
    p = lrpilot.policy("SIN(k0=0.001, k1=0.1, l=25)")
    assert close(p(0), 0.001)
    assert close(p(25), 0.1)
    assert close(p(50), 0.001)
    assert close(p(75), 0.1)
    q = lrpilot.policy("SIN2(k0=0.001, k1=0.1, l=25)")
    assert close(q(25), 0.1)
    assert close(q(75), 0.001 + 0.099 / 2)
    assert close(q(125), 0.001 + 0.099 / 4)


def test_poly_reaches_k1_at_l_and_stays():
    p = lrpilot.policy("POLY(k0=0.1, k1=0.001, p=2, l=100)")
    assert close(p(0), 0.1)
    assert close(p(50), 0.099 * 0.25 + 0.001)
    assert close(p(99), 0.099 * 0.0001 + 0.001)
    for t in (100, 101, 1000, HUGE):
        assert close(p(t), 0.001), t


def test_decaying_k1_defaults_to_zero():
    for name, kw in [("STEP", {"k0": 0.1, "gamma": 0.5, "l": 10}),
                     ("NSTEP", {"k0": 0.1, "gamma": 0.5, "l": [3, 9]}),
                     ("EXP", {"k0": 0.1, "gamma": 0.9}),
                     ("INV", {"k0": 0.1, "gamma": 0.1, "p": 1.5}),
                     ("POLY", {"k0": 0.1, "p": 3, "l": 40})]:
        a = lrpilot.policy(text_of(name, kw))
        b = lrpilot.policy(text_of(name, {**kw, "k1": 0}))
        ts = np.arange(0, 100)
        np.testing.assert_allclose(a.values(ts), b.values(ts), rtol=1e-15, atol=0)
        assert close(a(0), 0.1)
        assert close(a(50), 0.1 * ref_g(name, kw, 50))


def test_gamma_one_is_allowed_and_constant():
    for text in ["EXP(k0=0.1, gamma=1)", "STEP(k0=0.1, gamma=1, l=3)", "TRIEXP(k0=0.01, k1=0.1, gamma=1, l=5)"]:
        p = lrpilot.policy(text)
        assert close(p(0), ref_lr(*_parse_simple(text), 0))
        assert close(p(HUGE), ref_lr(*_parse_simple(text), HUGE))


def _parse_simple(text: str):
    name, rest = text.split("(", 1)
    kw = {}
    for part in rest.rstrip(")").split(","):
        k, v = part.split("=")
        kw[k.strip()] = float(v) if "." in v else int(v)
    return name, kw


# --------------------------------------------------------------------------------------------
# #Param (Table I)
# --------------------------------------------------------------------------------------------

N_PARAM = [
    ("FIX(k0=0.01)", 1),
    ("STEP(k0=0.1, gamma=0.1, l=30)", 3),
    ("NSTEP(k0=0.05, gamma=0.1, l=[150, 180])", 4),
    ("NSTEP(k0=0.05, gamma=0.1, l=[150])", 3),
    ("NSTEP(k0=0.05, gamma=0.1, l=[10, 20, 30, 40, 50])", 7),
    ("EXP(k0=0.1, gamma=0.99)", 2),
    ("INV(k0=0.1, gamma=0.001, p=0.75)", 3),
    ("POLY(k0=0.1, p=2, l=100)", 4),
    ("TRI(k0=0.001, k1=0.1, l=25)", 3),
    ("TRI2(k0=0.0001, k1=0.9, l=2000)", 3),
    ("TRIEXP(k0=0.05, k1=0.3, gamma=0.94, l=100)", 4),
    ("SIN(k0=0.001, k1=0.1, l=25)", 3),
    ("SIN2(k0=0.001, k1=0.1, l=25)", 3),
    ("SINEXP(k0=0.05, k1=0.3, gamma=0.94, l=100)", 4),
    ("COS(k0=0.1, k1=0.001, l=5000)", 3),
]


@pytest.mark.parametrize("text,n", N_PARAM, ids=[t for t, _ in N_PARAM])
def test_n_param_is_table_one(text, n):
    assert lrpilot.policy(text).n_param == n


def test_all_13_functions_have_a_n_param_case():
    names = {t.split("(")[0] for t, _ in N_PARAM}
    assert names == {"FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP",
                     "SIN", "SIN2", "SINEXP", "COS"}


# --------------------------------------------------------------------------------------------
# Text and dict forms
# --------------------------------------------------------------------------------------------

def test_text_and_dict_round_trip(case):
    name, kw = case
    p = lrpilot.policy(text_of(name, kw))
    s = str(p)
    assert s.startswith(name + "(")
    q = lrpilot.policy(s)
    assert q == p
    assert str(q) == s
    d = p.to_dict()
    r = lrpilot.policy_from_dict(json.loads(json.dumps(d)))
    assert r == p
    ts = np.array(steps_for(name, kw), dtype=np.int64)
    assert np.array_equal(q.values(ts), p.values(ts))
    assert np.array_equal(r.values(ts), p.values(ts))


@pytest.mark.parametrize("text", ["TRI2(k0=0.0001, k1=0.9, l=2000)",
                                  "NSTEP(k0=0.1, gamma=0.1, l=[150, 180])"])
def test_brief_examples_are_canonical(text):
    assert str(lrpilot.policy(text)) == text


@pytest.mark.parametrize("variant,canonical", [
    ("  TRI2( k0 = 0.0001,k1=0.9 , l = 2000 ) ", "TRI2(k0=0.0001, k1=0.9, l=2000)"),
    ("TRI2(k0=1e-4, k1=0.90, l=2000)", "TRI2(k0=0.0001, k1=0.9, l=2000)"),
    ("TRI2(l=2000, k1=0.9, k0=0.0001)", "TRI2(k0=0.0001, k1=0.9, l=2000)"),
    ("NSTEP(k0=0.1,gamma=0.1,l=[ 150 ,180 ])", "NSTEP(k0=0.1, gamma=0.1, l=[150, 180])"),
])
def test_equivalent_texts_give_one_policy(variant, canonical):
    a, b = lrpilot.policy(variant), lrpilot.policy(canonical)
    assert a == b
    assert str(a) == str(b)


def test_different_policies_are_not_equal():
    base = lrpilot.policy("TRI(k0=0.001, k1=0.1, l=25)")
    for other in ["TRI(k0=0.001, k1=0.1, l=26)", "TRI(k0=0.002, k1=0.1, l=25)",
                  "TRI2(k0=0.001, k1=0.1, l=25)", "SIN(k0=0.001, k1=0.1, l=25)",
                  "TRI(k0=0.1, k1=0.001, l=25)"]:
        assert lrpilot.policy(other) != base, other
        assert str(lrpilot.policy(other)) != str(base), other


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------

def _cos_ref(k0, k1, l):
    return lambda t: ref_lr("COS", {"k0": k0, "k1": k1, "l": l}, t)


def _check(p, ref, ts):
    ts = list(ts)
    vec = p.values(np.array(ts, dtype=np.int64))
    for i, t in enumerate(ts):
        want = ref(t)
        assert close(p(t), want), (t, p(t), want)
        assert close(float(vec[i]), want), (t, float(vec[i]), want)


STEPS = list(range(0, 420)) + [999, 1000, 1001, HUGE]


def test_warmup_linear():
    p = lrpilot.policy("warmup(COS(k0=0.1, k1=0.001, l=100), steps=10, start=0.001)")
    inner = _cos_ref(0.1, 0.001, 100)

    def ref(t):
        return 0.001 + (inner(0) - 0.001) * t / 10 if t < 10 else inner(t - 10)

    _check(p, ref, STEPS)
    assert close(p(0), 0.001)
    assert close(p(5), 0.0505)
    assert close(p(10), 0.1)
    assert close(p(110), 0.001)


def test_warmup_linear_towards_inner_start_below_start():
    # the inner policy starts at min(k0, k1) = 0.0001 (TRI): warm-up goes *down* from 0.05
    p = lrpilot.policy("warmup(TRI(k0=0.0001, k1=0.9, l=50), steps=20, start=0.05)")
    tri = lambda t: ref_lr("TRI", {"k0": 0.0001, "k1": 0.9, "l": 50}, t)  # noqa: E731
    _check(p, lambda t: 0.05 + (0.0001 - 0.05) * t / 20 if t < 20 else tri(t - 20), STEPS)


def test_warmup_constant():
    p = lrpilot.policy("warmup(STEP(k0=0.1, gamma=0.5, l=30), steps=25, start=0.002, mode=constant)")
    step = lambda t: ref_lr("STEP", {"k0": 0.1, "gamma": 0.5, "l": 30}, t)  # noqa: E731
    _check(p, lambda t: 0.002 if t < 25 else step(t - 25), STEPS)
    assert p(24) == 0.002
    assert close(p(25), 0.1)
    assert close(p(55), 0.05)


def test_piecewise_restarts_each_piece():
    p = lrpilot.policy("piecewise(FIX(k0=0.1), STEP(k0=0.05, gamma=0.5, l=10)@100, "
                       "COS(k0=0.01, k1=0.001, l=50)@200)")
    step = lambda t: ref_lr("STEP", {"k0": 0.05, "gamma": 0.5, "l": 10}, t)  # noqa: E731
    cos = _cos_ref(0.01, 0.001, 50)

    def ref(t):
        if t < 100:
            return 0.1
        if t < 200:
            return step(t - 100)
        return cos(t - 200)

    _check(p, ref, STEPS)
    assert p(99) == 0.1
    assert close(p(100), 0.05)
    assert close(p(110), 0.025)
    assert close(p(200), 0.01)
    assert close(p(250), 0.001)


def test_clamp():
    p = lrpilot.policy("clamp(TRI(k0=0.0001, k1=0.9, l=100), min=0.01, max=0.5)")
    tri = lambda t: ref_lr("TRI", {"k0": 0.0001, "k1": 0.9, "l": 100}, t)  # noqa: E731
    _check(p, lambda t: min(max(tri(t), 0.01), 0.5), STEPS)
    assert p(0) == 0.01
    assert p(100) == 0.5
    assert close(p(50), 0.0001 + 0.8999 * 0.5)


NESTED = ("clamp(warmup(piecewise(TRI2(k0=0.001, k1=0.1, l=20), "
          "COS(k0=0.05, k1=0.0005, l=40)@80), steps=10, start=0.0001), min=0.0005, max=0.08)")


def test_nested_composition_values_and_round_trip():
    p = lrpilot.policy(NESTED)
    tri2 = lambda t: ref_lr("TRI2", {"k0": 0.001, "k1": 0.1, "l": 20}, t)  # noqa: E731
    cos = _cos_ref(0.05, 0.0005, 40)
    pw = lambda t: tri2(t) if t < 80 else cos(t - 80)  # noqa: E731
    wu = lambda t: 0.0001 + (pw(0) - 0.0001) * t / 10 if t < 10 else pw(t - 10)  # noqa: E731
    _check(p, lambda t: min(max(wu(t), 0.0005), 0.08), STEPS)

    q = lrpilot.policy(str(p))
    assert q == p and str(q) == str(p)
    r = lrpilot.policy_from_dict(json.loads(json.dumps(p.to_dict())))
    assert r == p
    ts = np.arange(0, 300)
    assert np.array_equal(q.values(ts), p.values(ts))
    assert np.array_equal(r.values(ts), p.values(ts))
    assert p != lrpilot.policy(NESTED.replace("max=0.08", "max=0.09"))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

def test_error_type_is_value_error():
    assert issubclass(lrpilot.LRPilotError, ValueError)


BAD = [
    # unknown function
    ("FOO(k0=0.1)", r"FOO"),
    ("TRIANGLE(k0=0.1, k1=0.2, l=10)", r"TRIANGLE"),
    # missing required parameter
    ("FIX()", r"k0"),
    ("STEP(k0=0.1, l=10)", r"gamma"),
    ("STEP(k0=0.1, gamma=0.5)", r"\bl\b"),
    ("TRI(k0=0.1, l=10)", r"k1"),
    ("TRI(k1=0.1, l=10)", r"k0"),
    ("COS(k0=0.1, k1=0.01)", r"\bl\b"),
    ("INV(k0=0.1, gamma=0.5)", r"\bp\b"),
    ("POLY(k0=0.1, l=100)", r"\bp\b"),
    ("TRIEXP(k0=0.1, k1=0.2, l=10)", r"gamma"),
    ("SINEXP(k0=0.1, k1=0.2, l=10)", r"gamma"),
    ("NSTEP(k0=0.1, gamma=0.1)", r"\bl\b"),
    # unknown parameter
    ("FIX(k0=0.1, foo=2)", r"foo"),
    ("TRI(k0=0.1, k1=0.2, l=10, gama=0.5)", r"gama"),
    ("EXP(k0=0.1, gamma=0.5, l=10)", r"\bl\b"),
    ("clamp(FIX(k0=0.1), lo=0.01)", r"\blo\b"),
    # non-finite
    ("FIX(k0=nan)", r"k0|nan"),
    ("FIX(k0=inf)", r"k0|inf"),
    ("EXP(k0=0.1, gamma=nan)", r"gamma|nan"),
    ("TRI(k0=0.1, k1=inf, l=10)", r"k1|inf"),
    ("STEP(k0=0.1, gamma=0.5, l=inf)", r"\bl\b|inf"),
    ("INV(k0=0.1, gamma=0.5, p=nan)", r"\bp\b|nan"),
    # k0 <= 0
    ("FIX(k0=0)", r"k0"),
    ("FIX(k0=-0.1)", r"k0|-0\.1"),
    ("COS(k0=0, k1=0.1, l=10)", r"k0"),
    ("EXP(k0=-1, gamma=0.5)", r"k0|-1"),
    # l <= 0
    ("STEP(k0=0.1, gamma=0.5, l=0)", r"\bl\b"),
    ("TRI(k0=0.1, k1=0.2, l=-5)", r"\bl\b|-5"),
    ("POLY(k0=0.1, p=1, l=0)", r"\bl\b"),
    ("COS(k0=0.1, k1=0.2, l=-1)", r"\bl\b|-1"),
    # gamma outside (0, 1]
    ("EXP(k0=0.1, gamma=0)", r"gamma"),
    ("EXP(k0=0.1, gamma=-0.5)", r"gamma|-0\.5"),
    ("EXP(k0=0.1, gamma=1.5)", r"gamma|1\.5"),
    ("STEP(k0=0.1, gamma=1.0000001, l=10)", r"gamma"),
    ("TRIEXP(k0=0.1, k1=0.2, gamma=2, l=10)", r"gamma"),
    ("NSTEP(k0=0.1, gamma=10, l=[5])", r"gamma"),
    ("INV(k0=0.1, gamma=0, p=1)", r"gamma"),
    # p <= 0
    ("INV(k0=0.1, gamma=0.5, p=0)", r"\bp\b"),
    ("POLY(k0=0.1, p=-1, l=100)", r"\bp\b|-1"),
    # NSTEP boundaries unsorted / duplicate
    ("NSTEP(k0=0.1, gamma=0.1, l=[180, 150])", r"\bl\b|180|150"),
    ("NSTEP(k0=0.1, gamma=0.1, l=[150, 150])", r"\bl\b|150"),
    ("NSTEP(k0=0.1, gamma=0.1, l=[10, 30, 20])", r"\bl\b|30|20"),
    # a word where a number belongs
    ("STEP(k0=0.1, gamma=0.5, l=abc)", r"\bl\b|abc"),
    ("FIX(k0=fast)", r"k0|fast"),
]


@pytest.mark.parametrize("text,pattern", BAD, ids=[t for t, _ in BAD])
def test_bad_policy_text_names_the_problem(text, pattern):
    with pytest.raises(lrpilot.LRPilotError, match=pattern):
        lrpilot.policy(text)


MALFORMED = [
    ("TRI(k0=0.1, k1=0.2, l=10", r"TRI"),
    ("TRI(k0=0.1, k1=0.2, l=10))", r"TRI|\)"),
    ("TRI k0=0.1", r"TRI|k0"),
    ("hello world", r"hello|world"),
    ("TRI(k0=0.1; k1=0.2, l=10)", r"TRI|;"),
    ("TRI(k0==0.1, k1=0.2, l=10)", r"TRI|="),
    ("FIX(k0=0.1) FIX(k0=0.2)", r"FIX"),
    ("(k0=0.1)", r"k0|\("),
    ("", r"."),
    ("   ", r"."),
]


@pytest.mark.parametrize("text,pattern", MALFORMED, ids=[repr(t) for t, _ in MALFORMED])
def test_malformed_text_raises(text, pattern):
    with pytest.raises(lrpilot.LRPilotError, match=pattern):
        lrpilot.policy(text)


@pytest.mark.parametrize("d,pattern", [
    ({"fn": "EXP", "k0": 0.1, "gamma": 1.5}, r"gamma|1\.5"),
    ({"fn": "NOPE", "k0": 0.1}, r"NOPE"),
    ({"fn": "STEP", "k0": 0.1, "gamma": 0.5}, r"\bl\b"),
    ({"fn": "NSTEP", "k0": 0.1, "gamma": 0.5, "l": [9, 3]}, r"\bl\b|9|3"),
    ({"fn": "FIX", "k0": float("nan")}, r"k0|nan"),
    ({"k0": 0.1}, r"fn"),
])
def test_bad_policy_dict_raises(d, pattern):
    with pytest.raises(lrpilot.LRPilotError, match=pattern):
        lrpilot.policy_from_dict(d)
