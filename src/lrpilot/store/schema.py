"""The tables of the current schema version (see :mod:`lrpilot.store.migrate` for older ones)."""

from __future__ import annotations

import sqlalchemy as sa

from lrpilot.vocabulary import FINISHED, PURPOSES, STATUSES  # noqa: F401 - read by the store with the tables

VERSION = 6

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

tasks = sa.Table(
    "tasks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("dataset", sa.String(200)),
    sa.Column("model", sa.String(200)),
    sa.Column("num_classes", sa.Integer),
    sa.Column("n_train", sa.Integer),
    sa.Column("input_shape", sa.JSON),
    sa.Column("framework", sa.String(50)),
    sa.Column("versions", sa.JSON),
)

policies = sa.Table(
    "policies", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("n_param", sa.Integer),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("policy_id", sa.ForeignKey("policies.id"), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("metrics", sa.JSON),
    sa.Column("cost", sa.JSON),
    sa.Column("record", sa.JSON),
    sa.Column("host", sa.String(200)),
    sa.Column("owner", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("purpose", sa.String(50), nullable=False, server_default="bench"),
    sa.Column("outcomes", sa.JSON),  # {"val": text, "test": text} (lrpilot.outcomes); NULL: none stored
    sa.Column("fingerprint", sa.String(64)),  # lrpilot.fingerprint.digest of what was trained; NULL: not known
    sa.UniqueConstraint("task_id", "policy_id", "seed", "budget", "purpose"),
)

curves = sa.Table(
    "curves", metadata,
    sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("points", sa.JSON, nullable=False),
)

analyses = sa.Table(
    "analyses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("settings", sa.String(500), nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("host", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("task_id", "kind", "settings"),
)
