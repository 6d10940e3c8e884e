"""The progress of a whole bench, range test or tune: one bar on a terminal, one line per finished run elsewhere.

The library reports progress through one callable, ``progress(line)``, which receives a line per finished run
and per phase; a plain function (``print``) keeps working. A :class:`Progress` is such a callable with more:
the library also tells it the runs it will train (:func:`expect_runs`), a tune its compute budget
(:func:`expect_budget`), and each finished run with its validation Top-1 and cost (:func:`report_run`). On a
terminal (stderr) it draws one rich bar for the whole command: runs done of all announced (or epoch-equivalents
of the tune's budget), the time elapsed and left, and the leader (the best validation Top-1 so far and its
policy); the phase lines and failures print above it. Elsewhere (a log, a test) it prints every line, as a plain
callable does.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

LEADER_CHARS = 40  # the leader's policy text in the bar, at most


class Progress:
    """One progress bar for a command on a terminal (see the module); a context manager that draws it from the
    first run announced until it exits (a command that trains nothing draws none).

    ``console``: a rich Console to draw on (default stderr, with a bar only when it is a terminal).
    """

    def __init__(self, console: Any = None):
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.console = console or Console(stderr=True, force_terminal=sys.stderr.isatty())
        self.runs = 0  # runs finished
        self.expected = 0  # runs announced
        self.budget: float | None = None  # a tune's compute in epoch-equivalents: the bar's total when set
        self.spent = 0.0  # epoch-equivalents of the finished runs
        self.leader: tuple[float, str] | None = None  # (validation Top-1, policy)
        self._bar = None
        if self.console.is_terminal:
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=self.console, speed_estimate_period=3600.0)
            self._task = self._bar.add_task(self.describe(), total=None)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None and self._bar.live.is_started:
            self._bar.stop()

    def __call__(self, line: str) -> None:
        """A phase or a run's line: printed (above the bar on a terminal)."""
        if self._bar is None:
            print(line, file=self.console.file, flush=True)
        else:
            from rich.text import Text

            self.console.print(Text(line))

    def expect(self, runs: int) -> None:
        """``runs`` more runs to train (fewer when negative: left to another process)."""
        self.expected = max(0, self.expected + runs)
        self._show()

    def expect_budget(self, epochs: float) -> None:
        """The command's compute in epoch-equivalents: the bar's total, advanced by each run's cost."""
        self.budget = epochs
        self._show()

    def finished(self, line: str, *, policy: str, status: str, val_top1: float | None = None,
                 epochs: float = 0.0) -> None:
        """One finished run of ``epochs`` epoch-equivalents: the bar advances and its leader updates; without a bar
        the line prints, and a failure's line prints above the bar too."""
        self.runs += 1
        self.spent += epochs
        if val_top1 is not None and (self.leader is None or val_top1 > self.leader[0]):
            self.leader = (val_top1, policy)
        if self._bar is None or status == "failed":
            self(line)
        self._show()

    def describe(self) -> str:
        """The bar's text: runs done of those announced (epoch-equivalents of the budget, under one), the leader."""
        text = (f"{self.runs}/{self.expected} runs" if self.budget is None else
                f"{self.spent:.1f}/{self.budget:g} epoch-eq., {self.runs} runs")
        if self.leader is not None:
            policy = self.leader[1]
            policy = policy if len(policy) <= LEADER_CHARS else policy[:LEADER_CHARS - 3] + "..."
            text += f", leader val {self.leader[0]:.2f}% {policy}"
        return text

    def _show(self) -> None:
        if self._bar is not None and (self.expected or self.runs or self.budget):
            if not self._bar.live.is_started:
                self._bar.start()
            total, done = (self.expected, self.runs) if self.budget is None else (self.budget, self.spent)
            self._bar.update(self._task, total=total or None, completed=done, description=self.describe(),
                             refresh=True)


def expect_runs(progress: Callable[[str], None] | None, runs: int) -> None:
    """Tell ``progress`` that ``runs`` more runs will train (a plain callable: nothing)."""
    if hasattr(progress, "expect"):
        progress.expect(runs)


def expect_budget(progress: Callable[[str], None] | None, epochs: float) -> None:
    """Tell ``progress`` the command's compute budget in epoch-equivalents (a plain callable: nothing)."""
    if hasattr(progress, "expect_budget"):
        progress.expect_budget(epochs)


def report_run(progress: Callable[[str], None] | None, line: str, *, policy: str, status: str,
               val_top1: float | None = None, epochs: float = 0.0) -> None:
    """One finished run: a :class:`Progress` advances its bar; a plain callable receives ``line``."""
    if hasattr(progress, "finished"):
        progress.finished(line, policy=policy, status=status, val_top1=val_top1, epochs=epochs)
    elif progress is not None:
        progress(line)
