"""The 13 LR functions of LRBench (Wu et al., "Demystifying Learning Rate Policies for High
Accuracy Training of Deep Neural Networks", Table I and formula (2))::

    lr(t) = |k0 - k1| * g(t) + min(k0, k1)

with g(t) in [0, 1]. Decaying functions (STEP, NSTEP, EXP, INV, POLY) decay from k0 towards
k1 (default 0, the paper's k1 = 0; a positive k1 is the lower bound the paper recommends for
STEP). Cyclic functions take ``l`` as the *half* cycle, as the paper's text defines it, so they
repeat with period 2l. Readings lrpilot takes where the paper is ambiguous:

- COS is g(t) = 0.5 * (1 + cos(pi * t / l)): Table I writes 2t/l, which would make l the full
  period and contradict the text's definition of l.
- Formula (2) fixes the starting bound: TRI and SIN families start at min(k0, k1) (g(0) = 0),
  COS starts at max(k0, k1) (g(0) = 1), decaying functions start at k0.
- TRI(t) = (2/pi)|arcsin(sin(pi t / 2l))| is computed as the equal triangle wave
  1 - |(t mod 2l)/l - 1|, and SIN/COS reduce t modulo 2l first: the same values, exactly
  periodic and accurate at huge step counts.
- POLY is (1 - t/l)^p for t < l and 0 after, so it stays at k1 once it gets there.

Beside the 13, :data:`MODERN` holds the schedules practitioners compare against since LRBench, in the
same formula (2) with k1 the final LR (default 0):

- WSD, warmup-stable-decay (Hu et al., "MiniCPM", 2024; the cooldown shapes of Hägele et al., "Scaling Laws
  and Compute-Optimal Training Beyond Fixed Training Durations", NeurIPS 2024): g = min(t/w, 1) f(s), linear
  warmup over ``w`` iterations, then 1 until the cooldown starts at c = l (1 - decay), then
  f(s), s = (t - c)/(l - c) clipped to [0, 1], with f = 1 - s (linear), 1 - sqrt(s) (sqrt, Hägele's 1-sqrt,
  the default) or (1 + cos(pi s))/2 (cos); decay=0.2 is Hägele's 20 % cooldown.
- ONECYCLE (Smith and Topin, "Super-Convergence", 2019), as torch's ``OneCycleLR`` (two phases): from k0/div up
  to k0 at step u = pct l - 1, then down to k0/(div final_div) at step l - 1, each phase annealed by cos
  (the default) or linear; held there after l - 1. Only the LR: torch's momentum cycling is not a policy.
- Linear decay to zero (Bergsma et al., "Straight to Zero: Why Linearly Decaying the Learning Rate to Zero
  Works Best for LLMs", ICLR 2025) is POLY with p=1 and k1=0: ``POLY(k0=0.1, p=1, l=10000)``.

Each g is written once against a small math namespace (``xp``) so that ``p(t)`` runs on plain
floats and ``p.values(steps)`` on numpy arrays with the same code; powers go through one numpy
loop in both (:func:`_power`), so that the two agree exactly.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, Policy, check_number, register
from lrpilot.policy.params import Check, Param, ParamTable, number
from lrpilot.policy.text import Call



def _power(a, b) -> np.ndarray:
    """``a ** b`` elementwise on contiguous float64 arrays of one shape: numpy's one pow loop whether the
    operands are scalars or arrays (Python's float power and numpy's special cases, such as x ** 2 as
    x * x, round differently in the last bit)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.power(np.ascontiguousarray(a), np.ascontiguousarray(b))


_SCALAR = SimpleNamespace(floor=math.floor, sin=math.sin, cos=math.cos, sqrt=math.sqrt, maximum=max, minimum=min,
                          where=lambda c, a, b: a if c else b, count_le=bisect.bisect_right,
                          power=lambda a, b: float(_power([a], [b])[0]))
_VECTOR = SimpleNamespace(floor=np.floor, sin=np.sin, cos=np.cos, sqrt=np.sqrt, maximum=np.maximum,
                          minimum=np.minimum, where=np.where, power=_power,
                          count_le=lambda bounds, t: np.searchsorted(bounds, t, side="right"))

_K1 = number(lambda x: x >= 0, "a finite number >= 0 (the other LR bound)")
# The checks of each parameter; the canonical text lists parameters in this order.
_CHECKS: dict[str, Check] = {
    "k0": number(lambda x: x > 0, "a finite number > 0 (the LR the policy starts from)"),
    "k1": _K1,
    "gamma": number(lambda x: 0 < x <= 1, "in (0, 1] so that g(t) stays in [0, 1] (formula (2))"),
    "p": number(lambda x: x > 0, "a finite number > 0 (the power)"),
    "l": number(lambda x: x > 0, "a finite number of iterations > 0"),
}


@dataclass(frozen=True)
class Spec:
    """One row of Table I: the name, g, which parameters g takes, how k1 is treated, #Param."""

    name: str
    g: Callable[..., Any]
    g_params: tuple[str, ...]
    k1: str  # "none" (FIX), "optional" (decaying, default 0) or "required" (cyclic)
    n_param: int | None  # None: NSTEP's n + 2
    doc: str
    example: str
    gamma_rule: tuple[Callable[[float], bool], str] | None = None
    extra: tuple[Param, ...] = ()  # parameters of its own, with their defaults, after the shared ones


    @functools.cached_property
    def table(self) -> ParamTable:
        """k0, then k1 (absent, optional with default 0, or required), then g's parameters, in canonical order."""
        checks = dict(_CHECKS, l=_boundaries) if self.name == "NSTEP" else dict(_CHECKS)
        if self.gamma_rule:
            checks["gamma"] = number(*self.gamma_rule)
        params = [Param(k, checks[k]) for k in checks if k == "k0" or k in self.g_params] + list(self.extra)
        if self.k1 != "none":
            params.insert(1, Param("k1", _below_k0, 0.0) if self.k1 == "optional" else Param("k1", _K1))
        n_param = self.n_param if self.n_param is not None else lambda v: len(v["l"]) + 2
        return ParamTable(self.name, self.example, n_param, tuple(params))


class LRFunction(Policy):
    """One of the LR functions (LRBench's 13 or :data:`MODERN`) with its parameters bound."""

    def __init__(self, spec: Spec, params: dict[str, Any]):
        self.spec = spec
        self.params = params
        k0 = params["k0"]
        k1 = params.get("k1", k0 if spec.k1 == "none" else 0.0)
        self._scale = abs(k0 - k1)
        self._low = min(k0, k1)
        self._scalar_args = {k: params[k] for k in spec.g_params}
        self._vector_args = {k: np.asarray(v, dtype=np.float64) if isinstance(v, list) else v
                             for k, v in self._scalar_args.items()}

    @property
    def n_param(self) -> int:
        """#Param of Table I (NSTEP: its number of boundaries + 2)."""
        return self.spec.table.n_param_of(self.params)

    def __call__(self, t: int) -> float:
        return self._scale * self.spec.g(t, _SCALAR, **self._scalar_args) + self._low

    def values(self, steps) -> np.ndarray:
        t = np.asarray(steps, dtype=np.float64)
        return self._scale * np.broadcast_to(self.spec.g(t, _VECTOR, **self._vector_args), t.shape) + self._low

    def to_call(self) -> Call:
        return self.spec.table.call(self.params)


def _build(spec: Spec, c: Call) -> LRFunction:
    spec.table.check_call(c)
    return LRFunction(spec, spec.table.read(c.kwargs))


def _below_k0(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    """A decaying function's k1: >= 0 and below k0."""
    k1 = _K1(owner, key, value, earlier)
    if k1 >= earlier["k0"]:
        raise LRPilotError(f"{owner}: k1={k1} must be below k0={earlier['k0']} "
                           "(a decaying policy decays from k0 to k1)")
    return k1


def _boundaries(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> list[float]:
    """NSTEP's l: a non-empty, strictly increasing list of step boundaries >= 0."""
    if not isinstance(value, list) or not value:
        raise LRPilotError(f"{owner}: {key}={value!r} must be a non-empty list of step boundaries, "
                           f"e.g. {key}=[150, 180]")
    out = [check_number(owner, key, v, lambda x: x >= 0, "a list of finite step numbers >= 0") for v in value]
    if any(b <= a for a, b in zip(out, out[1:])):
        raise LRPilotError(f"{owner}: {key}={value!r} must be strictly increasing, e.g. {key}=[150, 180]")
    return out


def _phase(t, l):
    """Where t lies in its period 2l, in [0, 2): reduced before dividing, so it stays exact at huge t."""
    return (t % (2.0 * l)) / l


def _tri(t, xp, l):
    return 1.0 - abs(_phase(t, l) - 1.0)


def _sin(t, xp, l):
    return xp.sin(0.5 * math.pi * _phase(t, l))


def _halving(t, xp, l):
    return 2.0 ** -xp.floor(t / (2.0 * l))


SPECS = [
    Spec("FIX", lambda t, xp: 1.0, (), "none", 1, "fixed LR: k0", "FIX(k0=0.01)"),
    Spec("STEP", lambda t, xp, gamma, l: xp.power(gamma, xp.floor(t / l)), ("gamma", "l"), "optional", 3,
         "step decay: g = gamma^floor(t/l)", "STEP(k0=0.1, gamma=0.1, l=1000)"),
    Spec("NSTEP", lambda t, xp, gamma, l: xp.power(gamma, xp.count_le(l, t)), ("gamma", "l"), "optional", None,
         "variable steps: g = gamma^i, i = number of boundaries l_j <= t", "NSTEP(k0=0.1, gamma=0.1, l=[150, 180])"),
    Spec("EXP", lambda t, xp, gamma: xp.power(gamma, t), ("gamma",), "optional", 2,
         "exponential decay: g = gamma^t", "EXP(k0=0.1, gamma=0.999)"),
    Spec("INV", lambda t, xp, gamma, p: xp.power(1.0 + gamma * t, -p), ("gamma", "p"), "optional", 3,
         "inverse time: g = 1/(1 + gamma t)^p", "INV(k0=0.01, gamma=0.0001, p=0.75)",
         gamma_rule=(lambda x: x > 0, "a finite number > 0")),
    Spec("POLY", lambda t, xp, p, l: xp.power(xp.maximum(1.0 - t / l, 0.0), p), ("p", "l"), "optional", 4,
         "polynomial decay: g = (1 - t/l)^p for t < l, then 0 (p=1, k1=0: linear decay to zero)", "POLY(k0=0.1, p=2, l=10000)"),
    Spec("TRI", _tri, ("l",), "required", 3,
         "triangle: g = (2/pi)|arcsin(sin(pi t / 2l))|, period 2l", "TRI(k0=0.001, k1=0.006, l=2000)"),
    Spec("TRI2", lambda t, xp, l: _tri(t, xp, l) * _halving(t, xp, l), ("l",), "required", 3,
         "triangle halving each cycle: TRI(t) / 2^floor(t/2l)", "TRI2(k0=0.0001, k1=0.9, l=2000)"),
    Spec("TRIEXP", lambda t, xp, gamma, l: xp.power(gamma, t) * _tri(t, xp, l), ("gamma", "l"), "required", 4,
         "triangle with exponential decay: gamma^t TRI(t)", "TRIEXP(k0=0.05, k1=0.3, gamma=0.94, l=100)"),
    Spec("SIN", _sin, ("l",), "required", 3,
         "sine: g = |sin(pi t / 2l)|, period 2l", "SIN(k0=0.001, k1=0.006, l=2000)"),
    Spec("SIN2", lambda t, xp, l: _sin(t, xp, l) * _halving(t, xp, l), ("l",), "required", 3,
         "sine halving each cycle: SIN(t) / 2^floor(t/2l)", "SIN2(k0=0.001, k1=0.006, l=2000)"),
    Spec("SINEXP", lambda t, xp, gamma, l: xp.power(gamma, t) * _sin(t, xp, l), ("gamma", "l"), "required", 4,
         "sine with exponential decay: gamma^t SIN(t)", "SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000)"),
    Spec("COS", lambda t, xp, l: 0.5 * (1.0 + xp.cos(math.pi * _phase(t, l))), ("l",), "required", 3,
         "cosine: g = (1 + cos(pi t / l))/2, starts at max(k0, k1), period 2l", "COS(k0=0.1, k1=0.001, l=5000)"),
]



def _one_of(*words: str) -> Check:
    """A word among ``words``."""
    def check(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> str:
        if value not in words:
            raise LRPilotError(f"{owner}: {key}={value!r} is invalid; {key} must be one of {', '.join(words)}")
        return value
    return check


def _cooldown_start(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    """WSD's decay: a fraction in (0, 1] of l whose cooldown starts after the warmup's end."""
    decay = check_number(owner, key, value, lambda x: 0 < x <= 1, "a fraction in (0, 1] of l (the cooldown's share)")
    start = earlier["l"] * (1 - decay)
    if start < earlier["w"] and not math.isclose(start, earlier["w"]):  # (1000 * (1 - 0.9) is 99.99999999999997)
        raise LRPilotError(f"{owner}: decay={value!r} starts the cooldown at step {start:g}, "
                           f"before the warmup ends at w={earlier['w']:g}; shorten one of them")
    return decay


def _peak_step(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> float:
    """ONECYCLE's pct: a fraction in (0, 1) of l whose peak step pct * l - 1 lies after step 0."""
    pct = check_number(owner, key, value, lambda x: 0 < x < 1, "a fraction in (0, 1) of l (the rise's share)")
    if pct * earlier["l"] <= 1:
        raise LRPilotError(f"{owner}: pct={value!r} puts the peak at step {pct * earlier['l'] - 1:g}; "
                           f"pct * l must exceed 1 (l={earlier['l']:g})")
    return pct


_FALL = {  # the cooldown shapes: from 1 at s = 0 to 0 at s = 1
    "linear": lambda s, xp: 1.0 - s,
    "sqrt": lambda s, xp: 1.0 - xp.sqrt(s),
    "cos": lambda s, xp: 0.5 * (1.0 + xp.cos(math.pi * s)),
}


def _ramp(t, xp, start, length):
    """0 up to ``start``, rising linearly to 1 at ``start + length``, then 1."""
    return xp.minimum(xp.maximum((t - start) / length, 0.0), 1.0)


def _wsd(t, xp, l, w, decay, shape):
    up = xp.minimum(t / w, 1.0) if w else 1.0
    start = l * (1.0 - decay)
    return up * _FALL[shape](_ramp(t, xp, start, l - start), xp)


def _onecycle(t, xp, l, pct, div, final_div, shape):
    peak, fall, low = pct * l - 1.0, _FALL[shape], 1.0 / (div * final_div)
    rise = 1.0 + (1.0 / div - 1.0) * fall(_ramp(t, xp, 0.0, peak), xp)
    anneal = low + (1.0 - low) * fall(_ramp(t, xp, peak, l - 1.0 - peak), xp)
    return xp.where(t <= peak, rise, anneal)


MODERN = [
    Spec("WSD", _wsd, ("l", "w", "decay", "shape"), "optional", 6,
         "warmup-stable-decay (Hu et al. 2024; Hägele et al. 2024): linear warmup over w, 1, then the cooldown "
         "shape (sqrt: 1-sqrt, linear, cos) over the last decay share of l down to k1",
         "WSD(k0=0.1, l=10000, w=500)",
         extra=(Param("w", number(lambda x: x >= 0, "a finite number of iterations >= 0 (the warmup)"), 0.0),
                Param("decay", _cooldown_start, 0.2), Param("shape", _one_of("sqrt", "linear", "cos"), "sqrt"))),
    Spec("ONECYCLE", _onecycle, ("l", "pct", "div", "final_div", "shape"), "optional", 7,
         "one-cycle (Smith and Topin 2019; torch's OneCycleLR): k0/div up to k0 at pct of l, then down to "
         "k0/(div final_div) at l, cos or linear", "ONECYCLE(k0=0.1, l=10000)",
         extra=(Param("pct", _peak_step, 0.3),
                Param("div", number(lambda x: x >= 1, "a finite number >= 1 (k0 / the first LR)"), 25.0),
                Param("final_div", number(lambda x: x >= 1, "a finite number >= 1 (the first LR / the last)"), 1e4),
                Param("shape", _one_of("cos", "linear"), "cos"))),
]

for _spec in SPECS + MODERN:
    register(Entry(_spec.name, "function", lambda c, s=_spec: _build(s, c), _spec.table.names,
                   "n+2" if _spec.n_param is None else str(_spec.n_param), _spec.doc, _spec.example))
