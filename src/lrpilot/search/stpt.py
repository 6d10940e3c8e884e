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
- The score is Top-1 at iteration alpha on a validation slice held out of the training data
  (``score=val``, ``val=0.1`` of it; the test split is never looked at), or on the training split
  itself (``score=train``, nothing held out). Tasks without classes score minus the loss. Ties go to
  the LR listed first, as Algorithm 1's strict ``>`` does.
- ``warmup``: epochs (an integer), or a fraction of the run's epochs (default 0.1, the paper's 4 of
  40); ``warmup_lr`` defaults to k0 / 20 (the paper's 0.005 for its 0.1).
"""

from __future__ import annotations

import math
from typing import Any

from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, check_count_or_fraction, check_keys, check_number, half_up
from lrpilot.policy.text import Call, render

#: Table 3's LR sets: multipliers of the current LR.
LR_SETS: dict[str, tuple[float, ...]] = {
    "narrow": (1.25, 1.17, 1.08, 1.00, 0.95, 0.90, 0.85, 0.80),
    "middle": (2.50, 2.00, 1.50, 1.00, 0.85, 0.70, 0.55, 0.40),
    "wide": (5.00, 3.67, 2.33, 1.00, 0.80, 0.60, 0.40, 0.20),
}
#: Table 4's "Mix": each set until this fraction of the run's epochs (epochs 19, 29, 40 of 40).
MIX: tuple[tuple[str, float], ...] = (("narrow", 19 / 40), ("middle", 29 / 40), ("wide", 1.0))

_OWNER = "stpt"
_EXAMPLE = "stpt(k0=0.1, set=mix, alpha=0.08)"
_DEFAULTS: dict[str, Any] = {"set": "mix", "lrs": None, "alpha": 0.08, "warmup": 0.1, "warmup_lr": None,
                             "bounds": None, "score": "val", "val": 0.1}


def lr_bounds(owner: str, value: Any, k0: float) -> tuple[float, float]:
    """``bounds=[min, max]`` of the LR (default [k0 / 1000, 1.0], the paper's cap), checked to hold k0."""
    if value is None:
        value = [k0 / 1000, 1.0]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise LRPilotError(f"{owner}: bounds={value!r} must be [min, max], two LRs > 0 such as [0.0001, 1]")
    lo, hi = (check_number(owner, "bounds", v, lambda x: x > 0, "[min, max] with LRs > 0") for v in value)
    if not lo <= k0 <= hi:
        raise LRPilotError(f"{owner}: k0={k0} is outside bounds=[{lo}, {hi}]; give bounds=[min, max] around k0")
    return lo, hi


def scaled(lr: float, factors: Any, bounds: tuple[float, float]) -> list[float]:
    """``lr`` times each factor, clipped to ``bounds``, without repeats (in the factors' order)."""
    lo, hi = bounds
    return list(dict.fromkeys(min(max(lr * f, lo), hi) for f in factors))


def score_name(owner: str, value: Any) -> str:
    """A name of :data:`lrpilot.search.candidate.SCORES`."""
    from lrpilot.search.candidate import SCORES

    if value not in SCORES:
        raise LRPilotError(f"{owner}: score={value!r} is unknown; known: {', '.join(SCORES)}")
    return value


class Stpt:
    """STPT's settings, validated, and its loop (:meth:`drive`); text ``stpt(k0=0.1, set=mix, alpha=0.08)``."""

    def __init__(self, k0: float, set: Any = "mix", lrs: Any = None, alpha: Any = 0.08, warmup: Any = 0.1,
                 warmup_lr: Any = None, bounds: Any = None, score: str = "val", val: Any = 0.1):
        self.k0 = check_number(_OWNER, "k0", k0, lambda x: x > 0, "a finite number > 0 (the LR after the warmup)")
        if lrs is not None:
            if set != "mix":
                raise LRPilotError(f"{_OWNER}: give set= (multipliers) or lrs= (absolute LRs), not both")
            self.lrs = _numbers("lrs", lrs, "absolute LRs")
        else:
            self.lrs = None
        if isinstance(set, str):
            if set != "mix" and set not in LR_SETS:
                raise LRPilotError(f"{_OWNER}: set={set!r} is unknown; known: mix, {', '.join(LR_SETS)}, "
                                   "or a list of multipliers such as [1.25, 1, 0.8]")
            self.set: Any = set
        else:
            self.set = _numbers("set", set, "multipliers of the current LR")
        self.alpha = check_count_or_fraction(_OWNER, "alpha", alpha, "pre-train iterations per epoch")
        self.warmup = check_count_or_fraction(_OWNER, "warmup", warmup, "warmup epochs", zero=True)
        self.warmup_lr = check_number(_OWNER, "warmup_lr", self.k0 / 20 if warmup_lr is None else warmup_lr,
                                      lambda x: x > 0, "a finite LR > 0")
        self._warmup_lr_given = warmup_lr is not None
        self.bounds = lr_bounds(_OWNER, bounds, self.k0)
        self._bounds_given = bounds is not None
        self.score = score_name(_OWNER, score)
        self.val = check_number(_OWNER, "val", val, lambda x: 0 < x < 1,
                                "a fraction in (0, 1) of the training data held out for scoring")

    @property
    def holdout(self) -> float:
        """The share of the training data held out for scoring (0 unless score=val)."""
        return self.val if self.score == "val" else 0.0

    @property
    def n_param(self) -> int:
        """Algorithm 1's settings: k0, the LR set, alpha, the warmup epochs and the warmup LR."""
        return 5

    def _kwargs(self) -> dict[str, Any]:
        return {"k0": self.k0, "set": self.set, "lrs": self.lrs, "alpha": self.alpha, "warmup": self.warmup,
                "warmup_lr": self.warmup_lr if self._warmup_lr_given else None,
                "bounds": list(self.bounds) if self._bounds_given else None, "score": self.score, "val": self.val}

    def to_call(self) -> Call:
        """The canonical text's call: k0, then the other settings in a fixed order, defaults left out."""
        kw = {k: v for k, v in self._kwargs().items() if k not in _DEFAULTS or v != _DEFAULTS[k]}
        if self.score != "val":
            kw.pop("val", None)
        return Call(_OWNER, kwargs=kw)

    def __str__(self) -> str:
        return render(self.to_call())

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

    def drive(self, s: Any) -> None:
        """Algorithm 1 on the search ``s`` (:class:`lrpilot.search.run.Search`), recording every epoch."""
        ipe, total = s.iters_per_epoch, s.main.total
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
                    best = max(range(len(lrs)), key=lambda i: outcomes[i].score)
                    s.adopt(outcomes[best])
                    lr = lrs[best]
                    if s.running:
                        s.advance(lr, end)
                    row.update(lrs=lrs, scores=[o.score for o in outcomes], best_lr=lr)
            if not s.running:
                break


def _numbers(key: str, value: Any, words: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise LRPilotError(f"{_OWNER}: {key}={value!r} must be a non-empty list of {words} > 0, e.g. {_EXAMPLE}")
    return tuple(check_number(_OWNER, key, v, lambda x: x > 0, f"a list of {words} > 0") for v in value)


def _build(c: Call) -> Stpt:
    check_keys(c, ("k0",), tuple(_DEFAULTS), _EXAMPLE)
    return Stpt(**c.kwargs)


ENTRY = Entry(_OWNER, "search", _build, ("k0", *_DEFAULTS), "5",
              "STPT (Algorithm 1): each epoch, pre-train alpha iterations with each LR of the set (multipliers of "
              "the current LR: narrow, middle, wide, mix) from one snapshot, keep the best-scoring, main-train "
              "the rest of the epoch with it", _EXAMPLE)
