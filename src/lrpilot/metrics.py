"""Run metrics: the LRBench utility and robustness metrics and AutoDrop's angular velocity.

Utility (LRBench paper, Wu et al. 2019, Section III): Top-1 and Top-5 accuracy (percent,
0-100, as in the paper's tables), average confidence AC (Formula (3)), confidence deviation CD
(Formula (4)), confidence deviation across classes CDAC (Formula (5)). Cost: the iteration of
the highest Top-1. Robustness: loss difference LD (Formula (6)). Angular velocity: AutoDrop
paper, Definition 1 (Equations (1)-(2)).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from lrpilot.errors import LRPilotError


def _as_probs_labels(probs: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """``probs`` as an N x C float64 tensor and ``labels`` as N int64, after checking shapes."""
    p = torch.as_tensor(probs).detach().to("cpu", torch.float64)
    y = torch.as_tensor(labels).detach().to("cpu")
    if p.dim() != 2:
        raise LRPilotError(f"probs must be an N x C matrix, got shape {tuple(p.shape)}")
    if y.dim() != 1 or len(y) != len(p):
        raise LRPilotError(f"labels must be a vector of N={len(p)} ints to match probs, got shape {tuple(y.shape)}")
    if len(y) == 0:
        raise LRPilotError("probs and labels are empty: evaluate at least one sample")
    if y.is_floating_point() or y.is_complex():
        raise LRPilotError(f"labels must be integers, got dtype {y.dtype}")
    y = y.long()
    if y.min() < 0 or y.max() >= p.shape[1]:
        lo, hi = y.min().item(), y.max().item()
        raise LRPilotError(f"labels must lie in [0, {p.shape[1]}) for C={p.shape[1]} classes, got {lo}..{hi}")
    return p, y


def _std(values: Tensor) -> float:
    """Population standard deviation (divide by n); 0.0 for fewer than two values."""
    return values.std(correction=0).item() if len(values) > 1 else 0.0


def top1(probs: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent: the share of samples whose argmax is the label."""
    return 100.0 * (probs.argmax(dim=1) == labels).double().mean().item()


def classification_metrics(probs: Any, labels: Any) -> dict[str, float]:
    """Top-1 and Top-5 in percent, and AC, CD, CDAC (LRBench Formulas (3)-(5)) as plain floats.

    ``probs`` is N x C (tensor or array), ``labels`` N ints. The prediction is the argmax;
    Top-5 with C < 5 classes is Top-C (100.0). The confidence of a correctly classified sample
    is its true-class probability: AC is its mean and CD its population std over the correct
    samples, both 0.0 when none is correct. CDAC is the population std across classes of the
    per-class AC_i; classes without a correct sample have no AC_i and are left out, so CDAC is
    0.0 when no class (or one class) remains.
    """
    p, y = _as_probs_labels(probs, labels)
    confidence = p.gather(1, y[:, None]).squeeze(1)
    correct = p.argmax(dim=1) == y
    top_k = p.topk(min(5, p.shape[1]), dim=1).indices
    in_top5 = (top_k == y[:, None]).any(dim=1)
    right = confidence[correct]
    per_class = [right[y[correct] == k].mean() for k in y[correct].unique()]
    return {
        "top1": top1(p, y),
        "top5": 100.0 * in_top5.double().mean().item(),
        "ac": right.mean().item() if len(right) else 0.0,
        "cd": _std(right),
        "cdac": _std(torch.stack(per_class)) if per_class else 0.0,
    }


def loss_difference(test_loss: float, train_loss: float) -> float:
    """LD = test_loss - train_loss (LRBench Formula (6)); large values signal over-fitting."""
    return float(test_loss) - float(train_loss)


def _flat(vectors: Tensor | Sequence[Tensor]) -> Tensor:
    """One float64 vector from a tensor or from a list of tensors (flattened and concatenated)."""
    if isinstance(vectors, Tensor):
        return vectors.detach().reshape(-1).double()
    return torch.cat([torch.as_tensor(v).detach().reshape(-1).double() for v in vectors])


def flat_params(model: torch.nn.Module) -> Tensor:
    """The model's parameters as one detached vector; unlike ``parameters_to_vector`` it also takes
    parameters in the channels-last memory format (flattened in their logical order)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def angular_velocity(s_t: Tensor | Sequence[Tensor], s_prev: Tensor | Sequence[Tensor]) -> float:
    """The angle in degrees between two parameter changes, AutoDrop Definition 1, Equation (2).

    ``s_t = x_{t+1} - x_t`` and ``s_prev`` are the changes over two consecutive periods, each a
    tensor or a list of per-parameter tensors. Where the paper adds an epsilon to the norms, a
    zero-length change here gives nan (no direction, so no angle); the cosine is clamped to [-1, 1].
    """
    u, v = _flat(s_t), _flat(s_prev)
    if u.numel() != v.numel():
        raise LRPilotError(f"the two parameter changes differ in size: {u.numel()} vs {v.numel()} entries")
    v = v.to(u.device)
    norms = (u.norm() * v.norm()).item()
    if norms == 0.0:
        return math.nan
    cosine = min(1.0, max(-1.0, torch.dot(u, v).item() / norms))
    return math.degrees(math.acos(cosine))


def iters_at_best(iterations: Sequence[int], top1s: Sequence[float]) -> int:
    """The iteration of the highest Top-1 (LRBench's cost metric), the first one on ties.

    NaN accuracies rank below every number, so an all-NaN curve gives its first iteration.
    """
    if len(iterations) != len(top1s):
        raise LRPilotError(f"iterations ({len(iterations)}) and top1s ({len(top1s)}) differ in length")
    if not len(top1s):
        raise LRPilotError("no evaluations: iters_at_best needs at least one (iteration, top1) pair")
    scores = [-math.inf if math.isnan(float(v)) else float(v) for v in top1s]
    return int(iterations[scores.index(max(scores))])


class AngleTracker:
    """Angular velocity of a parameter vector measured period after period (AutoDrop Definition 1).

    :meth:`update` takes the flat parameters at the end of a period and returns the angle between
    this period's change and the previous one (nan until two changes exist).
    """

    def __init__(self) -> None:
        self.last: Tensor | None = None
        self.change: Tensor | None = None

    def update(self, params: Tensor) -> float:
        """Record the parameters at a period's end; the angle of the last two changes in degrees."""
        params = params.detach().double().clone()
        angle, change = math.nan, None
        if self.last is not None:
            change = params - self.last
            if self.change is not None:
                angle = angular_velocity(change, self.change)
        self.last, self.change = params, change
        return angle

    def state_dict(self) -> dict[str, Tensor | None]:
        """The two stored vectors (tensors: loadable with ``weights_only=True``)."""
        return {"last": self.last, "change": self.change}

    def load_state_dict(self, state: dict[str, Tensor | None]) -> None:
        """Restore :meth:`state_dict`."""
        self.last, self.change = state["last"], state["change"]
