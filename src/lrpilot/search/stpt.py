"""STPT: adaptive LR adjustment with short-term pre-training (Yamada et al., Section II and Algorithm 1).

Every epoch after the warmup: *Pre-train*, each LR of the LR set trains ``alpha`` iterations from
the same snapshot (one candidate per worker); the LR whose model scores best at iteration alpha
is bestLR; *Main-train*, the winner's model goes on with bestLR for the ``beta`` remaining
iterations of the epoch (data-parallel across the workers under torchrun). The next epoch starts
from that model. Warmup epochs train at ``warmup_lr`` first.

Readings lrpilot takes where the paper leaves room:

- LR sets are multipliers of the current LR (Table 3: Narrow, Middle, Wide), so bestLR = current
  LR x winning factor walks from epoch to epoch; ``bounds`` keep it in [min, max] (the paper caps
  it at 1.0; the default floor is k0 / 1000); LRs that clip to the same value are tried once.
  ``lrs=[...]`` gives absolute LRs, the same every epoch, instead.
- ``set=mix`` is Table 4 scaled to the run: of 40 epochs, 1-4 warmup, 5-19 Narrow, 20-29 Middle,
  30-40 Wide; the boundaries are those fractions of the run's epochs, rounded half up.
- ``alpha``: iterations (an integer, e.g. the paper's 200), or a fraction of the epoch (default
  0.08, the paper's 200 of 2,500); the pre-train uses the epoch's first alpha batches, the
  main-train the rest, so every sample is trained on once per epoch, as in plain training.
- The score is Top-1 at iteration alpha on the task's validation split (``score=val``; the slice
  every task holds out of its training data, see :class:`lrpilot.tasks.base.ClassificationTask`; the
  test split is never looked at), or on the training part itself (``score=train``). STPT trains on the
  task's training part like every run. Tasks without classes score minus the loss. Ties go to the LR
  listed first, as Algorithm 1's strict ``>`` does.
- ``choose``: which LR of the set the epoch keeps. ``best``, Algorithm 1's bestLR, the highest score at
  iteration alpha (ties to the LR listed first), is biased to small LRs: a short pre-train rewards a small LR's
  lower noise, not the progress a large one makes over the epochs after it (short-horizon bias), and it
  follows the pre-train's noise: from the range test's LR the LR drifted to 0.0025-0.3 on digits-lenet (89.4 %
  Top-1, FIX 97.7 %) and down to 0.0001 on MNIST-1D's CNN (benchmarks/adaptive_quality.py). ``nearest`` (the
  default) keeps, of the LRs whose score is within noise of the best, the one nearest the current LR: the
  current LR itself unless some LR beats it by more than noise. Within noise: per-example correctness on the
  scored split, paired with the best's, differs by less than ``z`` standard errors (``z=2``); a score without
  per-example correctness (a loss) keeps the best. Keeping the *largest* LR within noise instead ran the LR up
  the Wide set on digits-lenet, whose 3-iteration pre-trains tell no LR apart (79 % Top-1).
- ``warmup``: epochs (an integer), or a fraction of the run's epochs (default 0.1, the paper's 4 of
  40); ``warmup_lr`` defaults to k0 / 20 (the paper's 0.005 for its 0.1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, half_up
from lrpilot.policy.params import (Configured, Param, ParamTable, choice, count_or_fraction, lr_bounds, number,
                                   positive_numbers)

#: Table 3's LR sets: multipliers of the current LR.
LR_SETS: dict[str, tuple[float, ...]] = {
    "narrow": (1.25, 1.17, 1.08, 1.00, 0.95, 0.90, 0.85, 0.80),
    "middle": (2.50, 2.00, 1.50, 1.00, 0.85, 0.70, 0.55, 0.40),
    "wide": (5.00, 3.67, 2.33, 1.00, 0.80, 0.60, 0.40, 0.20),
}
#: The ``choose`` readings: Algorithm 1's and lrpilot's default.
CHOICES = {"best": "Algorithm 1: the highest score",
           "nearest": "of the LRs within noise of the highest score, the one nearest the current LR"}
#: Table 4's "Mix": each set until this fraction of the run's epochs (epochs 19, 29, 40 of 40).
MIX: tuple[tuple[str, float], ...] = (("narrow", 19 / 40), ("middle", 29 / 40), ("wide", 1.0))


def search_bounds(owner: str, values: dict[str, Any]) -> tuple[float, float]:
    """A search's LR bounds: ``bounds`` as given, else [k0 / 1000, 1.0] (the STPT paper's cap), checked to hold k0."""
    return values["bounds"] or lr_bounds(owner, "bounds", (values["k0"] / 1000, 1.0), values)


def scaled(lr: float, factors: Any, bounds: tuple[float, float]) -> list[float]:
    """``lr`` times each factor, clipped to ``bounds``, without repeats (in the factors' order)."""
    lo, hi = bounds
    return list(dict.fromkeys(min(max(lr * f, lo), hi) for f in factors))


def score_name(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> str:
    """A name of :data:`lrpilot.search.candidate.SCORES`."""
    from lrpilot.search.candidate import SCORES

    if value not in SCORES:
        raise LRPilotError(f"{owner}: {key}={value!r} is unknown; known: {', '.join(SCORES)}")
    return value


def _lr_set(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> Any:
    """``mix``, a name of :data:`LR_SETS`, or a list of multipliers."""
    if not isinstance(value, str):
        return positive_numbers(owner, key, value, "multipliers of the current LR")
    if value != "mix" and value not in LR_SETS:
        raise LRPilotError(f"{owner}: {key}={value!r} is unknown; known: mix, {', '.join(LR_SETS)}, "
                           "or a list of multipliers such as [1.25, 1, 0.8]")
    return value


def _absolute_lrs(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> tuple[float, ...]:
    if earlier["set"] != "mix":
        raise LRPilotError(f"{owner}: give set= (multipliers) or lrs= (absolute LRs), not both")
    return positive_numbers(owner, key, value, "absolute LRs")


class Stpt(Configured):
    """STPT's settings, validated, and its loop (:meth:`drive`); text ``stpt(k0=0.1, set=mix, alpha=0.08)``."""

    #: Algorithm 1's settings in canonical order (``warmup_lr`` and ``bounds`` are written when given); #Param counts
    #: k0, the LR set, alpha, the warmup epochs and the warmup LR (``choose`` and ``z`` are readings, not tuned).
    TABLE = ParamTable("stpt", "stpt(k0=0.1, set=mix, alpha=0.08)", 5, (
        Param("k0", number(lambda x: x > 0, "a finite number > 0 (the LR after the warmup)")),
        Param("set", _lr_set, "mix"),
        Param("lrs", _absolute_lrs, None),
        Param("alpha", count_or_fraction("pre-train iterations per epoch"), 0.08),
        Param("warmup", count_or_fraction("warmup epochs", zero=True), 0.1),
        Param("warmup_lr", number(lambda x: x > 0, "a finite LR > 0"), None),
        Param("bounds", lr_bounds, None),
        Param("score", score_name, "val"),
        Param("choose", choice(CHOICES), "nearest", always=True),
        Param("z", number(lambda x: x >= 0, "a number of standard errors >= 0"), 2.0,
              shown=lambda v: v["choose"] == "nearest"),
    ))

    @classmethod
    def from_call(cls, c: Any) -> "Stpt":
        """The STPT a parsed text names; a text of before the tasks' validation splits (``val=``) is refused."""
        if "val" in c.kwargs:
            raise LRPilotError(f"{cls.TABLE.owner}: val={c.kwargs['val']!r} is no longer a setting: score=val now "
                               "scores on the task's own validation split (its size: ClassificationTask's "
                               "val_fraction); drop val=")
        return super().from_call(c)

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.warmup_lr = self.params["warmup_lr"] or self.k0 / 20
        self.bounds = search_bounds(self.TABLE.owner, self.params)

    # --- the loop ---------------------------------------------------------------------------------

    def phases(self, n_epochs: int) -> list[str]:
        """Each epoch's phase: "warmup", or the name of its LR set ("narrow", ..., or "custom"/"absolute")."""
        w = self.warmup if isinstance(self.warmup, int) else half_up(self.warmup * n_epochs)
        if self.set == "mix":
            ends = [(name, half_up(f * n_epochs)) for name, f in MIX]
            rest = [next(name for name, end in ends if e < end) for e in range(w, n_epochs)]
        else:
            name = "absolute" if self.lrs else self.set if isinstance(self.set, str) else "custom"
            rest = [name] * (n_epochs - w)
        return ["warmup"] * min(w, n_epochs) + rest

    def candidates(self, phase: str, lr: float) -> list[float]:
        """The LRs to pre-train in an epoch of ``phase`` from the current LR ``lr``, without repeats."""
        if self.lrs:
            return list(self.lrs)
        return scaled(lr, LR_SETS.get(phase) or self.set, self.bounds)

    def keep(self, lrs: list[float], outcomes: list[Any], current: float) -> int:
        """The index of the LR the epoch keeps (see ``choose`` in the module)."""
        best = max(range(len(lrs)), key=lambda i: outcomes[i].score)
        if self.choose == "best" or outcomes[best].correct is None:
            return best
        close = [i for i, o in enumerate(outcomes) if o.correct is not None
                 and not worse(outcomes[best].correct, o.correct, self.z)]
        return min(close, key=lambda i: abs(math.log(lrs[i] / current)))

    def drive(self, s: Any) -> None:
        """Algorithm 1 on the search ``s`` (:class:`lrpilot.search.run.Search`), recording every epoch."""
        ipe, total = s.iters_per_epoch, s.total
        alpha = self.alpha if isinstance(self.alpha, int) else max(1, half_up(self.alpha * ipe))
        lr = self.k0
        for e, phase in enumerate(self.phases(math.ceil(total / ipe))):
            start, end = s.main.step, min((e + 1) * ipe, total)
            with s.epoch({"epoch": e + 1, "start": start, "phase": phase}) as row:
                if phase == "warmup":
                    s.advance(self.warmup_lr, end)
                    row["best_lr"] = self.warmup_lr
                else:
                    lrs = self.candidates(phase, lr)
                    snapshot = s.snapshot()
                    outcomes = s.branch([(snapshot, x) for x in lrs], min(start + alpha, end), self.score)
                    best = self.keep(lrs, outcomes, lr)
                    s.adopt(outcomes[best])
                    lr = lrs[best]
                    if s.running:
                        s.advance(lr, end)
                    row.update(lrs=lrs, scores=[o.score for o in outcomes], best_lr=lr)
            if not s.running:
                break


def worse(best: Any, other: Any, z: float) -> bool:
    """Whether the per-example correctness ``other`` is below ``best`` by ``z`` standard errors of their paired
    difference or more (never when they agree on every example)."""
    d = np.asarray(best, dtype=float) - np.asarray(other, dtype=float)
    if not d.any():
        return False
    return d.mean() >= z * d.std(ddof=1) / math.sqrt(d.size)


ENTRY = Entry(Stpt.TABLE.owner, "search", Stpt.from_call, Stpt.TABLE.names, str(Stpt.TABLE.n_param),
              "STPT (Algorithm 1): each epoch, pre-train alpha iterations with each LR of the set (multipliers of "
              "the current LR: narrow, middle, wide, mix) from one snapshot, keep the best-scoring, main-train "
              "the rest of the epoch with it", Stpt.TABLE.example)
