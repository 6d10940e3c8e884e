"""Suites of policies scaled to a task: ``lrbench13``, one policy of each of LRBench's 13 functions.

The scaling follows LRBench (Section V): decaying functions start at the top of the good range
``[k_low, k_high]`` and end near its bottom; cyclic ones (k0 < k1) move between the two bounds
with a half cycle of a quarter of the run (two full cycles); COS anneals from k_high to k_low
over the run; FIX sits at the best constant LR. The range comes from a stored range test, else
from the task's default LR: ``[lr / 10, lr]``. A new suite is one function of
``(total, k_low, k_high, best)`` and one entry in :data:`SUITES`.
"""

from __future__ import annotations

import math
from typing import Callable

from lrpilot.errors import LRPilotError
from lrpilot.policy.text import fmt_sig

def lrbench13(total: int, k_low: float, k_high: float, best: float | None = None) -> list[str]:
    """The 13 LRBench functions over ``total`` iterations within ``[k_low, k_high]`` (FIX at ``best``)."""
    if not (0 < k_low < k_high) or not math.isfinite(k_high):
        raise LRPilotError(f"LR range [{k_low}, {k_high}] must satisfy 0 < k_low < k_high: rerun the range test")
    if total < 8:
        raise LRPilotError(f"a budget of {total} iterations is too short for the suite's schedules: use >= 8")
    lo, hi, best = fmt_sig(k_low, 4), fmt_sig(k_high, 4), fmt_sig(best if best is not None else k_high, 4)
    ratio = k_low / k_high
    step_gamma = fmt_sig(math.sqrt(ratio), 4)  # two drops from k_high reach k_low
    half = max(1, round(total / 4))
    decay = fmt_sig(0.1 ** (1 / total), 6)  # TRIEXP/SINEXP: the cycles' amplitude shrinks 10x over the run
    p_inv = 0.75  # Caffe's default power for INV
    inv_gamma = fmt_sig((ratio ** (-1 / p_inv) - 1) / total, 4)
    return [
        f"FIX(k0={best})",
        f"STEP(k0={hi}, gamma={step_gamma}, l={math.ceil(total / 3)})",
        f"NSTEP(k0={hi}, gamma={step_gamma}, l=[{total // 2}, {3 * total // 4}])",
        f"EXP(k0={hi}, gamma={fmt_sig(ratio ** (1 / total), 6)})",
        f"INV(k0={hi}, gamma={inv_gamma}, p={p_inv})",
        f"POLY(k0={hi}, k1={lo}, p=2, l={total})",
        f"TRI(k0={lo}, k1={hi}, l={half})",
        f"TRI2(k0={lo}, k1={hi}, l={half})",
        f"TRIEXP(k0={lo}, k1={hi}, gamma={decay}, l={half})",
        f"SIN(k0={lo}, k1={hi}, l={half})",
        f"SIN2(k0={lo}, k1={hi}, l={half})",
        f"SINEXP(k0={lo}, k1={hi}, gamma={decay}, l={half})",
        f"COS(k0={hi}, k1={lo}, l={total})",
    ]


SUITES: dict[str, Callable[[int, float, float, float | None], list[str]]] = {"lrbench13": lrbench13}


def suite(name: str, total: int, k_low: float, k_high: float, best: float | None = None) -> list[str]:
    """The policies of suite ``name``."""
    if name not in SUITES:
        raise LRPilotError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")
    return SUITES[name](total, k_low, k_high, best)
