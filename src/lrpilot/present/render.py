"""The Jinja2 templates of the dashboard and the report (``templates/``), with the filters they share."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import jinja2

from lrpilot.present.views import KEY


@lru_cache(maxsize=2)
def environment(markdown: bool = False) -> Any:
    """The template environment: HTML-escaping for ``.html`` templates, none for Markdown (whose template escapes
    each cell with the ``md`` filter)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("lrpilot.present", "templates"),
                             autoescape=not markdown, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters.update(num=num, md=md, parts=parts)
    env.globals["marks_key"] = KEY
    return env


def render(name: str, **context: Any) -> str:
    """Template ``name`` rendered with ``context``."""
    return environment(name.endswith(".md")).get_template(name).render(**context)


def num(value: Any, fmt: str = ".4g") -> str:
    """A number for a table cell (``-`` for None or NaN); other values as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return format(value, fmt) if isinstance(value, float) else str(value)


def parts(cell: str) -> tuple[str, str]:
    """A table cell split into its value and its spread, for two lines: ``("84.20", "[79.7, 88.7]")`` of
    ``84.20 [79.7, 88.7]``, ``("0.35", "+- 0.01")`` of ``0.35 +- 0.01``; ``(cell, "")`` otherwise."""
    for sep, keep in ((" +- ", "+- "), (" [", "[")):
        if sep in cell:
            value, rest = cell.split(sep, 1)
            return value, keep + rest
    return cell, ""


def md(text: Any) -> str:
    """Text safe in a Markdown table cell: HTML escaped, pipes and emphasis characters backslashed."""
    import html

    text = html.escape(str(text), quote=False)
    for c in "\\|*_[]`":
        text = text.replace(c, "\\" + c)
    return text
