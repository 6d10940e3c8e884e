"""Backends for the store's conformance suite: an SQLite file and a real PostgreSQL server.

PostgreSQL: ``$LRPILOT_TEST_PG_URL`` (a database user allowed to create databases), else a
throwaway server started by ``scripts/postgres.sh`` for the test session and stopped after it.
If neither works the PostgreSQL cases fail: they are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from lrpilot.store import Store

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"


@pytest.fixture(scope="session")
def pg_url():
    """An admin URL of a live PostgreSQL server."""
    if url := os.environ.get("LRPILOT_TEST_PG_URL"):
        yield url
        return
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"could not start PostgreSQL with {SCRIPT} (set LRPILOT_TEST_PG_URL to use a running server):\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    url, server_dir = proc.stdout.split()
    yield url
    subprocess.run(["bash", str(SCRIPT), "stop", server_dir], timeout=120, check=True)


@pytest.fixture
def pg_database(pg_url):
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"lrpilot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A URL of a store that does not exist yet, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def open_store(url):
    """``open_store(**kwargs)``: a Store at ``url``, closed after the test."""
    stores = []

    def make(**kwargs) -> Store:
        stores.append(Store(url, **kwargs))
        return stores[-1]

    yield make
    for s in stores:
        s.close()
