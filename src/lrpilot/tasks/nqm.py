"""The noisy quadratic model (NQM) as a task: AutoDrop paper (Definition 2, Equations (3)-(4)).

L(x) = 1/2 (x - c)^T A (x - c) with x in R^dim, A = diag(1/10, 2/10, ..., dim/10) and a fresh
c ~ N(0, Sigma) at every step; Sigma is diagonal (A by default). Trained with plain SGD, as the
paper's gradient descent x_{t+1} = x_t - alpha A (x_t - c_t).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn

from lrpilot.errors import LRPilotError
from lrpilot.tasks.base import Evaluation, Task


class QuadraticModel(nn.Module):
    """The NQM's parameter vector ``x`` with the curvature diagonal ``a`` as a buffer."""

    def __init__(self, x0: Tensor, a: Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0.clone())
        self.register_buffer("a", a.clone())

    def forward(self, c: Tensor) -> Tensor:
        """Per-sample loss 1/2 (x - c)^T A (x - c) for each row of ``c`` (batch x dim)."""
        diff = self.x - c.to(self.x)
        return 0.5 * (diff.pow(2) * self.a).sum(dim=-1)


@dataclass(eq=False)
class NQMTask(Task):
    """The NQM task: ``a`` and ``sigma`` are the diagonals of A and Sigma (variances of c).

    An "epoch" is ``iters_per_epoch`` steps, each drawing ``batch_size`` fresh samples of c, so the
    gradient noise has covariance A Sigma A / batch_size. There are no examples: every evaluation split
    ("train", "val", "test") gives the same expected excess loss 1/2 x^T A x (the constant 1/2 tr(A Sigma)
    left out), so LD is 0 and the validation loss equals the test loss.
    """

    a: Tensor
    sigma: Tensor
    batch_size: int = 1
    epochs: int = 100
    iters_per_epoch: int = 100
    lr: float = 0.06
    seed: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0
    name: str = "nqm"
    num_classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    av_period: int | None = 1
    av_window: int = 20

    def __post_init__(self) -> None:
        self.meta = {
            "dataset": "nqm",
            "model": f"quadratic-{len(self.a)}",
            "input_shape": [len(self.a)],
            "n_train": None,
            "seed": self.seed,
            **self.meta,
        }

    def make_model(self) -> QuadraticModel:
        """x0 ~ N(0, I) drawn from the task's ``seed`` (the paper gives no x0), the same for every run."""
        x0 = torch.randn(len(self.a), generator=torch.Generator().manual_seed(self.seed))
        return QuadraticModel(x0, self.a)

    def train_batches(self, generator: torch.Generator) -> Iterator[Tensor]:
        """``iters_per_epoch`` batches of c ~ N(0, Sigma), each ``batch_size`` x dim, drawn from ``generator``."""
        std = self.sigma.sqrt()
        for _ in range(self.iters_per_epoch):
            yield torch.randn(self.batch_size, len(self.a), generator=generator) * std

    def train_loss(self, model: nn.Module, batch: Tensor) -> Tensor:
        """Mean over the batch of 1/2 (x - c)^T A (x - c); its gradient is A (x - mean c)."""
        return model(batch).mean()

    def evaluate(self, model: nn.Module, split: str = "test") -> Evaluation:
        """The expected excess loss E_c[L(x)] - 1/2 tr(A Sigma) = 1/2 x^T A x, for every split."""
        return Evaluation(loss=0.5 * (model.a * model.x.pow(2)).sum().item())


def _sigma_diagonal(sigma: str | Sequence[float] | Tensor, a: Tensor) -> Tensor:
    """The diagonal of Sigma from "A", "identity" or ``dim`` non-negative variances."""
    if isinstance(sigma, str):
        choices = {"A": a, "identity": torch.ones_like(a)}
        if sigma not in choices:
            raise LRPilotError(f"unknown NQM sigma {sigma!r}: use 'A', 'identity' or a list of {len(a)} variances")
        return choices[sigma].clone()
    diag = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    if len(diag) != len(a) or bool((diag < 0).any()) or not bool(diag.isfinite().all()):
        raise LRPilotError(f"NQM sigma must hold {len(a)} finite non-negative variances, got {len(diag)} values")
    return diag


def make_nqm_task(
    dim: int = 200,
    sigma: str | Sequence[float] | Tensor = "A",
    batch_size: int = 1,
    seed: int = 0,
    lr: float = 0.06,
    epochs: int = 100,
    iters_per_epoch: int = 100,
) -> NQMTask:
    """The paper's NQM: dim=200, Sigma=A and alpha=0.06 (its largest LR); 100 epochs of 100 steps."""
    sizes = {"dim": dim, "batch_size": batch_size, "epochs": epochs, "iters_per_epoch": iters_per_epoch}
    for label, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise LRPilotError(f"NQM {label} must be a positive integer, got {value!r}")
    if not lr > 0:
        raise LRPilotError(f"NQM lr must be positive, got {lr!r}")
    a = torch.arange(1, dim + 1, dtype=torch.float32) / 10
    return NQMTask(
        a=a,
        sigma=_sigma_diagonal(sigma, a),
        batch_size=batch_size,
        epochs=epochs,
        iters_per_epoch=iters_per_epoch,
        lr=lr,
        seed=seed,
        meta={"sigma": sigma if isinstance(sigma, str) else "custom"},
    )
