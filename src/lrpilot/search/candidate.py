"""Candidates: a stretch of training from a snapshot at one LR, run by any executor.

A candidate is plain data (:class:`Candidate`: where the task comes from, a snapshot, an LR,
where to stop, how to score, the run's settings), so that it can be pickled to a worker process,
a Ray worker or a ``torch.distributed`` rank. :func:`run_candidate` continues the engine's run
from the snapshot under a constant LR and returns its score and its end snapshot (:class:`Outcome`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lrpilot.controllers.base import Context, Controller
from lrpilot.controllers.scheduler import set_lr
from lrpilot.distill import merged
from lrpilot.engine import Run, RunConfig, evaluate
from lrpilot.execution.snapshot import pack, unpack
from lrpilot.metrics import top1
from lrpilot.tasks import TaskRef
from lrpilot.tasks.base import Evaluation, Task


class SearchLR(Controller):
    """The controller of a search's runs: one LR, set by the search, for every param group.

    Its state carries the ``path`` of LRs the run was trained with, ``[[step, lr], ...]``, so a
    winner's snapshot brings its own trajectory along (the record that :mod:`distill` reads).
    """

    def __init__(self, text: str, lr: float, n_param: int):
        self.text, self.lr, self._n_param = text, lr, n_param
        self.path: list[list[float]] = []
        self.epochs: list[dict[str, Any]] = []
        self.optimizer: torch.optim.Optimizer | None = None

    def __str__(self) -> str:
        return self.text

    @property
    def n_param(self) -> int:
        return self._n_param

    def start(self, ctx: Context) -> None:
        self.optimizer = ctx.optimizer
        self.set(self.lr, 0)

    def set(self, lr: float, step: int) -> None:
        """Train with ``lr`` from iteration ``step`` on."""
        self.lr, self.path = lr, merged([*self.path, [step, lr]])
        set_lr(self.optimizer, lr)

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "path": [list(p) for p in self.path]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.path = float(state["lr"]), [list(p) for p in state["path"]]
        set_lr(self.optimizer, self.lr)

    def record(self) -> dict[str, Any]:
        """The LR path and the search's per-epoch records (candidates' LRs and scores, the choice, the cost)."""
        return {"trajectory": [list(p) for p in self.path], "epochs": [dict(e) for e in self.epochs]}


# --- where the task comes from ------------------------------------------------------------------


def resolve(source: TaskRef | Task) -> Task:
    """The task of a candidate's source: a :class:`TaskRef` (built once per process), or the task itself."""
    return source.build() if isinstance(source, TaskRef) else source


# --- scores: higher is better ---------------------------------------------------------------------


Score = tuple[float, "np.ndarray | None"]  # the score, and the per-example correctness it is the mean of (or None)


def _accuracy(ev: Evaluation) -> Score:
    """Top-1 in percent with each example's correctness; minus the loss (no correctness) for tasks without classes."""
    if ev.probs is None:
        return -ev.loss, None
    return top1(ev.probs, ev.labels), (ev.probs.argmax(1) == ev.labels).cpu().numpy()


def score_val(run: Run) -> Score:
    """Top-1 on the task's validation split (STPT's default; the test split is never looked at)."""
    return _accuracy(evaluate(run.model, run.task, "val"))


def score_train(run: Run) -> Score:
    """Top-1 on the training split the candidate trains on."""
    return _accuracy(evaluate(run.model, run.task, "train"))


def score_loss(run: Run) -> Score:
    """Minus the loss on the training split (ALR keeps the lowest training loss)."""
    return -evaluate(run.model, run.task, "train").loss, None


#: Scores by the names the text form uses (``score=val``); add an entry to make yours nameable. Each gives the score
#: (higher is better) and, for an accuracy, the per-example correctness that searches compare candidates on, paired;
#: a function of yours may give the score alone (a float), which searches then compare as it is.
SCORES: dict[str, Callable[[Run], Score | float]] = {"val": score_val, "train": score_train, "loss": score_loss}


# --- one candidate ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """Train from ``snapshot`` with ``lr`` until iteration ``until``, then score by ``score`` (a SCORES name).

    ``text``, ``n_param`` and ``config`` are the search's run settings: a candidate evaluates and checks
    divergence where the search's own run would.
    """

    source: Any  # a TaskRef (rebuilt in each worker), or the Task itself in this process
    snapshot: bytes
    lr: float
    until: int
    score: str
    text: str
    n_param: int
    config: RunConfig


@dataclass
class Outcome:
    """A candidate's score (-inf if it diverged), end snapshot, status and compute; ``correct``: the per-example
    correctness behind an accuracy score (None for a loss score or a diverged run)."""

    score: float
    snapshot: bytes
    status: str
    iterations: int
    samples: int
    correct: np.ndarray | None = None


def new_run(source: Any, text: str, lr: float, n_param: int, config: RunConfig) -> Run:
    """An engine run of the source's task under a :class:`SearchLR` at ``lr``."""
    return Run(resolve(source), SearchLR(text, lr, n_param), config)


def run_candidate(c: Candidate) -> Outcome:
    """Continue the run in ``c.snapshot`` with ``c.lr`` up to ``c.until``; score it and snapshot its end."""
    run = new_run(c.source, c.text, c.lr, c.n_param, c.config)
    run.restore(unpack(c.snapshot))
    iterations, samples = segment(run, c.lr, c.until)
    value = (-math.inf, None) if run.status == "diverged" else SCORES[c.score](run)
    score, correct = value if isinstance(value, tuple) else (value, None)
    return Outcome(score, pack(run.state()), run.status, iterations, samples, correct)


def segment(run: Run, lr: float, until: int) -> tuple[int, int]:
    """Train ``run`` with ``lr`` up to iteration ``until``; the iterations and samples that took."""
    run.controller.set(lr, run.step)
    step, samples = run.step, run.samples
    run.run_until(until)
    return run.step - step, run.samples - samples
