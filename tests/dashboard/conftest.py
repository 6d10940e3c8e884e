"""The store tests' PostgreSQL server (a real one; never skipped), for the dashboard on PostgreSQL."""

from tests.store.conftest import pg_database, pg_url  # noqa: F401
