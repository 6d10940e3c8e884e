"""A tiny task for the tests that start processes: no scikit-learn to import, a few milliseconds an epoch."""

import torch

from lrpilot.tasks import ClassificationTask


def blobs(seed: int = 0) -> ClassificationTask:
    """Four Gaussian blobs in 8 dimensions, 301 training samples (the last batch of 32 has 13), an MLP."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 8, generator=g) * 1.5

    def split(n):
        y = torch.randint(0, 4, (n,), generator=g)
        return centers[y] + torch.randn(n, 8, generator=g), y

    return ClassificationTask(
        name="blobs-mlp", train=split(301), test=split(200), num_classes=4, batch_size=32, epochs=4, lr=0.05,
        make_model_fn=lambda: torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)))
