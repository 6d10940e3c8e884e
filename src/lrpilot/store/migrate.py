"""Schema creation on first use and upgrades of stores written by older versions.

``MIGRATIONS[v]`` takes a store from version ``v`` to ``v + 1``; each step is frozen once
released (it names its own columns rather than reading :mod:`schema`).
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.store import schema

_PG_LOCK = 0x1B9_5707E  # advisory lock key: one migrating process at a time


def _add_columns(conn: sa.Connection, table: str, *columns: sa.Column) -> None:
    for c in columns:
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {c.name} {c.type.compile(dialect=conn.dialect)}"))


def _v1_to_v2(conn: sa.Connection) -> None:
    """Heartbeats and owners for claims, the run's record, the task's framework and versions."""
    _add_columns(conn, "runs", sa.Column("record", sa.JSON), sa.Column("owner", sa.String(200)),
                 sa.Column("heartbeat_at", sa.Float))
    _add_columns(conn, "tasks", sa.Column("framework", sa.String(50)), sa.Column("versions", sa.JSON))


def _v2_to_v3(conn: sa.Connection) -> None:
    """Analyses of a task (range tests) beside its runs; the task's input shape (for recommendations)."""
    _add_columns(conn, "tasks", sa.Column("input_shape", sa.JSON))
    m = sa.MetaData()
    sa.Table("tasks", m, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("analyses", m,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("task_id", sa.ForeignKey("tasks.id"), nullable=False),
             sa.Column("kind", sa.String(50), nullable=False),
             sa.Column("settings", sa.String(500), nullable=False),
             sa.Column("result", sa.JSON, nullable=False),
             sa.Column("host", sa.String(200)),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.UniqueConstraint("task_id", "kind", "settings")).create(conn)


MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(conn: sa.Connection, where: str) -> int:
    """Create the schema in an empty store or bring an older one to :data:`schema.VERSION`; return the old version.

    Runs inside the caller's transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
    lock), so processes opening one store at once migrate it exactly once.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    if not sa.inspect(conn).has_table("schema_version"):
        schema.metadata.create_all(conn)
        conn.execute(schema.schema_version.insert().values(version=schema.VERSION))
        return 0
    old = conn.execute(sa.select(schema.schema_version.c.version)).scalar_one()
    if old > schema.VERSION:
        raise LRPilotError(f"the store {where} has schema version {old}, newer than this lrpilot's "
                           f"({schema.VERSION}): upgrade lrpilot or use another --db")
    for v in range(old, schema.VERSION):
        MIGRATIONS[v](conn)
    conn.execute(schema.schema_version.update().values(version=schema.VERSION))
    return old
