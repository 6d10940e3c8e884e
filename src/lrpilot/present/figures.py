"""The dashboard's and the report's figures, drawn server-side by matplotlib as inline SVG text.

Training curves are one panel per quantity, each with its own legend: the mean over a policy's seeds as a
line and the spread over seeds as a band (``minmax``: min to max; ``std``: mean +- std). The LR is drawn
exactly, from the policy text (``Policy.values`` at every iteration), or, for an adaptive run, from its
distilled piecewise trajectory. Top-1 axes are zoomed to the second half of training, where policies differ.
"""

from __future__ import annotations

import io
import math
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.present.plots import floats, pyplot, range_test_figure
from lrpilot.records import RunRecord

BANDS = {"minmax": "min to max over seeds", "std": "mean +- std over seeds"}
# panel: (curve key, y label); "lr" is drawn from the policy, not from the curve
PANELS = (("val_top1", "validation Top-1 (%)"), ("test_top1", "test Top-1 (%)"), ("train_loss", "train loss"),
          ("val_loss", "validation loss"), ("test_loss", "test loss"), ("lr", "learning rate (exact)"),
          ("angular_velocity", "angular velocity (rad)"))
MAX_LR_POINTS = 20_000  # the exact LR at every iteration up to this many, else at this many evenly spaced ones
ZOOMED = ("val_top1", "test_top1")
_PYPLOT = threading.Lock()  # pyplot's figure manager is not thread-safe: the web app draws one figure at a time


def svg(fig: Any) -> str:
    """The figure as an SVG element (no XML prolog; text as text, not paths) to inline in HTML; it is closed."""
    plt = pyplot()
    try:
        buf = io.StringIO()
        with plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def check_band(band: str) -> str:
    """``band`` if it names a band of :data:`BANDS`, else LRPilotError."""
    if band not in BANDS:
        raise LRPilotError(f"unknown band {band!r}: use one of {', '.join(BANDS)}")
    return band


def curves_svg(groups: Mapping[str, Sequence[RunRecord]], band: str = "minmax",
               panels: Sequence[str] = tuple(key for key, _ in PANELS)) -> str | None:
    """:func:`curves_figure` as SVG, None if there is nothing to draw."""
    with _PYPLOT:
        fig = curves_figure(groups, band, panels)
        return None if fig is None else svg(fig)


def curves_figure(groups: Mapping[str, Sequence[RunRecord]], band: str = "minmax",
                  panels: Sequence[str] = tuple(key for key, _ in PANELS)) -> Any | None:
    """The panels (keys of :data:`PANELS`) of ``groups`` (legend label -> the runs of one policy) that have data,
    two a row, each with its own legend; None if none has."""
    check_band(band)
    labels = dict(PANELS)
    drawn = [(key, labels[key]) for key in panels if any(_has(runs, key) for runs in groups.values())]
    if not drawn:
        return None
    plt = pyplot()
    cols = min(2, len(drawn))
    rows = -(-len(drawn) // cols)
    height = 3.6 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, height), squeeze=False)
    # fixed margins (in inches over the figure's height): constrained layout would double the drawing time
    fig.subplots_adjust(left=0.075 * 2 / cols, right=0.985, bottom=0.5 / height, top=1 - 0.3 / height, wspace=0.2,
                        hspace=0.9 / 3.1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, ylabel) in zip(axes.flat, drawn):
        for i, (label, runs) in enumerate(groups.items()):
            color = colors[i % len(colors)]
            if key == "lr":
                _lr(ax, runs, label, color)
            else:
                _band(ax, runs, key, label, color, band)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if key == "lr" and _wide(ax):
            ax.set_yscale("log")
        if key in ZOOMED:
            _zoom(ax, groups, key)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(drawn):]:
        fig.delaxes(ax)
    return fig


def range_test_svg(result: Mapping[str, Any]) -> str | None:
    """A stored range test as SVG, None if it holds nothing to plot."""
    with _PYPLOT:
        fig = range_test_figure(result)
        return None if fig is None else svg(fig)


def lr_values(run: RunRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """(iterations, LR) of a run drawn exactly from its policy text or distilled trajectory; None if neither
    is a fixed policy (then its sampled ``lr`` curve is drawn)."""
    from lrpilot.policy import policy

    for text in (run.policy, ((run.record or {}).get("distilled") or {}).get("piecewise")):
        if not text:
            continue
        try:
            p = policy(text)
        except LRPilotError:
            continue
        n = max(int(run.budget), 1)
        t = np.unique(np.linspace(0, n - 1, min(n, MAX_LR_POINTS)).round().astype(np.int64))
        return t, p.values(t)
    return None


def _has(runs: Sequence[RunRecord], key: str) -> bool:
    if key == "lr":
        return bool(runs)
    return any(v is not None and math.isfinite(v) for r in runs for v in r.curves.get(key, ()))


def _lr(ax: Any, runs: Sequence[RunRecord], label: str, color: str) -> None:
    """The LR of the first run (the policy is the same for every seed; an adaptive one's differs per seed)."""
    exact = lr_values(runs[0])
    if exact is not None:
        ax.plot(*exact, label=label, color=color, linewidth=1.3, drawstyle="steps-post")
        return
    x, y = floats(runs[0].curves.get("iteration", ())), floats(runs[0].curves.get("lr", ()))
    keep = np.isfinite(y)
    ax.plot(x[keep], y[keep], label=f"{label} (sampled)", color=color, linewidth=1.3, drawstyle="steps-post")


def seed_band(runs: Sequence[RunRecord], key: str, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean, low, high) of curve ``key`` over ``runs`` at every iteration where any run has a
    finite value; the band is min-max or mean +- std (population) of the values there."""
    values: dict[float, list[float]] = {}
    for r in runs:
        for i, v in zip(r.curves.get("iteration", ()), r.curves.get(key, ())):
            if v is not None and math.isfinite(v):
                values.setdefault(i, []).append(v)
    x = np.array(sorted(values), dtype=float)
    stacked = [np.array(values[i]) for i in sorted(values)]
    mean = np.array([v.mean() for v in stacked])
    if band == "minmax":
        low, high = np.array([v.min() for v in stacked]), np.array([v.max() for v in stacked])
    else:
        std = np.array([v.std() for v in stacked])
        low, high = mean - std, mean + std
    return x, mean, low, high


def _band(ax: Any, runs: Sequence[RunRecord], key: str, label: str, color: str, band: str) -> None:
    x, mean, low, high = seed_band(runs, key, band)
    if not x.size:
        return
    seeds = len({r.seed for r in runs})
    ax.plot(x, mean, color=color, linewidth=1.3, label=f"{label} ({seeds} seeds)" if seeds > 1 else label)
    if seeds > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)


def _zoom(ax: Any, groups: Mapping[str, Sequence[RunRecord]], key: str) -> None:
    """Limit the y axis to the range of the bands over the second half of training (padded)."""
    lows, highs = [], []
    for runs in groups.values():
        x, _, low, high = seed_band(runs, key, "minmax")
        late = x >= x.max() / 2 if x.size else x.astype(bool)
        lows += list(low[late])
        highs += list(high[late])
    if lows:
        low, high = min(lows), max(highs)
        pad = max(0.1 * (high - low), 0.2)
        ax.set_ylim(max(low - pad, 0.0), min(high + pad, 100.0))
        ax.set_title("zoomed to the second half of training", fontsize=8, color="#555")


def _wide(ax: Any) -> bool:
    """Whether the plotted positive values span more than two decades (then a log axis shows them)."""
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.array([])])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    return bool(ys.size) and ys.max() / ys.min() > 100
