"""The ALR beam tree (the ALR technique's Algorithm 1, as Kim and Yu's slides give it in their background).

The beam holds up to M (``beam``) pairs (model, LR eta_m). Every epoch each member branches N
ways, eta_m * r_n for the scale factors r_n (``factors``), and each of the M*N branches trains the
whole epoch from its member's snapshot; the M branches with the lowest training loss E form the
next beam, and training continues from the best one.

Readings lrpilot takes: the beam starts with one member (the model at k0), so the first epoch has
N branches; E is the loss of the branch's end model on the training split (Algorithm 1's E is the
last batch's loss, one noisy batch); LRs are kept within ``bounds`` (default [k0 / 1000, 1.0]) and
a member's branches that clip to the same LR train once; ties keep the earlier branch.
"""

from __future__ import annotations

import math
from typing import Any

from lrpilot.controllers.factor import FACTOR_LISTS
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import Entry, check_keys, check_number
from lrpilot.policy.text import Call, fmt_number, render
from lrpilot.search.stpt import lr_bounds, scaled

_OWNER = "alr"
_EXAMPLE = "alr(k0=0.1, beam=2, factors=[2, 1, 0.5])"
_DEFAULTS: dict[str, Any] = {"beam": 2, "factors": 3, "bounds": None}


class Alr:
    """The ALR beam tree's settings, validated, and its loop (:meth:`drive`)."""

    def __init__(self, k0: float, beam: Any = 2, factors: Any = 3, bounds: Any = None):
        self.k0 = check_number(_OWNER, "k0", k0, lambda x: x > 0, "a finite number > 0 (the initial LR)")
        self.beam = int(check_number(_OWNER, "beam", beam, lambda x: x >= 1 and x.is_integer(),
                                     "an integer >= 1 (the beam size M)"))
        self.factors = _factors(factors)
        self._factors_text = factors if isinstance(factors, (int, float)) else list(self.factors)
        self.bounds = lr_bounds(_OWNER, bounds, self.k0)
        self._bounds_given = bounds is not None

    holdout = 0.0  # scored on the training split: nothing held out

    @property
    def n_param(self) -> int:
        """Algorithm 1's settings: the initial LR, the beam size M and the scale factors."""
        return 3

    def to_call(self) -> Call:
        """The canonical text's call: k0, beam, factors, bounds, defaults left out."""
        kw = {"k0": self.k0, "beam": self.beam, "factors": self._factors_text,
              "bounds": list(self.bounds) if self._bounds_given else None}
        return Call(_OWNER, kwargs={k: v for k, v in kw.items() if k not in _DEFAULTS or v != _DEFAULTS[k]})

    def __str__(self) -> str:
        return render(self.to_call())

    def drive(self, s: Any) -> None:
        """Algorithm 1 on the search ``s`` (:class:`lrpilot.search.run.Search`), recording every epoch."""
        ipe, total = s.iters_per_epoch, s.main.total
        beam = [(s.snapshot(), self.k0)]
        for e in range(math.ceil(total / ipe)):
            with s.epoch({"epoch": e + 1, "start": e * ipe}) as row:
                starts = [(snapshot, lr) for snapshot, eta in beam for lr in scaled(eta, self.factors, self.bounds)]
                outcomes = s.branch(starts, min((e + 1) * ipe, total), "loss")
                order = sorted(range(len(starts)), key=lambda i: -outcomes[i].score)[:self.beam]
                beam = [(outcomes[i].snapshot, starts[i][1]) for i in order]
                row.update(lrs=[lr for _, lr in starts], scores=[o.score for o in outcomes],
                           beam=[starts[i][1] for i in order], best_lr=starts[order[0]][1])
            if outcomes[order[0]].status == "diverged":
                break
        s.adopt(outcomes[order[0]])


def _factors(value: Any) -> tuple[float, ...]:
    if isinstance(value, (list, tuple)) and value:
        return tuple(check_number(_OWNER, "factors", v, lambda x: x > 0, "a list of scale factors > 0")
                     for v in value)
    name = f"Factor_{fmt_number(value)}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    if name not in FACTOR_LISTS:
        raise LRPilotError(f"{_OWNER}: factors={value!r} must be a list of scale factors r_n > 0 such as [2, 1, 0.5], "
                           "or 3, 5 or 7 (the slides' Factor_3/5/7)")
    return FACTOR_LISTS[name]


def _build(c: Call) -> Alr:
    check_keys(c, ("k0",), tuple(_DEFAULTS), _EXAMPLE)
    return Alr(**c.kwargs)


ENTRY = Entry(_OWNER, "search", _build, ("k0", *_DEFAULTS), "3",
              "ALR beam tree: each epoch every beam member trains the epoch with LR x r_n for each scale factor; "
              "the M branches with the lowest training loss are the next beam", _EXAMPLE)
