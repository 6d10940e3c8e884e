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


def _v3_to_v4(conn: sa.Connection) -> None:
    """Runs tagged by purpose, part of their identity: "range-test" for the decade range tests' probes, which
    v3 told apart by budget alone (a FIX run at the budget of a stored ``range-decade`` analysis), else "bench"."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN purpose VARCHAR(50) NOT NULL DEFAULT 'bench'"))
    m = sa.MetaData()
    analyses = sa.Table("analyses", m, sa.Column("task_id", sa.Integer), sa.Column("kind", sa.String(50)),
                        sa.Column("result", sa.JSON))
    policies = sa.Table("policies", m, sa.Column("id", sa.Integer), sa.Column("name", sa.String(200)))
    runs = sa.Table("runs", m, sa.Column("task_id", sa.Integer), sa.Column("policy_id", sa.Integer),
                    sa.Column("budget", sa.Integer), sa.Column("purpose", sa.String(50)))
    fix = sa.select(policies.c.id).where(policies.c.name == "FIX")
    for task_id, result in conn.execute(sa.select(analyses.c.task_id, analyses.c.result)
                                        .where(analyses.c.kind == "range-decade")).all():
        if isinstance((result or {}).get("budget"), int):
            conn.execute(sa.update(runs).where(runs.c.task_id == task_id, runs.c.budget == result["budget"],
                                               runs.c.policy_id.in_(fix)).values(purpose="range-test"))
    if conn.dialect.name == "postgresql":
        for unique in sa.inspect(conn).get_unique_constraints("runs"):
            if set(unique["column_names"]) == {"task_id", "policy_id", "seed", "budget"}:
                conn.execute(sa.text(f'ALTER TABLE runs DROP CONSTRAINT "{unique["name"]}"'))
        conn.execute(sa.text("ALTER TABLE runs ADD UNIQUE (task_id, policy_id, seed, budget, purpose)"))
    else:
        _rebuild_sqlite_runs(conn)


def _rebuild_sqlite_runs(conn: sa.Connection) -> None:
    """SQLite cannot change a table's constraints: runs (and curves, which refer to it) are made anew and filled."""
    conn.execute(sa.text("ALTER TABLE curves RENAME TO curves_v3"))
    conn.execute(sa.text("ALTER TABLE runs RENAME TO runs_v3"))
    m = sa.MetaData()
    sa.Table("tasks", m, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("policies", m, sa.Column("id", sa.Integer, primary_key=True))
    columns = [sa.Column("id", sa.Integer, primary_key=True),
               sa.Column("task_id", sa.ForeignKey("tasks.id"), nullable=False),
               sa.Column("policy_id", sa.ForeignKey("policies.id"), nullable=False),
               sa.Column("seed", sa.Integer, nullable=False), sa.Column("budget", sa.Integer, nullable=False),
               sa.Column("status", sa.String(20), nullable=False), sa.Column("metrics", sa.JSON),
               sa.Column("cost", sa.JSON), sa.Column("record", sa.JSON), sa.Column("host", sa.String(200)),
               sa.Column("owner", sa.String(200)), sa.Column("created_at", sa.Float, nullable=False),
               sa.Column("started_at", sa.Float), sa.Column("heartbeat_at", sa.Float),
               sa.Column("finished_at", sa.Float),
               sa.Column("purpose", sa.String(50), nullable=False, server_default="bench")]
    names = ", ".join(c.name for c in columns)
    sa.Table("runs", m, *columns, sa.UniqueConstraint("task_id", "policy_id", "seed", "budget", "purpose"))
    sa.Table("curves", m, sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
             sa.Column("name", sa.String(100), primary_key=True), sa.Column("points", sa.JSON, nullable=False))
    m.tables["runs"].create(conn)
    m.tables["curves"].create(conn)
    conn.execute(sa.text(f"INSERT INTO runs ({names}) SELECT {names} FROM runs_v3"))
    conn.execute(sa.text("INSERT INTO curves (run_id, name, points) SELECT run_id, name, points FROM curves_v3"))
    conn.execute(sa.text("DROP TABLE curves_v3"))
    conn.execute(sa.text("DROP TABLE runs_v3"))


def _v4_to_v5(conn: sa.Connection) -> None:
    """The final model's per-example outcomes on the validation and test splits; older runs have none (NULL), and
    no val_* metrics: they had no validation split."""
    _add_columns(conn, "runs", sa.Column("outcomes", sa.JSON))


def _v5_to_v6(conn: sa.Connection) -> None:
    """The fingerprint of what each run was trained on (:mod:`lrpilot.fingerprint`); older runs have none (NULL),
    which no fingerprint contradicts: they stay valid."""
    _add_columns(conn, "runs", sa.Column("fingerprint", sa.String(64)))


MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5,
                                                         5: _v5_to_v6}


def version(conn: sa.Connection, where: str) -> int | None:
    """The store's schema version, None for an empty store; LRPilotError for a damaged one (which table)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("schema_version"):
        present = [t for t in schema.metadata.tables if t != "schema_version" and inspector.has_table(t)]
        if present:
            raise LRPilotError(f"the store {where} is damaged: it has the table(s) {', '.join(present)} but no "
                               "schema_version table; restore it from a backup or pass another --db")
        return None
    try:
        rows = conn.execute(sa.text("SELECT version FROM schema_version")).all()
    except sa.exc.StatementError as e:
        if isinstance(e, sa.exc.DBAPIError) and not _is_schema_error(e):
            raise
        rows = []
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise LRPilotError(f"the store {where} is damaged: its schema_version table holds "
                           f"{len(rows)} row(s) instead of one version number; restore it from a backup, or pass "
                           "another --db")
    return rows[0][0]


def _is_schema_error(e: sa.exc.DBAPIError) -> bool:
    return "no such column" in str(e.orig).lower() or "does not exist" in str(e.orig).lower()


def check_tables(conn: sa.Connection, where: str) -> None:
    """LRPilotError naming the first of the current schema's tables (or columns) that the store lacks."""
    inspector = sa.inspect(conn)
    for name, table in schema.metadata.tables.items():
        if not inspector.has_table(name):
            raise LRPilotError(f"the store {where} is damaged: its table {name!r} is missing; restore it from a "
                               "backup, or pass another --db")
        have = {c["name"] for c in inspector.get_columns(name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise LRPilotError(f"the store {where} is damaged: its table {name!r} lacks the column(s) "
                               f"{', '.join(missing)}; restore it from a backup, or pass another --db")


def upgrade(conn: sa.Connection, where: str) -> int:
    """Create the schema in an empty store or bring an older one to :data:`schema.VERSION`; return the old version.

    Runs inside the caller's transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
    lock), so processes opening one store at once migrate it exactly once. A damaged store (a
    table missing, no version row) is refused with LRPilotError naming what is wrong.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    old = version(conn, where)
    if old is None:
        schema.metadata.create_all(conn)
        conn.execute(schema.schema_version.insert().values(version=schema.VERSION))
        return 0
    if old > schema.VERSION:
        raise LRPilotError(f"the store {where} has schema version {old}, newer than this lrpilot's "
                           f"({schema.VERSION}): upgrade lrpilot or use another --db")
    if old < 1:
        raise LRPilotError(f"the store {where} is damaged: its schema version is {old}; restore it from a backup, "
                           "or pass another --db")
    for v in range(old, schema.VERSION):
        MIGRATIONS[v](conn)
    conn.execute(schema.schema_version.update().values(version=schema.VERSION))
    check_tables(conn, where)
    return old
