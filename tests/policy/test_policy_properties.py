"""Properties of the 13 LRBench functions (Table I, formula (2)) and their compositions."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrpilot

SETTINGS = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

DECAYING = ["STEP", "NSTEP", "EXP", "INV", "POLY"]
CYCLIC = ["TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS"]
ALL = ["FIX"] + DECAYING + CYCLIC

k_st = st.floats(min_value=1e-6, max_value=1.0)
gamma_st = st.one_of(st.just(1.0), st.floats(min_value=0.01, max_value=1.0))
p_st = st.floats(min_value=0.1, max_value=5.0)
l_st = st.integers(min_value=1, max_value=10**6)
nstep_l_st = st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=5,
                      unique=True).map(sorted)


from .test_paper_closed_forms import text_of  # noqa: E402


@st.composite
def simple(draw, names=tuple(ALL)):
    """(name, kwargs) of one Table I function with valid parameters."""
    name = draw(st.sampled_from(list(names)))
    k0 = draw(k_st)
    kw: dict = {"k0": k0}
    if name == "FIX":
        return name, kw
    if name in DECAYING:
        if draw(st.booleans()):  # k1 below k0: the decay goes from k0 down to k1
            kw["k1"] = k0 * draw(st.floats(min_value=0.0, max_value=0.999))
        kw["gamma"] = draw(gamma_st)
        if name == "STEP":
            kw["l"] = draw(l_st)
        elif name == "NSTEP":
            kw["l"] = draw(nstep_l_st)
        elif name == "INV":
            kw["p"] = draw(p_st)
        elif name == "POLY":
            del kw["gamma"]
            kw["p"] = draw(p_st)
            kw["l"] = draw(l_st)
        return name, kw
    kw["k1"] = draw(k_st)
    if name in ("TRIEXP", "SINEXP"):
        kw["gamma"] = draw(gamma_st)
    kw["l"] = draw(l_st)
    return name, kw


def bounds(name: str, kw: dict) -> tuple[float, float]:
    k0 = kw["k0"]
    k1 = k0 if name == "FIX" else kw.get("k1", 0.0)
    return min(k0, k1), max(k0, k1)


def within(v: float, lo: float, hi: float) -> bool:
    return lo - 1e-12 * hi <= v <= hi * (1 + 1e-12)


steps_st = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=20)


# Compositions: text plus the range their values must stay in
@st.composite
def composed(draw):
    """(text, lo, hi): a policy text, possibly nested warmup / piecewise / clamp."""
    depth = draw(st.integers(min_value=0, max_value=3))
    name, kw = draw(simple())
    text, (lo, hi) = text_of(name, kw), bounds(name, kw)
    for _ in range(depth):
        kind = draw(st.sampled_from(["warmup", "warmup_constant", "piecewise", "clamp"]))
        if kind.startswith("warmup"):
            steps = draw(st.integers(min_value=1, max_value=1000))
            start = draw(k_st)
            mode = ", mode=constant" if kind == "warmup_constant" else ""
            text = f"warmup({text}, steps={steps}, start={start!r}{mode})"
            lo, hi = min(lo, start), max(hi, start)
        elif kind == "piecewise":
            n2, kw2 = draw(simple())
            s1 = draw(st.integers(min_value=1, max_value=10**6))
            pieces = [text, f"{text_of(n2, kw2)}@{s1}"]
            lo2, hi2 = bounds(n2, kw2)
            lo, hi = min(lo, lo2), max(hi, hi2)
            if draw(st.booleans()):
                n3, kw3 = draw(simple())
                s2 = s1 + draw(st.integers(min_value=1, max_value=10**6))
                pieces.append(f"{text_of(n3, kw3)}@{s2}")
                lo3, hi3 = bounds(n3, kw3)
                lo, hi = min(lo, lo3), max(hi, hi3)
            text = "piecewise(" + ", ".join(pieces) + ")"
        else:
            a, b = sorted([draw(k_st), draw(k_st)])
            if a == b:
                b = a * 2
            text = f"clamp({text}, min={a!r}, max={b!r})"
            lo, hi = a, b
    return text, lo, hi


# --------------------------------------------------------------------------------------------
# Range: g(t) in [0, 1] keeps every function inside [min(k0, k1), max(k0, k1)]
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(simple(), steps_st)
def test_every_function_stays_in_range(pk, ts):
    name, kw = pk
    p = lrpilot.policy(text_of(name, kw))
    lo, hi = bounds(name, kw)
    ts = ts + [0, 1, 10**12]
    for t in ts:
        v = p(t)
        assert math.isfinite(v)
        assert within(v, lo, hi), (t, v, lo, hi)
    vals = p.values(np.array(ts, dtype=np.int64))
    assert np.all(np.isfinite(vals))
    assert all(within(float(v), lo, hi) for v in vals), (vals, lo, hi)


@SETTINGS
@given(simple(), st.integers(min_value=0, max_value=10**12 - 1000))
def test_range_on_a_dense_window(pk, t0):
    name, kw = pk
    p = lrpilot.policy(text_of(name, kw))
    lo, hi = bounds(name, kw)
    vals = p.values(np.arange(t0, t0 + 1000, dtype=np.int64))
    assert all(within(float(v), lo, hi) for v in vals)


@SETTINGS
@given(composed(), steps_st)
def test_compositions_stay_in_range(c, ts):
    text, lo, hi = c
    p = lrpilot.policy(text)
    for t in ts + [0, 1]:
        assert within(p(t), lo, hi), (text, t, p(t), lo, hi)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------

def _round_trips(p, ts):
    q = lrpilot.policy(str(p))
    assert q == p
    assert str(q) == str(p)
    d = p.to_dict()
    d2 = json.loads(json.dumps(d))
    assert d2 == d, "to_dict() is not plain JSON data"
    r = lrpilot.policy_from_dict(d2)
    assert r == p
    assert str(r) == str(p)
    arr = np.array(ts, dtype=np.int64)
    want = p.values(arr)
    assert np.array_equal(q.values(arr), want)
    assert np.array_equal(r.values(arr), want)
    assert [q(t) for t in ts] == [p(t) for t in ts]


@SETTINGS
@given(simple(), steps_st)
def test_round_trip_simple(pk, ts):
    _round_trips(lrpilot.policy(text_of(*pk)), ts)


@SETTINGS
@given(composed(), steps_st)
def test_round_trip_composed(c, ts):
    _round_trips(lrpilot.policy(c[0]), ts)


# --------------------------------------------------------------------------------------------
# Periodicity of the cyclic functions (period 2l)
# --------------------------------------------------------------------------------------------

# Rounding noise allowed on top of the 1e-12 relative tolerance: the LRs here are <= 1, so an
# absolute 1e-15 is a few ulps of the amplitude |k0 - k1| (e.g. sin(pi) = 1.2e-16 in floats).
NOISE = 1e-15


def _periodic_case(name, k0, k1, l):
    return lrpilot.policy(text_of(name, {"k0": k0, "k1": k1, "l": l}))


@SETTINGS
@given(st.sampled_from(["TRI", "SIN", "COS"]), k_st, k_st, st.integers(1, 10**4),
       st.integers(0, 10**6))
def test_tri_sin_cos_have_period_2l(name, k0, k1, l, t):
    p = _periodic_case(name, k0, k1, l)
    for k in (1, 2, 7):
        assert math.isclose(p(t), p(t + 2 * l * k), rel_tol=1e-12, abs_tol=NOISE), (t, k)
    v = p.values(np.array([t, t + 2 * l, t + 20 * l], dtype=np.int64))
    assert math.isclose(float(v[0]), float(v[1]), rel_tol=1e-12, abs_tol=NOISE)
    assert math.isclose(float(v[0]), float(v[2]), rel_tol=1e-12, abs_tol=NOISE)


@SETTINGS
@given(st.sampled_from(["TRI", "SIN", "COS"]), k_st, k_st, st.integers(1, 10**4),
       st.integers(0, 10**12))
def test_tri_sin_cos_periodic_at_huge_steps(name, k0, k1, l, t):
    p = _periodic_case(name, k0, k1, l)
    r = t % (2 * l)
    assert math.isclose(p(t), p(r), rel_tol=1e-12, abs_tol=NOISE), (t, r, p(t), p(r))
    v = p.values(np.array([t, r], dtype=np.int64))
    assert math.isclose(float(v[0]), float(v[1]), rel_tol=1e-12, abs_tol=NOISE), (t, r, v)


@SETTINGS
@given(st.sampled_from(["TRI", "SIN", "COS"]), k_st, k_st, st.integers(1, 10**4))
def test_cyclic_shape_within_a_period(name, k0, k1, l):
    # TRI, SIN: minimum at 0 and 2l, maximum at l; COS: maximum at 0 and 2l, minimum at l.
    p = _periodic_case(name, k0, k1, l)
    lo, hi = min(k0, k1), max(k0, k1)
    at0, atl = (lo, hi) if name != "COS" else (hi, lo)
    assert math.isclose(p(0), at0, rel_tol=1e-12, abs_tol=NOISE)
    assert math.isclose(p(2 * l), at0, rel_tol=1e-12, abs_tol=NOISE)
    assert math.isclose(p(l), atl, rel_tol=1e-12, abs_tol=NOISE)
    # symmetric about l
    for d in (1, l // 3, l - 1):
        if 0 < d < l:
            assert math.isclose(p(l - d), p(l + d), rel_tol=1e-12, abs_tol=NOISE)


@SETTINGS
@given(st.sampled_from(["TRI2", "SIN2"]), k_st, k_st, st.integers(1, 10**4),
       st.integers(0, 8), st.integers(0, 10**4))
def test_tri2_sin2_halve_each_period(name, k0, k1, l, cycle, offset):
    p = _periodic_case(name, k0, k1, l)
    base = {"TRI2": "TRI", "SIN2": "SIN"}[name]
    q = _periodic_case(base, k0, k1, l)
    lo, hi = min(k0, k1), max(k0, k1)
    t = cycle * 2 * l + offset % (2 * l)
    a, b = p(t) - lo, p(t + 2 * l) - lo
    assert math.isclose(b, a / 2, rel_tol=1e-9, abs_tol=1e-13 * hi), (t, a, b)
    # the shape is the un-halved function's, scaled by 1/2^floor(t/2l)
    assert math.isclose(a, (q(t) - lo) / 2**cycle, rel_tol=1e-9, abs_tol=1e-13 * hi), (t, a)
    # first period is exactly the base function
    s = offset % (2 * l)
    assert math.isclose(p(s), q(s), rel_tol=1e-12)


@SETTINGS
@given(st.sampled_from(["TRIEXP", "SINEXP"]), k_st, k_st, st.floats(0.9, 1.0),
       st.integers(1, 200), st.integers(0, 400))
def test_exp_variants_damp_by_gamma_per_period(name, k0, k1, gamma, l, t):
    p = lrpilot.policy(text_of(name, {"k0": k0, "k1": k1, "gamma": gamma, "l": l}))
    lo, hi = min(k0, k1), max(k0, k1)
    a, b = p(t) - lo, p(t + 2 * l) - lo
    assert math.isclose(b, a * gamma ** (2 * l), rel_tol=1e-9, abs_tol=1e-13 * hi)


# --------------------------------------------------------------------------------------------
# values() is the scalar path, vectorised
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(simple(), steps_st)
def test_values_equal_scalar_simple(pk, ts):
    p = lrpilot.policy(text_of(*pk))
    ts = ts + list(range(0, 50))
    vec = p.values(np.array(ts, dtype=np.int64))
    assert vec.shape == (len(ts),)
    for t, v in zip(ts, vec):
        assert math.isclose(float(v), p(t), rel_tol=1e-12, abs_tol=1e-15), (t, float(v), p(t))


@SETTINGS
@given(composed(), steps_st)
def test_values_equal_scalar_composed(c, ts):
    p = lrpilot.policy(c[0])
    ts = ts + list(range(0, 50))
    vec = p.values(np.array(ts, dtype=np.int64))
    assert vec.shape == (len(ts),)
    for t, v in zip(ts, vec):
        assert math.isclose(float(v), p(t), rel_tol=1e-12, abs_tol=1e-15), (c[0], t, float(v), p(t))


# --------------------------------------------------------------------------------------------
# Decaying functions never go up
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(simple(tuple(DECAYING)), steps_st, st.integers(0, 10**6))
def test_decaying_functions_are_non_increasing(pk, ts, t0):
    p = lrpilot.policy(text_of(*pk))
    ts = sorted(set(ts) | set(range(t0, t0 + 300)) | set(range(0, 300)))
    vals = p.values(np.array(ts, dtype=np.int64))
    for i in range(1, len(ts)):
        assert vals[i] <= vals[i - 1] * (1 + 1e-14), (pk, ts[i - 1], ts[i], vals[i - 1], vals[i])
    scal = [p(t) for t in ts[:60]]
    assert all(b <= a * (1 + 1e-14) for a, b in zip(scal, scal[1:]))
    # and they start at k0 (g(0) = 1)
    assert math.isclose(p(0), pk[1]["k0"], rel_tol=1e-12)
