"""The search space of tune: the LR functions' parameters (LRBench's 13, WSD, ONECYCLE) around a task's range test.

:func:`propose` draws one policy through an Optuna trial (define-by-run, so a sampler such as TPE
learns which function and which settings do well); every parameter is expressed against the range
test's good range ``[k_low, k_high]`` and the run's length ``total``, so that the space fits any task:

- ``hi``, the highest LR of a schedule: log-uniform in ``[k_low, 4 k_high]`` (decaying schedules
  tolerate a start above the best constant LR); FIX's ``k0``: log-uniform in ``[k_low / 2, 2 k_high]``;
- ``ratio``, the lowest LR over the highest: log-uniform in ``[1e-3, 0.7]`` (up to 0.7, so that a cycle
  between the two ends of a good range such as [0.1, 0.2] lies inside);
- every decaying schedule goes from ``hi`` down to ``hi * ratio`` by the end of the run: STEP with a
  step every 10-50 % of the run (gamma so that the last step reaches ``hi * ratio``); NSTEP with two
  boundaries, the first at 30-70 % of the run, the second 10-30 % of the run later (gamma =
  sqrt(ratio)); EXP; INV (power in [0.5, 1]); POLY (power in [0.5, 3]); COS;
- TRI, TRI2, SIN, SIN2: between ``hi * ratio`` and ``hi`` with a half cycle of 5-50 % of the run;
  TRIEXP and SINEXP: the same with the amplitude shrinking by a factor in [0.01, 0.5] over the run;
- WSD from ``hi`` down to 0 (Hägele et al.'s setting) with a cooldown of 10, 20, 50 or 100 % of the run after
  its warmup, shaped sqrt, linear or cos (100 % and linear: linear decay to zero); ONECYCLE peaking at ``hi`` after
  10-50 % of the run, cos or linear, with torch's start and end (``hi / 25``, ``hi / 25 / 10^4``);
- with ``warmup=True`` (a task that declares ``meta["warmup"]``, such as one trained with Adam), a linear
  warmup from 0 over 0-10 % of the run before every schedule but the cyclic ones and ONECYCLE (which start
  low): WSD's own ``w``, the others as ``warmup(..., steps=w)`` with the schedule fitted to the rest of the run.

LRs are written with 3 significant figures. Optuna is imported by the caller, not here.
:func:`suite_trials` gives the parameters of LRBench's own suite (:func:`lrpilot.bench.suite.lrbench13`)
in this space, then WSD and ONECYCLE at their sources' defaults: the search's first proposals.
"""

from __future__ import annotations

import math
from typing import Any

from lrpilot.errors import LRPilotError
from lrpilot.policy.text import fmt_sig

FUNCTIONS = ("FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "COS",
             "WSD", "ONECYCLE")
RATIO = (1e-3, 0.7)
WARMUP = (0.0, 0.1)  # the warmup's share of the run, when the task asks for one
_STARTS_LOW = ("TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "ONECYCLE")  # no warmup before these


def _lr(x: float) -> str:
    return fmt_sig(x, 3)


def propose(trial: Any, total: int, k_low: float, k_high: float, warmup: bool = False) -> str:
    """One policy text drawn through ``trial`` (an ``optuna.Trial``) for a run of ``total`` iterations, with a
    warmup drawn for the schedules that start high when ``warmup``."""
    if not (0 < k_low <= k_high and math.isfinite(k_high)):
        raise LRPilotError(f"LR range [{k_low}, {k_high}] must satisfy 0 < k_low <= k_high: rerun the range test")
    if total < 8:
        raise LRPilotError(f"a budget of {total} iterations is too short to search schedules: use >= 8")
    fn = trial.suggest_categorical("fn", FUNCTIONS)
    w = round(total * trial.suggest_float("warmup", *WARMUP)) if warmup and fn not in _STARTS_LOW else 0
    if fn == "WSD":
        decay = trial.suggest_categorical("wsd_decay", (0.1, 0.2, 0.5, 1.0))
        shape = trial.suggest_categorical("wsd_shape", ("sqrt", "linear", "cos"))
        hi = trial.suggest_float("hi", k_low, 4 * k_high, log=True)
        share = float(fmt_sig(decay * (total - w) / total, 6))  # the cooldown's share of what follows the warmup
        w = min(w, math.floor(total * (1 - share) + 1e-9))  # so that the rounded share starts it after the warmup
        return f"WSD(k0={_lr(hi)}, l={total}" + (f", w={w}" if w else "") + f", decay={share:g}, shape={shape})"
    text = _schedule(trial, fn, total - w, k_low, k_high)
    return f"warmup({text}, steps={w})" if w else text


def _schedule(trial: Any, fn: str, total: int, k_low: float, k_high: float) -> str:
    """A policy of function ``fn`` (not WSD) over ``total`` iterations."""
    if fn == "FIX":
        return f"FIX(k0={_lr(trial.suggest_float('k0', k_low / 2, 2 * k_high, log=True))})"
    hi = trial.suggest_float("hi", k_low, 4 * k_high, log=True)
    ratio = trial.suggest_float("ratio", *RATIO, log=True)
    lo = hi * ratio
    if fn == "STEP":
        every = max(1, round(total * trial.suggest_float("step_every", 0.1, 0.5)))
        gamma = ratio ** (1 / max(1, (total - 1) // every))
        return f"STEP(k0={_lr(hi)}, gamma={fmt_sig(gamma, 3)}, l={every})"
    if fn == "NSTEP":
        gamma = math.sqrt(ratio)
        first = trial.suggest_float("nstep_first", 0.3, 0.7)
        second = min(0.95, first + trial.suggest_float("nstep_gap", 0.1, 0.3))
        return f"NSTEP(k0={_lr(hi)}, gamma={fmt_sig(gamma, 3)}, l=[{round(total * first)}, {round(total * second)}])"
    if fn == "EXP":
        return f"EXP(k0={_lr(hi)}, gamma={fmt_sig(ratio ** (1 / total), 6)})"
    if fn == "INV":
        p = trial.suggest_float("inv_p", 0.5, 1.0)
        return f"INV(k0={_lr(hi)}, gamma={fmt_sig((ratio ** (-1 / p) - 1) / total, 4)}, p={fmt_sig(p, 3)})"
    if fn == "POLY":
        p = trial.suggest_float("poly_p", 0.5, 3.0)
        return f"POLY(k0={_lr(hi)}, k1={_lr(lo)}, p={fmt_sig(p, 3)}, l={total})"
    if fn == "COS":
        return f"COS(k0={_lr(hi)}, k1={_lr(lo)}, l={total})"
    if fn == "ONECYCLE":
        pct = trial.suggest_float("onecycle_pct", 0.1, 0.5)
        shape = trial.suggest_categorical("onecycle_shape", ("cos", "linear"))
        return f"ONECYCLE(k0={_lr(hi)}, l={total}, pct={fmt_sig(max(pct, 2 / total), 3)}, shape={shape})"
    half = max(1, round(total * trial.suggest_float("half_cycle", 0.05, 0.5)))
    if fn in ("TRIEXP", "SINEXP"):
        shrink = trial.suggest_float("shrink", 0.01, 0.5, log=True)
        return f"{fn}(k0={_lr(lo)}, k1={_lr(hi)}, gamma={fmt_sig(shrink ** (1 / total), 6)}, l={half})"
    return f"{fn}(k0={_lr(lo)}, k1={_lr(hi)}, l={half})"


def suite_trials(k_low: float, k_high: float, best: float) -> list[dict[str, Any]]:
    """The parameters under which :func:`propose` writes LRBench's 13 functions as the ``lrbench13`` suite scales
    them to the good range ``[k_low, k_high]`` (FIX at ``best``): decaying from ``k_high`` to ``k_low``, cycling
    between them with a half cycle of a quarter of the run, TRIEXP/SINEXP shrinking 10x (up to the space's
    rounding and its bounds on ``ratio``); then WSD (Hägele et al.'s 20 % 1-sqrt cooldown) and ONECYCLE (torch's
    defaults) from ``k_high``. None has a warmup (``warmup`` 0)."""
    ratio = min(max(k_low / k_high, RATIO[0]), RATIO[1])
    decay, cyclic = {"hi": k_high, "ratio": ratio}, {"hi": k_high, "ratio": ratio, "half_cycle": 0.25}
    k0 = min(max(best, k_low / 2), 2 * k_high)
    trials = [{"fn": "FIX", "k0": k0}, {"fn": "STEP", **decay, "step_every": 0.3334},
              {"fn": "NSTEP", **decay, "nstep_first": 0.5, "nstep_gap": 0.25}, {"fn": "EXP", **decay},
              {"fn": "INV", **decay, "inv_p": 0.75}, {"fn": "POLY", **decay, "poly_p": 2.0},
              {"fn": "TRI", **cyclic}, {"fn": "TRI2", **cyclic}, {"fn": "TRIEXP", **cyclic, "shrink": 0.1},
              {"fn": "SIN", **cyclic}, {"fn": "SIN2", **cyclic}, {"fn": "SINEXP", **cyclic, "shrink": 0.1},
              {"fn": "COS", **decay}, {"fn": "WSD", "hi": k_high, "wsd_decay": 0.2, "wsd_shape": "sqrt"},
              {"fn": "ONECYCLE", "hi": k_high, "ratio": ratio, "onecycle_pct": 0.3, "onecycle_shape": "cos"}]
    return [{**t, "warmup": 0.0} for t in trials]
