"""He et al.'s crop-and-flip augmentation: every output is a padded crop of its input, maybe flipped."""

import torch
import torch.nn.functional as F

from lrpilot.tasks.augment import random_crop_flip


def candidates(image, pad):
    """All crops of the zero-padded ``image``, unflipped and flipped."""
    c, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    crops = [padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return crops + [crop.flip(-1) for crop in crops]


def test_each_output_is_a_crop_or_flipped_crop():
    x = torch.randn(64, 3, 6, 5)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.is_contiguous()
    for image, result in zip(x, out):
        assert any(torch.equal(result, crop) for crop in candidates(image, 2))


def test_draws_vary_and_follow_the_generator():
    x = torch.randn(256, 1, 4, 4)
    a = random_crop_flip(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(2)))
    flipped = sum(torch.equal(r, i.flip(-1)) for r, i in zip(random_crop_flip(x, torch.Generator(), pad=0), x))
    assert 80 < flipped < 176  # about half of 256
