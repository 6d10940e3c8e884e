"""The text grammar: parsing, canonical rendering, dict form, and its errors."""

import json

import pytest

import lrpilot
from lrpilot.policy.text import Call, call_from_dict, call_to_dict, fmt_number, parse, render


def test_parse_nested_call_with_lists_words_and_at():
    c = parse(" piecewise( FIX(k0=.1) , NSTEP(k0=1e-1, gamma=0.5, l=[10, 20])@100, warmup(FIX(k0=2), steps=3, mode=linear)@200 )")
    assert c.name == "piecewise" and len(c.args) == 3
    assert c.args[0] == Call("FIX", [], {"k0": 0.1})
    assert c.args[1].kwargs["l"] == [10, 20] and c.args[1].at == 100
    assert c.args[2].kwargs["mode"] == "linear" and c.args[2].args == [Call("FIX", [], {"k0": 2})]


@pytest.mark.parametrize("x, text", [(2000.0, "2000"), (0.0001, "0.0001"), (1e-05, "1e-05"), (0.1 + 0.2, "0.30000000000000004"), (3, "3")])
def test_numbers_render_shortest_round_trip(x, text):
    assert fmt_number(x) == text
    assert float(text) == float(x)


def test_render_is_canonical_and_dict_is_json():
    c = parse("TRI2(k0=1e-4,k1=0.9,l=2000.0)")
    assert render(c) == "TRI2(k0=0.0001, k1=0.9, l=2000)"
    d = call_to_dict(parse("piecewise(FIX(k0=0.1), COS(k0=0.1, k1=0.001, l=5000)@1000)"))
    assert call_from_dict(json.loads(json.dumps(d))) == parse("piecewise(FIX(k0=0.1), COS(k0=0.1, k1=0.001, l=5000)@1000)")


def test_equal_values_give_equal_policies_whatever_the_spelling():
    assert lrpilot.policy("tri2(l=2000.0, k1=0.90, k0=1e-4)") == lrpilot.policy("TRI2(k0=0.0001, k1=0.9, l=2000)")
    assert str(lrpilot.policy("STEP(k0=0.1, k1=0, gamma=0.1, l=10)")) == "STEP(k0=0.1, gamma=0.1, l=10)"
    assert lrpilot.policy("FIX(k0=0.1)") != lrpilot.policy("FIX(k0=0.2)")


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("FIX(k0=0.1", "expected ')'"),
    ("FIX(k0=0.1))", "after the end"),
    ("FIX(k0=0.1, k0=0.2)", "given twice"),
    ("FIX(k0=$)", "cannot read"),
    ("FIX(k0=0.1)@", "after '@'"),
    ("warmup(steps=10, FIX(k0=0.1))", "positional argument after"),
    ("piecewise(FIX(k0=0.1), FIX(k0=0.01))", "needs '@start'"),
    ("piecewise(FIX(k0=0.1)@5, FIX(k0=0.01)@10)", "starts at step 0"),
    ("piecewise(FIX(k0=0.1), FIX(k0=0.01)@10, FIX(k0=0.001)@10)", "must increase"),
    ("warmup(FIX(k0=0.1), steps=10, mode=cosine)", "mode='cosine'"),
    ("warmup(FIX(k0=0.1), steps=10, mode=constant)", "needs start"),
    ("warmup(FIX(k0=0.1), steps=2.5)", "steps=2.5"),
    ("warmup(3, steps=10)", "needs a policy"),
    ("clamp(FIX(k0=0.1))", "needs min"),
    ("clamp(FIX(k0=0.1), min=0.2, max=0.1)", "must be below"),
    ("STEP(k0=0.1, k1=0.2, gamma=0.5, l=3)", "must be below k0"),
    ("FIX(k0=abc)", "not a number"),
])
def test_errors_name_the_problem(text, fragment):
    with pytest.raises(lrpilot.LRPilotError, match=None) as info:
        lrpilot.policy(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_policy_accepts_objects_and_dicts_and_rejects_other_types():
    p = lrpilot.policy("COS(k0=0.1, k1=0.001, l=50)")
    assert lrpilot.policy(p) is p
    assert lrpilot.policy(p.to_dict()) == p
    with pytest.raises(lrpilot.LRPilotError, match="not int"):
        lrpilot.policy(3)
    with pytest.raises(lrpilot.LRPilotError, match="'fn'"):
        lrpilot.policy({"k0": 0.1})
