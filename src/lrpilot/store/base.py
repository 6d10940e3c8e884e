"""The storage contract every backend honours (a query returns :class:`~lrpilot.records.RunRecord` objects).

Contract (checked for every backend by ``tests/store/test_conformance.py``):

- The schema is created on first use; a store written by an older version is migrated on open.
- A run is identified by (task, policy text, seed, budget, purpose); writes are transactional,
  and safe from several processes and threads at once. The purpose says why it was trained:
  ``"bench"`` (a benchmark, the default) or ``"range-test"`` (a decade range test's probe), so
  that a benchmark and a probe of the same policy and budget are two runs, and rankings,
  reports and recommendations read the ``"bench"`` runs only.
- :meth:`Storage.claim` hands a run to exactly one live holder: it returns None while another
  holder's heartbeat is younger than the timeout, and for a finished run. A run whose
  heartbeat went stale, or whose holder was a process on this host that is gone, can be
  claimed again; :meth:`Storage.release` hands a held run back to the queue. A holder sends a
  heartbeat every :attr:`Storage.heartbeat_interval` seconds (the grid's claim loop, the Lightning callback).
- Finished runs (status ok, diverged or failed) are immutable; finishing one again is a no-op;
  except that a run that failed because of how it was invoked (its record's ``error_kind`` is
  ``"invocation"``: a bad device or flag, its worker killed or out of memory) is claimed again by
  :meth:`Storage.claim`, so that a later bench retries it. Final are: ok, diverged, and a failure
  of the run itself (``error_kind`` ``"run"``: the policy or the training raised), and a failure
  recorded without an ``error_kind`` (stores written before it existed), and a run whose data its model cannot
  train on (``"data"``; retrained when the task's fingerprint changes, below). See :func:`retryable`.
  Two more finished runs are claimed again (and their result replaced when the new holder finishes):
  any failure when the claim asks ``rerun_failed=True`` (``bench --rerun-failed``), and a run whose stored
  fingerprint (:mod:`lrpilot.fingerprint`: the data, model, optimizer and budget it was trained with)
  differs from the claim's ``fingerprint``. A run stored without a fingerprint (before schema version 6,
  or claimed without one) is never stale. See :func:`retrain`.
- :meth:`Storage.delete_runs` deletes a task's runs (filtered) and their curves in one transaction; a run
  held by a live holder is kept.
- A holder is identified by host, PID and a token of the process (boot id and start time), not the
  PID alone: a new process that got a dead holder's PID does not keep the dead holder's runs.
  :meth:`Storage.heartbeat` and :meth:`Storage.finish` of a run that another holder took over raise
  :class:`ClaimLost`, so that a paused bench gives that run up and goes on with the others.
- A damaged store (a table or the schema-version row missing, a value that is not valid JSON, an
  unknown status) is refused with LRPilotError naming the table and the run; reads never wait for a
  writer's lock, and a wait for a lock longer than a few seconds is said on stderr.
- NaN and infinity in metrics, cost, record and curves are read back as NaN and infinity.
- Errors a user can fix are :class:`~lrpilot.errors.LRPilotError`; no message or log line
  contains a password from the URL.
"""

from __future__ import annotations

import abc
from typing import Any, Iterable

from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord, stale
from lrpilot.vocabulary import FINISHED, PURPOSES, STATUSES  # noqa: F401 - the contract's words



class ClaimLost(LRPilotError):
    """The run is no longer held by this store object: another holder took it over (its heartbeat went stale)."""


def retryable(status: str, record: Any) -> bool:
    """Whether a stored run is to be trained again: a failure caused by the invocation, not by the run itself."""
    return status == "failed" and isinstance(record, dict) and record.get("error_kind") == "invocation"


def retrain(status: str, record: Any, stored: str | None, current: str | None, rerun_failed: bool = False) -> bool:
    """Whether a finished run is to be trained again: a failure of the invocation (:func:`retryable`), any failure
    with ``rerun_failed``, or a run trained on other data, model or optimizer (:func:`stale`)."""
    return (retryable(status, record) or (rerun_failed and status == "failed")) or stale(stored, current)


class Storage(abc.ABC):
    """Where runs are claimed, kept alive, finished and queried (see the module's contract)."""

    @abc.abstractmethod
    def queue(self, task: Any, policy: Any, seed: int, budget: int, *, purpose: str = "bench") -> int:
        """Add the run as ``queued`` (held by no one, claimable) unless it exists; return its id."""

    @abc.abstractmethod
    def claim(self, task: Any, policy: Any, seed: int, budget: int, *, purpose: str = "bench",
              fingerprint: str | None = None, rerun_failed: bool = False) -> int | None:
        """The id of the run, now held by this store object, or None if it is held elsewhere or finished (and
        not to be trained again: :func:`retrain`).

        ``task``: a name or a task (whose ``meta`` is recorded); ``policy``: text or a policy/controller;
        ``purpose``: one of :data:`lrpilot.vocabulary.PURPOSES`; ``fingerprint``: the digest of what this
        holder trains (:func:`lrpilot.fingerprint.digest`), stored with the run; ``rerun_failed``: claim a
        failed run whatever its ``error_kind``.
        """

    @property
    @abc.abstractmethod
    def heartbeat_interval(self) -> float:
        """Seconds between the heartbeats that keep a held run alive: well within the time after which the store
        counts a silent holder as dead."""

    @abc.abstractmethod
    def heartbeat(self, run_id: int) -> None:
        """Mark a held run as alive; LRPilotError if this store object no longer holds it."""

    @abc.abstractmethod
    def finish(self, run_id: int, result: Any) -> bool:
        """Write a held run's :class:`~lrpilot.records.RunResult`; False (nothing written) if it was finished."""

    @abc.abstractmethod
    def release(self, run_id: int) -> None:
        """Give a run this store object holds back to the queue (e.g. on Ctrl-C); no-op otherwise."""

    @abc.abstractmethod
    def save_analysis(self, task: Any, kind: str, settings: str, result: dict[str, Any]) -> None:
        """Keep an analysis of a task (e.g. a range test), replacing one of the same kind and settings."""

    @abc.abstractmethod
    def analyses(self, *, task: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Stored analyses (task, kind, settings, result, host, created_at), oldest first."""

    @abc.abstractmethod
    def runs(self, *, task: str | None = None, policy: str | None = None, status: str | None = None,
             purpose: str | None = None, budget: int | None = None, seeds: Iterable[int] | None = None,
             curves: bool = True, outcomes: bool = False) -> list[RunRecord]:
        """The stored runs, filtered (``seeds``: any of them), in id order (``curves=False`` leaves the curves empty;
        ``outcomes=True`` loads each run's per-example outcomes, else ``RunRecord.outcomes`` is None)."""

    @abc.abstractmethod
    def run(self, run_id: int, *, curves: bool = True, outcomes: bool = True) -> RunRecord | None:
        """The stored run ``run_id`` (as :meth:`runs` gives it), or None."""

    @abc.abstractmethod
    def delete_runs(self, *, task: str, policy: str | None = None, status: str | None = None,
                    purpose: str | None = None) -> int:
        """Delete the runs of ``task`` that match the filters (as :meth:`runs`), with their curves, in one
        transaction; return how many. A run held by a live holder is kept."""

    @abc.abstractmethod
    def tasks(self) -> list[dict[str, Any]]:
        """The stored tasks as plain dicts, by name."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connections."""

    def __enter__(self) -> "Storage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
