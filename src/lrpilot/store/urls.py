"""Where the store lives: the default SQLite file, ``$LRPILOT_DB``, ``--db URL``; password masking."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from lrpilot.errors import LRPilotError

ENV = "LRPILOT_DB"


def default_path() -> Path:
    """``$XDG_DATA_HOME/lrpilot/results.db`` (``~/.local/share/lrpilot/results.db``)."""
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "lrpilot" / "results.db"


def resolve(url: str | os.PathLike | None = None) -> sa.URL:
    """The store URL: ``url``, else ``$LRPILOT_DB``, else the default file; a plain path means SQLite."""
    raw = str(url or os.environ.get(ENV) or default_path())
    if "://" not in raw:
        return sa.make_url(f"sqlite:///{Path(raw).expanduser().resolve()}")
    try:
        parsed = sa.make_url(raw)
    except sa.exc.ArgumentError:
        raise LRPilotError(f"bad store URL {mask(raw)!r}: give a file path, sqlite:///PATH or "
                           "postgresql+psycopg://USER:PASSWORD@HOST/DB") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask(url: str | sa.URL) -> str:
    """``url`` with its password replaced by ``***`` (safe for logs and error messages)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"


def scrub(text: str, url: sa.URL) -> str:
    """``text`` (a driver's error message) with ``url``'s password removed."""
    return text.replace(url.password, "***") if url.password else text
