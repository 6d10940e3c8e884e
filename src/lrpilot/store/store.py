"""The SQL store: SQLite by default, PostgreSQL by URL; honours the contract in :mod:`lrpilot.store.base`."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import sys
import time
import uuid
from typing import Any, Callable, Iterable, Iterator, TypeVar

import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord
from lrpilot.store import codec, migrate, schema, urls
from lrpilot.store.base import ClaimLost, Storage, retrain
from lrpilot.store.engines import advice, insert, is_lock_wait, is_transient, make_engine
from lrpilot.store.meta import policy_row, task_row
from lrpilot.vocabulary import clip

log = logging.getLogger(__name__)
T = TypeVar("T")
R, TK, P = schema.runs.c, schema.tasks.c, schema.policies.c
_ATTEMPTS = 20  # retries of a serialization failure or deadlock (lock waits are bounded by time instead)
_INT_MIN, _INT_MAX = -2**31, 2**31 - 1  # what an INTEGER column holds on every backend
_WARN_AFTER_S = 3.0  # a lock waited for this long is said on stderr


def _process_token(pid: int | str = "self") -> str | None:
    """This boot's id and the process's start time (Linux), which a later process with the same PID does not share."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rpartition(")")[2].split()[19]  # field 22, starttime in clock ticks since boot
    except (OSError, IndexError):
        return None
    return f"{boot}.{start}"


_TOKEN = _process_token() or f"r{uuid.uuid4().hex[:12]}"  # no /proc: a random one per process


def _renew_token() -> None:
    global _TOKEN
    _TOKEN = _process_token() or f"r{uuid.uuid4().hex[:12]}"


os.register_at_fork(after_in_child=_renew_token)


class Store(Storage):
    """Results store at ``url`` (a path, SQLite or PostgreSQL URL; default ``$LRPILOT_DB`` or the user's file).

    ``heartbeat_timeout``: seconds after the last heartbeat at which a held run counts as dead;
    ``lock_timeout``: seconds to wait for another process's lock before giving up (a wait longer
    than a few seconds is said on stderr).

    A holder is ``host:pid:uuid:token``: the uuid tells this store object from others, the token
    (boot id and process start time) this process from an earlier one that had the same PID.
    """

    def __init__(self, url: str | os.PathLike | None = None, *, heartbeat_timeout: float = 120.0,
                 lock_timeout: float = 600.0):
        self.url = urls.resolve(url)
        self.where = urls.mask(self.url)
        self.heartbeat_timeout = heartbeat_timeout
        self.lock_timeout = lock_timeout
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}:{_TOKEN}"
        self._engine = make_engine(self.url)
        self._insert = insert(self.url.get_backend_name())
        current = self._tx(lambda conn: migrate.version(conn, self.where), read=True)
        if current == schema.VERSION:  # the usual case: no write lock needed to open
            self._tx(lambda conn: migrate.check_tables(conn, self.where), read=True)
            self.migrated_from = current
        else:
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

    def claim(self, task: Any, policy: Any, seed: int, budget: int, *, purpose: str = "bench",
              fingerprint: str | None = None, rerun_failed: bool = False) -> int | None:
        if fingerprint is not None and not (isinstance(fingerprint, str) and 0 < len(fingerprint) <= 64):
            raise LRPilotError(f"fingerprint {str(fingerprint)[:80]!r} must be a digest of at most 64 characters: "
                               "use lrpilot.fingerprint.digest")

        def tx(conn):
            ids = self._identity(conn, task, policy, seed, budget, purpose)
            now = time.time()
            held = {"status": "running", "owner": self.owner, "host": self.host, "started_at": now,
                    "heartbeat_at": now, "fingerprint": fingerprint}
            new = conn.execute(self._insert(schema.runs).values(**ids, **held, created_at=now)
                               .on_conflict_do_nothing().returning(R.id)).scalar_one_or_none()
            if new is not None:
                return new
            row = conn.execute(sa.select(R.id, R.status, R.owner, R.heartbeat_at, R.fingerprint,
                                         sa.type_coerce(R.record, sa.Text).label("raw_record"))
                               .where(*_match(ids))).one()
            if row.status in schema.FINISHED:
                if not retrain(row.status, _loads(row.raw_record), row.fingerprint, fingerprint, rerun_failed):
                    return None
            elif not (row.status == "queued" or self._dead(row, now)):
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

    @property
    def heartbeat_interval(self) -> float:
        """A quarter of the heartbeat timeout, at most 30 s."""
        return min(30.0, self.heartbeat_timeout / 4)

    def heartbeat(self, run_id: int) -> None:
        def tx(conn):
            return conn.execute(sa.update(schema.runs).where(R.id == run_id, R.owner == self.owner,
                                                             R.status == "running")
                                .values(heartbeat_at=time.time())).rowcount
        if not self._tx(tx):
            raise ClaimLost(f"run {run_id} is not held by this process in {self.where} (finished, or claimed "
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
            if row.status != "running" or row.owner != self.owner:
                raise ClaimLost(f"run {run_id} is held by another process in {self.where}: its result "
                                "belongs to that process; claim runs before finishing them")
            if (row.task, row.policy, row.seed) != (result.task, text, result.seed):
                raise LRPilotError(f"run {run_id} is {row.task} {row.policy} seed {row.seed}, not {result.task} "
                                   f"{text} seed {result.seed}: finish it with its own result")
            now = time.time()
            done = conn.execute(sa.update(schema.runs).where(R.id == run_id, R.owner == self.owner,
                                                             R.status == "running")
                                .values(status=result.status, metrics=codec.encode(result.metrics),
                                        cost=codec.encode(result.cost), record=codec.encode(result.record),
                                        outcomes=result.outcomes or None,
                                        heartbeat_at=now, finished_at=now)).rowcount
            if not done:
                raise ClaimLost(f"run {run_id} is held by another process in {self.where}: its result "
                                "belongs to that process; claim runs before finishing them")
            conn.execute(sa.delete(schema.curves).where(schema.curves.c.run_id == run_id))  # a retried failure's
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
             purpose: str | None = None, budget: int | None = None, seeds: Iterable[int] | None = None,
             curves: bool = True, outcomes: bool = False) -> list[RunRecord]:
        return self._runs(_filters(task, policy, status, purpose, budget, seeds), curves, outcomes)

    def run(self, run_id: int, *, curves: bool = True, outcomes: bool = True) -> RunRecord | None:
        if not isinstance(run_id, int) or isinstance(run_id, bool) or not _INT_MIN <= run_id <= _INT_MAX:
            raise LRPilotError(f"run id {str(run_id)[:40]!r} must be a whole number (the id lrpilot runs lists)")
        found = self._runs([R.id == run_id], curves, outcomes)
        return found[0] if found else None

    def _runs(self, where: list, curves: bool, outcomes: bool) -> list[RunRecord]:
        def tx(conn):
            rows = conn.execute(_runs_query(outcomes).where(*where).order_by(R.id)).all()
            points: dict[int, dict[str, list]] = {row.id: {} for row in rows}
            if curves and rows:
                q = (sa.select(schema.curves).select_from(_joined(schema.curves.join(schema.runs)))
                     .where(*where).order_by(schema.curves.c.run_id, schema.curves.c.name))
                for c in conn.execute(q):
                    points[c.run_id][c.name] = codec.decode(c.points)
            return [_record(row, points[row.id], self.where) for row in rows]
        return self._tx(tx, read=True)

    def delete_runs(self, *, task: str, policy: str | None = None, status: str | None = None,
                    purpose: str | None = None) -> int:
        if not isinstance(task, str) or not task:
            raise LRPilotError(f"delete_runs needs a task name, not {str(task)[:80]!r}: runs are deleted per task")
        where = _filters(task, policy, status, purpose)

        def tx(conn):
            now = time.time()
            rows = conn.execute(sa.select(R.id, R.status, R.owner, R.heartbeat_at)
                                .select_from(_joined(schema.runs)).where(*where)).all()
            ids = [r.id for r in rows if r.status != "running" or self._dead(r, now)]
            if ids:
                conn.execute(sa.delete(schema.curves).where(schema.curves.c.run_id.in_(ids)))
                conn.execute(sa.delete(schema.runs).where(R.id.in_(ids)))
            return len(ids)
        return self._tx(tx)

    def analyses(self, *, task: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        A = schema.analyses.c
        where = [c == v for c, v in ((TK.name, task), (A.kind, kind)) if v is not None]

        def tx(conn):
            q = (sa.select(TK.name.label("task"), A.kind, A.settings, A.result, A.host, A.created_at)
                 .select_from(schema.analyses.join(schema.tasks, A.task_id == TK.id)).where(*where)
                 .order_by(A.created_at, A.id))
            return [dict(row._mapping) for row in conn.execute(q)]
        out = []
        for a in self._tx(tx, read=True):
            try:
                out.append({**a, "result": codec.decode(a["result"])})
            except codec.DecodeError as e:
                raise LRPilotError(f"the store {self.where} is damaged: table analyses, {a['kind']} of {a['task']}: "
                                   f"{e}; restore it from a backup, or pass another --db") from None
        return out

    def tasks(self) -> list[dict[str, Any]]:
        def tx(conn):
            return [dict(row._mapping) for row in conn.execute(sa.select(schema.tasks).order_by(TK.name))]
        return [{k: v for k, v in t.items() if k != "id"} for t in self._tx(tx, read=True)]

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
        for name, value in (("seed", seed), ("budget", budget)):
            if not _INT_MIN <= value <= _INT_MAX:  # the store's INTEGER columns (32 bits on PostgreSQL)
                raise LRPilotError(f"{name} {str(value)[:40]} is too large for the results store: use one between "
                                   f"{_INT_MIN if name == 'seed' else 1} and {_INT_MAX}")
        _check_purpose(purpose)
        return {"task_id": self._row_id(conn, schema.tasks, task_row(task), "name"),
                "policy_id": self._row_id(conn, schema.policies, policy_row(policy), "text"),
                "seed": seed, "budget": budget, "purpose": purpose}

    def _dead(self, row: sa.Row, now: float) -> bool:
        """Whether the holder of a running ``row`` is gone: a stale heartbeat, or a process on this host that is
        gone. A live process with the holder's PID is the holder only if its token (boot and start time) matches:
        a restart that got the dead holder's PID (PID 1 in a container) is not the holder."""
        if row.heartbeat_at is None or row.heartbeat_at < now - self.heartbeat_timeout:
            return True
        host, pid, _, token = ((row.owner or "").split(":") + ["", "", "", ""])[:4]
        if host != self.host or not pid.isdigit():
            return False
        if int(pid) == os.getpid():
            return bool(token) and token != _TOKEN  # this process holds it, or an earlier one with this PID did
        try:
            os.kill(int(pid), 0)  # PermissionError: alive, another user's
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if token and not token.startswith("r"):
            now_token = _process_token(pid)
            return now_token is not None and now_token != token  # the PID was reused by another process
        return False

    def _row_id(self, conn: sa.Connection, table: sa.Table, row: dict[str, Any], key: str) -> int:
        conn.execute(self._insert(table).values(**row).on_conflict_do_nothing(index_elements=[key]))
        return conn.execute(sa.select(table.c.id).where(table.c[key] == row[key])).scalar_one()

    def _tx(self, fn: Callable[[sa.Connection], T], *, read: bool = False) -> T:
        """``fn`` in one transaction (``read``: a read-only one, which never waits for a writer on SQLite), retried
        while the database is busy; a lock wait longer than a few seconds is said on stderr, one longer than
        ``lock_timeout`` is an error. Driver errors become LRPilotError; so does a damaged row."""
        attempt, began, warned = 0, time.monotonic(), False
        while True:
            try:
                with self._engine.connect() as conn:
                    if read:
                        conn.execution_options(lrpilot_read=True)
                    with conn.begin():
                        return fn(conn)
            except sa.exc.DBAPIError as e:
                waited = time.monotonic() - began
                if is_lock_wait(e):
                    if waited >= self.lock_timeout:
                        raise LRPilotError(f"the results store {self.where} stayed locked by another process for "
                                           f"{waited:.0f} s: wait for it to finish or stop it, then run this again"
                                           ) from None
                    if not warned and waited >= _WARN_AFTER_S:
                        warned = True
                        print(f"lrpilot: waiting for the lock on the results store {self.where}, held by another "
                              f"process (for {waited:.0f} s so far; giving up after {self.lock_timeout:.0f} s)",
                              file=sys.stderr, flush=True)  # not also logged: it would print twice
                else:
                    attempt += 1
                    if not is_transient(e) or attempt == _ATTEMPTS:
                        raise self._error(e) from None
            except (json.JSONDecodeError, codec.DecodeError) as e:  # a stored value that does not decode
                raise self._damaged(e) from None
            time.sleep(random.uniform(0.01, 0.05) * min(attempt + 1, 10))

    def _error(self, e: sa.exc.DBAPIError) -> LRPilotError:
        first = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
        reason = urls.scrub(first, self.url)
        if "no such table" in first.lower() or "no such column" in first.lower() or "undefinedtable" in \
                type(e.orig).__name__.lower():
            return LRPilotError(f"the results store {self.where} is damaged: {reason}; restore it from a backup, "
                                f"or pass another --db URL / LRPILOT_DB (default: {urls.default_path()})")
        return LRPilotError(f"cannot use the results store {self.where}: {reason}. {_sentence(advice(first))} "
                            f"(default: {urls.default_path()})")

    def _damaged(self, e: Exception) -> LRPilotError:
        """A row that does not decode (bad JSON): name its table and run, found by reading the raw text."""
        where = None
        try:
            where = self._tx(_find_bad_json, read=True)
        except LRPilotError:
            pass
        what = where or f"a value does not decode ({type(e).__name__})"
        return LRPilotError(f"the store {self.where} is damaged: {what}; restore it from a backup, or delete that "
                            "run from it, or pass another --db")


def _loads(raw: Any) -> Any:
    """A JSON column read as text (None stays None); ValueError for text that is not JSON."""
    if isinstance(raw, (str, bytes)):
        raw = json.loads(raw)
    return codec.decode(raw)


def _find_bad_json(conn: sa.Connection) -> str | None:
    """Where the first undecodable JSON value is: "table runs, run 3 (task ..., policy ...): its metrics ..."."""
    for where, raw in _json_cells(conn):
        try:
            _loads(raw)
        except ValueError as e:
            return f"{where} is not valid ({type(e).__name__}: {str(e)[:80]})"
    return None


def _json_cells(conn: sa.Connection) -> Iterator[tuple[str, Any]]:
    """Every stored JSON value as its raw text, with where it is."""
    text = lambda c: sa.type_coerce(c, sa.Text)  # noqa: E731 - the raw stored text, not decoded
    q = (sa.select(R.id, TK.name.label("task"), P.text.label("policy"), text(R.metrics).label("metrics"),
                   text(R.cost).label("cost"), text(R.record).label("record")).select_from(_joined(schema.runs)))
    for row in conn.execute(q):
        for column in ("metrics", "cost", "record"):
            yield f"table runs, run {row.id} ({row.task} {row.policy[:80]}): its {column}", getattr(row, column)
    C = schema.curves.c
    for row in conn.execute(sa.select(C.run_id, C.name, text(C.points).label("points"))):
        yield f"table curves, run {row.run_id}: its curve {row.name[:80]!r}", row.points
    A = schema.analyses.c
    for row in conn.execute(sa.select(A.id, A.kind, text(A.result).label("result"))):
        yield f"table analyses, analysis {row.id} ({row.kind[:80]}): its result", row.result


def _filters(task: str | None, policy: str | None, status: str | None, purpose: str | None,
             budget: int | None = None, seeds: Iterable[int] | None = None) -> list:
    """The WHERE clauses of a runs query over the runs joined with their tasks and policies (None: any)."""
    if status is not None and status not in schema.STATUSES:
        raise LRPilotError(f"unknown run status {status!r}: use one of {schema.STATUSES}")
    if purpose is not None:
        _check_purpose(purpose)
    seeds = None if seeds is None else list(seeds)
    for name, values in (("budget", [] if budget is None else [budget]), ("seed", seeds or [])):
        if not all(isinstance(v, int) and not isinstance(v, bool) and _INT_MIN <= v <= _INT_MAX for v in values):
            raise LRPilotError(f"{name} filter {clip(values)} must hold whole numbers as stored")
    text = policy_row(policy)["text"] if policy is not None else None
    where = [c == v for c, v in ((TK.name, task), (P.text, text), (R.status, status), (R.purpose, purpose),
                                 (R.budget, budget)) if v is not None]
    return where + ([R.seed.in_(seeds)] if seeds is not None else [])


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


def _runs_query(outcomes: bool = False) -> sa.Select:
    """The runs with their task's name and policy's text; the (large) outcomes column only when asked."""
    columns = [c for c in schema.runs.c if outcomes or c.name != "outcomes"]
    return sa.select(*columns, TK.name.label("task"), P.text.label("policy")).select_from(_joined(schema.runs))


def _record(row: sa.Row, curves: dict[str, list], where: str) -> RunRecord:
    if row.status not in schema.STATUSES:
        raise LRPilotError(f"the store {where} is damaged: table runs, run {row.id} ({row.task} {row.policy[:80]}) "
                           f"has the unknown status {str(row.status)[:40]!r} (one of {', '.join(schema.STATUSES)} "
                           "expected); restore it from a backup, or delete that run from it, or pass another --db")
    return RunRecord(id=row.id, task=row.task, policy=row.policy, seed=row.seed, budget=row.budget,
                     status=row.status, metrics=codec.decode(row.metrics), cost=codec.decode(row.cost),
                     curves=curves, record=codec.decode(row.record), host=row.host, created_at=row.created_at,
                     started_at=row.started_at, heartbeat_at=row.heartbeat_at, finished_at=row.finished_at,
                     purpose=row.purpose, outcomes=row._mapping.get("outcomes"), fingerprint=row.fingerprint)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
