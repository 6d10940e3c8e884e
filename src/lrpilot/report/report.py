"""The report of a task's benchmark: the ranked table, LR, accuracy and loss curves, and LR range tests.

``.html`` gives one self-contained file (inline CSS, figures as base64 PNGs); ``.md`` gives
Markdown with its figures as PNG files in ``<stem>_files/`` beside it, linked relatively. A task
without finished runs still gets a valid report that says so (and shows its range tests).
"""

from __future__ import annotations

import base64
import html
import math
import os
import statistics
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from lrpilot.bench.rank import RankedPolicy, Ranking, describe, rank
from lrpilot.errors import LRPilotError
from lrpilot.files import atomic_path
from lrpilot.report.plots import curves_figure, png, range_test_figure
from lrpilot.store.base import RunRecord

SUFFIXES = (".html", ".md")
LEGEND = ("Mean +- sample std over the seeds' ok runs. Top-1, Top-5: test accuracy (%); AC: average confidence; "
          "CD: confidence deviation; CDAC: confidence deviation across classes; LD: test minus train loss; "
          "#Param: the policy's parameters; #Iter at best: iteration of the highest Top-1; wall s: training time. "
          "Policies with diverged or failed runs rank last.")
CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;white-space:nowrap}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
.meta,.legend{color:#555;font-size:13px}figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555}"""


def write_report(records: Iterable[RunRecord], path: str | os.PathLike, *, task: str,
                 range_tests: Sequence[Mapping[str, Any]] = (), by: str = "utility",
                 top: int | None = 10) -> list[Path]:
    """Write the report of ``task``'s runs (ranked ``by``, the first ``top``) to ``path``; return the files written."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise LRPilotError(f"cannot write a report to {str(path)!r}: use a file name ending in {' or '.join(SUFFIXES)}")
    ranking = rank(records, by=by, top=top, task=task)
    figures = [(name, caption, png(fig)) for name, caption, fig in _figures(ranking, range_tests)]
    title = f"lrpilot report: {task}"
    meta = f"{time.strftime('%Y-%m-%d %H:%M')}; policies ranked by {by} ({describe(by)})"
    written = [path]
    if path.suffix.lower() == ".html":
        text = _html(title, meta, ranking, figures)
    else:
        folder = path.with_name(f"{path.stem}_files")
        for name, _, data in figures:
            with atomic_path(folder / f"{name}.png") as tmp:
                tmp.write_bytes(data)
            written.append(folder / f"{name}.png")
        text = _markdown(title, meta, ranking, [(f"{folder.name}/{name}.png", caption) for name, caption, _ in figures])
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return written


def _figures(ranking: Ranking, range_tests: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """(file name, caption, figure) of each plot there is data for."""
    several = len({r.budget for r in ranking.rows}) > 1
    plotted = [(f"#{r.rank} {r.policy}" + (f" ({r.budget} it)" if several else ""), _plotted(r)) for r in ranking.rows]
    lr = _series([(label, runs[:1]) for label, runs in plotted], "lr")
    if lr:
        yield "lr", "Learning rate of the ranked policies (one run each)", curves_figure([("learning rate", lr)])
    panels = [(ylabel, series) for ylabel, key in (("test Top-1 (%)", "test_top1"), ("train loss", "train_loss"),
                                                   ("test loss", "test_loss")) if (series := _series(plotted, key))]
    if panels:
        yield "curves", "Test Top-1 and losses of the ranked policies (mean over seeds)", curves_figure(panels)
    for i, result in enumerate(range_tests, 1):
        if (fig := range_test_figure(result)) is not None:
            rule = f"; suggestion rule: {result['rule']}" if result.get("rule") else ""
            yield f"range_test_{i}", f"LR range test {i} ({result['kind']}){rule}", fig


def _plotted(row: RankedPolicy) -> list[RunRecord]:
    """The runs whose curves stand for the policy: its ok runs, or all of them if none is ok."""
    return [r for r in row.runs if r.status == "ok"] or list(row.runs)


def _series(plotted: Sequence[tuple[str, Sequence[RunRecord]]], key: str) -> dict[str, tuple[list, list]]:
    """Legend label -> the mean curve ``key`` of the label's runs, for the labels with any point."""
    curves = {label: _curve(runs, key) for label, runs in plotted}
    return {label: c for label, c in curves.items() if c[0]}


def _curve(runs: Sequence[RunRecord], key: str) -> tuple[list[float], list[float]]:
    """Curve ``key`` vs iteration, the mean over ``runs`` at each iteration where any has a finite value."""
    values: dict[float, list[float]] = {}
    for r in runs:
        for i, v in zip(r.curves.get("iteration", ()), r.curves.get(key, ())):
            if v is not None and math.isfinite(v):
                values.setdefault(i, []).append(v)
    iterations = sorted(values)
    return iterations, [statistics.fmean(values[i]) for i in iterations]


def _html(title: str, meta: str, ranking: Ranking, figures: list[tuple[str, str, bytes]]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>", f"<p class=\"meta\">{e(meta)}</p>"]
    if ranking.rows:
        headers, cells = ranking.table()
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" if i == 1 else f"<td class=\"n\">{e(c)}</td>"
                                   for i, c in enumerate(row)) + "</tr>" for row in cells]
        parts += ["</tbody></table>", f"<p class=\"legend\">{e(LEGEND)}</p>"]
    else:
        parts.append(f"<p>{e(ranking.format())}</p>")
    for _, caption, data in figures:
        parts.append(f"<figure><img src=\"data:image/png;base64,{base64.b64encode(data).decode('ascii')}\" "
                     f"alt=\"{e(caption)}\"><figcaption>{e(caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _markdown(title: str, meta: str, ranking: Ranking, figures: list[tuple[str, str]]) -> str:
    lines = [f"# {_md(title)}", "", _md(meta), ""]
    if ranking.rows:
        headers, cells = ranking.table()
        lines.append("| " + " | ".join(map(_md, headers)) + " |")
        lines.append("|" + "|".join(":---" if i == 1 else "---:" for i in range(len(headers))) + "|")
        lines += ["| " + " | ".join(map(_md, row)) + " |" for row in cells]
        lines += ["", _md(LEGEND)]
    else:
        lines.append(_md(ranking.format()))
    for link, caption in figures:
        lines += ["", f"![{_md(caption)}]({urllib.parse.quote(link)})", "", f"*{_md(caption)}*"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Text safe in a Markdown table cell: HTML escaped, pipes and emphasis characters backslashed."""
    text = html.escape(text, quote=False)
    for c in "\\|*_[]`":
        text = text.replace(c, "\\" + c)
    return text
