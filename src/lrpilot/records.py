"""The records every layer passes around: a finished run (:class:`RunResult`) and a stored one (:class:`RunRecord`).

Plain data, no torch: the engine and the searches return a RunResult, the store keeps it and
gives back RunRecords, ranking, recommendation and reports read those.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lrpilot import outcomes as _outcomes

@dataclass
class RunResult:
    """One finished training run: identity, status, LRBench metrics, cost, curves, the controller's record
    (an adaptive one's ``trajectory``, ``[[step, lr], ...]``), the budget in iterations it was given and the
    final model's per-example correctness on each split (``outcomes``: ``{"val": ..., "test": ...}`` as
    :func:`lrpilot.outcomes.encode` writes it; ok runs of classification tasks, else empty)."""

    task: str
    policy: str
    seed: int
    status: str
    metrics: dict[str, Any]
    cost: dict[str, Any]
    curves: dict[str, list]
    record: dict[str, Any] = field(default_factory=dict)
    budget: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: NaN and infinity become None."""
        return json_safe({"task": self.task, "policy": self.policy, "seed": self.seed, "status": self.status,
                           "budget": self.budget, "metrics": self.metrics, "cost": self.cost, "curves": self.curves,
                           "record": self.record, "outcomes": self.outcomes})

    def summary(self) -> str:
        """A few human-readable lines."""
        m, c = self.metrics, self.cost
        lines = [f"{self.task}  {self.policy}  seed {self.seed}: {self.status}"]
        if m.get("top1") is not None:
            lines.append(f"  Top-1 {m['top1']:.2f}%  (best {m['best_top1']:.2f}% at iteration {m['iters_at_best']})  "
                         f"Top-5 {m['top5']:.2f}%  AC {m['ac']:.4f}  CD {m['cd']:.4f}  CDAC {m['cdac']:.4f}")
        if m.get("test_loss") is not None:
            ld = "" if m.get("ld") is None else f"  LD {m['ld']:.4f}"
            lines.append(f"  test loss {m['test_loss']:.4f}  train loss {m['train_loss']:.4f}{ld}  #Param {m['n_param']}")
        lines.append(f"  {c['iterations']} iterations, {c['samples']} samples ({c['epoch_equivalents']:.2f} "
                     f"epoch-equivalents), {c['wall_s']:.1f} s on {c['workers']} worker(s)")
        return "\n".join(lines)


@dataclass
class RunRecord:
    """One stored run: the fields of :class:`RunResult` plus the store's own."""

    id: int
    task: str
    policy: str
    seed: int
    budget: int
    status: str
    metrics: dict[str, Any] | None
    cost: dict[str, Any] | None
    curves: dict[str, list]
    record: dict[str, Any] | None
    host: str | None
    created_at: float
    started_at: float | None
    heartbeat_at: float | None
    finished_at: float | None
    purpose: str = "bench"  # "bench", or "range-test" for a range test's probe runs
    outcomes: dict[str, str] | None = None  # loaded only when asked (Store.runs(outcomes=True))
    fingerprint: str | None = None  # lrpilot.fingerprint.digest of what it was trained on; None: not recorded

    @property
    def has_validation(self) -> bool:
        """Whether the run was evaluated on a validation split (runs stored before schema v5 were not)."""
        return (self.metrics or {}).get("val_top1") is not None

    def correct(self, split: str) -> np.ndarray | None:
        """The final model's per-example correctness on ``split`` ("val" or "test"); None when not stored."""
        text = (self.outcomes or {}).get(split)
        return None if text is None else _outcomes.decode(text)

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (NaN and infinity kept as floats)."""
        return asdict(self)


def json_safe(x: Any) -> Any:
    """``x`` (dicts, lists and scalars) with NaN and infinity replaced by None, for strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def stale(stored: str | None, current: str | None) -> bool:
    """Whether a run stored with fingerprint ``stored`` was trained on something else than ``current`` describes:
    both known and different (a run stored without one is not stale)."""
    return stored is not None and current is not None and stored != current
