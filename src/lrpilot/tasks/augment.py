"""He et al.'s CIFAR training augmentation (2016, §4.2): pad by 4, take a random crop, flip half of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from lrpilot.tasks.base import ClassificationTask


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Each image of the batch ``x`` (N, C, H, W) zero-padded by ``pad``, cropped back to H x W at a random
    offset and flipped left-right with probability 1/2, all drawn from ``generator`` (a CPU generator; the
    indices it draws are moved to ``x``'s device)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    flip = torch.rand(n, 1, generator=generator) < 0.5
    rows = (dy + torch.arange(h)).to(x.device)
    cols = (dx + torch.where(flip, torch.arange(w - 1, -1, -1), torch.arange(w))).to(x.device)
    samples = torch.arange(n, device=x.device)
    crops = padded[samples[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # N, H, W, C
    return crops.permute(0, 3, 1, 2).contiguous()


@dataclass
class AugmentedClassificationTask(ClassificationTask):
    """A :class:`ClassificationTask` whose training batches go through :func:`random_crop_flip`."""

    pad: int = 4

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in super().train_batches(generator):
            yield random_crop_flip(x, generator, self.pad), y
