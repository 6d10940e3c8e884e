"""The words lrpilot stores and shows, defined once: run statuses and purposes, metric names, and ``clip``.

Torch-free and store-free: the store's contract, the decision, the grid and the presentation all read them here.
"""

from __future__ import annotations

STATUSES = ("queued", "running", "ok", "diverged", "failed", "pruned")
FINISHED = ("ok", "diverged", "failed", "pruned")  # pruned: stopped by successive halving, not a full-budget result
LOST = ("failed", "diverged", "pruned")  # finished without a full-budget result: no part in a decision
PURPOSES = ("bench", "range-test")  # why a run was trained: a benchmark, or a decade range test's probe

SELECTION = "val_top1"  # what every selection reads: the validation split, never the test split
SPLIT_METRICS = ("top1", "top5", "ac", "cd", "cdac", "best_top1", "iters_at_best")  # LRBench's, per split
LOSSES = ("ld", "train_loss", "test_loss")  # the test split's loss gap (LD) and the final losses
CURVES = ("iteration", "lr", "train_loss", "test_loss", "test_top1", "val_loss", "val_top1", "angular_velocity")
# a ranking's aggregated values: the validation ones it selects on, the test ones it reports, the cost
RANKED = ("val_top1", "val_ac", "val_cd", "val_cdac", "val_iters_at_best", "abs_val_ld", "val_loss",
          "top1", "top5", "ac", "cd", "cdac", "best_top1", "iters_at_best", "ld", "abs_ld", "train_loss",
          "test_loss", "n_param", "iterations", "samples", "epochs", "wall_s")


def clip(value: object, n: int = 80, *, quote: bool = True) -> str:
    """``value`` cut to its first ``n`` characters, for a message that echoes an input or an error: a 5 MB policy
    text is not echoed whole. ``quote``: its ``repr`` (text quoted), the cut saying the whole length; else the
    text on one line, a cut marked ``...``."""
    if not quote:
        line = " ".join(str(value).split())
        return line if len(line) <= n else line[:n] + "..."
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= n else text[:n] + f"... ({len(text)} characters)"
    return repr(value) if len(value) <= n else repr(value[:n]) + f"... ({len(value)} characters)"
