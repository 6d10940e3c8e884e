"""Distill: the LR trajectory an adaptive run chose, as fixed policy texts to train with again.

Every adaptive controller and search records its trajectory as ``record["trajectory"]``,
``[[step, lr], ...]``: from each step on, the LR it trained with. :func:`attach` turns it into two
texts in the run's ``record["distilled"]``, where a result is stored or shown (the bench runner,
``lrpilot train``), not inside the engine: ``piecewise``, the trajectory exactly, as
``piecewise(FIX(k0=a), FIX(k0=b)@s, ...)``; and ``fit``, the nearest of the 13 LRBench functions,
fitted by least squares on log LR over the run's iterations, with ``fit_error``, the root mean
square of the difference in natural-log LR (0.1: about 10% off on average). A run too short for
the fit (fewer iterations than a function has parameters) gets the piecewise text alone, ``fit``
and ``fit_error`` None.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy import policy
from lrpilot.policy.functions import SPECS, LRFunction, Spec
from lrpilot.policy.text import fmt_sig
from lrpilot.records import RunResult

_POINTS = 256  # iterations the fit looks at, evenly spread over the run
READABLE_PIECES = 6  # at most this many constant pieces in the readable text of a trajectory


def merged(points: list) -> list[list]:
    """``[[step, lr], ...]`` with a later LR at the same step replacing the earlier, and repeats of an LR dropped."""
    out: list[list] = []
    for step, lr in points:
        if out and out[-1][0] == step:
            out.pop()
        if not out or out[-1][1] != lr:
            out.append([int(step), float(lr)])
    return out


def trajectory(record: dict[str, Any]) -> list[list]:
    """An adaptive run's ``record["trajectory"]``, ``[[step, lr], ...]``, with repeats merged."""
    return merged(record["trajectory"])


def piecewise_text(points: list[list]) -> str:
    """The trajectory as ``piecewise(FIX(k0=a), FIX(k0=b)@s, ...)``, canonical."""
    pieces = [f"FIX(k0={lr!r})" + (f"@{step}" if i else "") for i, (step, lr) in enumerate(points)]
    return str(policy(f"piecewise({', '.join(pieces)})"))


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u))


class _Family:
    """One LRBench function with its parameters as an unconstrained vector: LRs and scales through exp,
    gamma in (0, 1) as exp(-exp(u)), a decaying function's floor k1 as k0 * sigmoid(u)."""

    def __init__(self, spec: Spec, steps: np.ndarray, log_lr: np.ndarray, drops: list[int], gap: float):
        self.spec, self.steps, self.log_lr, self.gap = spec, steps, log_lr, gap
        self.fixed = {"l": [float(s) for s in drops]} if spec.name == "NSTEP" else {}
        self.keys = ["k0"] + (["k1"] if spec.k1 != "none" else []) + [k for k in spec.g_params if k not in self.fixed]

    def params(self, u: np.ndarray) -> dict[str, Any]:
        x = dict(zip(self.keys, np.clip(u, -40.0, 40.0).tolist()))  # exp() stays finite
        out: dict[str, Any] = {"k0": math.exp(x["k0"]), **self.fixed}
        if "k1" in x:
            out["k1"] = out["k0"] * _sigmoid(x["k1"]) if self.spec.k1 == "optional" else math.exp(x["k1"])
        for k in ("gamma", "p", "l"):
            if k in x:
                out[k] = math.exp(-math.exp(x[k])) if k == "gamma" and self.spec.name != "INV" else math.exp(x[k])
        return out

    def residuals(self, params: dict[str, Any]) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = np.log(LRFunction(self.spec, params).values(self.steps)) - self.log_lr
        return np.where(np.isfinite(r), r, 50.0)

    def starts(self, total: int) -> list[np.ndarray]:
        """A few starting points: k0 and k1 from the trajectory, a grid over gamma and l (l: the median
        distance between the trajectory's changes, a quarter of the run, the run)."""
        hi, lo = self.log_lr.max(), self.log_lr.min()
        floor = min(0.5, math.exp(lo - self.log_lr[0]))  # a decaying function's k1 / k0
        grid = {"k0": [self.log_lr[0]], "k1": [lo] if self.spec.k1 == "required" else [math.log(floor / (1 - floor))],
                "p": [0.0], "l": [math.log(self.gap), math.log(total / 4), math.log(total)],
                "gamma": [math.log(10 / total)] if self.spec.name == "INV" else
                [math.log(3 / total), math.log(math.log(2))] if self.spec.name == "STEP" else [math.log(3 / total)]}
        if self.spec.k1 == "required":
            grid["k0"] = [hi]
        return [np.array(u) for u in itertools.product(*(grid[k] for k in self.keys))]

    def fit(self, total: int) -> tuple[float, dict[str, Any]]:
        """The lowest RMS error in log LR over the starting points, and its (valid) parameters."""
        from scipy.optimize import least_squares  # imported here: ~0.7 s that most processes never need

        best: tuple[float, dict[str, Any]] = (math.inf, {})
        for u0 in self.starts(total):
            u = least_squares(lambda u: self.residuals(self.params(u)), u0, method="lm", max_nfev=50 * len(u0)).x
            params = _valid(self.spec, self.params(u))
            error = math.inf if params is None else float(np.sqrt(np.mean(self.residuals(params) ** 2)))
            if error < best[0]:
                best = (error, params)
        return best


def _valid(spec: Spec, params: dict[str, Any]) -> dict[str, Any] | None:
    """The parameters to 6 significant digits, or as fitted if rounding breaks a rule, or None if both do."""
    for candidate in ({k: v if isinstance(v, list) else float(f"{v:.6g}") for k, v in params.items()}, params):
        try:
            policy(str(LRFunction(spec, candidate)))
            return candidate
        except LRPilotError:
            pass
    return None


def fit_text(points: list, total: int) -> tuple[str | None, float | None]:
    """The LRBench function nearest to the trajectory in log LR, as canonical text, and its RMS error;
    (None, None) when the run has fewer iterations than some function has parameters to fit."""
    steps = np.linspace(0, total - 1, min(total, _POINTS)).round()
    starts = np.array([s for s, _ in points])
    log_lr = np.log([points[i][1] for i in np.searchsorted(starts, steps, side="right") - 1])
    drops = [t for (_, a), (t, b) in zip(points, points[1:]) if b < a]  # NSTEP's boundaries
    gap = float(np.median(np.diff(starts))) if len(points) > 1 else total / 2
    families = [_Family(spec, steps, log_lr, drops, gap) for spec in SPECS if spec.name != "NSTEP" or drops]
    if any(len(f.keys) > len(steps) for f in families):
        return None, None
    fits = [(*f.fit(total), f.spec) for f in families]
    error, params, spec = min(fits, key=lambda f: (round(f[0], 6), f[2].n_param or len(drops) + 2))
    return str(policy(str(LRFunction(spec, params)))), error


def readable(points: list, total: int, pieces: int = READABLE_PIECES) -> list[list]:
    """The trajectory in at most ``pieces`` constant pieces with LRs to 3 significant figures: neighbouring
    pieces are merged, the pair whose merge changes log LR least (weighted by iterations) first, each merged
    piece at the iteration-weighted geometric mean of its LRs."""
    ends = [s for s, _ in points[1:]] + [total]
    segs = [[s, e - s, math.log(lr)] for (s, lr), e in zip(points, ends) if e > s] or [[0, 1, math.log(points[0][1])]]
    while len(segs) > pieces:
        def cost(i: int) -> float:  # the squared log-LR error the merge of pieces i and i + 1 adds
            (_, a, x), (_, b, y) = segs[i], segs[i + 1]
            return a * b / (a + b) * (x - y) ** 2
        i = min(range(len(segs) - 1), key=cost)
        (s, a, x), (_, b, y) = segs[i], segs.pop(i + 1)
        segs[i] = [s, a + b, (a * x + b * y) / (a + b)]
    return merged([[s, float(fmt_sig(math.exp(x), 3))] for s, _, x in segs])


def distill(record: dict[str, Any], total: int) -> dict[str, Any]:
    """``{"piecewise": text, "readable": text, "fit": text, "fit_error": float}`` for the trajectory in an adaptive
    run's ``record``, over its budget of ``total`` iterations; ``moved``: whether its LR ever changed."""
    points = [p for p in trajectory(record) if p[0] < total]
    text, error = fit_text(points, total)
    return {"piecewise": piecewise_text(points), "readable": piecewise_text(readable(points, total)), "fit": text,
            "fit_error": error, "moved": len(points) > 1}


def attach(result: RunResult) -> RunResult:
    """``result``, its ``record["distilled"]`` set if it is an adaptive run's (its record has a trajectory)."""
    if "trajectory" in result.record:
        result.record["distilled"] = distill(result.record, result.budget)
    return result


def replayable(policy: str, runs: Iterable[Any]) -> str:
    """A fixed policy's text; for an adaptive one, the LR trajectory its first ok run chose, distilled into a
    readable piecewise policy (at most a few pieces, LRs to 3 significant figures; replayed at no search cost)."""
    for r in runs:
        distilled = (r.record or {}).get("distilled")
        if r.status == "ok" and distilled:
            return distilled.get("readable", distilled["piecewise"])  # runs stored before readable texts
    return policy
