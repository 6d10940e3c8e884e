"""SQLAlchemy engines for the supported backends: SQLite (WAL, immediate transactions) and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lrpilot.errors import LRPilotError
from lrpilot.store.urls import mask

INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_BUSY_MS = 30_000


def _dumps(obj) -> str:
    return json.dumps(obj, allow_nan=False)  # non-finite floats must have been encoded (codec.encode)


def make_engine(url: sa.URL) -> sa.Engine:
    """An engine for ``url``; LRPilotError for a backend other than SQLite or PostgreSQL."""
    backend = url.get_backend_name()
    if backend not in INSERTS:
        raise LRPilotError(f"unsupported store URL {mask(url)!r}: use a file path, sqlite:///PATH "
                           "or postgresql+psycopg://USER:PASSWORD@HOST/DB")
    try:
        if backend == "postgresql":
            return sa.create_engine(url, json_serializer=_dumps, pool_pre_ping=True,
                                    connect_args={"connect_timeout": 10})
        return _sqlite(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
        raise LRPilotError(f"cannot use the store URL {mask(url)!r} ({type(e).__name__}): check its driver name, "
                           "e.g. postgresql+psycopg://...") from None


def _sqlite(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LRPilotError(f"cannot create the folder of the store {mask(url)} ({e.strerror}): "
                               "pass another --db path or set LRPILOT_DB") from None
    engine = sa.create_engine(url, json_serializer=_dumps, connect_args={"timeout": _BUSY_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below starts transactions
        for pragma in ("journal_mode=WAL", f"busy_timeout={_BUSY_MS}", "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first: no deadlocked upgrades

    return engine


def is_transient(e: sa.exc.DBAPIError) -> bool:
    """A busy SQLite file, or a PostgreSQL serialization failure or deadlock: worth retrying."""
    msg = str(e.orig).lower()
    return "locked" in msg or "busy" in msg or str(getattr(e.orig, "sqlstate", "") or "").startswith("40")
