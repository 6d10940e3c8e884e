"""Matplotlib figures of LR policies."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy
from lrpilot.report.files import atomic_path


def plot_policies(policies: Sequence[Policy], steps: int, path: str | os.PathLike, log: bool = False) -> None:
    """Plot the LR of each policy over ``steps`` iterations into an image file (PNG, SVG or PDF)."""
    if steps < 1:
        raise LRPilotError(f"--steps {steps} must be >= 1")
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise LRPilotError(f"cannot write a plot to {str(path)!r}: use a .png, .svg or .pdf file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(steps)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for p in policies:
        ax.plot(t, p.values(t), label=str(p), linewidth=1.4)
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
