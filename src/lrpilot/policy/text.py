"""The text form shared by policies and controllers: ``NAME(arg, key=value, ...)``.

Grammar (whitespace is free)::

    call  := NAME "(" [arg ("," arg)*] ")" ["@" number]
    arg   := [NAME "="] value
    value := number | "[" [value ("," value)*] "]" | call | NAME

A bare NAME value is a word such as ``mode=linear``; ``nan`` and ``inf`` read as numbers so
that validation can reject them by name. ``@ s`` marks where a piece of a piecewise policy
starts. :func:`parse` gives a :class:`Call`; :func:`render` writes one back canonically, and
:func:`call_to_dict` / :func:`call_from_dict` give the JSON form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

#: the longest policy text read, the deepest nesting of calls and lists, the most digits of an integer
MAX_LENGTH = 10_000
MAX_DEPTH = 50
MAX_DIGITS = 18

_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<sym>[(),=\[\]@]))"
)


@dataclass
class Call:
    """One parsed ``NAME(args..., key=value...)`` with an optional ``@ start``."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    at: float | None = None


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise LRPilotError(f"cannot read {text[pos:pos + 12]!r} at position {pos} of {clip(text)}; "
                               "write a policy as NAME(key=value, ...), e.g. TRI2(k0=0.0001, k1=0.9, l=2000)")
        kind = m.lastgroup
        out.append((kind, m.group(kind), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def nest(self) -> None:
        """One level deeper into a call or a list: refused past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"calls and lists nested more than {MAX_DEPTH} deep")

    def fail(self, what: str) -> LRPilotError:
        where = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        return LRPilotError(f"bad policy text {clip(self.text)}: {what} at position {where}; "
                            "expected NAME(key=value, ...), e.g. COS(k0=0.1, k1=0.001, l=5000)")

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expect(self, sym: str) -> None:
        tok = self.peek()
        if tok is None or tok[1] != sym:
            raise self.fail(f"expected {sym!r}" + (f", found {tok[1]!r}" if tok else ", found the end"))
        self.i += 1

    def call(self) -> Call:
        tok = self.peek()
        if tok is None or tok[0] != "name":
            raise self.fail("expected a name")
        self.i += 1
        c = Call(tok[1])
        self.nest()
        self.expect("(")
        if self.peek() and self.peek()[1] == ")":
            self.i += 1
        else:
            while True:
                self.arg(c)
                tok = self.peek()
                if tok and tok[1] == ",":
                    self.i += 1
                    continue
                self.expect(")")
                break
        if self.peek() and self.peek()[1] == "@":
            self.i += 1
            tok = self.peek()
            if tok is None or tok[0] != "num":
                raise self.fail("expected a step number after '@'")
            self.i += 1
            c.at = _number(tok[1])
        self.depth -= 1
        return c

    def arg(self, c: Call) -> None:
        tok = self.peek()
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok and tok[0] == "name" and nxt and nxt[1] == "=":
            self.i += 2
            if tok[1] in c.kwargs:
                raise self.fail(f"parameter {tok[1]!r} given twice")
            c.kwargs[tok[1]] = self.value()
        else:
            if c.kwargs:
                raise self.fail("a positional argument after key=value")
            c.args.append(self.value())

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.fail("expected a value")
        kind, s, _ = tok
        if kind == "num":
            self.i += 1
            return _number(s)
        if s == "[":
            self.i += 1
            self.nest()
            items = []
            if self.peek() and self.peek()[1] == "]":
                self.i += 1
                self.depth -= 1
                return items
            while True:
                items.append(self.value())
                if self.peek() and self.peek()[1] == ",":
                    self.i += 1
                    continue
                self.expect("]")
                self.depth -= 1
                return items
        if kind == "name":
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            if nxt and nxt[1] == "(":
                return self.call()
            self.i += 1
            return {"nan": math.nan, "inf": math.inf}.get(s.lower(), s)
        raise self.fail(f"unexpected {s!r}")


def _number(s: str) -> int | float:
    """The number ``s`` reads as: an integer of at most MAX_DIGITS digits, else a float (inf when too large,
    which validation refuses by name)."""
    if re.fullmatch(r"[-+]?\d+", s):
        if len(s.lstrip("+-")) > MAX_DIGITS:
            raise LRPilotError(f"the integer {clip(s, 40)} in a policy text has {len(s.lstrip('+-'))} digits; "
                               f"integers have at most {MAX_DIGITS} (write large numbers as e.g. 1e20)")
        return int(s)
    mantissa, _, exponent = s.lower().partition("e")
    if len(mantissa.lstrip("+-")) > 400 or len(exponent.lstrip("+-")) > 6:
        raise LRPilotError(f"the number {clip(s, 40)} in a policy text is too long; write it with at most "
                           "17 significant digits, e.g. 1.5e-05")
    return float(s)


def parse(text: str) -> Call:
    """Parse policy or controller text into a :class:`Call`."""
    if not isinstance(text, str) or not text.strip():
        raise LRPilotError(f"empty policy text {clip(text)}; write e.g. FIX(k0=0.01)")
    if len(text) > MAX_LENGTH:
        raise LRPilotError(f"policy text {clip(text)} is too long: at most {MAX_LENGTH:,} characters")
    p = _Parser(text)
    c = p.call()
    if p.peek() is not None:
        raise p.fail(f"unexpected {p.peek()[1]!r} after the end")
    return c


def fmt_number(x: float | int) -> str:
    """Shortest text that reads back as the same number (integral values without '.0')."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def fmt_sig(x: float, digits: int) -> str:
    """``x`` rounded to ``digits`` significant digits, as policy text (``fmt_sig(0.123456, 3)`` is ``0.123``)."""
    return fmt_number(float(f"{x:.{digits}g}"))


def _render_value(v: Any) -> str:
    if isinstance(v, Call):
        return render(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_render_value(x) for x in v) + "]"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_number(v)
    return str(v)


def render(c: Call) -> str:
    """The canonical text of a call: arguments in the order given, numbers by :func:`fmt_number`."""
    parts = [_render_value(a) for a in c.args] + [f"{k}={_render_value(v)}" for k, v in c.kwargs.items()]
    at = "" if c.at is None else f"@{fmt_number(c.at)}"
    return f"{c.name}({', '.join(parts)}){at}"


def call_to_dict(c: Call) -> dict[str, Any]:
    """JSON form: ``{"fn": name, key: value, ..., "args": [...], "at": s}`` (last two only if set)."""
    conv = lambda v: call_to_dict(v) if isinstance(v, Call) else [conv(x) for x in v] if isinstance(v, list) else v  # noqa: E731
    d: dict[str, Any] = {"fn": c.name, **{k: conv(v) for k, v in c.kwargs.items()}}
    if c.args:
        d["args"] = [conv(a) for a in c.args]
    if c.at is not None:
        d["at"] = c.at
    return d


def call_from_dict(d: dict[str, Any]) -> Call:
    """Inverse of :func:`call_to_dict`."""
    if not isinstance(d, dict) or "fn" not in d:
        raise LRPilotError(f"a policy dict needs a 'fn' key, got {clip(d)}")
    conv = lambda v: call_from_dict(v) if isinstance(v, dict) else [conv(x) for x in v] if isinstance(v, list) else v  # noqa: E731
    rest = {k: conv(v) for k, v in d.items() if k not in ("fn", "args", "at")}
    return Call(d["fn"], [conv(a) for a in d.get("args", [])], rest, d.get("at"))
