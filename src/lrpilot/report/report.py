"""The report of a task's benchmark, rendered from the presentation's views, templates and figures (:mod:`lrpilot.present`).

It holds the run settings (task, split sizes, budget in iterations, epochs, batch size, optimizer, versions),
the decision in words, the ranked table of every policy (``top`` keeps the first N of each budget) with the
decision (``*``) and the group tied with the best (``=``) marked, the curves (validation and test Top-1 zoomed to
the second half of training, losses, the LR drawn exactly from each policy's text, angular velocity; mean over
seeds with a min-max band; one legend per panel) of the decision and the best ranked policies of each budget,
and the stored range tests.

``.html`` gives one self-contained file (inline CSS, figures as inline SVG); ``.md`` gives Markdown with its
figures as SVG files in ``<stem>_files/`` beside it, linked relatively. The table's cells and the figures are
the same for both (:mod:`lrpilot.present.views`, :mod:`lrpilot.present.figures`). A task without finished
runs still gets a valid report that says so (and shows its range tests).
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lrpilot.decision.ranking import rank
from lrpilot.errors import LRPilotError
from lrpilot.files import atomic_path
from lrpilot.present import views
from lrpilot.present.figures import curves_svg
from lrpilot.present.render import render
from lrpilot.decision.tables import stale_words
from lrpilot.records import RunRecord

SUFFIXES = (".html", ".md")
FIGURE_POLICIES = 8  # policies drawn per budget: the decision and the best ranked
LEGEND = ("Mean +- sample std over the seeds' ok runs; Top-1 with its 95 % interval over seeds and examples. "
          "Top-1, Top-5: accuracy (%); AC: average confidence; CD: confidence deviation; CDAC: confidence deviation "
          "across classes; LD: test minus train loss; #Param: the policy's parameters; #Iter at best: iteration of "
          "the highest validation Top-1; wall s: training time in seconds; runs: the seeds' runs. Policies with "
          "diverged, failed or pruned runs rank last.")


def write_report(records: Iterable[RunRecord], path: str | os.PathLike, *, task: str,
                 range_tests: Sequence[Mapping[str, Any]] = (), by: str = "utility", top: int | None = None,
                 task_row: Mapping[str, Any] | None = None, stale: bool = False) -> list[Path]:
    """Write the report of ``task``'s runs (with curves and outcomes; ranked ``by``, the first ``top`` of each
    budget, or all; stale runs left out and counted unless ``stale``: :func:`lrpilot.decision.ranking.current`) to
    ``path``; ``range_tests``: stored range-test results; ``task_row``: the store's row of the task
    (``Store.tasks()``), for the settings. Returns the files written."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise LRPilotError(f"cannot write a report to {str(path)!r}: use a file name ending in {' or '.join(SUFFIXES)}")
    records = list(records)
    ranking = rank(records, by=by, top=top, task=task, stale=stale)
    table = views.table(ranking, views.Query(by=by, per=max(1, len(ranking.rows))))
    context = {"title": f"lrpilot report: {task}", "task": task, "table": table, "rows": ranking.rows,
               "meta": f"{time.strftime('%Y-%m-%d %H:%M')}; policies {table.by_words}"
                       + (f"; {stale_words(ranking.stale)}" if ranking.stale else ""),
               "settings": views.settings(task_row or {"name": task}, [r for r in records if r.task == task]),
               "decisions": views.decisions(ranking), "legend": LEGEND, "method": views.method(),
               "empty": ranking.format() if not ranking.rows else ""}
    figures = [(f"curves_{budget}", caption, svg) for budget, caption, svg in _curves(ranking)]
    figures += [(f"range_test_{i}", f"LR range test {i} ({t['kind']})" + (f"; suggestion rule: {t['rule']}"
                                                                         if t["rule"] else ""), t["figure"])
                for i, t in enumerate(map(views.range_test, range_tests), 1) if t["figure"]]
    written: list[Path] = []
    try:
        if path.suffix.lower() == ".html":
            text = render("report.html", crumbs=[], figures=[(caption, svg) for _, caption, svg in figures],
                          **context)
        else:
            folder = path.with_name(f"{path.stem}_files")
            for name, _, svg in figures:
                _write(folder / f"{name}.svg", svg)
                written.append(folder / f"{name}.svg")
            links = [(urllib.parse.quote(f"{folder.name}/{name}.svg"), caption) for name, caption, _ in figures]
            text = render("report.md", figures=links, **context)
        _write(path, text)
    except LRPilotError:  # a refused write: none of the report's files is left
        for file in written:
            file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.with_name(f"{path.stem}_files").rmdir()  # only if empty
        raise
    return [path, *written]


def _write(path: Path, text: str) -> None:
    with atomic_path(path, "the report", "free space or give another -o FILE") as tmp:
        tmp.write_text(text, encoding="utf-8")


def _curves(ranking: Any) -> Iterable[tuple[int, str, str]]:
    """(budget, caption, SVG) of the curves of each budget's decision and best ranked policies."""
    for budget in sorted({r.budget for r in ranking.rows}):
        drawn = views.overlay(ranking, budget=budget, limit=FIGURE_POLICIES)
        groups = {views.label(r): [x for x in r.runs if x.status == "ok"] or list(r.runs) for r in drawn}
        svg = curves_svg(groups)
        if svg:
            yield budget, (f"Budget {budget} iterations: the decision and the best ranked policies (at most "
                           f"{FIGURE_POLICIES}; the table lists all), mean over seeds with a band from min to max; "
                           "Top-1 zoomed to the second half of training; the LR drawn exactly from the policy text"), svg
