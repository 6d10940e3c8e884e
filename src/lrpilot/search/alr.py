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

from lrpilot.policy.base import Entry
from lrpilot.policy.params import (Configured, Param, ParamTable, count, factor_list, factor_list_number, lr_bounds,
                                   number)
from lrpilot.search.stpt import scaled, search_bounds


def _factors_as_given(owner: str, key: str, value: Any, earlier: dict[str, Any]) -> int | tuple[float, ...]:
    """A factor list, kept as its text gave it: a list stays a list, even one equal to Factor_3/5/7."""
    factors = factor_list(owner, key, value, earlier)
    return factors if isinstance(value, (list, tuple)) else factor_list_number(factors)


class Alr(Configured):
    """The ALR beam tree's settings, validated, and its loop (:meth:`drive`)."""

    #: Algorithm 1's settings in canonical order (``bounds`` is written when given); #Param counts the
    #: initial LR, the beam size M and the scale factors.
    TABLE = ParamTable("alr", "alr(k0=0.1, beam=2, factors=[2, 1, 0.5])", 3, (
        Param("k0", number(lambda x: x > 0, "a finite number > 0 (the initial LR)")),
        Param("beam", count("the beam size M"), 2),
        Param("factors", _factors_as_given, 3),
        Param("bounds", lr_bounds, None),
    ))

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.factors = factor_list(self.TABLE.owner, "factors", self.params["factors"], self.params)
        self.bounds = search_bounds(self.TABLE.owner, self.params)

    def drive(self, s: Any) -> None:
        """Algorithm 1 on the search ``s`` (:class:`lrpilot.search.run.Search`), recording every epoch."""
        ipe, total = s.iters_per_epoch, s.total
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


ENTRY = Entry(Alr.TABLE.owner, "search", Alr.from_call, Alr.TABLE.names, str(Alr.TABLE.n_param),
              "ALR beam tree: each epoch every beam member trains the epoch with LR x r_n for each scale factor; "
              "the M branches with the lowest training loss are the next beam", Alr.TABLE.example)
