"""Policies made of policies: warmup, piecewise (LRBench's "piecewise LR") and clamp.

Text forms::

    warmup(COS(k0=0.1, k1=0.001, l=5000), steps=500)                 # linear from 0 to COS(0)
    warmup(FIX(k0=0.1), steps=2000, start=0.005, mode=constant)       # STPT's warmup LR
    piecewise(FIX(k0=0.1), COS(k0=0.1, k1=0.001, l=5000)@1000)        # a piece restarts at 0
    clamp(EXP(k0=0.1, gamma=0.999), min=0.001)

After a warmup of ``steps`` iterations, and at the start ``s`` of every piece, the inner
policy sees ``t - steps`` (or ``t - s``): it starts from its own step 0, as optax's
``join_schedules`` hands each piece ``step - boundary``.
"""

from __future__ import annotations

import bisect

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, Policy, as_policy, check_keys, check_number, register
from lrpilot.policy.text import Call


class Warmup(Policy):
    """``steps`` iterations of warmup, then ``inner`` from its step 0.

    mode=linear goes from ``start`` at t=0 towards inner(0) (reached at t=steps), as in the
    gradual warmup of Goyal et al.; mode=constant holds ``start``, the STPT paper's warmup LR.
    """

    EXAMPLE = "warmup(COS(k0=0.1, k1=0.001, l=5000), steps=500)"

    def __init__(self, inner: Policy, steps: int, start: float = 0.0, mode: str = "linear"):
        self.inner, self.steps, self.start, self.mode = inner, steps, start, mode
        self._target = inner(0)

    @property
    def n_param(self) -> int:
        return self.inner.n_param + 2

    def __call__(self, t: int) -> float:
        if t >= self.steps:
            return self.inner(t - self.steps)
        if self.mode == "constant":
            return self.start
        return self.start + (self._target - self.start) * (t / self.steps)

    def values(self, steps) -> np.ndarray:
        t = np.asarray(steps, dtype=np.float64)
        warm = np.full(t.shape, self.start) if self.mode == "constant" else \
            self.start + (self._target - self.start) * (t / self.steps)
        return np.where(t >= self.steps, self.inner.values(np.maximum(t - self.steps, 0.0)), warm)

    def to_call(self) -> Call:
        kw = {"steps": self.steps}
        if self.start != 0.0 or self.mode == "constant":
            kw["start"] = self.start
        if self.mode != "linear":
            kw["mode"] = self.mode
        return Call("warmup", [self.inner.to_call()], kw)


def _build_warmup(c: Call) -> Warmup:
    check_keys(c, ("steps",), ("start", "mode"), Warmup.EXAMPLE, positional=1)
    inner = as_policy(c.args[0], "warmup")
    steps = int(check_number("warmup", "steps", c.kwargs["steps"], lambda x: x >= 1 and x == int(x),
                             "a whole number of iterations >= 1"))
    mode = c.kwargs.get("mode", "linear")
    if mode not in ("linear", "constant"):
        raise LRPilotError(f"warmup: mode={mode!r} is invalid; mode must be linear or constant")
    if mode == "constant" and "start" not in c.kwargs:
        raise LRPilotError("warmup: mode=constant needs start=LR, the warmup LR (the STPT paper uses 0.005)")
    start = check_number("warmup", "start", c.kwargs.get("start", 0.0), lambda x: x >= 0, "a finite LR >= 0")
    return Warmup(inner, steps, start, mode)


class Piecewise(Policy):
    """Policy i from its start s_i (the first starts at 0) until the next start, restarted at 0."""

    EXAMPLE = "piecewise(FIX(k0=0.1), COS(k0=0.1, k1=0.001, l=5000)@1000)"

    def __init__(self, pieces: list[Policy], starts: list[float]):
        self.pieces, self.starts = pieces, starts
        self._starts_array = np.asarray(starts, dtype=np.float64)

    @property
    def n_param(self) -> int:
        return sum(p.n_param for p in self.pieces) + len(self.pieces) - 1

    def __call__(self, t: int) -> float:
        i = bisect.bisect_right(self.starts, t) - 1
        return self.pieces[i](t - self.starts[i])

    def values(self, steps) -> np.ndarray:
        t = np.asarray(steps, dtype=np.float64)
        which = np.searchsorted(self._starts_array, t, side="right") - 1
        out = np.empty(t.shape)
        for i, (piece, start) in enumerate(zip(self.pieces, self.starts)):
            mask = which == i
            out[mask] = piece.values(t[mask] - start)
        return out

    def to_call(self) -> Call:
        args = []
        for i, (piece, start) in enumerate(zip(self.pieces, self.starts)):
            call = piece.to_call()
            call.at = None if i == 0 else start
            args.append(call)
        return Call("piecewise", args)


def _build_piecewise(c: Call) -> Piecewise:
    check_keys(c, (), (), Piecewise.EXAMPLE, positional=len(c.args))
    if not c.args:
        raise LRPilotError(f"piecewise needs at least one piece, e.g. {Piecewise.EXAMPLE}")
    pieces, starts = [], []
    for i, arg in enumerate(c.args):
        if not isinstance(arg, Call):
            raise LRPilotError(f"piecewise: piece {i + 1} is {arg!r}, not a policy; e.g. {Piecewise.EXAMPLE}")
        at = arg.at if arg.at is not None else (0 if i == 0 else None)
        if at is None:
            raise LRPilotError(f"piecewise: piece {i + 1} ({arg.name}) needs '@start', e.g. {Piecewise.EXAMPLE}")
        start = check_number("piecewise", f"start of piece {i + 1}", at, lambda x: x >= 0, "a step number >= 0")
        if i == 0 and start != 0:
            raise LRPilotError(f"piecewise: the first piece starts at step 0, not @{at}")
        if starts and start <= starts[-1]:
            raise LRPilotError(f"piecewise: starts must increase; piece {i + 1} starts @{at} after @{starts[-1]:g}")
        pieces.append(as_policy(Call(arg.name, arg.args, arg.kwargs), "piecewise"))
        starts.append(start)
    return Piecewise(pieces, starts)


class Clamp(Policy):
    """``inner`` clipped to [min, max]."""

    EXAMPLE = "clamp(EXP(k0=0.1, gamma=0.999), min=0.001)"

    def __init__(self, inner: Policy, low: float | None, high: float | None):
        self.inner, self.low, self.high = inner, low, high

    @property
    def n_param(self) -> int:
        return self.inner.n_param + (self.low is not None) + (self.high is not None)

    def __call__(self, t: int) -> float:
        lr = self.inner(t)
        if self.low is not None and lr < self.low:
            return self.low
        if self.high is not None and lr > self.high:
            return self.high
        return lr

    def values(self, steps) -> np.ndarray:
        return np.clip(self.inner.values(steps), self.low, self.high)

    def to_call(self) -> Call:
        kw = {k: v for k, v in (("min", self.low), ("max", self.high)) if v is not None}
        return Call("clamp", [self.inner.to_call()], kw)


def _build_clamp(c: Call) -> Clamp:
    check_keys(c, (), ("min", "max"), Clamp.EXAMPLE, positional=1)
    if not c.kwargs:
        raise LRPilotError(f"clamp needs min=, max= or both, e.g. {Clamp.EXAMPLE}")
    inner = as_policy(c.args[0], "clamp")
    low, high = (None if k not in c.kwargs else
                 check_number("clamp", k, c.kwargs[k], lambda x: x >= 0, "a finite LR >= 0") for k in ("min", "max"))
    if low is not None and high is not None and low >= high:
        raise LRPilotError(f"clamp: min={low:g} must be below max={high:g}")
    return Clamp(inner, low, high)


register(Entry("warmup", "composite", _build_warmup, ("policy", "steps", "start", "mode"), "inner+2",
               "warmup for `steps` iterations (linear from `start`, or constant at `start`), then the policy",
               Warmup.EXAMPLE))
register(Entry("piecewise", "composite", _build_piecewise, ("policy@start", "..."), "sum+pieces-1",
               "each policy from its @start until the next, restarted at step 0", Piecewise.EXAMPLE))
register(Entry("clamp", "composite", _build_clamp, ("policy", "min", "max"), "inner+bounds",
               "the policy clipped to [min, max]", Clamp.EXAMPLE))
