"""Run metrics: the LRBench utility, cost and robustness metrics.

Utility (LRBench paper, Wu et al. 2019, Section III): Top-1 and Top-5 accuracy (percent,
0-100, as in the paper's tables), average confidence AC (Formula (3)), confidence deviation CD
(Formula (4)), confidence deviation across classes CDAC (Formula (5)). Cost: the iteration of
the highest Top-1. Robustness: loss difference LD (Formula (6)). AutoDrop's angular velocity is
in :mod:`lrpilot.angles`.
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
