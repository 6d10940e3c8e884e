"""The policy contract and the registry that maps text names to builders.

A policy is a pure function ``step -> lr``: no torch, no state, no I/O. Every policy has one
canonical text (``str(p)``) that :func:`lrpilot.policy` parses back to an equal policy; that
text is also the key under which results are stored.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy.text import Call, call_to_dict, render
from lrpilot.vocabulary import clip


class Policy:
    """A learning-rate policy: ``p(t)`` for one step, ``p.values(steps)`` for a numpy array of steps."""

    n_param: int

    def __call__(self, t: int) -> float:
        raise NotImplementedError

    def values(self, steps) -> np.ndarray:
        """The LR at every step of ``steps`` (vectorised; equal to calling ``p(t)`` per step)."""
        raise NotImplementedError

    def to_call(self) -> Call:
        """The parsed form of the canonical text."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :func:`lrpilot.policy_from_dict` reads it back."""
        return call_to_dict(self.to_call())

    def __str__(self) -> str:
        return render(self.to_call())

    def __repr__(self) -> str:
        return f"lrpilot.policy({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple:
        """Pickled as its canonical text, which rebuilds an equal policy."""
        from lrpilot.policy import policy

        return policy, (str(self),)


@dataclass(frozen=True)
class Entry:
    """A registered name: how to build it from a :class:`Call`, and what ``lrpilot policies`` shows."""

    name: str
    kind: str  # "function", "composite", "controller" or "search"
    build: Callable[[Call], Any]
    params: tuple[str, ...]
    n_param: str
    doc: str
    example: str


KINDS = ("function", "composite", "controller", "search")  # the kinds of entry, in the order they are listed

# lower-case name -> its entry, or "module:attribute" of an entry of a layer above (controllers, searches),
# imported on its first lookup: the policy layer imports nothing above it (those modules import no torch either;
# their controllers and searches import it when they run)
REGISTRY: dict[str, Entry | str] = {
    "autodrop": "lrpilot.controllers.autodrop:ENTRY",
    "factor": "lrpilot.controllers.factor:ENTRY",
    "stpt": "lrpilot.search.stpt:ENTRY",
    "alr": "lrpilot.search.alr:ENTRY",
}


def register(entry: Entry) -> None:
    """Add a name to the registry (names are matched case-insensitively)."""
    key = entry.name.lower()
    if key in REGISTRY:
        raise RuntimeError(f"{entry.name} registered twice")
    REGISTRY[key] = entry


def lookup(name: str) -> Entry:
    """The registry entry for ``name`` (imported on first use), or an error listing the known names."""
    key = name.lower()
    entry = REGISTRY.get(key)
    if entry is None:
        place = {k: KINDS.index(e.kind) if isinstance(e, Entry) else len(KINDS) for k, e in REGISTRY.items()}
        known = ", ".join(e.name if isinstance(e, Entry) else k  # those not imported yet last
                          for k, e in sorted(REGISTRY.items(), key=lambda kv: place[kv[0]]))
        raise LRPilotError(f"unknown policy {name!r}; known: {known} (see `lrpilot policies`)")
    if isinstance(entry, str):
        module, attribute = entry.split(":")
        entry = REGISTRY[key] = getattr(importlib.import_module(module), attribute)
    return entry


def entries(kind: str | None = None) -> list[Entry]:
    """Every registered entry (the lazy ones imported), or those of one kind, listed kind by kind."""
    found = [lookup(key) for key in list(REGISTRY)]
    return sorted((e for e in found if kind is None or e.kind == kind), key=lambda e: KINDS.index(e.kind))


def build(c: Call) -> Any:
    """Build the object a call names: a policy, or a controller spec."""
    entry = lookup(c.name)
    if c.at is not None:
        raise LRPilotError(f"'@{c.at}' after {c.name}(...) is only allowed for the pieces of piecewise(...)")
    return entry.build(c)


def as_policy(value: Any, where: str) -> Policy:
    """``value`` as a pure policy (a Call is built); an error naming ``where`` otherwise."""
    if isinstance(value, Call) and lookup(value.name).kind == "controller":
        raise LRPilotError(f"{where}: {value.name}(...) is a controller that adapts the LR online, not a fixed "
                           "policy; use it with `lrpilot train --policy` or in your own loop")
    if isinstance(value, Call) and lookup(value.name).kind == "search":
        raise LRPilotError(f"{where}: {value.name}(...) is a search that branches training, not a fixed policy; "
                           "use it with `lrpilot train --policy`")
    obj = build(value) if isinstance(value, Call) else value
    if not isinstance(obj, Policy):
        raise LRPilotError(f"{where} needs a policy such as COS(k0=0.1, k1=0.001, l=5000), got {clip(value)}")
    return obj


def check_number(owner: str, key: str, value: Any, ok: Callable[[float], bool], allowed: str) -> float:
    """Validate one finite numeric parameter with the predicate ``ok``; ``allowed`` says the rule in words."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LRPilotError(f"{owner}: {key}={value!r} is not a number; {key} must be {allowed}")
    x = float(value)
    if not math.isfinite(x) or not ok(x):
        raise LRPilotError(f"{owner}: {key}={value!r} is invalid; {key} must be {allowed}")
    return x


def check_count(owner: str, key: str, value: Any, words: str) -> int:
    """An integer parameter >= 1; ``words`` says what it counts."""
    return int(check_number(owner, key, value, lambda x: x >= 1 and x.is_integer(), f"an integer >= 1 ({words})"))


def check_count_or_fraction(owner: str, key: str, value: Any, words: str, zero: bool = False) -> int | float:
    """An integer count (>= 1, or >= 0 with ``zero``) or a fraction in (0, 1) (of the run, of an epoch)."""
    low = 0 if zero else 1
    x = check_number(owner, key, value, lambda x: 0 < x < 1 or (x >= low and x.is_integer()),
                     f"an integer >= {low} ({words}) or a fraction in (0, 1)")
    return x if 0 < x < 1 else int(x)


def half_up(x: float) -> int:
    """``x`` rounded half up (a fraction of a run turned into a count)."""
    return math.floor(x + 0.5)


def check_keys(c: Call, required: tuple[str, ...], optional: tuple[str, ...], example: str, positional: int = 0) -> None:
    """Reject unknown or missing keyword parameters and extra positional ones."""
    allowed = required + optional
    for k in c.kwargs:
        if k not in allowed:
            raise LRPilotError(f"{c.name}: unknown parameter {k!r}; allowed: {', '.join(allowed)} (e.g. {example})")
    for k in required:
        if k not in c.kwargs:
            raise LRPilotError(f"{c.name}: missing parameter {k!r}; allowed: {', '.join(allowed)} (e.g. {example})")
    if len(c.args) != positional:
        raise LRPilotError(f"{c.name}: takes {positional} positional argument(s), got {len(c.args)} (e.g. {example})")
