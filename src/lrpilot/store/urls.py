"""Where the store lives: the default SQLite file, ``$LRPILOT_DB``, ``--db URL``; password masking."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

import sqlalchemy as sa

from lrpilot.errors import LRPilotError

ENV = "LRPILOT_DB"


def default_path() -> Path:
    """``$XDG_DATA_HOME/lrpilot/results.db`` (``~/.local/share/lrpilot/results.db``)."""
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "lrpilot" / "results.db"


def resolve(url: str | os.PathLike | None = None) -> sa.URL:
    """The store URL: ``url``, else ``$LRPILOT_DB``, else the default file; a plain path means SQLite.

    A password may hold any character, '@' and '/' included: everything up to the last '@' of the
    URL's authority is its user and password (percent-encoded here before SQLAlchemy parses it).
    """
    raw = str(url or os.environ.get(ENV) or default_path())
    if "://" not in raw:
        return sa.make_url(f"sqlite:///{Path(raw).expanduser().resolve()}")
    try:
        parsed = sa.make_url(_quote_userinfo(raw))
    except (sa.exc.ArgumentError, ValueError):
        raise LRPilotError(f"bad store URL {mask(raw)!r}: give a file path, sqlite:///PATH or "
                           "postgresql+psycopg://USER:PASSWORD@HOST/DB") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# query parameters whose values are secrets (libpq's password, sslpassword; tokens and keys of other drivers)
_SECRET_KEY = re.compile(r"pass|secret|token|credential|auth|key", re.IGNORECASE)


def _quote_userinfo(raw: str) -> str:
    """``raw`` with its user and password percent-encoded, so that '@', '/', ':' in a password parse as such."""
    scheme, sep, rest = raw.partition("://")
    at = _userinfo_end(rest)
    if not sep or at < 0:
        return raw
    user, colon, password = rest[:at].partition(":")
    quoted = quote(unquote(user), safe="") + (colon + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}://{quoted}{rest[at:]}"


def _userinfo_end(rest: str) -> int:
    """The index of the '@' that ends the userinfo in ``rest`` (the URL after '://'), or -1 for none.

    The last '@' before the query string (which starts at the first '?' after that '@'); a query whose
    values hold an '@' makes the mask hide more than the password, never less."""
    return rest.rfind("@")


def mask(url: str | sa.URL) -> str:
    """``url`` with its password, and any secret query parameter (``?password=...``), replaced by ``***``.

    Rendered by SQLAlchemy (``render_as_string(hide_password=True)``); safe for logs and error messages.
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(_quote_userinfo(str(url)))
        query = {k: ("***" if _SECRET_KEY.search(k) else v) for k, v in parsed.query.items()}
        return parsed.set(query=query).render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    except Exception:  # noqa: BLE001 - whatever the input, never echo it
        return "<unparsable URL>"


def secrets(url: sa.URL) -> list[str]:
    """The secret strings of ``url`` (its password, secret query values), in the forms a message may show them."""
    found = [url.password] if url.password else []
    for k, v in url.query.items():
        if _SECRET_KEY.search(k):
            found += [v] if isinstance(v, str) else list(v)
    forms = {f for s in found if s for f in (s, quote(s, safe=""), quote(s))}
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, url: sa.URL) -> str:
    """``text`` (a driver's error message) with ``url``'s password and secret query values removed."""
    for secret in secrets(url):
        text = text.replace(secret, "***")
    return text
