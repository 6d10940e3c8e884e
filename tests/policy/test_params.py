"""The declarative parameter tables: text round trips, defaults, errors, equality and the shared validators."""

import pytest

from lrpilot.controllers.autodrop import AutoDrop
from lrpilot.controllers.factor import FactorController
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import build, lookup
from lrpilot.policy.functions import MODERN, SPECS
from lrpilot.policy.params import Configured, Param, ParamTable, count, factor_list, lr_bounds, number
from lrpilot.policy.text import parse
from lrpilot.search.alr import Alr
from lrpilot.search.stpt import Stpt

CONFIGURED = [AutoDrop, FactorController, Stpt, Alr]
TABLES = [cls.TABLE for cls in CONFIGURED] + [spec.table for spec in SPECS + MODERN]


def make(text):
    return build(parse(text))


def param(table, name):
    return next(p for p in table.params if p.name == name)


# --- the text form ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelled, canonical", [
    ("autodrop(k0=0.1, rho=0.2, saturation=absolute, k_min=0.0001, theta0=0.01, theta_max=1, nd=20)",
     "autodrop(k0=0.1, rho=0.2, saturation=absolute)"),
    ("autodrop(k0=0.1, rho=0.2, k_min=0.0001, theta0=1, theta_max=2, nd=0.1, period=0.025, window=5)",
     "autodrop(k0=0.1, rho=0.2, saturation=relative, guard=1.1)"),
    ("factor(k0=0.005, probe=slides, factors=[2, 1, 0.5], batch=32, norm=minmax, score=exp, "
     "bounds=[0.000005, 0.05])", "factor(k0=0.005, probe=slides)"),
    ("factor(k0=0.005, factors=[2, 1, 0.5], batch=32, batches=8, every=0.025, norm=noise)",
     "factor(k0=0.005, probe=lookahead, guard=1.1)"),
    ("stpt(k0=0.1, set=mix, alpha=0.08, warmup=0.1, score=val, z=2)", "stpt(k0=0.1, choose=nearest)"),
    ("alr(k0=0.1, beam=2, factors=3)", "alr(k0=0.1)"),
    ("STEP(k0=0.1, k1=0, gamma=0.1, l=10)", "STEP(k0=0.1, gamma=0.1, l=10)"),
])
def test_defaults_spelled_out_read_back_to_the_text_without_them(spelled, canonical):
    full, short = make(spelled), make(canonical)
    assert str(full) == str(short) == canonical
    assert full == short and hash(full) == hash(short) and full is not short


@pytest.mark.parametrize("text", [
    "autodrop(k0=0.06, rho=0.5, saturation=absolute, k_min=0, theta0=0.05, theta_max=2, nd=0.1, period=1, "
    "window=20)",
    "factor(k0=0.005, probe=slides, factors=[3, 1, 0.25], batch=64, every=10, bounds=[0.0001, 0.5])",
    "factor(k0=0.005, probe=lookahead, batch=64, batches=4, every=10, guard=1.1)",
    "stpt(k0=0.1, set=[2, 1, 0.5], alpha=3, warmup=1, warmup_lr=0.001, bounds=[0.001, 0.5], score=train, "
    "choose=best)",
    "stpt(k0=0.1, lrs=[0.2, 0.1], alpha=200, warmup=4, warmup_lr=0.005, choose=nearest, z=3)",
    "alr(k0=0.1, beam=3, factors=[2, 1, 0.5], bounds=[0.0001, 1])",
    "NSTEP(k0=0.1, k1=0.001, gamma=0.1, l=[150, 180])",
])
def test_canonical_text_round_trips(text):
    assert str(make(text)) == text and make(str(make(text))) == make(text)


def test_derived_defaults_are_written_exactly_when_given():
    # STPT and ALR write warmup_lr and bounds whenever given, even equal to what they derive ...
    assert str(make("stpt(k0=0.1, warmup_lr=0.005, bounds=[0.0001, 1])")) == \
        "stpt(k0=0.1, warmup_lr=0.005, bounds=[0.0001, 1], choose=nearest)"
    assert make("stpt(k0=0.1)").warmup_lr == 0.005 and make("stpt(k0=0.1)").bounds == (0.0001, 1.0)
    assert str(make("alr(k0=0.1, bounds=[0.0001, 1])")) == "alr(k0=0.1, bounds=[0.0001, 1])"
    # ... the factor controller leaves out bounds equal to its default [k0 / 1000, 10 k0]
    assert str(make("factor(k0=0.1, bounds=[0.0001, 1])")) == "factor(k0=0.1, probe=lookahead, guard=1.1)"
    assert make("factor(k0=0.1)").rule.bounds == (0.0001, 1.0)


def test_factor_lists_are_written_as_each_text_form_always_did():
    assert str(make("factor(k0=0.1, factors=[4, 2, 1, 0.5, 0.125])")) == "factor(k0=0.1, probe=lookahead, factors=5, guard=1.1)"
    assert str(make("factor(k0=0.1, factors=Factor_7)")) == "factor(k0=0.1, probe=lookahead, factors=7, guard=1.1)"
    assert str(make("alr(k0=0.1, factors=[2, 1, 0.5])")) == "alr(k0=0.1, factors=[2, 1, 0.5])"  # a list stays one
    assert str(make("alr(k0=0.1, factors=5.0)")) == "alr(k0=0.1, factors=5)"
    assert make("alr(k0=0.1, factors=5)").factors == make("factor(k0=0.1, factors=5)").rule.factors


def test_python_constructors_and_text_give_equal_objects():
    assert AutoDrop(k0=0.1, rho=0.2, nd=0.1) == make("autodrop(k0=0.1, rho=0.2)")
    assert AutoDrop(k0=0.1, rho=0.2, saturation="absolute", nd=20.0) == make("autodrop(k0=0.1, rho=0.2, "
                                                                              "saturation=absolute)")
    assert FactorController(k0=0.005, factors=5) == make("factor(k0=0.005, factors=5)")
    assert Stpt(k0=0.1, score="train") == make("stpt(k0=0.1, score=train)")
    assert Alr(k0=0.1, beam=3) == make("alr(k0=0.1, beam=3)")
    assert AutoDrop(k0=0.1, rho=0.2, period=None) == AutoDrop(k0=0.1, rho=0.2)  # None: the default


def test_equality_and_hash_follow_the_text():
    a, b, c = make("autodrop(k0=0.1, rho=0.2)"), make("autodrop(rho=0.20, k0=1e-1)"), make("autodrop(k0=0.1, rho=0.3)")
    assert a == b and a != c and len({a, b, c}) == 2
    assert make("stpt(k0=0.1, score=train)") != make("stpt(k0=0.1)")
    assert make("stpt(k0=0.1)") != make("alr(k0=0.1)") and make("alr(k0=0.1)") != "alr(k0=0.1)"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.owner)
def test_n_param_and_the_listing_come_from_the_table(table):
    entry = lookup(table.owner)
    assert entry.params == table.names and entry.example == table.example
    assert make(table.example).n_param == table.n_param_of(make(table.example).params)
    if isinstance(table.n_param, int):
        assert entry.n_param == str(table.n_param)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.owner)
def test_every_default_is_its_own_checked_value(table):
    values = make(table.example).params
    for p in table.params:
        default = p.default_for(values)
        if not p.required and default is not None:
            assert p.check(table.owner, p.name, default, values) == default, p.name


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.owner)
def test_unknown_and_missing_parameters_are_named_with_the_allowed_ones(table):
    example = parse(table.example)
    allowed = ", ".join(sorted(table.names, key=lambda k: not param(table, k).required))  # required ones first
    with pytest.raises(LRPilotError) as e:
        make(table.example[:-1] + ", bogus=1)")
    assert "unknown parameter 'bogus'" in str(e.value) and allowed in str(e.value) and table.example in str(e.value)
    for p in table.params:
        if p.required:
            rest = ", ".join(f"{k}={v}" for k, v in example.kwargs.items() if k != p.name)
            with pytest.raises(LRPilotError) as e:
                make(f"{table.owner}({rest})")
            assert f"missing parameter '{p.name}'" in str(e.value) and allowed in str(e.value)


@pytest.mark.parametrize("cls", CONFIGURED, ids=lambda c: c.TABLE.owner)
def test_python_constructors_check_like_the_text(cls):
    settings = parse(cls.TABLE.example).kwargs
    with pytest.raises(LRPilotError, match="unknown parameter 'bogus'"):
        cls(**settings, bogus=1)
    with pytest.raises(LRPilotError, match="missing parameter 'k0'"):
        cls(**{k: v for k, v in settings.items() if k != "k0"})
    with pytest.raises(LRPilotError, match=r"\bk0=-1\b"):
        cls(**{**settings, "k0": -1})


def test_positional_arguments_are_refused():
    with pytest.raises(LRPilotError, match="positional"):
        make("autodrop(0.1, k0=0.1, rho=0.2)")
    with pytest.raises(LRPilotError, match="positional"):
        make("FIX(0.1, k0=0.1)")


# --- the shared validators ------------------------------------------------------------------------


def test_lr_bounds_and_factor_lists_are_one_validator_each():
    assert {param(cls.TABLE, "bounds").check for cls in (FactorController, Stpt, Alr)} == {lr_bounds}
    assert param(FactorController.TABLE, "factors").check is factor_list


@pytest.mark.parametrize("settings, message", [
    ("k0=0.5, bounds=[0.001, 0.1]", "k0=0.5 is outside bounds=[0.001, 0.1]"),
    ("k0=0.05, bounds=[0.1, 0.01]", "has min 0.1 >= max 0.01"),
    ("k0=0.05, bounds=[0.1]", "must be [min, max]"),
    ("k0=0.05, bounds=[0.01, -1]", "[min, max] with LRs > 0"),
])
def test_every_owner_of_lr_bounds_gives_the_same_errors(settings, message):
    for owner in ("factor", "stpt", "alr"):
        with pytest.raises(LRPilotError) as e:
            make(f"{owner}({settings})")
        assert str(e.value).startswith(f"{owner}: ") and message in str(e.value)


@pytest.mark.parametrize("factors, message", [
    ("4", "factors=4 is not a factor list name"),
    ("[]", "factors=[] must be a non-empty list of factors > 0"),
    ("[2, 0]", "a list of factors > 0"),
])
def test_factor_lists_give_the_same_errors_in_factor_and_alr(factors, message):
    for owner in ("factor", "alr"):
        with pytest.raises(LRPilotError) as e:
            make(f"{owner}(k0=0.1, factors={factors})")
        assert str(e.value).startswith(f"{owner}: ") and message in str(e.value)


# --- the table itself ---------------------------------------------------------------------------


class Toy(Configured):
    """A made-up object: a required number, a derived default, a value written by name, a conditional one."""

    TABLE = ParamTable("toy", "toy(a=1)", lambda v: 1 + (v["b"] != 2 * v["a"]), (
        Param("a", number(lambda x: x > 0, "a number > 0")),
        Param("b", count("things"), derive=lambda v: 2 * v["a"]),
        Param("mode", lambda owner, key, value, earlier: {"on": True, "off": False}.get(value, value), True,
              text=lambda on: "on" if on else "off"),
        Param("c", number(lambda x: x < 1, "below 1"), 0.5, shown=lambda v: v["mode"]),
    ))


def test_a_table_reads_defaults_derives_and_writes_its_text():
    toy = Toy(a=2)
    assert toy.params == {"a": 2.0, "b": 4, "mode": True, "c": 0.5} and toy.b == 4 and toy.n_param == 1
    assert str(toy) == "toy(a=2)" and str(Toy(a=2, b=4.0, c=0.5)) == "toy(a=2)"
    assert str(Toy(a=2, b=3)) == "toy(a=2, b=3)" and Toy(a=2, b=3).n_param == 2
    assert str(Toy(a=2, mode="off", c=0.25)) == "toy(a=2, mode=off)"  # c is written only in mode on
    assert str(Toy(a=2, c=0.25)) == "toy(a=2, c=0.25)"
    with pytest.raises(LRPilotError, match=r"toy: b=0 is invalid; b must be an integer >= 1 \(things\)"):
        Toy(a=2, b=0)
    with pytest.raises(LRPilotError, match=r"toy: missing parameter 'a'; allowed: a, b, mode, c \(e.g. toy\(a=1\)\)"):
        Toy(b=3)
