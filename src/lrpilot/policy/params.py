"""Declarative parameters: one :class:`ParamTable` per LR function, controller (AutoDrop, factor) and
search (STPT, ALR) gives its parsing, defaults, validation, canonical text, equality and #Param.

A :class:`Param` checks the value given, or its default when absent, into the value stored;
its check sees the parameters before it in the table, so a parameter may be checked against
them (``k_min`` below ``k0``). The canonical text writes the stored values in table order and
leaves out those equal to their defaults; a default of ``None`` means "derived by the object",
so such a parameter is written exactly when it was given. The shared validators of LR bounds
and factor lists are at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from lrpilot.errors import LRPilotError
from lrpilot.policy.base import check_count, check_count_or_fraction, check_keys, check_number
from lrpilot.policy.text import Call, fmt_number, render

#: ``check(owner, key, value, earlier)``: the stored value, ``earlier`` holding the parameters checked before it.
Check = Callable[[str, str, Any, dict[str, Any]], Any]

#: The default of a parameter that must be given.
REQUIRED: Any = object()


@dataclass(frozen=True)
class Param:
    """One keyword parameter: its check, its default, and how the canonical text writes it.

    ``default`` is in stored form (its check leaves it unchanged); ``derive`` computes it from the
    earlier parameters instead; ``text`` turns the stored value into its text value (default: as
    stored); ``shown`` says, from all the values, whether the text writes it at all; ``always``: written even at
    its default (a reading whose default changed, so that its text never names what an older text stored).
    """

    name: str
    check: Check
    default: Any = REQUIRED
    derive: Callable[[dict[str, Any]], Any] | None = None
    text: Callable[[Any], Any] | None = None
    shown: Callable[[dict[str, Any]], bool] | None = None
    always: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.derive is None

    def default_for(self, earlier: dict[str, Any]) -> Any:
        """The default given the parameters before this one."""
        return self.derive(earlier) if self.derive is not None else self.default


@dataclass(frozen=True)
class ParamTable:
    """The parameters of ``owner(key=value, ...)`` in canonical order, an example text and LRBench's #Param
    (a number, or a function of the values)."""

    owner: str
    example: str
    n_param: int | Callable[[dict[str, Any]], int]
    params: tuple[Param, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def check_call(self, c: Call) -> None:
        """Reject a call's unknown or missing keyword parameters and any positional one, naming the allowed ones."""
        check_keys(c, tuple(p.name for p in self.params if p.required),
                   tuple(p.name for p in self.params if not p.required), self.example)

    def read(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The stored values of ``settings``: each checked in table order; absent ones, or None, at their defaults."""
        given = {k: v for k, v in settings.items() if v is not None}
        self.check_call(Call(self.owner, kwargs=given))
        values: dict[str, Any] = {}
        for p in self.params:
            value = given[p.name] if p.name in given else p.default_for(values)
            values[p.name] = None if value is None else p.check(self.owner, p.name, value, values)
        return values

    def call(self, values: dict[str, Any]) -> Call:
        """The canonical text's call: the values in table order, those equal to their defaults left out (unless
        ``always``)."""
        kwargs = {}
        for p in self.params:
            value = values[p.name]
            if value is None or (p.shown is not None and not p.shown(values)):
                continue
            if p.always or value != p.default_for(values):
                kwargs[p.name] = p.text(value) if p.text is not None else value
        return Call(self.owner, kwargs=kwargs)

    def n_param_of(self, values: dict[str, Any]) -> int:
        """LRBench's #Param of a configuration with these values."""
        return self.n_param(values) if callable(self.n_param) else self.n_param


class Configured:
    """An object configured by its class's :data:`TABLE`: the settings are checked once, kept in
    ``params`` (and as attributes), and give the canonical text, equality, hash and #Param."""

    TABLE: ClassVar[ParamTable]

    def __init__(self, **settings: Any):
        self.params = self.TABLE.read(settings)
        vars(self).update(self.params)

    @classmethod
    def from_call(cls, c: Call) -> Configured:
        """The object a parsed text names (keyword parameters only)."""
        cls.TABLE.check_call(c)
        return cls(**c.kwargs)

    def to_call(self) -> Call:
        """The parsed form of the canonical text."""
        return self.TABLE.call(self.params)

    def __str__(self) -> str:
        return render(self.to_call())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Configured) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def n_param(self) -> int:
        """LRBench's #Param of this configuration."""
        return self.TABLE.n_param_of(self.params)


# --- checks ---------------------------------------------------------------------------------


def number(ok: Callable[[float], bool], words: str) -> Check:
    """A finite number for which ``ok`` holds; ``words`` says the rule."""
    return lambda owner, key, value, earlier: check_number(owner, key, value, ok, words)


def count(words: str) -> Check:
    """An integer >= 1; ``words`` says what it counts."""
    return lambda owner, key, value, earlier: check_count(owner, key, value, words)


def count_or_fraction(words: str, zero: bool = False) -> Check:
    """An integer count (>= 1, or >= 0 with ``zero``) or a fraction in (0, 1)."""
    return lambda owner, key, value, earlier: check_count_or_fraction(owner, key, value, words, zero)


def choice(options: dict[str, str]) -> Check:
    """One of the names of ``options`` (name -> what it means, said when another is given)."""

    def check(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> str:
        if value not in options:
            raise LRPilotError(f"{owner}: {key}={value!r} is unknown; known: "
                               + "; ".join(f"{name} ({words})" for name, words in options.items()))
        return value

    return check


def positive_numbers(owner: str, key: str, value: Any, words: str) -> tuple[float, ...]:
    """A non-empty list of finite numbers > 0; ``words`` says what they are."""
    if not isinstance(value, (list, tuple)) or not value:
        raise LRPilotError(f"{owner}: {key}={value!r} must be a non-empty list of {words} > 0")
    return tuple(check_number(owner, key, v, lambda x: x > 0, f"a list of {words} > 0") for v in value)


def lr_bounds(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> tuple[float, float]:
    """``[min, max]`` of the LR: two LRs > 0, min below max, with the earlier ``k0`` between them."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise LRPilotError(f"{owner}: {key}={value!r} must be [min, max], two LRs > 0 such as [0.0001, 0.5]")
    lo, hi = (check_number(owner, key, v, lambda x: x > 0, "[min, max] with LRs > 0") for v in value)
    if lo >= hi:
        raise LRPilotError(f"{owner}: {key}={list(value)} has min {lo} >= max {hi}; give [min, max] with min < max")
    k0 = earlier["k0"]
    if not lo <= k0 <= hi:
        raise LRPilotError(f"{owner}: k0={k0} is outside {key}=[{lo}, {hi}]; widen the bounds or change k0")
    return lo, hi


#: Kim and Yu's factor lists; ``factors=5`` (or ``Factor_5``) names the second.
FACTOR_LISTS: dict[str, tuple[float, ...]] = {
    "Factor_3": (2.0, 1.0, 0.5),
    "Factor_5": (4.0, 2.0, 1.0, 0.5, 0.125),
    "Factor_7": (8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125),
}


def factor_list(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> tuple[float, ...]:
    """A list of factors > 0, or one of :data:`FACTOR_LISTS` by its number (3, 5, 7) or name (``Factor_5``)."""
    if isinstance(value, (list, tuple)):
        return positive_numbers(owner, key, value, "factors")
    number_given = isinstance(value, (int, float)) and not isinstance(value, bool)
    name = f"Factor_{fmt_number(value)}" if number_given else str(value)
    if name not in FACTOR_LISTS:
        raise LRPilotError(f"{owner}: {key}={value!r} is not a factor list name; known: 3, 5, 7 "
                           f"({', '.join(FACTOR_LISTS)}), or give a list of factors > 0 such as [2, 1, 0.5]")
    return FACTOR_LISTS[name]


def factor_list_number(factors: tuple[float, ...]) -> int | None:
    """3, 5 or 7 when ``factors`` is one of :data:`FACTOR_LISTS`, else None."""
    return next((int(name.removeprefix("Factor_")) for name, f in FACTOR_LISTS.items() if f == factors), None)
