"""The terminal and report tables of a ranking: cells such as ``99.28 +- 0.02``, drawn by rich to the terminal's width."""

from __future__ import annotations

import io
import math
import textwrap
from typing import Sequence

from lrpilot.decision.ranking import ORDERS, RankedPolicy, Ranking, check_by
from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

# the table: header, metric, number format, whether to show the std (#Param is the policy's, the same every run);
# the Top-1 columns show the 95 % interval instead
COLUMNS = (("val Top-1 % [95% CI]", "val_top1", ".2f", True), ("test Top-1 % [95% CI]", "top1", ".2f", True),
           ("Top-5 (%)", "top5", ".2f", False), ("AC", "ac", ".4f", True), ("CD", "cd", ".4f", True),
           ("CDAC", "cdac", ".4f", True), ("LD", "ld", ".4f", True), ("#Param", "n_param", ".0f", False),
           ("#Iter at best", "val_iters_at_best", ".0f", True), ("wall s", "wall_s", ".1f", True))
# the table's columns, key -> header (the CLI's --columns names the keys), and the compact default of the terminal
TABLE_COLUMNS = {"rank": "#", "policy": "policy", "budget": "budget", **{m: h for h, m, _, _ in COLUMNS},
                 "runs": "runs", "score": "score"}
DEFAULT_COLUMNS = ("rank", "policy", "budget", "val_top1", "top1", "n_param", "val_iters_at_best", "runs")
NARROW = 100  # a table narrower than this stacks its headers and its cells (the mean above its interval or std)


def table(ranking: Ranking, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The terminal and report table: headers and cells such as ``99.28 +- 0.02``, of ``columns`` (keys of
    :data:`TABLE_COLUMNS`; default every column, the score only when ranked by it)."""
    keys = table_columns("all", ranking.by) if columns is None else list(columns)
    return [TABLE_COLUMNS[k] for k in keys], [[cells[k] for k in keys] for cells in map(_cells, ranking.rows)]


def _cells(r: RankedPolicy) -> dict[str, str]:
    """One row's cell of every column, by key."""
    cells = {"rank": f"{r.rank}{'*' if r.chosen else '=' if r.tied_with_best else ''}", "policy": r.policy,
             "budget": str(r.budget)}
    intervals = {"val_top1": r.val_ci, "top1": r.top1_ci}
    cells |= {m: _interval_cell(r.mean[m], intervals[m]) if m in intervals else
              _cell(r.mean[m], r.std[m] if spread and r.n_ok > 1 else math.nan, fmt)
              for _, m, fmt, spread in COLUMNS}
    return cells | {"runs": _runs_cell(r), "score": _cell(r.score, math.nan, ".3f")}


def format(ranking: Ranking, columns: str | None = None, width: int = 120) -> str:
    """The ranking as a text table at most ``width`` characters wide (long cells wrapped), of the
    :func:`table_columns` chosen by ``columns``; or a line saying that there is nothing to rank."""
    of_task = f" for task {ranking.task}" if ranking.task else ""
    if not ranking.rows:
        return f"no finished runs{of_task} to rank: benchmark policies first (lrpilot bench)" + (
            f"; {stale_words(ranking.stale)}" if ranking.stale else "")
    keys = table_columns(columns, ranking.by)
    headers, cells = table(ranking, keys)
    lines = wrap(f"LR policies{of_task} ranked by {ranking.by}: {describe(ranking.by)}", width)
    lines += _render(keys, headers, cells, width)
    if ranking.stale:
        lines += wrap(stale_words(ranking.stale), width)
    if any(r.tied_with_best for r in ranking.rows):
        from lrpilot.decision.rule import RULE  # numpy: only where a tie is explained

        lines += wrap("= statistically tied with the best on validation (95 % intervals over seeds and examples, "
                      "paired tests against the best, Games-Howell-corrected; in full: lrpilot.decision.stats.METHOD); "
                      f"* the decision, {RULE}", width)
    return "\n".join(lines)


def table_columns(choice: str | None, by: str = "utility") -> list[str]:
    """The table's column keys: ``None`` the compact default (:data:`DEFAULT_COLUMNS`, and ``score`` when ranked
    ``by`` it), ``"all"`` every column (the score only when ranked by it), or comma-separated keys of
    :data:`TABLE_COLUMNS` such as ``"policy,top5"``."""
    if choice is None:
        return [*DEFAULT_COLUMNS, *(["score"] if by == "score" else [])]
    if choice.strip() == "all":
        return [k for k in TABLE_COLUMNS if k != "score" or by == "score"]
    keys = [k.strip() for k in choice.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TABLE_COLUMNS]
    if unknown or not keys:
        wrong = f"unknown {', '.join(unknown)}" if unknown else "names no column"
        raise LRPilotError(f"--columns {clip(choice, 200)}: {wrong}; use all or some of {','.join(TABLE_COLUMNS)}")
    return list(dict.fromkeys(keys))


def describe(by: str) -> str:
    """The ordering ``by`` in words, e.g. ``Top-1 desc, AC desc, CD asc, CDAC asc``."""
    names = {c[1]: c[0].split(" %")[0].removesuffix(" (%)") for c in COLUMNS} | {
        "abs_val_ld": "val |LD|", "score": "score", "val_ac": "val AC", "val_cd": "val CD", "val_cdac": "val CDAC"}
    return ", ".join(f"{names.get(key, key)} {'desc' if desc else 'asc'}" for key, desc in ORDERS[check_by(by)])


def stale_words(n: int) -> str:
    """How many stale runs a ranking left out, and how to see them."""
    return (f"{n} stored run{'s' if n != 1 else ''} trained on other data, model or optimizer than the latest of "
            "their budget (stale fingerprint) left out; --stale shows them")


def _cell(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:{fmt}}" if math.isnan(std) else f"{mean:{fmt}} +- {std:{fmt}}"


def _interval_cell(mean: float, ci: tuple[float, float] | None) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if ci is None else f"{mean:.2f} [{ci[0]:.1f}, {ci[1]:.1f}]"


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, the continuation lines indented."""
    return textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""]


def _render(keys: list[str], headers: list[str], cells: list[list[str]], width: int) -> list[str]:
    """The table of columns ``keys`` drawn by rich within ``width`` characters: text left, numbers right, long cells
    wrapped (below :data:`NARROW` columns, the headers at 12 characters and each number's interval or std below it,
    leaving the policy texts more room)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="", collapse_padding=True)
    narrow = width < NARROW
    for key, h in zip(keys, headers):
        table.add_column(Text(textwrap.fill(h, 12) if narrow and key != "policy" else h), overflow="fold",
                         justify="left" if key in ("rank", "policy") else "right")
    stacked = [i for i, key in enumerate(keys) if narrow and key not in ("policy", "runs")]
    for row in cells:
        table.add_row(*(Text(_stacked(c) if i in stacked else c) for i, c in enumerate(row)))
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def _stacked(cell: str) -> str:
    """A number's cell on two lines: the mean above its interval or std."""
    return cell.replace(" [", "\n[", 1).replace(" +- ", "\n+- ", 1)


def _runs_cell(r: RankedPolicy) -> str:
    if r.n_ok == r.n:
        return str(r.n)
    lost = [f"{k} {name}" for k, name in ((r.n_diverged, "diverged"), (r.n_failed, "failed"),
                                          (r.n_pruned, "pruned")) if k]
    return f"{r.n_ok}/{r.n} ok, {', '.join(lost)}"

