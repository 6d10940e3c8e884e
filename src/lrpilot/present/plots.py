"""Matplotlib figures: LR policies (``lrpilot plot``) and LR range tests (headless, Agg backend)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.files import atomic_path
from lrpilot.policy import Policy


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_policies(policies: Sequence[Policy], steps: int, path: str | os.PathLike, log: bool = False) -> None:
    """Plot the LR of each policy over ``steps`` iterations into an image file (PNG, SVG or PDF)."""
    if steps < 1:
        raise LRPilotError(f"--steps {steps} must be >= 1")
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise LRPilotError(f"cannot write a plot to {str(path)!r}: use a .png, .svg or .pdf file name")
    plt = pyplot()
    t = np.arange(steps)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    # LRs near the float range (k0=1e300) overflow inside numpy and matplotlib's log scale: drawn as they come,
    # without numpy's RuntimeWarning
    with np.errstate(all="ignore"):
        for p in policies:
            ax.plot(t, p.values(t), label=str(p), linewidth=1.4)
        ax.set_xlabel("iteration")
        ax.set_ylabel("learning rate")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        try:
            with atomic_path(path, "the plot", "free space or give another -o FILE") as tmp:
                fig.savefig(tmp, dpi=120)
        finally:
            plt.close(fig)


def range_test_figure(result: Mapping[str, Any]) -> Any | None:
    """The plot of an LR range test result (kind ``decade`` or ``sweep``), or None if it holds nothing to plot."""
    kind = result.get("kind")
    draw = {"decade": _decade, "sweep": _sweep}.get(kind)
    if draw is None:
        raise LRPilotError(f"unknown range test kind {kind!r}: use a result of kind 'decade' or 'sweep'")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    if not draw(ax, result):
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return fig


def _decade(ax: Any, result: Mapping[str, Any]) -> bool:
    """Top-1 vs LR with error bars, the good range [k_low, k_high] and the best LR; False if no point has a Top-1."""
    points = [p for p in result.get("points") or () if _finite(p.get("lr")) and _finite(p.get("top1_mean"))]
    if not points:
        return False
    std = [p.get("top1_std") if _finite(p.get("top1_std")) else 0.0 for p in points]
    ax.errorbar([p["lr"] for p in points], [p["top1_mean"] for p in points], yerr=std, fmt="o-", capsize=3,
                label="Top-1 (mean +- std over seeds)")
    k_low, k_high = result.get("k_low"), result.get("k_high")
    if _finite(k_low) and _finite(k_high):
        ax.axvspan(k_low, k_high, alpha=0.15, color="tab:green", label=f"good range [{k_low:g}, {k_high:g}]")
    if _finite(best := result.get("best_lr")):
        ax.axvline(best, color="tab:red", linestyle="--", label=f"best LR {best:g}")
    ax.set_ylabel("Top-1 (%)")
    ax.set_title("LR range test: Top-1 per LR decade")
    return True


def _sweep(ax: Any, result: Mapping[str, Any]) -> bool:
    """Loss vs LR per seed with each seed's suggestion, the overall suggestion and spread; False without curves."""
    curves = [c for c in result.get("curves") or () if c.get("lr") and c.get("loss")]
    if not curves:
        return False
    firsts = []
    for c in curves:
        lr, loss = floats(c["lr"]), floats(c["loss"])
        loss[~np.isfinite(loss)] = np.nan
        (line,) = ax.plot(lr, loss, linewidth=1.2, label=f"seed {c.get('seed', '?')}")
        if _finite(s := c.get("suggestion")):
            ax.axvline(s, color=line.get_color(), linestyle=":", linewidth=1)
        firsts += [v for v in loss[:1] if math.isfinite(v)]
    if firsts:  # the loss explodes at the end of a sweep: keep the informative part in view
        losses = np.concatenate([floats(c["loss"]) for c in curves])
        low, high = np.nanmin(losses), min(np.nanmax(losses), 1.5 * max(firsts))
        pad = 0.05 * (high - low) or 0.05
        ax.set_ylim(low - pad, high + pad)
    spread = result.get("spread") or ()
    if len(spread) == 2 and all(_finite(v) for v in spread):
        ax.axvspan(*spread, alpha=0.15, color="tab:green", label=f"spread over seeds [{spread[0]:.3g}, {spread[1]:.3g}]")
    if _finite(s := result.get("suggestion")):
        ax.axvline(s, color="black", linestyle="--", label=f"suggested LR {s:.3g} (median)")
    ax.set_ylabel("loss")
    ax.set_title("LR range test: smoothed training loss over an exponential LR sweep")
    return True


def floats(values: Sequence[Any]) -> np.ndarray:
    """A float array with None as NaN."""
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
