"""The command line's argument types: every number, device and output path is checked when the arguments are
parsed, before any work, and a bad one is a one-line usage error that names the flag and the value."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

INT64_MAX = 2**63 - 1  # SQLite's INTEGER and torch.manual_seed's range: what stores steps and seeds


class Bad(argparse.ArgumentTypeError):
    """A bad flag value: ``rest`` says what is wrong with ``value``; the parser writes ``--flag VALUE rest``."""

    def __init__(self, value: str, rest: str):
        super().__init__(f"{clip(value)} {rest}")
        self.value, self.rest = value, rest


def _flagged(flag: str, read: Callable[[str], object]) -> Callable[[str], object]:
    """``read`` whose :class:`Bad` values are said as ``--flag VALUE what is wrong`` (one line)."""

    def flagged(text: str):
        try:
            return read(text)
        except Bad as e:
            v = e.value
            shown = v if v and len(v) <= 80 and not any(c.isspace() or not c.isprintable() for c in v) else clip(v)
            raise argparse.ArgumentTypeError(f"{FLAGGED}{flag} {shown} {e.rest}") from None

    flagged.__name__ = getattr(read, "__name__", "value")
    return flagged


FLAGGED = "\x01"  # marks a message that names its flag itself (no "argument --flag:" prefix)


def flag_types(parser: argparse.ArgumentParser) -> None:
    """Wrap the types of ``parser``'s options so that their errors name the flag and the value."""
    for action in parser._actions:
        if action.type is not None and action.option_strings and getattr(action.type, "__module__", "") == __name__:
            action.type = _flagged(max(action.option_strings, key=len), action.type)


def _whole(low: int, high: int = INT64_MAX, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (``1e4`` reads as 10000)."""

    def read(text: str) -> int:
        value: int | None = None
        t = text.strip()
        if len(t) <= 40:
            try:
                value = int(t)
            except ValueError:
                try:
                    f = float(t)
                    value = int(f) if math.isfinite(f) and f.is_integer() else None
                except (ValueError, OverflowError):
                    value = None
        if value is None:
            raise Bad(text, f"is not {what}")
        if value > high:
            raise Bad(text, f"is too large: at most {high}"
                                             + (" (2**63 - 1, what a 64-bit integer holds)" if high == INT64_MAX else ""))
        if value < low:
            raise Bad(text, f"must be >= {low}")
        return value

    read.__name__ = what
    return read


def _real(low: float, high: float = math.inf, low_open: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number in (low, high] (``[low, high]`` with ``low_open=False``)."""

    def read(text: str) -> float:
        try:
            value = float(text) if len(text) <= 400 else math.nan
        except ValueError:
            raise Bad(text, "is not a number") from None
        if not math.isfinite(value):
            raise Bad(text, "must be a finite number")
        if (value <= low if low_open else value < low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise Bad(text, f"must be {bound}"
                                             + ("" if high == math.inf else f" and <= {high:g}"))
        return value

    read.__name__ = "number"
    return read


STEPS = _whole(1, what="a whole number of iterations")
SWEEP_STEPS = _whole(10, what="a whole number of iterations")  # a loss curve to read (range_test.sweep_test)
SEED = _whole(0, what="a whole-number seed")
COUNT = _whole(1, 100_000, what="a whole number")
WORKERS = _whole(1, 4096, what="a whole number of workers")
EPOCHS = _real(0, 1e6)
POSITIVE = _real(0)
FACTOR = _real(1)  # a multiple that must exceed 1 (--diverge-factor)
LR = _real(0, 1e6)
NONNEGATIVE = _real(0, low_open=False)


def check_device(text: str) -> str:
    """An argparse type: a device this torch build has (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    t = text.strip()
    if not t:
        raise Bad(text, "is not a device; use cpu or cuda (default: cuda when available)")
    import torch

    try:
        dev = torch.device(t)
    except (RuntimeError, ValueError, TypeError):
        raise Bad(text, "is not a device; use cpu or cuda, e.g. cuda:0") from None
    if dev.type == "cpu":
        return t
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise Bad(text, f"is not available: this torch build has no usable CUDA "
                                             f"(torch {torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise Bad(text, f"is out of range: there {'is' if count == 1 else 'are'} {count} CUDA "
                                             f"device{'s' * (count != 1)} (cuda:0..cuda:{count - 1})")
        return t
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise Bad(text, "is not available (no MPS here); use --device cpu")
        return t
    raise Bad(text, "is not a device lrpilot trains on; use cpu or cuda")


def check_output(path: str, suffixes: tuple[str, ...] = (), what: str = "file", dash: bool = False) -> str:
    """``path`` if a file can be written there: a legal name, not a directory, in a folder that exists (or can be
    made) and is writable; one of ``suffixes`` when given. Nothing is created."""
    if dash and path == "-":
        return path
    if not path or "\0" in path:
        raise LRPilotError(f"{clip(path, 300)} is not a {what} name")
    p = Path(path).expanduser()
    if suffixes and p.suffix.lower() not in suffixes:
        raise LRPilotError(f"{clip(path, 300)}: the {what} must end in {' or '.join(suffixes)}")
    _check_names(p, path, what)
    if p.is_dir():
        raise LRPilotError(f"{clip(path, 300)} is a directory; give a {what} name")
    if p.exists() and not os.access(p, os.W_OK) and not os.access(p.parent, os.W_OK):
        raise LRPilotError(f"{clip(path, 300)} cannot be written (permission denied); choose another {what}")
    _check_folder(p.parent, path, what)
    return path


def check_folder(path: str, what: str = "folder") -> str:
    """``path`` if it is a folder, or can be made one, that is writable; nothing is created."""
    if not path or "\0" in path:
        raise LRPilotError(f"{clip(path, 300)} is not a {what} name")
    p = Path(path).expanduser()
    _check_names(p, path, what)
    if p.exists() and not p.is_dir():
        raise LRPilotError(f"{clip(path, 300)} is a file, not a {what}")
    _check_folder(p, path, what)
    return path


def _check_names(p: Path, path: str, what: str) -> None:
    limit = 255
    try:
        limit = os.pathconf(next((a for a in [p, *p.parents] if a.exists()), Path(".")), "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        pass
    for part in p.parts:
        if len(os.fsencode(part)) > limit:
            raise LRPilotError(f"{clip(path, 300)}: the name {clip(part, 40)} is longer than the file system allows "
                               f"({limit} bytes); choose a shorter {what} name")


def _check_folder(folder: Path, path: str, what: str) -> None:
    """The nearest existing folder at or above ``folder`` is a folder and writable."""
    at = folder
    while not at.exists():
        if at.is_symlink():
            raise LRPilotError(f"{clip(path, 300)}: {clip(str(at), 300)} is a broken link; choose another {what}")
        if at.parent == at:
            break
        at = at.parent
    if at.exists() and not at.is_dir():
        raise LRPilotError(f"{clip(path, 300)}: {clip(str(at), 300)} is a file, not a folder; choose another {what}")
    if at.exists() and not os.access(at, os.W_OK | os.X_OK):
        why = "its file system is read-only" if _read_only(at) else "permission denied"
        raise LRPilotError(f"{clip(path, 300)}: cannot write in {clip(str(at), 300)} ({why}); choose another {what}")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def path_type(check: Callable[..., str], *a, **kw) -> Callable[[str], str]:
    """An argparse type from a path check: its LRPilotError becomes a usage error (one line, exit 2)."""

    def read(text: str) -> str:
        try:
            return check(text, *a, **kw)
        except LRPilotError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    read.__name__ = "path"
    return read
