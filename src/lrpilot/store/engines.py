"""SQLAlchemy engines for the supported backends: SQLite (WAL) and PostgreSQL.

SQLite: a writing transaction takes the write lock first (``BEGIN IMMEDIATE``: no deadlocked
upgrades); a read-only one (a connection with the execution option ``lrpilot_read``) is a plain
deferred ``BEGIN``, which in WAL mode never waits for a writer. A lock wait is cut into short
busy timeouts (:data:`LOCK_POLL_S`), so that the store's retry loop can say it is waiting.
PostgreSQL: reads never wait for writers (MVCC); a row lock waited on longer than
:data:`LOCK_POLL_S` raises a lock timeout, retried the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import importlib

import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.extras import require
from lrpilot.store.urls import mask

INSERTS = ("sqlite", "postgresql")  # the backends, whose dialect (its INSERT ... ON CONFLICT) is imported when used


def insert(backend: str):
    """The ``insert`` construct of ``backend``'s dialect (PostgreSQL's takes 40 ms to import: not for SQLite)."""
    return importlib.import_module(f"sqlalchemy.dialects.{backend}").insert
LOCK_POLL_S = 2.0
_BUSY_MS = int(LOCK_POLL_S * 1000)


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
            if url.get_driver_name() == "psycopg":
                require("psycopg", "postgres", f"the PostgreSQL store {mask(url)}")
            return sa.create_engine(url, json_serializer=_dumps, pool_pre_ping=True,
                                    connect_args={"connect_timeout": 10, "options": f"-c lock_timeout={_BUSY_MS}"})
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
        if conn.get_execution_options().get("lrpilot_read"):
            conn.exec_driver_sql("BEGIN")  # a reader: a WAL snapshot, no lock that a writer holds is waited for
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first: no deadlocked upgrades

    return engine


def is_transient(e: sa.exc.DBAPIError) -> bool:
    """A busy SQLite file, or a PostgreSQL serialization failure, deadlock or lock timeout: worth retrying."""
    return is_lock_wait(e) or str(getattr(e.orig, "sqlstate", "") or "").startswith("40")


def is_lock_wait(e: sa.exc.DBAPIError) -> bool:
    """Whether ``e`` means another connection holds a lock this one waited for."""
    msg = str(e.orig).lower()
    sqlstate = str(getattr(e.orig, "sqlstate", "") or "")
    return "locked" in msg or "busy" in msg or sqlstate == "55P03" or "lock timeout" in msg


# the advice for a driver error, by what its message says (first match); the default names no cause
_ADVICE = (
    (("database or disk is full", "no space left", "disk full", "could not extend file", "diskfull"),
     "the disk is full: free space, or pass another --db URL / LRPILOT_DB"),
    (("readonly database", "read-only", "read only", "permission denied", "attempt to write a readonly"),
     "the store is read-only here: make the file and its folder writable, or pass another --db URL / LRPILOT_DB"),
    (("malformed", "file is not a database", "not a database", "corrupt"),
     "the store file is damaged: restore it from a backup, or pass another --db URL / LRPILOT_DB"),
    (("locked", "busy", "lock timeout"),
     "another process holds the store's lock: wait for it to finish, or stop it"),
    (("connection refused", "could not connect", "connection to server", "timeout expired", "could not translate",
      "name or service not known", "unable to open database file", "no such host", "server closed",
      "authentication failed", "does not exist", "no password supplied", "connection failed", "terminating connection"),
     "start the database server or fix the URL, or pass another --db URL / LRPILOT_DB"),
)


def advice(message: str) -> str:
    """What to do about a driver error whose message is ``message``."""
    low = message.lower()
    for needles, text in _ADVICE:
        if any(n in low for n in needles):
            return text
    return "check the store, or pass another --db URL / LRPILOT_DB"
