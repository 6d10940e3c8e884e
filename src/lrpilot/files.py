"""Writing files whole: a reader never sees half a file, and a failure leaves none.

A write that the file system refuses (full, over quota, read-only, permission denied) is the user's to fix:
one :class:`~lrpilot.errors.LRPilotError` that names the file, the reason and the space left there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from lrpilot.errors import LRPilotError
from lrpilot.vocabulary import clip

#: the errors of a write that the user fixes (free space, another folder), by errno: what each means
REFUSED = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large for the file system",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "the file",
                fix: str = "free space there or write elsewhere") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed (with the
    folders made for it). A write the file system refuses (:data:`REFUSED`) is one LRPilotError: ``cannot write
    <what> <path>: <reason> (<free space>); <fix>``."""
    target = Path(path)
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; the result gets the usual permissions
        yield Path(tmp)
        os.replace(tmp, target)
        tmp = None
    except BaseException as e:
        _remove(tmp, made)
        if isinstance(e, OSError) and e.errno in REFUSED:
            raise write_error(target, e, what, fix) from None
        raise


def _remove(tmp: str | None, folders: list[Path]) -> None:
    """Remove the temporary file, then the folders made for it (deepest first) that are empty."""
    if tmp is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_error(path: Path, e: OSError, what: str, fix: str) -> LRPilotError:
    """The one-line error of a refused write of ``path``: the reason of ``e``'s errno and the free space there."""
    return LRPilotError(f"cannot write {what} {clip(str(path), 300)}: {REFUSED.get(e.errno, e.strerror)} "
                        f"({free_space(path)}); {fix}")


def free_space(path: Path) -> str:
    """``"12.0 KiB free in /mnt"``: the space left on the file system of ``path``'s nearest existing folder."""
    at = path.parent
    while not at.exists() and at.parent != at:
        at = at.parent
    try:
        free = float(shutil.disk_usage(at).free)
    except OSError:
        return f"free space in {at} unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if free < 1024 or unit == "TiB":
            break
        free /= 1024
    return f"{free:.0f} {unit} free in {at}" if unit == "B" else f"{free:.1f} {unit} free in {at}"
