"""The SQL store: SQLite by default, PostgreSQL by URL; honours the contract in :mod:`lrpilot.store.base`."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from typing import Any, Callable, TypeVar

import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord
from lrpilot.store import codec, migrate, schema, urls
from lrpilot.store.base import Storage
from lrpilot.store.engines import INSERTS, is_transient, make_engine
from lrpilot.store.meta import policy_row, task_row

log = logging.getLogger(__name__)
T = TypeVar("T")
R, TK, P = schema.runs.c, schema.tasks.c, schema.policies.c
_ATTEMPTS = 20


class Store(Storage):
    """Results store at ``url`` (a path, SQLite or PostgreSQL URL; default ``$LRPILOT_DB`` or the user's file).

    ``heartbeat_timeout``: seconds after the last heartbeat at which a held run counts as dead.
    """

    def __init__(self, url: str | os.PathLike | None = None, *, heartbeat_timeout: float = 120.0):
        self.url = urls.resolve(url)
        self.where = urls.mask(self.url)
        self.heartbeat_timeout = heartbeat_timeout
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._engine = make_engine(self.url)
        self._insert = INSERTS[self.url.get_backend_name()]
        self.migrated_from = self._tx(lambda conn: migrate.upgrade(conn, self.where))
        log.info("results store %s (schema version %d)", self.where, schema.VERSION)

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    # --- writes ------------------------------------------------------------------------------

    def queue(self, task: Any, policy: Any, seed: int, budget: int, *, purpose: str = "bench") -> int:
        def tx(conn):
            ids = self._identity(conn, task, policy, seed, budget, purpose)
            conn.execute(self._insert(schema.runs).values(**ids, status="queued", created_at=time.time())
                         .on_conflict_do_nothing())
            return conn.execute(sa.select(R.id).where(*_match(ids))).scalar_one()
        return self._tx(tx)

    def claim(self, task: Any, policy: Any, seed: int, budget: int, *, purpose: str = "bench") -> int | None:
        def tx(conn):
            ids = self._identity(conn, task, policy, seed, budget, purpose)
            now = time.time()
            held = {"status": "running", "owner": self.owner, "host": self.host, "started_at": now, "heartbeat_at": now}
            new = conn.execute(self._insert(schema.runs).values(**ids, **held, created_at=now)
                               .on_conflict_do_nothing().returning(R.id)).scalar_one_or_none()
            if new is not None:
                return new
            row = conn.execute(sa.select(R.id, R.status, R.owner, R.heartbeat_at).where(*_match(ids))).one()
            if row.status in schema.FINISHED or not (row.status == "queued" or self._dead(row, now)):
                return None
            return conn.execute(sa.update(schema.runs).where(R.id == row.id, R.status == row.status,
                                                             _is(R.owner, row.owner))
                                .values(**held).returning(R.id)).scalar_one_or_none()
        return self._tx(tx)

    def release(self, run_id: int) -> None:
        def tx(conn):
            conn.execute(sa.update(schema.runs).where(R.id == run_id, R.owner == self.owner, R.status == "running")
                         .values(status="queued", owner=None, heartbeat_at=None))
        self._tx(tx)

    def heartbeat(self, run_id: int) -> None:
        def tx(conn):
            return conn.execute(sa.update(schema.runs).where(R.id == run_id, R.owner == self.owner,
                                                             R.status == "running")
                                .values(heartbeat_at=time.time())).rowcount
        if not self._tx(tx):
            raise LRPilotError(f"run {run_id} is not held by this process in {self.where} (finished, or claimed "
                               "by another process after its heartbeat went stale): claim it again")

    def finish(self, run_id: int, result: Any) -> bool:
        if result.status not in schema.FINISHED:
            raise LRPilotError(f"run status {result.status!r} is not a finished one: use one of {schema.FINISHED}")
        text = policy_row(result.policy)["text"]

        def tx(conn):
            row = conn.execute(_runs_query().where(R.id == run_id)).one_or_none()
            if row is None:
                raise LRPilotError(f"no run {run_id} in {self.where}: use the id that claim() returned")
            if row.status in schema.FINISHED:
                return False
            if (row.task, row.policy, row.seed) != (result.task, text, result.seed):
                raise LRPilotError(f"run {run_id} is {row.task} {row.policy} seed {row.seed}, not {result.task} "
                                   f"{text} seed {result.seed}: finish it with its own result")
            now = time.time()
            done = conn.execute(sa.update(schema.runs).where(R.id == run_id, R.owner == self.owner,
                                                             R.status == "running")
                                .values(status=result.status, metrics=codec.encode(result.metrics),
                                        cost=codec.encode(result.cost), record=codec.encode(result.record),
                                        heartbeat_at=now, finished_at=now)).rowcount
            if not done:
                raise LRPilotError(f"run {run_id} is held by another process in {self.where}: its result "
                                   "belongs to that process; claim runs before finishing them")
            if result.curves:
                conn.execute(schema.curves.insert(), [{"run_id": run_id, "name": k, "points": codec.encode(v)}
                                                      for k, v in result.curves.items()])
            return True
        return self._tx(tx)

    def save_analysis(self, task: Any, kind: str, settings: str, result: dict[str, Any]) -> None:
        def tx(conn):
            row = {"task_id": self._row_id(conn, schema.tasks, task_row(task), "name"), "kind": kind,
                   "settings": settings, "result": codec.encode(result), "host": self.host, "created_at": time.time()}
            conn.execute(self._insert(schema.analyses).values(**row).on_conflict_do_update(
                index_elements=["task_id", "kind", "settings"],
                set_={k: row[k] for k in ("result", "host", "created_at")}))
        self._tx(tx)

    # --- queries -----------------------------------------------------------------------------

    def runs(self, *, task: str | None = None, policy: str | None = None, status: str | None = None,
             purpose: str | None = None, curves: bool = True) -> list[RunRecord]:
        if status is not None and status not in schema.STATUSES:
            raise LRPilotError(f"unknown run status {status!r}: use one of {schema.STATUSES}")
        if purpose is not None:
            _check_purpose(purpose)
        text = policy_row(policy)["text"] if policy is not None else None
        where = [c == v for c, v in ((TK.name, task), (P.text, text), (R.status, status), (R.purpose, purpose))
                 if v is not None]

        def tx(conn):
            rows = conn.execute(_runs_query().where(*where).order_by(R.id)).all()
            points: dict[int, dict[str, list]] = {row.id: {} for row in rows}
            if curves and rows:
                q = (sa.select(schema.curves).select_from(_joined(schema.curves.join(schema.runs)))
                     .where(*where).order_by(schema.curves.c.run_id, schema.curves.c.name))
                for c in conn.execute(q):
                    points[c.run_id][c.name] = codec.decode(c.points)
            return [_record(row, points[row.id]) for row in rows]
        return self._tx(tx)

    def analyses(self, *, task: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        A = schema.analyses.c
        where = [c == v for c, v in ((TK.name, task), (A.kind, kind)) if v is not None]

        def tx(conn):
            q = (sa.select(TK.name.label("task"), A.kind, A.settings, A.result, A.host, A.created_at)
                 .select_from(schema.analyses.join(schema.tasks, A.task_id == TK.id)).where(*where)
                 .order_by(A.created_at, A.id))
            return [dict(row._mapping) for row in conn.execute(q)]
        return [{**a, "result": codec.decode(a["result"])} for a in self._tx(tx)]

    def tasks(self) -> list[dict[str, Any]]:
        def tx(conn):
            return [dict(row._mapping) for row in conn.execute(sa.select(schema.tasks).order_by(TK.name))]
        return [{k: v for k, v in t.items() if k != "id"} for t in self._tx(tx)]

    def close(self) -> None:
        self._engine.dispose()

    # --- internals ---------------------------------------------------------------------------

    def _identity(self, conn: sa.Connection, task: Any, policy: Any, seed: int, budget: int,
                  purpose: str) -> dict[str, Any]:
        """The run's key columns, adding its task and policy rows when new."""
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LRPilotError(f"seed {seed!r} must be an int")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise LRPilotError(f"budget {budget!r} must be an int number of iterations >= 1")
        _check_purpose(purpose)
        return {"task_id": self._row_id(conn, schema.tasks, task_row(task), "name"),
                "policy_id": self._row_id(conn, schema.policies, policy_row(policy), "text"),
                "seed": seed, "budget": budget, "purpose": purpose}

    def _dead(self, row: sa.Row, now: float) -> bool:
        """Whether the holder of a running ``row`` is gone: a stale heartbeat, or a dead process on this host."""
        if row.heartbeat_at is None or row.heartbeat_at < now - self.heartbeat_timeout:
            return True
        host, _, rest = (row.owner or "").partition(":")
        pid = rest.partition(":")[0]
        if host != self.host or not pid.isdigit() or int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)  # PermissionError: alive, another user's
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def _row_id(self, conn: sa.Connection, table: sa.Table, row: dict[str, Any], key: str) -> int:
        conn.execute(self._insert(table).values(**row).on_conflict_do_nothing(index_elements=[key]))
        return conn.execute(sa.select(table.c.id).where(table.c[key] == row[key])).scalar_one()

    def _tx(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn`` in one transaction, retried while the database is busy; driver errors become LRPilotError."""
        attempt = 0
        while True:
            try:
                with self._engine.begin() as conn:
                    return fn(conn)
            except sa.exc.DBAPIError as e:
                attempt += 1
                if not is_transient(e) or attempt == _ATTEMPTS:
                    raise self._error(e) from None
            time.sleep(random.uniform(0.01, 0.05) * attempt)

    def _error(self, e: sa.exc.DBAPIError) -> LRPilotError:
        reason = urls.scrub((str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0], self.url)
        return LRPilotError(f"cannot use the results store {self.where}: {reason}. Start the database server or "
                            f"fix the URL, or pass another --db URL / LRPILOT_DB (default: {urls.default_path()})")


def _check_purpose(purpose: Any) -> None:
    if purpose not in schema.PURPOSES:
        raise LRPilotError(f"unknown run purpose {purpose!r}: use one of {schema.PURPOSES}")


def _match(ids: dict[str, Any]) -> list:
    return [R[k] == v for k, v in ids.items()]


def _is(column: sa.Column, value: Any) -> sa.ColumnElement:
    return column.is_(None) if value is None else column == value


def _joined(runs: sa.FromClause) -> sa.FromClause:
    """``runs`` (the runs table or a join with it) joined with its tasks and policies."""
    return runs.join(schema.tasks, R.task_id == TK.id).join(schema.policies, R.policy_id == P.id)


def _runs_query() -> sa.Select:
    return sa.select(schema.runs, TK.name.label("task"), P.text.label("policy")).select_from(_joined(schema.runs))


def _record(row: sa.Row, curves: dict[str, list]) -> RunRecord:
    return RunRecord(id=row.id, task=row.task, policy=row.policy, seed=row.seed, budget=row.budget,
                     status=row.status, metrics=codec.decode(row.metrics), cost=codec.decode(row.cost),
                     curves=curves, record=codec.decode(row.record), host=row.host, created_at=row.created_at,
                     started_at=row.started_at, heartbeat_at=row.heartbeat_at, finished_at=row.finished_at,
                     purpose=row.purpose)
